"""The learning-curve demo behind ``labelwise demo`` (and ``make run``).

It replays active learning on scikit-learn's digits (real 8x8 handwritten digits): a strategy and
random sampling start from the same random labels, label the same number of items per round, and
are scored on the same held-out test set. The table shows where the strategy reaches the accuracy
random sampling has at its last round, with fewer labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labelwise.simulate import iter_simulate
from labelwise.strategies.registry import DEFAULT_STRATEGY

__all__ = ["CurveRow", "DemoResult", "learning_curve_demo"]


@dataclass(frozen=True)
class CurveRow:
    """One round: labels used and mean test accuracy of each strategy over the seeds."""

    n_labeled: int
    quality: dict[str, float]


@dataclass(frozen=True)
class DemoResult:
    """The averaged learning curves and the headline comparison.

    Attributes
    ----------
    rows : list of CurveRow
    strategy, baseline : str
    baseline_final : float
        Mean accuracy of the baseline at its last round.
    labels_to_match : int or None
        Labels the strategy needed to first reach ``baseline_final`` (None if it never did).
    baseline_labels : int
        Labels the baseline used for ``baseline_final``.
    seed_labels : tuple of float
        Per seed: labels the strategy's own curve needed to reach ``baseline_final``
        (interpolated between rounds; the whole budget when a seed never got there).
    ratio : float
        ``baseline_labels / mean(seed_labels)``: how many times fewer labels the strategy needed.
    ratio_ci : (float, float)
        95% percentile-bootstrap interval of ``ratio`` over the seeds.
    """

    rows: list[CurveRow]
    strategy: str
    baseline: str
    dataset: str
    seeds: int
    baseline_final: float
    labels_to_match: int | None
    baseline_labels: int
    seed_labels: tuple[float, ...] = ()
    ratio: float = float("nan")
    ratio_ci: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def labels_saved(self) -> float | None:
        """Share of the baseline's labels the strategy did not need, in [0, 1)."""
        if self.labels_to_match is None:
            return None
        return 1.0 - self.labels_to_match / self.baseline_labels


def learning_curve_demo(
    strategy: str = DEFAULT_STRATEGY,
    *,
    baseline: str = "random",
    dataset: str = "digits",
    seeds: int = 5,
    initial_size: int = 20,
    batch_size: int = 20,
    n_rounds: int = 15,
    random_state: int = 0,
    on_round: Callable[[str, int], None] | None = None,
) -> DemoResult:
    """Run ``strategy`` and ``baseline`` on ``dataset`` and average the curves over ``seeds``.

    Parameters
    ----------
    strategy, baseline : str
        Registered strategy names.
    dataset : str
        A name from :func:`labelwise.datasets.dataset_names`.
    seeds : int
        Independent repetitions (seed ``random_state + i``); both strategies share each seed's
        initial labels.
    initial_size, batch_size, n_rounds : int
    on_round : callable(name, round), optional
        Called after every simulated round (the CLI advances a progress bar with it).

    Returns
    -------
    DemoResult
    """
    curves: dict[str, list[np.ndarray]] = {strategy: [], baseline: []}
    n_labeled: np.ndarray | None = None
    for seed in range(random_state, random_state + seeds):
        for name in (baseline, strategy):
            points = []
            for point in iter_simulate(
                dataset,
                name,
                initial_size=initial_size,
                batch_size=batch_size,
                n_rounds=n_rounds,
                random_state=seed,
            ):
                points.append(point)
                if on_round is not None:
                    on_round(name, point.round)
            curves[name].append(np.array([p.quality for p in points]))
            n_labeled = np.array([p.n_labeled for p in points])
    assert n_labeled is not None
    mean = {name: np.mean(c, axis=0) for name, c in curves.items()}
    rows = [
        CurveRow(int(n), {name: float(mean[name][i]) for name in (baseline, strategy)})
        for i, n in enumerate(n_labeled)
    ]
    from labelwise.evaluate import bootstrap_ratio_ci, labels_to_target

    target = float(mean[baseline][-1])
    reached = np.flatnonzero(mean[strategy] >= target)
    budget = int(n_labeled[-1])
    per_seed = [min(labels_to_target(n_labeled, c, target), budget) for c in curves[strategy]]
    ratio = budget / float(np.mean(per_seed))
    ratio_ci = bootstrap_ratio_ci([budget] * len(per_seed), per_seed, random_state=random_state)
    return DemoResult(
        rows=rows,
        strategy=strategy,
        baseline=baseline,
        dataset=dataset,
        seeds=seeds,
        baseline_final=target,
        labels_to_match=int(n_labeled[reached[0]]) if reached.size else None,
        baseline_labels=budget,
        seed_labels=tuple(float(v) for v in per_seed),
        ratio=ratio,
        ratio_ci=ratio_ci,
    )


def format_summary(result: DemoResult) -> str:
    """One sentence with the headline number."""
    if result.labels_to_match is None:
        return (
            f"{result.strategy} did not reach {result.baseline}'s final accuracy "
            f"{result.baseline_final:.3f} within {result.baseline_labels} labels."
        )
    low, high = result.ratio_ci
    saving = (
        f"{result.ratio:.2f}x fewer labels, 95% CI [{low:.2f}, {high:.2f}]"
        if low > 1
        else f"ratio {result.ratio:.2f} [{low:.2f}, {high:.2f}]: the interval includes 1, "
        "so this is no proven saving"
    )
    return (
        f"{result.strategy} reached {result.baseline}'s final accuracy "
        f"({result.baseline_final:.3f} at {result.baseline_labels} labels) with "
        f"{result.labels_to_match} labels on the mean curve: {saving} "
        f"(per seed, {result.seeds} seeds on {result.dataset}; labels to target interpolated "
        "between rounds)."
    )
