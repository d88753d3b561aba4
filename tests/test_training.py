"""The fit policy (labelwise.models.training): hand-checked metrics, columns and positives."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from labelwise.models.training import (
    align_columns,
    default_positive_label,
    evaluation_metrics,
    train_and_evaluate,
)


def test_positive_class_defaults_to_the_rarer_one_not_the_last():
    classes = np.array(["bad", "good"], dtype=object)
    y = np.array(["good"] * 8 + ["bad"] * 2, dtype=object)
    assert default_positive_label(y, classes) == "bad"
    # a model that ranks the two bad rows first: PR-AUC of "bad" is 1; of "good" it would be
    # high too but for the wrong reason, so check with a model that is wrong about "bad"
    p_bad = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.95, 0.1])
    proba = np.column_stack([p_bad, 1 - p_bad])
    m = evaluation_metrics(y, proba, classes)
    # ranking by P(bad): 0.95 (bad), 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1 (bad)
    # AP = mean precision at the two positives = (1/1 + 2/10) / 2 = 0.6
    assert abs(m["pr_auc"] - 0.6) < 1e-12
    assert abs(evaluation_metrics(y, proba, classes, positive_label="good")["pr_auc"] - 0.6) > 0.1


def test_align_columns_puts_a_subset_model_under_the_task_classes():
    out = align_columns(np.array([[0.3, 0.7]]), np.array(["a", "c"]), np.array(["a", "b", "c"]))
    np.testing.assert_array_equal(out, [[0.3, 0.0, 0.7]])


def test_holdout_metrics_use_the_task_classes():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = np.where(y == 1, "benign", "malignant").astype(object)
    holdout = np.zeros(y.shape[0], dtype=bool)
    holdout[::5] = True
    t = train_and_evaluate(LogisticRegression(max_iter=500), X, y, holdout=holdout)
    assert t.evaluation == "holdout" and t.proba_eval.shape == (holdout.sum(), 2)
    assert 0.9 < t.metrics["pr_auc"] <= 1.0  # positive: malignant, the rarer class
