"""A query-by-committee ensemble: builds and fits the members (compute band).

:class:`Committee` fits several models (bootstrap resamples, seeds or distinct estimators);
the strategies ``qbc_vote_entropy`` and ``qbc_kl`` (:mod:`labelwise.strategies.committee`) only
read the fitted members' probabilities through ``Candidates``, so fitting stays here.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state

from labelwise.errors import LabelwiseError, NotFittedError
from labelwise.models import predict_proba as _model_proba
from labelwise.strategies.committee import (
    _class_columns,
    _has_class_vector,
    _stack_member_proba,
    _union_classes,
)

__all__ = ["COMMITTEE_MODES", "Committee"]

COMMITTEE_MODES = ("bootstrap", "seeds", "estimators")


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
          bagging, Abe & Mamitsuka 1998), stratified: each class is resampled within itself, so
          every member sees every class, as often as the labelled set has it. (A plain resample
          of 20 labels over 10 classes almost never holds every class; members that fell back
          to the full set were identical, and the committee disagreed about nothing.)
          Multi-label targets are resampled whole, redrawn (up to 10 times) until every label
          column shows what the full set shows, else that member fits the full set. Members
          whose estimator takes a ``random_state`` also get distinct seeds.
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
            if y.ndim == 1:
                idx = stratified_bootstrap(y, rng)
            for _attempt in range(0 if idx is not None else 10):
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


def stratified_bootstrap(y: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Row positions of a bootstrap resample drawn within each class.

    Position ``i`` of the result holds a row of ``y[i]``'s class, drawn with replacement from
    that class's rows, so the resample has every class exactly as often as ``y``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    rng : RandomState

    Returns
    -------
    idx : ndarray of shape (n_samples,), int64
        ``y[idx]`` equals ``y``; a class with one row always draws that row.
    """
    idx = np.empty(y.shape[0], dtype=np.int64)
    _, inverse = np.unique(y, return_inverse=True)
    for c in range(int(inverse.max()) + 1 if inverse.size else 0):
        rows = np.flatnonzero(inverse == c)
        idx[rows] = rows[rng.randint(rows.size, size=rows.size)]
    return idx


def _class_signature(y: np.ndarray) -> tuple:
    if y.ndim == 1:
        return tuple(np.unique(y).tolist())
    return tuple(tuple(np.unique(col).tolist()) for col in y.T)


def _take_rows(X: Any, idx: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return X[idx]
