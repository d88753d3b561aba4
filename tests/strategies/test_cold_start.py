"""Cold start: stratified by metadata, representative from embedding clusters, text helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.errors import BatchSizeError, LabelwiseError, MissingInputError
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.cold_start import (
    allocate,
    keyword_flags,
    length_buckets,
    nearest_to_centroids,
    quantile_bins,
    strata,
    stratified_sample,
)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def test_quantile_bins_hand_values():
    # Median of [1, 2, 3, 4] is 2.5: 1, 2 below -> bucket 0; 3, 4 above -> bucket 1.
    np.testing.assert_array_equal(quantile_bins([1, 2, 3, 4], 2), [0, 0, 1, 1])
    # NaN gets its own bucket n_bins.
    np.testing.assert_array_equal(quantile_bins([1.0, np.nan, 4.0], 2), [0, 2, 1])


def test_length_buckets():
    # Lengths 1, 2, 3, 4 -> median 2.5.
    codes = length_buckets(["a", "bb", "ccc", "dddd"], n_bins=2)
    np.testing.assert_array_equal(codes, [0, 0, 1, 1])


def test_keyword_flags_whole_word_case_insensitive():
    texts = ["Refund please", "thanks a lot", "refunded already", "I want a REFUND."]
    np.testing.assert_array_equal(keyword_flags(texts, ["refund"]), [True, False, False, True])
    np.testing.assert_array_equal(
        keyword_flags(texts, ["thanks", "refund"]), [True, True, False, True]
    )


def test_keyword_flags_needs_a_keyword():
    with pytest.raises(LabelwiseError, match="keyword"):
        keyword_flags(["a"], [])


def test_strata_combines_columns():
    source = np.array(["web", "mail", "web", "web"])
    flag = np.array([True, True, False, True])
    stratum, sizes = strata([source, flag])
    # (web, True) x2, (mail, True), (web, False): three strata.
    assert sizes.sum() == 4 and sorted(sizes) == [1, 1, 2]
    assert stratum[0] == stratum[3] and len({stratum[0], stratum[1], stratum[2]}) == 3


# --------------------------------------------------------------------------------------------
# allocate
# --------------------------------------------------------------------------------------------


def test_allocate_proportional():
    # Quotas 10 * [50, 30, 20] / 100 = [5, 3, 2], all whole.
    np.testing.assert_array_equal(allocate([50, 30, 20], 10), [5, 3, 2])


def test_allocate_largest_remainder():
    # Quotas 7 * [50, 30, 20] / 100 = [3.5, 2.1, 1.4]: floors [3, 2, 1] (6), the leftover
    # item goes to the largest fraction (0.5) -> [4, 2, 1].
    np.testing.assert_array_equal(allocate([50, 30, 20], 7), [4, 2, 1])


def test_allocate_at_least_one_per_stratum():
    # Quotas 10 * [90, 9, 1] / 100 = [9, 0.9, 0.1]: the two small strata get 1 each, the
    # remaining 8 go to the first stratum -> [8, 1, 1].
    np.testing.assert_array_equal(allocate([90, 9, 1], 10), [8, 1, 1])


def test_allocate_fewer_items_than_strata_prefers_large_strata():
    np.testing.assert_array_equal(allocate([5, 1, 3], 2), [1, 0, 1])


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), min_size=1, max_size=12), data=st.data())
def test_allocate_invariants(sizes, data):
    k = data.draw(st.integers(1, sum(sizes)))
    alloc = allocate(sizes, k, random_state=0)
    assert alloc.sum() == k
    assert (alloc <= np.asarray(sizes)).all()
    assert (alloc >= 0).all()
    if k >= len(sizes):
        assert (alloc >= 1).all()


def test_stratified_sample_round_robin_order():
    stratum = np.array([0] * 6 + [1] * 3 + [2] * 1)
    idx, rank = stratified_sample(stratum, 5, random_state=0)
    # Quotas 5 * [6, 3, 1] / 10 = [3, 1.5, 0.5] -> stratum 2 fixed at 1; the other 4 split
    # 4 * [6, 3] / 9 = [2.67, 1.33] -> [2, 1] + the leftover to 0.67 -> [3, 1, 1].
    np.testing.assert_array_equal(np.bincount(stratum[idx], minlength=3), [3, 1, 1])
    # Round robin: every stratum's first pick comes before any second pick.
    np.testing.assert_array_equal(rank, [0, 0, 0, 1, 2])


# --------------------------------------------------------------------------------------------
# Stratified strategy
# --------------------------------------------------------------------------------------------


def _source_candidates(sizes=(50, 30, 20), **kwargs):
    source = np.repeat(np.array(["web", "mail", "phone"]), sizes)
    source = np.random.RandomState(0).permutation(source)
    X = np.zeros((source.shape[0], 2), dtype=np.float32)
    return Candidates(X=X, metadata={"source": source}, **kwargs), source


def test_stratified_proportional_counts():
    cands, source = _source_candidates()
    q = get_strategy("stratified").select(cands, 10, random_state=0)
    picked = source[q.idx]
    assert [(picked == s).sum() for s in ("web", "mail", "phone")] == [5, 3, 2]


def test_stratified_every_source_represented():
    cands, source = _source_candidates(sizes=(80, 15, 5))
    q = get_strategy("stratified").select(cands, 3, random_state=1)
    assert set(source[q.idx]) == {"web", "mail", "phone"}


def test_stratified_numeric_key_uses_quantile_buckets():
    length = np.arange(100, dtype=np.float64)  # 100 distinct values -> 4 quartile buckets
    cands = Candidates(X=np.zeros((100, 1)), metadata={"length": length})
    q = get_strategy("stratified", n_bins=4).select(cands, 4, random_state=0)
    np.testing.assert_array_equal(np.sort(q.idx // 25), [0, 1, 2, 3])


def test_stratified_maps_metadata_through_row_idx():
    # metadata is aligned with pool rows; candidates are the odd rows only.
    n = 40
    source = np.where(np.arange(n) % 4 == 1, "a", "b")  # odd rows: 1, 5, 9, ... are "a"
    row_idx = np.arange(1, n, 2)
    cands = Candidates(X=np.zeros((n, 1)), row_idx=row_idx, metadata={"source": source})
    q = get_strategy("stratified").select(cands, 4, random_state=0)
    picked = source[cands.pool_positions(q.idx)]
    assert sorted(picked) == ["a", "a", "b", "b"]  # 10 "a" and 10 "b" candidates -> 2 + 2


def test_stratified_by_selects_keys():
    cands, source = _source_candidates()
    noise = np.arange(source.shape[0]) % 7
    cands.metadata = {"source": source, "noise": noise}
    q = get_strategy("stratified", by=["source"]).select(cands, 10, random_state=0)
    assert [(source[q.idx] == s).sum() for s in ("web", "mail", "phone")] == [5, 3, 2]


def test_stratified_is_deterministic():
    cands, _ = _source_candidates()
    a = get_strategy("stratified").select(cands, 10, random_state=3)
    b = get_strategy("stratified").select(cands, 10, random_state=3)
    np.testing.assert_array_equal(a.idx, b.idx)


def test_stratified_missing_metadata():
    with pytest.raises(MissingInputError, match="metadata"):
        get_strategy("stratified").select(Candidates(X=np.zeros((5, 1))), 2)


def test_stratified_unknown_key():
    cands, _ = _source_candidates()
    with pytest.raises(MissingInputError, match="available keys"):
        get_strategy("stratified", by=["language"]).select(cands, 2)


def test_stratified_metadata_of_wrong_length():
    cands = Candidates(X=np.zeros((5, 1)), metadata={"source": np.array(["a", "b"])})
    with pytest.raises(LabelwiseError, match="one value per pool row"):
        get_strategy("stratified").select(cands, 2)


def test_stratified_k_larger_than_pool():
    cands, _ = _source_candidates()
    with pytest.raises(BatchSizeError):
        get_strategy("stratified").select(cands, 101)


@pytest.mark.parametrize("params", [{"n_bins": 0}, {"by": []}, {"by": [3]}])
def test_stratified_bad_params(params):
    with pytest.raises(LabelwiseError):
        get_strategy("stratified", **params)


# --------------------------------------------------------------------------------------------
# Representative
# --------------------------------------------------------------------------------------------


def test_nearest_to_centroids_hand_values():
    X = np.array([[0.0], [1.0], [9.0], [10.0]])
    C = np.array([[0.4], [9.8]])
    # Members of 0.4: rows 0 (d 0.4), 1 (d 0.6) -> row 0. Members of 9.8: rows 2 (0.8), 3 (0.2).
    for chunk in (None, 1, 3):
        idx, counts = nearest_to_centroids(X, C, chunk_size=chunk)
        np.testing.assert_array_equal(idx, [0, 3])
        np.testing.assert_array_equal(counts, [2, 2])


def _blobs():
    cross = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # Three crosses; each centroid is the cross's centre row. Sizes 5, 5 + 1 extra pair, 5.
    right, up = np.array([100.0, 0.0]), np.array([0.0, 100.0])
    big = np.vstack([cross + right, [[100.0, 2.0], [100.0, -2.0]]])
    return np.vstack([cross, big, cross + up])  # centres at rows 0, 5, 12


def test_representative_picks_cluster_centres():
    X = _blobs()
    q = get_strategy("representative").select(Candidates(X=X), 3, random_state=0)
    # Largest cluster (7 of 17 rows) first, then the two of 5 (tie broken by the seed).
    assert q.idx[0] == 5
    assert sorted(q.idx[1:]) == [0, 12]
    np.testing.assert_allclose(q.scores, [7 / 17, 5 / 17, 5 / 17])


def test_representative_uses_embeddings_when_given():
    emb = _blobs()
    X = np.zeros_like(emb)  # the features carry no structure
    q = get_strategy("representative").select(Candidates(X=X, embeddings=emb), 3, random_state=0)
    assert sorted(q.idx) == [0, 5, 12]


def test_representative_on_a_sample_is_deterministic_and_covers_clusters():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    X = np.vstack([c + rng.randn(200, 2) for c in centres]).astype(np.float32)
    s = get_strategy("representative", sample_size=100)
    a = s.select(Candidates(X=X, chunk_size=64), 4, random_state=5)
    b = s.select(Candidates(X=X, chunk_size=64), 4, random_state=5)
    np.testing.assert_array_equal(a.idx, b.idx)
    assert sorted(a.idx // 200) == [0, 1, 2, 3]  # one pick per blob


def test_representative_fills_when_rows_repeat():
    X = np.vstack([np.zeros((4, 2)), np.ones((4, 2))])  # two distinct rows, k = 4
    q = get_strategy("representative").select(Candidates(X=X), 4, random_state=0)
    assert np.unique(q.idx).shape[0] == 4
    assert {0, 1} == set(q.idx[:2] // 4)  # one representative of each distinct row first
    np.testing.assert_array_equal(q.scores[2:], [0.0, 0.0])


@pytest.mark.parametrize("params", [{"sample_size": 0}, {"max_iter": -1}, {"sample_size": 1.5}])
def test_representative_bad_params(params):
    with pytest.raises(LabelwiseError):
        get_strategy("representative", **params)


def test_representative_k_larger_than_pool():
    with pytest.raises(BatchSizeError):
        get_strategy("representative").select(Candidates(X=np.zeros((3, 2))), 4)
