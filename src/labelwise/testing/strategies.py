"""The strategy contract, shipped as checks (like scikit-learn's ``parametrize_with_checks``).

Every registered strategy must pass every check that applies to it; a third-party strategy can
be checked the same way::

    from labelwise.testing import check_strategy, strategy_checks

    check_strategy(MyStrategy())                # runs all checks, raises AssertionError

    @strategy_checks()                          # one pytest case per (strategy, check)
    def test_contract(strategy_name, check_name):
        run_check(strategy_name, check_name)

Checks run on real data (``make_candidates``: digits, breast cancer, a multi-label target
derived from digits) with a fitted model, a committee, embeddings, metadata and a labelled set,
over a ``row_idx`` subset so candidate positions differ from pool positions.

Check names carry the task type they run on, e.g. ``"valid_query[binary]"``:

- ``description``: ``name`` and a non-empty, one-line ``description``; ``cold_start``
  strategies need neither a model nor a committee.
- ``valid_query[T]``: a ``Query`` of ``k`` distinct int64 positions in ``[0, n)`` with ``k``
  finite scores, tagged with the strategy's name; score strategies return scores best first.
- ``deterministic[T]``: same ``random_state``, same positions and scores.
- ``k_one[T]`` / ``whole_pool[T]``: ``k=1`` works; ``k=n`` returns a permutation of the pool.
- ``batch_too_large[T]``: ``k=n+1`` and ``k=0`` raise ``BatchSizeError``.
- ``chunking[T]``: ``chunk_size=7`` gives a valid query; for ``ScoreStrategy`` subclasses (which
  score every row independently and merge a running top-k) it gives the *same* query as the
  default chunk size. Strategies that look at several rows at once (diversity, clustering) may
  legitimately depend on the chunk layout, so only validity is checked for them.
- ``no_mutation[T]``: candidates (arrays, metadata, models, committee) and the strategy's
  parameters are unchanged by ``select``.
- ``declared_inputs[T]``: with only the inputs listed in ``needs`` (the rest ``None``) the
  strategy still selects, so ``needs`` is complete.
- ``not_fitted[T]``: strategies that need a model raise ``NotFittedError`` for an unfitted
  model and for none.
- ``unsupported_task[T]``: for each task type the strategy does not support,
  ``UnsupportedTaskError``.
"""

from __future__ import annotations

import copy
import functools
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from labelwise.errors import BatchSizeError, NotFittedError, UnsupportedTaskError
from labelwise.strategies import (
    DEFAULT_CHUNK_SIZE,
    Candidates,
    Query,
    ScoreStrategy,
    Strategy,
    get_strategy,
    strategy_names,
)
from labelwise.tasks import TaskType

__all__ = [
    "ProbaModel",
    "candidates_from_proba",
    "check_strategy",
    "iter_checks",
    "make_candidates",
    "run_check",
    "strategy_check_names",
    "strategy_checks",
]

K = 5  # batch size used by the checks


# --------------------------------------------------------------------------------------------
# Fixtures: real data, fitted models
# --------------------------------------------------------------------------------------------


class ProbaModel(ClassifierMixin, BaseEstimator):
    """A "model" whose features *are* its probabilities: ``predict_proba(X)`` returns ``X``.

    Lets tests and property checks drive strategies with exact ``proba`` arrays. It counts as
    fitted from construction.

    Parameters
    ----------
    n_classes : int
    """

    def __init__(self, n_classes: int = 2) -> None:
        self.n_classes = n_classes

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any = None) -> ProbaModel:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(X)


def candidates_from_proba(
    proba: np.ndarray,
    *,
    task_type: TaskType | str = TaskType.MULTICLASS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Candidates:
    """Candidates whose model predicts exactly ``proba``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    task_type : {"multiclass", "binary", "multilabel"}
    chunk_size : int

    Returns
    -------
    Candidates
        ``X`` is ``proba`` and ``model`` a :class:`ProbaModel`.
    """
    proba = np.asarray(proba)
    return Candidates(
        X=proba,
        model=ProbaModel(proba.shape[1]),
        task_type=task_type,
        chunk_size=chunk_size,
    )


def _load(task_type: TaskType) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X float32, y, strata)`` for a task type; ``strata`` drives the stratified split."""
    if task_type == TaskType.BINARY:
        data = load_breast_cancer()
        X = StandardScaler().fit_transform(data.data).astype(np.float32)
        return X, data.target, data.target
    data = load_digits()
    X = (data.data / 16.0).astype(np.float32)
    if task_type == TaskType.MULTICLASS:
        return X, data.target, data.target
    digit = data.target
    Y = np.column_stack([digit % 2 == 0, digit >= 5, digit == 0]).astype(np.int64)
    return X, Y, digit


def _classifier(task_type: TaskType, base: Any) -> Any:
    return OneVsRestClassifier(base) if task_type == TaskType.MULTILABEL else base


@functools.lru_cache(maxsize=32)
def _fixture(task_type: TaskType, n: int, n_labeled: int, random_state: int) -> dict[str, Any]:
    X_all, y_all, strata = _load(task_type)
    rng = check_random_state(random_state)
    # Stratified labelled set (every class / digit present), then candidates from the rest.
    groups = np.unique(strata)
    per = max(1, n_labeled // groups.shape[0])
    labeled = np.concatenate(
        [rng.choice(np.flatnonzero(strata == g), per, replace=False) for g in groups]
    )
    rest = np.setdiff1d(np.arange(X_all.shape[0]), labeled)
    if n > rest.shape[0]:
        raise ValueError(f"n={n} is larger than the {rest.shape[0]} rows available")
    unlabeled = rng.choice(rest, n, replace=False)
    # The pool interleaves labelled and unlabelled rows, so candidate positions (0..n-1) differ
    # from pool positions (row_idx).
    pool = rng.permutation(np.concatenate([labeled, unlabeled]))
    X = np.ascontiguousarray(X_all[pool])
    y = y_all[pool]
    is_labeled = np.isin(pool, labeled)
    row_idx = np.flatnonzero(~is_labeled).astype(np.int64)
    X_lab, y_lab = X[is_labeled], y[is_labeled]

    model = _classifier(task_type, LogisticRegression(C=1.0, max_iter=500)).fit(X_lab, y_lab)
    committee = [
        _classifier(task_type, LogisticRegression(C=0.05, max_iter=500)).fit(X_lab, y_lab),
        _classifier(task_type, LogisticRegression(C=20.0, max_iter=500)).fit(X_lab, y_lab),
        _classifier(task_type, GaussianNB()).fit(X_lab, y_lab),
    ]
    embeddings = PCA(n_components=8, random_state=0).fit_transform(X).astype(np.float32)
    metadata = {
        "source": np.array(["web", "mail", "phone"])[rng.randint(0, 3, X.shape[0])],
        "length": np.abs(X).sum(axis=1).astype(np.float64),
    }
    return {
        "X": X,
        "model": model,
        "row_idx": row_idx,
        "X_labeled": X_lab,
        "y_labeled": y_lab,
        "embeddings": embeddings,
        "metadata": metadata,
        "committee": committee,
    }


def make_candidates(
    task_type: TaskType | str = TaskType.MULTICLASS,
    *,
    n: int = 150,
    n_labeled: int = 60,
    random_state: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Candidates:
    """Full ``Candidates`` built from real data, with every optional input filled in.

    - multiclass: ``load_digits`` (10 classes), features scaled to [0, 1];
    - binary: ``load_breast_cancer``, standardised;
    - multilabel: digits with labels ``[is_even, is_>=5, is_0]``, ``OneVsRestClassifier``.

    Parameters
    ----------
    task_type : {"multiclass", "binary", "multilabel"}
    n : int
        Number of candidates (unlabelled rows).
    n_labeled : int
        Approximate size of the stratified labelled set (every class is present).
    random_state : int
    chunk_size : int

    Returns
    -------
    Candidates
        ``X`` of shape (n + n_labeled, n_features) float32 holding labelled and unlabelled rows
        interleaved; ``row_idx`` the ``n`` unlabelled positions; a fitted
        ``LogisticRegression`` ``model``; a ``committee`` of three fitted members; 8-D PCA
        ``embeddings``; ``metadata`` with a categorical ``"source"`` and a numeric
        ``"length"``; ``X_labeled`` / ``y_labeled``. Every call returns fresh copies.
    """
    task_type = TaskType(task_type)
    parts = copy.deepcopy(_fixture(task_type, n, n_labeled, random_state))
    return Candidates(task_type=task_type, chunk_size=chunk_size, **parts)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _fresh(strategy: Strategy | str) -> Strategy:
    return get_strategy(strategy) if isinstance(strategy, str) else copy.deepcopy(strategy)


def _assert_valid_query(query: Any, strategy: Strategy, k: int, n: int) -> None:
    name = strategy.name
    assert isinstance(query, Query), f"{name}: select() must return a Query, got {query!r}"
    idx, scores = np.asarray(query.idx), np.asarray(query.scores)
    assert idx.shape == (k,), f"{name}: expected {k} positions, got shape {idx.shape}"
    assert np.issubdtype(idx.dtype, np.integer), f"{name}: positions must be ints ({idx.dtype})"
    assert np.unique(idx).shape[0] == k, f"{name}: positions are not distinct: {idx}"
    assert idx.min() >= 0 and idx.max() < n, f"{name}: positions outside [0, {n}): {idx}"
    assert scores.shape == (k,), f"{name}: expected {k} scores, got shape {scores.shape}"
    assert np.isfinite(scores).all(), f"{name}: scores must be finite, got {scores}"
    assert query.strategy == name, f"{name}: Query.strategy is {query.strategy!r}"
    if isinstance(strategy, ScoreStrategy):
        assert (np.diff(scores) <= 0).all(), f"{name}: scores must be best first: {scores}"


def check_description(strategy: Strategy | str) -> None:
    s = _fresh(strategy)
    assert s.name, f"{type(s).__name__} has no name"
    desc = s.description
    assert isinstance(desc, str) and desc.strip(), f"{s.name}: description is empty"
    assert "\n" not in desc.strip(), f"{s.name}: description must be one line: {desc!r}"
    assert s.task_types, f"{s.name}: task_types is empty"
    assert all(isinstance(t, TaskType) for t in s.task_types), f"{s.name}: task_types"
    unknown = set(s.needs) - {"model", "committee", "embeddings", "metadata", "labeled"}
    assert not unknown, f"{s.name}: unknown needs {sorted(unknown)}"
    if s.cold_start:
        assert not {"model", "committee"} & set(s.needs), (
            f"{s.name}: cold_start strategies cannot need a model or committee"
        )


def check_valid_query(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    cands = make_candidates(task_type)
    _assert_valid_query(s.select(cands, K, random_state=0), s, K, cands.n)


def check_deterministic(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    q1 = s.select(make_candidates(task_type), K, random_state=42)
    q2 = _fresh(strategy).select(make_candidates(task_type), K, random_state=42)
    np.testing.assert_array_equal(q1.idx, q2.idx, err_msg=f"{s.name}: same seed, other idx")
    np.testing.assert_array_equal(q1.scores, q2.scores, err_msg=f"{s.name}: other scores")


def check_k_one(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    cands = make_candidates(task_type)
    _assert_valid_query(s.select(cands, 1, random_state=0), s, 1, cands.n)


def check_whole_pool(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    cands = make_candidates(task_type, n=60)
    q = s.select(cands, cands.n, random_state=0)
    _assert_valid_query(q, s, cands.n, cands.n)
    np.testing.assert_array_equal(np.sort(q.idx), np.arange(cands.n))


def check_batch_too_large(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    cands = make_candidates(task_type)
    for k in (cands.n + 1, 0):
        try:
            s.select(cands, k, random_state=0)
        except BatchSizeError:
            continue
        raise AssertionError(f"{s.name}: k={k} with {cands.n} candidates: no BatchSizeError")


def check_chunking(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    small = make_candidates(task_type, chunk_size=7)
    q_small = s.select(small, K, random_state=0)
    _assert_valid_query(q_small, s, K, small.n)
    if isinstance(s, ScoreStrategy):
        q = _fresh(strategy).select(make_candidates(task_type), K, random_state=0)
        np.testing.assert_array_equal(
            q_small.idx, q.idx, err_msg=f"{s.name}: chunk_size=7 changed the selection"
        )
        np.testing.assert_allclose(q_small.scores, q.scores, rtol=1e-5, atol=1e-7)


def _snapshot(cands: Candidates) -> dict[str, Any]:
    return {
        "X": np.array(cands.X, copy=True),
        "row_idx": None if cands.row_idx is None else cands.row_idx.copy(),
        "X_labeled": np.array(cands.X_labeled, copy=True),
        "y_labeled": np.array(cands.y_labeled, copy=True),
        "embeddings": np.array(cands.embeddings, copy=True),
        "metadata": {key: np.array(v, copy=True) for key, v in (cands.metadata or {}).items()},
        "model": pickle.dumps(cands.model),
        "committee": [pickle.dumps(m) for m in cands.committee or ()],
        "task_type": cands.task_type,
        "chunk_size": cands.chunk_size,
        "n": cands.n,
    }


def check_no_mutation(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    cands = make_candidates(task_type)
    before, params = _snapshot(cands), repr(s)
    s.select(cands, K, random_state=0)
    after = _snapshot(cands)
    for key, value in before.items():
        other = after[key]
        if isinstance(value, np.ndarray):
            same = value.shape == other.shape and np.array_equal(value, other)
        elif key == "metadata":
            same = value.keys() == other.keys() and all(
                np.array_equal(value[m], other[m]) for m in value
            )
        else:
            same = value == other
        assert same, f"{s.name}: select() mutated candidates.{key}"
    assert repr(s) == params, f"{s.name}: select() changed its parameters"


def check_declared_inputs(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    full = make_candidates(task_type)
    needs = set(s.needs)
    cands = Candidates(
        X=full.X,
        row_idx=full.row_idx,
        model=full.model if "model" in needs else None,
        committee=full.committee if "committee" in needs else None,
        embeddings=full.embeddings if "embeddings" in needs else None,
        metadata=full.metadata if "metadata" in needs else None,
        X_labeled=full.X_labeled if "labeled" in needs else None,
        y_labeled=full.y_labeled if "labeled" in needs else None,
        task_type=task_type,
    )
    try:
        q = s.select(cands, K, random_state=0)
    except Exception as exc:
        raise AssertionError(
            f"{s.name}: failed with only its declared needs {sorted(needs)}; declare what it "
            f"reads in `needs` ({type(exc).__name__}: {exc})"
        ) from exc
    _assert_valid_query(q, s, K, cands.n)


def check_not_fitted(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    for model in ("unfitted", None):
        cands = make_candidates(task_type)
        cands.model = clone(cands.model) if model == "unfitted" else None
        try:
            s.select(cands, K, random_state=0)
        except NotFittedError:
            continue
        raise AssertionError(f"{s.name}: no NotFittedError with model={model!r}")


def check_unsupported_task(strategy: Strategy | str, task_type: TaskType) -> None:
    s = _fresh(strategy)
    try:
        s.select(make_candidates(task_type), K, random_state=0)
    except UnsupportedTaskError:
        return
    raise AssertionError(f"{s.name}: {task_type.value} is not in task_types but was accepted")


_PER_TASK: dict[str, Callable[[Strategy | str, TaskType], None]] = {
    "valid_query": check_valid_query,
    "deterministic": check_deterministic,
    "k_one": check_k_one,
    "whole_pool": check_whole_pool,
    "batch_too_large": check_batch_too_large,
    "chunking": check_chunking,
    "no_mutation": check_no_mutation,
    "declared_inputs": check_declared_inputs,
    "not_fitted": check_not_fitted,
}


def _class_of(strategy: Strategy | str) -> type[Strategy]:
    return type(_fresh(strategy))


def iter_checks(strategy: Strategy | str) -> Iterator[tuple[str, Callable[[], None]]]:
    """Yield ``(check_name, check)`` for every check that applies to ``strategy``.

    Parameters
    ----------
    strategy : Strategy or str
        An instance (copied before each check) or a registered name.

    Yields
    ------
    check_name : str
        e.g. ``"description"``, ``"valid_query[multiclass]"``.
    check : callable
        Takes no argument; raises ``AssertionError`` on a violation.
    """
    cls = _class_of(strategy)
    yield "description", functools.partial(check_description, strategy)
    for task in sorted(TaskType):
        if task not in cls.task_types:
            yield (
                f"unsupported_task[{task}]",
                functools.partial(check_unsupported_task, strategy, task),
            )
            continue
        for check, fn in _PER_TASK.items():
            if check == "not_fitted" and "model" not in cls.needs:
                continue
            yield f"{check}[{task}]", functools.partial(fn, strategy, task)


def strategy_check_names(strategy: Strategy | str) -> list[str]:
    """Names of the checks that apply to ``strategy``."""
    return [name for name, _ in iter_checks(strategy)]


def run_check(strategy: Strategy | str, check_name: str) -> None:
    """Run one check by name (as listed by :func:`strategy_check_names`)."""
    for name, check in iter_checks(strategy):
        if name == check_name:
            check()
            return
    raise KeyError(f"no check {check_name!r}; checks: {', '.join(strategy_check_names(strategy))}")


def check_strategy(strategy: Strategy | str) -> list[str]:
    """Run every applicable check on ``strategy``; raise ``AssertionError`` on the first failure.

    Returns
    -------
    check_names : list of str
        The checks that ran (all passed).
    """
    ran = []
    for name, check in iter_checks(strategy):
        check()
        ran.append(name)
    return ran


def strategy_checks(names: Sequence[str] | None = None) -> Any:
    """``pytest.mark.parametrize`` over ``(strategy_name, check_name)``, one case per check.

    Parameters
    ----------
    names : sequence of str, optional
        Registered strategy names; default every registered strategy.

    Returns
    -------
    decorator
        For a test ``def test_x(strategy_name, check_name)``; case ids are
        ``"<strategy>-<check>"``.
    """
    import pytest

    names = strategy_names() if names is None else list(names)
    params = [
        pytest.param(name, check, id=f"{name}-{check}")
        for name in names
        for check in strategy_check_names(name)
    ]
    return pytest.mark.parametrize(("strategy_name", "check_name"), params)
