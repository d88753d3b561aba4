"""Tests for labelwise.evaluate: hand-checked measurements and a small real evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from labelwise.errors import (
    BatchSizeError,
    LabelwiseError,
    UnknownDatasetError,
    UnknownStrategyError,
    UnreachableTargetError,
)
from labelwise.evaluate import (
    Evaluation,
    batch_redundancy,
    bootstrap_ratio_ci,
    business_case,
    class_tvd,
    curve_auc,
    efficiency_ratio,
    evaluate,
    labels_to_target,
    learning_curve,
    outlier_mask,
)

# --------------------------------------------------------------------------- hand-checked math


def test_efficiency_ratio_by_hand():
    # random needs 100 and 120 labels (mean 110), the strategy 50 and 60 (mean 55): 110 / 55
    assert efficiency_ratio([100, 120], [50, 60]) == pytest.approx(2.0)
    assert efficiency_ratio([100, math.inf], [50, 60]) == math.inf
    assert efficiency_ratio([100, 120], [50, math.inf]) == 0.0
    assert math.isnan(efficiency_ratio([math.inf], [math.inf]))


def test_bootstrap_ci_by_hand():
    # constant seeds: every replicate is 100 / 50 = 2
    assert bootstrap_ratio_ci([100, 100], [50, 50]) == pytest.approx((2.0, 2.0))
    # two seeds each: replicate means are {100, 110, 120} and {50, 55, 60}, so every ratio lies
    # in [100 / 60, 120 / 50] = [1.667, 2.4] and the interval contains the point estimate 2.0
    lo, hi = bootstrap_ratio_ci([100, 120], [50, 60], n_boot=4000, random_state=1)
    assert 100 / 60 - 1e-9 <= lo < 2.0 < hi <= 120 / 50 + 1e-9
    # seeded
    assert bootstrap_ratio_ci([100, 120], [50, 60], random_state=3) == bootstrap_ratio_ci(
        [100, 120], [50, 60], random_state=3
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(10, 1000), min_size=2, max_size=8),
    st.lists(st.floats(10, 1000), min_size=2, max_size=8),
)
def test_bootstrap_ci_is_ordered_and_within_extremes(base, strat):
    lo, hi = bootstrap_ratio_ci(base, strat, n_boot=200)
    assert lo <= hi
    assert min(base) / max(strat) - 1e-9 <= lo and hi <= max(base) / min(strat) + 1e-9


def test_labels_to_target_interpolates_by_hand():
    n, q = [20, 40, 60], [0.5, 0.7, 0.9]
    assert labels_to_target(n, q, 0.8) == pytest.approx(50.0)  # 40 + (0.8-0.7)/(0.9-0.7) * 20
    assert labels_to_target(n, q, 0.7) == pytest.approx(40.0)
    assert labels_to_target(n, q, 0.4) == 20.0  # reached at the first point
    assert labels_to_target(n, q, 0.95) == math.inf
    # the first crossing counts, even if the curve dips later
    assert labels_to_target([10, 20, 30], [0.6, 0.9, 0.7], 0.75) == pytest.approx(15.0)


def test_curve_auc_by_hand():
    # trapezoids: 10 * (0.5 + 0.7) / 2 + 10 * (0.7 + 0.9) / 2 = 6 + 8 = 14, over 20 labels
    assert curve_auc([0, 10, 20], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert curve_auc([20, 40, 80], [0.8, 0.8, 0.8]) == pytest.approx(0.8)


def test_learning_curve_t_interval_by_hand():
    c = learning_curve(np.array([[0.8, 0.9], [0.6, 0.7]]), np.array([20, 40]))
    np.testing.assert_allclose(c.mean, [0.7, 0.8])
    half = stats.t.ppf(0.975, 1) * np.std([0.8, 0.6], ddof=1) / np.sqrt(2)  # 12.706 * 0.1
    np.testing.assert_allclose(c.high - c.mean, [half, half])
    assert half == pytest.approx(1.2706, abs=1e-3)
    one = learning_curve(np.array([[0.5, 0.6]]), np.array([1, 2]))
    np.testing.assert_array_equal(one.low, one.high)


def test_class_tvd_by_hand():
    classes = np.array([0, 1])
    # picks all class 0 from a 50/50 pool: 0.5 * (|1 - 0.5| + |0 - 0.5|) = 0.5
    assert class_tvd(np.array([0, 0]), np.array([0, 1]), classes) == pytest.approx(0.5)
    assert class_tvd(np.array([0, 1]), np.array([1, 0, 1, 0]), classes) == 0.0


def test_batch_redundancy_by_hand():
    # pairs: (a, b) = 1, (a, c) = 0, (b, c) = 0 -> mean 1/3
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    assert batch_redundancy(X) == pytest.approx(1 / 3)
    assert math.isnan(batch_redundancy(X[:1]))


def test_outlier_mask_flags_far_points():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(190, 2)), rng.normal(size=(10, 2)) + 25])
    mask = outlier_mask(X, quantile=0.05)
    assert mask.sum() == 10 and mask[190:].all()


def test_business_case_by_hand():
    # random 1000 labels, strategy 400, 0.5 per label: saves 600 * 0.5 = 300; net 300 - 100 = 200
    bc = business_case(1000, 400, label_cost=0.5, setup_cost=100)
    assert bc.labels_saved == 600 and bc.money_saved == 300
    assert bc.net_saving == 200 and bc.roi == pytest.approx(2.0)
    # consensus on the strategy's side: 1.4 annotations per item -> 400 * 0.7 = 280 vs 500
    bc = business_case(1000, 400, label_cost=0.5, annotations_per_item=1.4)
    assert bc.cost_per_item == pytest.approx(0.7) and bc.money_saved == pytest.approx(220)
    assert bc.roi is None
    with pytest.raises(LabelwiseError, match="label_cost must be a non-negative number"):
        business_case(1, 1, label_cost=-1)


# ------------------------------------------------------------------------- a real evaluation


@pytest.fixture(scope="module")
def small_eval() -> Evaluation:
    return evaluate(
        "breast_cancer",
        ["margin"],
        seeds=3,
        n_rounds=5,
        initial_size=10,
        batch_size=10,
        thresholds=(0.9, 0.95),
        n_boot=500,
        label_cost=2.0,
        setup_cost=10.0,
    )


def test_evaluation_structure(small_eval):
    ev = small_eval
    assert ev.strategies == ["margin", "random"]  # baseline added, last
    assert ev.seeds == [0, 1, 2]
    assert 0.9 < ev.full_quality <= 1.0
    assert len(ev.summary) == 4  # 2 strategies x 2 thresholds
    for s in ev.strategies:
        assert ev.curves[s].values.shape == (3, 6)
        np.testing.assert_array_equal(ev.curves[s].n_labeled, [10, 20, 30, 40, 50, 60])
        assert (ev.curves[s].low <= ev.curves[s].mean + 1e-12).all()
        assert len(ev.selection[s]) == 5
        assert 0 <= ev.auc[s][0] <= 1
    row = ev.ratio("random", 0.9)
    assert row["ratio"] == pytest.approx(1.0) or row["bound"]
    bc = ev.business["margin"]
    assert bc.label_cost == 2.0 and bc.setup_cost == 10.0
    assert bc.money_saved == pytest.approx(2.0 * bc.labels_saved)
    rows = ev.points_rows()
    assert len(rows) == 2 * 3 * 6 and {"strategy", "seed", "metric_accuracy"} <= set(rows[0])
    d = ev.to_dict()
    assert set(d["runs"]) == {"margin", "random"} and len(d["runs"]["margin"]) == 3


def test_margin_beats_random_on_digits():
    # real data: margin needs fewer labels than random to reach 90% of the full-data accuracy
    ev = evaluate(
        "digits", ["margin"], seeds=4, n_rounds=6, batch_size=20, thresholds=(0.9,), n_boot=200
    )
    assert ev.ratio("margin", 0.9)["ratio"] > 1.0
    assert ev.auc["margin"][0] > ev.auc["random"][0]


def test_progress_is_called_for_every_round():
    calls = []
    evaluate(
        "breast_cancer",
        ["random"],
        seeds=2,
        n_rounds=2,
        batch_size=10,
        n_boot=50,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (6, 6) and len(calls) == 6  # 3 points x 2 seeds x 1 strategy


# ---------------------------------------------------------------------------------- bad input


def test_unknown_dataset():
    with pytest.raises(UnknownDatasetError, match="breast_cancer"):
        evaluate("nope", ["margin"], seeds=1)


def test_unknown_strategy_before_any_work():
    with pytest.raises(UnknownStrategyError, match=r"valid strategies: .*margin"):
        evaluate("breast_cancer", ["margin", "bogus"], seeds=1)


def test_unreachable_threshold():
    with pytest.raises(UnreachableTargetError, match="never reaches"):
        evaluate("breast_cancer", ["margin"], seeds=1, n_rounds=1, thresholds=(0.9, 1.2))


def test_initial_set_larger_than_pool():
    with pytest.raises(BatchSizeError, match="larger than the pool"):
        evaluate("breast_cancer", ["margin"], seeds=1, initial_size=100_000)


def test_batch_larger_than_pool():
    with pytest.raises(BatchSizeError, match="batch_size 5000 is larger"):
        evaluate("breast_cancer", ["margin"], seeds=1, batch_size=5000)


def test_bad_seeds():
    with pytest.raises(LabelwiseError, match="seeds must be at least 1"):
        evaluate("breast_cancer", ["margin"], seeds=0)
    with pytest.raises(LabelwiseError, match="distinct"):
        evaluate("breast_cancer", ["margin"], seeds=[1, 1])


# ------------------------------------------------------------------------------ peer adapters


def test_peers_are_not_registered_at_import(monkeypatch):
    import labelwise.peers as peers
    from labelwise.strategies import strategy_names

    assert not any(cls.name in strategy_names() for cls in peers.PEERS)
    monkeypatch.setattr(peers, "available_peers", lambda: dict.fromkeys(peers.PEER_PACKAGES, False))
    assert peers.register_peers() == []
    assert not any(cls.name in strategy_names() for cls in peers.PEERS)


def test_modal_adapter_matches_labelwise_margin():
    from labelwise.peers import ModalUncertainty
    from labelwise.simulate import simulate

    # modAL's margin sampling and labelwise's pick the same first batch on the same model (later
    # rounds may part on near-ties: labelwise scores in float32)
    ours = simulate("digits", "margin", n_rounds=2, batch_size=10, random_state=0)
    theirs = simulate("digits", ModalUncertainty(), n_rounds=2, batch_size=10, random_state=0)
    assert set(ours.points[1].selected) == set(theirs.points[1].selected)
    assert abs(ours.quality[-1] - theirs.quality[-1]) < 0.05


def test_skactiveml_typiclust_picks_the_centre_of_each_uncovered_cluster():
    from labelwise.peers import SkactivemlTypiClust
    from labelwise.strategies.base import Candidates

    # three tight blobs of 7 points on a line at 0, 100 and 200: a centre point and pairs at
    # +-1, +-3, +-6 around it. One labelled row sits in the first blob, so with a batch of 2
    # there are 1 + 2 = 3 clusters, one covered. Typicality with k=2 neighbours is the inverse
    # mean distance to them: centre 1/1, +-1 1/1.5, +-3 1/2.5, +-6 1/4.5, so the picks are the
    # centres of the two uncovered blobs, rows 7 and 14
    offsets = np.array([0.0, -1, 1, -3, 3, -6, 6])
    X = np.concatenate([c + offsets for c in (0.0, 100.0, 200.0)])[:, None]
    cands = Candidates(X=X, X_labeled=np.array([[0.5]]), y_labeled=np.array([0]))
    q = SkactivemlTypiClust(k=2).select(cands, 2, random_state=0)
    assert sorted(q.idx.tolist()) == [7, 14]
