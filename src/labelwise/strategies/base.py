"""The strategy contract: ``Candidates`` in, ``Query`` out.

A strategy is a small class that holds parameters; the math lives in pure functions beside
it. ``Strategy.select(candidates, k, random_state=...)`` validates once, then calls the
subclass's ``_select`` with a resolved ``numpy.random.RandomState``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from labelwise._random import check_random_state
from labelwise.errors import MissingInputError, UnsupportedTaskError
from labelwise.models import check_fitted, predict_proba
from labelwise.select import RunningTopK
from labelwise.tasks import ALL_TASKS, TaskType
from labelwise.validation import check_batch_size, check_proba

DEFAULT_CHUNK_SIZE = 65_536

__all__ = ["DEFAULT_CHUNK_SIZE", "Candidates", "Query", "ScoreStrategy", "Strategy"]


@dataclass(frozen=True)
class Query:
    """A batch chosen by a strategy.

    Attributes
    ----------
    idx : ndarray of shape (k,), int64
        Positions, best first. For ``Strategy.select`` these count *within the candidates*
        (``candidates.row_idx[idx]`` are the rows of ``X``); for ``Session.query`` they are
        pool positions. When in doubt, use :attr:`pool_idx`.
    scores : ndarray of shape (k,), float64
        The score each pick was chosen by (meaning depends on the strategy).
    strategy : str
        Registered name of the strategy that chose the batch.
    pool_idx : ndarray of shape (k,), int64
        Rows of the pool ``X`` to label, best first: what to index ``X`` (or your ids) with.
        Equal to ``idx`` when the candidates are the whole pool.
    arm : str
        For a strategy that delegates to others (``"adaptive"``), the registered name of the
        one that chose this batch; ``""`` otherwise. ``strategy`` stays the outer name, so a
        stored round still says which strategy the project runs.
    """

    idx: np.ndarray
    scores: np.ndarray
    strategy: str = ""
    pool_idx: np.ndarray = None  # type: ignore[assignment]
    arm: str = ""

    def __post_init__(self) -> None:
        if self.pool_idx is None:
            object.__setattr__(self, "pool_idx", self.idx)

    def __len__(self) -> int:
        return int(self.idx.shape[0])


@dataclass
class Candidates:
    """What a strategy may look at: the unlabeled rows of a pool, and optional extras.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_pool, n_features)
        Pool features; may be a ``np.memmap`` (read chunk by chunk) or a CSR matrix (text).
    model : fitted classifier, optional
        Needed by every model-based strategy.
    row_idx : ndarray of shape (n_candidates,), optional
        Positions into ``X`` of the candidate rows (the unlabeled ones). ``None``: all rows.
    X_labeled : array-like of shape (n_labeled, n_features), optional
        Already labelled features (k-center treats them as existing centres).
    y_labeled : ndarray of shape (n_labeled,) or (n_labeled, n_labels), optional
    embeddings : ndarray of shape (n_pool, n_dims), optional
        Representation for diversity and cold start (e.g. sentence embeddings); defaults to
        ``X`` when absent.
    embeddings_labeled : ndarray of shape (n_labeled, n_dims), optional
        The same representation of the labelled rows (k-center uses them as existing centres).
    metadata : mapping of str to ndarray of shape (n_pool,), optional
        Per-item metadata (source, length, keyword flags) for stratified cold start.
    committee : sequence of fitted classifiers, optional
        Members for query-by-committee.
    task_type : {"multiclass", "binary", "multilabel"}
    proba_transform : callable, optional
        Applied to every ``proba`` chunk before scoring (e.g. a fitted temperature scaler's
        ``transform``), so strategies can be fed calibrated probabilities.
    chunk_size : int
        Rows scored at a time; bounds peak memory on large pools.
    fit : callable, optional
        ``fit(X, y) -> fitted model``: the session's fit policy (a seeded clone of its model).
        Strategies never fit models themselves; one that must compare what a model would learn
        from different batches (``"adaptive"`` replays its arms on the labelled set) calls this,
        so the fit stays the session's and a resumed session fits exactly the same models.
    """

    X: Any
    model: Any = None
    row_idx: np.ndarray | None = None
    X_labeled: Any = None
    y_labeled: np.ndarray | None = None
    embeddings: Any = None
    embeddings_labeled: Any = None
    metadata: Mapping[str, np.ndarray] | None = None
    committee: Sequence[Any] | None = None
    task_type: TaskType | str = TaskType.MULTICLASS
    proba_transform: Callable[[np.ndarray], np.ndarray] | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    fit: Callable[[Any, np.ndarray], Any] | None = None
    _n: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.task_type = TaskType(self.task_type)
        self._sorted = False
        if self.row_idx is not None:
            self.row_idx = np.asarray(self.row_idx, dtype=np.int64)
            self._n = int(self.row_idx.shape[0])
            self._sorted = bool(self._n > 0 and np.all(self.row_idx[1:] > self.row_idx[:-1]))
        else:
            self._n = int(self.X.shape[0])

    @property
    def n(self) -> int:
        """Number of candidates."""
        return self._n

    def pool_positions(self, cand_idx: np.ndarray) -> np.ndarray:
        """Map candidate positions to positions into ``X``."""
        cand_idx = np.asarray(cand_idx, dtype=np.int64)
        return cand_idx if self.row_idx is None else self.row_idx[cand_idx]

    def take(self, cand_idx: np.ndarray) -> Any:
        """Feature rows of the given candidates, shape (len(cand_idx), n_features)."""
        pos = self.pool_positions(cand_idx)
        return self.X[pos] if sp.issparse(self.X) else np.asarray(self.X[pos])

    def rows(self, start: int, stop: int) -> Any:
        """Feature rows of candidates ``start:stop`` (a view when possible)."""
        if self.row_idx is None:
            return self.X[start:stop]
        return self.X[self.row_idx[start:stop]]

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, X_chunk)`` over the candidates."""
        step = chunk_size or self.chunk_size
        for start in range(0, self.n, step):
            yield start, self.rows(start, min(start + step, self.n))

    def predict_proba(self, X_chunk: Any, model: Any = None) -> np.ndarray:
        """Validated (and, if configured, calibrated) probabilities for a chunk of rows."""
        proba = predict_proba(model if model is not None else self.model, X_chunk)
        if self.proba_transform is not None:
            proba = self.proba_transform(proba)
        return check_proba(proba, self.task_type)

    def iter_blocks(
        self, chunk_size: int | None = None
    ) -> Iterator[tuple[int, Any, np.ndarray | None]]:
        """Yield ``(start, X_block, keep)`` where ``X_block[keep]`` are candidates ``start:...``.

        ``keep`` is ``None`` when every row of ``X_block`` is a candidate. When the candidates
        are a sorted, mostly dense subset of the pool (the usual case: all rows but the few
        labelled ones), ``X_block`` is a contiguous slice of ``X`` (a view, no copy of a
        memory-mapped file) and ``keep`` drops the labelled rows; callers apply it to their
        small per-row results (``proba``, norms) instead of gathering the large feature rows.
        Otherwise ``X_block`` is the gathered candidate rows and ``keep`` is ``None``.
        """
        if not self._sorted:
            for start, X_chunk in self.iter_chunks(chunk_size):
                yield start, X_chunk, None
            return
        step = chunk_size or self.chunk_size
        for start in range(0, self.n, step):
            rows = self.row_idx[start : min(start + step, self.n)]
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            if hi - lo <= 2 * rows.shape[0]:
                keep = None if hi - lo == rows.shape[0] else rows - lo
                yield start, self.X[lo:hi], keep
            else:
                yield start, self.X[rows], None

    def iter_proba(self, chunk_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, proba_chunk)`` with ``proba_chunk (chunk, n_classes)``."""
        check_fitted(self.model)
        for start, X_block, keep in self.iter_blocks(chunk_size):
            proba = self.predict_proba(X_block)
            yield start, proba if keep is None else proba[keep]

    def proba(self) -> np.ndarray:
        """Probabilities of all candidates, ``(n_candidates, n_classes)``; small pools only."""
        chunks = [p for _, p in self.iter_proba()]
        return np.concatenate(chunks) if chunks else np.empty((0, 0))

    def embedding_rows(self, cand_idx: np.ndarray) -> Any:
        """Embedding rows (or feature rows when no embeddings were given) of candidates."""
        if self.embeddings is None:
            return self.take(cand_idx)
        return np.asarray(self.embeddings[self.pool_positions(cand_idx)])

    def subset(self, cand_idx: np.ndarray) -> Candidates:
        """Candidates restricted to ``cand_idx`` (positions into these candidates)."""
        return Candidates(
            X=self.X,
            model=self.model,
            row_idx=self.pool_positions(cand_idx),
            X_labeled=self.X_labeled,
            y_labeled=self.y_labeled,
            embeddings=self.embeddings,
            embeddings_labeled=self.embeddings_labeled,
            metadata=self.metadata,
            committee=self.committee,
            task_type=self.task_type,
            proba_transform=self.proba_transform,
            chunk_size=self.chunk_size,
            fit=self.fit,
        )


class Strategy:
    """Base class of every selection strategy.

    Subclasses set the class attributes and implement ``_select``. Parameters go in
    ``__init__`` (keyword-only, with defaults), so ``get_strategy(name, **params)`` can build
    any strategy from configuration.

    Attributes
    ----------
    name : str
        Registry name.
    description : str
        One line shown by ``labelwise strategies``.
    task_types : frozenset of TaskType
        Task types the strategy supports.
    needs : frozenset of str
        Inputs it reads from ``Candidates``: any of ``"model"``, ``"committee"``,
        ``"embeddings"``, ``"metadata"``, ``"labeled"``.
    cold_start : bool
        True if it works without a fitted model.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    task_types: ClassVar[frozenset[TaskType]] = ALL_TASKS
    needs: ClassVar[frozenset[str]] = frozenset({"model"})
    cold_start: ClassVar[bool] = False

    def select(self, candidates: Candidates, k: int, *, random_state=None) -> Query:
        """Choose ``k`` candidates to label.

        Parameters
        ----------
        candidates : Candidates
        k : int
            Batch size, ``1 <= k <= candidates.n``.
        random_state : int, Generator/RandomState or None

        Returns
        -------
        Query
            ``idx`` are positions into the candidates, best first; ``pool_idx`` the rows of
            ``candidates.X`` they are.
        """
        k = check_batch_size(k, candidates.n)
        self.check_task(candidates.task_type)
        self._check_inputs(candidates)
        rng = check_random_state(random_state)
        # ``_select`` returns (idx, scores), or (idx, scores, arm) when it delegated the batch
        idx, scores, *arm = self._select(candidates, k, rng)
        idx = np.asarray(idx, dtype=np.int64)
        return Query(
            idx=idx,
            scores=np.asarray(scores, dtype=np.float64),
            strategy=self.name,
            pool_idx=candidates.pool_positions(idx),
            arm=arm[0] if arm else "",
        )

    def check_task(self, task_type: TaskType | str) -> None:
        """Raise :class:`UnsupportedTaskError` if ``task_type`` is not supported."""
        task_type = TaskType(task_type)
        if task_type not in self.task_types:
            ok = ", ".join(sorted(t.value for t in self.task_types))
            raise UnsupportedTaskError(
                f"strategy {self.name!r} does not support {task_type.value!r} tasks; it "
                f"supports: {ok}. Run `labelwise strategies` to see which strategies do."
            )

    def _check_inputs(self, candidates: Candidates) -> None:
        if "model" in self.needs:
            check_fitted(candidates.model)
        if "committee" in self.needs and not candidates.committee:
            raise MissingInputError(
                f"strategy {self.name!r} needs a committee of fitted models; pass "
                "Candidates(committee=...) or use labelwise.strategies.Committee."
            )
        if "metadata" in self.needs and not candidates.metadata:
            raise MissingInputError(
                f"strategy {self.name!r} needs per-item metadata; pass "
                "Candidates(metadata={'source': array, ...})."
            )
        if "embeddings" in self.needs and candidates.embeddings is None:
            raise MissingInputError(
                f"strategy {self.name!r} needs embeddings; pass Candidates(embeddings=...)."
            )

    def _select(
        self, candidates: Candidates, k: int, rng: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, for storage and display."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class ScoreStrategy(Strategy):
    """A strategy that scores every candidate independently from its ``proba``.

    Scoring runs chunk by chunk with a running top-k, so peak memory is
    ``O(chunk_size * n_classes + k)`` whatever the pool size.

    Attributes
    ----------
    score_floor : float
        The lowest score the strategy can give. ``score - score_floor`` is a non-negative
        informativeness that combinations multiply by weights and diversity strategies use as
        k-means weights, so "more informative" stays "larger".
    """

    score_floor: float = 0.0

    def score(self, proba: np.ndarray) -> np.ndarray:
        """Scores ``(n_samples,)`` from ``proba (n_samples, n_classes)``."""
        raise NotImplementedError

    def scorer(self, task_type: TaskType | str) -> Callable[[np.ndarray], np.ndarray]:
        """The ``proba -> scores`` function for ``task_type``.

        Strategies whose score differs by task type (multi-label variants) override this;
        the strategy object itself is never mutated, so one instance is safe to share.
        """
        return self.score

    def score_candidates(self, candidates: Candidates) -> np.ndarray:
        """Scores of all candidates, ``(n_candidates,)`` float32 (for combinations)."""
        self.check_task(candidates.task_type)
        self._check_inputs(candidates)
        out = np.empty(candidates.n, dtype=np.float32)
        score = self.scorer(candidates.task_type)
        for start, proba in candidates.iter_proba():
            out[start : start + proba.shape[0]] = score(proba)
        return out

    def _select(self, candidates, k, rng):
        best = RunningTopK(k, random_state=rng)
        score = self.scorer(candidates.task_type)
        for start, proba in candidates.iter_proba():
            best.push(score(proba), start)
        return best.result()
