"""Learning-curve arithmetic behind a project's progress: numbers in, numbers out.

:mod:`labelwise.service.progress` reads the store and calls these; they know nothing of it.

How the random-sampling comparison is estimated
-----------------------------------------------
Both learning curves (``(n_labels, accuracy)`` points of the active model, and of a model fitted
on randomly drawn labels only) are fitted with the usual power law of learning curves,
``acc(n) = a - b * n ** -c`` (:func:`fit_power_law`, needs three points), and inverted
(:func:`labels_for_accuracy`): the labels random sampling would need to reach the active model's
current accuracy, minus the labels actually used, are the labels saved (negative if active
learning did worse; :func:`savings_vs_random`). With fewer than three random points the estimate
is ``None``: no number is better than a made-up one. The same fit of the active curve projects
the labels still needed to reach a target accuracy (:func:`projected_labels_to_target`).

When a random baseline is shown
-------------------------------
A model fitted on a handful of random labels says nothing about random sampling (2 labels give
the majority class, whatever the data). :func:`random_baseline` therefore calls the baseline
*ready* only with at least :data:`RANDOM_MIN_LABELS` random labels behind its latest point and
:data:`RANDOM_MIN_POINTS` points, and reports it with a 95 % Wilson interval on the validation
accuracy (:func:`wilson_interval`), beside the active curve's accuracy at the *same* number of
labels (interpolated, never extrapolated). Before that it gives one sentence saying what is
missing; the savings estimate is left out too. The interval covers the evaluation sample only:
another draw of random labels would move the point further (the interval says so).

Other numbers
-------------
- :func:`majority_baseline`: what always answering the most frequent class scores (accuracy,
  macro-F1, balanced accuracy): the floor a model has to beat.
- :func:`active_labels_per_hour`: labels per hour of *active* labeling time, the sum of the gaps
  between an annotator's consecutive labels with gaps over :data:`BREAK_SECONDS` counted as
  breaks (neither the gap nor the label after it is timed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BREAK_SECONDS",
    "RANDOM_MIN_LABELS",
    "RANDOM_MIN_POINTS",
    "BatchAdvice",
    "MajorityBaseline",
    "RandomBaseline",
    "Savings",
    "active_labels_per_hour",
    "advise_batch_size",
    "fit_power_law",
    "interpolate_curve",
    "labels_for_accuracy",
    "labels_per_hour",
    "majority_baseline",
    "power_law",
    "projected_labels_to_target",
    "random_baseline",
    "savings_vs_random",
    "stopping_target",
    "stopping_target_metric",
    "wilson_interval",
]

Curve = Sequence[tuple[float, float]]

#: A random-sampling baseline is shown from this many random labels behind its latest point...
RANDOM_MIN_LABELS = 20
#: ...and this many measured points (retrains).
RANDOM_MIN_POINTS = 3
#: A gap between two labels longer than this (seconds) is a break, not labeling time.
BREAK_SECONDS = 300.0
_Z95 = 1.959963984540054  # standard normal quantile at 0.975


def power_law(n: Any, a: float, b: float, c: float) -> Any:
    """The learning-curve model ``a - b * n ** -c``.

    Parameters
    ----------
    n : float or ndarray of shape (n_points,)
        Numbers of labels.
    a, b, c : float
        Ceiling, gap at one label, and decay rate.

    Returns
    -------
    float or ndarray of shape (n_points,)
        ``power_law(10, 1, 1, 1) == 0.9``.
    """
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
        Points on ``0.98 - 1 / n`` give back ``(0.98, 1, 1)``.
    """
    # scipy.optimize is imported here: callers that only read progress numbers skip it.
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
                power_law, n, acc, p0=(min(1.0, acc.max() + 0.05), 1.0, 0.5),
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
    """The accuracy ``target`` of a stored stopping rule (searched through ``any``/``all``).

    ``{"any": [{"plateau": None}, {"target": 0.9}]} -> 0.9``; a target on another metric
    (``{"target": {"metric": "f1", "target": 0.8}}``) or no target gives ``None``.
    """
    found = stopping_target_metric(rule)
    return found[1] if found is not None and found[0] == "accuracy" else None


def stopping_target_metric(rule: Mapping[str, Any] | None) -> tuple[str, float] | None:
    """``(metric, target)`` of the first ``target`` in a stored stopping rule, any metric.

    ``{"target": 0.9} -> ("accuracy", 0.9)``; ``{"any": [{"target": {"metric": "macro_f1",
    "target": 0.6}}]} -> ("macro_f1", 0.6)``; no target gives ``None``.
    """
    if not rule:
        return None
    for key, value in rule.items():
        if key == "target":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return "accuracy", float(value)
            if isinstance(value, Mapping) and "target" in value:
                return str(value.get("metric", "accuracy")), float(value["target"])
        elif key in ("any", "all") and isinstance(value, list):
            for sub in value:
                found = stopping_target_metric(sub) if isinstance(sub, Mapping) else None
                if found is not None:
                    return found
    return None


@dataclass(frozen=True)
class Savings:
    """What active learning saved against random sampling, at the active model's accuracy.

    Attributes
    ----------
    random_accuracy_estimate : float or None
        Random sampling's fitted accuracy at the active curve's latest ``n_labels``.
    labels_saved : float or None
        Labels random sampling would need for the active model's accuracy, minus those used.
    money_saved : float or None
        ``labels_saved * label_cost``.
    """

    random_accuracy_estimate: float | None = None
    labels_saved: float | None = None
    money_saved: float | None = None


def savings_vs_random(curve: Curve, random_curve: Curve, label_cost: float) -> Savings:
    """Labels and money saved against random sampling (see the module docstring).

    Parameters
    ----------
    curve : sequence of (n_labels, accuracy), length n_points
        The active model's learning curve, oldest first; the last point is "now".
    random_curve : sequence of (n_random_labels, accuracy), length n_random_points
        The random-labels-only model's curve; needs 3 distinct ``n`` for a fit.
    label_cost : float
        Money per label.

    Returns
    -------
    Savings
        All ``None`` without a random fit or an active point; ``labels_saved`` and
        ``money_saved`` also ``None`` when the random fit never reaches the current accuracy.
        Random points on ``0.98 - 2 / n`` and an active model at 0.93 with 20 labels: random
        needs ``2 / 0.05 = 40`` labels, so 20 are saved.
    """
    random_fit = fit_power_law(*zip(*random_curve, strict=True)) if random_curve else None
    if random_fit is None or not curve:
        return Savings()
    n_now, acc_now = curve[-1]
    estimate = float(power_law(np.float64(n_now), *random_fit))
    n_random_needed = labels_for_accuracy(random_fit, acc_now)
    if n_random_needed is None:
        return Savings(random_accuracy_estimate=estimate)
    labels_saved = n_random_needed - n_now
    return Savings(estimate, labels_saved, labels_saved * label_cost)


def projected_labels_to_target(curve: Curve, target: float | None) -> int | None:
    """More labels the fitted active curve needs to reach ``target``.

    Parameters
    ----------
    curve : sequence of (n_labels, accuracy), length n_points
        Oldest first; the last point is "now".
    target : float or None

    Returns
    -------
    int or None
        0 if the last point already reaches ``target``; ``None`` without a target, without
        three curve points, or if the fitted curve never gets there. Points on ``0.98 - 1 / n``
        up to 20 labels and a target of 0.96: ``1 / 0.02 = 50`` labels, so 30 more.
    """
    if target is None or not curve:
        return None
    if curve[-1][1] >= target:
        return 0
    fit = fit_power_law(*zip(*curve, strict=True))
    if fit is None:
        return None
    needed = labels_for_accuracy(fit, target)
    if needed is None:
        return None
    return max(0, math.ceil(needed - curve[-1][0]))


def labels_per_hour(counts: Mapping[int, int], hours: float) -> dict[int, float]:
    """Labels per hour of each annotator over a window of ``hours``.

    ``labels_per_hour({2: 3, 1: 12}, 24.0) -> {1: 0.5, 2: 0.125}`` (sorted by annotator id).
    """
    return {aid: n / hours for aid, n in sorted(counts.items())}


def active_labels_per_hour(
    times: Mapping[int, Sequence[float]], break_seconds: float = BREAK_SECONDS
) -> dict[int, float]:
    """Labels per hour of active labeling time, per annotator.

    Each label after an annotator's first is timed by the gap since their previous label;
    gaps longer than ``break_seconds`` are breaks (the label after a break is not timed).

    Parameters
    ----------
    times : mapping of annotator id to sequence of float, each of shape (n_labels,)
        When each label was given (seconds, any origin; any order).
    break_seconds : float

    Returns
    -------
    dict of int to float
        Sorted by annotator id; annotators with no timed label (one label, or only breaks)
        are left out. Labels at 0, 10, 20 and 30 s: 3 timed labels in 30 s, 360 per hour;
        adding labels at 4,000 and 4,010 s (a 3,970 s break) gives 4 in 40 s, still 360.
    """
    out: dict[int, float] = {}
    for aid in sorted(times):
        gaps = np.diff(np.sort(np.asarray(times[aid], dtype=np.float64)))
        timed = gaps[gaps <= break_seconds]
        seconds = float(timed.sum())
        if timed.size and seconds > 0:
            out[aid] = timed.size * 3600.0 / seconds
    return out


@dataclass(frozen=True)
class BatchAdvice:
    """A batch size that keeps annotators busy through a retrain (:func:`advise_batch_size`).

    Attributes
    ----------
    batch_size : int or None
        ``None`` until throughput and a retrain time have been measured.
    labels_during_retrain : float or None
        Labels the team gives while one retrain runs: what the queue must still hold.
    note : str
        One sentence for the dashboard and ``labelwise project status``.
    """

    batch_size: int | None
    labels_during_retrain: float | None
    note: str


def advise_batch_size(
    labels_per_hour: float | None,
    retrain_seconds: float | None,
    *,
    minimum: int = 5,
    step: int = 5,
) -> BatchAdvice:
    """The smallest batch whose labeling time covers a retrain, so annotators never wait.

    While a retrain runs the team keeps labeling at ``labels_per_hour``; a batch that takes at
    least ``retrain_seconds`` to label can be selected while the previous one is labeled
    (``round_overlap``) without the queue running dry, and a smaller one only adds waits. The
    count is rounded up to a multiple of ``step`` and is at least ``minimum``.

    Parameters
    ----------
    labels_per_hour : float or None
        The team's measured throughput (the sum over annotators working at once).
    retrain_seconds : float or None
        A measured retrain (fit, evaluation, selection of the next batch).
    minimum, step : int

    Returns
    -------
    BatchAdvice
        1,000 labels/hour and a 100 s retrain: 27.8 labels during a retrain, rounded up to
        30. 120 labels/hour and 90 s: 3 labels, so the minimum, 5.
    """
    if not labels_per_hour or labels_per_hour <= 0 or retrain_seconds is None:
        return BatchAdvice(
            None, None, "no advice yet: it needs measured throughput and one retrain's time"
        )
    during = float(labels_per_hour) * float(retrain_seconds) / 3600.0
    size = max(int(minimum), step * math.ceil(round(during, 9) / step))
    note = (
        f"batch size {size}: at {labels_per_hour:,.0f} labels/hour the team labels "
        f"{during:,.1f} items during a {retrain_seconds:,.0f} s retrain"
    )
    return BatchAdvice(size, during, note)


def wilson_interval(successes: float, n: int, confidence_z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (95 % by default).

    Parameters
    ----------
    successes : float
        Correct predictions (``accuracy * n``; rounded to the nearest count).
    n : int
        Evaluated items; ``n <= 0`` gives ``(0.0, 1.0)``.
    confidence_z : float
        Normal quantile (1.96 for 95 %).

    Returns
    -------
    (low, high) : tuple of float
        0 of 10 correct: ``(0, z**2 / (10 + z**2)) = (0, 0.2775)``; 50 of 100:
        ``0.5 -+ z * sqrt(0.25 / 100 + z**2 / 40000) / (1 + z**2 / 100) = (0.4038, 0.5962)``.
    """
    if n <= 0:
        return 0.0, 1.0
    k = min(max(round(successes), 0), n)
    p, z2 = k / n, confidence_z**2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = confidence_z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, center - half), min(1.0, center + half)


def interpolate_curve(curve: Curve, n: float) -> float | None:
    """The curve's value at ``n`` labels, linear between its points; ``None`` outside them.

    ``interpolate_curve([(10, 0.5), (30, 0.7)], 20) -> 0.6``; at 40 it is ``None``: a curve
    is never extrapolated.
    """
    if not curve:
        return None
    pts = sorted(curve)
    xs = np.array([p[0] for p in pts], dtype=np.float64)
    ys = np.array([p[1] for p in pts], dtype=np.float64)
    if n < xs[0] or n > xs[-1]:
        return None
    return float(np.interp(n, xs, ys))


@dataclass(frozen=True)
class MajorityBaseline:
    """What always predicting the most frequent class scores on the evaluation labels.

    Attributes
    ----------
    label : str
        The most frequent class.
    share : float
        Its share of the labels: the accuracy of the baseline.
    accuracy, macro_f1, balanced_accuracy : float
    n : int
        Evaluation labels counted.
    """

    label: str
    share: float
    accuracy: float
    macro_f1: float
    balanced_accuracy: float
    n: int


def majority_baseline(counts: Mapping[Any, int]) -> MajorityBaseline | None:
    """Scores of the constant "most frequent class" prediction, from class counts.

    Parameters
    ----------
    counts : mapping of class to int
        Evaluation labels per class (classes with 0 are ignored).

    Returns
    -------
    MajorityBaseline or None
        ``None`` without labels. With ``k`` classes present and a majority share ``p``:
        accuracy ``p``; macro-F1 ``(2p / (1 + p)) / k`` (the majority class has precision
        ``p`` and recall 1, every other class F1 0); balanced accuracy ``1 / k``.
        ``{"a": 3, "b": 1}``: 0.75, 0.4286, 0.5.
    """
    present = {str(c): int(n) for c, n in counts.items() if n > 0}
    total = sum(present.values())
    if total == 0:
        return None
    # ties go to the first class in sorted order, as a stable, documented choice
    label = max(sorted(present), key=lambda c: present[c])
    p, k = present[label] / total, len(present)
    return MajorityBaseline(label, p, p, (2 * p / (1 + p)) / k, 1.0 / k, total)


@dataclass(frozen=True)
class RandomBaseline:
    """The measured random-sampling baseline, and whether it means something yet.

    Attributes
    ----------
    ready : bool
        At least ``RANDOM_MIN_LABELS`` random labels and ``RANDOM_MIN_POINTS`` points.
    note : str
        One sentence for the page and the CLI: the comparison when ready, else what is missing.
    n_random, n_points : int
        Random labels behind the latest point; points measured.
    accuracy, ci_low, ci_high : float or None
        The latest random-only model's validation accuracy and its 95 % Wilson interval.
    active_accuracy : float or None
        The active curve's accuracy at ``n_random`` labels (interpolated; ``None`` outside it).
    n_eval : int
        Evaluation items behind the accuracy.
    """

    ready: bool
    note: str
    n_random: int = 0
    n_points: int = 0
    accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    active_accuracy: float | None = None
    n_eval: int = 0


def random_baseline(
    random_curve: Curve,
    active_curve: Curve,
    n_eval: int,
    *,
    min_labels: int = RANDOM_MIN_LABELS,
    min_points: int = RANDOM_MIN_POINTS,
    n_random_now: int | None = None,
) -> RandomBaseline:
    """Decide whether the measured random curve is shown, and say so in one sentence.

    Parameters
    ----------
    random_curve : sequence of (n_random_labels, accuracy), length n_points
        Oldest first.
    active_curve : sequence of (n_labels, accuracy)
        The active model's curve, for the comparison at equal labels.
    n_eval : int
        Evaluation items behind each accuracy (the validation split).
    min_labels, min_points : int
        The rule (see the module docstring).
    n_random_now : int, optional
        Random labels so far, when the latest retrain could not fit a random-only model yet
        (one class among them); default the latest point's.

    Returns
    -------
    RandomBaseline
        Not ready with 7 random labels: the note says "needs 20 random labels ... (now 7)".
        Ready at 25 random labels, accuracy 0.6 on 1,000 items: interval (0.5693, 0.6299).
    """
    n_points = len({n for n, _ in random_curve})
    n_random = int(random_curve[-1][0]) if random_curve else 0
    if n_random < min_labels or n_points < min_points:
        now = max(n_random, n_random_now or 0)
        return RandomBaseline(
            False,
            f"Random-sampling baseline not shown yet: it needs {min_labels} random labels "
            f"and {min_points} measured points (now {now} random labels, {n_points} points).",
            now,
            n_points,
            n_eval=n_eval,
        )
    acc = float(random_curve[-1][1])
    lo, hi = wilson_interval(acc * n_eval, n_eval)
    active = interpolate_curve(active_curve, n_random)
    same = "" if active is None else f"active learning {active:.1%}, "
    note = (
        f"At {n_random} labels: {same}random sampling {acc:.1%} (95% CI {lo:.1%}–{hi:.1%}, "
        f"Wilson interval over {n_eval:,} evaluation items; another random draw of the "
        f"labels would move it further)."
    )
    return RandomBaseline(True, note, n_random, n_points, acc, lo, hi, active, n_eval)
