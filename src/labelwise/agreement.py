"""Agreement between annotators: gold accuracy, agreement with consensus, Cohen's and Fleiss' κ.

Pure functions over the vote matrix of :mod:`labelwise.annotators` (``(n_items, n_annotators)``
class indices, ``-1`` where an annotator gave no answer), so the service and the simulator
measure annotators the same way.

- :func:`cohen_kappa` / :func:`pairwise_cohen_kappa`: chance-corrected agreement of two
  annotators on the items both labelled (scikit-learn's ``cohen_kappa_score``).
- :func:`fleiss_kappa`: chance-corrected agreement of many annotators at once, from the
  per-item class counts (Fleiss 1971, Psychological Bulletin 76(5)), items with varying numbers
  of raters allowed.
- :func:`accuracy_against`: each annotator's share of answers equal to a reference label
  (gold labels, or the consensus).

>>> fleiss_kappa([[2, 0], [0, 2]])
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.annotators import vote_counts
from labelwise.errors import LabelwiseError

__all__ = ["accuracy_against", "cohen_kappa", "fleiss_kappa", "pairwise_cohen_kappa"]


def cohen_kappa(a: Any, b: Any) -> float:
    """Cohen's κ of two annotators' answers on the same items (``-1``: no answer, dropped).

    Parameters
    ----------
    a, b : array-like of int of shape (n_items,)

    Returns
    -------
    float
        ``(p_o - p_e) / (1 - p_e)``; ``nan`` with fewer than two shared items, and 1.0 when
        both gave one and the same class throughout (perfect agreement, no chance term).
    """
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise LabelwiseError(f"a and b must be 1-D and the same length; got {a.shape}, {b.shape}.")
    both = (a >= 0) & (b >= 0)
    if both.sum() < 2:
        return float("nan")
    a, b = a[both], b[both]
    if np.unique(np.concatenate([a, b])).size == 1:
        return 1.0  # sklearn divides 0 by 0 here
    return float(cohen_kappa_score(a, b))


def pairwise_cohen_kappa(votes: Any, min_shared: int = 2) -> np.ndarray:
    """Cohen's κ of every pair of annotators on the items both labelled.

    Parameters
    ----------
    votes : array-like of int of shape (n_items, n_annotators)
    min_shared : int, default=2
        Pairs that share fewer items get ``nan``.

    Returns
    -------
    ndarray of shape (n_annotators, n_annotators)
        Symmetric; the diagonal is ``nan`` (an annotator is not compared with themselves).
    """
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise LabelwiseError(f"votes must be 2-D (n_items, n_annotators); got {votes.shape}.")
    n = votes.shape[1]
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            shared = (votes[:, i] >= 0) & (votes[:, j] >= 0)
            if shared.sum() >= max(min_shared, 2):
                out[i, j] = out[j, i] = cohen_kappa(votes[shared, i], votes[shared, j])
    return out


def fleiss_kappa(counts: Any) -> float:
    """Fleiss' κ from per-item class counts.

    With ``n_i`` raters of item ``i`` and ``n_ij`` of them choosing class ``j``:
    ``P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))``, ``P̄`` their mean,
    ``p_j = sum_i n_ij / sum_i n_i`` and ``P_e = sum_j p_j^2``; κ = ``(P̄ - P_e) / (1 - P_e)``.
    Items with fewer than two raters say nothing about agreement and are dropped.

    Parameters
    ----------
    counts : array-like of shape (n_items, n_classes)
        How many raters gave each class to each item (:func:`labelwise.annotators.vote_counts`).

    Returns
    -------
    float
        ``nan`` without an item rated twice; 1.0 when every rater always chose one class.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or (c.size and c.min() < 0):
        raise LabelwiseError("counts must be a 2-D array of non-negative counts.")
    n_i = c.sum(axis=1)
    c, n_i = c[n_i >= 2], n_i[n_i >= 2]
    if c.shape[0] == 0:
        return float("nan")
    p_item = ((c**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_item.mean())
    p_j = c.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if np.isclose(p_e, 1.0):
        return 1.0
    return (p_bar - p_e) / (1 - p_e)


def fleiss_kappa_votes(votes: Any, n_classes: int | None = None) -> float:
    """:func:`fleiss_kappa` of a vote matrix (``-1``: no answer)."""
    return fleiss_kappa(vote_counts(votes, n_classes))


def accuracy_against(votes: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each annotator's share of answers equal to the reference label of the item.

    Parameters
    ----------
    votes : array-like of int of shape (n_items, n_annotators)
    reference : array-like of int of shape (n_items,)
        The gold or consensus class per item; ``-1`` where there is none (not counted).

    Returns
    -------
    accuracy : ndarray of shape (n_annotators,)
        ``nan`` for an annotator with no answer on a referenced item.
    n : ndarray of int of shape (n_annotators,)
        How many of their answers were compared.
    """
    votes, ref = np.asarray(votes), np.asarray(reference)
    if votes.ndim != 2 or ref.shape != (votes.shape[0],):
        raise LabelwiseError(
            f"reference must have one entry per item (row of votes); got {ref.shape} for "
            f"votes of shape {votes.shape}."
        )
    asked = (votes >= 0) & (ref[:, None] >= 0)
    n = asked.sum(axis=0)
    right = (asked & (votes == ref[:, None])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, right / np.maximum(n, 1), np.nan)
    return acc, n.astype(np.int64)
