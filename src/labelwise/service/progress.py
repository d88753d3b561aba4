"""Where a project stands: labels, queue, learning curve, cost and what active learning saved.

:func:`project_progress` reads the store only (no model is loaded) and returns a frozen
:class:`Progress`.

How the random-sampling comparison is estimated
-----------------------------------------------
Each round queues a few items drawn uniformly at random from a fixed random *audit* subset of the
pool (``settings.random_fraction`` of each batch, see :mod:`labelwise.service.rounds`), and every
retrain fits a second model on those random labels alone, evaluated on the same validation data.
That gives *measured* points of the random-sampling learning curve, at fewer labels than the
active curve. To compare at equal cost, both curves are fitted with the usual power law of
learning curves, ``acc(n) = a - b * n ** -c`` (:func:`fit_power_law`, needs three points), and
inverted: the labels random sampling would need to reach the active model's current accuracy,
minus the labels actually used, are the labels saved (negative if active learning did worse).
With fewer than three random points the estimate is ``None``: no number is better than a made-up
one. The same fit of the active curve projects the labels still needed to reach the stopping
rule's ``target`` accuracy, when the rule has one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from labelwise.storage.base import BaseStore, utcnow

__all__ = [
    "Progress",
    "fit_power_law",
    "labels_for_accuracy",
    "project_progress",
    "stopping_target",
]

THROUGHPUT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Progress:
    """A project's progress and business numbers.

    Attributes
    ----------
    project_id : int
    n_items, n_labeled, n_unlabeled : int
        Items in the project; with a resolved label (imports included); still in the pool.
    n_annotations : int
        Labels given by annotators (what was paid for).
    rounds, open_rounds : int
    queue_depth : int
        Tasks claimable now.
    learning_curve : list of (int, float)
        ``(n_labels, accuracy)`` of each model version with a validation accuracy.
    random_curve : list of (int, float)
        ``(n_random_labels, accuracy)`` of the model fitted on random labels only.
    random_accuracy_estimate : float or None
        Random sampling's accuracy at the active curve's latest ``n_labels`` (power-law fit).
    throughput : dict of int to float
        Labels per hour of each annotator id over the last 24 hours.
    cost : float
        ``n_annotations * project.label_cost``.
    accuracy, ece : float or None
        Of the latest model version.
    target : float or None
        The stopping rule's target accuracy, if any.
    projected_labels_to_target : int or None
        More labels the fitted active curve needs to reach ``target`` (0 if reached; ``None``
        without a target, without three curve points, or if the fit never gets there).
    labels_saved, money_saved : float or None
        Labels (and money) random sampling would have needed beyond those used for the current
        accuracy.
    stopping_status : str
        ``"stop now: <reason>"`` or ``"continue: <reason>"``.
    """

    project_id: int
    n_items: int
    n_labeled: int
    n_unlabeled: int
    n_annotations: int
    rounds: int
    open_rounds: int
    queue_depth: int
    learning_curve: list[tuple[int, float]] = field(default_factory=list)
    random_curve: list[tuple[int, float]] = field(default_factory=list)
    random_accuracy_estimate: float | None = None
    throughput: dict[int, float] = field(default_factory=dict)
    cost: float = 0.0
    accuracy: float | None = None
    ece: float | None = None
    target: float | None = None
    projected_labels_to_target: int | None = None
    labels_saved: float | None = None
    money_saved: float | None = None
    stopping_status: str = ""


def _power(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fit_power_law(n_labels: Sequence[float], accuracy: Sequence[float]) -> tuple | None:
    """Fit ``acc(n) = a - b * n ** -c`` (``0 <= a <= 1``, ``b >= 0``, ``0.05 <= c <= 3``).

    Parameters
    ----------
    n_labels : sequence of float, shape (n_points,)
    accuracy : sequence of float, shape (n_points,)

    Returns
    -------
    (a, b, c) or None
        ``None`` with fewer than 3 distinct positive ``n_labels`` or when the fit fails.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    n = np.asarray(n_labels, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    ok = (n > 0) & np.isfinite(acc)
    n, acc = n[ok], acc[ok]
    if np.unique(n).shape[0] < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # exact fits have no covariance
            params, _ = curve_fit(
                _power, n, acc, p0=(min(1.0, acc.max() + 0.05), 1.0, 0.5),
                bounds=([0.0, 0.0, 0.05], [1.0, np.inf, 3.0]), maxfev=5000,
            )  # fmt: skip
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def labels_for_accuracy(params: tuple, accuracy: float) -> float | None:
    """Labels at which the fitted curve reaches ``accuracy``: ``(b / (a - acc)) ** (1 / c)``.

    ``None`` if the curve's ceiling ``a`` is at or below ``accuracy``. Example: ``a=1, b=1,
    c=1`` reaches 0.9 at ``(1 / 0.1) ** 1 = 10`` labels.
    """
    a, b, c = params
    if accuracy >= a:
        return None
    if b <= 0:
        return 1.0
    return float((b / (a - accuracy)) ** (1.0 / c))


def stopping_target(rule: Mapping[str, Any] | None) -> float | None:
    """The accuracy ``target`` of a stored stopping rule (searched through ``any``/``all``)."""
    if not rule:
        return None
    for key, value in rule.items():
        if key == "target":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, Mapping) and value.get("metric", "accuracy") == "accuracy":
                return float(value["target"])
        elif key in ("any", "all") and isinstance(value, list):
            for sub in value:
                found = stopping_target(sub) if isinstance(sub, Mapping) else None
                if found is not None:
                    return found
    return None


def _status(store: BaseStore, project_id: int, metrics: Mapping[str, Any] | None) -> str:
    if metrics is not None and metrics.get("stop"):
        return f"stop now: {metrics.get('stop_reason', 'the stopping rule was met')}"
    if store.count_items(project_id, "unlabeled") == 0:
        return "stop now: the pool is exhausted (every item is labeled or queued)"
    if metrics is None:
        return "continue: no model yet; label the first batch"
    reason = str(metrics.get("stop_reason") or "the stopping rule is not met")
    return reason if reason.startswith("continue") else f"continue: {reason}"


def project_progress(
    store: BaseStore, project_id: int, *, settings: Any = None, now: datetime | None = None
) -> Progress:
    """Progress and business numbers of a project (see :class:`Progress`).

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings, optional
        Unused for now; accepted so every service call has the same shape.
    now : datetime, optional
        End of the 24-hour throughput window.
    """
    project = store.get_project(project_id)
    now = utcnow() if now is None else now
    versions = store.list_model_versions(project_id)
    curve = [
        (int(v.metrics.get("n_labels", 0)), float(v.metrics["accuracy"]))
        for v in versions
        if v.metrics.get("accuracy") is not None
    ]
    random_curve = [
        (int(v.metrics["n_random"]), float(v.metrics["random_accuracy"]))
        for v in versions
        if v.metrics.get("random_accuracy") is not None and v.metrics.get("n_random")
    ]
    n_annotations = len(store.list_annotations(project_id))
    rounds = store.list_rounds(project_id)
    counts = store.annotator_throughput(project_id, now - THROUGHPUT_WINDOW, now)
    hours = THROUGHPUT_WINDOW.total_seconds() / 3600
    latest = versions[-1].metrics if versions else None

    random_fit = fit_power_law(*zip(*random_curve, strict=True)) if random_curve else None
    random_estimate = labels_saved = money_saved = None
    if random_fit is not None and curve:
        n_now, acc_now = curve[-1]
        random_estimate = float(_power(np.float64(n_now), *random_fit))
        n_random_needed = labels_for_accuracy(random_fit, acc_now)
        if n_random_needed is not None:
            labels_saved = n_random_needed - n_now
            money_saved = labels_saved * project.label_cost

    target = stopping_target(project.stopping)
    projected = None
    active_fit = fit_power_law(*zip(*curve, strict=True)) if curve else None
    if target is not None and curve:
        if curve[-1][1] >= target:
            projected = 0
        elif active_fit is not None:
            needed = labels_for_accuracy(active_fit, target)
            if needed is not None:
                projected = max(0, math.ceil(needed - curve[-1][0]))

    return Progress(
        project_id=project_id,
        n_items=store.count_items(project_id),
        n_labeled=store.count_items(project_id, "labeled"),
        n_unlabeled=store.count_items(project_id, "unlabeled"),
        n_annotations=n_annotations,
        rounds=len(rounds),
        open_rounds=sum(r.closed is None for r in rounds),
        queue_depth=store.queue_depth(project_id, now=now),
        learning_curve=curve,
        random_curve=random_curve,
        random_accuracy_estimate=random_estimate,
        throughput={aid: n / hours for aid, n in sorted(counts.items())},
        cost=n_annotations * project.label_cost,
        accuracy=None if latest is None else latest.get("accuracy"),
        ece=None if latest is None else latest.get("ece"),
        target=target,
        projected_labels_to_target=projected,
        labels_saved=labels_saved,
        money_saved=money_saved,
        stopping_status=_status(store, project_id, latest),
    )
