"""Selection as independent blocks: the pure per-block step, and the one reduction that merges them.

A local ``Strategy.select`` walks the candidates chunk by chunk (``Candidates.iter_blocks``),
scores each chunk and merges it into a :class:`~labelwise.select.RunningTopK`. Here the same walk
is cut into *block specs*, small picklable descriptions of one chunk (which rows of the pool to
read, and the random-number state its tie-break keys start from), so that any executor can run
:func:`run_block` on them in any order, on any machine:

- the serial executor below (tests, and a reference for the distributed one);
- Ray Data's ``map_batches`` (:mod:`labelwise.scale.ray_backend`).

Why the result equals the local one, bit for bit:

1. *Same chunks.* :func:`plan_blocks` cuts the candidates exactly where ``iter_blocks`` does
   (``candidates.chunk_size``), reading a contiguous slice with a ``keep`` mask or gathering rows
   under the same rule, so every block sees the very array the local path scored.
2. *Same scoring.* :func:`score_block` calls the strategy's own score function
   (``ScoreStrategy.scorer``, a committee's ``committee_proba`` and vote function, or a diversity
   strategy's ``base`` score stored as float32 as ``score_candidates`` does).
3. *Same tie-break keys.* Locally the keys are the stream of ``random_state.random_sample``
   draws, one per candidate in candidate order. ``random_sample(a)`` then ``random_sample(b)``
   gives the same numbers as ``random_sample(a + b)``, so a candidate's key depends on its
   position only, never on the chunking; but the stream is sequential. The driver therefore
   replays it once (:func:`plan_blocks`: ~6 ns per candidate, no array larger than a chunk) and
   hands each block the generator *state* at its first candidate; the block draws its own keys
   from there. The driver's generator ends where the local one does, so what a strategy draws
   after the scoring pass (k-means seeds in a diversity strategy) matches too.
4. *One reduction.* Each block keeps its best ``n_keep`` by (score descending, key ascending),
   a total order, so the best ``n_keep`` of the union of the per-block winners are the global
   best ``n_keep`` (:func:`merge_blocks`), in any order of arrival.

Diversity strategies keep their prefilter (``m = 10 k`` by default) per block, and their
second stage (``finish``: k-means, k-center, the cosine cap) runs on the driver on the merged
``m`` candidates, as locally.
"""

from __future__ import annotations

import dataclasses
import mmap
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from labelwise._random import check_random_state
from labelwise.errors import LabelwiseError
from labelwise.select import _top_k_keyed
from labelwise.strategies.base import Candidates, Query, ScoreStrategy, Strategy
from labelwise.strategies.committee import _QueryByCommittee, _resolve_committee
from labelwise.strategies.diversity import _Diversity
from labelwise.strategies.registry import get_strategy
from labelwise.tasks import TaskType
from labelwise.validation import check_batch_size

__all__ = [
    "BlockResult",
    "BlockSpec",
    "Plan",
    "UnsupportedBackendError",
    "WorkerContext",
    "gather_rows",
    "merge_blocks",
    "plan_blocks",
    "release_pages",
    "run_block",
    "score_block",
    "select_blocks",
]


class UnsupportedBackendError(LabelwiseError):
    """The strategy has no block plan (it is not a sum of independent per-chunk steps)."""


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    """How one strategy runs as blocks.

    Attributes
    ----------
    kind : {"score", "committee", "prefilter"}
        ``"score"``: a ``ScoreStrategy``'s own score; ``"committee"``: query-by-committee;
        ``"prefilter"``: a diversity strategy's ``base`` score, rounded to float32.
    n_keep : int
        Best items each block keeps and the merge returns: ``k``, or the prefilter size ``m``.
    """

    kind: str
    n_keep: int


def make_plan(strategy: Strategy, candidates: Candidates, k: int) -> Plan:
    """The block plan of ``strategy`` for a batch of ``k`` (validated by the caller).

    Raises
    ------
    UnsupportedBackendError
        For strategies that look at several rows at once beyond a prefilter (badge,
        information density, class-balanced, ...) or need no scoring pass (random, kcenter
        without a model): run them with the local backend.
    """
    if isinstance(strategy, ScoreStrategy):
        return Plan("score", k)
    if isinstance(strategy, _QueryByCommittee):
        return Plan("committee", k)
    if isinstance(strategy, _Diversity) and candidates.model is not None:
        return Plan("prefilter", strategy.prefilter_size(candidates, k))
    raise UnsupportedBackendError(
        f"strategy {strategy.name!r} has no distributed plan: it is not one independent step "
        "per chunk. Distributed backends run score strategies (entropy, margin, "
        "least_confidence), qbc_vote_entropy, qbc_kl, and diverse_margin, kmeans_uncertainty, "
        "kcenter and tfidf_diverse with a model; use backend='local' for the others."
    )


def finish(
    plan: Plan,
    strategy: Strategy,
    candidates: Candidates,
    k: int,
    idx: np.ndarray,
    scores: np.ndarray,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """The driver's step after the merge: nothing, or a diversity strategy's second stage
    (:meth:`_Diversity.finish`, the same call its local ``select`` makes).

    Parameters
    ----------
    idx : ndarray of shape (n_keep,)
        Merged candidate positions, best first.
    scores : ndarray of shape (n_keep,)
        Their scores (float64).
    rng : RandomState
        At the state the local path has after its scoring pass.

    Returns
    -------
    idx, scores : ndarray of shape (k,)
    """
    if plan.kind != "prefilter":
        return idx, scores
    return strategy.finish(candidates, idx, scores, k, rng)


# --------------------------------------------------------------------------- block specs


@dataclass(frozen=True)
class BlockSpec:
    """One chunk of candidates: which rows to read and where its tie-break keys start.

    Attributes
    ----------
    index : int
        Block number (0, 1, ...).
    start : int
        Candidate position of its first row.
    n : int
        Number of candidates in the block.
    lo, hi : int
        Contiguous rows ``X[lo:hi]`` to read when ``rows`` is None.
    keep : ndarray of shape (n,) or None
        Which rows of ``X[lo:hi]`` are candidates (None: all).
    rows : ndarray of shape (n,) or None
        Rows of ``X`` to gather instead of a slice.
    rng_state : bytes
        Pickled ``RandomState`` at this block's first key.
    """

    index: int
    start: int
    n: int
    lo: int
    hi: int
    keep: np.ndarray | None
    rows: np.ndarray | None
    rng_state: bytes


def _row_layout(candidates: Candidates, start: int, stop: int):
    """``(lo, hi, keep, rows)`` of candidates ``start:stop``, cut as ``iter_blocks`` cuts them."""
    row_idx = candidates.row_idx
    if row_idx is None:
        return start, stop, None, None
    rows = row_idx[start:stop]
    if not candidates._sorted:
        return 0, 0, None, rows
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    if hi - lo <= 2 * rows.shape[0]:
        return lo, hi, (None if hi - lo == rows.shape[0] else rows - lo), None
    return 0, 0, None, rows


def plan_blocks(candidates: Candidates, rng: np.random.RandomState) -> Iterator[BlockSpec]:
    """Cut the candidates into block specs, advancing ``rng`` past each block's keys.

    Parameters
    ----------
    candidates : Candidates
        Blocks are ``candidates.chunk_size`` candidates long, as in ``iter_blocks``.
    rng : RandomState
        Advanced by one ``random_sample`` draw per candidate, as ``RunningTopK`` and
        ``top_k`` advance it locally.

    Yields
    ------
    BlockSpec
    """
    step = candidates.chunk_size
    for index, start in enumerate(range(0, candidates.n, step)):
        stop = min(start + step, candidates.n)
        lo, hi, keep, rows = _row_layout(candidates, start, stop)
        state = pickle.dumps(rng, protocol=pickle.HIGHEST_PROTOCOL)
        rng.random_sample(stop - start)  # replay: the next block's keys start after these
        yield BlockSpec(index, start, stop - start, lo, hi, keep, rows, state)


# --------------------------------------------------------------------------- the block step


@dataclass
class WorkerContext:
    """What every block needs besides its spec: shipped once per round (by object reference).

    Attributes
    ----------
    strategy : Strategy
    plan : Plan
    candidates : Candidates
        ``X`` replaced by a *source*, an object whose ``open()`` returns the pool (a memory-map
        reopened from its path, or an in-memory array); big extras (embeddings, metadata,
        labelled rows, ``row_idx``) are dropped, blocks carry their own rows.
    release : bool
        Drop each block's memory-mapped pages from this process after scoring it
        (:func:`release_pages`), so resident memory stays O(block) whatever the pool size.
    """

    strategy: Strategy
    plan: Plan
    candidates: Candidates
    release: bool = True

    @classmethod
    def build(cls, strategy: Strategy, plan: Plan, candidates: Candidates, source: Any):
        """A context over ``candidates`` whose ``X`` is read through ``source``."""
        light = Candidates(
            X=source,  # has .shape; opened in the worker
            model=candidates.model,
            committee=candidates.committee,
            task_type=candidates.task_type,
            proba_transform=candidates.proba_transform,
            chunk_size=candidates.chunk_size,
        )
        return cls(strategy, plan, light)

    def opened(self) -> Candidates:
        """The candidates with ``X`` opened through its source."""
        return dataclasses.replace(self.candidates, X=self.candidates.X.open())


def score_block(
    plan: Plan, strategy: Strategy, candidates: Candidates, X_block, keep
) -> np.ndarray:
    """Scores of one block's candidates, exactly as the local path computes them.

    Parameters
    ----------
    plan : Plan
    strategy : Strategy
    candidates : Candidates
        Gives ``predict_proba`` (model, calibration, task type) and the committee.
    X_block : ndarray or sparse matrix of shape (n_rows, n_features)
    keep : ndarray of shape (n,) or None
        Rows of ``X_block`` that are candidates.

    Returns
    -------
    scores : ndarray of shape (n,)
        float32 for ``"prefilter"`` (``score_candidates`` stores float32), else the score
        function's own dtype.
    """
    multilabel = candidates.task_type == TaskType.MULTILABEL
    if plan.kind == "committee":
        members, cols, width = _resolve_committee(candidates.committee, candidates.task_type)
        cp = strategy.committee_proba(candidates, X_block, members, cols, width)
        score = strategy._multi if multilabel else strategy._single
        return score(cp if keep is None else cp[:, keep])
    base = strategy if plan.kind == "score" else get_strategy(strategy.base)
    proba = candidates.predict_proba(X_block)
    scores = base.scorer(candidates.task_type)(proba if keep is None else proba[keep])
    return scores.astype(np.float32) if plan.kind == "prefilter" else scores


@dataclass(frozen=True)
class BlockResult:
    """One block's winners and what it cost.

    Attributes
    ----------
    index : int
    n : int
        Candidates scored.
    idx : ndarray of shape (n_win,), int64
        Candidate positions of the block's best ``min(n_keep, n)``, best first.
    scores, keys : ndarray of shape (n_win,), float64
        Their scores (NaN as ``-inf``) and tie-break keys.
    seconds : dict of str to float
        ``read`` (rows from the pool), ``score`` (model and score function), ``reduce``.
    """

    index: int
    n: int
    idx: np.ndarray
    scores: np.ndarray
    keys: np.ndarray
    seconds: dict[str, float]


def _touch(X_block: Any) -> None:
    """Read one byte per page of a memory-mapped block: the page faults (disk or page cache)
    happen here, so a block's ``read`` time is its I/O and ``score`` time its arithmetic."""
    if isinstance(X_block, np.memmap) and X_block.flags.c_contiguous and X_block.size:
        int(X_block.reshape(-1).view(np.uint8)[:: mmap.PAGESIZE].sum())


def run_block(spec: BlockSpec, context: WorkerContext, candidates: Candidates) -> BlockResult:
    """The pure per-block step: read rows, score them, keep the block's best ``n_keep``.

    Parameters
    ----------
    spec : BlockSpec
    context : WorkerContext
    candidates : Candidates
        ``context.opened()`` (opened once per process by the caller).

    Returns
    -------
    BlockResult
    """
    t0 = time.perf_counter()
    X = candidates.X
    X_block = X[spec.lo : spec.hi] if spec.rows is None else X[spec.rows]
    _touch(X_block)
    t1 = time.perf_counter()
    scores = score_block(context.plan, context.strategy, candidates, X_block, spec.keep)
    t2 = time.perf_counter()
    scores = np.asarray(scores, dtype=np.float64)
    scores = np.where(np.isnan(scores), -np.inf, scores)  # as RunningTopK and top_k do
    keys = pickle.loads(spec.rng_state).random_sample(spec.n)
    local = _top_k_keyed(scores, keys, context.plan.n_keep)
    if context.release:
        if spec.rows is None:
            release_pages(X, spec.lo, spec.hi)
        else:
            release_pages(X, int(spec.rows.min()), int(spec.rows.max()) + 1)
    t3 = time.perf_counter()
    return BlockResult(
        index=spec.index,
        n=spec.n,
        idx=local.astype(np.int64) + spec.start,
        scores=scores[local],
        keys=keys[local],
        seconds={"read": t1 - t0, "score": t2 - t1, "reduce": t3 - t2},
    )


def merge_blocks(
    results: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], n_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """The only reduction: the best ``n_keep`` of all blocks' winners, best first.

    Parameters
    ----------
    results : iterable of (idx, scores, keys)
        Each of shape (n_win,), in any order.
    n_keep : int

    Returns
    -------
    idx : ndarray of shape (n_keep,), int64
    scores : ndarray of shape (n_keep,), float64
    """
    parts = list(results)
    idx = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    scores = np.concatenate([p[1] for p in parts]) if parts else np.empty(0)
    keys = np.concatenate([p[2] for p in parts]) if parts else np.empty(0)
    best = _top_k_keyed(scores, keys, n_keep)
    return idx[best].astype(np.int64), scores[best]


# --------------------------------------------------------------------------- memory-mapped pools


def _mmap_base(X: np.memmap) -> int:
    """Address of the first byte of ``X``'s underlying mmap."""
    return np.frombuffer(X._mmap, dtype=np.uint8).ctypes.data


def memmap_file_offset(X: Any) -> int | None:
    """Byte offset in its file of ``X``'s first element, or None if ``X`` is not a mapped view.

    A view of a memmap carries its parent's ``offset`` attribute, so the offset is computed
    from the data pointer instead.
    """
    mm = getattr(X, "_mmap", None)
    if mm is None or not isinstance(X, np.memmap) or not X.flags.c_contiguous:
        return None
    start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
    return start + (X.ctypes.data - _mmap_base(X))


def release_pages(X: Any, lo: int, hi: int) -> None:
    """Drop rows ``lo:hi`` of a memory-mapped ``X`` from this process's resident memory.

    ``madvise(MADV_DONTNEED)`` unmaps the pages from this process only: the kernel's page
    cache keeps them (a later read is a minor fault, not a disk read) and the file is
    read-only here, so nothing is lost. Without it, resident memory (RSS) grows by the whole
    file as a scan goes through it (7.7 GB for 5M x 384 float32), although none of it is
    anonymous memory. No-op for anything but a C-contiguous memmap.

    Parameters
    ----------
    X : ndarray of shape (n_rows, ...)
    lo, hi : int
        Row range.
    """
    mm = getattr(X, "_mmap", None)
    if mm is None or not isinstance(X, np.memmap) or not X.flags.c_contiguous or hi <= lo:
        return
    row = X.strides[0]
    first = X.ctypes.data - _mmap_base(X) + lo * row
    begin = first - first % mmap.PAGESIZE
    end = min(len(mm), first + (hi - lo) * row)
    if end > begin:
        mm.madvise(mmap.MADV_DONTNEED, begin, end - begin)


def gather_rows(X: Any, positions: np.ndarray, batch: int = 64) -> np.ndarray:
    """``np.asarray(X[positions])``, with a memory-mapped ``X`` kept out of resident memory.

    Gathering scattered rows faults in far more than the rows: the kernel maps whole folios
    around each fault (measured: 5,000 random rows of a 7.7 GB file left 2.9 GB mapped). Rows
    are read in pool order, ``batch`` at a time, and each batch's span is released after it is
    copied, so at most ``batch`` rows' worth of mapped pages are resident at once.

    Parameters
    ----------
    X : ndarray or memmap of shape (n_rows, ...)
    positions : ndarray of shape (m,)
    batch : int

    Returns
    -------
    rows : ndarray of shape (m, ...)
        In the order of ``positions``.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if not isinstance(X, np.memmap) or getattr(X, "_mmap", None) is None:
        return np.asarray(X[positions])
    out = np.empty((positions.shape[0], *X.shape[1:]), dtype=X.dtype)
    order = np.argsort(positions, kind="stable")
    for s in range(0, order.shape[0], batch):
        sel = order[s : s + batch]
        rows = positions[sel]
        out[sel] = X[rows]
        release_pages(X, int(rows[0]), int(rows[-1]) + 1)
    return out


class InMemorySource:
    """A source that is the array itself (serial executor, small pools)."""

    def __init__(self, X: Any) -> None:
        self.X = X
        self.shape = X.shape

    def open(self) -> Any:
        return self.X


class MemmapSource:
    """A ``.npy`` memory-map, reopened by path in each worker process (only the path travels).

    Parameters
    ----------
    filename : str
    dtype : numpy dtype
    shape : tuple of int
    offset : int
        Byte offset of the first element in the file.
    """

    _open: ClassVar[dict[tuple, np.memmap]] = {}  # per process: one mapping per file, layout

    def __init__(self, filename: str, dtype: Any, shape: tuple[int, ...], offset: int) -> None:
        self.filename, self.dtype, self.shape, self.offset = (
            filename,
            np.dtype(dtype),
            shape,
            offset,
        )

    @classmethod
    def of(cls, X: Any) -> MemmapSource | None:
        """The source of a memmapped ``X``, or None when ``X`` is not one."""
        offset = memmap_file_offset(X)
        if offset is None or not X.filename:
            return None
        return cls(str(X.filename), X.dtype, tuple(X.shape), offset)

    def open(self) -> np.memmap:
        key = (self.filename, self.dtype.str, self.shape, self.offset)
        X = self._open.get(key)
        if X is None:
            self._open.clear()  # one pool at a time: do not keep old files mapped
            X = np.memmap(self.filename, self.dtype, mode="r", offset=self.offset, shape=self.shape)
            self._open[key] = X
        return X


# --------------------------------------------------------------------------- driver


MapBlocks = Callable[[Iterator[BlockSpec], WorkerContext, int], Iterable[BlockResult]]


def serial_map(specs: Iterator[BlockSpec], context: WorkerContext, n_blocks: int):
    """The reference executor: every block in this process, in order."""
    candidates = context.opened()
    for spec in specs:
        yield run_block(spec, context, candidates)


def select_blocks(
    strategy: Strategy | str,
    candidates: Candidates,
    k: int,
    *,
    random_state=None,
    map_blocks: MapBlocks = serial_map,
    source: Any = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
) -> Query:
    """Select ``k`` candidates by running ``strategy`` as independent blocks.

    Equal to ``strategy.select(candidates, k, random_state=random_state)`` for the same seed
    (see the module docstring); ``map_blocks`` decides where the blocks run.

    Parameters
    ----------
    strategy : Strategy or str
    candidates : Candidates
    k : int
    random_state : int, RandomState, Generator or None
    map_blocks : callable
        ``map_blocks(specs, context, n_blocks) -> iterable of BlockResult`` in any order.
    source : object with ``open()``, optional
        How executors read ``candidates.X``; default: its memmap path when ``X`` is memory-
        mapped, else the array itself.
    progress : callable, optional
        ``progress(done, total)`` with candidates scored so far, after each block.
    stats : dict, optional
        Filled with timings: ``blocks``, ``plan_s`` (validation and key replay), ``blocks_s``
        (wall time until the last block arrived), ``merge_s``, ``finish_s``, and the sums of the
        blocks' ``read_s``, ``score_s``, ``reduce_s``.

    Returns
    -------
    Query
        ``idx`` are candidate positions, ``pool_idx`` rows of ``candidates.X``.
    """
    t0 = time.perf_counter()
    strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
    k = check_batch_size(k, candidates.n)
    strategy.check_task(candidates.task_type)
    strategy._check_inputs(candidates)
    plan = make_plan(strategy, candidates, k)
    if plan.kind == "committee":  # fail here, not in every block
        _resolve_committee(candidates.committee, candidates.task_type)
    rng = check_random_state(random_state)
    if source is None:
        source = MemmapSource.of(candidates.X) or InMemorySource(candidates.X)
    context = WorkerContext.build(strategy, plan, candidates, source)
    n_blocks = -(-candidates.n // candidates.chunk_size)
    specs = list(plan_blocks(candidates, rng))  # advances rng exactly as the local path does
    t1 = time.perf_counter()
    parts, done = [], 0
    spent = {"read": 0.0, "score": 0.0, "reduce": 0.0}
    for res in map_blocks(iter(specs), context, n_blocks):
        parts.append((res.idx, res.scores, res.keys))
        done += res.n
        for name, sec in res.seconds.items():
            spent[name] = spent.get(name, 0.0) + sec
        if progress is not None:
            progress(done, candidates.n)
    if len(parts) != n_blocks:
        raise LabelwiseError(f"{len(parts)} of {n_blocks} blocks came back; the round is void.")
    t2 = time.perf_counter()
    idx, scores = merge_blocks(parts, plan.n_keep)
    t3 = time.perf_counter()
    idx, scores = finish(plan, strategy, candidates, k, idx, scores, rng)
    t4 = time.perf_counter()
    if stats is not None:
        stats.update(
            blocks=n_blocks,
            plan_s=t1 - t0,
            blocks_s=t2 - t1,
            merge_s=t3 - t2,
            finish_s=t4 - t3,
            **{f"{name}_s": sec for name, sec in spent.items()},
        )
    idx = np.asarray(idx, dtype=np.int64)
    return Query(
        idx=idx,
        scores=np.asarray(scores, dtype=np.float64),
        strategy=strategy.name,
        pool_idx=candidates.pool_positions(idx),
    )
