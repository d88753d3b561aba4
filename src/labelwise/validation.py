"""Checks run once at the public boundary; everything behind it trusts its input."""

from __future__ import annotations

import numbers

import numpy as np

from labelwise.errors import BatchSizeError, EmptyPoolError, InvalidProbaError
from labelwise.tasks import TaskType

PROBA_ATOL = 1e-3


def check_proba(proba: np.ndarray, task_type: TaskType | str = TaskType.MULTICLASS) -> np.ndarray:
    """Validate predicted probabilities and return them as a 2-D floating array.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Class probabilities (multiclass/binary: rows sum to 1) or per-label positive
        probabilities (multilabel: each entry in [0, 1]).
    task_type : {"multiclass", "binary", "multilabel"}

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)

    Raises
    ------
    InvalidProbaError
        On a wrong number of dimensions, NaN/inf, values outside [0, 1], or rows that do not
        sum to 1 for single-label tasks.
    """
    proba = np.asarray(proba)
    if proba.ndim != 2:
        raise InvalidProbaError(
            f"proba must be 2-D (n_samples, n_classes); got shape {proba.shape}. "
            "For a single column of positive-class probabilities, pass np.c_[1 - p, p]."
        )
    if not np.issubdtype(proba.dtype, np.floating):
        proba = proba.astype(np.float64)
    if proba.shape[0] == 0:
        return proba
    # One reduction catches NaN/inf (they propagate into the row sums) and the sums are needed
    # for the single-label check anyway; the exact row is looked up only on failure.
    sums = proba.sum(axis=1)
    if not np.isfinite(sums).all():
        # A non-finite sum is NaN/inf in the row, or finite values so large they overflow
        # (those fail the [0, 1] range check below).
        bad_rows = np.flatnonzero(~np.isfinite(proba).all(axis=1))
        if bad_rows.shape[0]:
            raise InvalidProbaError(
                f"proba contains NaN or inf (first at row {int(bad_rows[0])}); check the "
                "model's predict_proba or the features it was given."
            )
    lo, hi = float(proba.min()), float(proba.max())
    if lo < -PROBA_ATOL or hi > 1 + PROBA_ATOL:
        raise InvalidProbaError(
            f"proba values must lie in [0, 1]; got min {lo:.4g}, max {hi:.4g}. Pass "
            "probabilities, not decision scores or logits."
        )
    if TaskType(task_type) != TaskType.MULTILABEL:
        if proba.shape[1] < 2:
            raise InvalidProbaError(
                f"single-label proba needs at least 2 columns; got {proba.shape[1]}."
            )
        off = np.abs(sums - 1.0) > PROBA_ATOL
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise InvalidProbaError(
                f"proba rows must sum to 1; row {row} sums to {float(sums[row]):.6g}. "
                "For multi-label problems pass task_type='multilabel'."
            )
    return proba


def check_batch_size(k: object, n_candidates: int) -> int:
    """Validate a batch size against the number of candidates.

    Raises
    ------
    EmptyPoolError
        If there are no candidates.
    BatchSizeError
        If ``k`` is not a positive integer or exceeds ``n_candidates``.
    """
    if n_candidates == 0:
        raise EmptyPoolError(
            "the pool has no unlabeled items to select from; add items or stop the loop."
        )
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise BatchSizeError(f"batch size must be a positive integer; got {k!r}.")
    if k > n_candidates:
        raise BatchSizeError(
            f"batch size {k} is larger than the {n_candidates} unlabeled items in the pool; "
            f"ask for at most {n_candidates}."
        )
    return int(k)
