"""Adapters that run peer active-learning libraries through labelwise's harness.

modAL (``modal-python==0.4.2.1``), scikit-activeml (``scikit-activeml==1.0.1``) and small-text
(``small-text==1.4.1``) are *not* dependencies of labelwise; install them to compare::

    pip install modal-python==0.4.2.1 scikit-activeml==1.0.1 small-text==1.4.1

Each adapter is a labelwise :class:`~labelwise.strategies.Strategy` that hands the candidates to
the peer's own query function, so :func:`labelwise.simulate.simulate` and
:func:`labelwise.evaluate.evaluate` measure every library the same way. They are registered only
when :func:`register_peers` is called (never at import: the default registry, and the strategy
contract suite that runs over it, stay labelwise's own).

The peers do not score in chunks: adapters materialise the candidates' feature rows, which is
fine for benchmark-sized pools, not for millions of rows.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from labelwise.errors import LabelwiseError, MissingInputError
from labelwise.strategies.base import Candidates, Strategy
from labelwise.strategies.registry import register
from labelwise.tasks import SINGLE_LABEL

__all__ = [
    "PEER_PACKAGES",
    "ModalCommittee",
    "ModalUncertainty",
    "SkactivemlCoreSet",
    "SkactivemlQBC",
    "SkactivemlTypiClust",
    "SkactivemlUncertainty",
    "SmallTextCoreset",
    "available_peers",
    "register_peers",
]

PEER_PACKAGES = {
    "modAL": "modal-python==0.4.2.1",
    "skactiveml": "scikit-activeml==1.0.1",
    "small_text": "small-text==1.4.1",
}
COMMITTEE_SIZE = 5


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _all_candidates(candidates: Candidates) -> Any:
    return candidates.take(np.arange(candidates.n))


def _labeled(candidates: Candidates, name: str) -> tuple[Any, np.ndarray]:
    if candidates.X_labeled is None or candidates.y_labeled is None:
        raise MissingInputError(
            f"strategy {name!r} refits the peer's model and needs the labelled set; pass "
            "Candidates(X_labeled=..., y_labeled=...)."
        )
    return candidates.X_labeled, np.asarray(candidates.y_labeled)


def _stack(X_labeled: Any, X_cand: Any) -> Any:
    if sp.issparse(X_labeled) or sp.issparse(X_cand):
        return sp.vstack([sp.csr_matrix(X_labeled), sp.csr_matrix(X_cand)]).tocsr()
    return np.vstack([np.asarray(X_labeled), np.asarray(X_cand)])


class _Peer(Strategy):
    """Shared attributes of the adapters."""

    task_types = SINGLE_LABEL
    package: str = ""

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------- modAL


class ModalUncertainty(_Peer):
    """modAL's ``margin_sampling`` / ``entropy_sampling`` / ``uncertainty_sampling``.

    Parameters
    ----------
    measure : {"margin", "entropy", "uncertainty"}
    """

    name = "modal_margin"
    description = "modAL uncertainty sampling (margin / entropy / least confidence)."
    package = "modAL"
    needs = frozenset({"model"})

    def __init__(self, *, measure: str = "margin") -> None:
        if measure not in ("margin", "entropy", "uncertainty"):
            raise LabelwiseError(
                f"unknown modAL measure {measure!r}; use 'margin', 'entropy' or 'uncertainty'."
            )
        self.measure = measure

    def _select(self, candidates, k, rng):
        from modAL import uncertainty as mu

        X = _all_candidates(candidates)
        fn = getattr(mu, f"{self.measure}_sampling")
        out = fn(candidates.model, X, n_instances=k, random_tie_break=False)
        idx = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.int64)
        if self.measure == "margin":
            scores = -mu.classifier_margin(candidates.model, X[idx])
        else:
            scores = getattr(mu, f"classifier_{self.measure}")(candidates.model, X[idx])
        return idx, np.asarray(scores, dtype=np.float64)


class ModalEntropy(ModalUncertainty):
    """modAL ``entropy_sampling``."""

    name = "modal_entropy"
    description = "modAL entropy sampling."

    def __init__(self) -> None:
        super().__init__(measure="entropy")


class ModalCommittee(_Peer):
    """modAL query by committee (``vote_entropy_sampling``), members by bagging.

    Parameters
    ----------
    n_members : int, default=5
    """

    name = "modal_qbc"
    description = "modAL query-by-committee, vote entropy over a bagged committee."
    package = "modAL"
    needs = frozenset({"model"})

    def __init__(self, *, n_members: int = COMMITTEE_SIZE) -> None:
        self.n_members = n_members

    def _select(self, candidates, k, rng):
        from modAL.disagreement import vote_entropy, vote_entropy_sampling
        from modAL.models import ActiveLearner, Committee

        X_lab, y_lab = _labeled(candidates, self.name)
        y_lab = np.unique(y_lab, return_inverse=True)[1]  # modAL counts votes as floats
        n = y_lab.shape[0]
        learners = []
        for _ in range(self.n_members):
            draw = rng.randint(n, size=n)
            if np.unique(y_lab[draw]).shape[0] < np.unique(y_lab).shape[0]:
                draw = np.arange(n)  # a resample that lost a class: use the full set
            learners.append(
                ActiveLearner(
                    estimator=clone(candidates.model),
                    X_training=X_lab[draw],
                    y_training=y_lab[draw],
                )
            )
        committee = Committee(learner_list=learners)
        X = _all_candidates(candidates)
        out = vote_entropy_sampling(committee, X, n_instances=k, random_tie_break=False)
        idx = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.int64)
        return idx, np.asarray(vote_entropy(committee, X[idx]), dtype=np.float64)


# --------------------------------------------------------------------------- scikit-activeml


def _skactiveml_problem(candidates: Candidates, name: str):
    """``(X, y, candidate positions, classes)`` in skactiveml's layout: NaN = unlabeled."""
    X_lab, y_lab = _labeled(candidates, name)
    classes, y_codes = np.unique(y_lab, return_inverse=True)
    X = _stack(X_lab, _all_candidates(candidates))
    if sp.issparse(X):  # scikit-activeml needs dense features
        X = X.toarray()
    y = np.concatenate([y_codes.astype(np.float64), np.full(candidates.n, np.nan)])
    cand = np.arange(y_lab.shape[0], y_lab.shape[0] + candidates.n)
    return X, y, cand, classes


class SkactivemlUncertainty(_Peer):
    """scikit-activeml ``UncertaintySampling``.

    Parameters
    ----------
    method : {"margin_sampling", "entropy", "least_confident"}
    """

    name = "skactiveml_margin"
    description = "scikit-activeml UncertaintySampling (margin by default)."
    package = "skactiveml"
    needs = frozenset({"model"})

    def __init__(self, *, method: str = "margin_sampling") -> None:
        self.method = method

    def _select(self, candidates, k, rng):
        from skactiveml.classifier import SklearnClassifier
        from skactiveml.pool import UncertaintySampling

        X, y, cand, classes = _skactiveml_problem(candidates, self.name)
        clf = SklearnClassifier(
            clone(candidates.model), classes=np.arange(classes.shape[0]), random_state=0
        )
        qs = UncertaintySampling(method=self.method, random_state=rng.randint(2**31 - 1))
        idx, util = qs.query(X, y, clf, candidates=cand, batch_size=k, return_utilities=True)
        return _from_skactiveml(idx, util, cand)


def _from_skactiveml(idx: np.ndarray, util: np.ndarray, cand: np.ndarray):
    idx = np.asarray(idx, dtype=np.int64)
    scores = np.asarray([util[b, i] for b, i in enumerate(idx)], dtype=np.float64)
    return idx - cand[0], scores


class SkactivemlQBC(_Peer):
    """scikit-activeml ``QueryByCommittee`` over a bagged ensemble of the model.

    Parameters
    ----------
    method : {"KL_divergence", "vote_entropy"}
    n_members : int, default=5
    """

    name = "skactiveml_qbc"
    description = "scikit-activeml QueryByCommittee (KL divergence, bagged committee)."
    package = "skactiveml"
    needs = frozenset({"model"})

    def __init__(self, *, method: str = "KL_divergence", n_members: int = COMMITTEE_SIZE) -> None:
        self.method = method
        self.n_members = n_members

    def _select(self, candidates, k, rng):
        from skactiveml.classifier import SklearnClassifier
        from skactiveml.pool import QueryByCommittee
        from sklearn.ensemble import BaggingClassifier

        X, y, cand, classes = _skactiveml_problem(candidates, self.name)
        seed = rng.randint(2**31 - 1)
        # scikit-activeml's documented pattern: members wrapped so each knows every class (a
        # bootstrap that misses a class would otherwise misalign the members' proba columns)
        codes = np.arange(classes.shape[0])
        member = SklearnClassifier(clone(candidates.model), classes=codes, random_state=seed)
        ensemble = SklearnClassifier(
            BaggingClassifier(member, n_estimators=self.n_members, random_state=seed),
            classes=codes,
            random_state=seed,
        )
        qs = QueryByCommittee(method=self.method, random_state=seed)
        idx, util = qs.query(X, y, ensemble, candidates=cand, batch_size=k, return_utilities=True)
        return _from_skactiveml(idx, util, cand)


class SkactivemlCoreSet(_Peer):
    """scikit-activeml ``CoreSet`` (greedy k-center on the features, labelled rows as centres)."""

    name = "skactiveml_coreset"
    description = "scikit-activeml CoreSet: greedy k-center on the features."
    package = "skactiveml"
    needs = frozenset()
    cold_start = True

    def _select(self, candidates, k, rng):
        from skactiveml.pool import CoreSet

        X, y, cand, _ = _skactiveml_problem(candidates, self.name)
        qs = CoreSet(random_state=rng.randint(2**31 - 1))
        idx, util = qs.query(_dense(X), y, candidates=cand, batch_size=k, return_utilities=True)
        return _from_skactiveml(idx, util, cand)


class SkactivemlTypiClust(_Peer):
    """scikit-activeml ``TypiClust``: k-means into ``n_labeled + k`` clusters over labelled rows
    and candidates, the most typical candidate of each of the largest uncovered clusters.

    Clusters with scikit-learn's ``KMeans`` over the whole (dense) pool every round, so its cost
    grows with pool size x clusters; the benchmark runs it on the small image sets only.

    Parameters
    ----------
    k : int, default=5
        Neighbours for typicality (scikit-activeml's default).
    """

    name = "skactiveml_typiclust"
    description = "scikit-activeml TypiClust: typical items of uncovered k-means clusters."
    package = "skactiveml"
    needs = frozenset()
    cold_start = True

    def __init__(self, *, k: int = 5) -> None:
        self.k = k

    def _select(self, candidates, k, rng):
        from skactiveml.pool import TypiClust

        if candidates.X_labeled is None:  # a cold start: no labelled rows yet
            X = _dense(_all_candidates(candidates))
            y = np.full(candidates.n, np.nan)
            cand = np.arange(candidates.n)
        else:
            X, y, cand, _ = _skactiveml_problem(candidates, self.name)
        seed = rng.randint(2**31 - 1)
        qs = TypiClust(random_state=seed, k=self.k, cluster_algo_dict={"random_state": seed})
        idx, util = qs.query(_dense(X), y, candidates=cand, batch_size=k, return_utilities=True)
        return _from_skactiveml(idx, util, cand)


# -------------------------------------------------------------------------------- small-text


class SmallTextCoreset(_Peer):
    """small-text ``greedy_coreset`` on the feature rows (labelled rows as existing centres).

    Parameters
    ----------
    distance_metric : {"euclidean", "cosine"}
    """

    name = "smalltext_coreset"
    description = "small-text greedy coreset on the features."
    package = "small_text"
    needs = frozenset()
    cold_start = True

    def __init__(self, *, distance_metric: str = "euclidean") -> None:
        self.distance_metric = distance_metric

    def _select(self, candidates, k, rng):
        from small_text.query_strategies.coresets import greedy_coreset

        X_lab = candidates.X_labeled
        X_cand = _all_candidates(candidates)
        if X_lab is None or X_lab.shape[0] == 0:
            X = _dense(X_cand)
            lab = np.empty(0, dtype=np.int64)
        else:
            X = _dense(_stack(X_lab, X_cand))
            lab = np.arange(X_lab.shape[0])
        unl = np.arange(X.shape[0] - candidates.n, X.shape[0])
        idx = np.asarray(
            greedy_coreset(X.astype(np.float32), unl, lab, k, distance_metric=self.distance_metric),
            dtype=np.int64,
        )
        # greedy_coreset may return positions into the unlabeled set or into X
        pos = idx - unl[0] if idx.size and idx.max() >= candidates.n else idx
        return pos, np.arange(k, 0, -1, dtype=np.float64)


PEERS: tuple[type[_Peer], ...] = (
    ModalUncertainty,
    ModalEntropy,
    ModalCommittee,
    SkactivemlUncertainty,
    SkactivemlQBC,
    SkactivemlCoreSet,
    SkactivemlTypiClust,
    SmallTextCoreset,
)


def available_peers() -> dict[str, bool]:
    """Which peer packages can be imported, by import name."""
    return {pkg: importlib.util.find_spec(pkg) is not None for pkg in PEER_PACKAGES}


def register_peers() -> list[str]:
    """Register the adapters of every installed peer library; returns their names.

    Idempotent. Adapters of libraries that are not installed are skipped; the install command
    is in :data:`PEER_PACKAGES`.
    """
    have = available_peers()
    names = []
    for cls in PEERS:
        if have.get(cls.package):
            register(cls)
            names.append(cls.name)
    return names
