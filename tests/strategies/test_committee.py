"""Query-by-committee: score functions, the Committee helper, the qbc strategies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from labelwise.errors import (
    LabelwiseError,
    MissingInputError,
    NotFittedError,
)
from labelwise.models.committee import stratified_bootstrap
from labelwise.select import top_k
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.committee import (
    Committee,
    consensus_entropy,
    kl_divergence_to_consensus,
    multilabel_consensus_entropy,
    multilabel_kl_divergence_to_consensus,
    multilabel_vote_entropy,
    vote_entropy,
)


def _votes(labels, n_classes=2):
    """One sample's committee proba where member m puts 0.9 on labels[m]."""
    out = np.full((len(labels), 1, n_classes), 0.1 / (n_classes - 1))
    for m, c in enumerate(labels):
        out[m, 0, c] = 0.9
    return out


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


# --------------------------------------------------------------------------- score functions


def test_vote_entropy_three_two_split():
    # votes [0,0,0,1,1]: shares 0.6, 0.4 -> -(0.6 ln 0.6 + 0.4 ln 0.4) = 0.67301...
    expected = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert vote_entropy(_votes([0, 0, 0, 1, 1]))[0] == pytest.approx(expected)
    assert expected == pytest.approx(0.673011667, abs=1e-9)


def test_vote_entropy_unanimous_is_zero():
    assert vote_entropy(_votes([2, 2, 2, 2], n_classes=3))[0] == 0.0


def test_vote_entropy_tie_within_member_goes_to_lowest_class():
    # member 0 is split 0.5/0.5 -> votes class 0; member 1 votes class 0 -> unanimous -> 0
    cp = np.array([[[0.5, 0.5]], [[0.8, 0.2]]])
    assert vote_entropy(cp)[0] == 0.0
    # with member 1 voting class 1 the split is 1:1 -> ln 2
    cp[1, 0] = [0.2, 0.8]
    assert vote_entropy(cp)[0] == pytest.approx(math.log(2))


def test_vote_entropy_keeps_float32():
    assert vote_entropy(_votes([0, 1]).astype(np.float32)).dtype == np.float32


def test_kl_to_consensus_two_members_by_hand():
    # p1 = [1, 0], p2 = [0.5, 0.5] -> consensus q = [0.75, 0.25]
    # KL(p1||q) = ln(1/0.75) = ln(4/3)
    # KL(p2||q) = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25) = 0.5 ln(2/3) + 0.5 ln 2 = 0.5 ln(4/3)
    # mean = 0.75 ln(4/3) = 0.215761...
    cp = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    assert kl_divergence_to_consensus(cp)[0] == pytest.approx(0.75 * math.log(4 / 3))


def test_kl_to_consensus_zero_when_members_agree():
    cp = np.tile(np.array([[0.2, 0.3, 0.5]]), (4, 1, 1))
    assert kl_divergence_to_consensus(cp)[0] == pytest.approx(0.0, abs=1e-12)


def test_agreeing_members_score_exactly_zero_not_rounding_residue():
    # three identical members: the mean of equal rows is not always bitwise equal to them, and
    # the residue (up to 4e-16 here, on 123 of 1,000 rows) used to rank the pool by noise
    p = np.random.default_rng(0).dirichlet(np.ones(10), size=1000)
    assert (kl_divergence_to_consensus(np.stack([p, p, p])) == 0).all()
    # a real disagreement, even a small one, still counts
    q = p.copy()
    q[0] = np.roll(q[0], 1)
    assert kl_divergence_to_consensus(np.stack([p, p, q]))[0] > 0.01


def test_stratified_bootstrap_keeps_every_class_and_its_count():
    rng = np.random.RandomState(0)
    y = np.array([3, 1, 3, 2, 1, 3, 9])
    idx = stratified_bootstrap(y, rng)
    np.testing.assert_array_equal(y[idx], y)  # each position draws from its own class
    assert idx[-1] == 6  # a class with one row draws that row
    draws = {tuple(stratified_bootstrap(y, rng)) for _ in range(20)}
    assert len(draws) > 1  # and the resamples differ


def test_bootstrap_committee_on_few_labels_per_class_disagrees(digits):
    # 2 labels per class over 10 classes: a plain resample holding all 10 is rare, so every
    # member used to fall back to the full set and the committee agreed on everything
    X, y = digits
    rows = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(10)])
    com = Committee(_lr(), n_members=3, random_state=0).fit(X[rows], y[rows])
    assert not np.allclose(com.members_[0].coef_, com.members_[1].coef_)
    assert (kl_divergence_to_consensus(com.predict_proba_members(X[:200])) > 0).mean() > 0.9


def test_consensus_entropy_by_hand():
    # consensus [0.75, 0.25] -> -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335...
    cp = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert consensus_entropy(cp)[0] == pytest.approx(expected)


def _committee_proba(raw):
    return raw / raw.sum(axis=2, keepdims=True)


committee_arrays = st.tuples(st.integers(2, 5), st.integers(1, 6), st.integers(2, 5)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.floats(0.01, 1.0))
)


@settings(max_examples=50, deadline=None)
@given(committee_arrays)
def test_kl_to_consensus_matches_brute_force(raw):
    cp = _committee_proba(raw)
    q = cp.mean(axis=0)
    brute = (cp * np.log(cp / q)).sum(axis=2).mean(axis=0)
    np.testing.assert_allclose(kl_divergence_to_consensus(cp), brute, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(committee_arrays)
def test_scores_invariant_to_member_order(raw):
    cp = _committee_proba(raw)
    perm = cp[::-1]
    for fn in (vote_entropy, kl_divergence_to_consensus, consensus_entropy):
        np.testing.assert_allclose(fn(perm), fn(cp), atol=1e-12)


def test_multilabel_vote_entropy_averages_labels():
    # label 0: members 0.9, 0.8, 0.2, 0.5 -> positive votes 2 of 4 (0.5 votes negative) -> ln 2
    # label 1: all 0.9 -> unanimous -> 0;  mean over labels = ln 2 / 2
    cp = np.array([[0.9, 0.9], [0.8, 0.9], [0.2, 0.9], [0.5, 0.9]])[:, None, :]
    assert multilabel_vote_entropy(cp)[0] == pytest.approx(math.log(2) / 2)


def test_multilabel_kl_and_consensus_are_binary_versions_averaged():
    rng = np.random.default_rng(0)
    cp = rng.uniform(0.05, 0.95, size=(3, 4, 5))
    per_label_kl = [
        kl_divergence_to_consensus(np.stack([1 - cp[:, :, j], cp[:, :, j]], axis=2))
        for j in range(5)
    ]
    per_label_h = [
        consensus_entropy(np.stack([1 - cp[:, :, j], cp[:, :, j]], axis=2)) for j in range(5)
    ]
    np.testing.assert_allclose(
        multilabel_kl_divergence_to_consensus(cp), np.mean(per_label_kl, axis=0), atol=1e-12
    )
    np.testing.assert_allclose(
        multilabel_consensus_entropy(cp), np.mean(per_label_h, axis=0), atol=1e-12
    )


# --------------------------------------------------------------------------- Committee helper


def _lr():
    return LogisticRegression(max_iter=300)


def test_committee_bootstrap_members_differ(digits):
    X, y = digits
    com = Committee(_lr(), n_members=3, random_state=0).fit(X[:300], y[:300])
    assert len(com.members_) == 3
    np.testing.assert_array_equal(com.classes_, np.arange(10))
    assert not np.allclose(com.members_[0].coef_, com.members_[1].coef_)
    cp = com.predict_proba_members(X[300:350])
    assert cp.shape == (3, 50, 10)
    np.testing.assert_allclose(cp.sum(axis=2), 1.0, atol=1e-6)
    np.testing.assert_allclose(com.predict_proba(X[300:350]), cp.mean(axis=0))


def test_committee_bootstrap_is_reproducible(digits):
    X, y = digits
    a = Committee(_lr(), n_members=2, random_state=3).fit(X[:200], y[:200])
    b = Committee(_lr(), n_members=2, random_state=3).fit(X[:200], y[:200])
    np.testing.assert_allclose(a.predict_proba_members(X[:20]), b.predict_proba_members(X[:20]))


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")
def test_committee_bootstrap_falls_back_to_full_set_when_classes_go_missing():
    # 30 classes with one example each: a bootstrap resample almost never holds all 30
    # (probability 30!/30^30 ~ 1e-12), so every member fits the full set and they agree.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = np.arange(30)
    com = Committee(_lr(), n_members=3, random_state=0).fit(X, y)
    for member in com.members_[1:]:
        np.testing.assert_allclose(member.coef_, com.members_[0].coef_)
        np.testing.assert_array_equal(member.classes_, y)


def test_committee_seeds_sets_distinct_random_states(digits):
    X, y = digits
    tree = DecisionTreeClassifier(max_features=0.3, max_depth=6)
    com = Committee(tree, n_members=3, mode="seeds", random_state=0).fit(X[:300], y[:300])
    seeds = {m.random_state for m in com.members_}
    assert len(seeds) == 3
    cp = com.predict_proba_members(X[300:400])
    assert not np.allclose(cp[0], cp[1])


def test_committee_seeds_reaches_pipeline_steps(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_features=0.3))
    com = Committee(pipe, n_members=2, mode="seeds", random_state=1).fit(X[:200], y[:200])
    states = [m.steps[-1][1].random_state for m in com.members_]
    assert states[0] != states[1]


def test_committee_estimators_mixed_models(digits):
    X, y = digits
    ests = [_lr(), GaussianNB(), DecisionTreeClassifier(max_depth=5, random_state=0)]
    com = Committee(mode="estimators", estimators=ests).fit(X[:300], y[:300])
    kinds = [type(m) for m in com.members_]
    assert kinds == [LogisticRegression, GaussianNB, DecisionTreeClassifier]
    assert ests[0] is not com.members_[0]  # cloned, the given estimators stay unfitted
    assert not hasattr(ests[0], "coef_")
    cp = com.predict_proba_members(X[300:320])
    assert cp.shape == (3, 20, 10)


def test_members_with_different_classes_are_aligned_to_the_union(digits):
    X, y = digits
    a_mask, b_mask = np.isin(y, [0, 1, 2]), np.isin(y, [1, 2, 3])
    a = _lr().fit(X[a_mask][:150], y[a_mask][:150])
    b = _lr().fit(X[b_mask][:150], y[b_mask][:150])
    com = Committee(mode="estimators", estimators=[_lr(), _lr()]).fit(X[:100], y[:100])
    com.members_ = [a, b]  # build by hand: the alignment path is what is tested
    com.classes_ = np.array([0, 1, 2, 3])
    from labelwise.strategies.committee import _class_columns

    com._cols = _class_columns(com.members_, com.classes_)
    cp = com.predict_proba_members(X[:10])
    assert cp.shape == (2, 10, 4)
    np.testing.assert_array_equal(cp[0, :, 3], 0.0)  # a never saw class 3
    np.testing.assert_array_equal(cp[1, :, 0], 0.0)  # b never saw class 0
    np.testing.assert_allclose(cp[0, :, :3], a.predict_proba(X[:10]))
    np.testing.assert_allclose(cp[1, :, 1:], b.predict_proba(X[:10]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"estimator": LogisticRegression(), "mode": "bagging"},
        {"estimator": LogisticRegression(), "n_members": 1},
        {"estimator": None},
        {"mode": "estimators", "estimators": None},
        {"mode": "estimators", "estimators": [LogisticRegression()]},
        {"estimator": GaussianNB(), "mode": "seeds"},
    ],
    ids=["unknown-mode", "one-member", "no-estimator", "no-estimators", "one-estimator", "no-seed"],
)
def test_committee_bad_parameters(kwargs, digits):
    X, y = digits
    with pytest.raises(LabelwiseError):
        Committee(**kwargs).fit(X[:50], y[:50])


def test_committee_predict_before_fit():
    with pytest.raises(NotFittedError):
        Committee(LogisticRegression()).predict_proba_members(np.zeros((2, 3)))


# --------------------------------------------------------------------------- strategies


@pytest.fixture(scope="module")
def committee(digits):
    X, y = digits
    return Committee(_lr(), n_members=3, random_state=0).fit(X[:150], y[:150])


@pytest.mark.parametrize(
    ("name", "fn"), [("qbc_vote_entropy", vote_entropy), ("qbc_kl", kl_divergence_to_consensus)]
)
def test_qbc_picks_the_highest_disagreement(name, fn, digits, committee):
    X, _ = digits
    pool = X[150:650]
    cand = Candidates(pool, committee=committee.members_, chunk_size=128)
    q = get_strategy(name).select(cand, 10, random_state=0)
    scores = fn(committee.predict_proba_members(pool).astype(np.float32))
    assert len(set(q.idx.tolist())) == 10
    np.testing.assert_allclose(q.scores, scores[q.idx], rtol=1e-5, atol=1e-6)
    assert q.scores.min() >= np.sort(scores)[-10] - 1e-6
    # same seed, whatever the chunk size, same selection
    whole = Candidates(pool, committee=committee, chunk_size=100_000)
    q2 = get_strategy(name).select(whole, 10, random_state=0)
    np.testing.assert_array_equal(q.idx, q2.idx)
    if name == "qbc_vote_entropy":  # discrete scores: ties broken as top_k with that seed
        np.testing.assert_array_equal(q.idx, top_k(scores, 10, random_state=0))


def test_qbc_positions_respect_row_idx(digits, committee):
    X, _ = digits
    rows = np.arange(150, 650)[::-1].copy()
    cand = Candidates(X, row_idx=rows, committee=committee)
    q = get_strategy("qbc_kl").select(cand, 5, random_state=0)
    direct = kl_divergence_to_consensus(committee.predict_proba_members(X[rows]))
    np.testing.assert_allclose(q.scores, direct[q.idx], rtol=1e-4, atol=1e-6)


def test_qbc_multilabel(digits):
    X, y = digits
    Y = np.column_stack([y % 2, y > 4, y == 0]).astype(int)
    members = [
        MultiOutputClassifier(GaussianNB()).fit(X[:200], Y[:200]),
        MultiOutputClassifier(DecisionTreeClassifier(max_depth=4, random_state=0)).fit(
            X[:200], Y[:200]
        ),
    ]
    cand = Candidates(X[200:500], committee=members, task_type="multilabel")
    for name, fn in (
        ("qbc_vote_entropy", multilabel_vote_entropy),
        ("qbc_kl", multilabel_kl_divergence_to_consensus),
    ):
        q = get_strategy(name).select(cand, 8, random_state=0)
        cp = np.stack(
            [np.column_stack([p[:, 1] for p in m.predict_proba(X[200:500])]) for m in members]
        )
        np.testing.assert_allclose(q.scores, fn(cp)[q.idx], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["qbc_vote_entropy", "qbc_kl"])
def test_qbc_without_committee(name, digits):
    X, _ = digits
    with pytest.raises(MissingInputError, match="committee"):
        get_strategy(name).select(Candidates(X[:20]), 2)


def test_qbc_one_member_committee(digits, committee):
    X, _ = digits
    with pytest.raises(MissingInputError, match="at least 2"):
        get_strategy("qbc_kl").select(Candidates(X[:20], committee=committee.members_[:1]), 2)


def test_qbc_unfitted_committee(digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        get_strategy("qbc_kl").select(Candidates(X[:20], committee=Committee(_lr())), 2)


def test_qbc_unfitted_member(digits, committee):
    X, _ = digits
    members = [committee.members_[0], LogisticRegression()]
    with pytest.raises(NotFittedError):
        get_strategy("qbc_vote_entropy").select(Candidates(X[:20], committee=members), 2)


def test_qbc_supports_every_task_type():
    # nothing to reject: the multi-label variants cover multi-label tasks
    for name in ("qbc_vote_entropy", "qbc_kl"):
        strat = get_strategy(name)
        for task in ("multiclass", "binary", "multilabel"):
            strat.check_task(task)
