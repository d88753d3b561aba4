"""Tests for labelwise.simulate: the round loop over a Session, noise, consensus and latency.

The annotators and label aggregation themselves are tested in test_annotators.py.
"""

from __future__ import annotations

import numpy as np
import pytest
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
    iter_simulate,
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


def test_dawid_skene_revisions_reach_the_session(digits, monkeypatch):
    # the session must train on the labels the oracle holds now, after Dawid-Skene revised
    # earlier consensus items, not on the labels first given
    import labelwise.loop

    sessions = []

    class Recording(labelwise.loop.Session):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            sessions.append(self)

    monkeypatch.setattr(labelwise.loop, "Session", Recording)
    y_train = digits[1]
    oracle = Oracle(
        y_train,
        noise=NoiseModel(annotator_flip_rates=(0.05, 0.45, 0.45)),
        consensus=Consensus(k=3, fraction=1.0, method="dawid_skene"),
        random_state=0,
    )
    revised = []
    real_update = Recording.update_labels
    monkeypatch.setattr(
        Recording,
        "update_labels",
        lambda self, idx, labels, refit=True: (
            revised.append(len(idx)) or real_update(self, idx, labels, refit=refit)
        ),
    )
    list(iter_simulate(digits, "margin", batch_size=30, n_rounds=5, oracle=oracle, random_state=0))
    (session,) = sessions
    np.testing.assert_array_equal(session.y_labeled, oracle.current(session.labeled_idx))
    assert sum(revised) > 0  # with these rates Dawid-Skene does revise earlier labels


def test_any_random_state_kind_resolves_once_and_repeats(digits):
    runs = [
        simulate(digits, "margin", batch_size=10, n_rounds=2, random_state=rs)
        for rs in (np.random.RandomState(5), np.random.RandomState(5))
    ]
    runs += [
        simulate(digits, "margin", batch_size=10, n_rounds=2, random_state=rs)
        for rs in (np.random.default_rng(5), np.random.default_rng(5))
    ]
    for a, b in (runs[:2], runs[2:]):
        np.testing.assert_array_equal(a.points[-1].selected, b.points[-1].selected)


def test_cold_start_strategy_picks_round_zero(digits):
    res = simulate(
        digits, "margin", batch_size=10, n_rounds=1, random_state=0, cold_start="kcenter"
    )
    assert res.config["cold_start"] == "kcenter"
    rand = simulate(digits, "margin", batch_size=10, n_rounds=1, random_state=0)
    assert not np.array_equal(res.points[0].selected, rand.points[0].selected)


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


def test_bad_metric(digits):
    with pytest.raises(LabelwiseError, match="needs a binary data set"):
        simulate(digits, "random", metric="pr_auc")
