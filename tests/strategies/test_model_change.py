"""Expected model change: exact EGL for logistic regression, and BADGE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import row_norms

from labelwise.errors import (
    LabelwiseError,
    ModelInterfaceError,
    NotFittedError,
    UnsupportedTaskError,
)
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.model_change import (
    badge_seeding,
    expected_gradient_length,
    gradient_embedding_factors,
    gradient_embedding_sq_distances,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def digits_lr(digits):
    X, y = digits
    return LogisticRegression(max_iter=300).fit(X[:300], y[:300])


def _brute_force_egl(proba, X, fit_intercept=True, single_vector=False):
    """EGL from explicit per-label gradient matrices."""
    out = np.empty(X.shape[0])
    for i, (p, x) in enumerate(zip(proba, X, strict=True)):
        x_aug = np.append(x, 1.0) if fit_intercept else x
        total = 0.0
        for y in range(p.shape[0]):
            if single_vector:  # one weight vector: d loss / d w = (p_1 - y) x_aug
                grad = (p[1] - y) * x_aug
            else:  # row c of the gradient: (p_c - [c == y]) x_aug
                grad = np.outer(p - np.eye(p.shape[0])[y], x_aug)
            total += p[y] * np.linalg.norm(grad)
        out[i] = total
    return out


# --------------------------------------------------------------------------- EGL


def test_egl_binary_logistic_regression_by_hand():
    # w = 2, b = -1, x = 0.5: z = 2*0.5 - 1 = 0 -> p = 0.5
    # ||x_aug||^2 = 0.5^2 + 1 = 1.25;  EGL = sqrt(1.25) * 2 * 0.5 * 0.5 = 0.5590169...
    model = LogisticRegression()
    model.coef_, model.intercept_, model.classes_ = np.array([[2.0]]), np.array([-1.0]), [0, 1]
    model.classes_ = np.array([0, 1])
    x = np.array([[0.5]])
    p = model.predict_proba(x)
    np.testing.assert_allclose(p, [[0.5, 0.5]])
    expected = math.sqrt(1.25) * 2 * 0.5 * 0.5
    assert expected == pytest.approx(0.5590169943749475)
    got = expected_gradient_length(p, np.array([1.25]), binary_single_vector=True)
    assert got[0] == pytest.approx(expected)
    # explicit gradients from coef_: y=0 -> (0.5 - 0) [0.5, 1], y=1 -> (0.5 - 1) [0.5, 1]
    assert _brute_force_egl(p, x, single_vector=True)[0] == pytest.approx(expected)
    q = get_strategy("egl").select(Candidates(x, model=model), 1)
    assert q.scores[0] == pytest.approx(expected)


def test_egl_binary_fitted_on_breast_cancer_matches_explicit_gradients():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = LogisticRegression(max_iter=500).fit(X[:200], y[:200])
    assert model.coef_.shape[0] == 1  # sklearn's binary model: one weight vector
    pool = X[200:260]
    proba = model.predict_proba(pool)
    # recompute p from coef_ to be sure which parameterisation the gradient belongs to
    z = pool @ model.coef_[0] + model.intercept_[0]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z)))
    brute = _brute_force_egl(proba, pool, single_vector=True)
    q = get_strategy("egl").select(Candidates(pool, model=model), 60)
    np.testing.assert_allclose(q.scores, brute[q.idx], rtol=1e-9)
    np.testing.assert_array_equal(np.sort(q.idx), np.arange(60))


def test_egl_multinomial_by_hand():
    # p = [0.5, 0.25, 0.25], ||x_aug||^2 = 4, ||p||^2 = 0.375
    # y=0: sqrt(0.375 - 1 + 1) = 0.612372; y=1, y=2: sqrt(0.375 - 0.5 + 1) = 0.935414
    # EGL = 2 * (0.5 * 0.612372 + 2 * 0.25 * 0.935414) = 1.547786
    p = np.array([[0.5, 0.25, 0.25]])
    expected = 2 * (0.5 * math.sqrt(0.375) + 0.5 * math.sqrt(0.875))
    assert expected == pytest.approx(1.547786, abs=1e-6)
    assert expected_gradient_length(p, np.array([4.0]))[0] == pytest.approx(expected)


def test_egl_two_column_softmax_is_sqrt2_times_single_vector():
    # softmax with two weight vectors: sum_c (p_c - [c=y])^2 = 2 p_(1-y)^2 -> EGL = 2 sqrt2 p0 p1
    p = np.array([[0.3, 0.7], [0.9, 0.1]])
    x_sq = np.array([2.0, 5.0])
    np.testing.assert_allclose(
        expected_gradient_length(p, x_sq),
        math.sqrt(2) * expected_gradient_length(p, x_sq, binary_single_vector=True),
    )


def test_egl_multinomial_digits_matches_brute_force(digits, digits_lr):
    X, _ = digits
    pool = X[300:340]
    proba = digits_lr.predict_proba(pool)
    brute = _brute_force_egl(proba, pool)
    np.testing.assert_allclose(
        expected_gradient_length(proba, row_norms(pool, squared=True) + 1.0), brute, rtol=1e-6
    )
    q = get_strategy("egl").select(Candidates(pool, model=digits_lr, chunk_size=16), 40)
    np.testing.assert_allclose(q.scores, brute[q.idx], rtol=1e-5)
    assert np.all(np.diff(q.scores) <= 0)


def test_softmax_gradient_formula_matches_finite_differences():
    # d/dW of -log softmax(W x + b)_y is (p - onehot(y)) x^T (and (p - onehot(y)) for b)
    rng = np.random.default_rng(0)
    W, b, x, y = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4), 2

    def loss(W, b):
        z = W @ x + b
        return -(z[y] - np.log(np.exp(z).sum()))

    p = np.exp(W @ x + b) / np.exp(W @ x + b).sum()
    analytic = np.outer(p - np.eye(3)[y], np.append(x, 1.0))
    eps, numeric = 1e-6, np.empty((3, 5))
    for c in range(3):
        for j in range(5):
            dW, db = np.zeros_like(W), np.zeros_like(b)
            if j < 4:
                dW[c, j] = eps
            else:
                db[c] = eps
            numeric[c, j] = (loss(W + dW, b + db) - loss(W - dW, b - db)) / (2 * eps)
    np.testing.assert_allclose(numeric, analytic, atol=1e-7)


def test_egl_uses_pipeline_inputs_and_no_intercept(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), LogisticRegression(fit_intercept=False, max_iter=300))
    pipe.fit(X[:300], y[:300])
    pool = X[300:330]
    Z = pipe[:-1].transform(pool)
    brute = _brute_force_egl(pipe.predict_proba(pool), Z, fit_intercept=False)
    q = get_strategy("egl").select(Candidates(pool, model=pipe), 30)
    np.testing.assert_allclose(q.scores, brute[q.idx], rtol=1e-5)


def test_egl_sparse_features(digits, digits_lr):
    X, _ = digits
    pool = X[300:340]
    dense = get_strategy("egl").select(Candidates(pool, model=digits_lr), 5, random_state=0)
    sparse = get_strategy("egl").select(
        Candidates(sp.csr_matrix(pool), model=digits_lr), 5, random_state=0
    )
    np.testing.assert_array_equal(dense.idx, sparse.idx)
    np.testing.assert_allclose(dense.scores, sparse.scores, rtol=1e-5)


def test_egl_model_without_coef(digits):
    X, y = digits
    nb = GaussianNB().fit(X[:100], y[:100])
    with pytest.raises(ModelInterfaceError, match="badge"):
        get_strategy("egl").select(Candidates(X[100:120], model=nb), 2)


def test_egl_unfitted_model(digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        get_strategy("egl").select(Candidates(X[:20], model=LogisticRegression()), 2)
    with pytest.raises(NotFittedError):
        get_strategy("egl").select(Candidates(X[:20]), 2)


def test_egl_rejects_multilabel(digits, digits_lr):
    X, _ = digits
    with pytest.raises(UnsupportedTaskError, match="multilabel"):
        get_strategy("egl").select(Candidates(X[:20], model=digits_lr, task_type="multilabel"), 2)


# --------------------------------------------------------------------------- BADGE math


def test_gradient_embedding_factors_by_hand():
    # argmax 0: a = [0.7 - 1, 0.2, 0.1] = [-0.3, 0.2, 0.1]; a tie goes to the lowest index
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(gradient_embedding_factors(p), [[-0.3, 0.2, 0.1], [-0.6, 0.4, 0.2]])
    # multi-label: y_hat = p > 0.5 per label -> [0.7 - 1, 0.4 - 0, 0.5 - 0]
    np.testing.assert_allclose(
        gradient_embedding_factors(np.array([[0.7, 0.4, 0.5]]), multilabel=True),
        [[-0.3, 0.4, 0.5]],
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(2, 5), st.integers(1, 6), st.integers(0, 2**16))
def test_gram_trick_distances_equal_brute_force(n, c, d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, c))
    e = rng.normal(size=(n, d))
    g = np.einsum("ic,id->icd", a, e).reshape(n, -1)  # materialised, for the check only
    g_sq = (g * g).sum(axis=1)
    for j in range(n):
        brute = ((g - g[j]) ** 2).sum(axis=1)
        fast = gradient_embedding_sq_distances(a, e, a[j], e[j], g_sq, g_sq[j])
        np.testing.assert_allclose(fast, brute, atol=1e-9 * (1 + brute.max()))
        fast_sparse = gradient_embedding_sq_distances(
            a, sp.csr_matrix(e), a[j], sp.csr_matrix(e[j]), g_sq, g_sq[j]
        )
        np.testing.assert_allclose(fast_sparse, brute, atol=1e-9 * (1 + brute.max()))


def test_badge_seeding_first_is_largest_norm_and_picks_are_distinct():
    rng = np.random.default_rng(1)
    a, e = rng.normal(size=(50, 3)), rng.normal(size=(50, 4))
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(e, axis=1)
    idx, scores = badge_seeding(a, e, 20, np.random.RandomState(0))
    assert idx[0] == np.argmax(norms)
    assert scores[0] == pytest.approx(norms.max())
    assert len(set(idx.tolist())) == 20


def test_badge_seeding_identical_points_still_distinct():
    a, e = np.ones((6, 2)), np.ones((6, 3))  # all six gradients coincide
    idx, scores = badge_seeding(a, e, 6, np.random.RandomState(0))
    assert sorted(idx.tolist()) == list(range(6))
    np.testing.assert_allclose(scores[1:], 0.0, atol=1e-6)


# --------------------------------------------------------------------------- BADGE strategy


def _norms(model, X):
    p = model.predict_proba(X)
    return np.linalg.norm(gradient_embedding_factors(p), axis=1) * np.linalg.norm(X, axis=1)


@pytest.mark.parametrize("prefilter", [None, 25, 10_000])
def test_badge_distinct_reproducible_first_is_largest_norm(prefilter, digits, digits_lr):
    X, _ = digits
    pool = X[300:800]
    strat = get_strategy("badge", prefilter=prefilter)
    q = strat.select(Candidates(pool, model=digits_lr, chunk_size=64), 10, random_state=7)
    assert q.idx.shape == (10,) and len(set(q.idx.tolist())) == 10
    assert q.idx.min() >= 0 and q.idx.max() < 500
    norms = _norms(digits_lr, pool)
    assert q.idx[0] == np.argmax(norms)
    assert q.scores[0] == pytest.approx(norms.max(), rel=1e-4)
    again = strat.select(Candidates(pool, model=digits_lr, chunk_size=64), 10, random_state=7)
    np.testing.assert_array_equal(q.idx, again.idx)
    if prefilter == 25:  # picks come from the 25 largest gradient norms
        assert set(q.idx.tolist()) <= set(np.argsort(-norms)[:25].tolist())


def test_badge_never_picks_a_duplicate_while_distinct_points_remain(digits, digits_lr):
    X, _ = digits
    base = X[300:340]
    pool = np.concatenate([base, base])  # every row twice
    q = get_strategy("badge").select(Candidates(pool, model=digits_lr), 15, random_state=0)
    assert len(set((q.idx % 40).tolist())) == 15


def test_badge_positions_respect_row_idx(digits, digits_lr):
    X, _ = digits
    rows = np.arange(300, 500)[::-1].copy()
    q = get_strategy("badge").select(Candidates(X, model=digits_lr, row_idx=rows), 5)
    assert q.idx[0] == np.argmax(_norms(digits_lr, X[rows]))


def test_badge_uses_model_embed(digits):
    X, y = digits

    class Embedded(LogisticRegression):
        def embed(self, X):
            return np.asarray(X)[:, :3] * 0 + np.arange(1, 4)  # same embedding for every row

    model = Embedded(max_iter=300).fit(X[:300], y[:300])
    pool = X[300:400]
    q = get_strategy("badge").select(Candidates(pool, model=model), 3, random_state=0)
    a = gradient_embedding_factors(model.predict_proba(pool))
    # with a constant embedding the norm is ||a|| * ||(1, 2, 3)||
    assert q.idx[0] == np.argmax(np.linalg.norm(a, axis=1))
    assert q.scores[0] == pytest.approx(np.linalg.norm(a, axis=1).max() * math.sqrt(14), rel=1e-4)


def test_badge_sparse_features(digits, digits_lr):
    X, _ = digits
    pool = X[300:500]
    dense = get_strategy("badge").select(Candidates(pool, model=digits_lr), 5, random_state=0)
    sparse = get_strategy("badge").select(
        Candidates(sp.csr_matrix(pool), model=digits_lr), 5, random_state=0
    )
    assert dense.idx[0] == sparse.idx[0]
    assert len(set(sparse.idx.tolist())) == 5


def test_badge_multilabel(digits):
    X, y = digits
    Y = np.column_stack([y % 2, y > 4]).astype(int)
    model = MultiOutputClassifier(LogisticRegression(max_iter=300)).fit(X[:300], Y[:300])
    pool = X[300:500]
    q = get_strategy("badge").select(
        Candidates(pool, model=model, task_type="multilabel"), 5, random_state=0
    )
    p = np.column_stack([m.predict_proba(pool)[:, 1] for m in model.estimators_])
    a = gradient_embedding_factors(p, multilabel=True)
    assert q.idx[0] == np.argmax(np.linalg.norm(a, axis=1) * np.linalg.norm(pool, axis=1))


@pytest.mark.parametrize("prefilter", [3, 2.5, True])
def test_badge_bad_prefilter(prefilter, digits, digits_lr):
    X, _ = digits
    with pytest.raises(LabelwiseError, match="prefilter"):
        get_strategy("badge", prefilter=prefilter).select(
            Candidates(X[300:400], model=digits_lr), 5
        )


def test_badge_needs_a_fitted_model(digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        get_strategy("badge").select(Candidates(X[:20]), 2)
