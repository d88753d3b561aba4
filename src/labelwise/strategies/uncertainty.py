"""Random sampling and the three classic uncertainty strategies."""

from __future__ import annotations

import numpy as np

from labelwise.select import RunningTopK
from labelwise.strategies import scores as S
from labelwise.strategies.base import ScoreStrategy, Strategy
from labelwise.strategies.registry import register
from labelwise.tasks import TaskType

__all__ = ["EntropySampling", "LeastConfidence", "MarginSampling", "RandomSampling"]


@register
class RandomSampling(Strategy):
    """Uniform random sampling without replacement: the baseline every curve is compared to."""

    name = "random"
    description = "Uniform random sample of the pool (the baseline; needs no model)."
    needs = frozenset()
    cold_start = True

    def _select(self, candidates, k, rng):
        best = RunningTopK(k, random_state=rng)
        # Random keys as scores, chunked so a 5M pool costs O(chunk) memory.
        for start in range(0, candidates.n, candidates.chunk_size):
            stop = min(start + candidates.chunk_size, candidates.n)
            best.push(rng.random_sample(stop - start), start)
        return best.result()


class _Uncertainty(ScoreStrategy):
    """Picks the multi-label variant of the score when the task is multi-label."""

    _single = staticmethod(S.entropy)
    _multi = staticmethod(S.multilabel_entropy)

    def score(self, proba: np.ndarray) -> np.ndarray:
        """Single-label score of ``proba (n_samples, n_classes)``."""
        return self._single(proba)

    def scorer(self, task_type):
        return self._multi if TaskType(task_type) == TaskType.MULTILABEL else self._single

    def get_params(self):
        return {}


@register
class LeastConfidence(_Uncertainty):
    """Least confidence: ``1 - max_c p_c`` (multi-label: mean over labels)."""

    name = "least_confidence"
    description = "Least confident prediction: 1 - max probability (multi-label: mean over labels)."
    _single = staticmethod(S.least_confidence)
    _multi = staticmethod(S.multilabel_least_confidence)


@register
class MarginSampling(_Uncertainty):
    """Margin: smallest gap between the two most likely classes (multi-label: mean margin)."""

    name = "margin"
    description = "Smallest gap between the top two classes (multi-label: mean |2p-1| over labels)."
    score_floor = -1.0  # scores are -(p1 - p2) in [-1, 0]
    _single = staticmethod(S.margin)
    _multi = staticmethod(S.multilabel_margin)


@register
class EntropySampling(_Uncertainty):
    """Entropy of the predicted distribution (multi-label: max binary entropy across labels).

    Notes
    -----
    Measured (``benchmarks/label_efficiency.md``, logistic regression, 10 seeds): behind random
    on digits and mnist5k, learning-curve area -0.013 [-0.021, -0.004] and -0.019 [-0.026,
    -0.012] paired; with many classes it chases
    items confused among several unlikely classes. Prefer ``margin``.
    """

    name = "entropy"
    description = "Highest predictive entropy (multi-label: max binary entropy across labels)."
    _single = staticmethod(S.entropy)
    _multi = staticmethod(S.multilabel_entropy)
