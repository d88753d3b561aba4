"""Simulated annotators and the aggregation of several annotations per item.

Two halves, both in the compute band:

- **Aggregation** (pure numpy, reusable wherever several people label the same item, e.g. the
  service's consensus tasks): :func:`vote_counts`, :func:`majority_vote` and
  :func:`dawid_skene`. Votes are an ``(n_items, n_annotators)`` matrix of class *indices*,
  ``-1`` where an annotator gave no answer; map labels to indices (``np.unique(...,
  return_inverse=True)``) before and back after.
- **Simulated annotators** (:class:`Oracle`): answer label requests from the true labels of a
  data set, as imperfectly as real annotators do (:class:`NoiseModel`), with several
  annotators for the hardest items (:class:`Consensus`). :func:`labelwise.simulate.iter_simulate`
  drives a :class:`~labelwise.loop.Session` with one.

>>> votes = np.array([[0, 0, 1], [2, 1, 1], [1, -1, -1]])
>>> majority_vote(votes, 3, random_state=0).tolist()
[0, 1, 1]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from labelwise.errors import LabelwiseError

__all__ = [
    "CONSENSUS_METHODS",
    "BatchLabels",
    "Consensus",
    "NoiseModel",
    "Oracle",
    "dawid_skene",
    "majority_vote",
    "vote_counts",
]

CONSENSUS_METHODS = ("majority", "dawid_skene")
# floor of a confusion-matrix cell before normalising (crowd-kit's _EPS): only matters with
# smoothing=0, where an answer never given would otherwise have log-probability -inf
_MIN_CONFUSION = 1e-10


# ---------------------------------------------------------------------------------------------
# Aggregation of several annotations per item
# ---------------------------------------------------------------------------------------------


def _check_votes(votes: Any, n_classes: int | None) -> tuple[np.ndarray, int]:
    """Validate a vote matrix once, at the public boundary; infer ``n_classes`` if not given."""
    votes = np.asarray(votes)
    if votes.ndim != 2 or (votes.size and not np.issubdtype(votes.dtype, np.integer)):
        raise LabelwiseError(
            f"votes must be a 2-D integer array (n_items, n_annotators) of class indices, -1 "
            f"where none; got dtype {votes.dtype} and shape {votes.shape}."
        )
    votes = votes.astype(np.int64, copy=False)
    top = int(votes.max()) if votes.size else -1
    if n_classes is None:
        n_classes = max(top + 1, 1)
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise LabelwiseError(f"n_classes must be a positive integer; got {n_classes!r}.")
    if votes.size and (votes.min() < -1 or top >= n_classes):
        raise LabelwiseError(
            f"votes must be class indices in [0, {n_classes}) or -1 for no answer; got "
            f"{int(votes.min())}..{top}. Map labels to indices with np.unique(..., "
            "return_inverse=True)."
        )
    return votes, int(n_classes)


def vote_counts(votes: Any, n_classes: int | None = None) -> np.ndarray:
    """How many annotators gave each class to each item.

    Parameters
    ----------
    votes : array-like of int of shape (n_items, n_annotators)
        Class index each annotator gave each item; ``-1`` where an annotator gave none.
    n_classes : int, optional
        Default ``votes.max() + 1``.

    Returns
    -------
    counts : ndarray of shape (n_items, n_classes), float64
        ``[[0, 0, 1]]`` with 3 classes gives ``[[2, 1, 0]]``.
    """
    votes, n_classes = _check_votes(votes, n_classes)
    return _vote_counts(votes, n_classes)


def _vote_counts(votes: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.zeros((votes.shape[0], n_classes), dtype=np.float64)
    for a in range(votes.shape[1]):
        given = votes[:, a] >= 0
        np.add.at(counts, (np.flatnonzero(given), votes[given, a]), 1.0)
    return counts


def majority_vote(votes: Any, n_classes: int | None = None, random_state=None) -> np.ndarray:
    """Most frequent class per item; ties broken at random.

    Parameters
    ----------
    votes : array-like of int of shape (n_items, n_annotators)
        Class index each annotator gave each item; ``-1`` where an annotator gave none.
    n_classes : int, optional
        Default ``votes.max() + 1``.
    random_state : int, RandomState or None
        Source of the tie-break keys (one uniform draw per item and class).

    Returns
    -------
    labels : ndarray of shape (n_items,), int64
        Class indices; ``-1`` for an item nobody labelled. ``[[0, 0, 1], [2, 1, 1]]`` gives
        ``[0, 1]``.
    """
    votes, n_classes = _check_votes(votes, n_classes)
    counts = _vote_counts(votes, n_classes)
    rng = check_random_state(random_state)
    keys = rng.random_sample(counts.shape)  # in [0, 1): adds less than one vote, breaks ties only
    out = np.argmax(counts + keys * 0.5, axis=1).astype(np.int64)
    out[counts.sum(axis=1) == 0] = -1
    return out


def dawid_skene(
    votes: Any,
    n_classes: int | None = None,
    *,
    diagonal_prior: float = 1.0,
    smoothing: float = 0.01,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dawid–Skene EM: true-class posteriors from several noisy annotators.

    Each annotator ``a`` has a confusion matrix ``pi[a, j, l] = P(says l | truth j)``; classes
    have priors ``rho[j]``. EM starts from the soft vote shares (majority vote), then alternates
    the M-step ``pi[a, j, l] ∝ n[a, j, l] + smoothing + diagonal_prior [j == l]`` (soft counts
    ``n[a, j, l] = sum_i T[i, j] [votes[i, a] == l]``) and ``rho = mean_i T[i]`` with the E-step
    ``log T[i, j] = log rho[j] + sum_a log pi[a, j, votes[i, a]] + const``
    (Dawid & Skene 1979, Applied Statistics 28(1)).

    A reliable annotator outvoted by poor ones is found out and followed, which majority vote
    cannot do. The ``diagonal_prior`` pseudo-counts (a Dirichlet prior that annotators are
    better than chance) keep small batches away from the degenerate optima of plain EM.
    ``diagonal_prior=0, smoothing=0`` is plain maximum likelihood, step for step the EM of
    crowd-kit's ``DawidSkene`` (tests/test_crowdkit.py checks it to 1e-8).

    Parameters
    ----------
    votes : array-like of int of shape (n_items, n_annotators)
        Class index each annotator gave each item; ``-1`` where none.
    n_classes : int, optional
        Default ``votes.max() + 1``.
    diagonal_prior : float, default=1.0
        Pseudo-count added to every annotator's correct answers; 0 for plain maximum likelihood.
    smoothing : float, default=0.01
        Pseudo-count added to every cell of every confusion matrix, so that an answer an
        annotator never gave so far is unlikely, not impossible; 0 for plain maximum likelihood
        (cells are then floored at 1e-10, as crowd-kit does, to keep the logarithms finite).
    max_iter : int, default=100
    tol : float, default=1e-6
        Stop when no posterior moves more than ``tol``.

    Returns
    -------
    posterior : ndarray of shape (n_items, n_classes)
        ``P(truth = j | votes)`` per item; an item nobody labelled gets the class priors.
    confusion : ndarray of shape (n_annotators, n_classes, n_classes)
        ``confusion[a, j, l]`` = P(annotator ``a`` says ``l`` | truth ``j``).
    priors : ndarray of shape (n_classes,)
    """
    votes, n_classes = _check_votes(votes, n_classes)
    for name, value in (("diagonal_prior", diagonal_prior), ("smoothing", smoothing)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise LabelwiseError(f"{name} must be a number >= 0; got {value!r}.")
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
        confusion = np.einsum("ij,ail->ajl", T, onehot) + float(smoothing) + diag
        np.maximum(confusion, _MIN_CONFUSION, out=confusion)  # log() stays finite at 0 counts
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step
        log_t = np.log(priors)[None, :] + np.einsum("ail,ajl->ij", onehot, np.log(confusion))
        log_t -= log_t.max(axis=1, keepdims=True)
        new_t = np.exp(log_t)
        new_t /= new_t.sum(axis=1, keepdims=True)
        done = np.abs(new_t - T).max() < tol if n_items else True
        T = new_t
        if done:
            break
    return T, confusion, priors


# ---------------------------------------------------------------------------------------------
# Simulated annotators
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
        """Flip probability of every annotator on items of every true class.

        Parameters
        ----------
        n_annotators : int
            Used when ``annotator_flip_rates`` is not given.
        classes : ndarray of shape (n_classes,)

        Returns
        -------
        rates : ndarray of shape (n_annotators, n_classes)
        """
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

    @property
    def n_items(self) -> int:
        """Items the oracle knows the true label of (the pool size)."""
        return int(self._y.shape[0])

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
