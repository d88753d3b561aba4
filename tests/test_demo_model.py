"""The ``logreg_balanced`` built-in model: class weights for imbalanced labels."""

from __future__ import annotations

import numpy as np

from labelwise.models.training import MODELS, make_model


def test_logreg_balanced_is_a_built_in_model():
    assert "logreg_balanced" in MODELS
    model = make_model("logreg_balanced", "binary")
    assert model.class_weight == "balanced" and model.max_iter == 1000
    assert make_model("logreg", "binary").class_weight is None
    ovr = make_model("logreg_balanced", "multilabel")
    assert ovr.estimator.class_weight == "balanced"


def test_class_weights_stop_the_majority_class_from_winning_everywhere():
    # 8 "a" near 0, 2 "b" near 1, one feature: unweighted logistic regression (C=1) still says
    # "a" at x=1; weighted, each "b" counts 10 / (2 x 2) = 2.5 and each "a" 10 / (2 x 8) = 0.625
    X = np.array([[0.0]] * 6 + [[0.6]] * 2 + [[1.0]] * 2)
    y = np.array(["a"] * 8 + ["b"] * 2)
    plain = make_model("logreg", "binary").fit(X, y)
    balanced = make_model("logreg_balanced", "binary").fit(X, y)
    assert list(plain.predict([[1.0]])) == ["a"]
    assert list(balanced.predict([[1.0]])) == ["b"]


def test_a_project_may_ask_for_it():
    from labelwise.service.schemas import ProjectCreate

    p = ProjectCreate(
        name="p",
        task_type="binary",
        classes=["a", "b"],
        strategy_params={"model": "logreg_balanced"},
    )
    assert p.strategy_params["model"] == "logreg_balanced"
