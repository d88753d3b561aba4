"""Stopping criteria: when has labelling paid off enough?

Each criterion is a small class that holds parameters and answers ``check(state) ->
StopDecision``. The :class:`StoppingState` it reads is plain data (label counts, the validation
metric per round, each round's predictions on a fixed unlabeled *stop set*), so the same rule runs
in a notebook loop, in a simulation and in the service, and can be stored as JSON
(:meth:`Criterion.to_config` / :func:`from_config`).

Compose with ``|`` (:class:`AnyOf`) and ``&`` (:class:`AllOf`). :class:`MinLabels` is a *veto*:
wherever it sits in a composition, nothing stops before the minimum is reached ("don't stop too
early")::

    rule = (TargetMetric(0.95) | Plateau(epsilon=0.005, patience=3)) & MinLabels(100)
    decision = rule.check(StoppingState(n_labeled=120, metrics={"accuracy": history}))
    if decision:
        print(decision.reason)
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from labelwise.errors import LabelwiseError, MissingInputError
from labelwise.metrics import agreement_kappa

__all__ = [
    "AllOf",
    "AnyOf",
    "Criterion",
    "LabelBudget",
    "MinLabels",
    "Plateau",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingState",
    "TargetMetric",
    "from_config",
    "iter_criteria",
    "metrics_read",
    "needs_stop_set",
]


@dataclass(frozen=True)
class StoppingState:
    """Everything a stopping criterion may look at after a round.

    Parameters
    ----------
    n_labeled : int
        Labels collected so far.
    round : int
        Rounds completed so far.
    metrics : mapping of str to sequence of float
        Validation metric values, one per round, oldest first, e.g.
        ``{"accuracy": [0.71, 0.80, 0.84]}``.
    stop_set_predictions : sequence of ndarray of shape (n_stop,)
        Predicted labels of each round's model on one fixed set of unlabeled items (the *stop
        set*), oldest first. Only :class:`StabilizingPredictions` reads them.
    """

    n_labeled: int
    round: int = 0
    metrics: Mapping[str, Sequence[float]] = field(default_factory=dict)
    stop_set_predictions: Sequence[np.ndarray] = ()

    def metric_history(self, metric: str) -> list[float]:
        """Values of ``metric``, oldest first; ``[]`` before the first evaluation.

        Raises
        ------
        MissingInputError
            If other metrics are recorded but not ``metric`` (likely a typo in the rule).
        """
        if metric in self.metrics:
            return [float(v) for v in self.metrics[metric]]
        if self.metrics:
            have = ", ".join(sorted(self.metrics))
            raise MissingInputError(
                f"the stopping rule reads validation metric {metric!r} but the state only has: "
                f"{have}; record {metric!r} each round or change the rule's metric."
            )
        return []


@dataclass(frozen=True)
class StopDecision:
    """The answer of a criterion.

    Attributes
    ----------
    stop : bool
    reason : str
        Human-readable, e.g. ``"budget: 500 of 500 labels used"``.
    criterion : str
        Name of the criterion that decided (``"plateau"``, ``"min_labels"``, ...).
    """

    stop: bool
    reason: str
    criterion: str

    def __bool__(self) -> bool:
        return self.stop


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise LabelwiseError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_float(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise LabelwiseError(f"{name} must be a number in [{low}, {high}]; got {value!r}.")
    return float(value)


class Criterion:
    """Base class of stopping criteria.

    Subclasses set ``name`` (also their key in :func:`from_config`) and implement ``check``.
    """

    name: ClassVar[str] = ""
    #: True for criteria that can only *prevent* stopping (:class:`MinLabels`).
    veto: ClassVar[bool] = False

    def check(self, state: StoppingState) -> StopDecision:
        """Decide whether to stop after the round described by ``state``."""
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """JSON-able form, read back by :func:`from_config`."""
        return {self.name: self.get_params()}

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def iter_vetoes(self) -> Iterator[Criterion]:
        """Every veto criterion in this (possibly composed) rule."""
        if self.veto:
            yield self

    def __or__(self, other: Criterion) -> AnyOf:
        return AnyOf(self, other)

    def __and__(self, other: Criterion) -> AllOf:
        return AllOf(self, other)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class TargetMetric(Criterion):
    """Stop when the latest validation metric reaches ``target``.

    Parameters
    ----------
    target : float
        E.g. ``0.95`` for 95 % accuracy.
    metric : str
        Key into :attr:`StoppingState.metrics`.
    """

    name = "target"

    def __init__(self, target: float, metric: str = "accuracy") -> None:
        self.target = _check_float("target", target, -np.inf, np.inf)
        self.metric = metric

    def check(self, state: StoppingState) -> StopDecision:
        history = state.metric_history(self.metric)
        if not history:
            return StopDecision(False, f"target: no validation {self.metric} yet", self.name)
        last = history[-1]
        value = f"target: validation {self.metric} {last:.4g}"
        if last >= self.target:
            return StopDecision(True, f"{value} reached the target {self.target:g}", self.name)
        reason = f"{value} is below the target {self.target:g}"
        return StopDecision(False, reason, self.name)

    def to_config(self) -> dict[str, Any]:
        if self.metric == "accuracy":
            return {self.name: self.target}
        return {self.name: self.get_params()}


class Plateau(Criterion):
    """Stop when the validation metric stopped improving.

    Stops after round ``r`` when the best value of the last ``patience`` rounds beats the best
    value before them by less than ``epsilon`` (early stopping on the learning curve):
    ``max(h[-patience:]) - max(h[:-patience]) < epsilon``. Needs ``patience + 1`` values.

    Parameters
    ----------
    epsilon : float
        Smallest improvement that counts (in metric units).
    patience : int
        Rounds to wait for an improvement.
    metric : str
    """

    name = "plateau"

    def __init__(self, epsilon: float = 0.005, patience: int = 3, metric: str = "accuracy") -> None:
        self.epsilon = _check_float("epsilon", epsilon, 0.0, np.inf)
        self.patience = _check_int("patience", patience, 1)
        self.metric = metric

    def check(self, state: StoppingState) -> StopDecision:
        h = state.metric_history(self.metric)
        if len(h) <= self.patience:
            reason = f"plateau: {len(h)} validation {self.metric} values, needs {self.patience + 1}"
            return StopDecision(False, reason, self.name)
        gain = max(h[-self.patience :]) - max(h[: -self.patience])
        over = f"over the last {self.patience} rounds"
        if gain < self.epsilon:
            reason = f"plateau: validation {self.metric} improved < {self.epsilon:g} {over}"
            return StopDecision(True, reason, self.name)
        reason = f"plateau: validation {self.metric} improved {gain:.4g} {over}"
        return StopDecision(False, reason, self.name)


class StabilizingPredictions(Criterion):
    """Stop when successive models agree on a stop set (Bloodgood & Vijay-Shanker, 2009).

    Cohen's kappa between the predictions of the models of rounds ``r - 1`` and ``r`` on a fixed
    set of unlabeled items must be ``>= kappa`` for ``window`` consecutive rounds. Identical
    predictions count as agreement even when all fall in one class (kappa is 0/0 there).

    Parameters
    ----------
    kappa : float
        Agreement threshold in ``[-1, 1]``; the paper uses 0.99.
    window : int
        Consecutive rounds that must agree; needs ``window + 1`` sets of predictions.
    """

    name = "stabilizing_predictions"

    def __init__(self, kappa: float = 0.99, window: int = 3) -> None:
        self.kappa = _check_float("kappa", kappa, -1.0, 1.0)
        self.window = _check_int("window", window, 1)

    def check(self, state: StoppingState) -> StopDecision:
        preds = state.stop_set_predictions
        if len(preds) <= self.window:
            reason = (
                f"stabilizing predictions: {len(preds)} rounds of stop-set predictions, "
                f"needs {self.window + 1}"
            )
            return StopDecision(False, reason, self.name)
        recent = preds[-(self.window + 1) :]
        kappas = [agreement_kappa(a, b) for a, b in itertools.pairwise(recent)]
        low = min(kappas)
        if low >= self.kappa:
            reason = (
                f"stabilizing predictions: kappa >= {self.kappa:g} between successive models "
                f"for {self.window} rounds"
            )
            return StopDecision(True, reason, self.name)
        reason = (
            f"stabilizing predictions: kappa {low:.4g} < {self.kappa:g} within the last "
            f"{self.window} rounds"
        )
        return StopDecision(False, reason, self.name)


class LabelBudget(Criterion):
    """Stop when ``max_labels`` labels have been collected."""

    name = "max_labels"

    def __init__(self, max_labels: int) -> None:
        self.max_labels = _check_int("max_labels", max_labels, 1)

    def check(self, state: StoppingState) -> StopDecision:
        used = f"{state.n_labeled} of {self.max_labels} labels used"
        return StopDecision(state.n_labeled >= self.max_labels, f"budget: {used}", self.name)

    def to_config(self) -> dict[str, Any]:
        return {self.name: self.max_labels}


class MinLabels(Criterion):
    """Veto: never stop before ``min_labels`` labels, whatever the other criteria say.

    On its own it never stops. In any composition (at any depth) it blocks stopping while
    ``n_labeled < min_labels``.
    """

    name = "min_labels"
    veto = True

    def __init__(self, min_labels: int) -> None:
        self.min_labels = _check_int("min_labels", min_labels, 0)

    def blocks(self, state: StoppingState) -> bool:
        """True while the minimum is not reached."""
        return state.n_labeled < self.min_labels

    def check(self, state: StoppingState) -> StopDecision:
        if self.blocks(state):
            reason = f"not stopping: only {state.n_labeled} of the minimum {self.min_labels} labels"
        else:
            reason = f"minimum of {self.min_labels} labels reached; nothing else to stop on"
        return StopDecision(False, reason, self.name)

    def to_config(self) -> dict[str, Any]:
        return {self.name: self.min_labels}


class _Composite(Criterion):
    _key: ClassVar[str] = ""

    def __init__(self, *criteria: Criterion) -> None:
        if not criteria:
            raise LabelwiseError(f"{type(self).__name__} needs at least one criterion.")
        flat: list[Criterion] = []
        for c in criteria:
            if not isinstance(c, Criterion):
                raise LabelwiseError(
                    f"{type(self).__name__} takes stopping criteria; got {type(c).__name__}."
                )
            # (a | b) | c == AnyOf(a, b, c)
            flat.extend(c.criteria if type(c) is type(self) else (c,))
        self.criteria = tuple(flat)

    def get_params(self) -> dict[str, Any]:
        return {"criteria": self.criteria}

    def iter_vetoes(self) -> Iterator[Criterion]:
        for c in self.criteria:
            yield from c.iter_vetoes()

    def to_config(self) -> dict[str, Any]:
        return {self._key: [c.to_config() for c in self.criteria]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(c) for c in self.criteria)})"

    def check(self, state: StoppingState) -> StopDecision:
        for v in self.iter_vetoes():
            if v.blocks(state):
                return v.check(state)
        decisions = [c.check(state) for c in self.criteria if not c.veto]
        if not decisions:
            return StopDecision(False, "not stopping: the rule has only minimums", self.name)
        return self._combine(decisions)

    def _combine(self, decisions: list[StopDecision]) -> StopDecision:
        raise NotImplementedError


class AnyOf(_Composite):
    """Stop as soon as any criterion says stop (vetoes aside). Also written ``a | b``."""

    name = "any_of"
    _key = "any"

    def _combine(self, decisions):
        stopping = [d for d in decisions if d.stop]
        if stopping:
            return StopDecision(True, "; ".join(d.reason for d in stopping), stopping[0].criterion)
        return StopDecision(False, "; ".join(d.reason for d in decisions), self.name)


class AllOf(_Composite):
    """Stop only when every criterion says stop (vetoes aside). Also written ``a & b``."""

    name = "all_of"
    _key = "all"

    def _combine(self, decisions):
        waiting = [d for d in decisions if not d.stop]
        if waiting:
            return StopDecision(False, "; ".join(d.reason for d in waiting), waiting[0].criterion)
        return StopDecision(True, " and ".join(d.reason for d in decisions), self.name)


def _leaf(key: str, value: Any) -> Criterion:
    """Build one criterion from a ``{key: value}`` entry of a stored rule."""
    if key in ("any", "all"):
        if not isinstance(value, list) or not value:
            raise LabelwiseError(f"stopping rule {key!r} needs a non-empty list of rules.")
        children = [from_config(v) for v in value]
        return AnyOf(*children) if key == "any" else AllOf(*children)
    cls = _LEAVES.get(key)
    if cls is None:
        valid = ", ".join(sorted([*_LEAVES, "any", "all"]))
        raise LabelwiseError(f"unknown stopping rule key {key!r}; valid keys: {valid}")
    if isinstance(value, Mapping):
        try:
            return cls(**value)
        except TypeError as exc:
            raise LabelwiseError(f"bad parameters for stopping rule {key!r}: {exc}") from None
    if value is None and key in ("plateau", "stabilizing_predictions"):
        return cls()
    if key in ("target", "max_labels", "min_labels"):
        return cls(value)
    raise LabelwiseError(
        f"stopping rule {key!r} takes an object of parameters (or null for defaults); "
        f"got {value!r}."
    )


_LEAVES: dict[str, type[Criterion]] = {
    c.name: c for c in (TargetMetric, Plateau, StabilizingPredictions, LabelBudget, MinLabels)
}


def from_config(config: Mapping[str, Any]) -> Criterion:
    """Build a stopping rule from its stored (JSON) form.

    Keys: ``target`` (a number, or ``{"target": .., "metric": ..}``), ``plateau`` /
    ``stabilizing_predictions`` (an object of parameters, or ``null`` for the defaults),
    ``max_labels`` and ``min_labels`` (integers), ``any`` / ``all`` (lists of rules). Several keys
    in one object must *all* hold (``min_labels`` beside others acts as a veto)::

        {"any": [{"target": 0.95}, {"plateau": {"epsilon": 0.005, "patience": 3}}],
         "min_labels": 100}

    Raises
    ------
    LabelwiseError
        On unknown keys, bad values or an empty rule; the message lists the valid keys.
    """
    if not isinstance(config, Mapping) or not config:
        raise LabelwiseError(
            f"a stopping rule is a non-empty JSON object such as {{'max_labels': 500}}; "
            f"got {config!r}."
        )
    parts = [_leaf(k, v) for k, v in config.items()]
    return parts[0] if len(parts) == 1 else AllOf(*parts)


def iter_criteria(rule: Criterion) -> Iterator[Criterion]:
    """Every leaf criterion of a rule (composites are walked), in order."""
    if isinstance(rule, _Composite):
        for c in rule.criteria:
            yield from iter_criteria(c)
    else:
        yield rule


def metrics_read(rule: Criterion) -> set[str]:
    """Names of the validation metrics a rule reads (``{"accuracy"}`` for ``target: 0.9``)."""
    return {c.metric for c in iter_criteria(rule) if isinstance(getattr(c, "metric", None), str)}


def needs_stop_set(rule: Criterion) -> bool:
    """True if the rule compares successive models' predictions on a stop set."""
    return any(isinstance(c, StabilizingPredictions) for c in iter_criteria(rule))
