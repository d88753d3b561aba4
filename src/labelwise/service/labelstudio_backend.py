"""Label Studio's ML-backend protocol, served by labelwise for one project.

A Label Studio project connects labelwise as its *model* (Label Studio: Project -> Settings ->
Model -> Connect model) at ``<labelwise>/labelstudio/<project_id>``; Label Studio appends
``/health``, ``/setup``, ``/predict`` and ``/webhook`` to that URL. The routes
(:mod:`labelwise.service.routes.labelstudio`) call one function of this module each:

- :func:`backend_health` -> ``{"status": "UP", "model_class": "labelwise", ...}``
- :func:`setup_backend` checks the Label Studio labeling config against the project (one
  ``<Choices>`` whose choices are classes of the project) and answers the ``model_version``:
  ``labelwise-<model version id>`` of the project's latest model (``labelwise-untrained``
  before the first retrain).
- :func:`predict_tasks` -> one prediction per task: the model's class (``choices``) and a
  ``score`` that is **minus the project's active-learning score** (the strategy's
  informativeness, higher = ask first, as labelwise queues tasks). Label Studio's *Uncertainty
  sampling* (Settings -> Annotation -> Task sampling) serves the task with the *lowest*
  prediction score first, and sorting the data manager by *Prediction score* ascending lists
  the most informative tasks first, so either way Label Studio asks what labelwise would ask.
- :func:`handle_webhook` stores the answer of a Label Studio annotation as a labelwise
  annotation (item found by ``data["labelwise_id"]``, annotator named after
  ``completed_by``), so labelwise's retraining runs exactly as for an answer given on its own
  labeling page; ``START_TRAINING`` queues a retrain job.

Items only
----------
Tasks are matched to the project's items by ``data["labelwise_id"]``
(:data:`labelwise.labelstudio.ID_FIELD`, written by labelwise's Label Studio export). A task
without it, or with an id labelwise does not know, gets an empty prediction (``result: []``,
``score: null``): text features are a TF-IDF fitted on the project's pool and tabular columns
are standardised over it, and neither fit is kept, so a text labelwise has never seen cannot be
featurised the way the model was trained. Import such tasks into labelwise first
(``labelwise project import --format labelstudio``); the next retrain covers them.

Recording Label Studio's answers
--------------------------------
A labelwise annotation belongs to a task leased by its annotator. For an answer from Label
Studio the item's queued task is used (or, when the item has none, a task is added to the
project's open round, or to a new round named ``labelstudio``), raised to the top of the queue
and leased to the Label Studio user's annotator, all under one lock, and the answer is
submitted with :func:`labelwise.service.rounds.submit_annotation`. An updated annotation
replaces the annotator's earlier one (:meth:`~labelwise.storage.base.BaseStore.revise_annotation`)
while its round is open; once a retrain closed the round, the item's label is set and a retrain
queued. ``ANNOTATIONS_DELETED`` carries only Label Studio's annotation ids, which labelwise
does not keep: the labels stay (the response says so); relabel in Label Studio to change one.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError
from labelwise.labelstudio import ID_FIELD, MAX_NAME_CHARS, annotator_name, predicted_labels
from labelwise.service.features import FeatureMatrix, project_features
from labelwise.service.rounds import (
    RESERVED_PARAMS,
    LoadedModel,
    load_model,
    submit_annotation,
)
from labelwise.storage.base import (
    BaseStore,
    Item,
    NotFound,
    Project,
    UndoError,
    check_label,
    utcnow,
)
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.base import ScoreStrategy
from labelwise.strategies.scores import entropy
from labelwise.tasks import TaskType

__all__ = [
    "MODEL_CLASS",
    "TRAIN_EVENTS",
    "ChoicesControl",
    "LabelStudioBackendError",
    "backend_health",
    "handle_webhook",
    "model_version_name",
    "parse_label_config",
    "predict_tasks",
    "score_items",
    "setup_backend",
]

log = logging.getLogger(__name__)

MODEL_CLASS = "labelwise"
#: Webhook actions that change labels or ask for training; others are acknowledged and ignored.
TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING")
#: The round a Label Studio answer joins when the project has no open round.
ROUND_NAME = "labelstudio"
_LEASE_SECONDS = 60
_RECORD_LOCK = threading.Lock()  # raise-claim-answer is one step per process


class LabelStudioBackendError(LabelwiseError):
    """A Label Studio request labelwise cannot serve (a labeling config without a matching
    ``<Choices>``, a webhook without an item id, ...); answered as a 422 naming the field."""


# --------------------------------------------------------------------------- label config


@dataclass(frozen=True)
class ChoicesControl:
    """The ``<Choices>`` control of a Label Studio labeling config.

    Attributes
    ----------
    from_name : str
        Its ``name`` (the ``from_name`` of results).
    to_name : str
        Its ``toName`` (the object it labels, e.g. ``text``).
    multiple : bool
        ``choice="multiple"`` (a multilabel answer).
    choices : tuple of str
        The ``value`` of each ``<Choice>``, in order.
    """

    from_name: str
    to_name: str
    multiple: bool
    choices: tuple[str, ...]


def parse_label_config(config: str) -> ChoicesControl:
    """The first ``<Choices>`` control of a Label Studio labeling config (XML).

    Raises
    ------
    LabelStudioBackendError
        If the XML does not parse or has no ``<Choices>`` with ``name`` and ``toName``.
    """
    if not isinstance(config, str) or not config.strip():
        raise LabelStudioBackendError("label_config: expected the labeling config XML.")
    if "<!DOCTYPE" in config.upper() or "<!ENTITY" in config.upper():
        raise LabelStudioBackendError("label_config: DTDs and entities are not accepted.")
    try:
        root = ET.fromstring(config)
    except ET.ParseError as e:
        raise LabelStudioBackendError(f"label_config: not valid XML ({e}).") from None
    for el in root.iter():
        if el.tag.lower() != "choices":
            continue
        name, to = el.get("name"), el.get("toName")
        if not name or not to:
            raise LabelStudioBackendError(
                "label_config: <Choices> needs name and toName attributes."
            )
        values = tuple(
            c.get("value") or c.get("alias") or "" for c in el.iter() if c.tag.lower() == "choice"
        )
        return ChoicesControl(name, to, el.get("choice", "single") == "multiple", values)
    raise LabelStudioBackendError(
        "label_config: no <Choices> control; labelwise predicts classification choices "
        "(see labelwise.labelstudio.label_config for a config that matches the project)."
    )


def _control(project: Project, config: Any) -> ChoicesControl:
    """The config's control, checked against the project (default: labelwise's own names)."""
    from labelwise.labelstudio import CONTROL_NAME

    if config is None or config == "":
        multiple = project.task_type == TaskType.MULTILABEL
        return ChoicesControl(CONTROL_NAME, "text", multiple, tuple(project.classes))
    control = parse_label_config(config)
    unknown = [c for c in control.choices if c not in project.classes]
    if unknown:
        raise LabelStudioBackendError(
            f"label_config: choices {unknown[:5]} are not classes of project {project.name!r} "
            f"({list(project.classes)[:10]}); the <Choice> values must be its class names."
        )
    return control


# --------------------------------------------------------------------------- health, setup


def model_version_name(store: BaseStore, project_id: int) -> str:
    """``labelwise-<id>`` of the project's latest stored model, else ``labelwise-untrained``;
    for a project ranked by uploaded or endpoint predictions ``labelwise-<origin>-v<n>`` of
    those in use (what :func:`predict_tasks` answers with)."""
    source = store.get_model_source(project_id).source
    if source != "builtin":
        origin = "upload" if source == "predictions" else "endpoint"
        up = store.find_latest_model_upload(project_id, "predictions", origin=origin)
        return "labelwise-untrained" if up is None else f"labelwise-{origin}-v{up.version}"
    versions = [v for v in store.list_model_versions(project_id) if v.artifact_path]
    return f"labelwise-{versions[-1].id}" if versions else "labelwise-untrained"


def backend_health(store: BaseStore, project_id: int) -> dict[str, Any]:
    """``GET /health``: ``{"status": "UP", "model_class": "labelwise", "project_id",
    "model_version"}``."""
    store.get_project(project_id)
    return {
        "status": "UP",
        "model_class": MODEL_CLASS,
        "project_id": project_id,
        "model_version": model_version_name(store, project_id),
    }


def setup_backend(store: BaseStore, project_id: int, schema: Any) -> dict[str, Any]:
    """``POST /setup``: check Label Studio's labeling config (``schema``) against the project and
    answer ``{"model_version": ...}``.

    Raises
    ------
    LabelStudioBackendError
        If the config has no ``<Choices>`` or names a choice that is not a class.
    """
    project = store.get_project(project_id)
    _control(project, schema)
    return {"model_version": model_version_name(store, project_id)}


# --------------------------------------------------------------------------- predict


def _strategy_scores(project: Project, cands: Candidates, proba: np.ndarray) -> np.ndarray:
    params = {k: v for k, v in project.strategy_params.items() if k not in RESERVED_PARAMS}
    strategy = get_strategy(project.strategy, **params)
    try:
        if not isinstance(strategy, ScoreStrategy):
            raise LabelwiseError("not a score strategy")
        scores = strategy.score_candidates(cands)
    except LabelwiseError:  # batch strategies (diversity, ...) score as labelwise re-scores
        scores = entropy(proba) if project.task_type != TaskType.MULTILABEL else proba.std(axis=1)
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)


_CACHE: OrderedDict[tuple[Any, ...], tuple[FeatureMatrix, LoadedModel]] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def _features_and_model(
    store: BaseStore, project: Project, settings: Any
) -> tuple[FeatureMatrix, LoadedModel] | None:
    """The project's features and latest model, kept for the next call.

    Label Studio asks for one task at a time while annotators work (interactive
    preannotations); reading every item of the project and the artifact each time would cost
    seconds on a large pool. The key changes when items are added, a model version is stored,
    or the project's settings change, so nothing stale is served.
    """
    latest = store.find_latest_model_version(project.id)
    if latest is None:
        return None
    key = (
        id(store), str(settings.data_dir), project.id, store.count_items(project.id),
        latest.id, repr(sorted(project.strategy_params.items())),
    )  # fmt: skip
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    fm = project_features(store, project.id, settings)
    loaded = load_model(store, project, fm)
    if loaded is None:
        return None
    with _CACHE_LOCK:
        _CACHE[key] = (fm, loaded)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return fm, loaded


def score_items(
    store: BaseStore, project_id: int, item_ids: Sequence[int], *, settings: Any
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The latest model's probabilities and active-learning scores of some items.

    Scores are those labelwise queues tasks by: the project's strategy on the latest model's
    (calibrated) probabilities, entropy for strategies that only score whole batches (as
    :func:`labelwise.service.rounds.rescore_queued` does).

    Parameters
    ----------
    store : BaseStore
    project_id : int
    item_ids : sequence of int, length n_samples
        Items of the project.
    settings : Settings

    Returns
    -------
    (proba, scores, model_version, columns) or None
        ``proba`` of shape (n_samples, n_columns), ``scores`` of shape (n_samples,) (higher:
        more informative), ``columns`` the class of each column of ``proba`` (the model's
        ``classes_``: scikit-learn sorts them, and a model knows only the classes labeled so
        far); ``None`` while the project has no usable model.
    """
    project = store.get_project(project_id)
    if store.get_model_source(project_id).source != "builtin":
        return _score_external(store, project, item_ids, settings)
    found = _features_and_model(store, project, settings)
    if found is None:
        return None
    fm, loaded = found
    version = f"labelwise-{loaded.model_version.id}"
    columns = proba_columns(loaded.model, project)
    if not len(item_ids):
        return np.zeros((0, len(columns))), np.zeros(0), version, columns
    cands = Candidates(
        X=fm.X,
        model=loaded.model,
        row_idx=fm.positions(list(item_ids)),
        metadata=fm.metadata,
        task_type=project.task_type,
        proba_transform=loaded.transform,
    )
    proba = np.asarray(cands.proba(), dtype=np.float64)
    if proba.shape[1] != len(columns):
        raise LabelwiseError(
            f"the model gives {proba.shape[1]} probabilities per item but project "
            f"{project.name!r} has {len(columns)} classes; retrain it."
        )
    return proba, _strategy_scores(project, cands, proba), version, columns


def _score_external(
    store: BaseStore, project: Project, item_ids: Sequence[int], settings: Any
) -> tuple[np.ndarray, np.ndarray, str, list[str]] | None:
    """:func:`score_items` for a project ranked by uploaded or endpoint predictions: the
    stored probabilities (what labelwise's own rounds rank by), not a built-in model's.

    Items without a stored row get NaN scores; the version is ``labelwise-<origin>-v<n>`` of
    the predictions in use. ``None`` while none are stored (or the strategy is refused).
    """
    from labelwise.service.model_sources import active_predictions

    fm = project_features(store, project.id, settings)
    try:
        ext = active_predictions(store, project, fm)
    except LabelwiseError:
        return None
    if ext is None:
        return None
    columns = list(project.classes)
    version = f"labelwise-{ext.upload.origin}-v{ext.upload.version}"
    if not len(item_ids):
        return np.zeros((0, len(columns))), np.zeros(0), version, columns
    rows = fm.positions(list(item_ids))
    cands = Candidates(
        X=ext.positions,
        model=ext.model,
        row_idx=rows,
        metadata=fm.metadata,
        task_type=project.task_type,
    )
    proba = np.asarray(cands.proba(), dtype=np.float64)
    scores = _strategy_scores(project, cands, proba)
    scores[~ext.has_row[rows]] = np.nan  # no prediction stored for these items
    return proba, scores, version, columns


def proba_columns(model: Any, project: Project) -> list[str]:
    """The class of each column of ``model``'s probabilities: its ``classes_`` when they are
    names, else the project's classes (one-vs-rest multilabel models number their columns)."""
    cls = getattr(model, "classes_", None)
    if cls is not None and np.asarray(cls).dtype.kind in "OUS":
        return [str(c) for c in cls]
    return list(project.classes)


def _task_item(store: BaseStore, project_id: int, task: Any) -> Item | None:
    data = task.get("data") if isinstance(task, Mapping) else None
    ext = data.get(ID_FIELD) if isinstance(data, Mapping) else None
    if ext is None or isinstance(ext, bool | dict | list):
        return None
    return store.find_item(project_id, str(ext))


def predict_tasks(
    store: BaseStore,
    project_id: int,
    tasks: Sequence[Any],
    label_config: Any = None,
    *,
    settings: Any,
) -> list[dict[str, Any]]:
    """``POST /predict``: one prediction per Label Studio task, in order.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    tasks : sequence of dict
        Label Studio tasks (``{"id", "data": {..., "labelwise_id": ...}}``).
    label_config : str, optional
        The Label Studio project's labeling config; results use its ``<Choices>`` names.
    settings : Settings

    Returns
    -------
    list of dict
        ``{"result": [choices], "score": -active_learning_score, "model_version"}`` per task;
        ``{"result": [], "score": None, ...}`` for a task labelwise has no item for, and for
        every task while the project has no model.
    """
    project = store.get_project(project_id)
    control = _control(project, label_config)
    items = [_task_item(store, project_id, t) for t in tasks]
    known = [i for i, it in enumerate(items) if it is not None]
    scored = score_items(store, project_id, [items[i].id for i in known], settings=settings)
    version = model_version_name(store, project_id) if scored is None else scored[2]
    out: list[dict[str, Any]] = [
        {"result": [], "score": None, "model_version": version} for _ in tasks
    ]
    if scored is None or not known:
        return out
    proba, scores, _, columns = scored
    labels = predicted_labels(proba, columns, project.task_type)
    for j, i in enumerate(known):
        if not np.isfinite(scores[j]):  # an external source without a row for this item
            continue
        label = labels[j]
        choices = [str(c) for c in label] if isinstance(label, list) else [str(label)]
        result = [
            {
                "from_name": control.from_name,
                "to_name": control.to_name,
                "type": "choices",
                "value": {"choices": choices},
            }
        ]
        out[i] = {"result": result, "score": -float(scores[j]), "model_version": version}
    return out


# --------------------------------------------------------------------------- webhook


def _answer(annotation: Mapping[str, Any], project: Project) -> Any:
    """The label of a Label Studio annotation's ``choices`` results (``None``: none)."""
    result = annotation.get("result")
    if not isinstance(result, list):
        raise LabelStudioBackendError("annotation.result: expected a list of results.")
    choices: list[str] = []
    for k, r in enumerate(result):
        if not isinstance(r, Mapping) or r.get("type") != "choices":
            continue
        value = r.get("value")
        got = value.get("choices") if isinstance(value, Mapping) else None
        if not isinstance(got, list) or not all(isinstance(c, str) for c in got):
            raise LabelStudioBackendError(
                f"annotation.result[{k}].value.choices: expected a list of class names."
            )
        choices += got
    if not choices:
        return None
    if project.task_type == TaskType.MULTILABEL:
        return sorted(set(choices))
    if len(set(choices)) > 1:
        raise LabelStudioBackendError(
            f"annotation.result: {sorted(set(choices))} are several choices; project "
            f"{project.name!r} takes one class per item."
        )
    return choices[0]


def _annotator_id(store: BaseStore, project_id: int, completed_by: Any) -> int:
    """The labelwise annotator of a Label Studio user (created, without a token, if new)."""
    try:
        name = annotator_name(completed_by)
    except ValueError as e:
        raise LabelStudioBackendError(f"annotation.completed_by: {e}") from None
    if name is None:
        raise LabelStudioBackendError("annotation.completed_by: the annotation has no user.")
    if len(name) > MAX_NAME_CHARS:  # as the file import: names are at most 200 characters
        raise LabelStudioBackendError(
            f"annotation.completed_by: a name of {len(name)} characters (at most {MAX_NAME_CHARS})."
        )
    found = store.find_annotator(name)
    if found is None:
        aid = store.create_annotator(name, token_hash=None, role="annotator")
    else:
        aid = found.id
    if project_id not in store.get_annotator(aid).projects:
        store.add_member(project_id, aid)
    return aid


def _queue_retrain(store: BaseStore, project_id: int, reason: str, now: datetime) -> int | None:
    payload = {"reason": reason, "n_annotations": store.count_annotations(project_id)}
    job_id, created = store.ensure_job("retrain", project_id, payload, now=now)
    return job_id if created else None


def _lease_for(store: BaseStore, project_id: int, item: Item, annotator_id: int, now: datetime):
    """A task on ``item`` leased to the annotator: its queued task, or a new one.

    The task is put first in the annotator's queue (above every task's priority, expired
    leases included, and routed to one of their skills if they have any) and claimed; a claim
    that still returns another task (a second process did the same) is released again.
    """
    tasks = store.list_tasks(project_id)
    top = max((t.priority for t in tasks), default=0.0) + 1.0
    skills = store.get_annotator(annotator_id).skills
    tag = [skills[0]] if skills else None
    mine = [t for t in tasks if t.item_id == item.id and t.status == "queued"]
    if mine:
        store.update_tasks([mine[0].id], priorities=[top], routing_tags=tag)
    else:
        open_rounds = [r for r in store.list_rounds(project_id) if r.closed is None]
        round_id = (
            open_rounds[-1].id
            if open_rounds
            else store.create_round(project_id, ROUND_NAME, now=now)
        )
        store.create_tasks(round_id, [item.id], priorities=[top], routing_tags=tag, now=now)
    task = store.claim_next_task(project_id, annotator_id, lease_seconds=_LEASE_SECONDS, now=now)
    if task is not None and task.item_id != item.id:
        store.release_task(task.id, annotator_id)
        task = None
    if task is None:
        raise LabelStudioBackendError(
            f"item {item.external_id!r}: another process holds its task right now; Label "
            "Studio may send the annotation again (update it) to retry."
        )
    return task


def _record(
    store: BaseStore,
    project: Project,
    item: Item,
    annotator_id: int,
    label: Any,
    *,
    settings: Any,
    duration_s: float | None,
    now: datetime,
) -> dict[str, Any]:
    mine = store.list_annotations(project.id, item_id=item.id, annotator_id=annotator_id)
    if mine:
        latest = mine[-1]
        if latest.label == label:
            return {"status": "unchanged", "annotation_id": latest.id}
        try:
            ann_id = store.revise_annotation(
                latest.id, annotator_id, label, duration_s=duration_s, now=now
            )
            return {"status": "revised", "annotation_id": ann_id}
        except UndoError:  # its round is closed: a retrain took the old label
            if item.status in ("gold", "review"):  # a reviewer decides, as for new answers
                raise LabelStudioBackendError(
                    f"item {item.external_id!r} is {item.status} in labelwise; answer it there."
                ) from None
            store.set_item_label(item.id, label)
            job = _queue_retrain(store, project.id, "Label Studio: label changed", now)
            return {"status": "relabeled", "annotation_id": latest.id, "retrain_job_id": job}
    if item.status in ("gold", "review"):
        raise LabelStudioBackendError(
            f"item {item.external_id!r} is {item.status} in labelwise; answer it there."
        )
    task = _lease_for(store, project.id, item, annotator_id, now)
    ann = submit_annotation(
        store, task.id, annotator_id, label, settings=settings, duration_s=duration_s, now=now
    )
    return {"status": "created", "annotation_id": ann.id}


def handle_webhook(
    store: BaseStore,
    project_id: int,
    payload: Mapping[str, Any],
    *,
    settings: Any,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``POST /webhook``: act on a Label Studio webhook event.

    ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` store the annotation's answer for its item
    and annotator (see the module docstring; a cancelled, i.e. skipped, annotation or one
    without choices stores nothing); ``START_TRAINING`` queues a retrain job; other actions
    (and ``ANNOTATIONS_DELETED``, see above) are acknowledged and change nothing.

    Returns
    -------
    dict
        ``{"status": "created" | "revised" | "relabeled" | "unchanged" | "queued" |
        "ignored", "action", ...}`` with ``item_id``, ``annotator_id``, ``annotation_id`` and
        ``label`` for annotations, ``retrain_job_id`` when a job was queued.

    Raises
    ------
    LabelStudioBackendError
        A malformed event or a task labelwise has no item for; nothing is stored.
    LabelMismatchError
        An answer that is not a class of the project.
    """
    now = utcnow() if now is None else now
    project = store.get_project(project_id)
    action = payload.get("action")
    if not isinstance(action, str):
        raise LabelStudioBackendError("action: expected the webhook's action name.")
    if action == "START_TRAINING":
        job = _queue_retrain(store, project_id, "Label Studio: START_TRAINING", now)
        return {"status": "queued", "action": action, "retrain_job_id": job}
    if action not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        why = (
            "labelwise does not keep Label Studio's annotation ids; the labels stay"
            if action == "ANNOTATIONS_DELETED"
            else "not an annotation event"
        )
        return {"status": "ignored", "action": action, "reason": why}
    annotation, task = payload.get("annotation"), payload.get("task")
    if not isinstance(annotation, Mapping):
        raise LabelStudioBackendError("annotation: expected the annotation object.")
    if not isinstance(task, Mapping):
        raise LabelStudioBackendError("task: expected the task object (send_payload on).")
    item = _task_item(store, project_id, task)
    if item is None:
        data = task.get("data")
        ext = data.get(ID_FIELD) if isinstance(data, Mapping) else None
        raise LabelStudioBackendError(
            f"task.data.{ID_FIELD}: "
            + ("missing" if ext is None else f"{ext!r} is no item of project {project.name!r}")
            + "; import the task into labelwise first (its export writes the id)."
        )
    out: dict[str, Any] = {"action": action, "item_id": item.id}
    if annotation.get("was_cancelled"):
        return {**out, "status": "ignored", "reason": "the annotation was cancelled (skipped)"}
    label = _answer(annotation, project)
    if label is None:
        return {**out, "status": "ignored", "reason": "the annotation has no choices"}
    label = check_label(project, label)  # before a round, task, lease or annotator is made
    lead = annotation.get("lead_time")
    duration = float(lead) if isinstance(lead, int | float) and not isinstance(lead, bool) else None
    if duration is not None and not (0 <= duration < 1e9):
        duration = None
    with _RECORD_LOCK:
        annotator_id = _annotator_id(store, project_id, annotation.get("completed_by"))
        try:
            done = _record(
                store, project, item, annotator_id, label,
                settings=settings, duration_s=duration, now=now,
            )  # fmt: skip
        except NotFound as e:  # e.g. the item was deleted meanwhile
            raise LabelStudioBackendError(str(e)) from None
    log.info(
        "project %d: Label Studio %s on item %d by annotator %d: %s",
        project_id, action, item.id, annotator_id, done["status"],
    )  # fmt: skip
    return {**out, "annotator_id": annotator_id, "label": label, **done}
