"""Measure label efficiency: strategies × seeds of simulations, compared with random sampling.

:func:`evaluate` runs :func:`labelwise.simulate.simulate` for every strategy and seed (random is
always included as the baseline) and measures:

- **learning curves**: mean test quality per round with a 95% t-interval over seeds
  (:func:`learning_curve`);
- **labels to target**: labels needed to reach 80/90/95% of the *full-data* model's test quality
  (the same model fitted on the whole training pool), interpolated between rounds
  (:func:`labels_to_target`);
- **label-efficiency ratio**: random's labels / the strategy's labels at a target, with a
  bootstrap confidence interval over seeds (:func:`efficiency_ratio`,
  :func:`bootstrap_ratio_ci`);
- **area under the learning curve**, normalised to the mean quality over the label range
  (:func:`curve_auc`);
- **selection quality** per round: class distribution of the picks vs the pool (total variation
  distance), informativeness, redundancy within a batch, share of outliers and of wrong labels
  (:func:`selection_quality`);
- **business case**: labels and money saved vs random at the target, and the ROI
  (:func:`business_case`).

The pure functions take plain arrays and can be checked by hand; :class:`Evaluation` holds the
results and :func:`labelwise.report.write_report` turns them into HTML.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from labelwise.errors import LabelwiseError, UnreachableTargetError
from labelwise.simulate import (
    Consensus,
    NoiseModel,
    SimulationData,
    SimulationResult,
    _plan_rounds,
    default_model,
    heldout_metrics,
    iter_simulate,
    resolve_data,
)
from labelwise.strategies import get_strategy

__all__ = [
    "DEFAULT_STRATEGIES",
    "DEFAULT_THRESHOLDS",
    "BusinessCase",
    "Curve",
    "Evaluation",
    "batch_redundancy",
    "bootstrap_ratio_ci",
    "business_case",
    "class_tvd",
    "curve_auc",
    "efficiency_ratio",
    "evaluate",
    "labels_to_target",
    "learning_curve",
    "outlier_mask",
    "selection_quality",
]

DEFAULT_STRATEGIES = ("entropy", "margin", "kcenter", "random")
DEFAULT_THRESHOLDS = (0.8, 0.9, 0.95)
BASELINE = "random"
OUTLIER_QUANTILE = 0.05


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A learning curve over seeds.

    Attributes
    ----------
    n_labeled : ndarray of shape (n_rounds,)
    mean, low, high : ndarray of shape (n_rounds,)
        Mean over seeds and the bounds of its confidence interval.
    values : ndarray of shape (n_seeds, n_rounds)
    """

    n_labeled: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: np.ndarray = field(repr=False)


def learning_curve(values: np.ndarray, n_labeled: np.ndarray, confidence: float = 0.95) -> Curve:
    """Mean curve and t-interval over seeds.

    ``mean ± t_{(1+confidence)/2, n-1} · sd / sqrt(n)`` with the sample standard deviation; with
    one seed the band collapses onto the mean.

    Parameters
    ----------
    values : ndarray of shape (n_seeds, n_rounds)
        Quality per seed and round.
    n_labeled : ndarray of shape (n_rounds,)
    confidence : float, default=0.95

    Returns
    -------
    Curve
        ``[[0.8, 0.9], [0.6, 0.7]]`` gives mean ``[0.7, 0.8]`` and, with sd ``0.1414`` and
        ``t_{0.975, 1} = 12.71``, half-width ``12.71 * 0.1414 / sqrt(2) = 1.271``.
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        half = np.zeros_like(mean)
    else:
        sd = values.std(axis=0, ddof=1)
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return Curve(np.asarray(n_labeled), mean, mean - half, mean + half, values)


def labels_to_target(n_labeled: np.ndarray, quality: np.ndarray, target: float) -> float:
    """Labels at which a learning curve first reaches ``target``, interpolated linearly.

    Parameters
    ----------
    n_labeled : ndarray of shape (n_rounds,), increasing
    quality : ndarray of shape (n_rounds,)
    target : float

    Returns
    -------
    labels : float
        ``n_labeled[0]`` if the first point already reaches it; ``inf`` if no point does.
        ``n_labeled = [20, 40, 60]``, ``quality = [0.5, 0.7, 0.9]``, target 0.8:
        ``40 + (0.8 - 0.7) / (0.9 - 0.7) * 20 = 50``.
    """
    n_labeled = np.asarray(n_labeled, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    hit = np.flatnonzero(quality >= target)
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(n_labeled[0])
    x0, x1, y0, y1 = n_labeled[i - 1], n_labeled[i], quality[i - 1], quality[i]
    return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))


def efficiency_ratio(baseline_labels: Sequence[float], strategy_labels: Sequence[float]) -> float:
    """Label-efficiency ratio: mean labels of the baseline / mean labels of the strategy.

    Parameters
    ----------
    baseline_labels : array-like of shape (n_seeds,)
        Labels random sampling needed, per seed (``inf`` where it never got there).
    strategy_labels : array-like of shape (n_seeds_s,)

    Returns
    -------
    ratio : float
        Above 1: the strategy needs fewer labels. ``[100, 120]`` vs ``[50, 60]`` gives
        ``110 / 55 = 2.0``. ``inf`` if only the baseline never reached the target, ``0`` if only
        the strategy did not, NaN if neither did.
    """
    b = float(np.mean(np.asarray(baseline_labels, dtype=np.float64)))
    s = float(np.mean(np.asarray(strategy_labels, dtype=np.float64)))
    if math.isinf(b) and math.isinf(s):
        return math.nan
    if s == 0:
        return math.inf
    return b / s


def bootstrap_ratio_ci(
    baseline_labels: Sequence[float],
    strategy_labels: Sequence[float],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state=0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`efficiency_ratio` over seeds.

    Each replicate resamples the baseline's seeds and the strategy's seeds (independently,
    with replacement) and recomputes the ratio of means.

    Parameters
    ----------
    baseline_labels, strategy_labels : array-like of shape (n_seeds,)
    n_boot : int, default=2000
    confidence : float, default=0.95
    random_state : int, RandomState or None

    Returns
    -------
    (low, high) : tuple of float
        Constant inputs give a degenerate interval: ``[100, 100]`` vs ``[50, 50]`` gives
        ``(2.0, 2.0)``.
    """
    b = np.asarray(baseline_labels, dtype=np.float64)
    s = np.asarray(strategy_labels, dtype=np.float64)
    rng = check_random_state(random_state)
    bm = b[rng.randint(b.shape[0], size=(n_boot, b.shape[0]))].mean(axis=1)
    sm = s[rng.randint(s.shape[0], size=(n_boot, s.shape[0]))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = bm / sm
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)


def curve_auc(n_labeled: np.ndarray, quality: np.ndarray) -> float:
    """Normalised area under a learning curve: the mean quality over the label range.

    Trapezoids over ``n_labeled`` divided by ``n_labeled[-1] - n_labeled[0]``, so a curve at a
    constant ``q`` scores ``q``; ``n_labeled = [0, 10, 20]``, ``quality = [0.5, 0.7, 0.9]``
    gives ``(10 * 0.6 + 10 * 0.8) / 20 = 0.7``.

    Parameters
    ----------
    n_labeled : ndarray of shape (n_rounds,)
    quality : ndarray of shape (n_rounds,)

    Returns
    -------
    auc : float
    """
    x = np.asarray(n_labeled, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    if x.shape[0] < 2 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


# ---------------------------------------------------------------------------------------------
# Selection quality
# ---------------------------------------------------------------------------------------------


def class_tvd(picked: np.ndarray, pool: np.ndarray, classes: np.ndarray) -> float:
    """Total variation distance between the class distributions of the picks and of the pool.

    ``0.5 * sum_c |p_c - q_c|``: 0 when the picks mirror the pool, 1 when they share no class.
    Picks ``[0, 0]`` from pool ``[0, 1]`` give ``0.5 * (|1 - 0.5| + |0 - 0.5|) = 0.5``.

    Parameters
    ----------
    picked : ndarray of shape (k,)
        True labels of the picks.
    pool : ndarray of shape (n,)
        True labels of the pool.
    classes : ndarray of shape (n_classes,), sorted

    Returns
    -------
    tvd : float
    """
    p = np.bincount(np.searchsorted(classes, picked), minlength=classes.shape[0]) / max(
        len(picked), 1
    )
    q = np.bincount(np.searchsorted(classes, pool), minlength=classes.shape[0]) / max(len(pool), 1)
    return float(0.5 * np.abs(p - q).sum())


def batch_redundancy(X_batch: Any) -> float:
    """Mean pairwise cosine similarity within a batch (off-diagonal pairs).

    Parameters
    ----------
    X_batch : array-like or sparse matrix of shape (k, n_features)

    Returns
    -------
    redundancy : float
        NaN for fewer than 2 rows; rows ``[1, 0], [1, 0], [0, 1]`` give
        ``(1 + 0 + 0) / 3 = 1/3``.
    """
    from sklearn.metrics.pairwise import cosine_similarity

    k = X_batch.shape[0]
    if k < 2:
        return math.nan
    sim = cosine_similarity(X_batch)
    return float((sim.sum() - np.trace(sim)) / (k * (k - 1)))


def outlier_mask(X: Any, quantile: float = OUTLIER_QUANTILE, random_state=0) -> np.ndarray:
    """Rows among the ``quantile`` most anomalous of ``X`` by an IsolationForest score.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
    quantile : float, default=0.05
    random_state : int, RandomState or None

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool
    """
    from sklearn.ensemble import IsolationForest

    scores = IsolationForest(n_estimators=100, random_state=random_state).fit(X).score_samples(X)
    return scores <= np.quantile(scores, quantile)


def selection_quality(
    result: SimulationResult, data: SimulationData, outliers: np.ndarray
) -> list[dict[str, float]]:
    """Per round (after round 0): how the picks of one simulation look.

    Returns
    -------
    rows : list of dict
        ``round``, ``n_labeled``, ``class_tvd`` (picks vs pool), ``informativeness`` (mean
        normalised entropy of the picks under the selecting model), ``informativeness_ratio``
        (over the unlabeled pool's), ``redundancy`` (:func:`batch_redundancy` on the features),
        ``outlier_share`` (picks flagged by :func:`outlier_mask`), ``noisy_share`` (picks that
        got a wrong label).
    """
    rows = []
    for p in result.points[1:]:
        picks = p.selected
        rows.append(
            {
                "round": p.round,
                "n_labeled": p.n_labeled,
                "class_tvd": class_tvd(data.y_train[picks], data.y_train, data.classes),
                "informativeness": p.informativeness,
                "informativeness_ratio": (
                    p.informativeness / p.pool_informativeness
                    if p.pool_informativeness > 0
                    else math.nan
                ),
                "redundancy": batch_redundancy(data.X_train[picks]),
                "outlier_share": float(outliers[picks].mean()),
                "noisy_share": p.n_noisy / max(len(picks), 1),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Business case
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessCase:
    """Money saved by a strategy against random sampling at one target.

    Attributes
    ----------
    label_cost : float
        Cost of one annotation.
    cost_per_item, baseline_cost_per_item : float
        Cost of one labeled item (annotations per item × ``label_cost``; consensus items cost
        ``k`` annotations), for the strategy and the baseline.
    strategy_labels, baseline_labels : float
        Mean labels needed to reach the target.
    labels_saved : float
    money_saved : float
        ``baseline_labels * baseline_cost_per_item - strategy_labels * cost_per_item``.
    setup_cost : float
    net_saving : float
        ``money_saved - setup_cost``.
    roi : float or None
        ``net_saving / setup_cost``; None without a setup cost.
    """

    label_cost: float
    cost_per_item: float
    baseline_cost_per_item: float
    strategy_labels: float
    baseline_labels: float
    labels_saved: float
    money_saved: float
    setup_cost: float
    net_saving: float
    roi: float | None


def business_case(
    baseline_labels: float,
    strategy_labels: float,
    *,
    label_cost: float,
    setup_cost: float = 0.0,
    annotations_per_item: float = 1.0,
    baseline_annotations_per_item: float = 1.0,
) -> BusinessCase:
    """Labels and money saved, and the return on a setup cost.

    Parameters
    ----------
    baseline_labels, strategy_labels : float
        Labels needed to reach the target (e.g. means over seeds).
    label_cost : float
        Cost of one annotation.
    setup_cost : float, default=0
        One-off cost of adopting active learning (engineering, infrastructure).
    annotations_per_item, baseline_annotations_per_item : float, default=1
        Annotations paid per labeled item (above 1 with consensus).

    Returns
    -------
    BusinessCase
        Random needs 1000 labels, the strategy 400, at 0.5 per label with a 100 setup cost:
        300 saved, net 200, ROI 2.0.
    """
    for name, v in (("label_cost", label_cost), ("setup_cost", setup_cost)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0 or math.isnan(v):
            raise LabelwiseError(f"{name} must be a non-negative number; got {v!r}.")
    cpi = annotations_per_item * label_cost
    bcpi = baseline_annotations_per_item * label_cost
    saved = baseline_labels * bcpi - strategy_labels * cpi
    net = saved - setup_cost
    return BusinessCase(
        label_cost=float(label_cost),
        cost_per_item=float(cpi),
        baseline_cost_per_item=float(bcpi),
        strategy_labels=float(strategy_labels),
        baseline_labels=float(baseline_labels),
        labels_saved=float(baseline_labels - strategy_labels),
        money_saved=float(saved),
        setup_cost=float(setup_cost),
        net_saving=float(net),
        roi=float(net / setup_cost) if setup_cost > 0 else None,
    )


# ---------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured.

    Attributes
    ----------
    data_name, metric : str
    strategies : list of str
        The baseline (``"random"``) last.
    seeds : list of int
    thresholds : tuple of float
        Fractions of the full-data quality.
    full_quality : float
        Test quality of the model fitted on the whole training pool.
    full_metrics : dict of str to float
    config : dict
        The simulation parameters.
    results : dict of str to list of SimulationResult
        One per seed, per strategy.
    curves : dict of str to Curve
    labels : dict of str to dict of float to ndarray of shape (n_seeds,)
        Labels to each threshold per seed (``inf`` where not reached).
    summary : list of dict
        One row per strategy and threshold: labels (mean, reached seeds), ratio, CI, bound.
    auc : dict of str to (mean, low, high)
    selection : dict of str to list of dict
        Per round, mean over seeds of :func:`selection_quality`.
    business : dict of str to BusinessCase
        At the highest threshold.
    stopping : dict of str to dict of str to dict
        Per strategy and criterion: seeds where it fired, mean labels and quality at that point.
    """

    data_name: str
    metric: str
    strategies: list[str]
    seeds: list[int]
    thresholds: tuple[float, ...]
    full_quality: float
    full_metrics: dict[str, float]
    config: dict[str, Any]
    results: dict[str, list[SimulationResult]] = field(repr=False)
    curves: dict[str, Curve] = field(default_factory=dict, repr=False)
    labels: dict[str, dict[float, np.ndarray]] = field(default_factory=dict, repr=False)
    summary: list[dict[str, Any]] = field(default_factory=list, repr=False)
    auc: dict[str, tuple[float, float, float]] = field(default_factory=dict, repr=False)
    selection: dict[str, list[dict[str, float]]] = field(default_factory=dict, repr=False)
    business: dict[str, BusinessCase] = field(default_factory=dict, repr=False)
    stopping: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)

    @property
    def baseline(self) -> str:
        return BASELINE

    def targets(self) -> dict[float, float]:
        """Absolute target quality per threshold."""
        return {t: t * self.full_quality for t in self.thresholds}

    def ratio(self, strategy: str, threshold: float) -> dict[str, Any]:
        """The summary row of one strategy at one threshold."""
        for row in self.summary:
            if row["strategy"] == strategy and row["threshold"] == threshold:
                return row
        raise LabelwiseError(f"no summary for strategy {strategy!r} at threshold {threshold}.")

    def points_rows(self) -> list[dict[str, Any]]:
        """Every point of every run, flat (for ``points.csv``)."""
        rows = []
        for strategy, runs in self.results.items():
            for seed, res in zip(self.seeds, runs, strict=True):
                for p in res.points:
                    row = {"strategy": strategy, "seed": seed}
                    d = p.to_dict()
                    metrics = d.pop("metrics")
                    d["selected"] = " ".join(map(str, d["selected"]))
                    d["stops"] = "; ".join(name for name, _ in p.stops)
                    row.update(d)
                    row.update({f"metric_{k}": v for k, v in metrics.items()})
                    rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with every point."""
        return {
            "data": self.data_name,
            "metric": self.metric,
            "strategies": self.strategies,
            "seeds": self.seeds,
            "thresholds": list(self.thresholds),
            "targets": {str(t): v for t, v in self.targets().items()},
            "full_quality": self.full_quality,
            "full_metrics": self.full_metrics,
            "config": self.config,
            "summary": self.summary,
            "auc": {s: list(v) for s, v in self.auc.items()},
            "curves": {
                s: {
                    "n_labeled": c.n_labeled.tolist(),
                    "mean": c.mean.tolist(),
                    "low": c.low.tolist(),
                    "high": c.high.tolist(),
                }
                for s, c in self.curves.items()
            },
            "labels_to_target": {
                s: {str(t): v.tolist() for t, v in per.items()} for s, per in self.labels.items()
            },
            "selection": self.selection,
            "business": {s: asdict(b) for s, b in self.business.items()},
            "stopping": self.stopping,
            "runs": {
                s: [
                    {"seed": seed, "config": r.config, "points": [p.to_dict() for p in r.points]}
                    for seed, r in zip(self.seeds, runs, strict=True)
                ]
                for s, runs in self.results.items()
            },
        }


def _check_thresholds(thresholds: Sequence[float], full_quality: float, metric: str) -> tuple:
    out = []
    for t in thresholds:
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 < t:
            raise LabelwiseError(
                f"thresholds are fractions of the full-data model's {metric}, in (0, 1]; got {t!r}."
            )
        if t > 1:
            raise UnreachableTargetError(
                f"threshold {t:g} asks for {t:g} x the full-data model's test {metric} "
                f"({full_quality:.4g}) = {t * full_quality:.4g}, which the model never reaches "
                "even with every label; use thresholds in (0, 1], e.g. 0.8,0.9,0.95."
            )
        out.append(float(t))
    if not out:
        raise LabelwiseError("give at least one threshold, e.g. (0.8, 0.9, 0.95).")
    return tuple(sorted(set(out)))


def _resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise LabelwiseError(f"seeds must be at least 1; got {seeds}.")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise LabelwiseError(f"seeds must be a non-empty list of distinct integers; got {seeds!r}.")
    return out


def _run_one(data, strategy, seed, kwargs, threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        points = list(iter_simulate(data, strategy, random_state=seed, **kwargs))
    return strategy.name, seed, points


def evaluate(
    data: Any,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    *,
    seeds: int | Sequence[int] = 10,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    model: Any = None,
    initial_size: int = 20,
    batch_size: int = 20,
    n_rounds: int | None = None,
    label_budget: int | None = None,
    noise: NoiseModel | None = None,
    consensus: Consensus | None = None,
    latency_rounds: int = 0,
    stopping: Any = None,
    strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
    metric: str | None = None,
    label_cost: float = 1.0,
    setup_cost: float = 0.0,
    n_boot: int = 2000,
    n_jobs: int = 1,
    threads_per_job: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Simulate every strategy with every seed and measure label efficiency against random.

    Parameters
    ----------
    data : str, Dataset, SimulationData or tuple (X_train, y_train, X_test, y_test)
    strategies : sequence of str
        Registered strategy names; ``"random"`` is added as the baseline if missing.
    seeds : int or sequence of int, default=10
        Number of seeds (``0 .. seeds-1``) or the seeds themselves.
    thresholds : sequence of float, default=(0.8, 0.9, 0.95)
        Targets as fractions of the full-data model's test quality.
    model : classifier, optional
        Default :func:`labelwise.simulate.default_model`.
    initial_size, batch_size, n_rounds, label_budget, noise, consensus, latency_rounds, stopping
        As in :func:`labelwise.simulate.iter_simulate`.
    strategy_params : mapping of strategy name to parameters, optional
    metric : str, optional
        Headline metric; default the data set's.
    label_cost, setup_cost : float
        For the business case (cost of one annotation; one-off cost of adopting).
    n_boot : int, default=2000
        Bootstrap replicates of the ratio's interval.
    n_jobs : int, default=1
        Parallel runs (joblib processes).
    threads_per_job : int, default=1
        BLAS threads per run (more threads than cores slows small fits down a lot).
    progress : callable(done_rounds, total_rounds), optional
        Called after every round (``n_jobs=1``) or every finished run.

    Returns
    -------
    Evaluation

    Raises
    ------
    UnknownDatasetError, UnknownStrategyError
        Unknown names; the messages list the valid ones.
    BatchSizeError
        Initial set or batch larger than the pool.
    UnreachableTargetError
        A threshold above 1 (more than the full-data model reaches).
    """
    sim = resolve_data(data, metric=metric)
    names = list(dict.fromkeys(strategies))
    if not names:
        raise LabelwiseError("give at least one strategy, e.g. ('entropy', 'margin').")
    params = dict(strategy_params or {})
    if BASELINE in names:
        names.remove(BASELINE)
    names.append(BASELINE)
    # built here, so unknown names fail before any work and workers need no registry
    built = {name: get_strategy(name, **dict(params.get(name, {}))) for name in names}
    seed_list = _resolve_seeds(seeds)
    model = default_model() if model is None else model
    rounds = _plan_rounds(sim.n_pool, initial_size, batch_size, n_rounds, label_budget)
    business_case(1.0, 1.0, label_cost=label_cost, setup_cost=setup_cost)  # validates costs

    full = clone(model).fit(sim.X_train, sim.y_train)
    full_metrics = heldout_metrics(full, sim)
    full_quality = float(full_metrics[sim.metric])
    thresholds = _check_thresholds(thresholds, full_quality, sim.metric)

    kwargs = {
        "model": model,
        "initial_size": initial_size,
        "batch_size": batch_size,
        "n_rounds": rounds,
        "noise": noise,
        "consensus": consensus,
        "latency_rounds": latency_rounds,
        "stopping": stopping,
    }
    total = (rounds + 1) * len(names) * len(seed_list)
    done = 0
    collected: dict[tuple[str, int], list] = {}
    jobs = [(s, seed) for s in names for seed in seed_list]
    if n_jobs == 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads_per_job):
            for s, seed in jobs:
                pts = []
                for p in iter_simulate(sim, built[s], random_state=seed, **kwargs):
                    pts.append(p)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                collected[(s, seed)] = pts
    else:
        from joblib import Parallel, delayed

        run = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for s, seed, pts in run(
            delayed(_run_one)(sim, built[s], seed, kwargs, threads_per_job) for s, seed in jobs
        ):
            collected[(s, seed)] = pts
            done += len(pts)
            if progress is not None:
                progress(done, total)

    config = {
        "n_pool": sim.n_pool,
        "initial_size": initial_size,
        "batch_size": batch_size,
        "n_rounds": rounds,
        "latency_rounds": latency_rounds,
        "noise": asdict(noise) if noise is not None else None,
        "consensus": asdict(consensus) if consensus is not None else None,
        "model": repr(model),
        "label_cost": label_cost,
        "setup_cost": setup_cost,
        "strategy_params": {k: dict(v) for k, v in params.items()},
    }
    results = {
        s: [
            SimulationResult(
                points=collected[(s, seed)],
                config={**config, "strategy": s, "random_state": seed, "data": sim.name},
            )
            for seed in seed_list
        ]
        for s in names
    }
    ev = Evaluation(
        data_name=sim.name,
        metric=sim.metric,
        strategies=names,
        seeds=seed_list,
        thresholds=thresholds,
        full_quality=full_quality,
        full_metrics=full_metrics,
        config=config,
        results=results,
    )
    _measure(ev, sim, n_boot=n_boot)
    return ev


def _measure(ev: Evaluation, sim: SimulationData, *, n_boot: int) -> None:
    """Fill the derived measurements of an evaluation in place."""
    top = max(ev.thresholds)
    outliers = outlier_mask(sim.X_train)
    for s, runs in ev.results.items():
        values = np.stack([r.quality for r in runs])
        ev.curves[s] = learning_curve(values, runs[0].n_labeled)
        ev.labels[s] = {
            t: np.asarray(
                [labels_to_target(r.n_labeled, r.quality, t * ev.full_quality) for r in runs]
            )
            for t in ev.thresholds
        }
        aucs = np.asarray([curve_auc(r.n_labeled, r.quality) for r in runs])
        c = learning_curve(aucs[:, None], np.zeros(1))
        ev.auc[s] = (float(c.mean[0]), float(c.low[0]), float(c.high[0]))
        per_run = [selection_quality(r, sim, outliers) for r in runs]
        ev.selection[s] = [
            {
                k: (
                    v if k in ("round", "n_labeled") else _nanmean([rows[i][k] for rows in per_run])
                )
                for k, v in per_run[0][i].items()
            }
            for i in range(len(per_run[0]))
        ]
        ev.stopping[s] = _stopping_summary(runs)
    base = ev.labels[BASELINE]
    budget = float(max(r.n_labeled[-1] for r in ev.results[BASELINE]))
    for s in ev.strategies:
        for t in ev.thresholds:
            labels = ev.labels[s][t]
            ratio_b, ratio_s = np.minimum(base[t], budget), np.minimum(labels, budget)
            b_cens, s_cens = bool(np.isinf(base[t]).any()), bool(np.isinf(labels).any())
            bound = "n/a" if b_cens and s_cens else ">=" if b_cens else "<=" if s_cens else ""
            if s == BASELINE:
                bound = ""
            ratio = efficiency_ratio(ratio_b, ratio_s)
            lo, hi = bootstrap_ratio_ci(ratio_b, ratio_s, n_boot=n_boot, random_state=0)
            reached = np.isfinite(labels)
            ev.summary.append(
                {
                    "strategy": s,
                    "threshold": t,
                    "target": t * ev.full_quality,
                    "labels_mean": float(labels[reached].mean()) if reached.any() else math.inf,
                    "labels_sd": float(labels[reached].std()) if reached.sum() > 1 else 0.0,
                    "reached": int(reached.sum()),
                    "n_seeds": int(labels.shape[0]),
                    "ratio": ratio if bound != "n/a" else math.nan,
                    "ci_low": lo if bound != "n/a" else math.nan,
                    "ci_high": hi if bound != "n/a" else math.nan,
                    "bound": bound,
                    "auc": ev.auc[s][0],
                }
            )
        b_ann = _annotations_per_item(ev.results[BASELINE])
        ev.business[s] = business_case(
            float(np.minimum(base[top], budget).mean()),
            float(np.minimum(ev.labels[s][top], budget).mean()),
            label_cost=ev.config["label_cost"],
            setup_cost=ev.config["setup_cost"],
            annotations_per_item=_annotations_per_item(ev.results[s]),
            baseline_annotations_per_item=b_ann,
        )


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr[~np.isnan(arr)].mean()) if (~np.isnan(arr)).any() else math.nan


def _annotations_per_item(runs: Sequence[SimulationResult]) -> float:
    paid = sum(p.n_annotations for r in runs for p in r.points)
    items = sum(r.points[-1].n_labeled for r in runs)
    return paid / max(items, 1)


def _stopping_summary(runs: Sequence[SimulationResult]) -> dict[str, dict[str, float]]:
    fired: dict[str, list] = {}
    for r in runs:
        for name, p in r.stop_points().items():
            fired.setdefault(name, []).append(p)
    return {
        name: {
            "seeds_fired": len(ps),
            "n_labeled": float(np.mean([p.n_labeled for p in ps])),
            "quality": float(np.mean([p.quality for p in ps])),
            "final_quality": float(np.mean([r.quality[-1] for r in runs])),
        }
        for name, ps in fired.items()
    }
