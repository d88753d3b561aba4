"""Selection: turn scores into positions, with seeded tie-breaking and a streaming top-k.

Higher score always means "query first". Ties are broken by random keys drawn from the
``random_state`` passed in, so the same seed gives the same selection and no position is
favoured by its place in the pool.
"""

from __future__ import annotations

import numpy as np

from labelwise._random import check_random_state

__all__ = ["RunningTopK", "top_k"]


def _top_k_keyed(scores: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best items by (score descending, key ascending), best first.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    keys : ndarray of shape (n,)
        Random tie-break keys.
    k : int

    Returns
    -------
    idx : ndarray of shape (min(k, n),)
    """
    n = scores.shape[0]
    if n <= k:
        sel = np.arange(n)
    else:
        kth = np.partition(scores, n - k)[n - k]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        need = k - above.shape[0]
        if need < tied.shape[0]:
            tied = tied[np.argpartition(keys[tied], need - 1)[:need]] if need > 0 else tied[:0]
        sel = np.concatenate([above, tied])
    order = np.lexsort((keys[sel], -scores[sel].astype(np.float64)))
    return sel[order]


def top_k(scores: np.ndarray, k: int, random_state=None) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first.

    Uses a partition (O(n)), not a full sort. Ties are broken at random with ``random_state``.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
    k : int
        Number of positions to return; must be ``<= n_samples``.
    random_state : int, numpy Generator/RandomState or None

    Returns
    -------
    query_idx : ndarray of shape (k,), dtype int64
    """
    scores = np.asarray(scores)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    rng = check_random_state(random_state)
    keys = rng.random_sample(scores.shape[0])
    return _top_k_keyed(scores, keys, k).astype(np.int64)


class RunningTopK:
    """Keeps the ``k`` best (score, position) pairs over a stream of chunks.

    The only reduction of chunked scoring: each chunk is reduced to its own top ``k`` and merged
    into the running buffer, so memory stays O(k + chunk) whatever the pool size.

    Parameters
    ----------
    k : int
    random_state : int, Generator/RandomState or None
        Source of the tie-break keys (one per scored item, drawn in stream order).
    """

    def __init__(self, k: int, random_state=None) -> None:
        self.k = k
        self._rng = check_random_state(random_state)
        self._scores = np.empty(0, dtype=np.float64)
        self._keys = np.empty(0, dtype=np.float64)
        self._idx = np.empty(0, dtype=np.int64)

    def push(self, scores: np.ndarray, offset: int) -> None:
        """Merge one chunk of scores whose first item sits at position ``offset``."""
        scores = np.asarray(scores, dtype=np.float64)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        keys = self._rng.random_sample(scores.shape[0])
        local = _top_k_keyed(scores, keys, self.k)
        all_scores = np.concatenate([self._scores, scores[local]])
        all_keys = np.concatenate([self._keys, keys[local]])
        all_idx = np.concatenate([self._idx, local.astype(np.int64) + offset])
        best = _top_k_keyed(all_scores, all_keys, self.k)
        self._scores, self._keys, self._idx = all_scores[best], all_keys[best], all_idx[best]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(query_idx, scores)`` of the best ``k`` seen so far, best first."""
        return self._idx.copy(), self._scores.copy()
