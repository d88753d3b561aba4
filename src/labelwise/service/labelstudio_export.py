"""Label Studio exports of a project or a dataset version (one library call per route).

:func:`dataset_version_tasks` writes the labeled items of a snapshot, :func:`project_tasks`
every item of a project (a Label Studio project wants every task) with a prediction of the
project's latest model, scored as the ML backend scores them (minus the strategy's
active-learning score: the lowest score is the task labelwise would ask first, which is what
Label Studio's *Uncertainty sampling* serves first and what sorting its data manager by
prediction score, ascending, lists first). :func:`project_label_config` is the matching
labeling configuration.

The task format is :mod:`labelwise.labelstudio`'s; importing an export back
(:func:`labelwise.importers.import_labelstudio`) gives the same labels, annotators and
predictions.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from labelwise import labelstudio as ls
from labelwise.errors import LabelwiseError
from labelwise.storage.base import Annotation, BaseStore, Item, Project
from labelwise.tasks import TaskType

__all__ = [
    "dataset_version_tasks",
    "iter_json_array",
    "project_label_config",
    "project_tasks",
    "write_labelstudio",
]

log = logging.getLogger(__name__)
_PAGE = 10_000  # items per store call


def _items(store: BaseStore, project_id: int) -> Iterator[Item]:
    after_id = None  # keyset pages: OFFSET would reread every earlier page
    while True:
        page = store.list_items(project_id, limit=_PAGE, after_id=after_id)
        yield from page
        if len(page) < _PAGE:
            return
        after_id = page[-1].id


def _native(store: BaseStore, project_id: int) -> dict[int, list[dict[str, Any]]]:
    """Answers given in labelwise, per item id, as kept-annotation records."""
    names = {a.id: a.name for a in store.list_annotators()}
    out: dict[int, list[dict[str, Any]]] = {}
    anns: list[Annotation] = store.list_annotations(project_id)
    for a in anns:
        item_to = out.setdefault(a.item_id, [])
        item_to.append(
            ls.native_annotation(
                a.id,
                None if a.annotator_id is None else names.get(a.annotator_id),
                a.label,
                a.created,
                to_name="",  # set per item below
                lead_time=a.duration_s,
            )
        )
    return out


def _task(
    project: Project,
    item: Item,
    label: Any,
    native: dict[int, list[dict[str, Any]]],
    predictions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    to_name = ls.object_name(item.payload)
    answers = []
    for rec in native.get(item.id, []):
        rec = dict(rec)
        rec["result"] = [{**r, "to_name": to_name} for r in rec["result"]]
        answers.append(rec)
    return ls.build_task(
        item.id,
        item.external_id,
        item.payload,
        item.metadata,
        label=label,
        annotations=answers,
        predictions=predictions,
        task_type=project.task_type,
    )


def dataset_version_tasks(store: BaseStore, dataset_version_id: int) -> list[dict[str, Any]]:
    """Label Studio tasks of a dataset version: one per labeled item, with its label then.

    Parameters
    ----------
    store : BaseStore
    dataset_version_id : int

    Returns
    -------
    list of dict
        Sorted by external id (the snapshot's order); each task carries the item's data, its
        annotations (kept from a Label Studio import and given in labelwise) and kept
        predictions.
    """
    version = store.get_dataset_version(dataset_version_id)
    project = store.get_project(version.project_id)
    rows = store.list_dataset_rows(dataset_version_id)
    native = _native(store, project.id)
    wanted = {external_id for external_id, _ in rows}
    items = {it.external_id: it for it in _items(store, project.id) if it.external_id in wanted}
    return [
        _task(project, items[external_id], label, native)
        for external_id, label in rows
        if external_id in items  # a snapshot may outlive an item
    ]


def _model_predictions(
    store: BaseStore, project: Project, settings: Any
) -> dict[int, dict[str, Any]]:
    """Item id -> the latest model's prediction ({} without a usable model).

    Scored as the ML backend's ``/predict`` scores
    (:func:`labelwise.service.labelstudio_backend.score_items`): *minus* the strategy's
    active-learning score, the score labelwise queues tasks by; the label is the class of the
    most probable column.
    """
    from labelwise.service.labelstudio_backend import score_items

    if store.count_items(project.id) == 0:
        return {}  # score_items answers None for a project without a model or predictions
    item_ids = [it.id for it in _items(store, project.id)]
    scored = score_items(store, project.id, item_ids, settings=settings)
    if scored is None:
        return {}
    proba, scores, version, columns = scored
    labels = ls.predicted_labels(proba, columns, project.task_type)
    return {
        item_id: {
            "label": labels[k],
            "score": -round(float(scores[k]), 9),
            "model_version": version,
        }
        for k, item_id in enumerate(item_ids)
        if np.isfinite(scores[k])  # NaN: uploaded predictions without a row for the item
    }


def project_tasks(
    store: BaseStore, project_id: int, settings: Any, *, predictions: bool = True
) -> list[dict[str, Any]]:
    """Label Studio tasks of every item of a project (labeled or not), in item-id order.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings
        Where the feature cache lives (for the model's predictions).
    predictions : bool, default=True
        Add a prediction of the project's latest model to each task: ``result`` its predicted
        class (multilabel: the classes at probability >= 0.5), ``score`` minus the strategy's
        active-learning score (lower: more informative; what the ML backend's ``/predict``
        answers), ``model_version`` ``labelwise-<model version id>``.
        Items labeled by a model that no longer matches the features get none.

    Returns
    -------
    list of dict
        One task per item; labeled items carry their label as annotations.
    """
    project = store.get_project(project_id)
    native = _native(store, project_id)
    preds = _model_predictions(store, project, settings) if predictions else {}
    out = []
    for item in _items(store, project_id):
        label = item.label if item.status == "labeled" else None
        extra = []
        p = preds.get(item.id)
        if p is not None:
            extra.append(
                ls.prediction(
                    p["label"], p["score"], p["model_version"], ls.object_name(item.payload)
                )
            )
        out.append(_task(project, item, label, native, extra))
    return out


def project_label_config(store: BaseStore, project_id: int) -> str:
    """The Label Studio labeling configuration (XML) for a project's items and classes."""
    project = store.get_project(project_id)
    first = store.list_items(project_id, limit=1)
    kind, columns = "text", ()
    if first:
        payload = first[0].payload
        name = ls.object_name(payload)
        if name in ("text", "image"):
            kind = name
        else:
            kind, columns = "tabular", tuple(payload)
    if not project.classes:
        raise LabelwiseError(
            f"project {project.name!r} has no classes; a Label Studio config lists them."
        )
    task_type = TaskType(project.task_type)
    return ls.label_config(project.classes, task_type, kind, columns)


def iter_json_array(tasks: Sequence[dict[str, Any]], chunk: int = 500) -> Iterator[str]:
    """``tasks`` as one JSON array, in pieces (for a streamed response)."""
    import json

    yield "["
    for start in range(0, len(tasks), chunk):
        part = ",\n".join(json.dumps(t, ensure_ascii=False) for t in tasks[start : start + chunk])
        yield ("\n" if start == 0 else ",\n") + part
    yield "\n]\n"


def write_labelstudio(
    store: BaseStore,
    project_id: int,
    out: str | os.PathLike[str] | IO[str],
    *,
    settings: Any,
    version: int | None = None,
    predictions: bool = True,
) -> tuple[int, str | None]:
    """Write a project's Label Studio export to a path (atomically) or an open text stream.

    Without ``version`` every item (:func:`project_tasks`, with the latest model's
    predictions unless ``predictions=False``); with it the labeled items of that dataset
    version (:func:`dataset_version_tasks`). Returns ``(n_tasks, path or None)``.
    """
    if version is None:
        tasks = project_tasks(store, project_id, settings, predictions=predictions)
    else:
        dv = store.get_dataset_version(version)
        if dv.project_id != project_id:
            raise LabelwiseError(
                f"dataset version {version} belongs to project {dv.project_id}, not "
                f"{project_id}; list the project's versions with the API."
            )
        tasks = dataset_version_tasks(store, version)
    if not isinstance(out, str | os.PathLike):
        out.writelines(iter_json_array(tasks))
        return len(tasks), None
    path = Path(out)
    if not path.parent.exists():
        raise LabelwiseError(f"folder {path.parent} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(iter_json_array(tasks))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(tasks), str(path)
