"""Combination strategies: cost weighting, information density, uncertainty/representative mix,
class-balanced batches.

Each combines a *base* informativeness score (any strategy that scores items from their
probabilities: ``"entropy"``, ``"margin"``, ``"least_confidence"``, ...) with something else:

- ``cost_weighted``: per-class costs tilt the batch toward high-stakes classes (fraud).
- ``information_density``: informativeness times representativeness (Settles & Craven, 2008),
  with representativeness the mean cosine similarity of an item to the pool, computed exactly in
  ``O(N d)`` (see :func:`mean_cosine_similarity`).
- ``uncertainty_mix``: ``ceil(uncertain_fraction * k)`` most uncertain items plus
  representative items (nearest to k-means centroids) for the rest of the batch.
- ``class_balanced``: the batch is shared across predicted classes, the most uncertain items
  of each class first, so a rare class (0.1 % fraud) is not drowned out.

Everything is scored chunk by chunk over the candidates; nothing ``N x N`` is ever built.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from labelwise.errors import LabelMismatchError, LabelwiseError
from labelwise.select import RunningTopK
from labelwise.strategies import uncertainty as _uncertainty  # noqa: F401  (registers the bases)
from labelwise.strategies.base import Candidates, ScoreStrategy, Strategy
from labelwise.strategies.registry import get_strategy, register
from labelwise.tasks import ALL_TASKS, SINGLE_LABEL, TaskType

__all__ = [
    "ClassBalanced",
    "CostWeighted",
    "InformationDensity",
    "UncertaintyMix",
    "allocate_batch",
    "cost_weighted_scores",
    "density_weighted_scores",
    "expected_cost_weight",
    "inverse_row_norms",
    "mean_cosine_similarity",
    "mean_unit_vector",
    "split_batch",
]

# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


def expected_cost_weight(
    proba: np.ndarray, costs: np.ndarray, *, multilabel: bool = False
) -> np.ndarray:
    """Expected cost of each item's label, divided by the largest possible expected cost.

    Single-label: ``(proba @ costs) / max(costs)``. Multi-label (labels independent, an item may
    carry several): ``(proba @ costs) / sum(costs)``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities (multi-label: positive probability per label).
    costs : ndarray of shape (n_classes,)
        Non-negative cost of each class (of missing each label), not all zero.
    multilabel : bool

    Returns
    -------
    weight : ndarray of shape (n_samples,)
        In ``[0, 1]``; with costs ``[1, 1, 10]``, ``[0.8, 0, 0.2] -> (0.8 + 2) / 10 = 0.28``.
    """
    costs = np.asarray(costs, dtype=proba.dtype)
    top = costs.sum() if multilabel else costs.max()
    return (proba @ (costs / top)).astype(proba.dtype, copy=False)


def cost_weighted_scores(
    proba: np.ndarray,
    costs: np.ndarray,
    base_scores: np.ndarray,
    *,
    multilabel: bool = False,
) -> np.ndarray:
    """Base informativeness times the normalised expected cost of the item.

    ``score_i = u_i * (sum_c p_ic cost_c) / max_c cost_c``: among equally uncertain items the one
    more likely to belong to a costly class comes first, and an item that is surely cheap scores
    ``u_i * min(cost) / max(cost)``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    costs : ndarray of shape (n_classes,)
        Non-negative, not all zero; aligned with the columns of ``proba``.
    base_scores : ndarray of shape (n_samples,)
        Non-negative informativeness (e.g. entropy).
    multilabel : bool
        See :func:`expected_cost_weight`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        E.g. costs ``[1, 1, 10]``, ``proba [0.8, 0, 0.2]``: entropy
        ``-(0.8 ln 0.8 + 0.2 ln 0.2) = 0.5004`` times ``0.28`` gives ``0.1401``.
    """
    return base_scores * expected_cost_weight(proba, costs, multilabel=multilabel)


def inverse_row_norms(X: Any) -> np.ndarray:
    """``1 / |x_i|`` for each row, 0 for all-zero rows.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)

    Returns
    -------
    inv_norms : ndarray of shape (n_samples,)
        Float32 for float32 input, else float64. ``[3, 4] -> 0.2``.
    """
    if sp.issparse(X):
        sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    else:
        X = np.asarray(X)
        sq = np.einsum("ij,ij->i", X, X)
    dtype = X.dtype if X.dtype == np.float32 else np.float64
    norms = np.sqrt(sq.astype(dtype, copy=False))
    with np.errstate(divide="ignore"):
        return np.where(norms > 0, 1.0 / norms, 0.0).astype(dtype, copy=False)


def _unit_sum(X: Any, inv_norms: np.ndarray) -> np.ndarray:
    """Sum of the rows of ``X`` scaled by ``inv_norms`` (one matrix-vector product), float64."""
    if sp.issparse(X):
        return np.asarray(X.T @ inv_norms, dtype=np.float64).ravel()
    return np.asarray(inv_norms @ X, dtype=np.float64)


def mean_unit_vector(X: Any) -> np.ndarray:
    """Mean of the L2-normalised rows of ``X`` (all-zero rows count as zero vectors).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)

    Returns
    -------
    mean : ndarray of shape (n_features,), float64
        Rows ``[2, 0], [0, 3]`` -> ``[0.5, 0.5]``.
    """
    return _unit_sum(X, inverse_row_norms(X)) / X.shape[0]


def mean_cosine_similarity(
    X: Any, mean_unit: np.ndarray | None = None, *, inv_norms: np.ndarray | None = None
) -> np.ndarray:
    """Mean cosine similarity of each row to a reference set, in ``O(n d)``.

    Cosine similarity is bilinear in the unit vectors, so
    ``mean_j cos(x_i, x_j) = mean_j <x_i/|x_i|, x_j/|x_j|> = <x_i/|x_i|, mean_j x_j/|x_j|>``:
    the mean over the reference set of the similarities equals the similarity to the mean unit
    vector. This is exact (not an approximation) and needs no ``N x N`` matrix; compute
    ``mean_unit`` once over the pool (chunked, :func:`mean_unit_vector`) and score any chunk
    with one matrix-vector product, ``(X @ mean_unit) / |x_i|``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    mean_unit : ndarray of shape (n_features,), optional
        Mean unit vector of the reference set; default: that of ``X`` itself (the similarity of
        a row to itself, 1, is part of the mean, as in Settles & Craven's definition).
    inv_norms : ndarray of shape (n_samples,), optional
        :func:`inverse_row_norms` of ``X`` if already computed.

    Returns
    -------
    similarity : ndarray of shape (n_samples,)
        In ``[-1, 1]``; all-zero rows get 0. E.g. rows ``[1, 0], [0, 1], [1, 1]``: the first has
        similarities ``1, 0, 1/sqrt 2`` so its mean is ``(1 + 0.7071) / 3 = 0.5690``.
    """
    if inv_norms is None:
        inv_norms = inverse_row_norms(X)
    if mean_unit is None:
        mean_unit = _unit_sum(X, inv_norms) / X.shape[0]
    mu = np.asarray(mean_unit, dtype=inv_norms.dtype)
    return np.asarray(X @ mu).ravel() * inv_norms


def density_weighted_scores(
    informativeness: np.ndarray, similarity: np.ndarray, beta: float = 1.0
) -> np.ndarray:
    """Information density: ``informativeness * max(similarity, 0) ** beta``.

    Parameters
    ----------
    informativeness : ndarray of shape (n_samples,)
        Non-negative base scores.
    similarity : ndarray of shape (n_samples,)
        Mean similarity to the pool (:func:`mean_cosine_similarity`); negative means (possible
        with signed embeddings) are clipped to 0, i.e. treated as outliers.
    beta : float
        Weight of representativeness; 0 gives the base score back.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        E.g. informativeness ``ln 2 = 0.6931``, similarity ``0.5``, ``beta=2``: ``0.1733``.
    """
    return informativeness * np.maximum(similarity, 0.0) ** beta


def split_batch(k: int, uncertain_fraction: float) -> tuple[int, int]:
    """Sizes of the uncertain and representative parts of a batch of ``k``.

    Parameters
    ----------
    k : int
    uncertain_fraction : float in [0, 1]

    Returns
    -------
    n_uncertain, n_representative : int
        ``n_uncertain = ceil(uncertain_fraction * k)``: ``k=10, 0.7 -> (7, 3)``,
        ``k=1 -> (1, 0)``.
    """
    # round() first so that 0.7 * 10 = 7.000000000000001 does not become 8
    n_unc = min(k, math.ceil(round(uncertain_fraction * k, 9)))
    return n_unc, k - n_unc


def allocate_batch(k: int, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Share ``k`` picks across groups in proportion to ``weights``, never above ``capacity``.

    Water-filling: each round shares what is left among groups with spare room in proportion to
    their weights (largest-remainder rounding, ties to the lower index); a group that fills up
    drops out and its share goes to the others. Once groups of positive weight are full, what is
    still left is shared equally among zero-weight groups with room.

    Parameters
    ----------
    k : int
    weights : ndarray of shape (n_groups,)
        Non-negative.
    capacity : ndarray of shape (n_groups,)
        Items available in each group.

    Returns
    -------
    counts : ndarray of shape (n_groups,), int64
        Sums to ``min(k, capacity.sum())``. E.g. ``k=10``, equal weights, capacity
        ``[1, 100, 100]``: ``[1, 5, 4]`` (shares 3.33 each; group 0 takes its 1, the other two
        split 9 as 4.5 + 4.5, the tie going to the lower index).
    """
    weights = np.asarray(weights, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    counts = np.zeros(weights.shape[0], dtype=np.int64)
    remaining = int(min(k, capacity.sum()))
    for w in (weights, np.ones_like(weights) * (weights == 0)):
        while remaining > 0:
            active = np.flatnonzero((counts < capacity) & (w > 0))
            if active.shape[0] == 0:
                break
            share = remaining * w[active] / w[active].sum()
            alloc = np.floor(share).astype(np.int64)
            extra = remaining - int(alloc.sum())
            if extra > 0:
                frac = share - alloc
                order = np.lexsort((np.arange(active.shape[0]), -frac))
                alloc[order[:extra]] += 1
            alloc = np.minimum(alloc, capacity[active] - counts[active])
            counts[active] += alloc
            remaining -= int(alloc.sum())
    return counts


# --------------------------------------------------------------------------------------------
# Parameter checks and helpers (behind the boundary)
# --------------------------------------------------------------------------------------------


def _resolve_base(base: Any, owner: str) -> ScoreStrategy:
    strat = get_strategy(base)  # UnknownStrategyError lists the valid names
    if not isinstance(strat, ScoreStrategy) or strat.needs - {"model"}:
        raise LabelwiseError(
            f"{owner}: base {getattr(strat, 'name', base)!r} does not score items from their "
            "probabilities alone; use an uncertainty strategy such as 'entropy', 'margin' or "
            "'least_confidence'."
        )
    return strat


def _scorer(base: ScoreStrategy, task_type: TaskType, *, non_negative: bool = True):
    """``proba -> scores`` of ``base`` for ``task_type``; shifted to be non-negative (for
    products with weights) unless ``non_negative=False``."""
    base.check_task(task_type)
    base_score = base.scorer(task_type)
    if not non_negative:
        return base_score
    floor = base.score_floor

    def score(proba: np.ndarray) -> np.ndarray:
        s = base_score(proba)
        if floor:
            return s - floor
        if s.shape[0] and float(s.min()) < -1e-6:
            raise LabelwiseError(
                f"base strategy {base.name!r} gave negative scores; combinations multiply "
                "scores by weights and need non-negative ones. Use 'entropy', 'margin' or "
                "'least_confidence' as base."
            )
        return np.maximum(s, 0.0)

    return score


def _check_weights(values: Any, what: str) -> Any:
    """Check per-class values (mapping or sequence): finite, non-negative, not all zero."""
    if values is None:
        return None
    raw = list(values.values()) if isinstance(values, Mapping) else values
    if isinstance(raw, str | bytes) or np.ndim(raw) != 1:
        raise LabelwiseError(
            f"{what} must be a mapping of class label to number, or a sequence aligned with "
            f"model.classes_; got {values!r}."
        )
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise LabelwiseError(f"{what} values must be numbers; got {values!r}.") from None
    if arr.shape[0] == 0:
        raise LabelwiseError(f"{what} is empty; give a value per class or leave it as None.")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise LabelwiseError(
            f"{what} must be finite and non-negative; got {values!r}. Use 0 for a class that "
            "does not matter and larger numbers for classes that matter more."
        )
    if isinstance(values, Mapping):
        return dict(values)
    if not arr.any():
        raise LabelwiseError(f"{what} are all zero; at least one class needs a positive value.")
    return list(raw)


def _column_labels(model: Any, n_columns: int, task_type: TaskType) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        try:
            arr = np.asarray(classes)
        except ValueError:  # ragged (multi-output with different label sets)
            arr = None
        if arr is not None and arr.ndim == 1 and arr.shape[0] == n_columns:
            return arr
    if task_type == TaskType.MULTILABEL:
        return np.arange(n_columns)
    raise LabelMismatchError(
        f"the model's classes_ ({classes!r}) do not match the {n_columns} probability columns; "
        "fit the model on the label set its predict_proba returns."
    )


def _per_class(values: Any, labels: np.ndarray, what: str, default: float = 1.0) -> np.ndarray:
    """Per-column values from a mapping (label -> value; missing labels get ``default``) or a
    sequence aligned with ``labels``."""
    n = labels.shape[0]
    if values is None:
        return np.ones(n)
    names = labels.tolist()
    if isinstance(values, Mapping):
        pos = {c: i for i, c in enumerate(names)}
        unknown = [key for key in values if key not in pos]
        if unknown:
            raise LabelMismatchError(
                f"{what} names labels {unknown!r} that are not among the model's classes "
                f"{names!r}; key {what} by those labels, or pass a sequence aligned with "
                "model.classes_."
            )
        out = np.full(n, float(default))
        for key, value in values.items():
            out[pos[key]] = float(value)
    else:
        out = np.asarray(values, dtype=np.float64)
        if out.shape[0] != n:
            raise LabelMismatchError(
                f"{what} has {out.shape[0]} values but the model has {n} classes {names!r}; "
                "give one value per class, in the order of model.classes_."
            )
    if not out.any():
        raise LabelwiseError(
            f"{what} give every class of {names!r} zero; at least one needs a positive value."
        )
    return out


def _iter_embedding_blocks(
    candidates: Candidates,
) -> Iterator[tuple[int, Any, np.ndarray | None]]:
    """Yield ``(start, block, sel)`` over the embeddings (features when none) of the candidates.

    ``block[sel]`` (``block`` itself when ``sel`` is None) are the rows of candidates
    ``start:start + chunk``. When those candidates are a sorted, mostly dense run of the pool,
    ``block`` is a contiguous slice (a view, no copy of a memory map) and ``sel`` picks from it.
    """
    source = candidates.X if candidates.embeddings is None else candidates.embeddings
    step = candidates.chunk_size
    for start in range(0, candidates.n, step):
        stop = min(start + step, candidates.n)
        if candidates.row_idx is None:
            yield start, source[start:stop], None
            continue
        rows = candidates.row_idx[start:stop]
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo <= 2 * rows.shape[0] and np.all(rows[1:] > rows[:-1]):
            yield start, source[lo:hi], rows - lo
        else:
            yield start, source[rows], None


def _seed(rng: np.random.RandomState) -> int:
    return int(rng.randint(np.iinfo(np.int32).max))


def _check_fraction(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise LabelwiseError(f"{what} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def _check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise LabelwiseError(f"{what} must be a positive integer; got {value!r}.")
    return int(value)


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@register
class CostWeighted(Strategy):
    """Uncertainty tilted toward costly classes: ``base score * normalised expected cost``.

    See :func:`cost_weighted_scores`. In a fraud pool (0.1 % positives) with
    ``class_costs={1: 100}``, an uncertain item that leans fraud outranks one equally uncertain
    that leans legitimate.

    Parameters
    ----------
    class_costs : mapping or sequence, optional
        Cost per class: a mapping of class label (as in ``model.classes_``) to cost, classes left
        out costing ``default_cost``; or a sequence aligned with ``model.classes_``. Multi-label:
        cost per label (column). ``None``: all equal (the base strategy).
    base : str or ScoreStrategy
        Informativeness score, default ``"entropy"``.
    default_cost : float
        Cost of classes a mapping leaves out.

    Notes
    -----
    Measured (``benchmarks/label_efficiency.md``, logistic regression, 10 seeds, equal costs,
    i.e. its ``entropy`` base): behind random on digits (learning-curve area -0.013 [-0.021,
    -0.004] paired; labels to 95% 0.91x [0.82, 1.00], a tie). Not measured with real costs.
    """

    name = "cost_weighted"
    description = "Uncertainty times expected misclassification cost (per-class costs, e.g. fraud)."
    task_types = ALL_TASKS
    needs = frozenset({"model"})

    def __init__(
        self, *, class_costs: Any = None, base: Any = "entropy", default_cost: float = 1.0
    ) -> None:
        self.class_costs = _check_weights(class_costs, "class_costs")
        self.base = base
        if isinstance(default_cost, bool) or not isinstance(default_cost, numbers.Real):
            raise LabelwiseError(f"default_cost must be a number; got {default_cost!r}.")
        if not (math.isfinite(default_cost) and default_cost >= 0):
            raise LabelwiseError(f"default_cost must be finite and >= 0; got {default_cost!r}.")
        self.default_cost = float(default_cost)
        self._base = _resolve_base(base, self.name)

    def costs_for(self, model: Any, n_columns: int, task_type: TaskType | str) -> np.ndarray:
        """Cost per probability column, ``(n_columns,)``; raises :class:`LabelMismatchError`."""
        labels = _column_labels(model, n_columns, TaskType(task_type))
        return _per_class(self.class_costs, labels, "class_costs", self.default_cost)

    def _select(self, candidates, k, rng):
        score = _scorer(self._base, candidates.task_type)
        multilabel = candidates.task_type == TaskType.MULTILABEL
        best = RunningTopK(k, random_state=rng)
        costs = None
        for start, proba in candidates.iter_proba():
            if costs is None:
                costs = self.costs_for(candidates.model, proba.shape[1], candidates.task_type)
            scores = cost_weighted_scores(proba, costs, score(proba), multilabel=multilabel)
            best.push(scores, start)
        return best.result()


@register
class InformationDensity(Strategy):
    """Information density (Settles & Craven, 2008): ``base * mean_cos_similarity ** beta``.

    Representativeness is the mean cosine similarity of an item to all candidates, computed
    exactly in ``O(N d)`` with :func:`mean_cosine_similarity` (two chunked passes: the mean unit
    vector, then scores). Uses ``Candidates.embeddings`` when given, else the features.

    Parameters
    ----------
    base : str or ScoreStrategy
        Informativeness score, default ``"entropy"``.
    beta : float
        Weight of representativeness (>= 0); 0 gives the base strategy.

    Notes
    -----
    Measured (``benchmarks/label_efficiency.md``, logistic regression, 10 seeds): loses to
    random on digits, labels to 95% 0.84x [0.76, 0.91] random's efficiency (learning-curve area
    -0.014 [-0.019, -0.008] paired); on three sets in issue 13's first run, 0.69-0.73x.
    """

    name = "information_density"
    description = "Uncertainty times mean cosine similarity to the pool (Settles & Craven)."
    task_types = ALL_TASKS
    needs = frozenset({"model"})

    def __init__(self, *, base: Any = "entropy", beta: float = 1.0) -> None:
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
            raise LabelwiseError(f"beta must be a number >= 0; got {beta!r}.")
        if not (math.isfinite(beta) and beta >= 0):
            raise LabelwiseError(f"beta must be a number >= 0; got {beta!r}.")
        self.base = base
        self.beta = float(beta)
        self._base = _resolve_base(base, self.name)

    def _select(self, candidates, k, rng):
        score = _scorer(self._base, candidates.task_type)
        # pass 1: the mean unit vector of the candidates (one matrix-vector product per chunk)
        total = 0.0
        for _, block, sel in _iter_embedding_blocks(candidates):
            inv = inverse_row_norms(block)
            if sel is not None:
                keep = np.zeros_like(inv)
                keep[sel] = inv[sel]
                inv = keep
            total = total + _unit_sum(block, inv)
        mean_unit = total / candidates.n
        # pass 2: probabilities and similarity to the mean, chunk by chunk
        best = RunningTopK(k, random_state=rng)
        blocks = _iter_embedding_blocks(candidates)
        for start, proba in candidates.iter_proba():
            _, block, sel = next(blocks)
            sim = mean_cosine_similarity(block, mean_unit)
            if sel is not None:
                sim = sim[sel]
            best.push(density_weighted_scores(score(proba), sim, self.beta), start)
        return best.result()


@register
class UncertaintyMix(Strategy):
    """Most uncertain items plus representative ones: ``ceil(f k)`` + the rest.

    The representative part clusters a seeded sample of the remaining candidates (at most
    ``max(sample_size, 10 * n_representative)`` items, excluding the uncertain picks) with
    k-means into ``n_representative`` clusters and takes, for each centroid (largest cluster
    first), the nearest item not taken yet. Uses ``Candidates.embeddings`` when given.

    ``Query.scores`` holds the base score for the uncertain picks (first) and the cluster's share
    of the sample for the representative picks (after).

    Parameters
    ----------
    uncertain_fraction : float in [0, 1]
        Share of the batch chosen by uncertainty (0.7: 70 % uncertain, 30 % representative).
    base : str or ScoreStrategy
        Uncertainty score, default ``"entropy"``.
    sample_size : int
        Candidates sampled for k-means on large pools.
    """

    name = "uncertainty_mix"
    description = "70/30 mix: most uncertain items plus k-means representatives of the rest."
    task_types = ALL_TASKS
    needs = frozenset({"model"})

    def __init__(
        self, *, uncertain_fraction: float = 0.7, base: Any = "entropy", sample_size: int = 10_000
    ) -> None:
        self.uncertain_fraction = _check_fraction(uncertain_fraction, "uncertain_fraction")
        self.base = base
        self.sample_size = _check_positive_int(sample_size, "sample_size")
        self._base = _resolve_base(base, self.name)

    def _select(self, candidates, k, rng):
        n_unc, n_rep = split_batch(k, self.uncertain_fraction)
        unc_idx = np.empty(0, dtype=np.int64)
        unc_scores = np.empty(0, dtype=np.float64)
        if n_unc:
            score = _scorer(self._base, candidates.task_type, non_negative=False)
            best = RunningTopK(n_unc, random_state=rng)
            for start, proba in candidates.iter_proba():
                best.push(score(proba), start)
            unc_idx, unc_scores = best.result()
        if not n_rep:
            return unc_idx, unc_scores
        rep_idx, rep_scores = self._representatives(candidates, unc_idx, n_rep, rng)
        return np.concatenate([unc_idx, rep_idx]), np.concatenate([unc_scores, rep_scores])

    def _representatives(self, candidates, exclude, n_rep, rng):
        # scikit-learn is imported where it is used: `import labelwise` must stay light.
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.metrics.pairwise import euclidean_distances

        n_rest = candidates.n - exclude.shape[0]
        m = min(n_rest, max(self.sample_size, 10 * n_rep))
        if m == n_rest:
            sample = np.setdiff1d(np.arange(candidates.n), exclude)
        else:
            draw = rng.choice(candidates.n, size=m + exclude.shape[0], replace=False)
            sample = draw[~np.isin(draw, exclude)][:m]
            sample.sort()  # read rows in pool order (memory maps)
        if sample.shape[0] == n_rep:
            return sample, np.full(n_rep, 1.0 / n_rep)
        E = candidates.embedding_rows(sample)
        if not sp.issparse(E) and not np.issubdtype(E.dtype, np.floating):
            E = E.astype(np.float32)
        # k-means++ makes many small matrix products, which multi-threaded BLAS runs far slower
        # than one thread on a busy machine (measured: 24 s vs 4 s for 10,000 x 384, 150
        # clusters, on 2 loaded cores); Lloyd's iterations are parallel with OpenMP anyway.
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            # duplicated rows can leave fewer distinct clusters than asked; still usable
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=n_rep, n_init=1, random_state=_seed(rng)).fit(E)
            d2 = euclidean_distances(E, km.cluster_centers_, squared=True)  # (m, n_rep)
        sizes = np.bincount(km.labels_, minlength=n_rep)
        taken = np.zeros(sample.shape[0], dtype=bool)
        picks = np.empty(n_rep, dtype=np.int64)
        for j, c in enumerate(np.argsort(-sizes, kind="stable")):
            col = np.where(taken, np.inf, d2[:, c])
            i = int(np.argmin(col))
            taken[i] = True
            picks[j] = i
        order_sizes = np.sort(sizes)[::-1]
        return sample[picks], order_sizes / sample.shape[0]


@register
class ClassBalanced(Strategy):
    """Batch shared across predicted classes, the most uncertain of each class first.

    Shares are equal by default, or proportional to ``class_weights``; a class with fewer
    candidates than its share gives the rest to the others (:func:`allocate_batch`). The batch
    is ordered round-robin over classes (each class's best, then each class's second, ...), so
    any prefix stays balanced. Single-label tasks only.

    Parameters
    ----------
    class_weights : mapping or sequence, optional
        Relative share per class: mapping of class label to weight (classes left out weigh 1)
        or a sequence aligned with ``model.classes_``. ``None``: equal shares.
    base : str or ScoreStrategy
        Uncertainty score used within each class, default ``"entropy"``.
    """

    name = "class_balanced"
    description = "Equal share of the batch per predicted class, most uncertain first (rare class)."
    task_types = SINGLE_LABEL
    needs = frozenset({"model"})

    def __init__(self, *, class_weights: Any = None, base: Any = "entropy") -> None:
        self.class_weights = _check_weights(class_weights, "class_weights")
        self.base = base
        self._base = _resolve_base(base, self.name)

    def _select(self, candidates, k, rng):
        score = _scorer(self._base, candidates.task_type, non_negative=False)
        per_class: list[RunningTopK] = []
        counts = None
        weights = None
        for start, proba in candidates.iter_proba():
            n_classes = proba.shape[1]
            if weights is None:
                labels = _column_labels(candidates.model, n_classes, candidates.task_type)
                weights = _per_class(self.class_weights, labels, "class_weights")
                counts = np.zeros(n_classes, dtype=np.int64)
                per_class = [RunningTopK(k, random_state=rng) for _ in range(n_classes)]
            pred = proba.argmax(axis=1)
            counts += np.bincount(pred, minlength=n_classes)
            s = score(proba).astype(np.float64)
            for c in np.unique(pred):
                per_class[c].push(np.where(pred == c, s, -np.inf), start)
        quota = allocate_batch(k, weights, counts)
        idx, scores, rank = [], [], []
        for c, q in enumerate(quota):
            if q:
                c_idx, c_scores = per_class[c].result()
                idx.append(c_idx[:q])
                scores.append(c_scores[:q])
                rank.append(np.arange(q))
        idx, scores, rank = np.concatenate(idx), np.concatenate(scores), np.concatenate(rank)
        order = np.lexsort((-scores, rank))
        return idx[order], scores[order]
