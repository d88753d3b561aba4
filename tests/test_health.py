"""Strategy health signals: hand-checked values, and the simulator reports them per round."""

from __future__ import annotations

import math

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from labelwise.health import (
    batch_accuracy,
    behind_random,
    class_balance_tvd,
    prediction_agreement,
)
from labelwise.simulate import iter_simulate


def test_prediction_agreement_by_hand():
    assert prediction_agreement(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])) == 0.75
    assert prediction_agreement(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 0]])) == 0.5
    assert math.isnan(prediction_agreement(np.array([]), np.array([])))


def test_batch_accuracy_by_hand():
    assert batch_accuracy(np.array([0, 1, 1]), np.array([0, 0, 1])) == 2 / 3
    assert math.isnan(batch_accuracy(np.array([]), np.array([])))


def test_class_balance_tvd_by_hand():
    assert class_balance_tvd(np.array(["a", "a"]), np.array(["a", "b"]), ["a", "b"]) == 0.5
    assert class_balance_tvd(np.array([0, 1]), np.array([1, 0, 0, 1]), [0, 1]) == 0.0
    assert math.isnan(class_balance_tvd(np.array([]), np.array([0]), [0, 1]))


def test_behind_random_only_beyond_noise():
    behind = behind_random([0.80, 0.82, 0.81], [0.85, 0.86, 0.84])
    assert behind.behind and behind.high < 0 and behind.difference < 0
    tie = behind_random([0.80, 0.86, 0.83], [0.83, 0.82, 0.84])
    assert not tie.behind and tie.low < 0 < tie.high


def test_simulator_reports_health_per_round():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    points = list(
        iter_simulate(
            (X[:300], y[:300], X[300:500], y[300:500]), "adaptive",
            model=LogisticRegression(max_iter=300), initial_size=20, batch_size=10, n_rounds=3,
            random_state=0, strategy_params={"portfolio": ["margin", "random"]},
        )
    )  # fmt: skip
    first, later = points[0], points[1:]
    assert math.isnan(first.batch_accuracy) and math.isnan(first.agreement)
    for p in later:
        assert 0 <= p.agreement <= 1 and 0 <= p.batch_accuracy <= 1 and 0 <= p.batch_class_tvd <= 1
        assert p.arm in {"margin", "random"}
    assert first.arm == ""
    assert "agreement" in later[0].to_dict()
