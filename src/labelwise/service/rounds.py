"""The production loop over a store: orchestration and crash safety around ``loop.Session``.

One library call per API route (and per CLI command)::

    rnd = start_round(store, project_id, settings=settings)          # POST /projects/{id}/rounds
    ann = submit_annotation(store, task_id, annotator_id, "cat", settings=settings)
    result = run_retrain(store, job, settings=settings)              # run by the worker

The service runs the library's loop, not one of its own. A round is three steps:

1. **Snapshot** (:func:`read_snapshot`): the project's feature matrix (rows = items in id
   order, so item ids map to pool positions at this edge only), the training labels, the
   validation labels and the unlabeled pool, plus the latest model version.
2. **Query**: :meth:`labelwise.loop.Session.from_state` rebuilds the session from the snapshot
   (seed = the project's, round = rounds so far) and queries it. The strategy, its cold start,
   committees, calibrated probabilities and the fit policy are the library's, so every
   registered strategy works here exactly as in :func:`labelwise.simulate.iter_simulate`
   (a parity test checks they select the same items for the same seed).
3. **Write**: the picks become tasks: ``priority`` is the strategy's score, ``routing_tag`` the
   model's predicted class (the item's first tag while cold), ``confidence`` the model's
   (calibrated) probability of that class. The hardest ``consensus_share`` of the picks get
   ``consensus_k`` tasks each (:mod:`labelwise.service.quality`).

Retraining (:func:`run_retrain`) calls one compute-band function,
:func:`labelwise.models.training.train_and_evaluate` (fit on every training label with the
session's fit policy, evaluate on the validation split, a held-out 20 % or by cross-validation,
fit a temperature), then stores the artifact, the model and dataset versions and the stopping
decision, closes finished rounds and starts the next one.

Random-sampling baseline
------------------------
A fixed share of the pool, chosen by a hash of the item id (``settings.random_fraction``, 10 % by
default) is the *audit* subset. Strategies never pick from it (it is outside the session's
``candidate_mask``); instead each round adds ``round(random_fraction * batch_size)`` items drawn
uniformly at random from it. Their labels are a uniform random sample of the pool, so
:func:`run_retrain` fits a second model on them alone and records its validation accuracy
(``metrics["random_accuracy"]`` at ``metrics["n_random"]`` labels): a measured random-sampling
learning curve, which :mod:`labelwise.service.progress` compares with the active one.

Validation
----------
Items imported with a label and ``metadata["split"] == "validation"`` are the validation set and
never train. Without them, a deterministic 20 % of the labels (by item-id hash) is held out for
evaluation once there are at least :data:`HOLDOUT_MIN_LABELS` labels; below that, accuracy is
cross-validated. The deployed model is fitted on every training label.

Stopping
--------
The project's rule (:mod:`labelwise.stopping`) sees the history of every recorded validation
metric (``accuracy``, ``macro_f1``, ``pr_auc`` for two classes) and, for the
stabilizing-predictions rule, each model version's predictions on a fixed *stop set* (up to
1,000 items chosen by a hash of the item id), kept in the model artifacts.

Project settings read here
--------------------------
``project.strategy_params`` carries the strategy's own parameters plus reserved keys
(:data:`RESERVED_PARAMS`): ``model`` (:data:`labelwise.models.training.MODELS`),
``calibration`` (``"temperature"``, the default, or ``"none"``), ``random_state`` (the session
seed; default the project id), ``random_fraction`` (the audit share; default
``settings.random_fraction``), ``committee_size`` (members of the default committee),
``keywords`` (keyword flag columns for a stratified cold start) and ``cold_start_params``
(parameters of the cold-start strategy, e.g. ``{"by": ["keyword:refund"]}``).

Crash safety
------------
Jobs are rows; a job killed half-way runs again from the start. :func:`run_retrain` writes the
artifact to a path named after the job (temporary file + ``os.replace``), reuses the model
version a previous attempt of the same job created, closes rounds idempotently, and starts a new
round only when no open round is left (:func:`start_round` also fills an open round left empty by
a crash instead of opening another).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.errors import LabelwiseError
from labelwise.service import model_sources, quality, webhooks
from labelwise.service.features import FeatureMatrix, first_tag, project_features
from labelwise.stopping import (
    StopDecision,
    StoppingState,
    from_config,
    iter_criteria,
    needs_stop_set,
)
from labelwise.storage.base import (
    Annotation,
    BaseStore,
    Job,
    ModelVersion,
    Project,
    Round,
    Task,
    check_label,
    utcnow,
)
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.base import ScoreStrategy
from labelwise.strategies.scores import entropy
from labelwise.tasks import TaskType

__all__ = [
    "HOLDOUT_FRACTION",
    "HOLDOUT_MIN_LABELS",
    "RESERVED_PARAMS",
    "LoadedModel",
    "RetrainResult",
    "Snapshot",
    "audit_mask",
    "build_model",
    "build_session",
    "early_round_due",
    "import_model",
    "load_model",
    "project_seed",
    "read_snapshot",
    "rescore_queued",
    "run_retrain",
    "selector_for",
    "skip_task",
    "start_round",
    "submit_annotation",
    "undo_annotation",
    "why_no_round",
    "withdraw_stale_tasks",
]

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
HOLDOUT_MIN_LABELS = 50
#: strategy_params keys read by the loop, not passed to the strategy
RESERVED_PARAMS = frozenset(
    {
        "model",
        "calibration",
        "random_state",
        "committee_size",
        "keywords",
        "cold_start_params",
        "random_fraction",
        "positive_class",
        "label_check",
        "features",  # how items are featurised (issue 11)
    }
)
STOP_SET_SIZE = 1000
_HOLDOUT_SALT = 1
_AUDIT_SALT = 2
_STOP_SET_SALT = 3
_AUDIT_DRAW = 10  # round_random_state purpose of the audit sample's draw


# --------------------------------------------------------------------------- helpers


def _unit_hash(ids: Any, salt: int) -> np.ndarray:
    """A deterministic number in ``[0, 1)`` per id (splitmix64 of ``id`` and ``salt``)."""
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def audit_mask(item_ids: Any, fraction: float) -> np.ndarray:
    """True for items of the fixed random *audit* subset (about ``fraction`` of all ids)."""
    return _unit_hash(item_ids, _AUDIT_SALT) < fraction


def _holdout_mask(item_ids: Any) -> np.ndarray:
    return _unit_hash(item_ids, _HOLDOUT_SALT) < HOLDOUT_FRACTION


def _stop_set_ids(item_ids: np.ndarray) -> np.ndarray:
    """Up to :data:`STOP_SET_SIZE` item ids with the smallest hash: fixed as items are added."""
    if item_ids.shape[0] <= STOP_SET_SIZE:
        return np.sort(item_ids)
    h = _unit_hash(item_ids, _STOP_SET_SALT)
    return np.sort(item_ids[np.argpartition(h, STOP_SET_SIZE)[:STOP_SET_SIZE]])


def _ids_key(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()[:16]


def _atomic_dump(obj: Any, path: Path) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _strategy_params(project: Project) -> dict[str, Any]:
    return {k: v for k, v in project.strategy_params.items() if k not in RESERVED_PARAMS}


def project_seed(project: Project) -> int:
    """The project's session seed: ``strategy_params["random_state"]``, else the project id."""
    seed = project.strategy_params.get("random_state", project.id)
    return int(seed) % 2**32


def random_fraction(project: Project, settings: Any) -> float:
    """The project's audit share: ``strategy_params["random_fraction"]``, else the setting's."""
    return float(project.strategy_params.get("random_fraction", settings.random_fraction))


def positive_class(project: Project, y_train: np.ndarray) -> Any:
    """The class PR-AUC treats as positive in a two-class project, else ``None``.

    ``strategy_params["positive_class"]`` when set; otherwise the rarer class among the labels
    (:func:`labelwise.models.training.default_positive_label`): rare positives are what PR-AUC
    is for.
    """
    if project.task_type == TaskType.MULTILABEL or len(project.classes) != 2:
        return None
    declared = project.strategy_params.get("positive_class")
    if declared is not None:
        return str(declared)
    from labelwise.models.training import default_positive_label

    return default_positive_label(y_train, np.asarray(project.classes, dtype=object))


def _calibrates(project: Project) -> bool:
    from labelwise.models.training import CALIBRATIONS

    name = project.strategy_params.get("calibration", "temperature")
    if name not in CALIBRATIONS:
        raise LabelwiseError(
            f"unknown calibration {name!r} in project {project.name!r}'s strategy_params; use "
            f"one of {list(CALIBRATIONS)}."
        )
    return name == "temperature"


def build_model(project: Project, sparse: bool = False) -> Any:
    """A fresh, unfitted model for the project: :func:`labelwise.models.training.make_model` of
    ``project.strategy_params["model"]`` (``"logreg"``, the default, or ``"nb"``)."""
    from labelwise.models.training import make_model

    name = project.strategy_params.get("model", "logreg")
    try:
        return make_model(name, project.task_type, sparse=sparse)
    except LabelwiseError as e:
        raise LabelwiseError(f"project {project.name!r}: {e}") from None


def _targets(project: Project, labels: Sequence[Any]) -> np.ndarray:
    """Single-label: an object array of labels; multilabel: a 0/1 matrix over the classes."""
    if project.task_type == TaskType.MULTILABEL:
        col = {c: j for j, c in enumerate(project.classes)}
        Y = np.zeros((len(labels), len(project.classes)), dtype=np.int64)
        for i, lab in enumerate(labels):
            for c in lab:
                Y[i, col[c]] = 1
        return Y
    return np.array([str(x) for x in labels], dtype=object)


def _predictions(
    model: Any, proba: np.ndarray, classes: Sequence[str]
) -> tuple[list[str | None], list[float | None]]:
    """The predicted class of each row and the model's probability of it.

    Parameters
    ----------
    model : fitted classifier
    proba : ndarray of shape (n_samples, n_classes)
        (Calibrated) probabilities of ``model``.
    classes : sequence of str
        The project's classes.

    Returns
    -------
    tags : list of str
    confidences : list of float
        ``proba[i, argmax_i]``; non-finite values become ``None``.
    """
    tags = _predicted_tags(model, proba, classes)
    if proba.shape[0] == 0:
        return tags, []
    top = np.max(proba, axis=1).astype(np.float64)
    return tags, [float(c) if np.isfinite(c) else None for c in top]


def _predicted_tags(model: Any, proba: np.ndarray, classes: Sequence[str]) -> list[str | None]:
    if proba.shape[0] == 0:
        return []
    best = np.argmax(proba, axis=1)
    cls = getattr(model, "classes_", None)
    if proba.shape[1] == len(classes) and (cls is None or len(cls) != proba.shape[1]):
        names = list(classes)
    elif cls is not None and np.asarray(cls).dtype.kind in "OUS":
        names = [str(c) for c in cls]
    else:  # one-vs-rest over project classes (classes_ are column indices)
        names = list(classes)
    return [names[j] for j in best]


@dataclass(frozen=True)
class LoadedModel:
    """A stored model artifact, ready to score."""

    model: Any
    temperature: float | None
    model_version: ModelVersion
    feature_key: str
    stop_set_key: str | None = None
    stop_set_pred: np.ndarray | None = None

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Temperature-scaled probabilities (identity without a fitted temperature)."""
        if self.temperature is None:
            return proba
        from labelwise.calibration import TemperatureScaling

        scaler = TemperatureScaling()
        scaler.temperature_ = self.temperature
        return scaler.transform(proba)


def _load_artifact(store: BaseStore, mv: ModelVersion) -> dict[str, Any] | None:
    import joblib

    path = Path(mv.artifact_path)  # type: ignore[arg-type]
    if not path.exists():
        log.warning("model artifact %s of model version %d is missing", path, mv.id)
        return None
    return joblib.load(path)


def _as_loaded(art: dict[str, Any], mv: ModelVersion) -> LoadedModel:
    return LoadedModel(
        art["model"],
        art.get("temperature"),
        mv,
        art["feature_key"],
        art.get("stop_set_key"),
        art.get("stop_set_pred"),
    )


def load_model(
    store: BaseStore, project: Project, features: FeatureMatrix | None = None
) -> LoadedModel | None:
    """The latest model version's artifact, or ``None`` (no model yet, file gone, or it was
    fitted on features that no longer match, e.g. a TF-IDF vocabulary refitted after an
    import)."""
    versions = [v for v in store.list_model_versions(project.id) if v.artifact_path]
    if not versions:
        return None
    mv = versions[-1]
    art = _load_artifact(store, mv)
    if art is None:
        return None
    if features is not None:
        n_features = features.X.shape[1]
        stale = art["n_features"] != n_features or (
            features.kind in ("text", "embeddings") and art["feature_key"] != features.key
        )
        if stale:
            log.info("model version %d was fitted on other features; ignoring it", mv.id)
            return None
    return _as_loaded(art, mv)


def _rows(X: Any, pos: np.ndarray) -> Any:
    return X[pos] if sp.issparse(X) else np.asarray(X[pos])


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class Snapshot:
    """What a round or a retrain reads from the store, with ids mapped to pool positions.

    Attributes
    ----------
    features : FeatureMatrix
        Row ``i`` is item ``features.item_ids[i]``.
    train_ids, y_train : training labels (ids ascending; validation items excluded)
    val_ids, y_val : validation labels (``metadata["split"] == "validation"``)
    unlabeled_ids : ndarray of int64
        Items with no label yet (ascending).
    """

    features: FeatureMatrix
    train_ids: np.ndarray
    y_train: np.ndarray
    val_ids: np.ndarray
    y_val: np.ndarray
    unlabeled_ids: np.ndarray

    @property
    def n_labeled_items(self) -> int:
        return int(self.train_ids.shape[0] + self.val_ids.shape[0])


def _row_mask(fm: FeatureMatrix, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``item_ids`` in ``fm`` by binary search on its sorted ids.

    Returns
    -------
    mask : ndarray of shape (fm.n,), bool
        True at the rows of the ids that have one.
    found : ndarray of shape (len(item_ids),), bool
        Whether each id has a row.
    """
    mask = np.zeros(fm.n, dtype=bool)
    if fm.n == 0:
        return mask, np.zeros(item_ids.shape[0], dtype=bool)
    pos = np.minimum(np.searchsorted(fm.item_ids, item_ids), fm.n - 1)
    found = fm.item_ids[pos] == item_ids
    mask[pos[found]] = True
    return mask, found


def _covers(fm: FeatureMatrix, n_items: int, item_ids: np.ndarray) -> bool:
    """Whether ``fm`` still has a row for every item (none was added since it was computed)."""
    return fm.n == n_items and bool(_row_mask(fm, item_ids)[1].all())


def read_snapshot(
    store: BaseStore, project: Project, settings: Any, features: FeatureMatrix | None = None
) -> Snapshot:
    """Read the project's features and labels (step 1 of a round and of a retrain).

    Ids come from the store as int64 arrays (:meth:`~labelwise.storage.base.BaseStore.
    list_item_ids`): a million-item pool costs 8 MB of ids, not a million item objects.
    """
    unlabeled = store.list_item_ids(project.id, "unlabeled")
    fm = features
    if fm is None or not _covers(fm, store.count_items(project.id), unlabeled):
        fm = project_features(store, project.id, settings)  # none given, or items were added
    labeled = store.list_labeled_arrays(project.id)
    val = labeled.validation
    labels = labeled.labels
    return Snapshot(
        features=fm,
        train_ids=labeled.item_ids[~val],
        y_train=_targets(project, [lab for lab, v in zip(labels, val, strict=True) if not v]),
        val_ids=labeled.item_ids[val],
        y_val=_targets(project, [lab for lab, v in zip(labels, val, strict=True) if v]),
        unlabeled_ids=unlabeled,
    )


def build_session(
    project: Project,
    snap: Snapshot,
    loaded: LoadedModel | None,
    *,
    round: int,
    random_fraction: float,
    external: Any = None,
    selector: Any = None,
) -> Any:
    """The project's :class:`~labelwise.loop.Session` at round ``round`` (step 2 of a round).

    Candidates are the unlabeled items outside the audit sample; the fitted model is the latest
    model version (``None``: the session fits one from the labels if it can, else starts cold).
    With ``external`` (:class:`~labelwise.service.model_sources.ExternalPredictions`: uploaded or
    endpoint predictions) the session's ``X`` is a column of pool positions, its model looks
    the probabilities up, the features become the session's embeddings, and items without a
    prediction are not candidates. ``selector`` is the session's (:func:`selector_for`).
    """
    from labelwise.loop import Session

    fm = snap.features
    candidate = _row_mask(fm, snap.unlabeled_ids)[0] & ~audit_mask(fm.item_ids, random_fraction)
    X, embeddings = fm.X, None
    fitted = None if loaded is None else loaded.model
    if external is not None:  # model sources (issue 11)
        candidate &= external.has_row
        X, fitted, loaded = external.positions, external.model, None
        embeddings = external.model.features
    return Session.from_state(
        build_model(project, sp.issparse(fm.X)),
        X,
        fitted_model=fitted,
        labeled_idx=fm.positions(snap.train_ids),
        y_labeled=snap.y_train,
        classes=np.asarray(project.classes, dtype=object),
        task_type=project.task_type,
        strategy=project.strategy,
        strategy_params=_strategy_params(project),
        cold_start=project.cold_start_strategy,
        cold_start_params=project.strategy_params.get("cold_start_params"),
        metadata=fm.metadata,
        candidate_mask=candidate,
        committee_size=int(project.strategy_params.get("committee_size", 5)),
        proba_transform=None if loaded is None else loaded.transform,
        random_state=project_seed(project),
        round=round,
        embeddings=embeddings,
        selector=selector,
    )


def selector_for(settings: Any) -> Any:
    """The session ``selector`` that ``settings.select_backend`` asks for (``None``: local).

    ``"ray"``: a :class:`~labelwise.scale.RaySelector` on ``settings.ray_address``, one per
    process (it holds the cluster connection).
    """
    if getattr(settings, "select_backend", "local") != "ray":
        return None
    address = getattr(settings, "ray_address", None)
    if address not in _SELECTORS:
        from labelwise.scale import RaySelector

        _SELECTORS[address] = RaySelector(address)
    return _SELECTORS[address]


_SELECTORS: dict[str | None, Any] = {}


# --------------------------------------------------------------------------- rounds


def why_no_round(store: BaseStore, project_id: int) -> str | None:
    """Why :func:`start_round` would start nothing (``None``: it would start one)."""
    latest = store.find_latest_model_version(project_id)
    if latest is not None and latest.metrics.get("stop"):
        return f"stop now: {latest.metrics.get('stop_reason', 'the stopping rule was met')}"
    if store.count_items(project_id, "unlabeled") == 0:
        return "the pool is exhausted: no unlabeled items left"
    return None


def start_round(
    store: BaseStore,
    project_id: int,
    *,
    settings: Any,
    now: datetime | None = None,
    features: FeatureMatrix | None = None,
) -> Round | None:
    """Select the next batch with the project's session and queue it as tasks of a new round.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings
        ``data_dir`` (features, models) and ``random_fraction``.
    now : datetime, optional
        Timezone-aware creation time of the round and its tasks.
    features : FeatureMatrix, optional
        The project's features when the caller already has them (:func:`run_retrain`), so
        they are not computed again.

    Returns
    -------
    Round or None
        ``None`` when the pool is exhausted or the stopping rule said stop;
        :func:`why_no_round` gives the reason.
    """
    from labelwise.loop import round_random_state

    project = store.get_project(project_id)
    reason = why_no_round(store, project_id)
    if reason is not None:
        log.info("project %d: no round started: %s", project_id, reason)
        return None
    snap = read_snapshot(store, project, settings, features)
    fm, pool_ids = snap.features, snap.unlabeled_ids
    loaded = load_model(store, project, fm)
    external = model_sources.active_predictions(store, project, fm)  # uploaded or endpoint
    rounds = store.list_rounds(project_id)
    refill = bool(rounds) and rounds[-1].closed is None
    refill = refill and not store.has_tasks(project_id, round_id=rounds[-1].id)
    n_before = len(rounds) - 1 if refill else len(rounds)  # the session's round number
    selector = selector_for(settings)
    session = build_session(
        project, snap, loaded, round=n_before, random_fraction=random_fraction(project, settings),
        external=external, selector=selector,
    )  # fmt: skip

    k = min(project.batch_size, pool_ids.shape[0])
    share = random_fraction(project, settings)
    audit = audit_mask(pool_ids, share)
    n_rand = min(int(np.floor(share * k + 0.5)), int(audit.sum()))
    n_main = int((~audit).sum())
    n_rand = max(n_rand, k - n_main)  # a tiny pool: fill from the audit subset
    k_main = k - n_rand

    picked: list[int] = []
    scores: list[float] = []
    strategy_name = (session.strategy if session.is_fitted else session.cold_start).name
    if k_main > 0:
        q = session.query(k_main)
        # the adaptive strategy's arm goes with the round: the dashboard shows its choices
        strategy_name = f"{q.strategy}:{q.arm}" if q.arm else q.strategy
        picked = fm.item_ids[q.idx].tolist()
        scores = np.nan_to_num(q.scores, nan=0.0, posinf=0.0, neginf=0.0).tolist()
    if n_rand > 0:
        rng = round_random_state(session.seed, n_before, _AUDIT_DRAW)
        picked += rng.choice(pool_ids[audit], n_rand, replace=False).tolist()
        scores += [min(scores, default=0.0)] * n_rand

    confidences: list[float | None] | None = None
    model = session.selecting_model_
    if model is not None:
        pos = fm.positions(picked)
        proba = np.asarray(model.predict_proba(_rows(session.X_pool, pos)))
        if session.proba_transform is not None:
            proba = session.proba_transform(proba)
        tags, confidences = _predictions(model, proba, project.classes)
    else:
        tags = [first_tag(store.get_item(i)) for i in picked]

    if refill:
        round_id = rounds[-1].id  # left empty by a crash between create_round and create_tasks
    else:
        round_id = store.create_round(project_id, strategy_name, now=now)
    store.create_tasks(
        round_id,
        picked,
        priorities=scores,
        routing_tags=tags,
        confidences=confidences,
        copies=quality.consensus_copies(store, project, scores[: len(picked) - n_rand], n_rand),
        now=now,
    )
    log.info(
        "project %d: round %d queued %d items (%s, %d random, selected %s)",
        project_id, round_id, len(picked), strategy_name, n_rand,
        "locally" if selector is None else f"by the {selector.last_backend} backend",
    )  # fmt: skip
    return store.get_round(round_id)


#: a start-round request that would embed more texts than this queues a ``select`` job instead
MAX_EMBED_IN_REQUEST = 500


def request_round(
    store: BaseStore, project_id: int, *, settings: Any, now: datetime | None = None
) -> Round | Job | None:
    """:func:`start_round` for an API request, which never embeds thousands of texts itself.

    A project with ``strategy_params["features"] = "embeddings"`` whose texts are not all
    embedded yet (~60 texts/s on two cores: the first round of a large project) has its round
    started by the worker: more than :data:`MAX_EMBED_IN_REQUEST` texts to embed queue a
    ``select`` job, which computes them (progress in the log) and starts the round; the job is
    returned. While such a job is queued or running, the same job is returned (no second round).
    With ``select_backend="ray"`` every round is started by the worker the same way (the worker
    holds the cluster connection; the API process never connects to Ray).

    Returns
    -------
    Round, Job or None
        The started round; the ``select`` job that will start it; ``None`` as
        :func:`start_round` (see :func:`why_no_round`).
    """
    from labelwise.service.features import pending_embeddings

    on_ray = getattr(settings, "select_backend", "local") == "ray"
    embeds = (store.get_project(project_id).strategy_params or {}).get("features") == "embeddings"
    reason = "select on the Ray cluster" if on_ray else None  # the worker holds the connection
    if embeds and not on_ray:
        n = pending_embeddings(store, project_id, settings)
        if n > MAX_EMBED_IN_REQUEST:
            reason = f"embed {n} texts before the round"
    if reason is not None and why_no_round(store, project_id) is None:
        job_id, created = store.ensure_job(
            "select", project_id, {"reason": reason}, statuses=("queued", "running"), now=now
        )
        if created:
            log.info("project %d: select job %d (%s)", project_id, job_id, reason)
        return store.get_job(job_id)
    if on_ray or embeds:
        busy = [
            j
            for j in store.list_jobs(project_id)
            if j.kind == "select" and j.status in ("queued", "running")
        ]
        if busy:
            return busy[0]  # the worker is starting the round
    return start_round(store, project_id, settings=settings, now=now)


# --------------------------------------------------------------------------- answers


def _round_complete(store: BaseStore, project_id: int, round_id: int) -> bool:
    """No task of the round is queued or leased (one ``EXISTS`` query on SQL stores)."""
    return not store.has_tasks(project_id, round_id=round_id, statuses=("queued", "leased"))


def _maybe_enqueue_retrain(
    store: BaseStore, project_id: int, round_id: int, settings: Any, now: datetime | None
) -> int | None:
    """Queue a retrain job when the round's batch is complete or enough labels came in.

    At most one retrain job waits per project: the check and the insert are one atomic
    :meth:`~labelwise.storage.base.BaseStore.ensure_job`, so two answers completing the batch at
    the same moment queue one job. A *running* retrain does not block a new one: it may have
    started before the last labels came in.
    """
    jobs = [j for j in store.list_jobs(project_id) if j.kind == "retrain"]
    if any(j.status == "queued" for j in jobs):
        return None
    if _round_complete(store, project_id, round_id):
        reason = "batch complete"
        n_answers = store.count_annotations(project_id)
    elif settings.retrain_every > 0 and not any(j.status == "running" for j in jobs):
        n_answers = store.count_annotations(project_id)
        base = jobs[-1].payload.get("n_annotations", 0) if jobs else 0
        if n_answers - base < settings.retrain_every:
            return None
        reason = f"{n_answers - base} new labels"
    else:
        return None
    payload = {"round_id": round_id, "reason": reason, "n_annotations": n_answers}
    job_id, created = store.ensure_job("retrain", project_id, payload, now=now)
    if not created:
        return None
    log.info("project %d: retrain job %d queued (%s)", project_id, job_id, reason)
    return job_id


#: the ``reason`` of a select job queued by :func:`_maybe_start_early` starts with this
OVERLAP_REASON = "round overlap"


def _open_tasks(store: BaseStore, project_id: int) -> int:
    """Tasks of the project still to answer (queued, or leased even if the lease expired)."""
    return store.count_tasks(project_id, statuses=("queued", "leased"))


def _selecting(store: BaseStore, project_id: int) -> bool:
    """Whether a ``select`` job of the project is waiting or running (it starts a round)."""
    return any(
        j.kind == "select" and j.status in ("queued", "running")
        for j in store.list_jobs(project_id)
    )


def early_round_due(store: BaseStore, project_id: int, settings: Any) -> bool:
    """Whether a queued overlap ``select`` job should still start a round when it runs.

    The job was queued when the open tasks fell to ``settings.round_overlap``; if a round was
    started since (a retrain, an API call), the open tasks are more than that again and a
    second early round would queue a batch nobody asked for.
    """
    return _open_tasks(store, project_id) <= int(getattr(settings, "round_overlap", 0))


def _maybe_start_early(
    store: BaseStore, project_id: int, settings: Any, now: datetime | None
) -> int | None:
    """Queue a ``select`` job for the next round once the open tasks fall to the overlap.

    With ``settings.round_overlap = m > 0``, the answer that leaves ``1..m`` tasks queued or
    leased in the project starts the next round from the current model, so the others keep
    working while a slow annotator holds the last tasks of the batch. At 0 open tasks the batch
    is complete and the retrain starts the next round (:func:`run_retrain`), as without
    overlap. The check and the insert of the job are one :meth:`~labelwise.storage.base.
    BaseStore.ensure_job`: two answers at once queue one job.
    """
    overlap = int(getattr(settings, "round_overlap", 0))
    if overlap <= 0 or why_no_round(store, project_id) is not None:
        return None
    n_open = _open_tasks(store, project_id)
    if not 0 < n_open <= overlap:
        return None
    payload = {"reason": f"{OVERLAP_REASON}: {n_open} open task(s) <= {overlap}"}
    job_id, created = store.ensure_job(
        "select", project_id, payload, statuses=("queued", "running"), now=now
    )
    if not created:
        return None
    log.info("project %d: select job %d queued early (%s)", project_id, job_id, payload["reason"])
    return job_id


def submit_annotation(
    store: BaseStore,
    task_id: int,
    annotator_id: int,
    label: Any,
    *,
    settings: Any,
    duration_s: float | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Record an annotator's label for a task they hold.

    The label is checked against the project's classes first (multilabel: a list of classes),
    so a bad label stores nothing. When the task's round has no queued or leased task left, or
    ``settings.retrain_every`` labels came in since the last retrain job, a ``retrain`` job is
    queued (unless one is already waiting).

    Raises
    ------
    LabelMismatchError
        If the label is not a class of the project; the message lists the classes.
    LeaseError
        If the annotator does not hold a valid lease on the task.
    """
    task = store.get_task(task_id)
    label = check_label(store.get_project(task.project_id), label)
    now = utcnow() if now is None else now
    ann_id = store.create_annotation(task_id, annotator_id, label, duration_s=duration_s, now=now)
    quality.after_answer(store, task.item_id)  # a consensus item resolves on its last answer
    webhooks.batch_completed(store, task.project_id, task.round_id, now=now)
    _maybe_enqueue_retrain(store, task.project_id, task.round_id, settings, now)
    _maybe_start_early(store, task.project_id, settings, now)
    # what was stored, without reading it back
    return Annotation(ann_id, task_id, task.item_id, annotator_id, label, now, duration_s)


def skip_task(
    store: BaseStore,
    task_id: int,
    annotator_id: int,
    *,
    settings: Any,
    now: datetime | None = None,
) -> None:
    """Skip a task the annotator holds; a skip can complete a batch like a label does."""
    task = store.get_task(task_id)
    store.skip_task(task_id, annotator_id, now=now)
    quality.after_answer(store, task.item_id)
    webhooks.batch_completed(store, task.project_id, task.round_id, now=now)
    _maybe_enqueue_retrain(store, task.project_id, task.round_id, settings, now)
    _maybe_start_early(store, task.project_id, settings, now)


def undo_annotation(
    store: BaseStore,
    annotation_id: int,
    annotator_id: int,
    *,
    settings: Any,
    now: datetime | None = None,
) -> Task:
    """Take back the annotator's most recent label; the task is theirs again to answer.

    Allowed while the annotation's round is open, i.e. before a retrain closed it (see
    :meth:`~labelwise.storage.base.BaseStore.undo_annotation`). The task comes back leased to
    the annotator for ``settings.lease_seconds``.

    A retrain job the undone answer queued (it completed the batch) is left as it is: it fits
    on the labels present when it runs, does not close the reopened round (a task of it is
    leased) and so starts no new round; the next answer to the reopened task completes the
    batch again and queues another retrain, unless the first is still waiting, in which case
    that one will see the new label.

    Raises
    ------
    UndoError
        Not the annotator's own most recent annotation, or its round is closed.
    NotFound
        No such annotation.
    """
    task = store.undo_annotation(
        annotation_id, annotator_id, lease_seconds=settings.lease_seconds, now=now
    )
    log.info("annotation %d undone: task %d is leased to annotator %d again",
             annotation_id, task.id, annotator_id)  # fmt: skip
    return task


# --------------------------------------------------------------------------- retraining


@dataclass(frozen=True)
class RetrainResult:
    """What one :func:`run_retrain` did.

    Attributes
    ----------
    project_id : int
    model_version_id : int or None
        ``None`` when no model could be fitted (fewer than two classes labeled).
    dataset_version_id : int
    metrics : dict
        As stored on the model version.
    decision : StopDecision
    closed_round_ids : list of int
    next_round_id : int or None
    n_rescored : int
        Queued tasks of older rounds whose priority and routing tag were refreshed.
    n_withdrawn : int
        Queued tasks the new model no longer ranks among the most informative, withdrawn
        (:func:`withdraw_stale_tasks`).
    """

    project_id: int
    model_version_id: int | None
    dataset_version_id: int
    metrics: dict[str, Any]
    decision: StopDecision
    closed_round_ids: list[int] = field(default_factory=list)
    next_round_id: int | None = None
    n_rescored: int = 0
    n_withdrawn: int = 0


#: validation metrics the service records, and so the ones a stopping rule may read
RECORDED_METRICS = ("accuracy", "macro_f1", "pr_auc")


def _stop_set_history(
    store: BaseStore, previous: Sequence[ModelVersion], key: str, window: int
) -> list[np.ndarray]:
    """Stop-set predictions of the latest earlier model versions on the same stop set."""
    out: list[np.ndarray] = []
    for mv in reversed([v for v in previous if v.artifact_path]):
        if len(out) >= window:
            break
        art = _load_artifact(store, mv)
        if art is None or art.get("stop_set_key") != key or art.get("stop_set_pred") is None:
            break  # a gap: the predictions before it are not successive models
        out.append(np.asarray(art["stop_set_pred"]))
    return out[::-1]


def _stop_decision(
    project: Project,
    previous: Sequence[ModelVersion],
    metrics: Mapping[str, Any],
    stop_set_predictions: Sequence[np.ndarray] = (),
) -> StopDecision:
    """Apply the project's stopping rule to the history of model versions plus this one."""
    if not project.stopping:
        return StopDecision(False, "continue: the project has no stopping rule", "none")
    history = [*(v.metrics for v in previous), metrics]
    # a metric not measured this round (e.g. PR-AUC when the evaluation rows hold no positive)
    # must not let an older version's value decide
    series = {
        key: [float(m[key]) for m in history if m.get(key) is not None]
        for key in RECORDED_METRICS
        if metrics.get(key) is not None
    }
    state = StoppingState(
        n_labeled=int(metrics.get("n_labels", 0)),
        round=len(history),
        metrics={k: v for k, v in series.items() if v},
        stop_set_predictions=list(stop_set_predictions),
    )
    try:
        return from_config(project.stopping).check(state)
    except LabelwiseError as e:
        return StopDecision(False, f"continue: the stopping rule cannot be checked ({e})", "error")


def rescore_queued(
    store: BaseStore,
    project: Project,
    fm: FeatureMatrix,
    loaded: LoadedModel,
    *,
    exclude_round_ids: Sequence[int] = (),
) -> int:
    """Refresh priority, routing tag and confidence of every still-queued task with a new model.

    Score strategies score the tasks' items as they would select them; other strategies (whose
    scores depend on the whole batch) fall back to entropy. Returns how many tasks changed.
    """
    tasks = [
        t for t in store.list_tasks(project.id, status="queued")
        if t.round_id not in set(exclude_round_ids)
    ]  # fmt: skip
    if not tasks:
        return 0
    pos = fm.positions([t.item_id for t in tasks])
    cands = Candidates(
        X=fm.X, model=loaded.model, row_idx=pos, metadata=fm.metadata,
        task_type=project.task_type, proba_transform=loaded.transform,
    )  # fmt: skip
    proba = cands.proba()
    strategy = get_strategy(project.strategy, **_strategy_params(project))
    try:
        if not isinstance(strategy, ScoreStrategy):
            raise LabelwiseError("not a score strategy")
        scores = strategy.score_candidates(cands)
    except LabelwiseError:
        scores = entropy(proba) if project.task_type != TaskType.MULTILABEL else proba.std(axis=1)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    tags, confidences = _predictions(loaded.model, proba, project.classes)
    return store.update_tasks(
        [t.id for t in tasks],
        priorities=scores.tolist(),
        routing_tags=tags,
        confidences=confidences,
    )


def withdraw_stale_tasks(
    store: BaseStore,
    project: Project,
    fm: FeatureMatrix,
    loaded: LoadedModel,
    *,
    random_fraction: float,
) -> int:
    """Withdraw queued tasks that the new model no longer ranks among the most informative.

    The new model scores the candidates of a round (unlabeled items outside the audit subset)
    together with the items of every queued task; a queued task whose score is below the
    ``project.batch_size``-th best is withdrawn (:meth:`~labelwise.storage.base.BaseStore.
    withdraw_tasks`: never a leased task, its item goes back to the pool). Audit-sample tasks
    (the random baseline) and tasks of consensus items are kept. Only score strategies
    (:class:`~labelwise.strategies.base.ScoreStrategy`) rank items one by one; the batch-aware
    others (diversity, committees over the batch, the adaptive bandit) withdraw nothing.

    Returns
    -------
    int
        How many tasks were withdrawn.
    """
    try:
        strategy = get_strategy(project.strategy, **_strategy_params(project))
    except LabelwiseError:
        return 0
    if not isinstance(strategy, ScoreStrategy):
        return 0
    tasks = store.list_tasks(project.id, status="queued")
    task_items = np.fromiter((t.item_id for t in tasks), dtype=np.int64, count=len(tasks))
    keep = ~audit_mask(task_items, random_fraction) & _row_mask(fm, task_items)[1]
    tasks = [t for t, k in zip(tasks, keep, strict=True) if k]
    n = int(project.batch_size)
    if not tasks:
        return 0
    pool = _row_mask(fm, store.list_item_ids(project.id, "unlabeled"))[0]
    pool &= ~audit_mask(fm.item_ids, random_fraction)
    queued_pos = fm.positions([t.item_id for t in tasks])
    rows = np.concatenate([queued_pos, np.flatnonzero(pool)])
    if rows.shape[0] <= n:
        return 0  # every task is among the best n
    cands = Candidates(
        X=fm.X, model=loaded.model, row_idx=rows, metadata=fm.metadata,
        task_type=project.task_type, proba_transform=loaded.transform,
    )  # fmt: skip
    try:
        scores = np.asarray(strategy.score_candidates(cands), dtype=np.float64)
    except LabelwiseError:
        return 0
    scores = np.nan_to_num(scores, nan=-np.inf)
    kth = np.partition(scores, rows.shape[0] - n)[rows.shape[0] - n]  # the n-th best score
    stale = [t.id for t, sc in zip(tasks, scores[: len(tasks)], strict=True) if sc < kth]
    withdrawn = store.withdraw_tasks(stale) if stale else []
    if withdrawn:
        log.info("project %d: %d stale task(s) withdrawn (score below %.4g, the %d-th best)",
                 project.id, len(withdrawn), kth, n)  # fmt: skip
    return len(withdrawn)


def _model_path(settings: Any, project_id: int, job_id: int) -> Path:
    return Path(settings.data_dir) / "models" / f"project_{project_id}" / f"job_{job_id}.joblib"


def _round_health(
    store: BaseStore,
    project: Project,
    snap: Snapshot,
    job: Job,
    previous: Sequence[ModelVersion],
    stop_key: str,
    stop_pred: np.ndarray,
    model: Any,
) -> dict[str, Any]:
    """Strategy-health signals of the round whose labels this retrain learns from.

    :mod:`labelwise.health` on what the service has: the new model's agreement with the
    previous one on the fixed stop set; the accuracy, under the previous model (the one that
    chose the batch), of the round's newly labeled items; the total variation distance between
    their classes and the classes the previous model predicts on the stop set (a sample of the
    pool); and the strategy (``"adaptive:<arm>"`` for the adaptive strategy's arm) that
    selected the round. ``None`` where a signal cannot be measured (no previous model, a
    multi-label project for the batch signals, a round without labels).
    """
    from labelwise.health import batch_accuracy, class_balance_tvd, prediction_agreement

    round_id = job.payload.get("round_id")
    try:
        rnd = store.get_round(round_id) if isinstance(round_id, int) else None
    except KeyError:
        rnd = None
    strategy, _, arm = (rnd.strategy if rnd is not None else "").partition(":")
    out: dict[str, Any] = {
        "round_id": rnd.id if rnd is not None else None,
        "round": rnd.number if rnd is not None else None,
        "strategy": strategy or None,
        "arm": arm or None,
        "agreement": None,
        "batch_accuracy": None,
        "class_balance_tvd": None,
        "n_batch": 0,
    }
    prev = next((v for v in reversed(previous) if v.artifact_path), None)
    art = None if prev is None else _load_artifact(store, prev)
    prev_pred = None if art is None else art.get("stop_set_pred")
    if prev_pred is not None and art.get("stop_set_key") == stop_key:
        out["agreement"] = prediction_agreement(np.asarray(prev_pred), stop_pred)
    if rnd is None or project.task_type == TaskType.MULTILABEL:
        return out
    done = np.unique(
        np.fromiter(
            (t.item_id for t in store.list_tasks(project.id, round_id=rnd.id, status="done")),
            dtype=np.int64,
        )
    )
    in_train = np.isin(snap.train_ids, done)
    batch_ids, y_batch = snap.train_ids[in_train], snap.y_train[in_train]
    out["n_batch"] = int(batch_ids.shape[0])
    if not batch_ids.shape[0]:
        return out
    fm = snap.features
    same_features = art is not None and art.get("n_features") == fm.X.shape[1]
    if same_features and fm.kind in ("text", "embeddings"):
        same_features = art.get("feature_key") == fm.key  # a refitted vocabulary: other columns
    if same_features:  # the model that chose the batch
        predicted = art["model"].predict(_rows(fm.X, fm.positions(batch_ids)))
        out["batch_accuracy"] = batch_accuracy(np.asarray(predicted), y_batch)
    pool_pred = stop_pred if prev_pred is None else np.asarray(prev_pred)
    out["class_balance_tvd"] = class_balance_tvd(
        y_batch, pool_pred, np.asarray(project.classes, dtype=object)
    )
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


def _train(
    store: BaseStore, project: Project, snap: Snapshot, job: Job, dv_id: int, settings: Any,
    previous: Sequence[ModelVersion], now: datetime,
) -> tuple[int | None, dict[str, Any], StopDecision]:  # fmt: skip
    """Fit, evaluate, calibrate and store a model version; the stopping decision with it."""
    from labelwise.loop import model_seed
    from labelwise.models.training import can_fit, fit_and_score, train_and_evaluate

    fm, pid = snap.features, project.id
    started = time.perf_counter()
    metrics: dict[str, Any] = {
        "job_id": job.id,
        "n_labels": int(snap.train_ids.shape[0]),
        "n_validation": int(snap.val_ids.shape[0]),
        "n_labeled_items": snap.n_labeled_items,
        "dataset_version_id": dv_id,
        "accuracy": None,
        "macro_f1": None,
    }
    if not can_fit(snap.y_train, project.task_type):
        decision = StopDecision(
            False, "continue: label at least two classes before a model can be fitted", "none"
        )
        metrics.update(stop=False, stop_reason=decision.reason)
        return None, metrics, decision

    template = build_model(project, sp.issparse(fm.X))
    seed = model_seed(project_seed(project))
    positive = positive_class(project, snap.y_train)
    X_train = _rows(fm.X, fm.positions(snap.train_ids))
    trained = train_and_evaluate(
        template,
        X_train,
        snap.y_train,
        X_val=_rows(fm.X, fm.positions(snap.val_ids)) if snap.val_ids.size else None,
        y_val=snap.y_val,
        holdout=_holdout_mask(snap.train_ids),
        task_type=project.task_type,
        calibrate=_calibrates(project),
        positive_label=positive,
        random_state=seed,
    )
    metrics["eval"] = trained.evaluation
    metrics.update(trained.metrics)
    metrics["ece"] = trained.calibration.get("ece") if trained.calibration else None

    # the random-sampling baseline: a model of the audit labels alone, on the same evaluation
    if trained.evaluation == "validation_split":
        eval_ids, y_eval = snap.val_ids, snap.y_val
    elif trained.eval_idx is not None:
        eval_ids, y_eval = snap.train_ids[trained.eval_idx], trained.y_eval
    else:
        eval_ids, y_eval = None, None
    metrics.update(n_random=None, random_accuracy=None)
    share = random_fraction(project, settings)
    metrics["random_macro_f1"] = None
    if eval_ids is not None and share > 0:
        annotated = np.fromiter({a.item_id for a in store.list_annotations(pid)}, dtype=np.int64)
        rand = (
            ~np.isin(snap.train_ids, eval_ids)
            & audit_mask(snap.train_ids, share)
            & np.isin(snap.train_ids, annotated)
        )
        scored = fit_and_score(
            template,
            _rows(fm.X, fm.positions(snap.train_ids[rand])),
            snap.y_train[rand],
            _rows(fm.X, fm.positions(eval_ids)),
            y_eval,
            task_type=project.task_type,
            positive_label=positive,
            random_state=seed,
        )
        metrics["n_random"] = int(rand.sum())
        metrics["random_accuracy"] = None if scored is None else scored["accuracy"]
        metrics["random_macro_f1"] = None if scored is None else scored["macro_f1"]

    stop_ids = _stop_set_ids(fm.item_ids)
    stop_key = _ids_key(stop_ids)
    stop_pred = np.asarray(trained.model.predict(_rows(fm.X, fm.positions(stop_ids))))
    stop_pred = stop_pred.reshape(stop_pred.shape[0], -1).ravel()  # multi-label: every cell
    history: list[np.ndarray] = []
    rule = from_config(project.stopping) if project.stopping else None
    if rule is not None and needs_stop_set(rule):
        window = max(c.window for c in iter_criteria(rule) if hasattr(c, "window"))
        history = _stop_set_history(store, previous, stop_key, window=window)
    decision = _stop_decision(project, previous, metrics, [*history, stop_pred])
    metrics.update(stop=decision.stop, stop_reason=decision.reason)
    metrics["health"] = _round_health(
        store, project, snap, job, previous, stop_key, stop_pred, trained.model
    )
    # what annotators wait for at a batch's end: the batch-size advice divides by it
    metrics["retrain_seconds"] = round(time.perf_counter() - started, 3)

    path = _model_path(settings, pid, job.id)
    artifact = {
        "model": trained.model,
        "temperature": trained.temperature,
        "classes": list(project.classes),
        "task_type": project.task_type,
        "feature_kind": fm.kind,
        "feature_key": fm.key,
        "n_features": int(fm.X.shape[1]),
        "stop_set_key": stop_key,
        "stop_set_pred": stop_pred,
    }
    _atomic_dump(artifact, path)
    round_id = job.payload.get("round_id")
    mv_id = store.create_model_version(
        pid,
        round_id=round_id if isinstance(round_id, int) else None,
        metrics=metrics,
        calibration=trained.calibration,
        artifact_path=str(path),
        now=now,
    )
    # suspect labels go to review after the model is stored (opt-in: strategy_params.label_check)
    quality.flag_label_issues(
        store, project, snap.train_ids, X_train, snap.y_train, template, random_state=seed
    )
    return mv_id, metrics, decision


def run_retrain(
    store: BaseStore, job: Job, *, settings: Any, now: datetime | None = None
) -> RetrainResult:
    """Retrain a project's model after new labels, then queue the next batch.

    Steps: re-aggregate consensus items from the whole annotation history
    (:func:`labelwise.service.quality.reaggregate`); read the snapshot; fit, evaluate and
    calibrate with :func:`labelwise.models.training.train_and_evaluate`; measure the random-sampling
    baseline on the audit labels; record the stop-set predictions; save the artifact (joblib,
    atomic); record a dataset version and a model version with the stopping decision; close
    finished rounds; start the next round unless stopping (or an open round remains); re-score
    tasks still queued from older rounds.

    Safe to run again after a crash: see the module docstring.

    Parameters
    ----------
    store : BaseStore
    job : Job
        A ``retrain`` job; ``payload["round_id"]`` names the round whose labels triggered it.
    settings : Settings
    now : datetime, optional

    Returns
    -------
    RetrainResult
    """
    if job.project_id is None:
        raise LabelwiseError(f"retrain job {job.id} has no project_id; queue it for a project.")
    now = utcnow() if now is None else now
    project = store.get_project(job.project_id)
    pid = project.id
    quality.reaggregate(store, pid)  # consensus labels from the whole history, before fitting
    snap = read_snapshot(store, project, settings)
    fm = snap.features
    previous = store.list_model_versions(pid)
    existing = next((v for v in previous if v.metrics.get("job_id") == job.id), None)
    source = store.get_model_source(pid).source  # model sources (issue 11)
    # an endpoint trains and answers before anything is written: its failure changes nothing
    fetched = None
    if existing is None:
        fetched = model_sources.endpoint_retrain(store, project, settings, job, now=now)
    dv_id = store.create_dataset_version(pid, now=now)

    if existing is not None:  # an earlier attempt of this job got this far
        mv_id, metrics = existing.id, existing.metrics
        decision = StopDecision(
            bool(metrics.get("stop")), str(metrics.get("stop_reason", "")), "stored"
        )
    elif fetched is not None or source == "predictions":  # the model is not labelwise's
        mv_id, metrics = fetched if fetched is not None else (None, {"source": "predictions"})
        decision = StopDecision(False, "continue: the project's model is external", "none")
    else:
        mv_id, metrics, decision = _train(store, project, snap, job, dv_id, settings, previous, now)
    webhooks.after_retrain(store, pid, mv_id, decision, job_id=job.id, now=now)  # before done

    closed = []
    for r in store.list_rounds(pid):
        # a round left empty by a crash between create_round and create_tasks is not complete:
        # start_round fills it, so the round numbers (and their seeds) stay as without the crash
        if (
            r.closed is None
            and store.has_tasks(pid, round_id=r.id)
            and _round_complete(store, pid, r.id)
        ):
            store.close_round(r.id, now=now)
            webhooks.batch_completed(store, pid, r.id, now=now)  # if the answer's emit was lost
            closed.append(r.id)
    # the new model re-scores what is still queued and withdraws what it no longer wants, before
    # the next round is selected (which then sees the withdrawn items in the pool)
    n_rescored = n_withdrawn = 0
    loaded = load_model(store, project, fm) if mv_id is not None and source == "builtin" else None
    if loaded is not None:
        n_rescored = rescore_queued(store, project, fm, loaded)
        if getattr(settings, "withdraw_stale", True):
            n_withdrawn = withdraw_stale_tasks(
                store, project, fm, loaded, random_fraction=random_fraction(project, settings)
            )
    if n_withdrawn:  # a round may be complete now
        for r in store.list_rounds(pid):
            if r.closed is None and store.has_tasks(pid, round_id=r.id):
                if _round_complete(store, pid, r.id):
                    store.close_round(r.id, now=now)
                    webhooks.batch_completed(store, pid, r.id, now=now)
                    closed.append(r.id)
    next_round_id = None
    overlap = int(getattr(settings, "round_overlap", 0))
    if (
        not decision.stop
        and _open_tasks(store, pid) <= overlap
        and not (overlap and _selecting(store, pid))  # an early round is being selected
    ):
        rnd = start_round(store, pid, settings=settings, now=now, features=fm)
        next_round_id = None if rnd is None else rnd.id
    return RetrainResult(
        project_id=pid,
        model_version_id=mv_id,
        dataset_version_id=dv_id,
        metrics=dict(metrics),
        decision=decision,
        closed_round_ids=closed,
        next_round_id=next_round_id,
        n_rescored=n_rescored,
        n_withdrawn=n_withdrawn,
    )


# --------------------------------------------------------------------------- pre-trained models


def import_model(
    store: BaseStore, project_id: int, path: str | Path, *, settings: Any,
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Make a model trained elsewhere the project's current model (transfer-learning start).

    The next round selects with the project's strategy under this model's uncertainty instead
    of the cold start; the first retrain replaces it with a model fitted on the project's own
    labels. Only load files you trust: a joblib/pickle file can run code when loaded.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    path : str or Path
        A joblib file of a fitted classifier with ``predict_proba`` whose ``classes_`` are
        classes of the project (strings), fitted on features like the project's (same width).
    settings : Settings
    now : datetime, optional

    Returns
    -------
    int
        The new model version's id. Its metrics hold the validation accuracy when the project
        has validation items.

    Raises
    ------
    LabelwiseError
        If the file cannot be read, is not a fitted classifier, or does not fit the project
        (classes or feature width); nothing is stored then.
    """
    import joblib

    from labelwise.models import check_fitted
    from labelwise.models.training import evaluation_metrics

    project = store.get_project(project_id)
    try:
        model = joblib.load(path)
    except Exception as e:  # any unpickling failure is the file's fault
        raise LabelwiseError(f"cannot load a model from {str(path)!r}: {e}") from None
    check_fitted(model)
    own = np.atleast_1d(np.asarray(getattr(model, "classes_", []), dtype=object))
    if project.task_type != TaskType.MULTILABEL:
        foreign = [c for c in own.tolist() if not isinstance(c, str) or c not in project.classes]
        if foreign or own.shape[0] < 2:
            raise LabelwiseError(
                f"the model's classes {own.tolist()[:10]} must be at least two of the project's "
                f"classes {list(project.classes)[:10]}, as strings; {foreign[:3]} are not. "
                "Fit the model on the project's class names."
            )
    snap = read_snapshot(store, project, settings)
    fm = snap.features
    try:
        proba = np.asarray(model.predict_proba(_rows(fm.X, np.arange(min(fm.n, 2)))))
    except Exception as e:  # a width or type mismatch shows up here
        raise LabelwiseError(
            f"the model cannot score this project's features ({fm.kind}, {fm.X.shape[1]} "
            f"columns): {e}"
        ) from None
    width = len(project.classes) if project.task_type == TaskType.MULTILABEL else own.shape[0]
    if proba.ndim != 2 or proba.shape != (min(fm.n, 2), width):
        raise LabelwiseError(
            f"the model's predict_proba returned shape {proba.shape}; expected one column per "
            f"{'project class' if project.task_type == TaskType.MULTILABEL else 'model class'} "
            f"({width})."
        )
    metrics: dict[str, Any] = {
        "source": "imported",
        "n_labels": 0,
        "n_validation": int(snap.val_ids.shape[0]),
        "n_labeled_items": snap.n_labeled_items,
        "accuracy": None,
        "macro_f1": None,
        "stop": False,
        "stop_reason": "continue: a pre-trained model, not yet refitted on this project's labels",
    }
    if snap.val_ids.size:
        val_proba = np.asarray(model.predict_proba(_rows(fm.X, fm.positions(snap.val_ids))))
        metrics.update(
            evaluation_metrics(
                snap.y_val, val_proba, np.asarray(model.classes_), task_type=project.task_type
            )
        )
        metrics["eval"] = "validation_split"
    stamp = (utcnow() if now is None else now).strftime("%Y%m%dT%H%M%S%f")
    target = (
        Path(settings.data_dir) / "models" / f"project_{project_id}" / f"imported_{stamp}.joblib"
    )
    artifact = {
        "model": model,
        "temperature": None,
        "classes": list(project.classes),
        "task_type": project.task_type,
        "feature_kind": fm.kind,
        "feature_key": fm.key,
        "n_features": int(fm.X.shape[1]),
    }
    _atomic_dump(artifact, target)
    mv_id = store.create_model_version(
        project_id, round_id=None, metrics=metrics, calibration={}, artifact_path=str(target),
        now=now,
    )  # fmt: skip
    webhooks.model_version_created(store, project_id, mv_id, now=now)
    log.info("project %d: imported model %s as model version %d", project_id, path, mv_id)
    return mv_id
