"""The query/teach loop.

:class:`Session` owns a pool: it holds a labeled mask and the labels, asks a strategy for the next
batch (``query(k) -> Query`` of *pool positions*) and takes the answers
(``teach(query, labels)``), fitting a fresh clone of the model after every round::

    session = Session(LogisticRegression(max_iter=1000), X_pool, strategy="margin",
                      random_state=0)
    for _ in range(10):
        q = session.query(20)
        session.teach(q, oracle(q.idx))
    session.fitted_model_.score(X_test, y_test)

:class:`ActiveLearner` is the modAL-style object for notebooks: it holds the training data, and
the pool is passed to each ``query`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import check_random_state

from labelwise.errors import (
    EmptyPoolError,
    LabelMismatchError,
    LabelwiseError,
    ModelInterfaceError,
    NotFittedError,
    QueryMismatchError,
)
from labelwise.models import check_fitted, check_model, predict_proba
from labelwise.strategies import Candidates, Query, Strategy, get_strategy
from labelwise.strategies.base import DEFAULT_CHUNK_SIZE
from labelwise.tasks import TaskType, parse_task_type

__all__ = ["ActiveLearner", "RoundRecord", "Session"]


@dataclass(frozen=True)
class RoundRecord:
    """One completed query/teach round of a :class:`Session`.

    Attributes
    ----------
    round : int
        0-based round number.
    n_labeled : int
        Labels held after the round was taught.
    query_idx : ndarray of shape (k,)
        Pool positions that were queried and labelled.
    strategy : str
        Registered name of the strategy that chose them (the cold-start one before a model fits).
    """

    round: int
    n_labeled: int
    query_idx: np.ndarray
    strategy: str


def _check_pool(X: Any) -> Any:
    if not (sp.issparse(X) or hasattr(X, "shape")):
        X = np.asarray(X)
    if len(X.shape) != 2:
        raise LabelwiseError(
            f"X_pool must be 2-D (n_pool, n_features); got shape {X.shape}. Reshape a single "
            "feature with X.reshape(-1, 1)."
        )
    if X.shape[0] == 0:
        raise EmptyPoolError("X_pool has no rows; a session needs at least one item to query.")
    return X


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X[idx] if sp.issparse(X) else np.asarray(X[idx])


def _stack(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if sp.issparse(a) or sp.issparse(b):
        return sp.vstack([a, b], format="csr")
    return np.concatenate([np.asarray(a), np.asarray(b)])


def _can_fit(y: np.ndarray, task_type: TaskType) -> bool:
    """True once a classifier can fit: 2+ classes (multi-label: both values of every label)."""
    if y is None or y.shape[0] == 0:
        return False
    if task_type == TaskType.MULTILABEL:
        return bool(((y.min(axis=0) == 0) & (y.max(axis=0) == 1)).all())
    return np.unique(y).shape[0] >= 2


def _numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "biuf"


def _as_transform(proba_transform: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    if proba_transform is None or callable(getattr(proba_transform, "transform", None)):
        return getattr(proba_transform, "transform", None)
    if callable(proba_transform):
        return proba_transform
    raise LabelwiseError(
        "proba_transform must be a callable proba -> proba or a fitted calibrator with "
        f"transform(); got {type(proba_transform).__name__}."
    )


class Session:
    """A pool-based active learning session: query, label, refit, repeat.

    Parameters
    ----------
    model : classifier with ``fit`` and ``predict_proba``
        A template: each round fits ``sklearn.base.clone(model)`` on all labels so far. If its
        ``random_state`` parameter is ``None``, the clone gets a seed drawn once from
        ``random_state``, so the same seed gives the same curve.
    X_pool : array-like, ``np.memmap`` or CSR matrix of shape (n_pool, n_features)
    strategy : str or Strategy
        Strategy used once a model is fitted (see ``labelwise strategies``).
    strategy_params : dict, optional
        Parameters of ``strategy`` when it is given by name.
    cold_start : str or Strategy
        Strategy used while no model can be fitted (no labels yet, or fewer than 2 classes
        labelled; multi-label: some label never seen both on and off).
    cold_start_params : dict, optional
    labeled_idx : array-like of int of shape (n_labeled,), optional
        Pool positions already labelled.
    y_labeled : array-like of shape (n_labeled,) or (n_labeled, n_labels), optional
        Their labels (multi-label: 0/1 indicator rows).
    classes : array-like, optional
        The valid labels (multi-label: the label names, one per column). When given, any
        other label is rejected. When omitted, classes are learned from the labels as they
        come (a class first seen in round 5 is welcome), and only labels of another kind
        (text after numbers) are rejected.
    task_type : {"multiclass", "binary", "multilabel"}
    embeddings : ndarray of shape (n_pool, n_dims), optional
        Representation for diversity / cold-start strategies.
    metadata : mapping of str to ndarray of shape (n_pool,), optional
    committee : optional
        For query-by-committee strategies; refitted every round on the labels, when the strategy
        needs it. One of: an estimator whose fitted clone exposes ``members_`` (e.g.
        ``labelwise.strategies.committee.Committee``); a sequence of estimators (each cloned and
        fitted); or a callable ``(X_labeled, y_labeled) -> sequence of fitted models``.
    proba_transform : callable or calibrator, optional
        Applied to probabilities before scoring, e.g. a fitted
        :class:`labelwise.calibration.TemperatureScaling` (or its ``transform``).
    random_state : int, RandomState, Generator or None
        Resolved once here; every query draws from it.
    chunk_size : int
        Rows scored at a time.

    Attributes
    ----------
    history : list of RoundRecord
        One record per taught round.
    """

    def __init__(
        self,
        model: Any,
        X_pool: Any,
        *,
        strategy: str | Strategy = "margin",
        strategy_params: Mapping[str, Any] | None = None,
        cold_start: str | Strategy = "random",
        cold_start_params: Mapping[str, Any] | None = None,
        labeled_idx: Any = None,
        y_labeled: Any = None,
        classes: Any = None,
        task_type: TaskType | str = TaskType.MULTICLASS,
        embeddings: Any = None,
        metadata: Mapping[str, np.ndarray] | None = None,
        committee: Any = None,
        proba_transform: Any = None,
        random_state: Any = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.model = check_model(model)
        self.X_pool = _check_pool(X_pool)
        n_pool = self.X_pool.shape[0]
        self.task_type = parse_task_type(task_type)
        self.strategy = get_strategy(strategy, **dict(strategy_params or {}))
        self.cold_start = get_strategy(cold_start, **dict(cold_start_params or {}))
        if not self.cold_start.cold_start:
            raise LabelwiseError(
                f"cold_start strategy {self.cold_start.name!r} needs a fitted model; use one "
                "that works without a model, such as 'random'."
            )
        self.strategy.check_task(self.task_type)
        self.cold_start.check_task(self.task_type)
        if embeddings is not None and np.shape(embeddings)[0] != n_pool:
            raise LabelwiseError(
                f"embeddings have {np.shape(embeddings)[0]} rows but X_pool has {n_pool}; give "
                "one embedding per pool item."
            )
        for key, col in (metadata or {}).items():
            if np.shape(col)[0] != n_pool:
                raise LabelwiseError(
                    f"metadata[{key!r}] has {np.shape(col)[0]} entries but X_pool has {n_pool}."
                )
        self.embeddings = embeddings
        self.metadata = metadata
        self.committee = self._check_committee(committee)
        self.proba_transform = _as_transform(proba_transform)
        self.chunk_size = chunk_size
        self.random_state = random_state
        self._rng = check_random_state(random_state)
        self._model_seed = int(self._rng.randint(np.iinfo(np.int32).max))

        self.classes = None if classes is None else np.asarray(classes)
        self._mask = np.zeros(n_pool, dtype=bool)
        self._idx = np.empty(0, dtype=np.int64)
        self._y: np.ndarray | None = None
        self._model: Any = None
        self._members: list[Any] | None = None
        self._pending: Query | None = None
        self.history: list[RoundRecord] = []

        if labeled_idx is None and y_labeled is not None:
            raise LabelMismatchError("y_labeled was given without labeled_idx; pass both.")
        if labeled_idx is not None:
            if y_labeled is None:
                raise LabelMismatchError("labeled_idx was given without y_labeled; pass both.")
            self.add_labels(labeled_idx, y_labeled)

    # ------------------------------------------------------------------ state

    @property
    def n_pool(self) -> int:
        return int(self.X_pool.shape[0])

    @property
    def n_labeled(self) -> int:
        return int(self._idx.shape[0])

    @property
    def n_unlabeled(self) -> int:
        return self.n_pool - self.n_labeled

    @property
    def labeled_idx(self) -> np.ndarray:
        """Pool positions labelled so far, in the order they were labelled."""
        return self._idx.copy()

    @property
    def unlabeled_idx(self) -> np.ndarray:
        """Pool positions not labelled yet, ascending."""
        return np.flatnonzero(~self._mask)

    @property
    def labeled_mask(self) -> np.ndarray:
        """``(n_pool,)`` bool, True where labelled (a copy)."""
        return self._mask.copy()

    @property
    def y_labeled(self) -> np.ndarray | None:
        """Labels, aligned with :attr:`labeled_idx`."""
        return None if self._y is None else self._y.copy()

    @property
    def classes_(self) -> np.ndarray | None:
        """Declared classes, or the sorted classes seen so far (multi-label: label columns)."""
        if self.classes is not None or self._y is None:
            return self.classes
        if self.task_type == TaskType.MULTILABEL:
            return np.arange(self._y.shape[1])
        return np.unique(self._y)

    @property
    def is_fitted(self) -> bool:
        return self._model is not None

    @property
    def fitted_model_(self) -> Any:
        """The model fitted on all labels of the last round.

        Raises
        ------
        NotFittedError
            While fewer than two classes are labelled.
        """
        if self._model is None:
            raise NotFittedError(
                "no model is fitted yet: label items from at least two classes (query() uses "
                f"the cold-start strategy {self.cold_start.name!r} until then)."
            )
        return self._model

    @property
    def pending_query(self) -> Query | None:
        """The query awaiting ``teach``, if any."""
        return self._pending

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of the current model (through ``proba_transform`` if set)."""
        proba = predict_proba(self.fitted_model_, X)
        return self.proba_transform(proba) if self.proba_transform else proba

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the current model."""
        return self.fitted_model_.predict(X)

    # ------------------------------------------------------------------ loop

    def candidates(self) -> Candidates:
        """The unlabeled pool as :class:`Candidates` for the current model."""
        X_lab = None if self.n_labeled == 0 else _rows(self.X_pool, self._idx)
        return Candidates(
            X=self.X_pool,
            model=self._model,
            row_idx=self.unlabeled_idx,
            X_labeled=X_lab,
            y_labeled=self._y,
            embeddings=self.embeddings,
            embeddings_labeled=(
                None
                if self.embeddings is None or self.n_labeled == 0
                else np.asarray(self.embeddings[self._idx])
            ),
            metadata=self.metadata,
            committee=self._members,
            task_type=self.task_type,
            proba_transform=self.proba_transform,
            chunk_size=self.chunk_size,
        )

    def query(self, k: int = 1) -> Query:
        """Choose the next ``k`` pool items to label.

        Uses the cold-start strategy while no model is fitted. The returned query becomes the
        pending one; asking again replaces it.

        Returns
        -------
        Query
            ``idx`` are pool positions, best first.

        Raises
        ------
        EmptyPoolError
            If every item is labelled.
        BatchSizeError
            If ``k`` is not a positive integer or exceeds the unlabeled count.
        """
        strategy = self.strategy if self._model is not None else self.cold_start
        cands = self.candidates()
        q = strategy.select(cands, k, random_state=self._rng)
        self._pending = Query(idx=cands.pool_positions(q.idx), scores=q.scores, strategy=q.strategy)
        return self._pending

    def teach(self, query: Query | Any, labels: Any) -> None:
        """Record the labels of the pending query and refit the model.

        Parameters
        ----------
        query : Query or array-like of int
            The pending query (or its pool positions, e.g. read back from storage).
        labels : array-like of shape (k,) or (k, n_labels)
            One label per queried item, in query order.

        Raises
        ------
        QueryMismatchError
            If no query is pending or ``query`` is not the pending one.
        LabelMismatchError
            On a wrong number of labels or labels outside the classes.
        """
        idx = np.asarray(query.idx if isinstance(query, Query) else query, dtype=np.int64)
        pending = self._pending
        if pending is None:
            raise QueryMismatchError("no query is pending; call query(k) before teach().")
        if not np.array_equal(idx, pending.idx):
            raise QueryMismatchError(
                f"teach() got a query for positions {idx[:5].tolist()}... but the pending query "
                f"is {pending.idx[:5].tolist()}...; teach the latest query from query(k)."
            )
        self._add(idx, labels)
        self._pending = None
        self.history.append(
            RoundRecord(len(self.history), self.n_labeled, idx.copy(), pending.strategy)
        )
        self._refit()

    def add_labels(self, idx: Any, labels: Any) -> None:
        """Add labels for pool items outside a query (seed labels, labels from elsewhere).

        Refits the model. Does not touch the pending query or :attr:`history`.

        Raises
        ------
        LabelMismatchError
            On positions out of range, duplicated or already labelled, a wrong number of
            labels, or labels outside the classes.
        """
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise LabelMismatchError("labeled_idx must be a 1-D array of integer pool positions.")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_pool):
            raise LabelMismatchError(
                f"pool positions must lie in [0, {self.n_pool}); got {idx.min()}..{idx.max()}."
            )
        if np.unique(idx).shape[0] != idx.shape[0]:
            raise LabelMismatchError("labeled_idx has duplicate positions; give each item once.")
        self._add(idx, labels)
        self._pending = None
        self._refit()

    def _add(self, idx: np.ndarray, labels: Any) -> None:
        labels = self._check_labels(idx, labels)
        again = idx[self._mask[idx]]
        if again.size:
            raise LabelMismatchError(
                f"items {again[:5].tolist()} are already labelled; labelwise does not relabel. "
                "Start a new Session to correct labels."
            )
        self._mask[idx] = True
        self._idx = np.concatenate([self._idx, idx])
        self._y = labels if self._y is None else np.concatenate([self._y, labels])

    def _check_labels(self, idx: np.ndarray, labels: Any) -> np.ndarray:
        labels = np.asarray(labels)
        multilabel = self.task_type == TaskType.MULTILABEL
        if labels.ndim == 0 or labels.shape[0] != idx.shape[0]:
            n = 1 if labels.ndim == 0 else labels.shape[0]
            raise LabelMismatchError(
                f"got {n} labels for {idx.shape[0]} items; give exactly one label per item, in "
                "query order."
            )
        if multilabel:
            n_labels = self._y.shape[1] if self._y is not None else None
            if self.classes is not None:
                n_labels = self.classes.shape[0]
            if labels.ndim != 2 or (n_labels is not None and labels.shape[1] != n_labels):
                raise LabelMismatchError(
                    f"multi-label labels must be 0/1 rows of shape (n_items, {n_labels or 'L'}); "
                    f"got shape {labels.shape}."
                )
            if not np.isin(labels, (0, 1)).all():
                raise LabelMismatchError("multi-label labels must be 0/1 indicator rows.")
            return labels.astype(np.int64)
        if labels.ndim != 1:
            raise LabelMismatchError(
                f"labels must be 1-D (one class per item); got shape {labels.shape}. For "
                "multi-label data pass task_type='multilabel'."
            )
        if self.classes is not None:
            bad = ~np.isin(labels, self.classes)
            if bad.any():
                raise LabelMismatchError(
                    f"label {labels[bad].tolist()[0]!r} is not one of the classes; valid classes: "
                    f"{self.classes.tolist()}"
                )
        elif self._y is not None and _numeric(labels) != _numeric(self._y):
            raise LabelMismatchError(
                f"labels {labels[:3].tolist()} are not of the same kind as the labels so far "
                f"(classes seen: {self.classes_.tolist()}); pass classes= to declare them."
            )
        return labels

    # ------------------------------------------------------------------ fitting

    def _clone(self, estimator: Any) -> Any:
        est = clone(estimator)
        params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=self._model_seed)
        return est

    def _refit(self) -> None:
        if not _can_fit(self._y, self.task_type):
            return
        X = _rows(self.X_pool, self._idx)
        self._model = self._clone(self.model).fit(X, self._y)
        self._members = None
        if self.committee is not None and "committee" in self.strategy.needs:
            self._members = self._fit_committee(X, self._y)

    @staticmethod
    def _check_committee(committee: Any) -> Any:
        if committee is None or callable(getattr(committee, "fit", None)) or callable(committee):
            return committee
        if isinstance(committee, Sequence) and committee:
            for m in committee:
                check_model(m)
            return list(committee)
        raise ModelInterfaceError(
            f"committee must be an estimator exposing members_, a sequence of estimators or a "
            f"callable (X, y) -> fitted models; got {type(committee).__name__}."
        )

    def _fit_committee(self, X: Any, y: np.ndarray) -> list[Any]:
        c = self.committee
        if callable(getattr(c, "fit", None)):
            fitted = self._clone(c).fit(X, y)
            members = getattr(fitted, "members_", None)
            if members is None:
                raise ModelInterfaceError(
                    f"{type(c).__name__} has no members_ after fit; pass a sequence of "
                    "estimators or a callable (X, y) -> fitted models as committee."
                )
            return list(members)
        if callable(c):
            return list(c(X, y))
        return [self._clone(m).fit(X, y) for m in c]

    def __repr__(self) -> str:
        return (
            f"Session(model={type(self.model).__name__}, n_pool={self.n_pool}, "
            f"n_labeled={self.n_labeled}, strategy={self.strategy.name!r}, "
            f"rounds={len(self.history)})"
        )


class ActiveLearner:
    """modAL-style active learner for notebooks.

    Holds the estimator and its training data; the pool is passed to each :meth:`query`.
    ``teach`` appends to the training data and refits the estimator in place (as modAL does).
    Until the training data has two classes, ``query`` samples with ``cold_start``.

    Parameters
    ----------
    estimator : classifier with ``fit`` and ``predict_proba``
    strategy : str or Strategy
    X_training, y_training : array-like, optional
        Initial labelled data; the estimator is fitted on it at once.
    strategy_params : dict, optional
    cold_start : str or Strategy
    random_state : int, RandomState, Generator or None
        Resolved once here.
    **fit_kwargs
        Passed to ``estimator.fit``.
    """

    def __init__(
        self,
        estimator: Any,
        strategy: str | Strategy = "margin",
        X_training: Any = None,
        y_training: Any = None,
        *,
        strategy_params: Mapping[str, Any] | None = None,
        cold_start: str | Strategy = "random",
        random_state: Any = None,
        **fit_kwargs: Any,
    ) -> None:
        self.estimator = check_model(estimator)
        self.strategy = get_strategy(strategy, **dict(strategy_params or {}))
        self.cold_start = get_strategy(cold_start)
        self.random_state = random_state
        self._rng = check_random_state(random_state)
        self.fit_kwargs = fit_kwargs
        self.X_training: Any = None
        self.y_training: np.ndarray | None = None
        self._fitted = False
        if (X_training is None) != (y_training is None):
            raise LabelMismatchError("pass both X_training and y_training, or neither.")
        if X_training is not None:
            self.fit(X_training, y_training)
        else:
            try:
                check_fitted(self.estimator)
                self._fitted = True
            except (NotFittedError, ModelInterfaceError):
                pass

    @staticmethod
    def _check_xy(X: Any, y: Any) -> tuple[Any, np.ndarray]:
        if not sp.issparse(X):
            X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim == 0 or X.shape[0] != y.shape[0]:
            raise LabelMismatchError(
                f"X must be 2-D with one row per label; got X {X.shape} and y {y.shape}."
            )
        return X, y

    def fit(self, X: Any, y: Any, **fit_kwargs: Any) -> ActiveLearner:
        """Replace the training data with ``(X, y)`` and fit the estimator on it."""
        X, y = self._check_xy(X, y)
        self.X_training, self.y_training = X, y
        self._fit(**fit_kwargs)
        return self

    def teach(self, X: Any, y: Any, **fit_kwargs: Any) -> None:
        """Append ``(X, y)`` to the training data and refit the estimator on all of it."""
        X, y = self._check_xy(X, y)
        self.X_training = _stack(self.X_training, X)
        self.y_training = y if self.y_training is None else np.concatenate([self.y_training, y])
        self._fit(**fit_kwargs)

    def _fit(self, **fit_kwargs: Any) -> None:
        y = self.y_training
        task = TaskType.MULTILABEL if y.ndim == 2 else TaskType.MULTICLASS
        if not _can_fit(y, task):
            return
        self.estimator.fit(self.X_training, y, **{**self.fit_kwargs, **fit_kwargs})
        self._fitted = True

    def query(self, X_pool: Any, n_instances: int = 1) -> tuple[np.ndarray, Any]:
        """Pick ``n_instances`` rows of ``X_pool``.

        Returns
        -------
        query_idx : ndarray of shape (n_instances,)
            Positions into ``X_pool``, best first.
        X_query : rows ``X_pool[query_idx]``
        """
        X_pool = _check_pool(X_pool)
        strategy = self.strategy if self._fitted else self.cold_start
        task = TaskType.MULTILABEL if getattr(self.y_training, "ndim", 1) == 2 else None
        cands = Candidates(
            X=X_pool,
            model=self.estimator if self._fitted else None,
            task_type=task or TaskType.MULTICLASS,
        )
        q = strategy.select(cands, n_instances, random_state=self._rng)
        return q.idx, _rows(X_pool, q.idx)

    def _require_fitted(self) -> Any:
        if not self._fitted:
            raise NotFittedError(
                "the estimator is not fitted; teach() labelled rows from at least two classes."
            )
        return self.estimator

    def predict(self, X: Any) -> np.ndarray:
        return self._require_fitted().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._require_fitted().predict_proba(X)

    def score(self, X: Any, y: Any) -> float:
        """The estimator's ``score`` (mean accuracy for classifiers)."""
        return float(self._require_fitted().score(X, y))
