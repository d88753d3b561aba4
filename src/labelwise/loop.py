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

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise._random import check_random_state
from labelwise.errors import (
    EmptyPoolError,
    LabelMismatchError,
    LabelwiseError,
    ModelInterfaceError,
    NotFittedError,
    QueryMismatchError,
)
from labelwise.models import check_fitted, check_model, predict_proba
from labelwise.strategies import DEFAULT_STRATEGY, Candidates, Query, Strategy, get_strategy
from labelwise.strategies.base import DEFAULT_CHUNK_SIZE
from labelwise.tasks import TaskType, parse_task_type

__all__ = ["ActiveLearner", "RoundRecord", "Session", "model_seed", "round_random_state"]

SEED_SPACE = 2**32
SEED_MAX = np.iinfo(np.int32).max
#: Pool rows drawn as the stop set when a stopping rule needs one and none is given.
STOP_SET_SIZE = 1000
# purposes of round_random_state draws besides the query itself (0)
_COMMITTEE, _MODEL, _STOP_SET = 1, 2, 3


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
    arm : str
        For a strategy that delegates (``"adaptive"``), the portfolio member that chose this
        batch (``Query.arm``); ``""`` otherwise.
    """

    round: int
    n_labeled: int
    query_idx: np.ndarray
    strategy: str
    arm: str = ""


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


def _can_fit(y: np.ndarray | None, task_type: TaskType) -> bool:
    from labelwise.models.training import can_fit

    return can_fit(y, task_type)


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


def _base_seed(random_state: Any) -> int:
    """One integer seed for the whole session, drawn once from ``random_state``."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) % SEED_SPACE
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(SEED_SPACE))
    return int(check_random_state(random_state).randint(SEED_SPACE))


def round_random_state(seed: int, round: int, purpose: int = 0) -> np.random.RandomState:
    """The generator of one round: a pure function of the session seed and the round number.

    A session rebuilt from a snapshot (:meth:`Session.from_state`) at round ``r`` draws exactly
    what the original session drew at round ``r``: this is what keeps the library's loop, the
    simulator and the service selecting the same items for the same seed.
    """
    return np.random.RandomState(np.random.SeedSequence([seed, round, purpose]).generate_state(4))


def model_seed(seed: int) -> int:
    """The seed every model clone of a session with seed ``seed`` gets (constant over rounds)."""
    return int(round_random_state(seed, 0, _MODEL).randint(SEED_MAX))


@dataclass(frozen=True)
class _Fit:
    """A model fitted after some round, with the labels it saw (for a lazily fitted committee)."""

    model: Any
    round: int
    idx: np.ndarray
    y: np.ndarray | None
    members: list[Any] | None = None
    from_labels: bool = True  # False: a model given to from_state (trained elsewhere)


class Session:
    """A pool-based active learning session: query, label, refit, repeat.

    The one select → label → refit engine of labelwise: the simulator
    (:func:`labelwise.simulate.iter_simulate`) drives it with simulated annotators, and the
    service rebuilds it from a snapshot of the store each round (:meth:`from_state`).

    Parameters
    ----------
    model : classifier with ``fit`` and ``predict_proba``
        A template: each round fits ``sklearn.base.clone(model)`` on all labels so far, rows in
        pool order. If its ``random_state`` parameter is ``None``, the clone gets a seed drawn
        once from ``random_state``, so the same seed gives the same curve.
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
    candidate_mask : ndarray of bool of shape (n_pool,), optional
        Only these pool positions may be queried (e.g. everything but the service's random
        audit sample, or items already queued elsewhere). Labels of any position are welcome.
    committee : optional
        For query-by-committee strategies; fitted on the labels when such a strategy first
        needs it after a refit. One of: an estimator whose fitted clone exposes ``members_``
        (e.g. :class:`labelwise.models.committee.Committee`); a sequence of estimators (each
        cloned and fitted); or a callable ``(X_labeled, y_labeled) -> sequence of fitted
        models``. ``None`` with a committee strategy: a bagging committee of ``committee_size``
        clones of ``model``.
    committee_size : int, default=5
        Members of the default committee.
    calibration : {None, "temperature"}
        ``"temperature"``: every refit also refits a temperature on cross-validated
        probabilities of the labels (:class:`labelwise.models.calibrated.CalibratedModel`), so the
        strategy sees calibrated probabilities that follow the model as labels grow.
    proba_transform : callable or calibrator, optional
        A fixed transform applied to probabilities before scoring, e.g. a fitted
        :class:`labelwise.calibration.TemperatureScaling` (or its ``transform``).
    stopping : Criterion, optional
        A :mod:`labelwise.stopping` rule for :meth:`should_stop`.
    stop_set : array-like of shape (n_stop, n_features), optional
        Rows whose predictions are recorded after every refit
        (:attr:`stop_set_predictions`, for the stabilizing-predictions rule). Default, when
        ``stopping`` is given: up to 1,000 pool rows drawn at random.
    model_lag : int, default=0
        Queries use the model fitted ``model_lag`` refits ago (labels arrive late, so the model
        selecting in production is stale).
    random_state : int, RandomState, Generator or None
        Resolved once into one integer seed; round ``r`` draws from a generator that depends
        only on that seed and ``r`` (:func:`round_random_state`).
    chunk_size : int
        Rows scored at a time.
    selector : callable, optional
        ``selector(strategy, candidates, k, random_state=...) -> Query``: where a fitted model's
        selection runs, e.g. :class:`labelwise.scale.RaySelector` (a Ray cluster; the same
        selection as local for the same seed). ``None``: ``strategy.select`` in this process.
        Cold-start selections always run here.

    Attributes
    ----------
    history : list of RoundRecord
        One record per taught round.
    seed : int
        The session's resolved seed.
    """

    def __init__(
        self,
        model: Any,
        X_pool: Any,
        *,
        strategy: str | Strategy = DEFAULT_STRATEGY,
        strategy_params: Mapping[str, Any] | None = None,
        cold_start: str | Strategy = "random",
        cold_start_params: Mapping[str, Any] | None = None,
        labeled_idx: Any = None,
        y_labeled: Any = None,
        classes: Any = None,
        task_type: TaskType | str = TaskType.MULTICLASS,
        embeddings: Any = None,
        metadata: Mapping[str, np.ndarray] | None = None,
        candidate_mask: Any = None,
        committee: Any = None,
        committee_size: int = 5,
        calibration: str | None = None,
        proba_transform: Any = None,
        stopping: Any = None,
        stop_set: Any = None,
        model_lag: int = 0,
        random_state: Any = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        selector: Callable[..., Query] | None = None,
        _fitted_model: Any = None,
        _round: int = 0,
    ) -> None:
        self.task_type = parse_task_type(task_type)
        if calibration is not None and self.task_type == TaskType.MULTILABEL:
            raise LabelwiseError(
                "calibration='temperature' is for single-label tasks (one softmax over the "
                "classes); multi-label probabilities are per label. Leave calibration=None."
            )
        self.model = self._with_calibration(check_model(model), calibration)
        self.calibration = calibration
        self.X_pool = _check_pool(X_pool)
        n_pool = self.X_pool.shape[0]
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
        self.candidate_mask = self._check_mask(candidate_mask, n_pool)
        self.committee = self._check_committee(committee)
        self.committee_size = committee_size
        self.proba_transform = _as_transform(proba_transform)
        self.model_lag = _check_lag(model_lag)
        self.chunk_size = chunk_size
        self.selector = selector
        self.random_state = random_state
        self.seed = _base_seed(random_state)
        self._model_seed = model_seed(self.seed)

        self.classes = None if classes is None else np.asarray(classes)
        self._mask = np.zeros(n_pool, dtype=bool)
        self._idx = np.empty(0, dtype=np.int64)
        self._y: np.ndarray | None = None
        self._fits: list[_Fit] = []
        self._pending: Query | None = None
        self._round = int(_round)
        self.history: list[RoundRecord] = []

        self.stopping = _check_stopping(stopping)
        self.stop_set = stop_set
        if self.stopping is not None and stop_set is None:
            rng = round_random_state(self.seed, 0, _STOP_SET)
            pick = np.sort(rng.permutation(n_pool)[: min(STOP_SET_SIZE, n_pool)])
            self.stop_set = _rows(self.X_pool, pick)
        self.stop_set_predictions: list[np.ndarray] = []

        if labeled_idx is None and y_labeled is not None:
            raise LabelMismatchError("y_labeled was given without labeled_idx; pass both.")
        if labeled_idx is not None:
            if y_labeled is None:
                raise LabelMismatchError("labeled_idx was given without y_labeled; pass both.")
            self._add(self._check_positions(labeled_idx), y_labeled)
        if _fitted_model is not None:
            check_fitted(_fitted_model)
            self._check_fitted_classes(_fitted_model)
            self._push_fit(_fitted_model, from_labels=False)
        else:
            self._refit()

    @classmethod
    def from_state(
        cls,
        model: Any,
        X_pool: Any,
        *,
        fitted_model: Any = None,
        labeled_idx: Any = None,
        y_labeled: Any = None,
        round: int = 0,
        **params: Any,
    ) -> Session:
        """A session resumed from a snapshot, e.g. the service's store, without refitting.

        Parameters
        ----------
        model : classifier
            The template later rounds clone (a pre-trained model may be its own template).
        X_pool : array-like of shape (n_pool, n_features)
        fitted_model : fitted classifier, optional
            The model to select with now: the latest model version, or a model trained
            elsewhere (transfer learning: its uncertainty guides the very first batch). ``None``:
            fitted here from the labels when possible.
        labeled_idx, y_labeled : optional
            Labels so far (pool positions, labels).
        round : int
            Rounds already completed; with the same ``random_state`` the session draws what the
            original session drew in round ``round``.
        **params
            Any other :class:`Session` parameter.

        Returns
        -------
        Session
        """
        if params.get("model_lag", 0):
            raise LabelwiseError(
                "from_state keeps only the latest fit, so it cannot resume a session with "
                "model_lag > 0 (the older models are not in the snapshot); resume with "
                "model_lag=0 or keep the original Session."
            )
        return cls(
            model,
            X_pool,
            labeled_idx=labeled_idx,
            y_labeled=y_labeled,
            _fitted_model=fitted_model,
            _round=round,
            **params,
        )

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
    def round(self) -> int:
        """Rounds completed (taught queries, plus those completed before :meth:`from_state`)."""
        return self._round

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
        return bool(self._fits)

    @property
    def fitted_model_(self) -> Any:
        """The model fitted on all labels of the last round.

        Raises
        ------
        NotFittedError
            While fewer than two classes are labelled.
        """
        if not self._fits:
            raise NotFittedError(
                "no model is fitted yet: label items from at least two classes (query() uses "
                f"the cold-start strategy {self.cold_start.name!r} until then)."
            )
        return self._fits[-1].model

    def model_or_prior(self) -> Any:
        """The fitted model; while none can be fitted, a class-prior model of the labels so far.

        Returns
        -------
        fitted classifier or None
            ``None`` before the first label.
        """
        if self._fits:
            return self._fits[-1].model
        if self.n_labeled == 0:
            return None
        from labelwise.models.training import prior_model

        X, y = self._train_rows()
        return prior_model(X, y)

    @property
    def selecting_model_(self) -> Any:
        """The model the next query will use (``model_lag`` refits old), or ``None`` (cold)."""
        fit = self._selecting_fit()
        return None if fit is None else fit.model

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
        """The queryable pool (unlabelled, inside ``candidate_mask``) for the selecting model."""
        return self._candidates(self._selecting_fit())

    def _candidates(self, fit: _Fit | None) -> Candidates:
        free = ~self._mask if self.candidate_mask is None else ~self._mask & self.candidate_mask
        members = None
        if fit is not None and self._needs_members():
            members = self._members(fit)
        # labelled rows in pool order, as the model was fitted on them
        in_order = np.sort(self._idx)
        X_lab = y_lab = None
        if self.n_labeled:
            X_lab, y_lab = self._train_rows()
        return Candidates(
            X=self.X_pool,
            model=None if fit is None else fit.model,
            row_idx=np.flatnonzero(free),
            X_labeled=X_lab,
            y_labeled=y_lab,
            embeddings=self.embeddings,
            embeddings_labeled=(
                None
                if self.embeddings is None or self.n_labeled == 0
                else np.asarray(self.embeddings[in_order])
            ),
            metadata=self.metadata,
            committee=members,
            task_type=self.task_type,
            proba_transform=self.proba_transform,
            chunk_size=self.chunk_size,
            fit=self._fit_template,
        )

    def _fit_template(self, X: Any, y: np.ndarray) -> Any:
        """A clone of the model fitted on ``(X, y)`` with the session's seed (``Candidates.fit``).

        The same policy as every refit, and a pure function of the data and the seed, so a
        session resumed with :meth:`from_state` fits what the original one fitted.
        """
        from labelwise.models.training import fit_model

        return fit_model(self.model, X, y, random_state=self._model_seed)

    def query(self, k: int = 1) -> Query:
        """Choose the next ``k`` pool items to label.

        Uses the cold-start strategy while no model is fitted. The returned query becomes the
        pending one; asking again in the same round returns the same items.

        Returns
        -------
        Query
            ``idx`` are pool positions, best first.

        Raises
        ------
        EmptyPoolError
            If every queryable item is labelled.
        BatchSizeError
            If ``k`` is not a positive integer or exceeds the queryable count.
        """
        fit = self._selecting_fit()
        if fit is not None and self._needs_members() and not self._can_build_members(fit):
            fit = None  # a pre-trained model alone cannot make a committee: start cold
        strategy = self.strategy if fit is not None else self.cold_start
        cands = self._candidates(fit)
        if cands.n == 0:
            raise EmptyPoolError(
                "no item is left to query: every item inside candidate_mask is labelled."
                if self.candidate_mask is not None
                else "every pool item is labelled; nothing is left to query."
            )
        rs = round_random_state(self.seed, self._round)
        if self.selector is not None and fit is not None:
            q = self.selector(strategy, cands, k, random_state=rs)
        else:
            q = strategy.select(cands, k, random_state=rs)
        self._pending = Query(idx=q.pool_idx, scores=q.scores, strategy=q.strategy, arm=q.arm)
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
            RoundRecord(self._round, self.n_labeled, idx.copy(), pending.strategy, pending.arm)
        )
        self._round += 1
        self._refit()

    def add_labels(self, idx: Any, labels: Any) -> None:
        """Add labels for pool items outside a query (seed labels, labels from elsewhere).

        Refits the model and drops the pending query (its scores came from the old model: query
        again). Does not touch :attr:`history`.

        Raises
        ------
        LabelMismatchError
            On positions out of range, duplicated or already labelled, a wrong number of
            labels, or labels outside the classes.
        """
        self._add(self._check_positions(idx), labels)
        self._pending = None
        self._refit()

    def update_labels(self, idx: Any, labels: Any, *, refit: bool = True) -> None:
        """Replace the labels of items already labelled (corrections, consensus revisions).

        Parameters
        ----------
        idx : array-like of int of shape (n,)
            Labelled pool positions.
        labels : array-like of shape (n,) or (n, n_labels)
            Their new labels.
        refit : bool, default=True
            Refit now; ``False`` when a :meth:`teach` follows at once and will refit.

        Raises
        ------
        LabelMismatchError
            On positions that are not labelled, or labels outside the classes.
        """
        idx = self._check_positions(idx)
        labels = self._check_labels(idx, labels)
        where = np.full(self.n_pool, -1, dtype=np.int64)
        where[self._idx] = np.arange(self.n_labeled)
        rows_ = where[idx]
        if np.any(rows_ < 0):
            missing = idx[rows_ < 0][:5].tolist()
            raise LabelMismatchError(
                f"items {missing} are not labelled yet; label them with teach() or add_labels()."
            )
        if self._y.dtype != labels.dtype and self._y.dtype.kind != "O":
            self._y = self._y.astype(np.result_type(self._y, labels))
        self._y = self._y.copy()
        self._y[rows_] = labels
        if refit:
            self._refit()

    def stopping_state(self, metrics: Mapping[str, Sequence[float]] | None = None) -> Any:
        """The :class:`~labelwise.stopping.StoppingState` of the session now.

        Parameters
        ----------
        metrics : mapping of str to sequence of float, optional
            Validation metric histories (oldest first) for target and plateau rules.
        """
        from labelwise.stopping import StoppingState

        return StoppingState(
            n_labeled=self.n_labeled,
            round=self._round,
            metrics=dict(metrics or {}),
            stop_set_predictions=list(self.stop_set_predictions),
        )

    def should_stop(self, metrics: Mapping[str, Sequence[float]] | None = None) -> Any:
        """Apply the ``stopping`` rule to the session as it is now.

        Parameters
        ----------
        metrics : mapping of str to sequence of float, optional
            Validation metric histories (oldest first) for target and plateau rules.

        Returns
        -------
        StopDecision

        Raises
        ------
        LabelwiseError
            If the session has no stopping rule.
        """
        if self.stopping is None:
            raise LabelwiseError("this session has no stopping rule; pass Session(stopping=...).")
        return self.stopping.check(self.stopping_state(metrics))

    def _check_positions(self, idx: Any) -> np.ndarray:
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
        return idx

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

    @staticmethod
    def _with_calibration(model: Any, calibration: str | None) -> Any:
        if calibration is None:
            return model
        if calibration != "temperature":
            raise LabelwiseError(f"unknown calibration {calibration!r}; use None or 'temperature'.")
        from labelwise.calibration import TemperatureScaling
        from labelwise.models.calibrated import CalibratedModel

        return CalibratedModel(model, TemperatureScaling())  # seeded by fit_model like the model

    def _train_rows(self, idx: np.ndarray | None = None, y: np.ndarray | None = None):
        """Labelled rows in pool order (so the fit does not depend on the labelling order)."""
        idx = self._idx if idx is None else idx
        y = self._y if y is None else y
        order = np.argsort(idx, kind="stable")
        return _rows(self.X_pool, idx[order]), y[order]

    def _refit(self) -> None:
        if not _can_fit(self._y, self.task_type):
            # labels revised down to one class: a model fitted on the old labels would keep
            # selecting; a model given to from_state stays until the labels can replace it
            self._fits = [f for f in self._fits if not f.from_labels]
            return
        from labelwise.models.training import fit_model

        X, y = self._train_rows()
        self._push_fit(fit_model(self.model, X, y, random_state=self._model_seed))

    def _push_fit(self, model: Any, *, from_labels: bool = True) -> None:
        self._fits.append(_Fit(model, self._round, self._idx, self._y, None, from_labels))
        del self._fits[: max(0, len(self._fits) - self.model_lag - 1)]
        if self.stop_set is not None:
            self.stop_set_predictions.append(np.asarray(model.predict(self.stop_set)))

    def _check_fitted_classes(self, model: Any) -> None:
        """A given model must predict the session's classes (multi-label: one column each)."""
        if self.classes is None:
            return
        own = getattr(model, "classes_", None)
        if self.task_type == TaskType.MULTILABEL or own is None or np.ndim(own) != 1:
            return
        foreign = [c for c in np.asarray(own).tolist() if c not in set(self.classes.tolist())]
        if foreign:
            raise LabelMismatchError(
                f"the fitted model predicts classes {foreign[:5]} that are not among the "
                f"session's classes {self.classes.tolist()[:10]}; give a model trained on these "
                "classes (with the same label values and types)."
            )

    def _selecting_fit(self) -> _Fit | None:
        if not self._fits:
            return None
        return self._fits[max(0, len(self._fits) - 1 - self.model_lag)]

    def _needs_members(self) -> bool:
        return "committee" in self.strategy.needs

    def _can_build_members(self, fit: _Fit) -> bool:
        return fit.members is not None or (fit.y is not None and _can_fit(fit.y, self.task_type))

    def _members(self, fit: _Fit) -> list[Any]:
        """The committee fitted on the labels ``fit`` saw (fitted on first use, then kept)."""
        if fit.members is not None:
            return fit.members
        if fit.y is None or not _can_fit(fit.y, self.task_type):
            raise NotFittedError(
                "the committee needs labels from at least two classes; this model was given "
                "without them (from_state with a pre-trained model): label a batch first."
            )
        X, y = self._train_rows(fit.idx, fit.y)
        seed = int(round_random_state(self.seed, fit.round, _COMMITTEE).randint(SEED_MAX))
        members = self._fit_committee(X, y, seed)
        i = self._fits.index(fit)
        self._fits[i] = _Fit(fit.model, fit.round, fit.idx, fit.y, members, fit.from_labels)
        return members

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

    def _fit_committee(self, X: Any, y: np.ndarray, seed: int) -> list[Any]:
        from labelwise.models.training import fit_model

        c = self.committee
        if c is None:
            from labelwise.models.committee import Committee

            c = Committee(self.model, n_members=self.committee_size, random_state=seed)
        if callable(getattr(c, "fit", None)):
            fitted = fit_model(c, X, y, random_state=seed)
            members = getattr(fitted, "members_", None)
            if members is None:
                raise ModelInterfaceError(
                    f"{type(c).__name__} has no members_ after fit; pass a sequence of "
                    "estimators or a callable (X, y) -> fitted models as committee."
                )
            return list(members)
        if callable(c):
            return list(c(X, y))
        return [fit_model(m, X, y, random_state=seed) for m in c]

    @staticmethod
    def _check_mask(mask: Any, n_pool: int) -> np.ndarray | None:
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (n_pool,):
            raise LabelwiseError(
                f"candidate_mask must be a boolean array of shape ({n_pool},), one entry per "
                f"pool item; got dtype {mask.dtype} and shape {mask.shape}."
            )
        return mask

    def __repr__(self) -> str:
        return (
            f"Session(model={type(self.model).__name__}, n_pool={self.n_pool}, "
            f"n_labeled={self.n_labeled}, strategy={self.strategy.name!r}, "
            f"rounds={self._round})"
        )


def _check_lag(lag: Any) -> int:
    if isinstance(lag, bool) or not isinstance(lag, numbers.Integral) or lag < 0:
        raise LabelwiseError(f"model_lag must be an integer >= 0; got {lag!r}.")
    return int(lag)


def _check_stopping(stopping: Any) -> Any:
    if stopping is None:
        return None
    from labelwise.stopping import Criterion, from_config

    if isinstance(stopping, Mapping):
        return from_config(stopping)
    if not isinstance(stopping, Criterion):
        raise LabelwiseError(
            "stopping takes a labelwise.stopping criterion (or its JSON form); got "
            f"{type(stopping).__name__}."
        )
    return stopping


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
        strategy: str | Strategy = DEFAULT_STRATEGY,
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
