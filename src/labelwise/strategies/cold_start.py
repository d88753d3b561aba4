"""Cold start: pick the first batch before any model exists.

- ``"stratified"``: a proportional sample over strata of per-item metadata (source, text length
  bucket, keyword flag), at least one item per stratum while ``k`` allows.
- ``"representative"``: k-means with ``k`` clusters on embeddings (or features), then the item
  nearest each centroid, so the batch covers the pool's modes.

``"random"`` (uniform sampling) lives in :mod:`labelwise.strategies.uncertainty`.
:func:`length_buckets` and :func:`keyword_flags` turn raw texts into metadata columns.
"""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from labelwise._random import check_random_state
from labelwise.errors import LabelwiseError, MissingInputError
from labelwise.select import top_k
from labelwise.strategies.base import Candidates, Strategy
from labelwise.strategies.diversity import (
    _BLOCK_ELEMENTS,
    _as_float,
    _dense,
    _for_kmeans,
    row_sq_norms,
)
from labelwise.strategies.registry import register

__all__ = [
    "Representative",
    "Stratified",
    "allocate",
    "keyword_flags",
    "length_buckets",
    "nearest_to_centroids",
    "quantile_bins",
    "strata",
    "stratified_sample",
]


# --------------------------------------------------------------------------------------------
# Metadata helpers
# --------------------------------------------------------------------------------------------


def quantile_bins(values: Any, n_bins: int = 4) -> np.ndarray:
    """Bucket numbers by quantile: ``n_bins`` buckets of about equal size.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Numbers; NaN goes to its own bucket ``n_bins``.
    n_bins : int

    Returns
    -------
    codes : ndarray of shape (n_samples,), int64
        In ``[0, n_bins)`` (``n_bins`` for NaN). Heavy ties can leave some buckets empty:
        ``[1, 2, 3, 4]`` with 2 bins -> ``[0, 0, 1, 1]``.
    """
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    codes = np.full(values.shape[0], n_bins, dtype=np.int64)
    if (~nan).any():
        edges = np.quantile(values[~nan], np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
        codes[~nan] = np.searchsorted(edges, values[~nan], side="right")
    return codes


def length_buckets(texts: Sequence[str], n_bins: int = 4) -> np.ndarray:
    """Quantile buckets of text length in characters, a metadata column for ``"stratified"``.

    Parameters
    ----------
    texts : sequence of str, length n_samples
    n_bins : int

    Returns
    -------
    codes : ndarray of shape (n_samples,), int64
        0 = shortest quarter (for ``n_bins=4``) ... ``n_bins - 1`` = longest.
    """
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return quantile_bins(lengths, n_bins)


def keyword_flags(texts: Iterable[str], keywords: Sequence[str]) -> np.ndarray:
    """Whether each text contains any of ``keywords`` as a whole word (case-insensitive).

    Parameters
    ----------
    texts : iterable of str, length n_samples
    keywords : sequence of str
        Call once per keyword for one flag column each.

    Returns
    -------
    flags : ndarray of shape (n_samples,), bool
        ``keyword_flags(["Refund please", "thanks"], ["refund"]) -> [True, False]``.

    Raises
    ------
    LabelwiseError
        If ``keywords`` is empty.
    """
    if isinstance(keywords, str):
        keywords = [keywords]
    if not keywords:
        raise LabelwiseError("keyword_flags needs at least one keyword.")
    pattern = re.compile(
        r"\b(?:" + "|".join(re.escape(kw) for kw in keywords) + r")\b", re.IGNORECASE
    )
    return np.fromiter((pattern.search(t) is not None for t in texts), dtype=bool)


def _column_codes(col: np.ndarray, n_bins: int) -> np.ndarray:
    """Category codes of one metadata column: quantile buckets for many-valued numbers."""
    if col.dtype.kind in "iuf":
        finite = col[~np.isnan(col)] if col.dtype.kind == "f" else col
        if np.unique(finite).shape[0] > n_bins:
            return quantile_bins(col, n_bins)
    if col.dtype.kind == "O":
        col = col.astype(str)
    return np.unique(col, return_inverse=True)[1].astype(np.int64).ravel()


def strata(columns: Sequence[Any], n_bins: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Stratum of every item: the combination of its metadata categories.

    Numeric columns with more than ``n_bins`` distinct values are cut into ``n_bins`` quantile
    buckets; strings, booleans and few-valued numbers are used as categories.

    Parameters
    ----------
    columns : sequence of array-like, each of shape (n_samples,)
    n_bins : int

    Returns
    -------
    stratum : ndarray of shape (n_samples,), int64
        Stratum number of each item, in ``[0, n_strata)``.
    sizes : ndarray of shape (n_strata,), int64
        Items per stratum (all non-zero).
    """
    combined = np.zeros(np.asarray(columns[0]).shape[0], dtype=np.int64)
    for col in columns:
        codes = _column_codes(np.asarray(col), n_bins)
        combined = combined * (int(codes.max()) + 1) + codes
    _, stratum, sizes = np.unique(combined, return_inverse=True, return_counts=True)
    return stratum.astype(np.int64).ravel(), sizes.astype(np.int64)


def allocate(sizes: Any, k: int, random_state=None) -> np.ndarray:
    """Split a batch of ``k`` across strata in proportion to their sizes.

    Largest remainder (Hamilton) method with a floor of one item per stratum while ``k``
    allows: strata whose proportional quota is below 1 get exactly 1 and the rest of ``k`` is
    re-apportioned among the others (repeated until every remaining quota is >= 1); then each
    remaining stratum gets the floor of its quota and the leftover items go to the largest
    fractional parts. With fewer items than strata (``k < n_strata``) the ``k`` largest strata
    get one each. Ties are broken with ``random_state``.

    Parameters
    ----------
    sizes : array-like of shape (n_strata,)
        Positive stratum sizes, summing to at least ``k``.
    k : int
    random_state : int, RandomState instance or None

    Returns
    -------
    alloc : ndarray of shape (n_strata,), int64
        Sums to ``k``; ``alloc <= sizes``. ``[50, 30, 20], k=10 -> [5, 3, 2]``;
        ``[90, 9, 1], k=10 -> [8, 1, 1]``.
    """
    rng = check_random_state(random_state)
    sizes = np.asarray(sizes, dtype=np.int64)
    n_strata = sizes.shape[0]
    alloc = np.zeros(n_strata, dtype=np.int64)
    if k < n_strata:
        alloc[top_k(sizes, k, rng)] = 1
        return alloc
    fixed = np.zeros(n_strata, dtype=bool)
    while True:
        free = np.flatnonzero(~fixed)
        quota = (k - fixed.sum()) * sizes[free] / sizes[free].sum()
        small = quota < 1
        if not small.any():
            break
        fixed[free[small]] = True
    alloc[fixed] = 1
    floor = np.floor(quota).astype(np.int64)
    alloc[free] = floor
    left = k - int(alloc.sum())
    if left > 0:
        alloc[free[top_k(quota - floor, left, rng)]] += 1
    # Rounding can, in rare cases, ask more of a stratum than it holds; move the excess to the
    # strata with spare room, largest quota first.
    excess = int(np.maximum(alloc - sizes, 0).sum())
    if excess:
        alloc = np.minimum(alloc, sizes)
        while excess:
            room = sizes - alloc
            target = int(np.argmax(np.where(room > 0, sizes, -1)))
            step = min(excess, int(room[target]))
            alloc[target] += step
            excess -= step
    return alloc


def stratified_sample(
    stratum: np.ndarray, k: int, random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random sample of ``k`` items, allocated across strata by :func:`allocate`.

    Parameters
    ----------
    stratum : ndarray of shape (n_samples,), int64
        Stratum number of each item, in ``[0, n_strata)`` with every stratum non-empty.
    k : int
        ``1 <= k <= n_samples``.
    random_state : int, RandomState instance or None

    Returns
    -------
    idx : ndarray of shape (k,), int64
        Positions, round-robin over strata: every stratum's first pick, then every second ...
    rank : ndarray of shape (k,), int64
        Each pick's rank within its stratum (0 for the first).
    """
    rng = check_random_state(random_state)
    sizes = np.bincount(stratum)
    alloc = allocate(sizes, k, rng)
    keys = rng.random_sample(stratum.shape[0])
    order = np.lexsort((keys, stratum))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    s_ord = stratum[order]
    rank = np.arange(order.shape[0]) - starts[s_ord]
    keep = rank < alloc[s_ord]
    idx, rank = order[keep], rank[keep]
    rr = np.lexsort((keys[idx], rank))
    return idx[rr].astype(np.int64), rank[rr].astype(np.int64)


def nearest_to_centroids(
    X: Any, centroids: np.ndarray, *, chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each centroid, the row assigned to it (nearest centroid) that lies closest to it.

    Rows are assigned to their nearest centroid block by block (BLAS distances, at most
    ``chunk_size`` rows at a time), so ``X`` may be a large memory-mapped array.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    centroids : ndarray of shape (n_clusters, n_features)
    chunk_size : int, optional
        Rows per block; default keeps a block's distances under 64 MiB.

    Returns
    -------
    idx : ndarray of shape (n_clusters,), int64
        Row nearest each centroid among its members; -1 for a centroid with no members.
    counts : ndarray of shape (n_clusters,), int64
        Number of rows assigned to each centroid.
    """
    n = X.shape[0]
    step = chunk_size or max(1, _BLOCK_ELEMENTS // max(1, centroids.shape[0]))
    blocks = ((s, X[s : min(s + step, n)]) for s in range(0, n, step))
    return _nearest_to_centroids(blocks, centroids)


def _nearest_to_centroids(
    blocks: Iterable[tuple[int, Any]], centroids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_c = centroids.shape[0]
    C_sq = row_sq_norms(centroids)
    best_idx = np.full(n_c, -1, dtype=np.int64)
    best_d = np.full(n_c, np.inf, dtype=np.float64)
    counts = np.zeros(n_c, dtype=np.int64)
    for start, Xb in blocks:
        Xb = _as_float(Xb)
        # ||x||^2 does not change which centroid is nearest: rank by ||c||^2 - 2 x.c and add
        # ||x||^2 back for the chosen one only (two fewer passes over the block).
        D = _dense(Xb @ centroids.T)
        D *= -2
        D += C_sq[None, :]
        labels = D.argmin(axis=1)
        d = D[np.arange(D.shape[0]), labels] + row_sq_norms(Xb)
        counts += np.bincount(labels, minlength=n_c)
        order = np.lexsort((d, labels))
        head = np.ones(order.shape[0], dtype=bool)
        head[1:] = labels[order][1:] != labels[order][:-1]
        rows = order[head]
        lab = labels[rows]
        better = d[rows] < best_d[lab]
        best_d[lab[better]] = d[rows[better]]
        best_idx[lab[better]] = rows[better] + start
    return best_idx, counts


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise LabelwiseError(f"{name} must be a positive integer; got {value!r}.")


@register
class Stratified(Strategy):
    """Stratified random sample over metadata categories (no model needed).

    Strata are the combinations of the ``by`` metadata columns; numeric columns with more than
    ``n_bins`` distinct values are cut into quantile buckets (e.g. text length), strings and
    booleans are categories (source, keyword flag). ``k`` is split across strata by
    :func:`allocate` (proportional, at least one per stratum while ``k`` allows), then items
    are drawn at random within each stratum. The batch is ordered round-robin over strata; the
    score of a pick is minus its rank within its stratum (0 for each stratum's first pick).

    Parameters
    ----------
    by : sequence of str or None
        Metadata keys to stratify on; ``None`` uses every key of ``candidates.metadata``.
    n_bins : int
        Quantile buckets for numeric keys.
    """

    name = "stratified"
    description = "Random sample stratified by metadata (source, length bucket, flags); no model."
    needs = frozenset({"metadata"})
    cold_start = True

    def __init__(self, *, by: Sequence[str] | None = None, n_bins: int = 4) -> None:
        if isinstance(by, str):
            by = [by]
        if by is not None and (not by or not all(isinstance(b, str) for b in by)):
            raise LabelwiseError(
                f"by must be a non-empty list of metadata keys or None; got {by!r}."
            )
        _check_positive_int("n_bins", n_bins)
        self.by = None if by is None else list(by)
        self.n_bins = n_bins

    def _columns(self, candidates: Candidates) -> list[np.ndarray]:
        metadata: Mapping[str, Any] = candidates.metadata or {}
        keys = list(metadata) if self.by is None else self.by
        missing = [key for key in keys if key not in metadata]
        if missing:
            raise MissingInputError(
                f"strategy 'stratified' was asked to stratify on {missing}, which "
                f"candidates.metadata lacks; available keys: {sorted(metadata)}."
            )
        n_pool = candidates.X.shape[0]
        positions = candidates.pool_positions(np.arange(candidates.n))
        columns = []
        for key in keys:
            col = np.asarray(metadata[key])
            if col.ndim != 1 or col.shape[0] != n_pool:
                raise LabelwiseError(
                    f"metadata[{key!r}] must have one value per pool row, shape ({n_pool},); "
                    f"got shape {col.shape}."
                )
            columns.append(col[positions])
        return columns

    def _select(self, candidates, k, rng):
        stratum, _ = strata(self._columns(candidates), self.n_bins)
        idx, rank = stratified_sample(stratum, k, rng)
        return idx, -rank.astype(np.float64)


@register
class Representative(Strategy):
    """The item nearest each of ``k`` k-means centroids of the embeddings (no model needed).

    k-means (scikit-learn ``KMeans``, k-means++ init, ``n_init=1``) is fitted on a seeded
    sample of ``sample_size`` candidates (all of them if fewer), on ``candidates.embeddings``
    when given, else the features. Every candidate is then assigned to its nearest centroid in
    chunks, and each cluster contributes the member nearest its centroid. Picks come largest
    cluster first; a pick's score is the fraction of candidates in its cluster. Clusters left
    empty (duplicate rows) are replaced by random candidates with score 0.

    Parameters
    ----------
    sample_size : int
        Rows k-means is fitted on (at least ``k``).
    max_iter : int
        Lloyd iterations of k-means.

    Notes
    -----
    A cold-start strategy: over a whole budget it loses to random on digits (labels to 95%
    0.54x [0.46, 0.66], 10 seeds, ``benchmarks/label_efficiency.md``); typical items stop
    teaching once the model exists. Let ``Session`` hand over to a model strategy.
    """

    name = "representative"
    description = "Item nearest each k-means centroid of the embeddings/features; no model."
    needs = frozenset()
    cold_start = True

    def __init__(self, *, sample_size: int = 20_000, max_iter: int = 100) -> None:
        _check_positive_int("sample_size", sample_size)
        _check_positive_int("max_iter", max_iter)
        self.sample_size = sample_size
        self.max_iter = max_iter

    def _select(self, candidates, k, rng):
        # scikit-learn is imported where it is used: `import labelwise` must stay light.
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.utils.random import sample_without_replacement

        n = candidates.n
        s = min(n, max(self.sample_size, k))
        if s < n:
            fit_idx = np.sort(sample_without_replacement(n, s, random_state=rng))
        else:
            fit_idx = np.arange(n)
        Z = _for_kmeans(candidates.embedding_rows(fit_idx))
        km = KMeans(n_clusters=k, n_init=1, max_iter=self.max_iter, random_state=rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            km.fit(Z)
        # Assign in the embeddings' own dtype: float32 BLAS over a million rows, no upcast.
        dtype = getattr(candidates.embedding_rows(fit_idx[:1]), "dtype", np.float64)
        centroids = km.cluster_centers_.astype(
            dtype if np.issubdtype(dtype, np.floating) else np.float32
        )
        step = max(1, _BLOCK_ELEMENTS // k)
        blocks = (
            (start, candidates.embedding_rows(np.arange(start, min(start + step, n))))
            for start in range(0, n, step)
        )
        best, counts = _nearest_to_centroids(blocks, centroids)
        found = best >= 0
        keys = rng.random_sample(k)
        order = np.flatnonzero(found)
        order = order[np.lexsort((keys[order], -counts[order]))]
        idx = best[order]
        scores = counts[order] / n
        if idx.shape[0] < k:
            taken = np.zeros(n, dtype=bool)
            taken[idx] = True
            rest = np.flatnonzero(~taken)
            fill = rest[rng.choice(rest.shape[0], k - idx.shape[0], replace=False)]
            idx = np.concatenate([idx, fill])
            scores = np.concatenate([scores, np.zeros(fill.shape[0])])
        return idx, scores
