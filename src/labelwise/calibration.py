"""Calibration: temperature scaling, expected calibration error, reliability curves.

Uncertainty sampling trusts ``predict_proba``; an over-confident model makes every item look
certain. :class:`TemperatureScaling` (Guo et al., 2017) fits one scalar ``T`` on held-out
labelled data and rescales probabilities as ``softmax(log p / T)``: ``T > 1`` softens an
over-confident model, ``T < 1`` sharpens an under-confident one, and the predicted class never
changes. Feed calibrated probabilities to strategies with
``Session(..., proba_transform=scaler.transform)`` or wrap the model in :class:`CalibratedModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from labelwise.errors import LabelMismatchError, LabelwiseError, NotFittedError
from labelwise.metrics import confidence_and_correct
from labelwise.tasks import TaskType
from labelwise.validation import check_proba

__all__ = [  # noqa: F822 (CalibratedModel is re-exported lazily by __getattr__)
    "CalibratedModel",
    "ReliabilityCurve",
    "TemperatureScaling",
    "expected_calibration_error",
    "reliability_curve",
    "temperature_scale",
]

#: Probabilities are clipped here before the log, so a hard 0 becomes a large finite logit.
EPS = 1e-12


def _as_logits(proba: np.ndarray) -> np.ndarray:
    """``log p`` with ``p`` clipped to ``[EPS, 1]``; same dtype as ``proba``."""
    return np.log(np.clip(proba, EPS, 1.0))


def temperature_scale(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``logits / temperature``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Logits, or log-probabilities (``log p``; the softmax ignores per-row constants).
    temperature : float
        ``> 0``; ``1`` returns ``softmax(logits)`` unchanged.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        Rows sum to 1; same floating dtype as ``logits``.
    """
    return softmax(logits / np.asarray(temperature, dtype=logits.dtype), axis=1)


def _column_labels(y: Any, n_classes: int, classes: Any) -> np.ndarray:
    """True labels as column indices into ``proba``; raise on labels outside the columns."""
    y = np.asarray(y)
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape[0] != n_classes:
            raise LabelMismatchError(
                f"classes has {classes.shape[0]} entries but proba has {n_classes} columns; "
                "pass the model's classes_."
            )
        order = np.argsort(classes)
        pos = np.searchsorted(classes, y, sorter=order).clip(0, n_classes - 1)
        col = order[pos]
        bad = classes[col] != y
    else:
        if not np.issubdtype(y.dtype, np.integer):
            raise LabelMismatchError(
                f"y has dtype {y.dtype}; pass classes= (the model's classes_) to map labels to "
                "proba columns, or give y as column indices."
            )
        col = y.astype(np.int64)
        bad = (col < 0) | (col >= n_classes)
    if bad.any():
        first = y[np.flatnonzero(bad)[0]]
        valid = list(classes) if classes is not None else f"0..{n_classes - 1}"
        raise LabelMismatchError(f"label {first!r} is not a proba column; valid labels: {valid}")
    return col


def _check_pair(proba: Any, y: Any, classes: Any, *, logits: bool = False):
    if logits:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or not np.isfinite(proba).all():
            raise LabelwiseError("logits must be a finite 2-D array (n_samples, n_classes).")
    else:
        proba = check_proba(proba, TaskType.MULTICLASS)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != proba.shape[0]:
        raise LabelMismatchError(
            f"y must be 1-D with one label per row of proba ({proba.shape[0]}); got shape "
            f"{y.shape}."
        )
    if proba.shape[0] == 0:
        raise LabelwiseError("calibration needs at least one labelled sample; got none.")
    return proba, _column_labels(y, proba.shape[1], classes)


def negative_log_likelihood(logits: np.ndarray, y_col: np.ndarray, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / T)`` at the true columns.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y_col : ndarray of shape (n_samples,)
        True labels as column indices.
    temperature : float

    Returns
    -------
    nll : float
    """
    logp = log_softmax(logits / temperature, axis=1)
    return float(-logp[np.arange(logp.shape[0]), y_col].mean())


class TemperatureScaling:
    """Temperature scaling fitted by minimising the validation negative log-likelihood.

    ``fit`` searches ``log T`` on a bounded interval with :func:`scipy.optimize.minimize_scalar`.
    Inputs are probabilities (``predict_proba`` output; their log serves as logits, which is
    exact for softmax models up to a per-row constant) unless ``from_logits=True``. Works for
    any number of columns, binary (2 columns) included.

    Parameters
    ----------
    from_logits : bool
        Inputs of ``fit`` and ``transform`` are logits rather than probabilities.
    bounds : tuple of float
        Search interval for ``T``.

    Attributes
    ----------
    temperature_ : float
        Fitted temperature; ``> 1`` means the model was over-confident.
    """

    def __init__(self, *, from_logits: bool = False, bounds: tuple[float, float] = (0.05, 20.0)):
        self.from_logits = from_logits
        self.bounds = bounds

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return x if self.from_logits else _as_logits(x)

    def fit(self, proba: Any, y: Any, *, classes: Any = None) -> TemperatureScaling:
        """Fit ``T`` on held-out data.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Probabilities (or logits with ``from_logits=True``) of the uncalibrated model.
        y : array-like of shape (n_samples,)
            True labels: column indices, or labels from ``classes``.
        classes : array-like of shape (n_classes,), optional
            Label of each column (the model's ``classes_``).

        Returns
        -------
        self
        """
        low, high = self.bounds
        if not 0 < low < high:
            raise LabelwiseError(f"bounds must satisfy 0 < low < high; got {self.bounds!r}.")
        proba, y_col = _check_pair(proba, y, classes, logits=self.from_logits)
        logits = self._logits(np.asarray(proba, dtype=np.float64))
        res = minimize_scalar(
            lambda log_t: negative_log_likelihood(logits, y_col, float(np.exp(log_t))),
            bounds=(np.log(low), np.log(high)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, proba: Any) -> np.ndarray:
        """Calibrated probabilities ``softmax(log p / T)``, shape (n_samples, n_classes).

        float32 input stays float32. The argmax (predicted class) is unchanged.
        """
        if not hasattr(self, "temperature_"):
            raise NotFittedError(
                "TemperatureScaling is not fitted; call fit(proba_val, y_val) on held-out data."
            )
        proba = np.asarray(proba)
        if not np.issubdtype(proba.dtype, np.floating):
            proba = proba.astype(np.float64)
        return temperature_scale(self._logits(proba), self.temperature_)

    __call__ = transform

    def fit_transform(self, proba: Any, y: Any, *, classes: Any = None) -> np.ndarray:
        return self.fit(proba, y, classes=classes).transform(proba)

    def __repr__(self) -> str:
        t = getattr(self, "temperature_", None)
        fitted = f", temperature_={t:.4g}" if t is not None else ""
        return f"TemperatureScaling(from_logits={self.from_logits!r}{fitted})"


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration summary (empty bins hold NaN confidence and accuracy).

    Attributes
    ----------
    bin_edges : ndarray of shape (n_bins + 1,)
        Equal-width edges on ``[0, 1]``; bin ``i`` is ``(edges[i], edges[i + 1]]``.
    confidence : ndarray of shape (n_bins,)
        Mean top-class probability in each bin.
    accuracy : ndarray of shape (n_bins,)
        Fraction of correct top-class predictions in each bin.
    counts : ndarray of shape (n_bins,), int64
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray


def _reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> ReliabilityCurve:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins (a, b]: the bin index is the number of inner edges strictly below.
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
        acc = np.bincount(bins, weights=correct.astype(np.float64), minlength=n_bins) / counts
    return ReliabilityCurve(edges, conf, acc, counts.astype(np.int64))


def _check_bins(n_bins: object) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise LabelwiseError(f"n_bins must be a positive integer; got {n_bins!r}.")
    return int(n_bins)


def reliability_curve(
    proba: Any, y: Any, n_bins: int = 15, *, classes: Any = None
) -> ReliabilityCurve:
    """Confidence vs accuracy in equal-width bins of top-class probability.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
    y : array-like of shape (n_samples,)
        Column indices, or labels from ``classes``.
    n_bins : int
    classes : array-like of shape (n_classes,), optional

    Returns
    -------
    ReliabilityCurve
    """
    n_bins = _check_bins(n_bins)
    proba, y_col = _check_pair(proba, y, classes)
    return _reliability(*confidence_and_correct(proba, y_col), n_bins)


def expected_calibration_error(
    proba: Any, y: Any, n_bins: int = 15, *, classes: Any = None
) -> float:
    """Expected calibration error (Guo et al., 2017).

    ``sum_b (n_b / n) * |accuracy_b - confidence_b|`` over equal-width bins ``(i/M, (i+1)/M]``
    of top-class probability.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
    y : array-like of shape (n_samples,)
        Column indices, or labels from ``classes``.
    n_bins : int
    classes : array-like of shape (n_classes,), optional

    Returns
    -------
    ece : float
        In ``[0, 1]``; 0 is perfectly calibrated.
    """
    curve = reliability_curve(proba, y, n_bins, classes=classes)
    full = curve.counts > 0
    weights = curve.counts[full] / curve.counts.sum()
    return float(np.sum(weights * np.abs(curve.accuracy[full] - curve.confidence[full])))


def __getattr__(name: str) -> Any:
    # CalibratedModel fits models, so it lives in the compute band (labelwise.models.calibrated);
    # it is re-exported here for ``from labelwise.calibration import CalibratedModel``.
    if name == "CalibratedModel":
        from labelwise.models.calibrated import CalibratedModel

        return CalibratedModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
