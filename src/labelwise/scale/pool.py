"""Pools on disk: a memory-mapped ``.npy`` feature matrix, read chunk by chunk.

:func:`open_pool` gives :class:`PoolCandidates`, ordinary ``Candidates`` whose scan reports
progress and hands each chunk's pages back to the kernel once it is scored, so a round over a
5M x 384 float32 pool (7.7 GB) holds one chunk of it resident, not the file.
:func:`select_from_files` is what ``labelwise select`` calls: files in, a ``Query`` out, on the
local backend (``Strategy.select``) or on Ray (:func:`labelwise.scale.select_distributed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError
from labelwise.scale.blocks import gather_rows, release_pages
from labelwise.strategies.base import DEFAULT_CHUNK_SIZE, Candidates, Query, Strategy
from labelwise.strategies.registry import DEFAULT_STRATEGY, get_strategy

__all__ = ["BACKENDS", "PoolCandidates", "open_pool", "select_from_files"]

BACKENDS = ("local", "ray")


@dataclass
class PoolCandidates(Candidates):
    """``Candidates`` over a memory-mapped pool that report progress and release pages.

    Parameters
    ----------
    progress : callable, optional
        ``progress(done, total)`` after each chunk: candidates scanned so far, and ``n``.
        A strategy that scans twice (information density) counts past ``total``.
    release : bool
        After each chunk is scored, and while scattered rows are gathered (a diversity
        strategy's prefiltered candidates), drop the pages read from this process's resident
        memory (:func:`labelwise.scale.blocks.release_pages`; the page cache keeps them).

    Notes
    -----
    Everything else is :class:`~labelwise.strategies.Candidates`; strategies see no difference.
    """

    progress: Callable[[int, int], None] | None = None
    release: bool = True

    def iter_blocks(self, chunk_size: int | None = None) -> Iterator[tuple[int, Any, Any]]:
        for start, X_block, keep in super().iter_blocks(chunk_size):
            yield start, X_block, keep
            # the caller has scored the block by the time it asks for the next one
            n = X_block.shape[0] if keep is None else keep.shape[0]
            if self.release:
                if isinstance(X_block, np.memmap):
                    release_pages(X_block, 0, X_block.shape[0])
                elif self.row_idx is not None:  # gathered rows: release the span they came from
                    rows = self.row_idx[start : start + n]
                    release_pages(self.X, int(rows.min()), int(rows.max()) + 1)
            if self.progress is not None:
                self.progress(start + n, self.n)

    def take(self, cand_idx: np.ndarray) -> Any:
        # diversity strategies gather their prefiltered rows from all over the file
        if not self.release:
            return super().take(cand_idx)
        return gather_rows(self.X, self.pool_positions(cand_idx))


def open_pool(
    path: str | Path,
    *,
    model: Any = None,
    labeled: Any = None,
    committee: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    **extras: Any,
) -> PoolCandidates:
    """Memory-map a ``.npy`` pool and make its unlabelled rows the candidates.

    Parameters
    ----------
    path : str or Path
        ``.npy`` file of shape (n_pool, n_features), e.g. float32.
    model : fitted classifier, optional
    labeled : array-like of shape (n_labeled,), optional
        Pool rows already labelled; every other row is a candidate.
    committee : sequence of fitted classifiers, optional
    chunk_size : int
        Rows per chunk: peak memory is about ``chunk_size * n_features * itemsize`` of pool
        rows plus ``chunk_size * n_classes`` probabilities (65,536 x 384 float32: 100 MB).
    progress : callable, optional
        ``progress(done, total)`` after each chunk.
    **extras
        Other ``Candidates`` fields (``embeddings``, ``X_labeled``, ``task_type``, ...).

    Returns
    -------
    PoolCandidates
    """
    path = Path(path)
    if not path.is_file():
        raise LabelwiseError(f"pool file {str(path)!r} not found; save it with numpy.save.")
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise LabelwiseError(f"{str(path)!r} is not a numeric .npy array: {exc}") from None
    if X.ndim != 2 or X.shape[0] == 0:
        raise LabelwiseError(f"the pool must be a non-empty 2-D array; got shape {X.shape}.")
    row_idx = None
    if labeled is not None:
        labeled = np.asarray(labeled)
        if labeled.size and (
            not np.issubdtype(labeled.dtype, np.integer)
            or labeled.min() < 0
            or labeled.max() >= X.shape[0]
        ):
            raise LabelwiseError(
                f"labeled must hold integer row positions in [0, {X.shape[0]}); got "
                f"{labeled.dtype} values from {labeled.min()} to {labeled.max()}."
            )
        mask = np.ones(X.shape[0], dtype=bool)
        mask[labeled] = False
        row_idx = np.flatnonzero(mask)
    return PoolCandidates(
        X=X,
        model=model,
        row_idx=row_idx,
        committee=committee,
        chunk_size=chunk_size,
        progress=progress,
        **extras,
    )


def _load_model(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LabelwiseError(f"model file {str(path)!r} not found; save one with joblib.dump.")
    import joblib  # here, not at the top: the CLI imports this module lazily anyway

    return joblib.load(path)


def select_from_files(
    pool: str | Path,
    model: str | Path | Any,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    k: int = 500,
    *,
    backend: str = "local",
    address: str | None = None,
    labeled: str | Path | Any = None,
    random_state: Any = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
) -> Query:
    """Select ``k`` rows of a ``.npy`` pool with a saved model: what ``labelwise select`` runs.

    Parameters
    ----------
    pool : str or Path
        ``.npy`` feature matrix of shape (n_pool, n_features), memory-mapped.
    model : str, Path or fitted classifier
        A joblib file (only load files you trust: unpickling runs code) or the model. A fitted
        :class:`labelwise.models.committee.Committee` also serves committee strategies.
    strategy : str or Strategy
    k : int
    backend : {"local", "ray"}
        ``"local"``: ``Strategy.select`` in this process. ``"ray"``: Ray Data over the cluster
        at ``address`` (:func:`labelwise.scale.select_distributed`); same selection.
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts
        a local Ray instance.
    labeled : str, Path or array-like of shape (n_labeled,), optional
        Rows already labelled (a ``.npy`` file of positions, or the positions).
    random_state : int, RandomState, Generator or None
    chunk_size : int
    progress : callable, optional
        ``progress(done, total)`` in candidates.
    stats : dict, optional
        Ray backend only: filled with timings (see ``select_distributed``).

    Returns
    -------
    Query
        ``pool_idx`` are the rows of the pool to label, best first.
    """
    if backend not in BACKENDS:
        raise LabelwiseError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
    fitted = _load_model(model) if isinstance(model, str | Path) else model
    if isinstance(labeled, str | Path):
        if not Path(labeled).is_file():
            raise LabelwiseError(f"labeled file {str(labeled)!r} not found.")
        labeled = np.load(labeled, allow_pickle=False)
    committee = fitted if hasattr(fitted, "members_") else None
    candidates = open_pool(
        pool,
        model=fitted,
        labeled=labeled,
        committee=committee,
        chunk_size=chunk_size,
        progress=progress if backend == "local" else None,
    )
    if backend == "local":
        return strategy.select(candidates, k, random_state=random_state)
    from labelwise.scale.ray_backend import select_distributed

    return select_distributed(
        strategy,
        candidates,
        k,
        random_state=random_state,
        address=address,
        progress=progress,
        stats=stats,
    )
