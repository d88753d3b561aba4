"""Expected model change: expected gradient length (exact, linear models) and BADGE.

- ``"egl"`` (Settles, Craven & Ray, 2008): the expected norm of the loss gradient a label would
  cause, ``EGL(x) = sum_y p(y|x) ||grad_w loss(x, y)||``. For a softmax-linear model trained with
  cross-entropy it has a closed form (see :func:`expected_gradient_length`), so the score is exact
  and costs one pass over the pool.
- ``"badge"`` (Ash et al., 2020): k-means++ seeding over gradient embeddings
  ``g_i = (p_i - onehot(argmax p_i)) ⊗ e_i``, which mixes informativeness (the norm of ``g``)
  with diversity (the spread of the chosen ``g``). ``g`` is never materialised: inner products are
  ``<g_i, g_j> = <a_i, a_j> <e_i, e_j>`` with ``a = p - onehot``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.errors import LabelwiseError, ModelInterfaceError
from labelwise.models import embed
from labelwise.select import RunningTopK
from labelwise.strategies.base import Candidates, Strategy
from labelwise.strategies.registry import register
from labelwise.tasks import ALL_TASKS, SINGLE_LABEL, TaskType

__all__ = [
    "BADGE",
    "ExpectedGradientLength",
    "badge_seeding",
    "expected_gradient_length",
    "gradient_embedding_factors",
    "gradient_embedding_sq_distances",
]


# --------------------------------------------------------------------------- pure functions


def expected_gradient_length(
    proba: np.ndarray, x_sq_norm: np.ndarray, binary_single_vector: bool = False
) -> np.ndarray:
    """Exact expected gradient length of the cross-entropy loss of a softmax-linear model.

    For true label ``y`` the gradient w.r.t. the weights of class ``c`` is
    ``(p_c - [c = y]) x_aug`` (``x_aug`` includes the intercept's constant), so
    ``||grad_y||^2 = ||x_aug||^2 sum_c (p_c - [c = y])^2 = ||x_aug||^2 (||p||^2 - 2 p_y + 1)`` and

    ``EGL(x) = ||x_aug|| sum_y p_y sqrt(||p||^2 - 2 p_y + 1)``.

    A binary model with a single weight vector (scikit-learn's binary ``LogisticRegression``,
    sigmoid of ``w.x``) has gradient ``(p_1 - y) x_aug``, so ``EGL = ||x_aug|| 2 p_1 (1 - p_1)``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    x_sq_norm : ndarray of shape (n_samples,)
        Squared norm of the augmented inputs, ``||x||^2 + 1`` with an intercept.
    binary_single_vector : bool, default=False
        Use the one-weight-vector binary form (``proba`` must then have 2 columns).

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64
        Non-negative; 0 for a certain prediction.
    """
    x_norm = np.sqrt(np.asarray(x_sq_norm, dtype=np.float64))
    if binary_single_vector:
        p1 = proba[:, 1].astype(np.float64)
        return x_norm * 2 * p1 * (1 - p1)
    # float64 for this chunk only: ||p||^2 - 2 p_y + 1 cancels badly in float32 when p_y ~ 1
    p = proba.astype(np.float64)
    sq = np.einsum("ij,ij->i", p, p)
    per_label = np.sqrt(np.maximum(sq[:, None] - 2 * p + 1, 0))
    return x_norm * np.einsum("ij,ij->i", p, per_label)


def gradient_embedding_factors(proba: np.ndarray, multilabel: bool = False) -> np.ndarray:
    """The label factor ``a = p - onehot(y_hat)`` of BADGE's gradient embedding.

    ``y_hat`` is the most likely class (ties to the lowest index); for multi-label ``proba`` it
    is ``p > 0.5`` per label (the gradient of each label's binary cross-entropy).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    multilabel : bool, default=False

    Returns
    -------
    a : ndarray of shape (n_samples, n_classes)
        ``g_i = a_i ⊗ e_i``, so ``||g_i|| = ||a_i|| ||e_i||``.
    """
    a = np.array(proba, copy=True)
    if multilabel:
        a -= proba > 0.5
    else:
        a[np.arange(a.shape[0]), proba.argmax(axis=1)] -= 1
    return a


def gradient_embedding_sq_distances(
    a: np.ndarray, e: Any, a_j: np.ndarray, e_j: Any, g_sq: np.ndarray, g_sq_j: float
) -> np.ndarray:
    """Squared distances ``||g_i - g_j||^2`` from one point ``j`` without forming ``g``.

    ``||g_i - g_j||^2 = ||g_i||^2 + ||g_j||^2 - 2 <a_i, a_j> <e_i, e_j>``.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_classes)
    e : ndarray or sparse matrix of shape (n_samples, n_dims)
    a_j : ndarray of shape (n_classes,)
    e_j : ndarray of shape (n_dims,) or sparse matrix of shape (1, n_dims)
    g_sq : ndarray of shape (n_samples,)
        ``||a_i||^2 ||e_i||^2``.
    g_sq_j : float

    Returns
    -------
    sq_dist : ndarray of shape (n_samples,)
        Clipped at 0 (rounding).
    """
    if sp.issparse(e):
        ee = np.asarray((e @ e_j.T).todense()).ravel()
    else:
        ee = e @ e_j
    d = g_sq + g_sq_j - 2 * (a @ a_j).astype(np.float64) * ee
    return np.maximum(d, 0)


def badge_seeding(
    a: np.ndarray, e: Any, k: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding over gradient embeddings ``g_i = a_i ⊗ e_i``.

    As in the authors' code, the first centre is the point with the largest gradient norm; every
    next one is drawn with probability proportional to its squared distance to the nearest chosen
    centre (D² sampling). If every remaining point coincides with a centre, the next is drawn
    uniformly from those not yet chosen, so the ``k`` positions are always distinct. Cost
    ``O(k n (n_classes + n_dims))`` time and ``O(n)`` extra memory.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_classes)
        Label factors from :func:`gradient_embedding_factors`.
    e : ndarray or sparse matrix of shape (n_samples, n_dims)
        Embeddings.
    k : int
        ``1 <= k <= n_samples``.
    rng : numpy RandomState

    Returns
    -------
    idx : ndarray of shape (k,)
        Positions in pick order.
    scores : ndarray of shape (k,)
        Distance of each pick to the nearest earlier pick in gradient space (the first: its
        gradient norm).
    """
    from sklearn.utils.extmath import row_norms  # here, not at the top: keeps imports light

    n = a.shape[0]
    g_sq = np.einsum("ij,ij->i", a, a).astype(np.float64) * row_norms(e, squared=True)
    first = int(np.argmax(g_sq))
    idx = [first]
    scores = [float(np.sqrt(g_sq[first]))]
    chosen = np.zeros(n, dtype=bool)
    chosen[first] = True
    min_d = gradient_embedding_sq_distances(a, e, a[first], e[first], g_sq, g_sq[first])
    for _ in range(1, k):
        weights = np.where(chosen, 0.0, min_d)
        total = weights.sum()
        if total > 0 and np.isfinite(total):
            nxt = int(rng.choice(n, p=weights / total))
        else:  # all remaining points coincide with a centre
            nxt = int(rng.choice(np.flatnonzero(~chosen)))
        idx.append(nxt)
        scores.append(float(np.sqrt(min_d[nxt])))
        chosen[nxt] = True
        d = gradient_embedding_sq_distances(a, e, a[nxt], e[nxt], g_sq, g_sq[nxt])
        np.minimum(min_d, d, out=min_d)
    return np.asarray(idx, dtype=np.int64), np.asarray(scores, dtype=np.float64)


# --------------------------------------------------------------------------- helpers


def _linear_head(model: Any) -> tuple[Any, Any]:
    """``(transform, head)``: how to map X into the linear model's inputs, and the model."""
    from sklearn.pipeline import Pipeline  # here, not at the top: keeps imports light

    if isinstance(model, Pipeline):
        head = model.steps[-1][1]
        front = model[:-1]
        return front.transform, head
    return None, model


def _intercept_sq(head: Any) -> float:
    """The squared constant ``x_aug`` carries for the intercept (0 without one)."""
    if not getattr(head, "fit_intercept", False):
        return 0.0
    if getattr(head, "solver", None) == "liblinear":
        return float(getattr(head, "intercept_scaling", 1.0)) ** 2
    return 1.0


def _embedding_rows(candidates: Candidates, X_chunk: Any) -> Any:
    e = embed(candidates.model, X_chunk)
    if sp.issparse(e):
        return e.tocsr().astype(np.float32)
    return np.asarray(e, dtype=np.float32)


# --------------------------------------------------------------------------- strategies


@register
class ExpectedGradientLength(Strategy):
    """Expected gradient length, exact for softmax-linear models such as ``LogisticRegression``.

    The model (or the last step of a ``Pipeline``) must expose ``coef_``; with a pipeline the
    norm is taken on the inputs of the last step. A one-row ``coef_`` with two classes uses the
    single-vector binary form. For other linear models with ``coef_`` and ``predict_proba``
    (e.g. ``SGDClassifier(loss="log_loss")``, one-vs-rest for 3+ classes) the softmax form is used
    as an approximation.

    Notes
    -----
    Measured (issue 13, logistic regression): loses to random on a 10-class image set, labels
    to 95% 0.81x [0.68, 0.95] random's efficiency. Rerun on digits (10 seeds,
    ``benchmarks/label_efficiency.md``): 0.96x [0.87, 1.06], a tie.
    """

    name = "egl"
    description = "Expected gradient length, exact for logistic regression (needs coef_)."
    task_types = SINGLE_LABEL

    def _select(self, candidates, k, rng):
        from sklearn.utils.extmath import row_norms  # here, not at the top: keeps imports light

        transform, head = _linear_head(candidates.model)
        coef = getattr(head, "coef_", None)
        if coef is None:
            raise ModelInterfaceError(
                f"strategy 'egl' needs a linear model with coef_ (e.g. LogisticRegression); "
                f"{type(head).__name__} has none. For models with embeddings or any other "
                "model with predict_proba, use 'badge' (expected model change via gradient "
                "embeddings)."
            )
        single = np.shape(coef)[0] == 1
        icpt = _intercept_sq(head)
        best = RunningTopK(k, random_state=rng)
        for start, X_block, keep in candidates.iter_blocks():
            proba = candidates.predict_proba(X_block)
            Z = X_block if transform is None else transform(X_block)
            x_sq = row_norms(Z, squared=True) + icpt
            if keep is not None:
                proba, x_sq = proba[keep], x_sq[keep]
            scores = expected_gradient_length(
                proba, x_sq, binary_single_vector=single and proba.shape[1] == 2
            )
            best.push(scores, start)
        return best.result()


@register
class BADGE(Strategy):
    """Batch Active learning by Diverse Gradient Embeddings (Ash et al., 2020).

    Scores every candidate by its gradient-embedding norm ``||a_i|| ||e_i||`` in chunks, keeps
    the top ``prefilter`` (default ``10 * k``), then runs k-means++ seeding
    (:func:`badge_seeding`) on those only. ``e_i`` is ``model.embed(X)`` when the model has it
    (e.g. the penultimate layer of a network), else the features. Works with any model that has
    ``predict_proba``; the embedding is exact for the last layer of a softmax-linear model.

    Parameters
    ----------
    prefilter : int, optional
        Candidates kept for the seeding; ``None`` means ``10 * k``. Must be ``>= k``.

    Notes
    -----
    Memory beyond a chunk is ``O(prefilter * (n_dims + n_classes))``; time is one pass of
    ``predict_proba`` and ``embed`` plus ``O(k * prefilter * (n_dims + n_classes))``.
    """

    name = "badge"
    description = (
        "BADGE: k-means++ over gradient embeddings (expected model change approximation, "
        "diverse batches)."
    )
    task_types = ALL_TASKS

    def __init__(self, *, prefilter: int | None = None) -> None:
        self.prefilter = prefilter

    def _n_keep(self, k: int, n: int) -> int:
        m = self.prefilter
        if m is None:
            return min(n, 10 * k)
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < k:
            raise LabelwiseError(
                f"badge prefilter must be an integer >= the batch size ({k}); got {m!r}. "
                "Leave it unset for 10 * k."
            )
        return min(n, int(m))

    def _factors(self, candidates: Candidates, X_chunk: Any) -> tuple[np.ndarray, Any]:
        proba = candidates.predict_proba(X_chunk).astype(np.float32, copy=False)
        a = gradient_embedding_factors(proba, candidates.task_type == TaskType.MULTILABEL)
        return a, _embedding_rows(candidates, X_chunk)

    def _select(self, candidates, k, rng):
        from sklearn.utils.extmath import row_norms  # here, not at the top: keeps imports light

        m = self._n_keep(k, candidates.n)
        if m < candidates.n:
            best = RunningTopK(m, random_state=rng)
            for start, X_block, rows in candidates.iter_blocks():
                a, e = self._factors(candidates, X_block)
                g_sq = np.einsum("ij,ij->i", a, a) * row_norms(e, squared=True)
                best.push(g_sq if rows is None else g_sq[rows], start)
            keep, _ = best.result()
            keep = np.sort(keep)  # read rows in pool order
        else:
            keep = np.arange(candidates.n, dtype=np.int64)
        parts = [
            self._factors(candidates, candidates.take(keep[s : s + candidates.chunk_size]))
            for s in range(0, keep.shape[0], candidates.chunk_size)
        ]
        a = np.concatenate([p[0] for p in parts])
        e = sp.vstack([p[1] for p in parts]).tocsr() if sp.issparse(parts[0][1]) else None
        if e is None:
            e = np.concatenate([p[1] for p in parts])
        local, scores = badge_seeding(a, e, k, rng)
        return keep[local], scores
