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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Savings",
    "fit_power_law",
    "labels_for_accuracy",
    "labels_per_hour",
    "power_law",
    "projected_labels_to_target",
    "savings_vs_random",
    "stopping_target",
]

Curve = Sequence[tuple[float, float]]


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
