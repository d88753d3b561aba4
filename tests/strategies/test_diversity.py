"""Diversity strategies: k-center greedy, k-means per cluster, cosine-capped text batches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from labelwise.errors import BatchSizeError, LabelwiseError, NotFittedError
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.diversity import (
    cluster_select,
    cosine_capped_select,
    kcenter_greedy,
    row_sq_norms,
    sq_distances,
    weighted_kmeans_select,
)
from labelwise.testing import ProbaModel

# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


def test_row_sq_norms_dense_and_sparse():
    X = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    # 9 + 16 = 25; 0; 1 + 4 = 5
    np.testing.assert_allclose(row_sq_norms(X), [25, 0, 5])
    np.testing.assert_allclose(row_sq_norms(sp.csr_matrix(X)), [25, 0, 5])


def test_sq_distances_matches_hand_values():
    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    C = np.array([[3.0, 0.0]])
    # (0-3)^2 + 0 = 9; 0 + 4^2 = 16
    np.testing.assert_allclose(sq_distances(X, C), [[9.0], [16.0]])
    np.testing.assert_allclose(sq_distances(sp.csr_matrix(X), sp.csr_matrix(C)), [[9.0], [16.0]])


# --------------------------------------------------------------------------------------------
# kcenter_greedy
# --------------------------------------------------------------------------------------------

LINE = np.array([[0.0], [1.0], [2.0], [10.0]])


def test_kcenter_with_existing_center_hand_order():
    # Centre at 0. Squared distances [0, 1, 4, 100] -> pick 10 (dist 10).
    # Then min(d to 0, d to 10): 1 -> min(1, 81) = 1, 2 -> min(4, 64) = 4 -> pick 2 (dist 2).
    # Then 1 -> min(1, 81, 1) = 1 -> pick 1 (dist 1).
    idx, dist = kcenter_greedy(LINE, 3, centers=np.array([[0.0]]), return_distances=True)
    np.testing.assert_array_equal(idx, [3, 2, 1])
    np.testing.assert_allclose(dist, [10.0, 2.0, 1.0])


def test_kcenter_without_centers_starts_at_start():
    # Start at 0 (the farthest row from it is 10, the radius it covers: 10), then 10 (dist 10),
    # then 2 (min(4, 64) = 4 -> dist 2), then 1 (dist 1).
    idx, dist = kcenter_greedy(LINE, 4, start=0, return_distances=True)
    np.testing.assert_array_equal(idx, [0, 3, 2, 1])
    np.testing.assert_allclose(dist, [10.0, 10.0, 2.0, 1.0])


def test_kcenter_random_start_is_seeded():
    X = np.random.RandomState(0).rand(50, 3)
    a = kcenter_greedy(X, 10, random_state=7)
    b = kcenter_greedy(X, 10, random_state=7)
    np.testing.assert_array_equal(a, b)
    assert np.unique(a).shape[0] == 10


def test_kcenter_sparse_equals_dense():
    X = np.random.RandomState(1).rand(30, 5) * (np.random.RandomState(2).rand(30, 5) > 0.5)
    dense = kcenter_greedy(X, 8, centers=X[:2], random_state=0)
    sparse = kcenter_greedy(sp.csr_matrix(X), 8, centers=sp.csr_matrix(X[:2]), random_state=0)
    np.testing.assert_array_equal(dense, sparse)


@settings(max_examples=40, deadline=None)
@given(
    points=arrays(
        np.int64, st.tuples(st.integers(4, 25), st.integers(1, 3)), elements=st.integers(-5, 5)
    ),
    data=st.data(),
)
def test_kcenter_never_picks_an_existing_center(points, data):
    n = points.shape[0]
    n_centers = data.draw(st.integers(1, n - 1))
    centers = points[:n_centers]
    equal_to_center = (points[:, None, :] == centers[None, :, :]).all(axis=2).any(axis=1)
    # Duplicates of a pick are at distance 0 too, so only distinct new rows are guaranteed.
    n_new = np.unique(points[~equal_to_center], axis=0).shape[0]
    assume(n_new >= 1)
    k = data.draw(st.integers(1, n_new))
    idx = kcenter_greedy(points.astype(np.float32), k, centers=centers, random_state=0)
    assert np.unique(idx).shape[0] == k
    assert not equal_to_center[idx].any()


@settings(max_examples=30, deadline=None)
@given(X=arrays(np.float64, st.tuples(st.integers(3, 20), st.just(2)), elements=st.integers(0, 9)))
def test_kcenter_picks_farthest_point_first(X):
    # With one existing centre the first pick is a row at maximal distance from it.
    c = np.zeros((1, 2))
    _, dist = kcenter_greedy(X, 1, centers=c, random_state=0, return_distances=True)
    far = np.sqrt((X**2).sum(axis=1)).max()
    np.testing.assert_allclose(dist[0], far, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# cluster_select
# --------------------------------------------------------------------------------------------


def _three_blobs():
    offsets = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    jitter = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    X = np.vstack([o + jitter for o in offsets])  # rows 0-3, 4-7, 8-11
    scores = np.array([0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.8, 0.1, 0.6, 0.7, 0.2, 0.3])
    return X, scores


def test_cluster_select_one_per_separated_cluster():
    X, scores = _three_blobs()
    # Best per blob: row 1 (0.9), row 6 (0.8), row 9 (0.7); returned best first.
    np.testing.assert_array_equal(cluster_select(X, scores, 3, random_state=0), [1, 6, 9])


def test_cluster_select_fills_when_too_few_distinct_rows():
    X = np.ones((5, 2))
    scores = np.array([0.2, 0.9, 0.5, 0.1, 0.7])
    # One non-empty cluster -> its best (row 1), then the best remaining: rows 4 and 2.
    np.testing.assert_array_equal(cluster_select(X, scores, 3, random_state=0), [1, 4, 2])


# --------------------------------------------------------------------------------------------
# weighted_kmeans_select
# --------------------------------------------------------------------------------------------

# three groups on a line; the middle row of each is nearest its unweighted centre
GROUPS = np.array([[0.0], [1.0], [2.0], [20.0], [21.0], [22.0], [40.0], [41.0], [42.0]])


def test_weighted_kmeans_nearest_to_each_centre():
    idx = weighted_kmeans_select(GROUPS, np.ones(9), 3, random_state=0)
    assert sorted(idx.tolist()) == [1, 4, 7]


def test_weights_pull_the_centre_towards_informative_rows():
    # group 1 weighted 0, 0, 1: its centre is 2.0, so row 2 (not the middle row 1) is picked;
    # group 3 weighted 1, 0, 0: centre 40.0, row 6
    w = np.array([0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=float)
    idx = weighted_kmeans_select(GROUPS, w, 3, random_state=0)
    assert sorted(idx.tolist()) == [2, 4, 6]


def test_weighted_kmeans_fills_when_too_few_distinct_rows():
    X = np.array([[0.0], [0.0], [0.0], [5.0]])
    w = np.array([0.1, 0.9, 0.5, 0.2])
    idx = weighted_kmeans_select(X, w, 3, random_state=0)
    # two distinct points give two clusters; the gap is filled by the heaviest row left
    assert np.unique(idx).shape[0] == 3 and 3 in idx.tolist()


def test_weighted_kmeans_k_at_least_n_is_weight_order():
    idx = weighted_kmeans_select(GROUPS[:3], np.array([0.2, 0.9, 0.5]), 5, random_state=0)
    np.testing.assert_array_equal(idx, [1, 2, 0])


@pytest.mark.parametrize(
    "w", [np.array([1.0, -1.0, 1.0]), np.array([1.0, np.nan, 1.0]), np.ones(2)]
)
def test_weighted_kmeans_bad_weights(w):
    with pytest.raises(LabelwiseError, match="weights"):
        weighted_kmeans_select(GROUPS[:3], w, 2)


@settings(max_examples=40, deadline=None)
@given(
    X=arrays(
        np.float64, st.tuples(st.integers(2, 30), st.integers(1, 4)), elements=st.floats(-5, 5)
    ),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_weighted_kmeans_returns_distinct_valid_rows(X, k, seed):
    w = np.random.RandomState(seed).random_sample(X.shape[0])
    idx = weighted_kmeans_select(X, w, k, random_state=seed)
    assert idx.shape == (min(k, X.shape[0]),)
    assert np.unique(idx).shape[0] == idx.shape[0]
    assert ((idx >= 0) & (idx < X.shape[0])).all()


def test_diverse_margin_is_margin_on_a_binary_model(tfidf_candidates):
    # the topics model has two classes: one boundary, so the batch is the margin ranking
    q = get_strategy("diverse_margin").select(tfidf_candidates, 4, random_state=0)
    m = get_strategy("margin").select(tfidf_candidates, 4, random_state=0)
    np.testing.assert_array_equal(q.idx, m.idx)
    np.testing.assert_allclose(q.scores, m.scores, rtol=1e-6)  # float64 here, float32 there


def test_diverse_margin_clusters_sparse_tfidf_in_a_projection():
    X = TfidfVectorizer().fit_transform(SENTENCES * 3).tocsr()
    y = np.tile(np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2, 0, 1]), 3)
    labeled = np.arange(12)
    model = LogisticRegression().fit(X[labeled], y[labeled])
    cands = Candidates(X=X, model=model, row_idx=np.arange(12, 36), X_labeled=X[labeled])
    q = get_strategy("diverse_margin", n_components=3).select(cands, 4, random_state=0)
    assert q.idx.shape == (4,) and np.unique(q.idx).shape[0] == 4
    again = get_strategy("diverse_margin", n_components=3).select(cands, 4, random_state=0)
    np.testing.assert_array_equal(q.idx, again.idx)
    # the duplicated sentences sit on one point of the projection: at most one copy is taken
    texts = [(SENTENCES * 3)[i] for i in cands.pool_positions(q.idx)]
    assert len(set(texts)) == 4


def test_diverse_margin_spreads_a_batch_that_margin_spends_on_one_confusion():
    # 3 classes. 30 near-copies of the most uncertain item sit at the origin (margin 0.01);
    # three other uncertain items (margin 0.05) sit far apart; two confident items sit next
    # to the copies. Margin takes 4 copies; diverse_margin one item of each of the 4 places.
    rng = np.random.RandomState(0)
    copies = rng.normal(0, 0.01, size=(30, 2))
    places = np.array([[0.0, 20.0], [0.0, -20.0], [20.0, 20.0], [1.0, 0.0], [-1.0, 0.0]])
    emb = np.vstack([copies, places])
    proba = np.array([[0.34, 0.33, 0.33]] * 30 + [[0.40, 0.35, 0.25]] * 3 + [[0.9, 0.05, 0.05]] * 2)
    cands = Candidates(X=proba, model=ProbaModel(3), embeddings=emb)
    m = get_strategy("margin").select(cands, 4, random_state=0)
    assert set(m.idx.tolist()) <= set(range(30))
    q = get_strategy("diverse_margin").select(cands, 4, random_state=0)
    assert {30, 31, 32} <= set(q.idx.tolist())
    assert len(set(q.idx.tolist()) & set(range(30))) == 1


@pytest.mark.parametrize(
    ("param", "value"), [("min_classes", 1), ("min_classes", True), ("n_components", 1.5)]
)
def test_diverse_margin_bad_params(param, value):
    with pytest.raises(LabelwiseError, match=param):
        get_strategy("diverse_margin", **{param: value})


def test_cluster_select_k_equals_n_is_score_order():
    X, scores = _three_blobs()
    idx = cluster_select(X, scores, X.shape[0], random_state=0)
    np.testing.assert_array_equal(np.sort(idx), np.arange(12))
    assert (np.diff(scores[idx]) <= 0).all()


# --------------------------------------------------------------------------------------------
# cosine_capped_select
# --------------------------------------------------------------------------------------------


def test_cosine_cap_skips_duplicate():
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    scores = np.array([3.0, 2.0, 1.0])
    # Row 1 has cosine 1 with row 0 -> skipped; row 2 has cosine 0 -> accepted.
    np.testing.assert_array_equal(cosine_capped_select(X, scores, 2, 0.5), [0, 2])


def test_cosine_cap_fills_with_best_remaining():
    X = np.ones((3, 2))
    scores = np.array([1.0, 3.0, 2.0])
    # All identical: only row 1 (best) is accepted; then the fill in score order: row 2.
    np.testing.assert_array_equal(cosine_capped_select(X, scores, 2, 0.5), [1, 2])


def test_cosine_cap_of_one_is_plain_top_k():
    X = np.ones((4, 2))
    scores = np.array([1.0, 4.0, 3.0, 2.0])
    np.testing.assert_array_equal(cosine_capped_select(X, scores, 3, 1.0), [1, 2, 3])


def _reference_cosine_cap(X, order, k, cap):
    """Plain loop over candidates and pairs: the definition the blocked version must match."""
    Xn = normalize(X)
    accepted = []
    for i in order:
        if all(Xn[i] @ Xn[j] <= cap for j in accepted):
            accepted.append(i)
        if len(accepted) == k:
            break
    return accepted


@settings(max_examples=60, deadline=None)
@given(
    X=arrays(
        np.float64, st.tuples(st.integers(2, 30), st.integers(2, 4)), elements=st.integers(0, 3)
    ),
    cap=st.sampled_from([0.0, 0.3, 0.5, 0.8, 0.95]),
    block_size=st.integers(1, 8),
    data=st.data(),
)
def test_cosine_cap_matches_reference_and_respects_cap(X, cap, block_size, data):
    n = X.shape[0]
    k = data.draw(st.integers(1, n))
    scores = np.arange(n, 0, -1, dtype=np.float64)  # distinct: the order is 0, 1, ..., n-1
    sims = normalize(X) @ normalize(X).T
    assume(not np.any(np.isclose(sims, cap, atol=1e-9)))  # no pair on the boundary
    idx = cosine_capped_select(X, scores, k, cap, block_size=block_size)
    expected = _reference_cosine_cap(X, np.arange(n), k, cap)
    np.testing.assert_array_equal(idx[: len(expected)], expected)
    assert np.unique(idx).shape[0] == k
    acc = np.asarray(expected)
    pair = sims[np.ix_(acc, acc)][~np.eye(acc.shape[0], dtype=bool)]
    assert (pair <= cap).all()


@settings(max_examples=30, deadline=None)
@given(n_unique=st.integers(2, 10), cap=st.floats(0.0, 0.99), data=st.data())
def test_identical_docs_never_both_chosen(n_unique, cap, data):
    X = np.eye(n_unique)
    X = np.vstack([X, X])  # every doc twice
    scores = data.draw(arrays(np.float64, 2 * n_unique, elements=st.floats(0, 1)))
    k = data.draw(st.integers(1, n_unique))
    idx = cosine_capped_select(X, scores, k, cap, random_state=0)
    assert np.unique(idx % n_unique).shape[0] == k


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def _proba_candidates():
    # A ProbaModel predicts its features, so entropy is known per row:
    # rows 0, 3, 5 are the most uncertain ([0.5, 0.5] / [0.45, 0.55] / [0.4, 0.6]).
    proba = np.array([[0.5, 0.5], [0.99, 0.01], [0.9, 0.1], [0.45, 0.55], [0.95, 0.05], [0.4, 0.6]])
    return Candidates(X=proba, model=ProbaModel(2))


@pytest.mark.parametrize(
    "name", ["kcenter", "kmeans_uncertainty", "tfidf_diverse", "diverse_margin"]
)
def test_prefilter_keeps_only_the_most_informative(name):
    q = get_strategy(name, prefilter=3).select(_proba_candidates(), 2, random_state=0)
    assert set(q.idx) <= {0, 3, 5}


def test_kcenter_uses_labelled_rows_as_centers():
    cands = Candidates(X=LINE, X_labeled=np.array([[0.0]]))
    q = get_strategy("kcenter").select(cands, 3, random_state=0)
    np.testing.assert_array_equal(q.idx, [3, 2, 1])  # as in the hand-computed case above
    np.testing.assert_allclose(q.scores, [10.0, 2.0, 1.0])


def test_kcenter_maps_row_idx_and_prefers_embeddings():
    X = np.zeros((6, 1))
    emb = np.array([[0.0], [5.0], [1.0], [9.0], [2.0], [4.0]])
    cands = Candidates(X=X, row_idx=np.array([1, 3, 5]), embeddings=emb)
    q = get_strategy("kcenter").select(cands, 3, random_state=0)
    # Candidates 0, 1, 2 sit at pool rows 1, 3, 5 with embeddings 5, 9, 4.
    assert sorted(q.idx) == [0, 1, 2]


def test_kmeans_uncertainty_one_per_cluster_on_real_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    cands = Candidates(X=X[100:], model=model)
    q = get_strategy("kmeans_uncertainty").select(cands, 20, random_state=0)
    assert np.unique(q.idx).shape[0] == 20
    # The k-means step spreads the batch: it never has more duplicate rows than the pool.
    rows = X[100:][q.idx]
    assert np.unique(rows, axis=0).shape[0] == 20


SENTENCES = [
    "The striker scored twice in the second half of the match.",
    "The striker scored twice in the second half of the match.",
    "The goalkeeper saved a penalty in extra time.",
    "Fans filled the stadium for the derby on Sunday.",
    "The coach praised the defence after the cup final.",
    "Central bank raises interest rates to curb inflation.",
    "Central bank raises interest rates to curb inflation.",
    "Shares fell sharply after the quarterly earnings report.",
    "The company announced a merger with its largest rival.",
    "Bond yields climbed as investors priced in more hikes.",
    "The midfielder signed a new contract with the club.",
    "Oil prices rose on fears of supply disruption.",
]
TOPICS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1])


@pytest.fixture(scope="module")
def tfidf_candidates():
    X = TfidfVectorizer().fit_transform(SENTENCES).tocsr()
    labeled = np.array([2, 7])
    model = LogisticRegression().fit(X[labeled], TOPICS[labeled])
    row_idx = np.setdiff1d(np.arange(X.shape[0]), labeled)
    return Candidates(X=X, model=model, row_idx=row_idx, X_labeled=X[labeled])


@pytest.mark.parametrize(
    "name", ["kcenter", "kmeans_uncertainty", "tfidf_diverse", "diverse_margin"]
)
def test_strategies_work_on_sparse_tfidf(name, tfidf_candidates):
    q = get_strategy(name).select(tfidf_candidates, 4, random_state=0)
    assert q.idx.shape == (4,) and np.unique(q.idx).shape[0] == 4
    assert np.isfinite(q.scores).all()
    again = get_strategy(name).select(tfidf_candidates, 4, random_state=0)
    np.testing.assert_array_equal(q.idx, again.idx)


def test_tfidf_diverse_never_picks_both_duplicate_sentences(tfidf_candidates):
    q = get_strategy("tfidf_diverse", max_similarity=0.5).select(
        tfidf_candidates, 6, random_state=0
    )
    texts = [SENTENCES[i] for i in tfidf_candidates.pool_positions(q.idx)]
    assert len(set(texts)) == len(texts)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["kcenter", "kmeans_uncertainty", "tfidf_diverse", "diverse_margin"]
)
def test_bad_prefilter(name):
    with pytest.raises(LabelwiseError, match="prefilter"):
        get_strategy(name, prefilter=0)


@pytest.mark.parametrize(
    "name", ["kcenter", "kmeans_uncertainty", "tfidf_diverse", "diverse_margin"]
)
def test_bad_base(name):
    with pytest.raises(LabelwiseError, match="base"):
        get_strategy(name, base="nope")


def test_base_must_be_a_score_strategy():
    with pytest.raises(LabelwiseError, match="score strategy"):
        get_strategy("kcenter", base="random")


@pytest.mark.parametrize("cap", [1.5, -2.0, "0.5", True])
def test_bad_max_similarity(cap):
    with pytest.raises(LabelwiseError, match="max_similarity"):
        get_strategy("tfidf_diverse", max_similarity=cap)


@pytest.mark.parametrize(
    "name", ["kcenter", "kmeans_uncertainty", "tfidf_diverse", "diverse_margin"]
)
def test_k_larger_than_pool(name):
    with pytest.raises(BatchSizeError):
        get_strategy(name).select(_proba_candidates(), 7)


@pytest.mark.parametrize("name", ["kmeans_uncertainty", "tfidf_diverse", "diverse_margin"])
def test_model_based_diversity_needs_a_model(name):
    with pytest.raises(NotFittedError):
        get_strategy(name).select(Candidates(X=np.eye(4)), 2)


def test_kcenter_needs_no_model():
    q = get_strategy("kcenter").select(Candidates(X=np.eye(4)), 2, random_state=0)
    assert np.unique(q.idx).shape[0] == 2


def test_kcenter_uses_labelled_embeddings_as_existing_centres():
    from labelwise.strategies import Candidates, get_strategy

    # 1-D embeddings 0, 1, 2, 10; the labelled item sits at 10, so the farthest point from the
    # existing centre is 0 (distance 10), then 2 is nearer to 10 than 0? no: after 0, distances
    # are 1 -> 1, 2 -> 2, so 2 comes next.
    emb = np.array([[0.0], [1.0], [2.0], [10.0]])
    cands = Candidates(
        X=np.zeros((4, 3)),
        row_idx=np.array([0, 1, 2]),
        embeddings=emb,
        embeddings_labeled=np.array([[10.0]]),
    )
    q = get_strategy("kcenter").select(cands, 2, random_state=0)
    assert q.idx.tolist() == [0, 2]


def test_diverse_margin_batch_is_best_first_and_the_default():
    from sklearn.datasets import load_digits

    from labelwise.strategies import DEFAULT_STRATEGY

    assert DEFAULT_STRATEGY == "diverse_margin"
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    cands = Candidates(X=X[60:], model=model)
    q = get_strategy("diverse_margin").select(cands, 20, random_state=0)
    assert np.unique(q.idx).shape[0] == 20
    assert np.all(np.diff(q.scores) <= 0)
    # every pick is among the 200 most uncertain (the prefilter), not all of them the top 20
    top = get_strategy("margin").select(cands, 200, random_state=0).idx
    assert set(q.idx.tolist()) <= set(top.tolist())
    assert set(q.idx.tolist()) != set(top[:20].tolist())
