"""Where a project stands: labels, queue, learning curve, cost and what active learning saved.

:func:`project_progress` reads the store only (no model is loaded) and returns a frozen
:class:`Progress`.

How the random-sampling comparison is estimated
-----------------------------------------------
Each round queues a few items drawn uniformly at random from a fixed random *audit* subset of the
pool (``settings.random_fraction`` of each batch, see :mod:`labelwise.service.rounds`), and every
retrain fits a second model on those random labels alone, evaluated on the same validation data.
That gives *measured* points of the random-sampling learning curve, at fewer labels than the
active curve. Both curves are compared at equal cost by power-law fits; the arithmetic lives in
:mod:`labelwise.progress` (compute band), which this module calls with the curves it reads from
the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from labelwise.progress import (
    fit_power_law,
    labels_for_accuracy,
    labels_per_hour,
    projected_labels_to_target,
    savings_vs_random,
    stopping_target,
)
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
    savings = savings_vs_random(curve, random_curve, project.label_cost)
    target = stopping_target(project.stopping)

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
        random_accuracy_estimate=savings.random_accuracy_estimate,
        throughput=labels_per_hour(counts, hours),
        cost=n_annotations * project.label_cost,
        accuracy=None if latest is None else latest.get("accuracy"),
        ece=None if latest is None else latest.get("ece"),
        target=target,
        projected_labels_to_target=projected_labels_to_target(curve, target),
        labels_saved=savings.labels_saved,
        money_saved=savings.money_saved,
        stopping_status=_status(store, project_id, latest),
    )
