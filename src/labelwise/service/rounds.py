"""The production loop over a store: select a batch, take labels, retrain, select again.

One library call per API route (and per CLI command)::

    rnd = start_round(store, project_id, settings=settings)          # POST /projects/{id}/rounds
    ann = submit_annotation(store, task_id, annotator_id, "cat", settings=settings)
    result = run_retrain(store, job, settings=settings)              # run by the worker

- :func:`start_round` picks ``project.batch_size`` unlabeled items with the project's strategy (its
  ``cold_start_strategy`` while no usable model exists) and queues them as tasks: ``priority`` is
  the strategy's score, ``routing_tag`` the model's predicted class (the item's first tag while
  cold), so annotators with that skill see them first, and ``confidence`` the model's
  (calibrated) probability of that class (``None`` while cold).
- :func:`submit_annotation` / :func:`skip_task` record an answer; when the round's batch is
  complete (or ``settings.retrain_every`` labels came in) a durable ``retrain`` job is queued,
  at most one waiting per project (:meth:`~labelwise.storage.base.BaseStore.ensure_job`).
- :func:`undo_annotation` takes an annotator's last answer back while its round is open.
- :func:`run_retrain` fits a fresh model, validates and calibrates it, stores the artifact, a
  :class:`~labelwise.storage.base.ModelVersion` and a
  :class:`~labelwise.storage.base.DatasetVersion`, applies the stopping rule, closes the finished
  round and starts the next one; tasks still queued from older rounds are re-scored with the new
  model, so the queue follows the model between rounds.

Random-sampling baseline
------------------------
A fixed share of the pool, chosen by a hash of the item id (``settings.random_fraction``, 10 % by
default) is the *audit* subset. Strategies never pick from it; instead each round adds
``round(random_fraction * batch_size)`` items drawn uniformly at random from it. Their labels
are a uniform random sample of the pool, so :func:`run_retrain` fits a second model on them alone
and records its validation accuracy (``metrics["random_accuracy"]`` at
``metrics["n_random"]`` labels): a measured random-sampling learning curve, which
:mod:`labelwise.service.progress` compares with the active one.

Validation
----------
Items imported with a label and ``metadata["split"] == "validation"`` are the validation set and
never train. Without them, a deterministic 20 % of the labels (by item-id hash) is held out once
there are at least :data:`HOLDOUT_MIN_LABELS` labels; below that, accuracy is cross-validated
(stratified k-fold, out-of-fold probabilities). The deployed model is the one that was evaluated.

Crash safety
------------
Jobs are rows; a job killed half-way runs again from the start. :func:`run_retrain` writes the
artifact to a path named after the job (temporary file + ``os.replace``), reuses the model
version a previous attempt of the same job created, closes rounds idempotently, and starts a new
round only when no open round is left (:func:`start_round` also fills an open round left empty by
a crash instead of opening another).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.calibration import TemperatureScaling, expected_calibration_error
from labelwise.errors import LabelwiseError
from labelwise.service.features import FeatureMatrix, first_tag, project_features
from labelwise.stopping import StopDecision, StoppingState, from_config
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
    "MODELS",
    "LoadedModel",
    "RetrainResult",
    "audit_mask",
    "build_model",
    "load_model",
    "rescore_queued",
    "run_retrain",
    "skip_task",
    "start_round",
    "submit_annotation",
    "undo_annotation",
    "why_no_round",
]

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
HOLDOUT_MIN_LABELS = 50
MODELS = ("logreg", "nb")
_HOLDOUT_SALT = 1
_AUDIT_SALT = 2


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
    return {k: v for k, v in project.strategy_params.items() if k != "model"}


def build_model(project: Project, sparse: bool = False) -> Any:
    """A fresh, unfitted model for the project.

    ``project.strategy_params["model"]`` picks it: ``"logreg"`` (default,
    ``LogisticRegression(max_iter=1000)``) or ``"nb"`` (multinomial naive Bayes on sparse text
    features, Gaussian otherwise). Multilabel projects get one-vs-rest of the same model.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.naive_bayes import GaussianNB, MultinomialNB

    name = project.strategy_params.get("model", "logreg")
    if name == "logreg":
        model: Any = LogisticRegression(max_iter=1000)
    elif name == "nb":
        model = MultinomialNB() if sparse else GaussianNB()
    else:
        raise LabelwiseError(
            f"unknown model {name!r} in project {project.name!r}'s strategy_params; "
            f"use one of {list(MODELS)}."
        )
    if project.task_type == TaskType.MULTILABEL:
        model = OneVsRestClassifier(model)
    return model


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


def _n_classes(y: np.ndarray) -> int:
    return len(np.unique(y)) if y.ndim == 1 else int(y.shape[1])


def _can_fit(y: np.ndarray) -> bool:
    if y.shape[0] == 0:
        return False
    return _n_classes(y) >= 2 if y.ndim == 1 else bool(np.any(y.sum(axis=0) > 0))


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

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Temperature-scaled probabilities (identity without a fitted temperature)."""
        if self.temperature is None:
            return proba
        scaler = TemperatureScaling()
        scaler.temperature_ = self.temperature
        return scaler.transform(proba)


def load_model(
    store: BaseStore, project: Project, features: FeatureMatrix | None = None
) -> LoadedModel | None:
    """The latest model version's artifact, or ``None`` (no model yet, file gone, or it was
    fitted on features that no longer match, e.g. a TF-IDF vocabulary refitted after an
    import)."""
    import joblib

    versions = [v for v in store.list_model_versions(project.id) if v.artifact_path]
    if not versions:
        return None
    mv = versions[-1]
    path = Path(mv.artifact_path)  # type: ignore[arg-type]
    if not path.exists():
        log.warning("model artifact %s of model version %d is missing", path, mv.id)
        return None
    art = joblib.load(path)
    if features is not None:
        n_features = features.X.shape[1]
        stale = art["n_features"] != n_features or (
            features.kind == "text" and art["feature_key"] != features.key
        )
        if stale:
            log.info("model version %d was fitted on other features; ignoring it", mv.id)
            return None
    return LoadedModel(art["model"], art.get("temperature"), mv, art["feature_key"])


def _rows(X: Any, pos: np.ndarray) -> Any:
    return X[pos] if sp.issparse(X) else np.asarray(X[pos])


# --------------------------------------------------------------------------- rounds


def why_no_round(store: BaseStore, project_id: int) -> str | None:
    """Why :func:`start_round` would start nothing (``None``: it would start one)."""
    latest = store.find_latest_model_version(project_id)
    if latest is not None and latest.metrics.get("stop"):
        return f"stop now: {latest.metrics.get('stop_reason', 'the stopping rule was met')}"
    if store.count_items(project_id, "unlabeled") == 0:
        return "the pool is exhausted: no unlabeled items left"
    return None


def _covers(fm: FeatureMatrix, n_items: int, item_ids: np.ndarray) -> bool:
    """Whether ``fm`` still has a row for every item (none was added since it was computed)."""
    return fm.n == n_items and bool(np.isin(item_ids, fm.item_ids).all())


def _seed(project_id: int, n_rounds: int) -> int:
    return (project_id * 1_000_003 + n_rounds * 7919) % (2**32)


def start_round(
    store: BaseStore,
    project_id: int,
    *,
    settings: Any,
    now: datetime | None = None,
    features: FeatureMatrix | None = None,
) -> Round | None:
    """Select the next batch and queue it as tasks of a new round.

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
    project = store.get_project(project_id)
    reason = why_no_round(store, project_id)
    if reason is not None:
        log.info("project %d: no round started: %s", project_id, reason)
        return None
    pool_ids = np.asarray(store.list_unlabeled_item_ids(project_id), dtype=np.int64)
    fm = features
    if fm is None or not _covers(fm, store.count_items(project_id), pool_ids):
        fm = project_features(store, project_id, settings)  # none given, or items were added
    loaded = load_model(store, project, fm)
    rounds = store.list_rounds(project_id)
    rng = np.random.RandomState(_seed(project_id, len(rounds)))

    if loaded is None:
        strategy = get_strategy(project.cold_start_strategy)
    else:
        strategy = get_strategy(project.strategy, **_strategy_params(project))
    k = min(project.batch_size, pool_ids.shape[0])
    audit = audit_mask(pool_ids, settings.random_fraction)
    n_rand = min(int(np.floor(settings.random_fraction * k + 0.5)), int(audit.sum()))
    main_pool = pool_ids[~audit]
    n_rand = max(n_rand, k - main_pool.shape[0])  # a tiny pool: fill from the audit subset
    k_main = k - n_rand

    picked: list[int] = []
    scores: list[float] = []
    if k_main > 0:
        labeled_ids = [i for i, _ in store.list_labeled(project_id)]
        cands = Candidates(
            X=fm.X,
            model=None if loaded is None else loaded.model,
            row_idx=fm.positions(main_pool),
            X_labeled=_rows(fm.X, fm.positions(labeled_ids)) if labeled_ids else None,
            metadata=fm.metadata,
            task_type=project.task_type,
            proba_transform=None if loaded is None else loaded.transform,
        )
        q = strategy.select(cands, k_main, random_state=rng)
        picked = fm.item_ids[cands.pool_positions(q.idx)].tolist()
        scores = np.nan_to_num(q.scores, nan=0.0, posinf=0.0, neginf=0.0).tolist()
    if n_rand > 0:
        audit_ids = pool_ids[audit]
        picked += rng.choice(audit_ids, n_rand, replace=False).tolist()
        scores += [min(scores, default=0.0)] * n_rand

    confidences: list[float | None] | None = None
    if loaded is not None:
        pos = fm.positions(picked)
        proba = loaded.transform(np.asarray(loaded.model.predict_proba(_rows(fm.X, pos))))
        tags, confidences = _predictions(loaded.model, proba, project.classes)
    else:
        tags = [first_tag(store.get_item(i)) for i in picked]

    open_empty = rounds and rounds[-1].closed is None
    if open_empty and not store.has_tasks(project_id, round_id=rounds[-1].id):
        round_id = rounds[-1].id  # left empty by a crash between create_round and create_tasks
    else:
        round_id = store.create_round(project_id, strategy.name, now=now)
    store.create_tasks(
        round_id, picked, priorities=scores, routing_tags=tags, confidences=confidences, now=now
    )
    log.info(
        "project %d: round %d queued %d items (%s, %d random)",
        project_id, round_id, len(picked), strategy.name, n_rand,
    )  # fmt: skip
    return store.get_round(round_id)


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
    _maybe_enqueue_retrain(store, task.project_id, task.round_id, settings, now)
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
    _maybe_enqueue_retrain(store, task.project_id, task.round_id, settings, now)


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
    """

    project_id: int
    model_version_id: int | None
    dataset_version_id: int
    metrics: dict[str, Any]
    decision: StopDecision
    closed_round_ids: list[int] = field(default_factory=list)
    next_round_id: int | None = None
    n_rescored: int = 0


def _scores(project: Project, y_true: np.ndarray, proba: np.ndarray, model: Any) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    if project.task_type == TaskType.MULTILABEL:
        pred = (proba >= 0.5).astype(np.int64)
    else:
        pred = np.asarray(model.classes_, dtype=object)[np.argmax(proba, axis=1)]
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
    }


def _calibrate(project: Project, y_true: np.ndarray, proba: np.ndarray, model: Any) -> dict:
    """Fit a temperature on the evaluation probabilities; ECE before and after."""
    if project.task_type == TaskType.MULTILABEL or proba.shape[0] < 2:
        return {}
    classes = np.asarray(model.classes_, dtype=object)
    keep = np.isin(y_true, classes)
    if keep.sum() < 2:
        return {}
    p, y = proba[keep], y_true[keep]
    scaler = TemperatureScaling().fit(p, y, classes=classes)
    return {
        "method": "temperature",
        "temperature": scaler.temperature_,
        "ece": expected_calibration_error(p, y, classes=classes),
        "ece_calibrated": expected_calibration_error(scaler.transform(p), y, classes=classes),
        "n": int(keep.sum()),
    }


def _fit_and_evaluate(
    project: Project, X: Any, fm: FeatureMatrix, train: np.ndarray, y_train: np.ndarray,
    val: np.ndarray, y_val: np.ndarray,
) -> tuple[Any, dict[str, Any], np.ndarray, np.ndarray, np.ndarray | None]:  # fmt: skip
    """Fit the deployed model and get evaluation probabilities.

    Returns (model, info, y_eval, proba_eval, eval_ids); ``eval_ids`` is None for CV.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    sparse = sp.issparse(X)
    base = build_model(project, sparse)
    if val.shape[0]:
        model = clone(base).fit(_rows(X, fm.positions(train)), y_train)
        proba = np.asarray(model.predict_proba(_rows(X, fm.positions(val))))
        return model, {"eval": "validation_split"}, y_val, proba, val
    if train.shape[0] >= HOLDOUT_MIN_LABELS:
        hold = _holdout_mask(train)
        if hold.any() and _can_fit(y_train[~hold]):
            model = clone(base).fit(_rows(X, fm.positions(train[~hold])), y_train[~hold])
            proba = np.asarray(model.predict_proba(_rows(X, fm.positions(train[hold]))))
            return model, {"eval": "holdout"}, y_train[hold], proba, train[hold]
    Xt = _rows(X, fm.positions(train))
    model = clone(base).fit(Xt, y_train)
    if y_train.ndim == 1:
        n_splits = min(5, int(np.unique(y_train, return_counts=True)[1].min()))
        cv: Any = StratifiedKFold(n_splits, shuffle=True, random_state=0) if n_splits >= 2 else None
    else:
        n_splits = min(5, train.shape[0])
        cv = KFold(n_splits, shuffle=True, random_state=0) if n_splits >= 2 else None
    if cv is None:
        return model, {"eval": "none"}, y_train[:0], np.empty((0, 0)), None
    proba = np.asarray(cross_val_predict(clone(base), Xt, y_train, cv=cv, method="predict_proba"))
    return model, {"eval": f"cv{n_splits}"}, y_train, proba, None


def _stop_decision(
    project: Project, previous: Sequence[ModelVersion], metrics: Mapping[str, Any]
) -> StopDecision:
    """Apply the project's stopping rule to the history of model versions plus this one."""
    if not project.stopping:
        return StopDecision(False, "continue: the project has no stopping rule", "none")
    history = [*(v.metrics for v in previous), metrics]
    series = {
        key: [float(m[key]) for m in history if m.get(key) is not None]
        for key in ("accuracy", "macro_f1")
    }
    state = StoppingState(
        n_labeled=int(metrics.get("n_labels", 0)),
        round=len(history),
        metrics={k: v for k, v in series.items() if v},
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


def _random_baseline(
    project: Project, fm: FeatureMatrix, train: np.ndarray, y_train: np.ndarray,
    eval_ids: np.ndarray | None, y_eval: np.ndarray, annotated: set[int], fraction: float,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy of a model fitted on the random (audit) labels only, on the same eval set."""
    if eval_ids is None or eval_ids.shape[0] == 0 or fraction <= 0:
        return {"n_random": None, "random_accuracy": None}
    in_fit = ~np.isin(train, eval_ids)
    rand = in_fit & audit_mask(train, fraction) & np.isin(train, list(annotated))
    n_random = int(rand.sum())
    if not _can_fit(y_train[rand]):
        return {"n_random": n_random, "random_accuracy": None}
    model = build_model(project, sp.issparse(fm.X)).fit(
        _rows(fm.X, fm.positions(train[rand])), y_train[rand]
    )
    proba = np.asarray(model.predict_proba(_rows(fm.X, fm.positions(eval_ids))))
    acc = _scores(project, y_eval, proba, model)["accuracy"]
    return {"n_random": n_random, "random_accuracy": acc}


def _model_path(settings: Any, project_id: int, job_id: int) -> Path:
    return Path(settings.data_dir) / "models" / f"project_{project_id}" / f"job_{job_id}.joblib"


def run_retrain(
    store: BaseStore, job: Job, *, settings: Any, now: datetime | None = None
) -> RetrainResult:
    """Retrain a project's model after new labels, then queue the next batch.

    Steps: fit a fresh model on the labeled items (validation split excluded), evaluate it
    (accuracy, macro-F1) and fit a temperature on the evaluation probabilities (ECE before and
    after), measure the random-sampling baseline on the audit labels, save the artifact
    (joblib, atomic), record a dataset version and a model version with the stopping decision,
    close finished rounds, start the next round unless stopping (or an open round remains), and
    re-score tasks still queued from older rounds.

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
    fm = project_features(store, pid, settings)
    previous = store.list_model_versions(pid)
    existing = next((v for v in previous if v.metrics.get("job_id") == job.id), None)
    dv_id = store.create_dataset_version(pid, now=now)

    if existing is not None:  # an earlier attempt of this job got this far
        mv_id, metrics = existing.id, existing.metrics
        decision = StopDecision(
            bool(metrics.get("stop")), str(metrics.get("stop_reason", "")), "stored"
        )
    else:
        labeled = store.list_items(pid, status="labeled")
        val_items = [it for it in labeled if it.metadata.get("split") == "validation"]
        train_items = [it for it in labeled if it.metadata.get("split") != "validation"]
        train = np.array([it.id for it in train_items], dtype=np.int64)
        val = np.array([it.id for it in val_items], dtype=np.int64)
        y_train = _targets(project, [it.label for it in train_items])
        y_val = _targets(project, [it.label for it in val_items])
        n_labeled_items = len(labeled)
        metrics = {
            "job_id": job.id,
            "n_labels": int(train.shape[0]),
            "n_validation": int(val.shape[0]),
            "n_labeled_items": n_labeled_items,
            "dataset_version_id": dv_id,
            "accuracy": None,
            "macro_f1": None,
        }
        if not _can_fit(y_train):
            decision = StopDecision(
                False, "continue: label at least two classes before a model can be fitted", "none"
            )
            mv_id = None
            metrics.update(stop=False, stop_reason=decision.reason)
        else:
            model, info, y_eval, proba, eval_ids = _fit_and_evaluate(
                project, fm.X, fm, train, y_train, val, y_val
            )
            metrics.update(info)
            calibration: dict[str, Any] = {}
            if proba.shape[0]:
                metrics.update(_scores(project, y_eval, proba, model))
                calibration = _calibrate(project, y_eval, proba, model)
                metrics["ece"] = calibration.get("ece")
            annotated = {a.item_id for a in store.list_annotations(pid)}
            metrics.update(
                _random_baseline(
                    project,
                    fm,
                    train,
                    y_train,
                    eval_ids,
                    y_eval,
                    annotated,
                    settings.random_fraction,
                )
            )
            decision = _stop_decision(project, previous, metrics)
            metrics.update(stop=decision.stop, stop_reason=decision.reason)
            path = _model_path(settings, pid, job.id)
            artifact = {
                "model": model,
                "temperature": calibration.get("temperature"),
                "classes": list(project.classes),
                "task_type": project.task_type,
                "feature_kind": fm.kind,
                "feature_key": fm.key,
                "n_features": int(fm.X.shape[1]),
            }
            _atomic_dump(artifact, path)
            round_id = job.payload.get("round_id")
            mv_id = store.create_model_version(
                pid,
                round_id=round_id if isinstance(round_id, int) else None,
                metrics=metrics,
                calibration=calibration,
                artifact_path=str(path),
                now=now,
            )

    closed = []
    for r in store.list_rounds(pid):
        if r.closed is None and _round_complete(store, pid, r.id):
            store.close_round(r.id, now=now)
            closed.append(r.id)
    next_round_id = None
    still_open = [r for r in store.list_rounds(pid) if r.closed is None]
    if not decision.stop and not still_open:
        rnd = start_round(store, pid, settings=settings, now=now, features=fm)
        next_round_id = None if rnd is None else rnd.id
    n_rescored = 0
    loaded = load_model(store, project, fm) if mv_id is not None else None
    if loaded is not None:
        exclude = [] if next_round_id is None else [next_round_id]
        n_rescored = rescore_queued(store, project, fm, loaded, exclude_round_ids=exclude)
    return RetrainResult(
        project_id=pid,
        model_version_id=mv_id,
        dataset_version_id=dv_id,
        metrics=dict(metrics),
        decision=decision,
        closed_round_ids=closed,
        next_round_id=next_round_id,
        n_rescored=n_rescored,
    )
