"""labelwise.features: the featurisers, with hand-computed expected values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from labelwise.errors import LabelwiseError
from labelwise.features import (
    FeatureMatrix,
    check_keywords,
    feature_kind,
    features_key,
    first_tag,
    item_metadata,
    keyword_columns,
    npy_rows,
    tabular,
    tfidf,
    thumbnails,
)

# --------------------------------------------------------------------------- TF-IDF


def test_tfidf_hand_computed():
    X = tfidf(["good movie", "bad movie"])
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    # vocabulary bad, good, movie; smooth idf: 1 + ln((1 + 2) / (1 + df))
    rare, common = 1 + math.log(3 / 2), 1.0
    norm = math.hypot(rare, common)
    np.testing.assert_allclose(
        X.toarray(), [[0, rare / norm, common / norm], [rare / norm, 0, common / norm]], rtol=1e-6
    )


def test_tfidf_sublinear_term_frequency():
    X = tfidf(["bad bad movie", "movie"]).toarray()
    bad = (1 + math.log(2)) * (1 + math.log(3 / 2))  # tf 2 -> 1 + ln 2
    np.testing.assert_allclose(X[0], np.array([bad, 1.0]) / math.hypot(bad, 1.0), rtol=1e-6)
    np.testing.assert_allclose(X[1], [0.0, 1.0])


def test_tfidf_without_any_term_is_one_zero_column():
    X = tfidf(["!!", "?"])
    assert X.shape == (2, 1) and X.nnz == 0 and X.dtype == np.float32


def test_tfidf_drops_single_text_terms_from_1000_texts_on():
    texts = ["alpha beta"] * 999 + ["alpha gamma"]
    assert tfidf(texts).shape == (1000, 2)  # gamma (in one text) is dropped
    assert tfidf(texts[-3:]).shape == (3, 3)  # few texts: every term kept


# --------------------------------------------------------------------------- tabular


def test_tabular_standardised_in_sorted_column_order():
    # columns a, b; b is missing in row 2 -> the mean 4 -> standardised 0; "name" is not numeric
    X = tabular([{"b": 2, "a": 1.0, "name": "x"}, {"a": 3.0}, {"a": 5.0, "b": 6}])
    z = math.sqrt(1.5)  # (5 - 3) / sqrt(8 / 3)
    np.testing.assert_allclose(X, [[-z, -z], [0, 0], [z, z]], rtol=1e-6)
    assert X.dtype == np.float32


def test_tabular_booleans_count_and_constant_columns_become_zero():
    X = tabular([{"flag": True, "c": 7}, {"flag": False, "c": 7}])
    np.testing.assert_allclose(X, [[0, 1], [0, -1]])  # columns c, flag


def test_tabular_without_numbers_says_what_to_do():
    with pytest.raises(LabelwiseError, match="numeric payload fields"):
        tabular([{"text_but_not_called_text": "hi"}])


# --------------------------------------------------------------------------- images


def test_thumbnails_scale_pixels_to_unit_range(tmp_path):
    from PIL import Image

    img = Image.new("L", (2, 2))
    img.putdata([0, 255, 51, 102])
    img.save(tmp_path / "a.png")
    X = thumbnails([str(tmp_path / "a.png")], size=2)
    np.testing.assert_allclose(X, [[0.0, 1.0, 0.2, 0.4]], rtol=1e-6)
    assert X.dtype == np.float32


def test_thumbnails_of_a_broken_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(LabelwiseError, match="cannot read image"):
        thumbnails([str(tmp_path / "bad.png")])


# --------------------------------------------------------------------------- .npy rows


def test_npy_rows_in_order_is_the_memory_map_itself(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "f.npy", arr)
    X = npy_rows([str(tmp_path / "f.npy")] * 3, [0, 1, 2])
    assert isinstance(X, np.memmap)  # no copy
    np.testing.assert_array_equal(X, arr)


def test_npy_rows_gathers_permuted_rows_and_several_files(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1, 2], [3, 4]], dtype=np.float64))
    np.save(tmp_path / "b.npy", np.array([[5, 6]], dtype=np.float32))
    a, b = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    X = npy_rows([a, b, a], [1, 0, 0])
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, [[3, 4], [5, 6], [1, 2]])
    X = npy_rows([a, a], [0, 1])  # a float64 file read in order is converted
    assert X.dtype == np.float32 and X.tolist() == [[1, 2], [3, 4]]


def test_npy_rows_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2), dtype=np.float32))
    np.save(tmp_path / "b.npy", np.zeros((2, 3), dtype=np.float32))
    np.save(tmp_path / "c.npy", np.zeros((2, 2, 2), dtype=np.float32))
    a, b, c = (str(tmp_path / f"{n}.npy") for n in "abc")
    with pytest.raises(LabelwiseError, match="'x2' has features_path but no features_row"):
        npy_rows([a, a], [0, None], names=["x1", "x2"])
    with pytest.raises(LabelwiseError, match="different widths"):
        npy_rows([a, b], [0, 0])
    with pytest.raises(LabelwiseError, match="expected 2-D"):
        npy_rows([c], [0])


# --------------------------------------------------------------------------- kinds, tags, keys


def test_feature_kind():
    assert feature_kind({"text": "hi"}, "/f.npy") == "npy"  # a feature file wins
    assert feature_kind({"text": "hi"}) == "text"
    assert feature_kind({"image": "/a.png"}) == "image"
    assert feature_kind({"x": 1.0}) == "tabular"
    assert feature_kind({"text": 3}) == "tabular"  # not a string


def test_first_tag():
    assert first_tag({"tags": ["b", "a"]}) == "b"
    assert first_tag({"tags": "x"}) == "x"
    assert first_tag({"tags": []}) is None
    assert first_tag({"tags": ""}) is None
    assert first_tag({}) is None


def test_features_key():
    ids = np.array([1, 2, 3])
    # the same key as before the featurisers moved here: existing caches stay valid
    assert features_key("text", ids) == "7b74fb4374d736450e28"
    assert features_key("npy", ids, "/a.npy") == "82cc6cca5259c5a694a6"
    assert features_key("text", ids) == features_key("text", ids.astype(np.int32))
    assert features_key("text", ids) != features_key("text", np.array([1, 2, 4]))
    assert features_key("text", ids) != features_key("tabular", ids)
    with_kw = features_key("text", ids, keywords=["refund"])
    assert len(with_kw) == 20 and with_kw != features_key("text", ids)
    assert with_kw != features_key("text", ids, keywords=["late"])
    assert features_key("text", ids, keywords=[]) == features_key("text", ids)


def test_check_keywords():
    assert check_keywords(None) == []
    assert check_keywords("refund") == ["refund"]
    assert check_keywords(["refund", "late", "refund"]) == ["refund", "late"]
    for bad in ([1], [""], ["  "], {"refund": 1}, 3):
        with pytest.raises(LabelwiseError, match="list of non-empty strings"):
            check_keywords(bad)


# --------------------------------------------------------------------------- metadata


def test_keyword_columns_one_flag_per_keyword():
    texts = ["Refund please", "thanks for the REFUND!", "refunded, thanks"]
    cols = keyword_columns(texts, ["refund", "thanks"])
    assert list(cols) == ["keyword:refund", "keyword:thanks"]
    assert cols["keyword:refund"].tolist() == [True, True, False]  # whole words only
    assert cols["keyword:thanks"].tolist() == [False, True, True]
    assert cols["keyword:refund"].dtype == bool


def test_item_metadata():
    md = item_metadata(["a.csv", "b.csv"], ["x", None], ["hi", "hello"], ["hello"])
    assert list(md) == ["source", "tag", "length", "keyword:hello"]
    assert md["source"].tolist() == ["a.csv", "b.csv"]
    assert md["tag"].tolist() == ["x", ""]
    assert md["length"].tolist() == [2, 5] and md["length"].dtype == np.int64
    assert md["keyword:hello"].tolist() == [False, True]
    # not text: no length and no keyword flags
    assert list(item_metadata(["", ""], [None, None], None, ["hello"])) == ["source", "tag"]


def test_feature_matrix_positions():
    fm = FeatureMatrix(np.array([3, 5, 9]), np.zeros((3, 1)), "tabular")
    assert fm.n == 3
    assert fm.positions([9, 3]).tolist() == [2, 0]
    assert fm.positions([]).tolist() == []
    with pytest.raises(LabelwiseError, match=r"items \[4, 10\] have no feature row"):
        fm.positions([4, 5, 10])
    empty = FeatureMatrix(np.array([], dtype=np.int64), np.zeros((0, 1)), "tabular")
    with pytest.raises(LabelwiseError, match="no feature row"):
        empty.positions([1])
