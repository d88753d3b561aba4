"""Combination strategies: cost weighting, information density, 70/30 mix, class balance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labelwise.errors import (
    LabelMismatchError,
    LabelwiseError,
    UnknownStrategyError,
    UnsupportedTaskError,
)
from labelwise.strategies import Candidates, EntropySampling, get_strategy
from labelwise.strategies.combine import (
    ClassBalanced,
    CostWeighted,
    InformationDensity,
    UncertaintyMix,
    allocate_batch,
    cost_weighted_scores,
    density_weighted_scores,
    expected_cost_weight,
    inverse_row_norms,
    mean_cosine_similarity,
    mean_unit_vector,
    split_batch,
)
from labelwise.strategies.scores import entropy
from labelwise.testing.strategies import ProbaModel

LN2 = math.log(2)


class LabelledProbaModel(ProbaModel):
    """ProbaModel with chosen class labels."""

    def __init__(self, labels=("a", "b", "c")):
        super().__init__(len(labels))
        self.labels = labels

    @property
    def classes_(self):
        return np.asarray(self.labels)


def proba_candidates(proba, *, classes=None, task_type="multiclass", **kw):
    proba = np.asarray(proba, dtype=np.float64)
    model = ProbaModel(proba.shape[1]) if classes is None else LabelledProbaModel(classes)
    return Candidates(X=proba, model=model, task_type=task_type, **kw)


@pytest.fixture(scope="module")
def digits():
    """Digits: a LogisticRegression fitted on 100 rows; the other 1697 are the candidates."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = LogisticRegression(max_iter=2000).fit(X[:100], y[:100])
    cand = Candidates(X=X, model=model, row_idx=np.arange(100, X.shape[0]))
    return cand, y[100:]


@pytest.fixture(scope="module")
def rare_fraud():
    """Breast cancer as a 1 % positive problem: all 357 benign (0) plus 4 malignant (1) drawn
    with a seed; one positive and 30 negatives labelled, the rest are candidates."""
    X, target = load_breast_cancer(return_X_y=True)
    y = (target == 0).astype(int)
    rng = np.random.RandomState(1)
    pos = rng.choice(np.flatnonzero(y == 1), 4, replace=False)
    order = rng.permutation(np.concatenate([np.flatnonzero(y == 0), pos]))
    X, y = X[order], y[order]
    assert y.mean() == pytest.approx(4 / 361)  # 1.1 %
    labelled = np.concatenate([np.flatnonzero(y == 1)[:1], np.flatnonzero(y == 0)[:30]])
    rows = np.setdiff1d(np.arange(y.shape[0]), labelled)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[labelled], y[labelled])
    return Candidates(X=X, model=model, row_idx=rows), y[rows]


# --------------------------------------------------------------------------------------------
# Cost weighting
# --------------------------------------------------------------------------------------------

# classes a, b, c with costs 1, 1, 10
THREE = np.array([[0.5, 0.5, 0.0], [0.8, 0.0, 0.2], [0.9, 0.1, 0.0]])


def test_cost_weighted_scores_by_hand():
    # entropies: ln 2 = 0.693147; -(0.8 ln 0.8 + 0.2 ln 0.2) = 0.178515 + 0.321888 = 0.500402;
    #            -(0.9 ln 0.9 + 0.1 ln 0.1) = 0.094825 + 0.230259 = 0.325083
    # weights (p @ costs) / max cost: (0.5 + 0.5) / 10 = 0.1; (0.8 + 2) / 10 = 0.28; 1 / 10 = 0.1
    costs = np.array([1.0, 1.0, 10.0])
    np.testing.assert_allclose(expected_cost_weight(THREE, costs), [0.1, 0.28, 0.1])
    got = cost_weighted_scores(THREE, costs, entropy(THREE))
    np.testing.assert_allclose(got, [0.0693147, 0.1401126, 0.0325083], atol=1e-6)


def test_cost_weighted_flips_ranking_toward_costly_class():
    cand = proba_candidates(THREE, classes=["a", "b", "c"])
    plain = EntropySampling().select(cand, 3, random_state=0)
    np.testing.assert_array_equal(plain.idx, [0, 1, 2])
    q = CostWeighted(class_costs={"c": 10}).select(cand, 3, random_state=0)
    np.testing.assert_array_equal(q.idx, [1, 0, 2])
    np.testing.assert_allclose(q.scores, [0.1401126, 0.0693147, 0.0325083], atol=1e-6)
    assert q.strategy == "cost_weighted"
    # the same costs as a sequence aligned with classes_
    q2 = CostWeighted(class_costs=[1, 1, 10]).select(cand, 3, random_state=0)
    np.testing.assert_array_equal(q2.idx, q.idx)


def test_cost_weighted_binary_breaks_entropy_symmetry():
    # both rows have the same entropy; weights (0.7 + 0.3*100)/100 = 0.307 vs (0.3 + 70)/100 = 0.703
    cand = proba_candidates([[0.7, 0.3], [0.3, 0.7], [0.99, 0.01]], task_type="binary")
    q = get_strategy("cost_weighted", class_costs={1: 100}).select(cand, 2, random_state=0)
    np.testing.assert_array_equal(q.idx, [1, 0])
    h = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))  # 0.610864
    np.testing.assert_allclose(q.scores, [h * 0.703, h * 0.307])


def test_cost_weighted_multilabel_per_label_costs():
    # max binary entropy is ln 2 for both rows; weights (proba @ [1, 3]) / 4:
    # (0.5 + 0.3) / 4 = 0.2 and (0.1 + 1.5) / 4 = 0.4
    cand = proba_candidates([[0.5, 0.1], [0.1, 0.5]], task_type="multilabel")
    q = CostWeighted(class_costs=[1, 3]).select(cand, 2, random_state=0)
    np.testing.assert_array_equal(q.idx, [1, 0])
    np.testing.assert_allclose(q.scores, [0.4 * LN2, 0.2 * LN2])


def test_cost_weighted_margin_base_is_shifted_non_negative():
    # margin scores -(p1 - p2) are shifted by +1: 1 - 0 = 1, 1 - 0.6 = 0.4, 1 - 0.8 = 0.2;
    # weights with costs [1, 1, 10]: 0.1, 0.28, 0.1 -> 0.1, 0.112, 0.02
    cand = proba_candidates(THREE)
    q = CostWeighted(class_costs=[1, 1, 10], base="margin").select(cand, 3, random_state=0)
    np.testing.assert_array_equal(q.idx, [1, 0, 2])
    np.testing.assert_allclose(q.scores, [0.112, 0.1, 0.02])


def test_cost_weighted_equal_costs_is_base(digits):
    cand, _ = digits
    a = CostWeighted().select(cand, 20, random_state=3)
    b = EntropySampling().select(cand, 20, random_state=3)
    np.testing.assert_array_equal(a.idx, b.idx)


def test_unknown_class_in_costs_names_the_models_classes():
    cand = proba_candidates(THREE, classes=["a", "b", "c"])
    with pytest.raises(LabelMismatchError, match=r"\['fraud'\].*\['a', 'b', 'c'\]"):
        CostWeighted(class_costs={"fraud": 10}).select(cand, 1)


def test_costs_sequence_of_wrong_length():
    cand = proba_candidates(THREE)
    with pytest.raises(LabelMismatchError, match="2 values but the model has 3 classes"):
        CostWeighted(class_costs=[1, 10]).select(cand, 1)


@pytest.mark.parametrize("costs", [{1: -1.0}, [1, -2, 3], [1, float("nan"), 1], [0, 0, 0], []])
def test_bad_cost_values(costs):
    with pytest.raises(LabelwiseError):
        CostWeighted(class_costs=costs)


def test_costs_all_zero_after_defaults():
    with pytest.raises(LabelwiseError, match="zero"):
        CostWeighted(class_costs={0: 0}, default_cost=0).select(proba_candidates([[0.5, 0.5]]), 1)


def test_bad_cost_through_registry_is_a_labelwise_error():
    with pytest.raises(LabelwiseError, match="non-negative"):
        get_strategy("cost_weighted", class_costs={"fraud": -5})


# --------------------------------------------------------------------------------------------
# Information density
# --------------------------------------------------------------------------------------------


def test_mean_cosine_similarity_by_hand():
    # cos matrix of [1,0], [0,1], [1,1]: [[1, 0, s], [0, 1, s], [s, s, 1]] with s = 1/sqrt 2;
    # row means (1 + s) / 3 = 0.569036, same, (1 + 2 s) / 3 = 0.804738
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(mean_cosine_similarity(X), [0.569036, 0.569036, 0.804738], 1e-6)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 6)),
        elements=st.floats(-10, 10, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-3),
    )
)
def test_density_identity_equals_brute_force(X):
    """mean_j cos(x_i, x_j) == x_i/|x_i| . mean_j x_j/|x_j| (exact, zero rows count as 0)."""
    brute = cosine_similarity(X).mean(axis=1)
    np.testing.assert_allclose(mean_cosine_similarity(X), brute, atol=1e-9)


def test_density_identity_sparse_and_reference_mean():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 8) * (rng.rand(30, 8) > 0.5)
    ref = rng.rand(5, 8)
    brute = cosine_similarity(X, ref).mean(axis=1)
    np.testing.assert_allclose(mean_cosine_similarity(X, mean_unit_vector(ref)), brute)
    np.testing.assert_allclose(mean_cosine_similarity(sp.csr_matrix(X)), mean_cosine_similarity(X))


def test_density_weighted_scores_by_hand():
    # ln 2 * 0.5 ** 2 = 0.173287; negative similarity is clipped to 0
    got = density_weighted_scores(np.array([LN2, LN2, 1.0]), np.array([0.5, -0.3, 1.0]), 2.0)
    np.testing.assert_allclose(got, [0.173287, 0.0, 1.0], atol=1e-6)


def test_information_density_prefers_the_dense_region():
    # equal entropy everywhere; embeddings: three at [1, 0], one outlier at [0, 1].
    # mean unit vector [0.75, 0.25]: similarity 0.75 for the three, 0.25 for the outlier;
    # scores ln 2 * 0.75 = 0.519860 and ln 2 * 0.25 = 0.173287 (beta = 1)
    proba = np.full((4, 2), 0.5)
    emb = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    cand = proba_candidates(proba, embeddings=emb)
    q = InformationDensity().select(cand, 4, random_state=0)
    assert q.idx[-1] == 0
    np.testing.assert_allclose(q.scores, [0.519860] * 3 + [0.173287], atol=1e-6)


def test_information_density_beta_zero_is_base(digits):
    cand, _ = digits
    a = InformationDensity(beta=0).select(cand, 15, random_state=1)
    b = EntropySampling().select(cand, 15, random_state=1)
    np.testing.assert_array_equal(a.idx, b.idx)


def test_information_density_chunking_and_embeddings(digits):
    cand, _ = digits
    a = InformationDensity(beta=2).select(cand, 25, random_state=0)
    small = Candidates(X=cand.X, model=cand.model, row_idx=cand.row_idx, chunk_size=64)
    b = InformationDensity(beta=2).select(small, 25, random_state=0)
    np.testing.assert_array_equal(a.idx, b.idx)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    # explicit embeddings equal to the features give the same batch
    emb = Candidates(X=cand.X, model=cand.model, row_idx=cand.row_idx, embeddings=cand.X)
    c = InformationDensity(beta=2).select(emb, 25, random_state=0)
    np.testing.assert_array_equal(c.idx, a.idx)


def test_information_density_matches_brute_force(digits):
    cand, _ = digits
    Xc = cand.take(np.arange(cand.n)).astype(np.float64)
    expected = entropy(cand.proba()) * cosine_similarity(Xc).mean(axis=1)
    q = InformationDensity().select(cand, 10, random_state=0)
    np.testing.assert_array_equal(q.idx, np.argsort(-expected)[:10])
    np.testing.assert_allclose(q.scores, np.sort(expected)[::-1][:10], rtol=1e-4)


@pytest.mark.parametrize("beta", [-1, float("inf"), "2", True])
def test_bad_beta(beta):
    with pytest.raises(LabelwiseError, match="beta"):
        InformationDensity(beta=beta)


# --------------------------------------------------------------------------------------------
# Uncertainty / representative mix
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "fraction", "expected"),
    [(10, 0.7, (7, 3)), (1, 0.7, (1, 0)), (3, 0.7, (3, 0)), (100, 0.7, (70, 30)),
     (5, 0.0, (0, 5)), (5, 1.0, (5, 0)), (4, 0.5, (2, 2))],
)  # fmt: skip
def test_split_batch(k, fraction, expected):
    # ceil(0.7 * 3) = ceil(2.1) = 3; 0.7 * 10 = 7.000000000000001 in floats must give 7
    assert split_batch(k, fraction) == expected


@given(st.integers(1, 10_000), st.floats(0, 1))
def test_split_batch_sums_to_k(k, fraction):
    n_unc, n_rep = split_batch(k, fraction)
    assert n_unc + n_rep == k and n_unc >= 0 and n_rep >= 0
    assert n_unc >= fraction * k - 1e-6


@pytest.mark.parametrize(("k", "n_unc"), [(10, 7), (1, 1)])
def test_uncertainty_mix_split_no_duplicates(digits, k, n_unc):
    cand, _ = digits
    q = UncertaintyMix().select(cand, k, random_state=0)
    assert len(q) == k and np.unique(q.idx).shape[0] == k
    top = EntropySampling().select(cand, n_unc, random_state=0)
    np.testing.assert_array_equal(q.idx[:n_unc], top.idx)
    np.testing.assert_allclose(q.scores[:n_unc], top.scores)
    # representative part: cluster shares, largest first
    rep = q.scores[n_unc:]
    assert np.all((rep > 0) & (rep <= 1)) and np.all(np.diff(rep) <= 0)


def test_uncertainty_mix_representatives_cover_the_digits(digits):
    cand, y = digits
    q = UncertaintyMix(uncertain_fraction=0.0).select(cand, 10, random_state=0)
    assert np.unique(y[q.idx]).shape[0] >= 8  # k-means centres land on 8+ of the 10 digits


def test_uncertainty_mix_sampled_pool_is_deterministic(digits):
    cand, _ = digits
    mix = UncertaintyMix(sample_size=100)  # forces the seeded-sample path (1697 candidates)
    a = mix.select(cand, 20, random_state=5)
    b = mix.select(cand, 20, random_state=5)
    np.testing.assert_array_equal(a.idx, b.idx)
    assert np.unique(a.idx).shape[0] == 20
    c = mix.select(cand, 20, random_state=6)
    assert not np.array_equal(a.idx[14:], c.idx[14:])


def test_uncertainty_mix_whole_pool():
    proba = np.array([[0.5, 0.5], [0.6, 0.4], [0.9, 0.1], [0.99, 0.01]])
    q = UncertaintyMix().select(proba_candidates(proba), 4, random_state=0)
    # ceil(2.8) = 3 uncertain (rows 0, 1, 2 by entropy), then the only row left
    np.testing.assert_array_equal(q.idx, [0, 1, 2, 3])


def test_uncertainty_mix_fraction_one_is_base(digits):
    cand, _ = digits
    a = UncertaintyMix(uncertain_fraction=1).select(cand, 12, random_state=2)
    b = EntropySampling().select(cand, 12, random_state=2)
    np.testing.assert_array_equal(a.idx, b.idx)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "0.7", True, None])
def test_bad_uncertain_fraction(fraction):
    with pytest.raises(LabelwiseError, match="uncertain_fraction"):
        get_strategy("uncertainty_mix", uncertain_fraction=fraction)


def test_bad_sample_size():
    with pytest.raises(LabelwiseError, match="sample_size"):
        UncertaintyMix(sample_size=0)


# --------------------------------------------------------------------------------------------
# Class balance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "weights", "capacity", "expected"),
    [
        # shares 10/3 = 3.33 each; group 0 has 1 -> 9 left for two groups: 4.5 + 4.5 -> 5, 4
        (10, [1, 1, 1], [1, 100, 100], [1, 5, 4]),
        # 10 * 3/5 = 6, 10 * 1/5 = 2, 2
        (10, [3, 1, 1], [100, 100, 100], [6, 2, 2]),
        # positive weights full after 2; the other 3 go to the zero-weight group
        (5, [1, 0], [2, 10], [2, 3]),
        # not enough items anywhere: everything
        (50, [1, 1], [3, 4], [3, 4]),
        # k=6, capacity [1, 5, 5]: 2, 2, 2 -> [1, 2, 2], one left, tie to the lower index
        (6, [1, 1, 1], [1, 5, 5], [1, 3, 2]),
    ],
)
def test_allocate_batch(k, weights, capacity, expected):
    got = allocate_batch(k, np.array(weights), np.array(capacity))
    np.testing.assert_array_equal(got, expected)


@given(
    st.integers(1, 200),
    st.lists(st.tuples(st.floats(0, 10), st.integers(0, 60)), min_size=1, max_size=12),
)
def test_allocate_batch_properties(k, groups):
    weights = np.array([w for w, _ in groups])
    capacity = np.array([c for _, c in groups])
    counts = allocate_batch(k, weights, capacity)
    assert counts.sum() == min(k, capacity.sum())
    assert np.all(counts >= 0) and np.all(counts <= capacity)
    if weights.sum() > 0 and np.all(capacity >= k):  # no cap binds: within 1 of the share
        share = k * weights / weights.sum()
        assert np.all(np.abs(counts - share) < 1 + 1e-9)


def test_class_balanced_picks_from_each_predicted_class(digits):
    cand, _ = digits
    proba = cand.proba()
    pred, h = proba.argmax(axis=1), entropy(proba)
    q = ClassBalanced().select(cand, 20, random_state=0)
    # 10 classes, k = 20: two from each predicted class, its two most uncertain
    np.testing.assert_array_equal(np.bincount(pred[q.idx], minlength=10), [2] * 10)
    for c in range(10):
        members = np.flatnonzero(pred == c)
        top2 = members[np.argsort(-h[members])[:2]]
        assert set(q.idx[pred[q.idx] == c]) == set(top2)
    # round-robin order: any prefix of 10 covers every class once
    assert set(pred[q.idx[:10]]) == set(range(10))
    np.testing.assert_allclose(q.scores, h[q.idx])


def test_class_balanced_short_class_gives_its_share_away():
    # predicted classes: 0 once (row 0), 1 five times, 2 five times; k = 6 -> [1, 3, 2]
    rows = [[0.6, 0.2, 0.2]]
    rows += [[0.1, 0.9 - d, d] for d in (0.05, 0.1, 0.15, 0.2, 0.25)]
    rows += [[0.1, d, 0.9 - d] for d in (0.05, 0.1, 0.15, 0.2, 0.25)]
    q = ClassBalanced().select(proba_candidates(rows), 6, random_state=0)
    # class 1 most uncertain first: d = 0.25, 0.2, 0.15 (rows 5, 4, 3); class 2: rows 10, 9
    # round robin: rank 0 of classes 0, 1, 2 by score, then rank 1, then rank 2
    assert sorted(q.idx) == [0, 3, 4, 5, 9, 10]
    assert set(q.idx[:3]) == {0, 5, 10}


def test_class_balanced_weights(digits):
    cand, _ = digits
    pred = cand.proba().argmax(axis=1)
    w = {c: 1 for c in range(10)} | {3: 11}
    q = ClassBalanced(class_weights=w).select(cand, 20, random_state=0)
    # shares 20 * 11/20 = 11 for digit 3, 20 * 1/20 = 1 for each other digit
    counts = np.bincount(pred[q.idx], minlength=10)
    assert counts[3] == 11 and np.all(np.delete(counts, 3) == 1)


def test_rare_class_gets_picks(rare_fraud):
    cand, y = rare_fraud
    pred = cand.proba().argmax(axis=1)
    n_pred_pos = int(pred.sum())
    assert 1 <= n_pred_pos < 10
    balanced = ClassBalanced().select(cand, 10, random_state=0)
    plain = EntropySampling().select(cand, 10, random_state=0)
    # half the batch (5) is offered to the predicted positives: they take all they have
    assert pred[balanced.idx].sum() == min(5, n_pred_pos)
    assert pred[balanced.idx].sum() > pred[plain.idx].sum()
    assert y[balanced.idx].sum() >= y[plain.idx].sum()
    assert y[balanced.idx].sum() >= 1


def test_class_balanced_deterministic_and_chunk_invariant(digits):
    cand, _ = digits
    a = ClassBalanced().select(cand, 30, random_state=4)
    np.testing.assert_array_equal(a.idx, ClassBalanced().select(cand, 30, random_state=4).idx)
    small = Candidates(X=cand.X, model=cand.model, row_idx=cand.row_idx, chunk_size=50)
    np.testing.assert_array_equal(a.idx, ClassBalanced().select(small, 30, random_state=4).idx)


def test_unknown_class_in_class_weights():
    with pytest.raises(LabelMismatchError, match=r"\[7\].*\[0, 1\]"):
        ClassBalanced(class_weights={7: 2}).select(proba_candidates([[0.5, 0.5]]), 1)


def test_class_balanced_rejects_multilabel():
    cand = proba_candidates([[0.5, 0.1]], task_type="multilabel")
    with pytest.raises(UnsupportedTaskError, match="class_balanced"):
        ClassBalanced().select(cand, 1)


# --------------------------------------------------------------------------------------------
# Shared: base strategy, permutation, determinism
# --------------------------------------------------------------------------------------------

COMBOS = ["cost_weighted", "information_density", "uncertainty_mix", "class_balanced"]


@pytest.mark.parametrize("name", COMBOS)
def test_unknown_base(name):
    with pytest.raises(UnknownStrategyError, match="valid strategies"):
        get_strategy(name, base="entropyy")


@pytest.mark.parametrize("name", COMBOS)
def test_base_must_score_from_proba(name):
    with pytest.raises(LabelwiseError, match="'random'"):
        get_strategy(name, base="random")


@pytest.mark.parametrize("name", COMBOS)
def test_same_seed_same_batch_and_params_kept(name, digits):
    cand, _ = digits
    s = get_strategy(name)
    a, b = s.select(cand, 12, random_state=7), s.select(cand, 12, random_state=7)
    np.testing.assert_array_equal(a.idx, b.idx)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert s.get_params()["base"] == "entropy"


@pytest.mark.parametrize("name", ["cost_weighted", "information_density", "class_balanced"])
def test_permuting_the_pool_permutes_the_selection(name, digits):
    cand, _ = digits
    perm = np.random.RandomState(0).permutation(cand.n)
    shuffled = Candidates(X=cand.X, model=cand.model, row_idx=cand.row_idx[perm])
    s = get_strategy(name, **({"class_costs": {3: 5}} if name == "cost_weighted" else {}))
    a = s.select(cand, 10, random_state=0)
    b = s.select(shuffled, 10, random_state=0)
    np.testing.assert_array_equal(perm[b.idx], a.idx)


def test_inverse_row_norms_and_mean_unit_vector_by_hand():
    # |[3, 4]| = 5 -> 0.2; zero row -> 0; unit rows of [2, 0], [0, 3]: [1, 0], [0, 1] -> mean 0.5
    np.testing.assert_allclose(inverse_row_norms(np.array([[3.0, 4.0], [0.0, 0.0]])), [0.2, 0])
    np.testing.assert_allclose(mean_unit_vector(np.array([[2.0, 0.0], [0.0, 3.0]])), [0.5, 0.5])


def test_information_density_on_a_subset_with_gaps(digits):
    # candidates every row but each third one: scored on contiguous slices with a selection;
    # must equal the same rows gathered into their own array
    cand, _ = digits
    rows = np.flatnonzero(np.arange(cand.X.shape[0]) % 3 != 0)
    sliced = Candidates(X=cand.X, model=cand.model, row_idx=rows, chunk_size=100)
    gathered = Candidates(X=cand.X[rows], model=cand.model, chunk_size=100)
    a = InformationDensity().select(sliced, 10, random_state=0)
    b = InformationDensity().select(gathered, 10, random_state=0)
    np.testing.assert_array_equal(a.idx, b.idx)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


@pytest.mark.parametrize("name", ["uncertainty_mix", "class_balanced"])
def test_margin_base_scores_are_reported_as_the_base_gives_them(name):
    # rows 0 and 1 are predicted class 0 and 1; margins -(0.6 - 0.4) = -0.2, -(0.9 - 0.1) = -0.8
    cand = proba_candidates([[0.6, 0.4], [0.1, 0.9]])
    # (uncertainty_mix: ceil(0.7 * 2) = 2 uncertain picks; class_balanced: one per class)
    q = get_strategy(name, base="margin").select(cand, 2, random_state=0)
    np.testing.assert_array_equal(q.idx, [0, 1])
    np.testing.assert_allclose(q.scores, [-0.2, -0.8])
