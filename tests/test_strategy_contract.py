"""Every registered strategy against the strategy contract (``labelwise.testing``)."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.strategies import strategy_names
from labelwise.testing import check_strategy, run_check, strategy_check_names, strategy_checks
from labelwise.testing.strategies import make_candidates


@strategy_checks()
def test_strategy_contract(strategy_name, check_name):
    run_check(strategy_name, check_name)


def test_every_registered_strategy_is_covered():
    names = strategy_names()
    assert {"random", "entropy", "margin", "least_confidence"} <= set(names)
    for name in names:
        checks = strategy_check_names(name)
        assert "description" in checks
        assert any(c.startswith("valid_query[") for c in checks)


def test_check_strategy_runs_all_checks_on_an_instance():
    from labelwise.strategies import EntropySampling

    ran = check_strategy(EntropySampling())
    assert ran == strategy_check_names("entropy")


def test_check_strategy_catches_a_broken_strategy():
    from labelwise.strategies import Strategy

    class Duplicates(Strategy):
        name = "duplicates"
        description = "Always picks the first candidate k times (broken on purpose)."
        needs = frozenset()
        cold_start = True

        def _select(self, candidates, k, rng):
            return np.zeros(k, dtype=np.int64), np.zeros(k)

    with pytest.raises(AssertionError, match="not distinct"):
        run_check(Duplicates(), "valid_query[multiclass]")


def test_check_strategy_catches_a_mutation():
    from labelwise.strategies import RandomSampling

    class Scribbler(RandomSampling):
        name = "scribbler"
        description = "Random, but writes into the features (broken on purpose)."

        def _select(self, candidates, k, rng):
            candidates.X[0, 0] += 1.0
            return super()._select(candidates, k, rng)

    with pytest.raises(AssertionError, match=r"mutated candidates\.X"):
        run_check(Scribbler(), "no_mutation[binary]")


def test_check_strategy_catches_an_undeclared_need():
    from labelwise.strategies import ScoreStrategy
    from labelwise.strategies.scores import entropy

    class Sneaky(ScoreStrategy):
        name = "sneaky"
        description = "Uses the model but declares no needs (broken on purpose)."
        needs = frozenset()

        def score(self, proba):
            return entropy(proba)

    with pytest.raises(AssertionError, match="declared needs"):
        run_check(Sneaky(), "declared_inputs[multiclass]")


def test_run_check_unknown_name():
    with pytest.raises(KeyError, match="valid_query"):
        run_check("entropy", "no_such_check")


@pytest.mark.parametrize("task_type", ["multiclass", "binary", "multilabel"])
def test_make_candidates_is_full(task_type):
    c = make_candidates(task_type)  # n=150, shared with the checks (cached)
    assert c.n == 150
    assert c.X.shape[0] == 150 + c.X_labeled.shape[0]
    # candidate positions differ from pool positions
    assert (c.row_idx != np.arange(150)).any()
    np.testing.assert_array_equal(c.pool_positions(np.arange(150)), c.row_idx)
    assert c.model is not None and len(c.committee) >= 2
    assert c.embeddings.shape[0] == c.X.shape[0]
    assert c.metadata["source"].dtype.kind == "U"
    assert c.metadata["length"].dtype.kind == "f"
    proba = c.proba()
    assert proba.shape[0] == 150
    if task_type == "multilabel":
        assert proba.shape[1] == 3 and c.y_labeled.shape[1] == 3
    else:
        assert proba.shape[1] == (2 if task_type == "binary" else 10)
    # every call returns fresh copies
    c.X[:] = 0
    assert make_candidates(task_type).X.any()
