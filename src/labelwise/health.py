"""Strategy health: per-round signals that a strategy is (or is not) helping, no extra labels.

Pure functions of predictions and labels the loop already has, so the library, the simulator
(:class:`labelwise.simulate.RoundPoint`) and the service can show the same numbers:

- :func:`prediction_agreement` -- share of a fixed stop set on which the new model predicts what
  the previous one did. Near 1 for several rounds: the batches no longer change the model.
- :func:`batch_accuracy` -- accuracy of the model that *chose* a batch on that batch's labels.
  Informative batches are hard for the model that picked them (well below its test accuracy);
  a batch the model already gets right taught it little.
- :func:`class_balance_tvd` -- total variation distance between the batch's label distribution
  and the pool's predicted one. Near 0: the batch looks like the pool. Large: the strategy
  concentrates on some classes (wanted for a rare class, a warning sign otherwise).
- :func:`behind_random` -- whether a strategy's curves fall behind random sampling's beyond
  noise (paired over seeds, bootstrap interval), where a random curve exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BehindRandom",
    "batch_accuracy",
    "behind_random",
    "class_balance_tvd",
    "prediction_agreement",
]


def prediction_agreement(previous: np.ndarray, current: np.ndarray) -> float:
    """Share of rows on which two models predict the same label.

    Parameters
    ----------
    previous, current : ndarray of shape (n_stop,) or (n_stop, n_labels)
        Predictions of the previous and the new model on the same stop set (multi-label: a
        row agrees when every label does).

    Returns
    -------
    float
        In ``[0, 1]``; NaN for an empty stop set. ``[0, 1, 1, 2]`` vs ``[0, 1, 2, 2]`` gives
        ``0.75``.
    """
    previous, current = np.asarray(previous), np.asarray(current)
    if previous.shape[0] == 0:
        return float("nan")
    same = previous == current
    if same.ndim == 2:
        same = same.all(axis=1)
    return float(same.mean())


def batch_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the selecting model on the batch it chose, once labelled.

    Parameters
    ----------
    predicted : ndarray of shape (k,)
        The selecting model's predictions on the batch.
    labels : ndarray of shape (k,)
        The batch's labels.

    Returns
    -------
    float
        In ``[0, 1]``; NaN for an empty batch. ``[0, 1, 1]`` vs ``[0, 0, 1]`` gives ``2/3``.
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if labels.shape[0] == 0:
        return float("nan")
    return float((predicted == labels).mean())


def class_balance_tvd(labels: np.ndarray, pool_predicted: np.ndarray, classes: Any) -> float:
    """Total variation distance between the batch's classes and the pool's predicted classes.

    Parameters
    ----------
    labels : ndarray of shape (k,)
        The batch's labels.
    pool_predicted : ndarray of shape (n_pool_sample,)
        Predicted labels on (a sample of) the unlabelled pool.
    classes : array-like of shape (n_classes,)
        Every class; labels outside it are ignored.

    Returns
    -------
    float
        ``0.5 * sum_c |p_batch(c) - p_pool(c)|`` in ``[0, 1]``; NaN if either side is empty.
        A batch ``[a, a]`` against a pool predicted ``[a, b]`` gives ``0.5``.
    """
    classes = np.asarray(classes)
    labels, pool_predicted = np.asarray(labels), np.asarray(pool_predicted)

    def dist(v: np.ndarray) -> np.ndarray | None:
        counts = np.array([(v == c).sum() for c in classes], dtype=np.float64)
        return counts / counts.sum() if counts.sum() else None

    a, b = dist(labels), dist(pool_predicted)
    if a is None or b is None:
        return float("nan")
    return float(0.5 * np.abs(a - b).sum())


@dataclass(frozen=True)
class BehindRandom:
    """Paired comparison of a strategy's curves with random sampling's.

    Attributes
    ----------
    behind : bool
        True when the whole interval of the mean difference is below 0: the strategy is worse
        than random beyond noise.
    difference : float
        Mean over seeds of ``strategy - random`` (e.g. area under the learning curve).
    low, high : float
        Percentile bootstrap interval of that mean.
    """

    behind: bool
    difference: float
    low: float
    high: float


def behind_random(
    strategy_values: Sequence[float],
    random_values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    random_state: int = 0,
) -> BehindRandom:
    """Whether a strategy falls behind random sampling beyond noise, paired over seeds.

    Parameters
    ----------
    strategy_values, random_values : array-like of shape (n_seeds,)
        One number per seed, higher is better (area under the learning curve, or quality at a
        fixed number of labels), seed ``i`` of both from the same initial set.
    confidence : float
    n_boot : int
    random_state : int

    Returns
    -------
    BehindRandom
        ``[0.80, 0.82, 0.81]`` vs ``[0.85, 0.86, 0.84]``: every difference is negative, so the
        interval is below 0 and ``behind`` is True.
    """
    d = np.asarray(strategy_values, dtype=np.float64) - np.asarray(random_values, dtype=np.float64)
    rng = np.random.RandomState(random_state)
    means = d[rng.randint(d.shape[0], size=(n_boot, d.shape[0]))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return BehindRandom(bool(hi < 0), float(d.mean()), float(lo), float(hi))
