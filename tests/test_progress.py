"""labelwise.progress: learning-curve arithmetic, with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelwise.progress import (
    Savings,
    fit_power_law,
    labels_for_accuracy,
    labels_per_hour,
    power_law,
    projected_labels_to_target,
    savings_vs_random,
    stopping_target,
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
