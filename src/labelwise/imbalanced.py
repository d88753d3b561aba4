"""Metrics for imbalanced binary problems (fraud-like: 0.1–5% positives).

Accuracy says nothing when 99.5% of the rows are negative; these metrics rank the rows by a
score (higher = more likely positive) and look only at how the positives come out on top.
Both validate their input at the boundary and raise :class:`~labelwise.errors.LabelwiseError`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from labelwise.errors import LabelwiseError

__all__ = ["pr_auc", "recall_at_precision"]


def _check_binary(
    y_true: object, scores: object, pos_label: object
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(is_positive, scores)`` as 1-D arrays, or raise a LabelwiseError."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    if y_true.ndim != 1 or scores.ndim != 1:
        raise LabelwiseError(
            f"y_true and scores must be 1-D; got shapes {y_true.shape} and {scores.shape}. "
            "For predict_proba output pass the positive column, e.g. proba[:, 1]."
        )
    if y_true.shape[0] != scores.shape[0]:
        raise LabelwiseError(
            f"y_true has {y_true.shape[0]} rows but scores has {scores.shape[0]}; "
            "pass one score per labelled row."
        )
    real = np.issubdtype(scores.dtype, np.number) and not np.iscomplexobj(scores)
    if not real:
        raise LabelwiseError(f"scores must be real numbers; got dtype {scores.dtype}.")
    if not np.isfinite(scores).all():
        raise LabelwiseError("scores contain NaN or inf; check the model that produced them.")
    is_pos = y_true == pos_label
    if not is_pos.any():
        raise LabelwiseError(
            f"y_true has no positive rows (pos_label={pos_label!r}); the metric is undefined. "
            "Pass the positive label with pos_label=... or use a test set with positives."
        )
    return is_pos, scores


def pr_auc(y_true: np.ndarray, scores: np.ndarray, *, pos_label: object = 1) -> float:
    """Area under the precision–recall curve, as average precision.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the score thresholds (no interpolation), as in
    :func:`sklearn.metrics.average_precision_score`. A random ranking scores the positive rate;
    a perfect one scores 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; rows equal to ``pos_label`` are positives.
    scores : array-like of shape (n_samples,)
        Higher means more likely positive (a probability, a decision value or a rank).
    pos_label : object, default=1
        The positive label (e.g. ``dataset.positive_label``).

    Returns
    -------
    ap : float
        In ``[0, 1]``; labels ``[1, 0, 1, 0]`` with scores ``[.9, .8, .7, .1]`` give
        ``0.5 * 1 + 0.5 * 2/3 = 0.8333``.

    Raises
    ------
    LabelwiseError
        On shapes that are not 1-D or do not match, non-finite scores, or no positive row.
    """
    is_pos, scores = _check_binary(y_true, scores, pos_label)
    return float(average_precision_score(is_pos, scores))


def recall_at_precision(
    y_true: np.ndarray, scores: np.ndarray, precision: float = 0.9, *, pos_label: object = 1
) -> float:
    """Highest recall reachable by a score threshold whose precision is at least ``precision``.

    "How many of the frauds can we catch if at most 1 alert in 10 may be false?" Returns 0.0
    when no threshold reaches the precision.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; rows equal to ``pos_label`` are positives.
    scores : array-like of shape (n_samples,)
        Higher means more likely positive.
    precision : float, default=0.9
        The required precision, in ``(0, 1]``.
    pos_label : object, default=1
        The positive label.

    Returns
    -------
    recall : float
        In ``[0, 1]``; labels ``[1, 0, 1, 0]`` with scores ``[.9, .8, .7, .1]`` give 0.5 at
        precision 0.9 (threshold 0.9: 1/1 precise, 1/2 recalled) and 1.0 at precision 0.6.

    Raises
    ------
    LabelwiseError
        On bad shapes or scores (see :func:`pr_auc`) or a precision outside ``(0, 1]``.
    """
    if isinstance(precision, bool) or not isinstance(precision, int | float | np.floating):
        raise LabelwiseError(f"precision must be a number in (0, 1]; got {precision!r}.")
    if not 0.0 < float(precision) <= 1.0:
        raise LabelwiseError(f"precision must lie in (0, 1]; got {precision!r}.")
    is_pos, scores = _check_binary(y_true, scores, pos_label)
    prec, rec, _ = precision_recall_curve(is_pos, scores)
    ok = prec >= float(precision)
    return float(rec[ok].max()) if ok.any() else 0.0
