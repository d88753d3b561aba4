"""One test per bad input: each raises its named error with a message that says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from labelwise import (
    BatchSizeError,
    EmptyPoolError,
    InvalidProbaError,
    LabelMismatchError,
    LabelwiseError,
    MissingInputError,
    ModelInterfaceError,
    NotFittedError,
    QueryMismatchError,
    UnknownStrategyError,
    UnsupportedTaskError,
    get_strategy,
)
from labelwise.loop import Session
from labelwise.strategies import Candidates, strategy_names
from labelwise.testing import candidates_from_proba, make_candidates


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16.0).astype(np.float32), y[:300]


def _seeded_session(digits, **kwargs):
    X, y = digits
    seed = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(10)])  # 2 per class
    return Session(
        LogisticRegression(max_iter=300),
        X,
        labeled_idx=seed,
        y_labeled=y[seed],
        random_state=0,
        **kwargs,
    )


# --- empty pool -----------------------------------------------------------------------------


def test_empty_candidates():
    cands = make_candidates("multiclass")
    empty = Candidates(X=cands.X, model=cands.model, row_idx=np.empty(0, dtype=np.int64))
    with pytest.raises(EmptyPoolError, match="no unlabeled items"):
        get_strategy("entropy").select(empty, 1)


def test_session_with_empty_pool():
    with pytest.raises(EmptyPoolError, match="at least one item"):
        Session(LogisticRegression(), np.empty((0, 4)))


def test_session_with_everything_labelled(digits):
    X, y = digits
    session = Session(
        LogisticRegression(max_iter=300), X[:20], labeled_idx=np.arange(20), y_labeled=y[:20]
    )
    with pytest.raises(EmptyPoolError):
        session.query(1)


# --- batch size -----------------------------------------------------------------------------


def test_batch_larger_than_pool():
    cands = make_candidates("binary")
    with pytest.raises(BatchSizeError, match="at most 150"):
        get_strategy("margin").select(cands, 151)


def test_session_batch_larger_than_unlabelled(digits):
    session = _seeded_session(digits)  # 300 items, 20 labelled
    with pytest.raises(BatchSizeError, match="at most 280"):
        session.query(281)


def test_batch_of_zero():
    with pytest.raises(BatchSizeError, match="positive integer"):
        get_strategy("random").select(make_candidates("multiclass"), 0)


# --- proba ----------------------------------------------------------------------------------


def test_proba_rows_not_summing_to_one():
    # row 1 sums to 0.3 + 0.3 = 0.6
    cands = candidates_from_proba(np.array([[0.5, 0.5], [0.3, 0.3]]))
    with pytest.raises(InvalidProbaError, match=r"row 1 sums to 0\.6"):
        get_strategy("entropy").select(cands, 1)


def test_proba_with_nan():
    cands = candidates_from_proba(np.array([[0.5, 0.5], [0.2, 0.8], [np.nan, 0.5]]))
    with pytest.raises(InvalidProbaError, match="NaN or inf"):
        get_strategy("margin").select(cands, 1)


def test_proba_that_are_logits():
    cands = candidates_from_proba(np.array([[2.5, -1.5]]), task_type="multilabel")
    with pytest.raises(InvalidProbaError, match="logits"):
        get_strategy("least_confidence").select(cands, 1)


# --- labels ---------------------------------------------------------------------------------


def test_label_not_in_declared_classes(digits):
    session = _seeded_session(digits, classes=np.arange(10))
    q = session.query(2)
    with pytest.raises(LabelMismatchError, match="not one of the classes"):
        session.teach(q, [3, 42])


def test_label_of_another_kind(digits):
    session = _seeded_session(digits)
    q = session.query(1)
    with pytest.raises(LabelMismatchError, match="same kind"):
        session.teach(q, ["cat"])


def test_wrong_number_of_labels(digits):
    session = _seeded_session(digits)
    q = session.query(3)
    with pytest.raises(LabelMismatchError, match="one label per item"):
        session.teach(q, [1, 2])


def test_teach_with_another_query(digits):
    session = _seeded_session(digits)
    old = session.query(2)
    session.query(2)  # replaces the pending query
    if np.array_equal(old.idx, session.pending_query.idx):
        old = old.__class__(idx=old.idx[::-1], scores=old.scores, strategy=old.strategy)
    with pytest.raises(QueryMismatchError, match="pending query"):
        session.teach(old, [0, 1])


def test_teach_without_query(digits):
    session = _seeded_session(digits)
    with pytest.raises(QueryMismatchError, match="call query"):
        session.teach(np.array([0, 1]), [0, 1])


def test_query_mismatch_is_a_label_mismatch():
    assert issubclass(QueryMismatchError, LabelMismatchError)


# --- model ----------------------------------------------------------------------------------


def test_model_without_predict_proba_in_session(digits):
    X, _ = digits
    with pytest.raises(ModelInterfaceError, match="probability=True"):
        Session(SVC(), X)


def test_model_without_predict_proba_in_strategy():
    cands = make_candidates("binary")
    svc = SVC().fit(cands.X_labeled, cands.y_labeled)  # fitted, but no predict_proba
    cands.model = svc
    with pytest.raises(ModelInterfaceError, match="predict_proba"):
        get_strategy("entropy").select(cands, 2)


def test_unfitted_model():
    cands = make_candidates("multiclass")
    cands.model = LogisticRegression()
    with pytest.raises(NotFittedError, match="fit"):
        get_strategy("entropy").select(cands, 2)


def test_no_model():
    cands = make_candidates("multiclass")
    cands.model = None
    with pytest.raises(NotFittedError, match="cold-start"):
        get_strategy("margin").select(cands, 2)


def test_missing_committee():
    names = [n for n in strategy_names() if "committee" in get_strategy(n).needs]
    assert names, "no committee strategy registered"
    cands = make_candidates("multiclass")
    cands.committee = None
    with pytest.raises(MissingInputError, match="committee"):
        get_strategy(names[0]).select(cands, 2)


# --- strategy and task names ----------------------------------------------------------------


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(UnknownStrategyError, match="entropy") as info:
        get_strategy("entrophy")
    assert "entrophy" in str(info.value)
    assert all(name in str(info.value) for name in strategy_names())


def test_unknown_strategy_is_a_key_error_and_a_value_error():
    with pytest.raises(KeyError):
        get_strategy("nope")
    with pytest.raises(ValueError):
        get_strategy("nope")


def test_unknown_strategy_in_session(digits):
    X, _ = digits
    with pytest.raises(UnknownStrategyError, match="margin"):
        Session(LogisticRegression(), X, strategy="uncertainty-ish")


def test_bad_strategy_parameters():
    with pytest.raises(LabelwiseError, match="bad parameters"):
        get_strategy("entropy", temperature=2.0)


def test_unknown_task_type(digits):
    X, _ = digits
    with pytest.raises(UnsupportedTaskError, match="multiclass, binary, multilabel"):
        Session(LogisticRegression(), X, task_type="regression")


def test_strategy_on_unsupported_task():
    limited = [n for n in strategy_names() if len(get_strategy(n).task_types) < 3]
    assert limited, "every strategy supports every task; nothing to check"
    strategy = get_strategy(limited[0])
    task = next(t for t in ("binary", "multiclass", "multilabel") if t not in strategy.task_types)
    with pytest.raises(UnsupportedTaskError, match="labelwise strategies"):
        strategy.select(make_candidates(task), 2)


def test_duck_typed_model_without_sklearn_base_works():
    """Anything with fit / predict_proba / classes_ works (DESIGN §2), no BaseEstimator needed."""
    import numpy as np

    from labelwise.strategies import Candidates, get_strategy

    class Duck:
        classes_ = np.array([0, 1])

        def fit(self, X, y):
            return self

        def predict_proba(self, X):
            p = np.asarray(X)[:, :1]
            return np.hstack([1 - p, p])

    X = np.array([[0.9], [0.5], [0.1], [0.6]])
    q = get_strategy("entropy").select(Candidates(X=X, model=Duck()), 2, random_state=0)
    # entropies: 0.5 is the maximum, then 0.6, so positions 1 then 3
    assert q.idx.tolist() == [1, 3]

    class UnfittedDuck(Duck):
        classes_ = None

    import pytest

    from labelwise.errors import NotFittedError

    with pytest.raises(NotFittedError):
        get_strategy("entropy").select(Candidates(X=X, model=UnfittedDuck()), 2)
