"""Query-by-committee: disagreement scores over several models, and a helper that builds them.

The score functions take ``committee_proba (n_members, n_samples, n_classes)`` and return
``scores (n_samples,)``, higher meaning "query first". Multi-label committees pass
``(n_members, n_samples, n_labels)`` independent positive probabilities to the ``multilabel_*``
variants, which score every label as a binary problem and **average across labels**.

The strategies ``"qbc_vote_entropy"`` and ``"qbc_kl"`` read ``Candidates.committee`` (a
sequence of fitted classifiers or a fitted :class:`Committee`) and score the pool chunk by chunk:
only one chunk of member probabilities, ``(n_members, chunk_size, n_classes)`` float32, is ever
held in memory.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state

from labelwise.errors import LabelwiseError, MissingInputError, NotFittedError
from labelwise.models import check_fitted, model_classes
from labelwise.models import predict_proba as _model_proba
from labelwise.select import RunningTopK
from labelwise.strategies.base import Candidates, Strategy
from labelwise.strategies.registry import register
from labelwise.strategies.scores import _xlogx
from labelwise.tasks import TaskType

__all__ = [
    "Committee",
    "KLDivergenceQBC",
    "VoteEntropyQBC",
    "consensus_entropy",
    "kl_divergence_to_consensus",
    "multilabel_consensus_entropy",
    "multilabel_kl_divergence_to_consensus",
    "multilabel_vote_entropy",
    "vote_entropy",
]

COMMITTEE_MODES = ("bootstrap", "seeds", "estimators")


# --------------------------------------------------------------------------- score functions


def vote_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Entropy of the distribution of the members' hard votes, in nats.

    Each member votes for its most likely class (``argmax``; a tie inside a member goes to the
    lowest class index). The score is the entropy of the vote shares.

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln min(n_members, n_classes)]``; votes ``[0, 0, 0, 1, 1]`` ->
        ``-(0.6 ln 0.6 + 0.4 ln 0.4)``; unanimous -> 0.
    """
    n_members, n_samples, n_classes = committee_proba.shape
    dtype = committee_proba.dtype if committee_proba.dtype.kind == "f" else np.float64
    votes = committee_proba.argmax(axis=2)  # (n_members, n_samples)
    counts = np.zeros((n_samples, n_classes), dtype=dtype)
    rows = np.arange(n_samples)
    for member_votes in votes:  # rows are distinct within a member, so += is safe
        counts[rows, member_votes] += 1
    counts /= n_members
    return -_xlogx(counts).sum(axis=1)


def consensus_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Entropy of the consensus (mean) distribution, in nats ("soft vote entropy").

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln n_classes]``.
    """
    return -_xlogx(committee_proba.mean(axis=0)).sum(axis=1)


def kl_divergence_to_consensus(committee_proba: np.ndarray) -> np.ndarray:
    """Mean over members of ``KL(member || consensus)`` (McCallum & Nigam, 1998), in nats.

    With the consensus ``q = mean_m p_m``, ``mean_m KL(p_m || q) = H(q) - mean_m H(p_m)`` (the
    generalised Jensen-Shannon divergence), which is how it is computed: one ``x log x`` pass over
    the members and one over the consensus. Rounding can make it a hair below zero; it is clipped
    at 0.

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Non-negative; 0 when every member predicts the same distribution.
    """
    mean_member_neg_entropy = _xlogx(committee_proba).sum(axis=2).mean(axis=0)
    consensus_neg_entropy = _xlogx(committee_proba.mean(axis=0)).sum(axis=1)
    return np.maximum(mean_member_neg_entropy - consensus_neg_entropy, 0)


def _binary_neg_entropy(p: np.ndarray) -> np.ndarray:
    return _xlogx(p) + _xlogx(1 - p)


def multilabel_vote_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Binary vote entropy per label, averaged across labels.

    A member votes "positive" for a label when its probability is above 0.5 (exactly 0.5 votes
    negative, the lowest-index rule of :func:`vote_entropy`).

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_labels)
        Independent positive probability per label.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln 2]``.
    """
    n_members = committee_proba.shape[0]
    dtype = committee_proba.dtype if committee_proba.dtype.kind == "f" else np.float64
    share = (committee_proba > 0.5).sum(axis=0, dtype=dtype) / n_members
    return (-_binary_neg_entropy(share)).mean(axis=1)


def multilabel_consensus_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Binary entropy of each label's consensus probability, averaged across labels.

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_labels)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, ln 2]``.
    """
    q = committee_proba.mean(axis=0)
    return (-_binary_neg_entropy(q)).mean(axis=1)


def multilabel_kl_divergence_to_consensus(committee_proba: np.ndarray) -> np.ndarray:
    """Binary :func:`kl_divergence_to_consensus` per label, averaged across labels.

    Parameters
    ----------
    committee_proba : ndarray of shape (n_members, n_samples, n_labels)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Non-negative.
    """
    mean_member = _binary_neg_entropy(committee_proba).mean(axis=0)
    consensus = _binary_neg_entropy(committee_proba.mean(axis=0))
    return np.maximum(mean_member - consensus, 0).mean(axis=1)


# --------------------------------------------------------------------------- committee helper


def _union_classes(members: Sequence[Any]) -> np.ndarray:
    return np.unique(np.concatenate([model_classes(m) for m in members]))


def _class_columns(members: Sequence[Any], classes: np.ndarray) -> list[np.ndarray | None]:
    """Per member: columns of ``classes`` its proba maps to, or None if already aligned."""
    cols: list[np.ndarray | None] = []
    for m in members:
        own = model_classes(m)
        if own.shape == classes.shape and np.array_equal(own, classes):
            cols.append(None)
        else:
            cols.append(np.searchsorted(classes, own))
    return cols


def _has_class_vector(model: Any) -> bool:
    classes = getattr(model, "classes_", None)
    return classes is not None and not isinstance(classes, list) and np.ndim(classes) == 1


class Committee(ClassifierMixin, BaseEstimator):
    """Builds and holds the members of a query-by-committee ensemble.

    Parameters
    ----------
    estimator : classifier, optional
        Template cloned for every member (modes ``"bootstrap"`` and ``"seeds"``).
    n_members : int, default=5
        Number of members (ignored by ``"estimators"``, which uses one per estimator).
    mode : {"bootstrap", "seeds", "estimators"}, default="bootstrap"
        - ``"bootstrap"``: every member fits a bootstrap resample of the labelled set (query by
          bagging, Abe & Mamitsuka 1998). A resample is redrawn (up to 10 times) until every
          class is present; otherwise that member fits the full set. Members whose estimator
          takes a ``random_state`` also get distinct seeds.
        - ``"seeds"``: every member fits the full set with a distinct ``random_state`` (every
          ``*random_state`` parameter of the estimator, including those of pipeline steps).
        - ``"estimators"``: one member per entry of ``estimators``, each fitted on the full set.
    estimators : sequence of classifiers, optional
        The (unfitted) estimators of mode ``"estimators"``.
    random_state : int, RandomState or None
        Seeds the resampling and the members' seeds.

    Attributes
    ----------
    members_ : list of fitted classifiers
    classes_ : ndarray of shape (n_classes,)
        Union of the members' classes, sorted; the column order of every probability output.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_members: int = 5,
        mode: str = "bootstrap",
        estimators: Sequence[Any] | None = None,
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.n_members = n_members
        self.mode = mode
        self.estimators = estimators
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.mode not in COMMITTEE_MODES:
            raise LabelwiseError(
                f"unknown committee mode {self.mode!r}; use one of: {', '.join(COMMITTEE_MODES)}."
            )
        if self.mode == "estimators":
            if self.estimators is None or len(self.estimators) < 2:
                raise LabelwiseError(
                    "mode='estimators' needs a list of at least 2 estimators; pass "
                    "Committee(mode='estimators', estimators=[LogisticRegression(), GaussianNB()])."
                )
            return
        if self.estimator is None:
            raise LabelwiseError(
                f"mode={self.mode!r} needs an estimator to clone; pass Committee(estimator=...)."
            )
        n = self.n_members
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
            raise LabelwiseError(
                f"a committee needs n_members >= 2 to disagree; got n_members={n!r}."
            )

    def fit(self, X: Any, y: Any) -> Committee:
        """Fit every member on ``(X, y)`` as the ``mode`` says.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_labeled, n_features)
        y : array-like of shape (n_labeled,) or (n_labeled, n_labels)

        Returns
        -------
        self
        """
        self._check_params()
        y = np.asarray(y)
        if y.shape[0] == 0:
            raise NotFittedError("cannot fit a committee on an empty labelled set; label items.")
        rng = check_random_state(self.random_state)
        if self.mode == "estimators":
            self.members_ = [clone(est).fit(X, y) for est in self.estimators]
        elif self.mode == "seeds":
            seed_params = _seed_params(self.estimator)
            if not seed_params:
                raise LabelwiseError(
                    f"{type(self.estimator).__name__} has no random_state parameter, so "
                    "mode='seeds' would build identical members; use mode='bootstrap' or "
                    "mode='estimators'."
                )
            self.members_ = []
            for _ in range(self.n_members):
                seed = int(rng.randint(np.iinfo(np.int32).max))
                member = clone(self.estimator).set_params(**dict.fromkeys(seed_params, seed))
                self.members_.append(member.fit(X, y))
        else:
            self.members_ = self._fit_bootstrap(X, y, rng)
        if all(_has_class_vector(m) for m in self.members_):
            self.classes_ = _union_classes(self.members_)
            self._cols = _class_columns(self.members_, self.classes_)
        else:  # multi-output members: columns are labels, nothing to align
            self.classes_ = getattr(self.members_[0], "classes_", None)
            self._cols = [None] * len(self.members_)
        return self

    def _fit_bootstrap(self, X: Any, y: np.ndarray, rng: np.random.RandomState) -> list[Any]:
        n = y.shape[0]
        full = _class_signature(y)
        seed_params = _seed_params(self.estimator)
        members = []
        for _ in range(self.n_members):
            idx = None
            for _attempt in range(10):
                draw = rng.randint(n, size=n)
                if _class_signature(y[draw]) == full:
                    idx = draw
                    break
            member = clone(self.estimator)
            if seed_params:
                seed = int(rng.randint(np.iinfo(np.int32).max))
                member.set_params(**dict.fromkeys(seed_params, seed))
            if idx is None:  # every resample missed a class: fall back to the full set
                members.append(member.fit(X, y))
            else:
                members.append(member.fit(_take_rows(X, idx), y[idx]))
        return members

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise NotFittedError("this Committee is not fitted; call committee.fit(X, y) first.")

    def predict_proba_members(self, X: Any, dtype: Any = np.float64) -> np.ndarray:
        """Every member's probabilities, aligned to :attr:`classes_`.

        A member that never saw a class gets probability 0 in that column.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        dtype : numpy dtype, default=float64

        Returns
        -------
        committee_proba : ndarray of shape (n_members, n_samples, n_classes)
        """
        self._check_is_fitted()
        return _stack_member_proba(
            [_model_proba(m, X) for m in self.members_], self._cols, self._n_columns(), dtype
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Consensus probabilities: the mean of :meth:`predict_proba_members` over members.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self.predict_proba_members(X).mean(axis=0)

    def _n_columns(self) -> int | None:
        return None if self.classes_ is None else int(np.shape(self.classes_)[0])

    def __repr__(self) -> str:
        return (
            f"Committee(estimator={self.estimator!r}, n_members={self.n_members!r}, "
            f"mode={self.mode!r}, estimators={self.estimators!r}, "
            f"random_state={self.random_state!r})"
        )


def _seed_params(estimator: Any) -> list[str]:
    get_params = getattr(estimator, "get_params", None)
    if not callable(get_params):
        return []
    return sorted(p for p in get_params(deep=True) if p.split("__")[-1] == "random_state")


def _class_signature(y: np.ndarray) -> tuple:
    if y.ndim == 1:
        return tuple(np.unique(y).tolist())
    return tuple(tuple(np.unique(col).tolist()) for col in y.T)


def _take_rows(X: Any, idx: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return X[idx]


def _stack_member_proba(
    probas: Sequence[np.ndarray],
    cols: Sequence[np.ndarray | None],
    n_columns: int | None,
    dtype: Any,
) -> np.ndarray:
    """Stack member probabilities into ``(n_members, n_samples, n_columns)``."""
    n_samples = probas[0].shape[0]
    width = n_columns if n_columns is not None else probas[0].shape[1]
    out = np.empty((len(probas), n_samples, width), dtype=dtype)
    for m, (p, c) in enumerate(zip(probas, cols, strict=True)):
        if c is None:
            out[m] = p
        else:
            out[m] = 0
            out[m][:, c] = p
    return out


# --------------------------------------------------------------------------- strategies


def _resolve_committee(
    committee: Any, task_type: TaskType
) -> tuple[list[Any], list[np.ndarray | None], int | None]:
    """Members, per-member column maps and the number of aligned columns."""
    if isinstance(committee, Committee):
        committee._check_is_fitted()
        members = list(committee.members_)
    else:
        members = list(committee)
    if len(members) < 2:
        raise MissingInputError(
            f"query-by-committee needs at least 2 members; got {len(members)}. Build one with "
            "labelwise.strategies.Committee(estimator, n_members=5).fit(X, y)."
        )
    for m in members:
        check_fitted(m)
    if task_type != TaskType.MULTILABEL and all(_has_class_vector(m) for m in members):
        classes = _union_classes(members)
        return members, _class_columns(members, classes), int(classes.shape[0])
    return members, [None] * len(members), None


class _QueryByCommittee(Strategy):
    """Scores each chunk with a committee function over the members' aligned probabilities."""

    needs = frozenset({"committee"})

    _single = staticmethod(vote_entropy)
    _multi = staticmethod(multilabel_vote_entropy)

    def committee_proba(self, candidates: Candidates, X_chunk: Any, members, cols, width):
        """Aligned float32 member probabilities for one chunk, ``(n_members, chunk, width)``."""
        probas = [candidates.predict_proba(X_chunk, model=m) for m in members]
        return _stack_member_proba(probas, cols, width, np.float32)

    def _select(self, candidates, k, rng):
        members, cols, width = _resolve_committee(candidates.committee, candidates.task_type)
        score = self._multi if candidates.task_type == TaskType.MULTILABEL else self._single
        best = RunningTopK(k, random_state=rng)
        for start, X_block, keep in candidates.iter_blocks():
            cp = self.committee_proba(candidates, X_block, members, cols, width)
            best.push(score(cp if keep is None else cp[:, keep]), start)
        return best.result()

    def get_params(self):
        return {}


@register
class VoteEntropyQBC(_QueryByCommittee):
    """Query-by-committee by vote entropy (Dagan & Engelson, 1995)."""

    name = "qbc_vote_entropy"
    description = (
        "Query by committee: entropy of the members' hard votes (multi-label: mean over labels)."
    )
    _single = staticmethod(vote_entropy)
    _multi = staticmethod(multilabel_vote_entropy)


@register
class KLDivergenceQBC(_QueryByCommittee):
    """Query-by-committee by mean KL divergence to the consensus (McCallum & Nigam, 1998)."""

    name = "qbc_kl"
    description = (
        "Query by committee: mean KL divergence of members from the consensus "
        "(multi-label: mean over labels)."
    )
    _single = staticmethod(kl_divergence_to_consensus)
    _multi = staticmethod(multilabel_kl_divergence_to_consensus)
