import json

import numpy as np
import pytest

from labelwise.errors import LabelwiseError, MissingInputError
from labelwise.metrics import agreement_kappa
from labelwise.stopping import (
    AllOf,
    AnyOf,
    LabelBudget,
    MinLabels,
    Plateau,
    StabilizingPredictions,
    StopDecision,
    StoppingState,
    TargetMetric,
    from_config,
)


def state(n=200, acc=(), preds=()):
    return StoppingState(
        n_labeled=n, round=len(acc), metrics={"accuracy": list(acc)}, stop_set_predictions=preds
    )


def fixed(stop: bool):
    # A budget of 1 always stops (n >= 1); a huge budget never does.
    return LabelBudget(1) if stop else LabelBudget(10**9)


# ---------------------------------------------------------------- target and budget


def test_target_metric():
    rule = TargetMetric(0.9)
    assert not rule.check(state(acc=[0.80, 0.89]))
    d = rule.check(state(acc=[0.80, 0.90]))
    assert d.stop and d.criterion == "target"
    assert d.reason == "target: validation accuracy 0.9 reached the target 0.9"


def test_target_metric_no_values_yet():
    d = TargetMetric(0.9).check(StoppingState(n_labeled=0))
    assert not d.stop and "no validation accuracy yet" in d.reason


def test_target_other_metric():
    s = StoppingState(n_labeled=10, metrics={"f1_macro": [0.5, 0.96]})
    assert TargetMetric(0.95, metric="f1_macro").check(s)


def test_missing_metric_raises():
    s = StoppingState(n_labeled=10, metrics={"f1_macro": [0.5]})
    with pytest.raises(MissingInputError, match="f1_macro"):
        TargetMetric(0.95).check(s)


def test_budget():
    assert not LabelBudget(500).check(state(n=499))
    d = LabelBudget(500).check(state(n=500))
    assert d.stop and d.reason == "budget: 500 of 500 labels used"


# ---------------------------------------------------------------- plateau


def test_plateau_stops_at_hand_computed_round():
    # epsilon 0.005, patience 3: gain = max(last 3) - max(before them)
    #   after 4 values [.70 .80 .85 .87]           : .87 - .70  = .17   -> go on
    #   after 5 values [.70 .80 .85 .87 .872]      : .872 - .80 = .072  -> go on
    #   after 6 values [... .873]                  : .873 - .85 = .023  -> go on
    #   after 7 values [... .871]                  : .873 - .87 = .003  -> stop (round index 6)
    seq = [0.70, 0.80, 0.85, 0.87, 0.872, 0.873, 0.871]
    rule = Plateau(epsilon=0.005, patience=3)
    stops = [rule.check(state(acc=seq[: i + 1])).stop for i in range(len(seq))]
    assert stops == [False] * 6 + [True]
    d = rule.check(state(acc=seq))
    assert d.reason == "plateau: validation accuracy improved < 0.005 over the last 3 rounds"


def test_plateau_needs_patience_plus_one_values():
    d = Plateau(patience=3).check(state(acc=[0.9, 0.9, 0.9]))
    assert not d.stop and "needs 4" in d.reason


def test_plateau_drop_counts_as_plateau():
    # Accuracy falls: best of the last 2 (.79) is below the best before (.80) -> gain < 0.
    assert Plateau(epsilon=0.01, patience=2).check(state(acc=[0.8, 0.79, 0.78]))


# ---------------------------------------------------------------- stabilizing predictions


def test_agreement_kappa_hand_computed():
    # p_o = 2/3; p_e = (1/3)(2/3) + (2/3)(1/3) = 4/9; kappa = (2/3 - 4/9) / (1 - 4/9) = 0.4
    assert agreement_kappa([0, 1, 1], [0, 1, 0]) == pytest.approx(0.4)


def test_agreement_kappa_all_one_class_identical_is_one():
    # sklearn's kappa is 0/0 = NaN here; identical predictions are agreement.
    assert agreement_kappa([1, 1, 1], [1, 1, 1]) == 1.0


def test_stabilizing_predictions_hand_written():
    a = np.array([0, 1, 1, 0, 1, 0])
    b = np.array([0, 1, 1, 0, 1, 1])  # one flip vs a: kappa < 1
    rule = StabilizingPredictions(kappa=0.99, window=2)
    # successive kappas: (a,b) < 1, (b,b) = 1, (b,b) = 1
    preds = [a, b, b, b]
    stops = [rule.check(state(preds=preds[: i + 1])).stop for i in range(4)]
    # 1-2 prediction sets: too few; 3 sets: kappas [k(a,b), 1] -> min < .99; 4 sets: [1, 1] -> stop
    assert stops == [False, False, False, True]
    assert "for 2 rounds" in rule.check(state(preds=preds)).reason


def test_stabilizing_predictions_threshold_below_one():
    a = np.array([0, 1, 1])
    b = np.array([0, 1, 0])  # kappa 0.4 (see above)
    assert StabilizingPredictions(kappa=0.39, window=2).check(state(preds=[a, b, a]))
    assert not StabilizingPredictions(kappa=0.41, window=2).check(state(preds=[a, b, a]))


def test_stabilizing_predictions_one_class_everywhere():
    same = np.zeros(5, dtype=int)
    assert StabilizingPredictions(window=1).check(state(preds=[same, same]))


# ---------------------------------------------------------------- minimum and composition


def test_min_labels_alone_never_stops():
    assert not MinLabels(100).check(state(n=40))
    assert not MinLabels(100).check(state(n=400))


def test_min_labels_vetoes_any_of():
    rule = LabelBudget(10) | MinLabels(100)
    d = rule.check(state(n=40))
    assert d == StopDecision(False, "not stopping: only 40 of the minimum 100 labels", "min_labels")
    assert rule.check(state(n=100)).stop


def test_min_labels_vetoes_when_nested():
    rule = AnyOf(fixed(True), AllOf(fixed(True), MinLabels(100)))
    assert not rule.check(state(n=40))
    assert rule.check(state(n=150))


@pytest.mark.parametrize(
    ("a", "b", "any_", "all_"),
    [
        (False, False, False, False),
        (False, True, True, False),
        (True, False, True, False),
        (True, True, True, True),
    ],
)
def test_composition_truth_table(a, b, any_, all_):
    s = state(n=50)
    assert (fixed(a) | fixed(b)).check(s).stop is any_
    assert (fixed(a) & fixed(b)).check(s).stop is all_
    assert AnyOf(fixed(a), fixed(b)).check(s).stop is any_
    assert AllOf(fixed(a), fixed(b)).check(s).stop is all_


def test_operators_flatten():
    a, b, c = TargetMetric(0.9), Plateau(), LabelBudget(5)
    assert (a | b | c) == AnyOf(a, b, c)
    assert (a & b & c) == AllOf(a, b, c)


def test_any_of_reason_names_the_criterion():
    rule = TargetMetric(0.95) | LabelBudget(100)
    d = rule.check(state(n=100, acc=[0.9]))
    assert d.stop and d.criterion == "max_labels" and d.reason.startswith("budget:")


def test_composition_of_only_minimums_never_stops():
    assert not AnyOf(MinLabels(1)).check(state(n=10))


# ---------------------------------------------------------------- config


def test_from_config_example():
    cfg = {
        "any": [{"target": 0.95}, {"plateau": {"epsilon": 0.005, "patience": 3}}],
        "min_labels": 100,
    }
    rule = from_config(cfg)
    assert rule == AllOf(AnyOf(TargetMetric(0.95), Plateau(0.005, 3)), MinLabels(100))
    assert not rule.check(state(n=40, acc=[0.99]))
    assert rule.check(state(n=120, acc=[0.99]))


@pytest.mark.parametrize(
    "rule",
    [
        TargetMetric(0.9),
        TargetMetric(0.8, metric="f1_macro"),
        Plateau(0.01, 2),
        StabilizingPredictions(0.95, 4),
        LabelBudget(500),
        MinLabels(50),
        (TargetMetric(0.95) | Plateau()) & MinLabels(100),
        AllOf(LabelBudget(10), AnyOf(StabilizingPredictions(), TargetMetric(0.5))),
    ],
)
def test_config_round_trip(rule):
    cfg = json.loads(json.dumps(rule.to_config()))
    assert from_config(cfg) == rule


def test_from_config_null_means_defaults():
    assert from_config({"plateau": None}) == Plateau()


def test_from_config_unknown_key():
    with pytest.raises(LabelwiseError, match=r"unknown stopping rule key 'patience'.*valid keys"):
        from_config({"patience": 3})


def test_from_config_unknown_param():
    with pytest.raises(LabelwiseError, match="bad parameters for stopping rule 'plateau'"):
        from_config({"plateau": {"eps": 0.1}})


def test_from_config_empty():
    with pytest.raises(LabelwiseError, match="non-empty"):
        from_config({})


def test_from_config_any_needs_list():
    with pytest.raises(LabelwiseError, match="non-empty list"):
        from_config({"any": {"target": 0.9}})


# ---------------------------------------------------------------- bad parameters


def test_bad_patience():
    with pytest.raises(LabelwiseError, match="patience"):
        Plateau(patience=0)


def test_bad_epsilon():
    with pytest.raises(LabelwiseError, match="epsilon"):
        Plateau(epsilon=-1)


def test_bad_kappa():
    with pytest.raises(LabelwiseError, match="kappa"):
        StabilizingPredictions(kappa=1.5)


def test_bad_budget():
    with pytest.raises(LabelwiseError, match="max_labels"):
        LabelBudget(0)


def test_bad_min_labels():
    with pytest.raises(LabelwiseError, match="min_labels"):
        MinLabels(-1)


def test_bad_target():
    with pytest.raises(LabelwiseError, match="target"):
        TargetMetric("high")


def test_composite_rejects_non_criteria():
    with pytest.raises(LabelwiseError, match="stopping criteria"):
        AnyOf(TargetMetric(0.9), 3)
