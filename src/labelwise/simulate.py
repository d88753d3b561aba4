"""Simulated active learning on a labelled data set, with the realities of production labeling.

:func:`iter_simulate` drives the one select → label → refit engine, :class:`labelwise.loop.Session`,
on a data set whose labels are known: round 0 labels a cold-start set (the session's
``cold_start`` strategy), each later round asks the session for a batch, gets it labeled by a
simulated :class:`~labelwise.annotators.Oracle`, teaches the session (which refits) and scores the
model on the held-out test set. It yields one frozen :class:`RoundPoint` per round, so progress
bars, reports and persistence consume it while it runs; :func:`simulate` collects the points into
a :class:`SimulationResult`. Because the loop is the session's, a hand-written
``Session(..., random_state=seed)`` loop with the same parameters selects the same items.

The oracle can be as imperfect as real annotators (:mod:`labelwise.annotators`):

- **Noise** (:class:`NoiseModel`): each annotation is flipped to a uniformly random other class
  with a probability that depends on the annotator and on the true class.
- **Consensus** (:class:`Consensus`): the hardest items of each batch (by the selecting model's
  uncertainty) get ``k`` annotations from distinct annotators, aggregated by majority vote or by
  Dawid–Skene EM (:func:`dawid_skene`); the extra annotations are counted as cost, and labels
  Dawid–Skene revises are revised in the session too.
- **Latency** (``latency_rounds``): labels take time, so each batch is selected by a model that
  is ``latency_rounds`` refits stale (the session's ``model_lag``).

Stopping criteria (:mod:`labelwise.stopping`) are checked after every round; the simulation does
not stop, it records which criteria would have stopped and when, so the learning curve is whole.

>>> from labelwise.simulate import simulate                     # doctest: +SKIP
>>> result = simulate("digits", "margin", n_rounds=10, random_state=0)  # doctest: +SKIP
>>> result.n_labeled, result.quality                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.utils import check_random_state

# the annotators and aggregation lived here before; re-exported so old imports keep working
from labelwise.annotators import (
    CONSENSUS_METHODS,
    BatchLabels,
    Consensus,
    NoiseModel,
    Oracle,
    dawid_skene,
    majority_vote,
)
from labelwise.errors import BatchSizeError, EmptyPoolError, LabelwiseError
from labelwise.health import batch_accuracy, class_balance_tvd, prediction_agreement
from labelwise.models import check_model, predict_proba
from labelwise.models.training import rows as _rows
from labelwise.strategies import Strategy, get_strategy
from labelwise.tasks import TaskType

__all__ = [
    "CONSENSUS_METHODS",
    "BatchLabels",
    "Consensus",
    "NoiseModel",
    "Oracle",
    "RoundPoint",
    "SimulationData",
    "SimulationResult",
    "dawid_skene",
    "default_model",
    "heldout_metrics",
    "iter_simulate",
    "majority_vote",
    "resolve_data",
    "simulate",
]

RECALL_PRECISION = 0.9
POOL_ENTROPY_SAMPLE = 1000
DEFAULT_ROUNDS = 10
SEED_SPACE = 2**32
# the simulator's own random streams (oracle, pool sample): SeedSequence children of the seed
# that the Session never draws from, so they cannot shift the session's selections
_ORACLE_STREAM, _SAMPLE_STREAM = 1, 2
# parameters simulate() records in SimulationResult.config
_CONFIG_KEYS = frozenset(
    "initial_size batch_size n_rounds label_budget random_state noise consensus latency_rounds "
    "strategy_params metric cold_start".split()
)


def default_model() -> LogisticRegression:
    """The model simulations use unless told otherwise: ``LogisticRegression(max_iter=1000)``."""
    return LogisticRegression(max_iter=1000)


@dataclass(frozen=True)
class SimulationData:
    """Train pool and test set of a simulation (from a :class:`~labelwise.datasets.Dataset`).

    Attributes
    ----------
    X_train, y_train : pool features ``(n_pool, n_features)`` and true labels ``(n_pool,)``
    X_test, y_test : held-out test set
    classes : ndarray of shape (n_classes,)
    metric : {"accuracy", "pr_auc"}
        The headline quality metric.
    positive_label : object or None
        Positive class of a binary set (PR-AUC, recall@precision).
    name : str
    metadata : dict of str to ndarray of shape (n_pool,)
    """

    X_train: Any = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: Any = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: np.ndarray
    metric: str = "accuracy"
    positive_label: Any = None
    name: str = "arrays"
    metadata: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_pool(self) -> int:
        return int(self.y_train.shape[0])


def resolve_data(data: Any, *, metric: str | None = None) -> SimulationData:
    """Turn a data set name, a ``Dataset`` or ``(X_train, y_train, X_test, y_test)`` into data.

    Raises
    ------
    UnknownDatasetError
        For an unknown name (the message lists the valid ones).
    LabelwiseError
        For arrays of mismatched lengths or an unknown metric.
    """
    if isinstance(data, SimulationData):
        out = data
    elif isinstance(data, str):
        from labelwise.datasets import load_dataset

        out = _from_dataset(load_dataset(data))
    elif hasattr(data, "X_train") and hasattr(data, "y_test"):
        out = _from_dataset(data)
    elif isinstance(data, Sequence) and len(data) == 4:
        X_train, y_train, X_test, y_test = data
        y_train, y_test = np.asarray(y_train), np.asarray(y_test)
        if X_train.shape[0] != y_train.shape[0] or X_test.shape[0] != y_test.shape[0]:
            raise LabelwiseError(
                f"X_train has {X_train.shape[0]} rows and y_train {y_train.shape[0]}; X_test "
                f"{X_test.shape[0]} and y_test {y_test.shape[0]}; pass one label per row."
            )
        classes = np.unique(np.concatenate([y_train, y_test]))
        out = SimulationData(
            X_train,
            y_train,
            X_test,
            y_test,
            classes,
            positive_label=classes[-1] if classes.shape[0] == 2 else None,
        )
    else:
        raise LabelwiseError(
            "data must be a data set name (see labelwise.datasets.dataset_names()), a Dataset, "
            f"or a tuple (X_train, y_train, X_test, y_test); got {type(data).__name__}."
        )
    if metric is not None:
        if metric not in ("accuracy", "macro_f1", "pr_auc"):
            raise LabelwiseError(
                f"unknown metric {metric!r}; use 'accuracy', 'macro_f1' or 'pr_auc'."
            )
        if metric == "pr_auc" and out.classes.shape[0] != 2:
            raise LabelwiseError("metric 'pr_auc' needs a binary data set.")
        out = SimulationData(**{**out.__dict__, "metric": metric})
    return out


def _from_dataset(ds: Any) -> SimulationData:
    classes = np.asarray(ds.classes)
    pos = ds.positive_label
    if pos is None and classes.shape[0] == 2:
        pos = classes[-1]
    return SimulationData(
        X_train=ds.X_train,
        y_train=np.asarray(ds.y_train),
        X_test=ds.X_test,
        y_test=np.asarray(ds.y_test),
        classes=classes,
        metric=ds.metric,
        positive_label=pos,
        name=ds.name,
        metadata=dict(getattr(ds, "metadata_train", {}) or {}),
    )


def heldout_metrics(model: Any, data: SimulationData) -> dict[str, float]:
    """Accuracy, macro-F1 and, for binary data, PR-AUC and recall at 90% precision on test.

    The model's probability columns are mapped onto ``data.classes`` (a model fitted on a subset
    of the classes predicts probability 0 for the others).
    """
    from labelwise.imbalanced import pr_auc, recall_at_precision

    proba = np.asarray(predict_proba(model, data.X_test), dtype=np.float64)
    cols = np.searchsorted(data.classes, np.asarray(model.classes_))
    full = np.zeros((proba.shape[0], data.classes.shape[0]))
    full[:, cols] = proba
    pred = data.classes[full.argmax(axis=1)]
    out = {
        "accuracy": float(accuracy_score(data.y_test, pred)),
        "macro_f1": float(
            f1_score(data.y_test, pred, labels=data.classes, average="macro", zero_division=0)
        ),
    }
    if data.classes.shape[0] == 2 and data.positive_label is not None:
        pos_col = int(np.flatnonzero(data.classes == data.positive_label)[0])
        s = full[:, pos_col]
        out["pr_auc"] = pr_auc(data.y_test, s, pos_label=data.positive_label)
        out["recall_at_precision"] = recall_at_precision(
            data.y_test, s, RECALL_PRECISION, pos_label=data.positive_label
        )
    return out


# ---------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPoint:
    """The state after one round of a simulation.

    Attributes
    ----------
    round : int
        0 for the initial (random) set, then 1, 2, ...
    n_labeled : int
        Items labeled so far.
    quality : float
        The headline metric (``metrics[metric]``) on the test set.
    metrics : dict of str to float
        ``accuracy``, ``macro_f1`` and, for binary data, ``pr_auc``, ``recall_at_precision``.
    fit_seconds, select_seconds : float
        Time to fit this round's model and to select this round's batch.
    selected : ndarray of shape (batch,), int64
        Pool positions labeled in this round (the initial set in round 0), best first.
    n_noisy : int
        Labels of this round's batch that are wrong (after consensus).
    n_noisy_total : int
        Wrong labels in the whole labeled set now (consensus may revise earlier ones).
    n_annotations : int
        Annotations paid for this round's batch.
    n_consensus_items : int
        Items of this batch labeled by several annotators.
    informativeness : float
        Mean normalised entropy (``H / ln n_classes``) of the picks under the selecting model;
        NaN in round 0 or without a model.
    pool_informativeness : float
        The same on a fixed random sample of the unlabeled pool, for comparison.
    stale_rounds : int
        How many rounds old the selecting model was.
    stops : tuple of (str, str)
        ``(criterion, reason)`` of every stopping criterion that said stop after this round.
    agreement : float
        Strategy health (:mod:`labelwise.health`): share of a fixed pool sample on which this
        round's model predicts what the previous round's did; NaN until two models exist.
    batch_accuracy : float
        Accuracy of the selecting model on this round's batch once labelled (low: the batch
        was informative); NaN without a selecting model.
    batch_class_tvd : float
        Total variation distance between the batch's label distribution and the selecting
        model's predicted distribution on the unlabelled pool sample; NaN without a model.
    arm : str
        The portfolio member that chose the batch (``"adaptive"``); ``""`` otherwise.
    """

    round: int
    n_labeled: int
    quality: float
    metrics: dict[str, float]
    fit_seconds: float
    select_seconds: float
    selected: np.ndarray = field(repr=False)
    n_noisy: int = 0
    n_noisy_total: int = 0
    n_annotations: int = 0
    n_consensus_items: int = 0
    informativeness: float = float("nan")
    pool_informativeness: float = float("nan")
    stale_rounds: int = 0
    stops: tuple[tuple[str, str], ...] = ()
    agreement: float = float("nan")
    batch_accuracy: float = float("nan")
    batch_class_tvd: float = float("nan")
    arm: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["selected"] = self.selected.tolist()
        d["stops"] = [list(s) for s in self.stops]
        return d


@dataclass(frozen=True)
class SimulationResult:
    """All points of one simulation and the configuration that produced them."""

    points: list[RoundPoint]
    config: dict[str, Any]

    @property
    def n_labeled(self) -> np.ndarray:
        return np.asarray([p.n_labeled for p in self.points], dtype=np.int64)

    @property
    def quality(self) -> np.ndarray:
        return np.asarray([p.quality for p in self.points], dtype=np.float64)

    def metric(self, name: str) -> np.ndarray:
        """Values of one metric per round."""
        return np.asarray([p.metrics.get(name, np.nan) for p in self.points], dtype=np.float64)

    def stop_points(self) -> dict[str, RoundPoint]:
        """For each stopping criterion that fired, the first point at which it did."""
        out: dict[str, RoundPoint] = {}
        for p in self.points:
            for name, _ in p.stops:
                out.setdefault(name, p)
        return out


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise BatchSizeError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _plan_rounds(
    n_pool: int, initial_size: int, batch_size: int, n_rounds: int | None, label_budget: int | None
) -> int:
    if initial_size > n_pool:
        raise BatchSizeError(
            f"initial_size {initial_size} is larger than the pool of {n_pool} items; use at "
            f"most {n_pool}."
        )
    if batch_size > n_pool - initial_size:
        left = n_pool - initial_size
        raise BatchSizeError(
            f"batch_size {batch_size} is larger than the {left} items left in the pool after the "
            f"initial set of {initial_size}; use a batch of at most {max(left, 1)}."
            if left
            else f"the initial set of {initial_size} uses the whole pool; nothing is left to "
            "select. Use a smaller initial_size."
        )
    if n_rounds is not None and label_budget is not None:
        raise LabelwiseError("give n_rounds or label_budget, not both.")
    if label_budget is not None:
        label_budget = _check_positive_int("label_budget", label_budget, initial_size)
        n_rounds = math.ceil((label_budget - initial_size) / batch_size)
    elif n_rounds is None:
        n_rounds = DEFAULT_ROUNDS
    n_rounds = _check_positive_int("n_rounds", n_rounds, 0)
    max_rounds = math.ceil((n_pool - initial_size) / batch_size)
    return min(n_rounds, max_rounds)


def _resolve_stopping(stopping: Any) -> dict[str, Any]:
    from labelwise.stopping import Criterion

    if stopping is None:
        return {}
    if isinstance(stopping, Criterion):
        stopping = [stopping]
    if isinstance(stopping, Mapping):
        items = list(stopping.items())
    else:
        items = [(getattr(c, "name", type(c).__name__), c) for c in stopping]
    out: dict[str, Any] = {}
    for name, c in items:
        if not isinstance(c, Criterion):
            raise LabelwiseError(
                f"stopping takes labelwise.stopping criteria; got {type(c).__name__}."
            )
        key, i = name, 2
        while key in out:
            key, i = f"{name}_{i}", i + 1
        out[key] = c
    return out


def _resolve_seed(random_state: Any) -> int:
    """One integer seed, resolved once: an int as it is, else one draw from the generator."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(SEED_SPACE))
    return int(check_random_state(random_state).randint(SEED_SPACE))


def _stream(seed: int, stream: int) -> np.random.RandomState:
    """A generator of the simulator's own (never the session's) randomness."""
    ss = np.random.SeedSequence(seed % SEED_SPACE, spawn_key=(stream,))
    return np.random.RandomState(ss.generate_state(4))


def _norm_entropy(model: Any, X: Any, idx: np.ndarray) -> np.ndarray:
    """``H / ln n_classes`` of the model's probabilities on rows ``idx``, shape ``(len(idx),)``."""
    p = np.clip(np.asarray(predict_proba(model, _rows(X, idx)), dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2))


def iter_simulate(
    data: Any,
    strategy: str | Strategy,
    *,
    model: Any = None,
    initial_size: int = 20,
    batch_size: int = 20,
    n_rounds: int | None = None,
    label_budget: int | None = None,
    random_state=None,
    oracle: Oracle | None = None,
    noise: NoiseModel | None = None,
    consensus: Consensus | None = None,
    latency_rounds: int = 0,
    stopping: Any = None,
    strategy_params: Mapping[str, Any] | None = None,
    metric: str | None = None,
    committee_size: int = 5,
    cold_start: str | Strategy = "random",
) -> Iterator[RoundPoint]:
    """Replay active learning on labelled data, one :class:`RoundPoint` per round.

    Drives a :class:`labelwise.loop.Session`: round 0 queries ``initial_size`` items (the
    ``cold_start`` strategy, as no model is fitted yet), each later round ``batch_size`` items
    (``strategy``, with the model of ``latency_rounds`` refits ago); the oracle labels them, the
    session refits on every label so far and the model is scored on the test set.

    Parameters
    ----------
    data : str, Dataset, SimulationData or tuple (X_train, y_train, X_test, y_test)
        A name from :func:`labelwise.datasets.dataset_names` or the arrays themselves.
    strategy : str or Strategy
        A registered strategy name (``labelwise strategies``) or an instance.
    model : classifier, optional
        Cloned every round; default :func:`default_model`.
    initial_size : int, default=20
        Labels of round 0, chosen by ``cold_start``.
    batch_size : int, default=20
    n_rounds, label_budget : int, optional
        Rounds after the initial one, or the total number of labels (one or neither;
        default 10 rounds). Capped where the pool runs out (the last batch may be smaller).
    random_state : int, RandomState, Generator or None
        Resolved once into an integer seed, which is the session's seed (an int is passed as
        it is); the oracle and the pool sample draw from separate ``SeedSequence`` streams of
        it. The same seed gives the same curve.
    oracle : Oracle, optional
        Built from ``noise`` and ``consensus`` when not given.
    noise : NoiseModel, optional
    consensus : Consensus, optional
    latency_rounds : int, default=0
        Batches are selected by the model of ``latency_rounds`` refits before (labels arrive
        late, so the model in production is stale): the session's ``model_lag``.
    stopping : Criterion, sequence or mapping of name to Criterion, optional
        Checked after every round with the test quality history as the validation metric and
        the test set as the session's stop set; the ones that say stop are recorded in
        :attr:`RoundPoint.stops`. The simulation goes on to the end regardless.
    strategy_params : mapping, optional
        Passed to :func:`~labelwise.strategies.get_strategy`.
    metric : {"accuracy", "macro_f1", "pr_auc"}, optional
        The headline quality; default the data set's own.
    committee_size : int, default=5
        Members of the bagging committee the session builds for committee strategies.
    cold_start : str or Strategy, default="random"
        The session's strategy while no model can be fitted (round 0, and later rounds while
        fewer than two classes are labelled).

    Yields
    ------
    RoundPoint

    Raises
    ------
    UnknownDatasetError, UnknownStrategyError
        Unknown names (the messages list the valid ones).
    BatchSizeError
        An initial set or batch larger than the pool.
    """
    from labelwise.loop import Session

    sim = resolve_data(data, metric=metric)
    strat = get_strategy(strategy, **dict(strategy_params or {}))
    model = check_model(default_model() if model is None else model)
    initial_size = _check_positive_int("initial_size", initial_size)
    batch_size = _check_positive_int("batch_size", batch_size)
    latency_rounds = _check_positive_int("latency_rounds", latency_rounds, 0)
    n_pool = sim.n_pool
    if n_pool == 0:
        raise EmptyPoolError("the training pool is empty; give a data set with training rows.")
    rounds = _plan_rounds(n_pool, initial_size, batch_size, n_rounds, label_budget)
    criteria = _resolve_stopping(stopping)
    seed = _resolve_seed(random_state)
    if oracle is None:
        oracle = Oracle(
            sim.y_train,
            noise=noise,
            consensus=consensus,
            random_state=_stream(seed, _ORACLE_STREAM),
        )
    elif noise is not None or consensus is not None:
        raise LabelwiseError("give an oracle, or noise/consensus to build one; not both.")
    if oracle.n_items != n_pool:
        raise LabelwiseError(f"the oracle knows {oracle.n_items} items but the pool has {n_pool}.")
    session = Session(
        model,
        sim.X_train,
        strategy=strat,
        cold_start=cold_start,
        task_type=TaskType.BINARY if sim.classes.shape[0] == 2 else TaskType.MULTICLASS,
        metadata=sim.metadata or None,
        stop_set=sim.X_test if criteria else None,
        model_lag=latency_rounds,
        committee_size=committee_size,
        random_state=seed,
    )
    # fixed sample of the pool for the pool's mean informativeness
    pool_sample = np.sort(
        _stream(seed, _SAMPLE_STREAM).permutation(n_pool)[: min(POOL_ENTROPY_SAMPLE, n_pool)]
    )
    fitted_at: list[tuple[Any, int]] = []  # (model, round it was fitted after), for staleness
    quality_history: list[float] = []
    # the last fitted model's predictions on the pool sample, for the agreement signal
    last_pred: tuple[Any, np.ndarray] | None = None

    for r in range(rounds + 1):
        selecting = session.selecting_model_  # what query() will use; None while cold
        mask = session.labeled_mask
        t0 = time.perf_counter()
        q = session.query(initial_size if r == 0 else min(batch_size, session.n_unlabeled))
        select_seconds = time.perf_counter() - t0
        picks = np.asarray(q.idx, dtype=np.int64)
        hardness, info, pool_info, stale = None, float("nan"), float("nan"), 0
        picks_pred, rest_pred = None, None
        if selecting is not None:  # how informative the picks are, under the selecting model
            hardness = _norm_entropy(selecting, sim.X_train, picks)
            rest = pool_sample[~mask[pool_sample]]
            pool_h = _norm_entropy(selecting, sim.X_train, rest) if rest.size else [np.nan]
            info, pool_info = float(hardness.mean()), float(np.mean(pool_h))
            stale = r - 1 - next(at for m, at in fitted_at if m is selecting)
            picks_pred = np.asarray(selecting.predict(_rows(sim.X_train, picks)))
            rest_pred = selecting.predict(_rows(sim.X_train, rest)) if rest.size else rest

        answer = oracle.label(picks, hardness, consensus=r > 0)
        t0 = time.perf_counter()
        if session.n_labeled:  # Dawid–Skene may have revised earlier consensus labels
            before = session.labeled_idx
            now, held = oracle.current(before), session.y_labeled
            changed = now != held
            if changed.any():
                session.update_labels(before[changed], now[changed], refit=False)
        session.teach(q, answer.labels)
        fit_seconds = time.perf_counter() - t0
        if session.is_fitted and (not fitted_at or fitted_at[-1][0] is not session.fitted_model_):
            fitted_at = [*fitted_at[-latency_rounds - 1 :], (session.fitted_model_, r)]

        agree = float("nan")
        if session.is_fitted:
            current = session.fitted_model_
            if last_pred is None or last_pred[0] is not current:
                pred = np.asarray(current.predict(_rows(sim.X_train, pool_sample)))
                if last_pred is not None:
                    agree = prediction_agreement(last_pred[1], pred)
                last_pred = (current, pred)
        acc_batch = tvd = float("nan")
        if picks_pred is not None:  # the labels annotators gave, as the service would see them
            acc_batch = batch_accuracy(picks_pred, np.asarray(answer.labels))
            tvd = class_balance_tvd(np.asarray(answer.labels), rest_pred, sim.classes)

        metrics = heldout_metrics(session.model_or_prior(), sim)
        quality = metrics.get(sim.metric, float("nan"))
        quality_history.append(quality)
        stops: tuple[tuple[str, str], ...] = ()
        if criteria:
            state = session.stopping_state({sim.metric: list(quality_history)})
            decisions = ((name, c.check(state)) for name, c in criteria.items())
            stops = tuple((name, d.reason) for name, d in decisions if d.stop)
        lab = session.labeled_idx
        yield RoundPoint(
            round=r,
            n_labeled=int(lab.shape[0]),
            quality=float(quality),
            metrics=metrics,
            fit_seconds=fit_seconds,
            select_seconds=select_seconds,
            selected=picks,
            n_noisy=oracle.n_wrong(picks),
            n_noisy_total=oracle.n_wrong(lab),
            n_annotations=answer.n_annotations,
            n_consensus_items=answer.n_consensus_items,
            informativeness=info,
            pool_informativeness=pool_info,
            stale_rounds=stale,
            stops=stops,
            agreement=agree,
            batch_accuracy=acc_batch,
            batch_class_tvd=tvd,
            arm=q.arm,
        )


def simulate(data: Any, strategy: str | Strategy, **kwargs: Any) -> SimulationResult:
    """Run :func:`iter_simulate` to the end; same parameters.

    Returns
    -------
    SimulationResult
        The points and the configuration (strategy, sizes, seed, noise, consensus, latency).
    """
    points = list(iter_simulate(data, strategy, **kwargs))
    kept = (NoiseModel, Consensus, int, float, str, dict)
    config = {
        "data": data if isinstance(data, str) else getattr(data, "name", "arrays"),
        "strategy": strategy if isinstance(strategy, str) else strategy.name,
        **{
            k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v)
            for k, v in kwargs.items()
            if k in _CONFIG_KEYS and (v is None or isinstance(v, kept))
        },
    }
    return SimulationResult(points=points, config=config)
