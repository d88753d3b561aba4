"""Uncertainty score functions: pure, vectorised, higher means "query first".

Each function maps ``proba (n_samples, n_classes)`` to ``scores (n_samples,)``. They compute in
the input's floating dtype (float32 stays float32) and do not validate: the strategy classes in
:mod:`labelwise.strategies.uncertainty` validate at the boundary.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "entropy",
    "least_confidence",
    "margin",
    "multilabel_entropy",
    "multilabel_least_confidence",
    "multilabel_margin",
]


def _xlogx(p: np.ndarray) -> np.ndarray:
    # scipy's entr is -x log x with 0 log 0 = 0, in one ufunc pass. Imported here (a dict
    # lookup per call) because scipy.special is most of the import time of this module.
    from scipy.special import entr

    return -entr(p)


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """One minus the probability of the most likely class.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, 1 - 1/n_classes]``; ``[0.5, 0.5] -> 0.5``.
    """
    return 1.0 - proba.max(axis=1)


def margin(proba: np.ndarray) -> np.ndarray:
    """Negative gap between the two most likely classes (small gap = query first).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        ``-(p_(1) - p_(2))`` in ``[-1, 0]``; ``[0.7, 0.2, 0.1] -> -0.5``.
    """
    if proba.shape[1] == 2:
        return -np.abs(proba[:, 0] - proba[:, 1])
    # Two max passes beat a per-row partition for the usual handful of classes.
    rows = np.arange(proba.shape[0])
    best = proba.argmax(axis=1)
    top1 = proba[rows, best]
    rest = proba.copy()
    rest[rows, best] = -np.inf
    return rest.max(axis=1) - top1


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy of the predicted distribution, in nats.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln n_classes]``; ``[0.5, 0.5] -> ln 2``.
    """
    from scipy.special import entr  # here, not at the top: keeps the import light

    return entr(proba).sum(axis=1)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -(_xlogx(p) + _xlogx(1.0 - p))


def multilabel_margin(proba: np.ndarray) -> np.ndarray:
    """Negative mean margin over labels, where a label's margin is ``|2p - 1|``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_labels)
        Independent positive probability per label.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[-1, 0]``; all labels at 0.5 -> 0.
    """
    return -np.abs(2.0 * proba - 1.0).mean(axis=1)


def multilabel_entropy(proba: np.ndarray) -> np.ndarray:
    """Maximum binary entropy across labels, in nats.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_labels)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln 2]``.
    """
    return _binary_entropy(proba).max(axis=1)


def multilabel_least_confidence(proba: np.ndarray) -> np.ndarray:
    """Mean over labels of one minus the confidence in the more likely outcome.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_labels)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, 0.5]``.
    """
    return (1.0 - np.maximum(proba, 1.0 - proba)).mean(axis=1)
