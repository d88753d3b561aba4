"""Tests for labelwise.simulate: the round loop, the noisy oracle, consensus and latency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from labelwise.errors import (
    BatchSizeError,
    LabelwiseError,
    UnknownDatasetError,
    UnknownStrategyError,
)
from labelwise.simulate import (
    Consensus,
    NoiseModel,
    Oracle,
    RoundPoint,
    dawid_skene,
    iter_simulate,
    majority_vote,
    simulate,
)
from labelwise.stopping import LabelBudget, Plateau


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.25, stratify=y, random_state=0
    )
    return X_tr, y_tr, X_te, y_te


# ------------------------------------------------------------------------------ the round loop


def test_one_point_per_round_and_labels_grow_by_batch(digits):
    points = list(
        iter_simulate(digits, "margin", initial_size=20, batch_size=15, n_rounds=4, random_state=0)
    )
    assert [p.round for p in points] == [0, 1, 2, 3, 4]
    assert [p.n_labeled for p in points] == [20, 35, 50, 65, 80]
    assert all(isinstance(p, RoundPoint) for p in points)
    picked = np.concatenate([p.selected for p in points])
    assert np.unique(picked).size == 80  # nothing labeled twice
    assert all(0.0 <= p.quality <= 1.0 for p in points)
    assert set(points[-1].metrics) >= {"accuracy", "macro_f1"}
    assert points[-1].quality == points[-1].metrics["accuracy"]
    assert all(p.n_noisy == 0 and p.n_annotations == len(p.selected) for p in points)
    assert np.isnan(points[0].informativeness)
    # margin picks items more uncertain than the pool's average
    assert np.mean([p.informativeness for p in points[1:]]) > np.mean(
        [p.pool_informativeness for p in points[1:]]
    )


def test_same_seed_same_curve(digits):
    a = simulate(digits, "entropy", batch_size=10, n_rounds=3, random_state=7)
    b = simulate(digits, "entropy", batch_size=10, n_rounds=3, random_state=7)
    np.testing.assert_array_equal(a.quality, b.quality)
    for pa, pb in zip(a.points, b.points, strict=True):
        np.testing.assert_array_equal(pa.selected, pb.selected)


def test_label_budget_caps_rounds_and_last_batch_is_smaller(digits):
    X_tr, y_tr, X_te, y_te = digits
    small = (X_tr[:60], y_tr[:60], X_te, y_te)
    res = simulate(small, "random", initial_size=20, batch_size=15, label_budget=1000)
    # 60 - 20 = 40 left: batches of 15, 15, 10
    assert res.n_labeled.tolist() == [20, 35, 50, 60]
    res = simulate(digits, "random", initial_size=20, batch_size=10, label_budget=45)
    assert res.n_labeled.tolist() == [20, 30, 40, 50]  # ceil(25 / 10) = 3 rounds


def test_binary_data_reports_pr_auc(digits):
    X_tr, y_tr, X_te, y_te = digits
    data = (X_tr, (y_tr == 3).astype(int), X_te, (y_te == 3).astype(int))
    res = simulate(data, "margin", batch_size=10, n_rounds=2, random_state=0, metric="pr_auc")
    last = res.points[-1]
    assert {"pr_auc", "recall_at_precision"} <= set(last.metrics)
    assert last.quality == last.metrics["pr_auc"]


def test_committee_strategy_runs(digits):
    res = simulate(digits, "qbc_vote_entropy", batch_size=10, n_rounds=2, random_state=0)
    assert res.n_labeled.tolist() == [20, 30, 40]


def test_stopping_is_recorded_and_simulation_goes_on(digits):
    res = simulate(
        digits,
        "margin",
        batch_size=20,
        n_rounds=4,
        random_state=0,
        stopping={"budget": LabelBudget(60), "plateau": Plateau(epsilon=1.0, patience=1)},
    )
    assert len(res.points) == 5  # never stops early
    stops = res.stop_points()
    assert stops["budget"].n_labeled == 60  # 20 + 2 * 20
    # plateau with epsilon 1.0 fires as soon as it has patience + 1 = 2 values: round 1
    assert stops["plateau"].round == 1
    assert all(name in ("budget", "plateau") for p in res.points for name, _ in p.stops)


# ------------------------------------------------------------------- noise, consensus, latency


def _mean_quality(digits, seeds=3, **kw):
    runs = [
        simulate(digits, "margin", batch_size=30, n_rounds=6, random_state=s, **kw)
        for s in range(seeds)
    ]
    return float(np.mean([r.quality[1:].mean() for r in runs])), runs


def test_noise_lowers_the_curve_and_consensus_raises_it_back(digits):
    clean, _ = _mean_quality(digits)
    noisy, noisy_runs = _mean_quality(digits, noise=NoiseModel(flip_rate=0.3))
    fixed, fixed_runs = _mean_quality(
        digits, noise=NoiseModel(flip_rate=0.3), consensus=Consensus(k=3, fraction=1.0)
    )
    assert noisy < clean - 0.05
    assert fixed > noisy + 0.02
    # about 30% of the labels are wrong without consensus; majority of 3 cuts that
    wrong = np.mean([r.points[-1].n_noisy_total / r.points[-1].n_labeled for r in noisy_runs])
    wrong_fixed = np.mean([r.points[-1].n_noisy_total / r.points[-1].n_labeled for r in fixed_runs])
    assert 0.2 < wrong < 0.4
    assert wrong_fixed < wrong - 0.05
    # consensus costs: 3 annotations per item of every batch after round 0
    p = fixed_runs[0].points[1]
    assert p.n_consensus_items == 30 and p.n_annotations == 90
    assert fixed_runs[0].points[0].n_annotations == 20  # no consensus on the random initial set


def test_latency_changes_the_selections(digits):
    fresh = simulate(digits, "margin", batch_size=10, n_rounds=4, random_state=3)
    stale = simulate(digits, "margin", batch_size=10, n_rounds=4, random_state=3, latency_rounds=2)
    # round 1 is selected by the round-0 model in both runs
    np.testing.assert_array_equal(fresh.points[1].selected, stale.points[1].selected)
    assert [p.stale_rounds for p in stale.points] == [0, 0, 1, 2, 2]
    assert any(
        not np.array_equal(a.selected, b.selected)
        for a, b in zip(fresh.points[2:], stale.points[2:], strict=True)
    )


def test_oracle_flip_rates():
    y = np.array([0, 1] * 50)
    assert (Oracle(y).label(np.arange(100)).labels == y).all()
    always = Oracle(y, noise=NoiseModel(flip_rate=1.0), random_state=0)
    assert (always.label(np.arange(100)).labels == 1 - y).all()  # binary: flip = the other one
    # class-dependent: only class 1 is ever mislabeled
    by_class = Oracle(y, noise=NoiseModel(class_flip_rates={1: 1.0}), random_state=0)
    labels = by_class.label(np.arange(100)).labels
    assert (labels[y == 0] == 0).all() and (labels[y == 1] == 0).all()
    # annotator rates combine with class rates: 1 - (1 - 0.5) * (1 - 0.5) = 0.75
    rates = NoiseModel(annotator_flip_rates=(0.5,), class_flip_rates={0: 0.5}).rates(
        1, np.array([0, 1])
    )
    np.testing.assert_allclose(rates, [[0.75, 0.5]])


def test_oracle_flip_rate_is_about_right_and_seeded():
    y = np.arange(5000) % 10
    a = Oracle(y, noise=NoiseModel(flip_rate=0.3), random_state=1).label(np.arange(5000))
    b = Oracle(y, noise=NoiseModel(flip_rate=0.3), random_state=1).label(np.arange(5000))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert abs(np.mean(a.labels != y) - 0.3) < 0.03


def test_majority_vote_by_hand():
    votes = np.array([[0, 0, 1], [2, 1, 1], [1, -1, -1]])
    np.testing.assert_array_equal(majority_vote(votes, 3, random_state=0), [0, 1, 1])


def test_dawid_skene_beats_majority_with_one_reliable_annotator():
    # 300 binary items; annotator 0 is right 95% of the time, annotators 1 and 2 only 60%
    # (independently). Majority is right when at least two are:
    # 0.95 * (1 - 0.4 * 0.4) + 0.05 * (0.6 * 0.6) = 0.798 + 0.018 = 0.816.
    # Dawid-Skene learns the reliabilities and follows annotator 0, whose log-odds
    # ln(0.95 / 0.05) = 2.94 outweigh two poor ones (2 * ln(0.6 / 0.4) = 0.81): about 0.95.
    rng = np.random.RandomState(0)
    truth = rng.randint(2, size=300)
    right = rng.random_sample((300, 3)) < np.array([0.95, 0.6, 0.6])
    votes = np.where(right, truth[:, None], 1 - truth[:, None])
    majority = majority_vote(votes, 2, random_state=0)
    assert np.mean(majority == truth) == pytest.approx(0.816, abs=0.04)
    posterior, confusion, priors = dawid_skene(votes, 2)
    ds = np.mean(posterior.argmax(axis=1) == truth)
    assert ds >= 0.92 and ds > np.mean(majority == truth) + 0.1
    accuracy = confusion[:, [0, 1], [0, 1]].mean(axis=1)  # mean diagonal per annotator
    assert accuracy.argmax() == 0 and accuracy[0] > 0.8 and (accuracy[1:] < 0.75).all()
    np.testing.assert_allclose(priors, np.bincount(truth) / 300, atol=0.08)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_dawid_skene_returns_distributions(seed):
    rng = np.random.RandomState(seed)
    votes = rng.randint(-1, 3, size=(12, 4))
    votes[:, 0] = rng.randint(0, 3, size=12)  # every item has at least one vote
    posterior, confusion, priors = dawid_skene(votes, 3)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(confusion.sum(axis=2), 1.0)
    np.testing.assert_allclose(priors.sum(), 1.0)


def test_dawid_skene_consensus_in_the_oracle_beats_majority():
    # annotator 0 errs 5% of the time, annotators 1 and 2 40%: majority of three is wrong on
    # about 1 - (0.95 * (1 - 0.4**2) + 0.05 * 0.6**2) ~ 0.18 of the items (a bit less: two
    # wrong votes need not agree among 3 classes); Dawid-Skene finds annotator 0 and follows it.
    y = np.arange(600) % 3
    wrong = {}
    for method in ("majority", "dawid_skene"):
        oracle = Oracle(
            y,
            noise=NoiseModel(annotator_flip_rates=(0.05, 0.4, 0.4)),
            consensus=Consensus(k=3, fraction=1.0, method=method),
            random_state=0,
        )
        out = oracle.label(np.arange(600))
        assert out.n_annotations == 1800 and out.n_consensus_items == 600
        wrong[method] = oracle.n_wrong(np.arange(600)) / 600
    assert 0.1 < wrong["majority"] < 0.22
    assert wrong["dawid_skene"] < wrong["majority"] - 0.05


# ----------------------------------------------------------------------------------- bad input


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownDatasetError, match="digits"):
        simulate("no_such_set", "random")


def test_unknown_strategy_lists_valid_names(digits):
    with pytest.raises(UnknownStrategyError, match="margin"):
        simulate(digits, "no_such_strategy")


def test_initial_set_larger_than_pool(digits):
    X_tr, y_tr, X_te, y_te = digits
    with pytest.raises(BatchSizeError, match="initial_size 50 is larger than the pool of 30"):
        simulate((X_tr[:30], y_tr[:30], X_te, y_te), "random", initial_size=50)


def test_batch_larger_than_pool(digits):
    X_tr, y_tr, X_te, y_te = digits
    with pytest.raises(BatchSizeError, match="batch_size 50 is larger than the 10 items"):
        simulate((X_tr[:30], y_tr[:30], X_te, y_te), "random", batch_size=50)


def test_non_positive_batch(digits):
    with pytest.raises(BatchSizeError, match="batch_size must be an integer >= 1"):
        simulate(digits, "random", batch_size=0)


def test_rounds_and_budget_together(digits):
    with pytest.raises(LabelwiseError, match="not both"):
        simulate(digits, "random", n_rounds=2, label_budget=100)


def test_bad_noise_and_consensus():
    with pytest.raises(LabelwiseError, match=r"flip_rate must be a probability in \[0, 1\]"):
        NoiseModel(flip_rate=1.5)
    with pytest.raises(LabelwiseError, match="unknown consensus method"):
        Consensus(method="vote")
    with pytest.raises(LabelwiseError, match="k must be an integer >= 2"):
        Consensus(k=1)
    with pytest.raises(LabelwiseError, match="needs 3 distinct annotators"):
        Oracle([0, 1], annotators=2, consensus=Consensus(k=3))
    with pytest.raises(LabelwiseError, match="not in the data"):
        Oracle([0, 1], noise=NoiseModel(class_flip_rates={7: 0.1}))


def test_bad_metric(digits):
    with pytest.raises(LabelwiseError, match="needs a binary data set"):
        simulate(digits, "random", metric="pr_auc")
