"""Small metric helpers shared by stopping, calibration and evaluation.

Pure numpy / scikit-learn functions; they do not validate (callers validate at their boundary).
"""

from __future__ import annotations

import numpy as np

__all__ = ["agreement_kappa", "confidence_and_correct"]


def agreement_kappa(pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Cohen's kappa between two models' predictions on the same items.

    Identical predictions count as full agreement (``1.0``) even when every item gets the same
    class, where Cohen's kappa itself is ``0 / 0`` (NaN). Any other NaN is reported as ``0.0``
    (no agreement beyond chance).

    Parameters
    ----------
    pred_a, pred_b : ndarray of shape (n_samples,)
        Predicted labels of two models on one stop set.

    Returns
    -------
    kappa : float
        In ``[-1, 1]``; ``[0, 1, 1]`` vs ``[0, 1, 0]`` gives ``0.4``.
    """
    from sklearn.metrics import cohen_kappa_score  # here, not at the top: keeps imports light

    pred_a = np.asarray(pred_a)
    pred_b = np.asarray(pred_b)
    if np.array_equal(pred_a, pred_b):
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(cohen_kappa_score(pred_a, pred_b))
    return 0.0 if np.isnan(kappa) else kappa


def confidence_and_correct(proba: np.ndarray, y_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-class confidence and whether the top class is right, per sample.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    y_col : ndarray of shape (n_samples,)
        True labels as column indices into ``proba``.

    Returns
    -------
    confidence : ndarray of shape (n_samples,)
        ``max_c p_c``.
    correct : ndarray of shape (n_samples,), bool
        ``argmax_c p_c == y_col``.
    """
    pred = proba.argmax(axis=1)
    confidence = proba[np.arange(proba.shape[0]), pred]
    return confidence, pred == y_col
