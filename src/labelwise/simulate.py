"""Simulated active learning on a labelled data set, with the realities of production labeling.

:func:`iter_simulate` replays the query/teach loop on a data set whose labels are known: each
round it fits a fresh model (``sklearn.base.clone``) on the labels collected so far, scores it on
the held-out test set, asks the strategy for the next batch and gets that batch labeled by an
:class:`Oracle`. It yields one frozen :class:`RoundPoint` per round, so progress bars, reports and
persistence consume it while it runs; :func:`simulate` collects the points into a
:class:`SimulationResult`.

The oracle can be as imperfect as real annotators:

- **Noise** (:class:`NoiseModel`): each annotation is flipped to a uniformly random other class
  with a probability that depends on the annotator and on the true class.
- **Consensus** (:class:`Consensus`): the hardest items of each batch (by the selecting model's
  uncertainty) get ``k`` annotations from distinct annotators, aggregated by majority vote or by
  Dawid–Skene EM (:func:`dawid_skene`); the extra annotations are counted as cost.
- **Latency** (``latency_rounds``): labels take time, so each batch is selected by a model that
  is ``latency_rounds`` rounds stale.

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
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.utils import check_random_state

from labelwise.errors import BatchSizeError, EmptyPoolError, LabelwiseError
from labelwise.models import check_model, predict_proba
from labelwise.strategies import Candidates, Strategy, get_strategy
from labelwise.tasks import TaskType

__all__ = [
    "CONSENSUS_METHODS",
    "Consensus",
    "NoiseModel",
    "Oracle",
    "RoundPoint",
    "SimulationData",
    "SimulationResult",
    "dawid_skene",
    "default_model",
    "iter_simulate",
    "majority_vote",
    "resolve_data",
    "simulate",
]

CONSENSUS_METHODS = ("majority", "dawid_skene")
RECALL_PRECISION = 0.9
POOL_ENTROPY_SAMPLE = 1000
DEFAULT_ROUNDS = 10


def default_model() -> LogisticRegression:
    """The model simulations use unless told otherwise: ``LogisticRegression(max_iter=1000)``."""
    return LogisticRegression(max_iter=1000)


# ---------------------------------------------------------------------------------------------
# Aggregation of several annotations per item
# ---------------------------------------------------------------------------------------------


def majority_vote(votes: np.ndarray, n_classes: int, random_state=None) -> np.ndarray:
    """Most frequent class per item; ties broken at random.

    Parameters
    ----------
    votes : ndarray of shape (n_items, n_annotators), int
        Class index each annotator gave each item; ``-1`` where an annotator gave none.
    n_classes : int
    random_state : int, RandomState or None
        Source of the tie-break keys.

    Returns
    -------
    labels : ndarray of shape (n_items,), int64
        ``[[0, 0, 1], [2, 1, 1]]`` gives ``[0, 1]``.
    """
    counts = _vote_counts(votes, n_classes)
    rng = check_random_state(random_state)
    keys = rng.random_sample(counts.shape)  # in [0, 1): breaks ties only
    return np.argmax(counts + keys * 0.5, axis=1).astype(np.int64)


def _vote_counts(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_items, n_classes)`` number of annotators that gave each class."""
    counts = np.zeros((votes.shape[0], n_classes), dtype=np.float64)
    for a in range(votes.shape[1]):
        given = votes[:, a] >= 0
        np.add.at(counts, (np.flatnonzero(given), votes[given, a]), 1.0)
    return counts


def dawid_skene(
    votes: np.ndarray,
    n_classes: int,
    *,
    diagonal_prior: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dawid–Skene EM: true-class posteriors from several noisy annotators.

    Each annotator ``a`` has a confusion matrix ``pi[a, j, l] = P(says l | truth j)``; classes
    have priors ``rho[j]``. EM starts from the soft vote shares (majority vote), then alternates
    the M-step ``pi[a, j, l] ∝ sum_i T[i, j] [votes[i, a] == l] + 0.01 + diagonal_prior [j == l]``
    and
    ``rho = mean_i T[i]`` with the E-step
    ``log T[i, j] = log rho[j] + sum_a log pi[a, j, votes[i, a]] + const``
    (Dawid & Skene 1979, Applied Statistics 28(1)).

    A reliable annotator outvoted by poor ones is found out and followed, which majority vote
    cannot do. The ``diagonal_prior`` pseudo-counts (a Dirichlet prior that annotators are
    better than chance) keep small batches away from the degenerate optima of plain EM.

    Parameters
    ----------
    votes : ndarray of shape (n_items, n_annotators), int
        Class index each annotator gave each item; ``-1`` where none.
    n_classes : int
    diagonal_prior : float, default=1.0
        Pseudo-count added to every annotator's correct answers; 0 for plain maximum likelihood.
    max_iter : int
    tol : float
        Stop when no posterior moves more than ``tol``.

    Returns
    -------
    posterior : ndarray of shape (n_items, n_classes)
    confusion : ndarray of shape (n_annotators, n_classes, n_classes)
    priors : ndarray of shape (n_classes,)
    """
    votes = np.asarray(votes, dtype=np.int64)
    n_items, n_annotators = votes.shape
    counts = _vote_counts(votes, n_classes)
    T = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    # one-hot of each annotator's answers, (n_annotators, n_items, n_classes)
    onehot = np.zeros((n_annotators, n_items, n_classes), dtype=np.float64)
    for a in range(n_annotators):
        given = np.flatnonzero(votes[:, a] >= 0)
        onehot[a, given, votes[given, a]] = 1.0
    confusion = np.empty((n_annotators, n_classes, n_classes))
    priors = np.full(n_classes, 1.0 / n_classes)
    diag = float(diagonal_prior) * np.eye(n_classes)[None, :, :]
    for _ in range(max_iter):
        # M-step
        priors = np.clip(T.mean(axis=0), 1e-6, None)
        priors /= priors.sum()
        confusion = np.einsum("ij,ail->ajl", T, onehot) + 0.01 + diag
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step
        log_t = np.log(priors)[None, :] + np.einsum("ail,ajl->ij", onehot, np.log(confusion))
        log_t -= log_t.max(axis=1, keepdims=True)
        new_t = np.exp(log_t)
        new_t /= new_t.sum(axis=1, keepdims=True)
        done = np.abs(new_t - T).max() < tol
        T = new_t
        if done:
            break
    return T, confusion, priors


# ---------------------------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------------------------


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise LabelwiseError(f"{name} must be a probability in [0, 1]; got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class NoiseModel:
    """How often annotators give a wrong label.

    An annotation is flipped to a uniformly random *other* class with probability
    ``1 - (1 - r_a) * (1 - r_c)``: ``r_a`` is the annotator's rate (``annotator_flip_rates[a]``,
    else ``flip_rate``) and ``r_c`` the extra rate of the item's true class
    (``class_flip_rates.get(c, 0)``); the two are independent error sources.

    Parameters
    ----------
    flip_rate : float, default=0.0
        Rate of every annotator when ``annotator_flip_rates`` is not given.
    annotator_flip_rates : sequence of float, optional
        One rate per annotator; the oracle then has exactly these annotators.
    class_flip_rates : mapping of class label to float, optional
        Extra rate for items of a true class (e.g. ``{"fraud": 0.2}``: fraud is easy to miss).
    """

    flip_rate: float = 0.0
    annotator_flip_rates: tuple[float, ...] | None = None
    class_flip_rates: Mapping[Any, float] | None = None

    def __post_init__(self) -> None:
        _check_rate("flip_rate", self.flip_rate)
        if self.annotator_flip_rates is not None:
            rates = tuple(
                _check_rate("annotator_flip_rates[]", r) for r in self.annotator_flip_rates
            )
            if not rates:
                raise LabelwiseError("annotator_flip_rates needs at least one annotator.")
            object.__setattr__(self, "annotator_flip_rates", rates)
        if self.class_flip_rates is not None:
            for c, r in self.class_flip_rates.items():
                _check_rate(f"class_flip_rates[{c!r}]", r)

    def rates(self, n_annotators: int, classes: np.ndarray) -> np.ndarray:
        """Flip probabilities ``(n_annotators, n_classes)``."""
        if self.annotator_flip_rates is not None:
            r_a = np.asarray(self.annotator_flip_rates, dtype=np.float64)
        else:
            r_a = np.full(n_annotators, self.flip_rate)
        r_c = np.zeros(classes.shape[0])
        for c, r in (self.class_flip_rates or {}).items():
            hit = np.flatnonzero(classes == c)
            if hit.size == 0:
                valid = ", ".join(map(str, classes))
                raise LabelwiseError(
                    f"class_flip_rates names class {c!r}, which is not in the data; "
                    f"classes: {valid}."
                )
            r_c[hit] = r
        return 1.0 - np.outer(1.0 - r_a, 1.0 - r_c)


@dataclass(frozen=True)
class Consensus:
    """Several annotators for the hardest items of each batch.

    Parameters
    ----------
    k : int, default=3
        Annotations per consensus item (from ``k`` distinct annotators).
    fraction : float, default=0.2
        Share of each batch (the most uncertain under the selecting model) labeled ``k`` times.
    method : {"majority", "dawid_skene"}
        How the ``k`` annotations become one label. Dawid–Skene is re-fitted after every batch
        over all consensus items so far, and may revise earlier consensus labels.
    """

    k: int = 3
    fraction: float = 0.2
    method: str = "majority"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or self.k < 2:
            raise LabelwiseError(f"consensus k must be an integer >= 2; got {self.k!r}.")
        _check_rate("consensus fraction", self.fraction)
        if self.method not in CONSENSUS_METHODS:
            raise LabelwiseError(
                f"unknown consensus method {self.method!r}; use one of: "
                f"{', '.join(CONSENSUS_METHODS)}."
            )


@dataclass(frozen=True)
class BatchLabels:
    """What the oracle returns for one batch.

    Attributes
    ----------
    labels : ndarray of shape (n,)
        One (aggregated) label per item, in the order asked.
    n_annotations : int
        Annotations paid for (``n`` plus the extra consensus annotations).
    n_consensus_items : int
        Items that got ``k`` annotations.
    """

    labels: np.ndarray
    n_annotations: int
    n_consensus_items: int


class Oracle:
    """Answers label requests from the true labels, with annotator noise and consensus.

    Parameters
    ----------
    y_true : array-like of shape (n_pool,)
        True labels of the pool.
    noise : NoiseModel, optional
        ``None``: every annotation is correct.
    annotators : int, optional
        Number of annotators when ``noise`` has no ``annotator_flip_rates`` (default: the
        consensus ``k``, or 1). Single annotations go to a random annotator.
    consensus : Consensus, optional
        ``None``: one annotation per item.
    random_state : int, RandomState or None
    """

    def __init__(
        self,
        y_true: Any,
        *,
        noise: NoiseModel | None = None,
        annotators: int | None = None,
        consensus: Consensus | None = None,
        random_state=None,
    ) -> None:
        y_true = np.asarray(y_true)
        if y_true.ndim != 1 or y_true.shape[0] == 0:
            raise LabelwiseError(
                f"y_true must be a non-empty 1-D array of labels; got shape {y_true.shape}."
            )
        self.noise = noise
        self.consensus = consensus
        self.classes_, self._y = np.unique(y_true, return_inverse=True)
        rates_given = noise is not None and noise.annotator_flip_rates is not None
        if rates_given:
            n_ann = len(noise.annotator_flip_rates)
            if annotators is not None and annotators != n_ann:
                raise LabelwiseError(
                    f"annotators={annotators} but noise has {n_ann} annotator_flip_rates; "
                    "give one or make them agree."
                )
        elif annotators is not None:
            if isinstance(annotators, bool) or not isinstance(annotators, numbers.Integral):
                raise LabelwiseError(f"annotators must be a positive integer; got {annotators!r}.")
            n_ann = int(annotators)
        else:
            n_ann = consensus.k if consensus is not None else 1
        if n_ann < 1:
            raise LabelwiseError(f"annotators must be a positive integer; got {n_ann}.")
        if consensus is not None and consensus.k > n_ann:
            raise LabelwiseError(
                f"consensus needs {consensus.k} distinct annotators per item but only {n_ann} "
                "exist; lower Consensus(k=...) or add annotators."
            )
        self.annotators = n_ann
        self.random_state = random_state
        self._rng = check_random_state(random_state)
        n_classes = self.classes_.shape[0]
        self._rates = (
            noise.rates(n_ann, self.classes_) if noise is not None else np.zeros((n_ann, n_classes))
        )
        self._current = np.full(self._y.shape[0], -1, dtype=np.int64)
        self._votes: dict[int, list[tuple[int, int]]] = {}
        self.n_annotations = 0

    def _annotate(self, items: np.ndarray, annotators: np.ndarray) -> np.ndarray:
        """One annotation (class index) per (item, annotator) pair."""
        truth = self._y[items]
        n_classes = self.classes_.shape[0]
        flip = self._rng.random_sample(items.shape[0]) < self._rates[annotators, truth]
        if n_classes < 2:
            return truth.copy()
        other = self._rng.randint(n_classes - 1, size=items.shape[0])
        other = other + (other >= truth)  # uniform over the other classes
        return np.where(flip, other, truth).astype(np.int64)

    def label(
        self, idx: Any, hardness: np.ndarray | None = None, *, consensus: bool = True
    ) -> BatchLabels:
        """Label pool items ``idx``; the hardest get consensus.

        Parameters
        ----------
        idx : array-like of shape (n,)
            Pool positions.
        hardness : ndarray of shape (n,), optional
            Higher = harder (e.g. the selecting model's entropy); the top
            ``ceil(fraction * n)`` get ``k`` annotations. ``None``: the first ones (the batch is
            best first).
        consensus : bool, default=True
            False: one annotation per item whatever the oracle's consensus (the random
            initial set, where no model says what is hard).

        Returns
        -------
        BatchLabels
        """
        idx = np.asarray(idx, dtype=np.int64)
        n = idx.shape[0]
        n_cons = 0
        if self.consensus is not None and consensus and n:
            n_cons = min(n, math.ceil(self.consensus.fraction * n - 1e-9))
        if hardness is None:
            order = np.arange(n)
        else:
            order = np.argsort(-np.asarray(hardness, dtype=np.float64), kind="stable")
        cons, single = idx[order[:n_cons]], idx[order[n_cons:]]
        if single.size:
            who = self._rng.randint(self.annotators, size=single.shape[0])
            self._current[single] = self._annotate(single, who)
        if cons.size:
            k = self.consensus.k
            for item in cons:
                who = self._rng.choice(self.annotators, size=k, replace=False)
                said = self._annotate(np.full(k, item), who)
                self._votes[int(item)] = list(zip(who.tolist(), said.tolist(), strict=True))
            self._aggregate(cons)
        paid = single.shape[0] + cons.shape[0] * (self.consensus.k if cons.size else 1)
        self.n_annotations += paid
        return BatchLabels(self.classes_[self._current[idx]], int(paid), int(cons.shape[0]))

    def _aggregate(self, new_items: np.ndarray) -> None:
        n_classes = self.classes_.shape[0]
        if self.consensus.method == "majority":
            items = new_items
        else:  # Dawid–Skene over every consensus item so far (it may revise earlier ones)
            items = np.fromiter(self._votes, dtype=np.int64, count=len(self._votes))
        votes = np.full((items.shape[0], self.annotators), -1, dtype=np.int64)
        for row, item in enumerate(items):
            for a, said in self._votes[int(item)]:
                votes[row, a] = said
        if self.consensus.method == "majority":
            self._current[items] = majority_vote(votes, n_classes, self._rng)
        else:
            posterior, _, _ = dawid_skene(votes, n_classes)
            self._current[items] = posterior.argmax(axis=1)

    def current(self, idx: Any) -> np.ndarray:
        """The labels items ``idx`` have now (after any consensus revision)."""
        idx = np.asarray(idx, dtype=np.int64)
        if np.any(self._current[idx] < 0):
            raise LabelwiseError("some items were never labeled; call label(idx) first.")
        return self.classes_[self._current[idx]]

    def n_wrong(self, idx: Any) -> int:
        """How many of items ``idx`` currently carry a wrong label."""
        idx = np.asarray(idx, dtype=np.int64)
        return int(np.sum(self._current[idx] != self._y[idx]))


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


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


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X[idx] if sp.issparse(X) else np.asarray(X[idx])


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


def _norm_entropy(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-12, 1.0)
    h = -(p * np.log(p)).sum(axis=1)
    return h / np.log(max(proba.shape[1], 2))


@dataclass
class _Snapshot:
    """A fitted model (and committee) kept so later rounds can select with it (latency)."""

    model: Any
    committee: Any
    labeled: np.ndarray
    y_labeled: np.ndarray
    round: int


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
) -> Iterator[RoundPoint]:
    """Replay active learning on labelled data, one :class:`RoundPoint` per round.

    Round 0 labels a random initial set; each later round selects ``batch_size`` items with
    ``strategy`` (using the model of ``latency_rounds`` rounds ago), gets them labeled by the
    oracle, fits a fresh clone of ``model`` on every label so far and scores it on the test set.

    Parameters
    ----------
    data : str, Dataset, SimulationData or tuple (X_train, y_train, X_test, y_test)
        A name from :func:`labelwise.datasets.dataset_names` or the arrays themselves.
    strategy : str or Strategy
        A registered strategy name (``labelwise strategies``) or an instance.
    model : classifier, optional
        Cloned every round; default :func:`default_model`.
    initial_size : int, default=20
        Random initial labels (round 0).
    batch_size : int, default=20
    n_rounds, label_budget : int, optional
        Rounds after the initial one, or the total number of labels (one or neither;
        default 10 rounds). Capped where the pool runs out (the last batch may be smaller).
    random_state : int, RandomState or None
        Resolved once; the same seed gives the same curve.
    oracle : Oracle, optional
        Built from ``noise`` and ``consensus`` when not given.
    noise : NoiseModel, optional
    consensus : Consensus, optional
    latency_rounds : int, default=0
        Batches are selected by the model of ``latency_rounds`` rounds before (labels arrive
        late, so the model in production is stale).
    stopping : Criterion, sequence or mapping of name to Criterion, optional
        Checked after every round with the test quality history as the validation metric and
        the model's test-set predictions as the stop set; the ones that say stop are recorded
        in :attr:`RoundPoint.stops`. The simulation goes on to the end regardless.
    strategy_params : mapping, optional
        Passed to :func:`~labelwise.strategies.get_strategy`.
    metric : {"accuracy", "macro_f1", "pr_auc"}, optional
        The headline quality; default the data set's own.
    committee_size : int, default=5
        Members of the bagging committee built for committee strategies.

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
    rng = check_random_state(random_state)
    if oracle is None:
        oracle = Oracle(
            sim.y_train,
            noise=noise,
            consensus=consensus,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
    elif noise is not None or consensus is not None:
        raise LabelwiseError("give an oracle, or noise/consensus to build one; not both.")
    if oracle._y.shape[0] != n_pool:
        raise LabelwiseError(
            f"the oracle knows {oracle._y.shape[0]} items but the pool has {n_pool}."
        )
    task = TaskType.BINARY if sim.classes.shape[0] == 2 else TaskType.MULTICLASS
    random_strategy = get_strategy("random")
    # fixed sample of the pool for the pool's mean informativeness
    pool_sample = np.sort(rng.permutation(n_pool)[: min(POOL_ENTROPY_SAMPLE, n_pool)])

    labeled_mask = np.zeros(n_pool, dtype=bool)
    labeled: list[np.ndarray] = []
    history: list[_Snapshot] = []
    quality_history: list[float] = []
    stop_preds: list[np.ndarray] = []

    for r in range(rounds + 1):
        hardness = None
        info = pool_info = float("nan")
        stale = 0
        t0 = time.perf_counter()
        if r == 0:
            picks = rng.permutation(n_pool)[:initial_size].astype(np.int64)
        else:
            snap = history[max(0, len(history) - 1 - latency_rounds)]
            stale = r - 1 - snap.round
            unl = np.flatnonzero(~labeled_mask)
            k = min(batch_size, unl.shape[0])
            picks, hardness, info, pool_info = _select_batch(
                strat, random_strategy, snap, sim, unl, k, task, rng, pool_sample, labeled_mask
            )
        select_seconds = time.perf_counter() - t0
        answer = oracle.label(picks, hardness, consensus=r > 0)
        labeled_mask[picks] = True
        labeled.append(picks)
        lab = np.concatenate(labeled)
        y_lab = oracle.current(lab)

        t0 = time.perf_counter()
        fitted, committee = _fit_round(model, sim.X_train, lab, y_lab, strat, committee_size, rng)
        fit_seconds = time.perf_counter() - t0
        history.append(_Snapshot(fitted, committee, lab, y_lab, r))
        del history[: max(0, len(history) - latency_rounds - 1)]

        metrics = heldout_metrics(fitted, sim)
        quality = metrics.get(sim.metric, float("nan"))
        quality_history.append(quality)
        stops: tuple[tuple[str, str], ...] = ()
        if criteria:
            stops = _check_stopping(
                criteria, fitted, sim, lab.shape[0], r, quality_history, stop_preds
            )
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
        )


def _fit_round(model, X, lab, y_lab, strat, committee_size, rng):
    """A fresh clone fitted on the labels; a prior-only dummy while only one class is known."""
    if np.unique(y_lab).shape[0] < 2:
        return DummyClassifier(strategy="prior").fit(_rows(X, lab), y_lab), None
    fitted = clone(model).fit(_rows(X, lab), y_lab)
    committee = None
    if "committee" in strat.needs:
        from labelwise.strategies.committee import Committee

        committee = Committee(
            model, n_members=committee_size, random_state=rng.randint(np.iinfo(np.int32).max)
        ).fit(_rows(X, lab), y_lab)
    return fitted, committee


def _select_batch(strat, random_strategy, snap, sim, unl, k, task, rng, pool_sample, mask):
    """Pool positions of the next batch, their hardness and the informativeness stats."""
    has_model = not isinstance(snap.model, DummyClassifier)
    use = strat
    if not has_model and not strat.cold_start:
        use = random_strategy  # no usable model yet: fall back to a cold start
    cand = Candidates(
        X=sim.X_train,
        model=snap.model if has_model else None,
        row_idx=unl,
        X_labeled=_rows(sim.X_train, snap.labeled),
        y_labeled=snap.y_labeled,
        committee=None if snap.committee is None else snap.committee.members_,
        metadata=sim.metadata or None,
        task_type=task,
    )
    query = use.select(cand, k, random_state=rng)
    picks = cand.pool_positions(query.idx)
    if not has_model:
        return picks, None, float("nan"), float("nan")
    h = _norm_entropy(np.asarray(predict_proba(snap.model, _rows(sim.X_train, picks))))
    rest = pool_sample[~mask[pool_sample]]
    pool_h = (
        _norm_entropy(np.asarray(predict_proba(snap.model, _rows(sim.X_train, rest))))
        if rest.size
        else np.array([np.nan])
    )
    return picks, h, float(h.mean()), float(pool_h.mean())


def _check_stopping(criteria, fitted, sim, n_labeled, r, quality_history, stop_preds):
    from labelwise.stopping import StoppingState

    stop_preds.append(np.asarray(fitted.predict(sim.X_test)))
    state = StoppingState(
        n_labeled=n_labeled,
        round=r,
        metrics={sim.metric: list(quality_history)},
        stop_set_predictions=list(stop_preds),
    )
    fired = []
    for name, c in criteria.items():
        decision = c.check(state)
        if decision.stop:
            fired.append((name, decision.reason))
    return tuple(fired)


def simulate(data: Any, strategy: str | Strategy, **kwargs: Any) -> SimulationResult:
    """Run :func:`iter_simulate` to the end; same parameters.

    Returns
    -------
    SimulationResult
        The points and the configuration (strategy, sizes, seed, noise, consensus, latency).
    """
    points = list(iter_simulate(data, strategy, **kwargs))
    config = {
        "data": data if isinstance(data, str) else getattr(data, "name", "arrays"),
        "strategy": strategy if isinstance(strategy, str) else strategy.name,
        **{
            k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v)
            for k, v in kwargs.items()
            if k
            in (
                "initial_size",
                "batch_size",
                "n_rounds",
                "label_budget",
                "random_state",
                "noise",
                "consensus",
                "latency_rounds",
                "strategy_params",
                "metric",
            )
            and (v is None or isinstance(v, (int, float, str, dict, NoiseModel, Consensus)))
        },
    }
    return SimulationResult(points=points, config=config)
