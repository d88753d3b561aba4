"""Where a project stands: labels, queue, learning curve, cost and what active learning saved.

:func:`project_progress` reads the store only (no model is loaded) and returns a frozen
:class:`Progress`.

How the random-sampling comparison is estimated
-----------------------------------------------
Each round queues a few items drawn uniformly at random from a fixed random *audit* subset of the
pool (``settings.random_fraction`` of each batch, see :mod:`labelwise.service.rounds`), and every
retrain fits a second model on those random labels alone, evaluated on the same validation data.
That gives *measured* points of the random-sampling learning curve, at fewer labels than the
active curve. The baseline is shown only once it has enough random labels and points
(:func:`labelwise.progress.random_baseline`: the rule, the 95 % interval, and the one sentence the
dashboard and ``labelwise project status`` print); only then are both curves compared at equal
cost by power-law fits. The arithmetic lives in :mod:`labelwise.progress` (compute band), which
this module calls with the curves it reads from the store.

Other numbers
-------------
- Items *to label* leave out the validation split (imported with labels, never queued).
- Beside accuracy: macro-F1 and the majority-class baseline of the evaluation labels (the
  validation split, else the training labels); the *headline* metric is the stopping target's
  metric, else macro-F1 when the majority class holds 60 % or more of the labels, else accuracy.
- Throughput is labels per hour of active labeling time in the last 24 hours
  (:func:`labelwise.progress.active_labels_per_hour`).
- A *reference* learning curve replayed offline with known labels (the demo project ships one,
  :mod:`labelwise.service.demo_project`) is read from ``settings.data_dir /
  "reference_curves" / "project_<id>.json"`` when present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from labelwise.progress import (
    Savings,
    active_labels_per_hour,
    advise_batch_size,
    fit_power_law,
    labels_for_accuracy,
    majority_baseline,
    projected_labels_to_target,
    random_baseline,
    savings_vs_random,
    stopping_target,
    stopping_target_metric,
)
from labelwise.service.quality import quality_counts
from labelwise.storage.base import BaseStore, utcnow

__all__ = [
    "Progress",
    "fit_power_law",
    "labels_for_accuracy",
    "project_progress",
    "stopping_target",
]

THROUGHPUT_WINDOW = timedelta(hours=24)
#: Majority share from which macro-F1, not accuracy, is the headline metric.
IMBALANCED_SHARE = 0.6
REFERENCE_DIR = "reference_curves"


def reference_path(data_dir: Any, project_id: int) -> Path:
    """Where a project's reference learning curves live (JSON, see :func:`project_progress`)."""
    return Path(data_dir) / REFERENCE_DIR / f"project_{project_id}.json"


@dataclass(frozen=True)
class Progress:
    """A project's progress and business numbers.

    Attributes
    ----------
    project_id : int
    n_items, n_labeled, n_unlabeled : int
        Items in the project; with a resolved label (imports included); still in the pool.
    n_validation : int
        Validation items (imported with their label; never labeled, never trained on).
    n_to_label : int
        ``n_items - n_validation``: the items labeling is about.
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
        Random sampling's accuracy at the active curve's latest ``n_labels`` (power-law fit);
        ``None`` until the random baseline is ready.
    random_baseline : dict
        :class:`labelwise.progress.RandomBaseline` as a dict: ``ready``, ``note`` (the one
        sentence to show), ``n_random``, ``n_points``, ``accuracy``, ``ci_low``, ``ci_high``,
        ``active_accuracy``, ``n_eval``.
    macro_f1 : float or None
        Of the latest model version.
    macro_f1_curve : list of (int, float)
        ``(n_labels, macro_f1)`` of each model version with a validation macro-F1.
    majority_baseline : dict or None
        :class:`labelwise.progress.MajorityBaseline` of the evaluation labels as a dict.
    headline_metric : {"accuracy", "macro_f1"}
        The metric the dashboard draws first.
    reference : dict or None
        Reference curves replayed offline with known labels: ``{"title", "protocol",
        "metric", "curves": {name: [[n_labels, mean, low, high], ...]}}``.
    throughput : dict of int to float
        Labels per hour of active labeling time of each annotator id, from their labels of the
        last 24 hours (gaps over 5 minutes are breaks).
    cost : float
        ``n_annotations * project.label_cost``.
    accuracy, ece : float or None
        Of the latest model version.
    target : float or None
        The stopping rule's target, if any, on ``target_metric``.
    target_metric : str or None
    projected_labels_to_target : int or None
        More labels the fitted active curve of ``target_metric`` needs to reach ``target``
        (0 if reached; ``None``
        without a target, without three curve points, or if the fit never gets there).
    labels_saved, money_saved : float or None
        Labels (and money) random sampling would have needed beyond those used for the current
        accuracy.
    stopping_status : str
        ``"stop now: <reason>"`` or ``"continue: <reason>"``.
    quality : dict of str to int
        Data quality (:func:`labelwise.service.quality.quality_counts`): ``extra_annotations``
        (consensus answers beyond one per item, in ``cost``), ``consensus_items``, ``gold``,
        ``gold_answers`` (in ``cost`` too), ``in_review``, and per review reason
        ``<reason>_flagged`` / ``_confirmed`` / ``_corrected``.
    strategy_health : list of dict
        One row per retrain with health signals (:func:`health_rows`): ``model_version_id``,
        ``round``, ``strategy``, ``arm`` (the adaptive strategy's choice), ``agreement``,
        ``batch_accuracy``, ``class_balance_tvd``, ``n_batch``, ``n_labels``, ``accuracy``,
        ``random_accuracy``, ``n_random``.
    strategy_warning : str or None
        Set when the strategy is behind random sampling beyond noise (:func:`behind_random_note`).
    batch_advice : dict
        :class:`labelwise.progress.BatchAdvice` as a dict, from the team's throughput and the
        latest retrain's time.
    """

    project_id: int
    n_items: int
    n_labeled: int
    n_unlabeled: int
    n_annotations: int
    rounds: int
    open_rounds: int
    queue_depth: int
    n_validation: int = 0
    n_to_label: int = 0
    learning_curve: list[tuple[int, float]] = field(default_factory=list)
    random_curve: list[tuple[int, float]] = field(default_factory=list)
    random_accuracy_estimate: float | None = None
    random_baseline: dict[str, Any] = field(default_factory=dict)
    macro_f1: float | None = None
    macro_f1_curve: list[tuple[int, float]] = field(default_factory=list)
    majority_baseline: dict[str, Any] | None = None
    headline_metric: str = "accuracy"
    reference: dict[str, Any] | None = None
    throughput: dict[int, float] = field(default_factory=dict)
    cost: float = 0.0
    accuracy: float | None = None
    ece: float | None = None
    target: float | None = None
    target_metric: str | None = None
    projected_labels_to_target: int | None = None
    labels_saved: float | None = None
    money_saved: float | None = None
    stopping_status: str = ""
    quality: dict[str, int] = field(default_factory=dict)
    strategy_health: list[dict[str, Any]] = field(default_factory=list)
    strategy_warning: str | None = None
    batch_advice: dict[str, Any] = field(default_factory=dict)


def health_rows(versions: Any) -> list[dict[str, Any]]:
    """The strategy-health signals each retrain recorded (``metrics["health"]``, see
    :mod:`labelwise.service.rounds`), beside the accuracies of that model version."""
    rows = []
    for v in versions:
        health = v.metrics.get("health")
        if not isinstance(health, Mapping):
            continue
        rows.append(
            {
                "model_version_id": v.id,
                **{k: health.get(k) for k in _HEALTH_KEYS},
                **{k: v.metrics.get(k) for k in ("n_labels", "accuracy", "random_accuracy")},
                "n_random": v.metrics.get("n_random"),
            }
        )
    return rows


_HEALTH_KEYS = (
    "round",
    "strategy",
    "arm",
    "agreement",
    "batch_accuracy",
    "class_balance_tvd",
    "n_batch",
)


def behind_random_note(baseline: Any) -> str | None:
    """A warning when the active curve is below random sampling's beyond noise, else ``None``.

    Only a *ready* random baseline counts (enough random labels and points, see
    :func:`labelwise.progress.random_baseline`): the active model's accuracy at the random
    model's number of labels (interpolated: equal cost) below the lower end of the random
    accuracy's 95 % interval.
    """
    if not baseline.ready or baseline.active_accuracy is None or baseline.ci_low is None:
        return None
    if baseline.active_accuracy >= baseline.ci_low:
        return None
    return (
        f"the strategy is behind random sampling beyond noise: at {baseline.n_random} labels "
        f"the active model scores {baseline.active_accuracy:.3f}, random sampling "
        f"{baseline.accuracy:.3f} [{baseline.ci_low:.3f}, {baseline.ci_high:.3f}]; try another "
        "strategy (e.g. adaptive) or check the features"
    )


def _status(n_unlabeled: int, metrics: Mapping[str, Any] | None) -> str:
    if metrics is not None and metrics.get("stop"):
        return f"stop now: {metrics.get('stop_reason', 'the stopping rule was met')}"
    if n_unlabeled == 0:
        return "stop now: the pool is exhausted (every item is labeled or queued)"
    if metrics is None:
        return "continue: no model yet; label the first batch"
    reason = str(metrics.get("stop_reason") or "the stopping rule is not met")
    return reason if reason.startswith("continue") else f"continue: {reason}"


def _curve(versions: Any, metric: str) -> list[tuple[int, float]]:
    return [
        (int(v.metrics.get("n_labels", 0)), float(v.metrics[metric]))
        for v in versions
        if v.metrics.get(metric) is not None
    ]


def _evaluation_counts(store: BaseStore, project_id: int) -> tuple[int, dict[str, int]]:
    """``(n_validation, class counts of the evaluation labels)``.

    The evaluation labels are the validation split's; without one, the training labels (the
    holdout and the cross-validation draw from them). Multi-label labels are not counted.
    """
    val: dict[str, int] = {}
    train: dict[str, int] = {}
    n_val = 0
    # grouped by the store: a million labelled items are never listed for the dashboard
    for label, split, n in store.count_labeled_by_split(project_id):
        is_val = split == "validation"
        n_val += n if is_val else 0
        if isinstance(label, str):
            counts = val if is_val else train
            counts[label] = counts.get(label, 0) + n
    return n_val, (val if n_val else train)


def _reference(settings: Any, project_id: int) -> dict[str, Any] | None:
    if settings is None or getattr(settings, "data_dir", None) is None:
        return None
    try:
        data = json.loads(reference_path(settings.data_dir, project_id).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("curves"), dict) else None


def project_progress(
    store: BaseStore, project_id: int, *, settings: Any = None, now: datetime | None = None
) -> Progress:
    """Progress and business numbers of a project (see :class:`Progress`).

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings, optional
        ``data_dir`` holds the project's reference curves, if any.
    now : datetime, optional
        End of the 24-hour throughput window.
    """
    project = store.get_project(project_id)
    now = utcnow() if now is None else now
    versions = store.list_model_versions(project_id)
    curve = _curve(versions, "accuracy")
    f1_curve = _curve(versions, "macro_f1")
    random_curve = [
        (int(v.metrics["n_random"]), float(v.metrics["random_accuracy"]))
        for v in versions
        if v.metrics.get("random_accuracy") is not None and v.metrics.get("n_random")
    ]
    n_annotations = store.count_annotations(project_id)
    rounds = store.list_rounds(project_id)
    # only the throughput window's answer times: the whole history can be millions
    times = store.list_annotation_times(project_id, now - THROUGHPUT_WINDOW, now)
    latest = versions[-1].metrics if versions else None
    n_val, counts = _evaluation_counts(store, project_id)
    n_eval = int(latest.get("n_validation") or 0) if latest else 0
    baseline = random_baseline(
        random_curve,
        curve,
        n_eval or n_val,
        n_random_now=int(latest.get("n_random") or 0) if latest else None,
    )
    # the savings rest on the random fit: no baseline, no savings (one story on the page)
    savings = (
        savings_vs_random(curve, random_curve, project.label_cost) if baseline.ready else Savings()
    )
    majority = majority_baseline(counts)
    found = stopping_target_metric(project.stopping)
    target_metric, target = found if found is not None else (None, None)
    if target_metric is not None:
        headline = "macro_f1" if target_metric == "macro_f1" else "accuracy"
    else:
        imbalanced = majority is not None and majority.share >= IMBALANCED_SHARE
        headline = "macro_f1" if imbalanced else "accuracy"
    target_curve = _curve(versions, target_metric) if target_metric else []
    # one grouped count: at a million items each count reads the whole status index
    by_status = store.count_items_by_status(project_id)
    n_items = sum(by_status.values())
    throughput = active_labels_per_hour(times)
    retrain_s = next(
        (
            v.metrics["retrain_seconds"]
            for v in reversed(versions)
            if v.metrics.get("retrain_seconds") is not None
        ),
        None,
    )
    # annotators label side by side: the team's rate is the sum of theirs
    advice = advise_batch_size(sum(throughput.values()) or None, retrain_s)

    return Progress(
        project_id=project_id,
        n_items=n_items,
        n_labeled=by_status.get("labeled", 0),
        n_unlabeled=by_status.get("unlabeled", 0),
        n_annotations=n_annotations,
        rounds=len(rounds),
        open_rounds=sum(r.closed is None for r in rounds),
        queue_depth=store.queue_depth(project_id, now=now),
        n_validation=n_val,
        n_to_label=n_items - n_val,
        learning_curve=curve,
        random_curve=random_curve,
        random_accuracy_estimate=savings.random_accuracy_estimate,
        random_baseline=asdict(baseline),
        macro_f1=None if latest is None else latest.get("macro_f1"),
        macro_f1_curve=f1_curve,
        majority_baseline=None if majority is None else asdict(majority),
        headline_metric=headline,
        reference=_reference(settings, project_id),
        throughput=throughput,
        cost=n_annotations * project.label_cost,
        accuracy=None if latest is None else latest.get("accuracy"),
        ece=None if latest is None else latest.get("ece"),
        target=target,
        target_metric=target_metric,
        projected_labels_to_target=projected_labels_to_target(target_curve, target),
        labels_saved=savings.labels_saved,
        money_saved=savings.money_saved,
        stopping_status=_status(by_status.get("unlabeled", 0), latest),
        quality=quality_counts(store, project_id),
        strategy_health=health_rows(versions),
        strategy_warning=behind_random_note(baseline),
        batch_advice=asdict(advice),
    )
