"""labelwise.progress: learning-curve arithmetic, with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelwise.progress import (
    MajorityBaseline,
    Savings,
    active_labels_per_hour,
    fit_power_law,
    interpolate_curve,
    labels_for_accuracy,
    labels_per_hour,
    majority_baseline,
    power_law,
    projected_labels_to_target,
    random_baseline,
    savings_vs_random,
    stopping_target,
    stopping_target_metric,
    wilson_interval,
)

# points on acc(n) = 0.98 - 1/n (active) and 0.98 - 2/n (random only)
ACTIVE = [(10, 0.88), (20, 0.93), (40, 0.955)]
RANDOM = [(4, 0.48), (5, 0.58), (10, 0.78)]


def test_power_law():
    assert power_law(10, 1.0, 1.0, 1.0) == pytest.approx(0.9)  # 1 - 1/10
    assert power_law(4.0, 0.9, 0.4, 0.5) == pytest.approx(0.7)  # 0.9 - 0.4 / sqrt(4)
    np.testing.assert_allclose(power_law(np.array([1.0, 2.0]), 1, 1, 1), [0.0, 0.5])


def test_fit_power_law_recovers_exact_points():
    a, b, c = fit_power_law(*zip(*ACTIVE, strict=True))
    assert (a, b, c) == pytest.approx((0.98, 1.0, 1.0), rel=1e-3)
    assert fit_power_law(*zip(*RANDOM, strict=True)) == pytest.approx((0.98, 2.0, 1.0), rel=1e-3)


def test_fit_power_law_needs_three_distinct_positive_points():
    assert fit_power_law([10, 20], [0.5, 0.6]) is None
    assert fit_power_law([10, 10, 20], [0.5, 0.5, 0.6]) is None
    assert fit_power_law([0, 10, 20], [0.1, 0.5, 0.6]) is None  # n = 0 is dropped
    assert fit_power_law([5, 10, 20], [np.nan, 0.5, 0.6]) is None  # NaN is dropped


def test_labels_for_accuracy():
    assert labels_for_accuracy((1.0, 1.0, 1.0), 0.9) == pytest.approx(10)  # (1 / 0.1) ** 1
    assert labels_for_accuracy((1.0, 1.0, 0.5), 0.9) == pytest.approx(100)  # (1 / 0.1) ** 2
    assert labels_for_accuracy((0.8, 1.0, 1.0), 0.9) is None  # above the ceiling
    assert labels_for_accuracy((0.9, 1.0, 1.0), 0.9) is None  # at the ceiling
    assert labels_for_accuracy((0.95, 0.0, 1.0), 0.9) == 1.0  # a flat curve is there at once


def test_savings_vs_random():
    s = savings_vs_random(ACTIVE, RANDOM, label_cost=2.5)
    # random at 40 labels: 0.98 - 2/40 = 0.93; it needs 2 / (0.98 - 0.955) = 80 labels for the
    # active model's 0.955: 80 - 40 = 40 labels saved, 40 x 2.5 = 100 money saved
    assert s.random_accuracy_estimate == pytest.approx(0.93, abs=1e-4)
    assert s.labels_saved == pytest.approx(40, rel=1e-3)
    assert s.money_saved == pytest.approx(100, rel=1e-3)


def test_savings_vs_random_without_enough_points_is_unknown():
    assert savings_vs_random(ACTIVE, RANDOM[:2], 1.0) == Savings(None, None, None)
    assert savings_vs_random([], RANDOM, 1.0) == Savings(None, None, None)
    assert savings_vs_random(ACTIVE, [], 1.0) == Savings(None, None, None)


def test_savings_vs_random_when_random_never_gets_there():
    # random's ceiling is 0.98; an active model at 0.99 cannot be matched: no saving claimed
    s = savings_vs_random([(50, 0.99)], RANDOM, 1.0)
    assert s.random_accuracy_estimate == pytest.approx(0.98 - 2 / 50, abs=1e-4)
    assert (s.labels_saved, s.money_saved) == (None, None)


def test_projected_labels_to_target():
    # the active fit reaches 0.965 at 1 / (0.98 - 0.965) = 66.7 labels: ceil(26.7) = 27 more
    assert projected_labels_to_target(ACTIVE, 0.965) == math.ceil(1 / 0.015 - 40)
    assert projected_labels_to_target(ACTIVE, 0.95) == 0  # already reached
    assert projected_labels_to_target(ACTIVE, 0.99) is None  # above the fitted ceiling
    assert projected_labels_to_target(ACTIVE, None) is None
    assert projected_labels_to_target(ACTIVE[:2], 0.965) is None  # two points: no fit
    assert projected_labels_to_target([], 0.9) is None


def test_labels_per_hour():
    assert labels_per_hour({2: 3, 1: 12}, 24.0) == {1: 0.5, 2: 0.125}
    assert list(labels_per_hour({2: 3, 1: 12}, 24.0)) == [1, 2]  # sorted by annotator id
    assert labels_per_hour({}, 24.0) == {}


def test_stopping_target():
    assert stopping_target({"target": 0.9}) == 0.9
    assert stopping_target({"target": 1}) == 1.0
    assert stopping_target({"target": True}) is None  # a bool is not a target
    assert stopping_target({"all": [{"min_labels": 5}, {"target": {"target": 0.8}}]}) == 0.8
    assert stopping_target({"any": [{"plateau": None}, {"any": [{"target": 0.7}]}]}) == 0.7
    assert stopping_target({"target": {"target": 0.8, "metric": "macro_f1"}}) is None
    assert stopping_target({}) is None
    assert stopping_target(None) is None


def test_stopping_target_metric():
    assert stopping_target_metric({"target": 0.9}) == ("accuracy", 0.9)
    rule = {"any": [{"max_labels": 9}, {"target": {"metric": "macro_f1", "target": 0.6}}]}
    assert stopping_target_metric(rule) == ("macro_f1", 0.6)
    assert stopping_target_metric({"target": True}) is None
    assert stopping_target_metric(None) is None


def test_active_labels_per_hour_times_the_gaps_and_skips_breaks():
    # 0, 10, 20, 30 s: 3 timed labels in 30 s = 360/h, whatever the 24 h window says
    assert active_labels_per_hour({1: [30, 0, 20, 10]}) == {1: pytest.approx(360.0)}
    # a 3,970 s break is not labeling time: 4 timed labels in 40 s, still 360/h
    assert active_labels_per_hour({1: [0, 10, 20, 30, 4000, 4010]}) == {1: pytest.approx(360.0)}
    # one label, or only breaks: no rate to give
    assert active_labels_per_hour({1: [5.0], 2: [0.0, 1000.0]}) == {}
    assert list(active_labels_per_hour({3: [0, 60], 1: [0, 30]})) == [1, 3]  # sorted by id
    assert active_labels_per_hour({1: [0, 600]}, break_seconds=900) == {1: 6.0}


def test_wilson_interval_hand_computed():
    z2 = 1.959963984540054**2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))  # (0, 0.2775)
    lo, hi = wilson_interval(50, 100)  # 0.5 -+ z sqrt(0.25/100 + z²/40000) / (1 + z²/100)
    half = 1.959963984540054 * math.sqrt(0.25 / 100 + z2 / 40000) / (1 + z2 / 100)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(3, 0) == (0.0, 1.0)


def test_interpolate_curve_never_extrapolates():
    assert interpolate_curve([(30, 0.7), (10, 0.5)], 20) == pytest.approx(0.6)
    assert interpolate_curve([(10, 0.5), (30, 0.7)], 10) == pytest.approx(0.5)
    assert interpolate_curve([(10, 0.5), (30, 0.7)], 40) is None
    assert interpolate_curve([(10, 0.5)], 5) is None
    assert interpolate_curve([], 5) is None


def test_majority_baseline_hand_computed():
    # 3 of 4 "a": precision 0.75, recall 1 -> F1 2*0.75/1.75 = 0.857; "b" F1 0; macro 0.4286
    assert majority_baseline({"a": 3, "b": 1}) == MajorityBaseline(
        "a", 0.75, 0.75, pytest.approx(0.857142857 / 2), 0.5, 4
    )
    # the fine-food validation split: 658 great of 1,000 -> macro-F1 0.3969, as sklearn says
    mb = majority_baseline({"great": 658, "other": 342, "never": 0})
    assert (mb.label, mb.accuracy, mb.balanced_accuracy) == ("great", 0.658, 0.5)
    assert mb.macro_f1 == pytest.approx(0.396864, abs=1e-6)
    # three classes: 1/3 balanced accuracy; a tie goes to the first class by name
    assert majority_baseline({"z": 2, "y": 2, "x": 1}).label == "y"
    assert majority_baseline({"a": 1, "b": 1, "c": 1}).balanced_accuracy == pytest.approx(1 / 3)
    assert majority_baseline({}) is None


def test_majority_baseline_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    y = np.array(["a"] * 7 + ["b"] * 2 + ["c"] * 1)
    pred = np.full(10, "a")
    mb = majority_baseline({"a": 7, "b": 2, "c": 1})
    assert mb.macro_f1 == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert mb.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, pred))


def test_random_baseline_needs_labels_and_points():
    # the curve: 6 points at 2-7 random labels, all 0.342 -> not shown, one sentence
    few = [(n, 0.342) for n in range(2, 8)]
    rb = random_baseline(few, ACTIVE, 1000)
    assert not rb.ready and rb.accuracy is None and (rb.n_random, rb.n_points) == (7, 6)
    assert "needs 20 random labels and 3 measured points (now 7 random labels, 6 points)" in rb.note
    # enough labels but two points: still not shown
    assert not random_baseline([(20, 0.5), (30, 0.6)], ACTIVE, 1000).ready
    assert not random_baseline([], ACTIVE, 1000).ready


def test_random_baseline_when_ready_compares_at_equal_labels():
    rb = random_baseline([(10, 0.5), (20, 0.55), (25, 0.6)], [(10, 0.5), (30, 0.7)], 1000)
    assert rb.ready and (rb.n_random, rb.n_points, rb.n_eval) == (25, 3, 1000)
    assert rb.accuracy == 0.6
    assert (rb.ci_low, rb.ci_high) == pytest.approx(wilson_interval(600, 1000))
    assert (rb.ci_low, rb.ci_high) == pytest.approx((0.5693, 0.6299), abs=1e-4)
    assert rb.active_accuracy == pytest.approx(0.65)  # halfway between 0.5 at 10 and 0.7 at 30
    assert rb.note.startswith("At 25 labels: active learning 65.0%, random sampling 60.0% (95% CI")
    # the active curve starts later than the random point: no active number is made up
    rb = random_baseline([(10, 0.5), (20, 0.55), (25, 0.6)], [(40, 0.7)], 1000)
    assert rb.active_accuracy is None and "active learning" not in rb.note
