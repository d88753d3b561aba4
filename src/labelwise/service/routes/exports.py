"""Dataset versions (immutable label snapshots) and their export as CSV, JSON Lines or Label
Studio JSON; a project's Label Studio export (every item, with the model's predictions) and
labeling config."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from labelwise.service import labelstudio_export
from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    SettingsDep,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import MAX_ID, DatasetVersionPublic

router = APIRouter(prefix="/api", tags=["exports"])
DatasetVersionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Dataset version id.")]
_NOT_FOUND = {404: {"description": "No such project or dataset version (or not yours)."}}
_CHUNK = 1000  # rows per streamed chunk


@router.get(
    "/projects/{project_id}/dataset-versions",
    summary="List dataset versions",
    responses=_NOT_FOUND,
)
def list_dataset_versions(
    project_id: ProjectId, store: StoreDep, user: CurrentUser
) -> list[DatasetVersionPublic]:
    """Snapshots of the project's labels, oldest first (one per retrain, plus manual ones)."""
    visible_project(store, user, project_id)
    return [DatasetVersionPublic.model_validate(v) for v in store.list_dataset_versions(project_id)]


@router.post(
    "/projects/{project_id}/dataset-versions",
    status_code=status.HTTP_201_CREATED,
    summary="Snapshot the current labels",
    responses=_NOT_FOUND,
)
def create_dataset_version(
    project_id: ProjectId, store: StoreDep, owner: ProjectOwner
) -> DatasetVersionPublic:
    """Freeze the project's current labels as a version (the existing one if nothing changed)."""
    return DatasetVersionPublic.model_validate(
        store.get_dataset_version(store.create_dataset_version(project_id))
    )


def _csv_label(label: Any) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, list):  # multilabel: a|b, as the importer reads it
        return "|".join(str(x) for x in label)
    return json.dumps(label)


def _iter_csv(rows: list[tuple[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "label"])
    for i, (ext, label) in enumerate(rows, start=1):
        writer.writerow([ext, _csv_label(label)])
        if i % _CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _iter_jsonl(rows: list[tuple[str, Any]]) -> Iterator[str]:
    for start in range(0, len(rows), _CHUNK):
        yield "".join(
            json.dumps({"id": ext, "label": label}, ensure_ascii=False) + "\n"
            for ext, label in rows[start : start + _CHUNK]
        )


@router.get(
    "/dataset-versions/{dataset_version_id}/export",
    summary="Export a dataset version",
    responses={
        **_NOT_FOUND,
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}, "application/json": {}},
            "description": "One row per labeled item: id (external id) and label; for "
            "format=labelstudio one Label Studio task per labeled item.",
        },
    },
    response_class=StreamingResponse,
)
def export_dataset_version(
    dataset_version_id: DatasetVersionId,
    store: StoreDep,
    user: CurrentUser,
    format: Annotated[
        Literal["csv", "jsonl", "labelstudio"], Query(description="csv, jsonl or labelstudio")
    ] = "csv",
) -> StreamingResponse:
    """Stream the snapshot's ``(id, label)`` rows, sorted by id. CSV writes multilabel labels
    as ``a|b`` (what the importer reads back); JSON Lines keeps them as lists; ``labelstudio``
    writes a Label Studio task list (data, annotations with their annotators, predictions)
    that ``items:import?format=labelstudio`` reads back."""
    version = store.get_dataset_version(dataset_version_id)
    visible_project(store, user, version.project_id)
    if format == "labelstudio":
        tasks = labelstudio_export.dataset_version_tasks(store, dataset_version_id)
        name = f"dataset-{version.project_id}-v{version.id}-labelstudio.json"
        return _json_download(tasks, name)
    rows = store.list_dataset_rows(dataset_version_id)
    name = f"dataset-{version.project_id}-v{version.id}-{version.content_hash[:12]}.{format}"
    if format == "csv":
        body, media = _iter_csv(rows), "text/csv; charset=utf-8"
    else:
        body, media = _iter_jsonl(rows), "application/x-ndjson"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _json_download(tasks: list[dict[str, Any]], name: str) -> StreamingResponse:
    return StreamingResponse(
        labelstudio_export.iter_json_array(tasks),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/projects/{project_id}/export",
    summary="Export every item of a project (Label Studio JSON)",
    responses={
        404: {"description": "No such project (or not yours)."},
        422: {"description": "The project's items cannot be featurised for predictions."},
        200: {
            "content": {"application/json": {}},
            "description": "One Label Studio task per item, labeled or not, with a prediction "
            "of the latest model (score: minus the strategy's score, as the ML backend's "
            "/predict: lower = label first).",
        },
    },
    response_class=StreamingResponse,
)
def export_project(
    project_id: ProjectId,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
    format: Annotated[Literal["labelstudio"], Query(description="labelstudio")] = "labelstudio",
    predictions: Annotated[
        bool, Query(description="Add the latest model's prediction to each task.")
    ] = True,
) -> StreamingResponse:
    """Every item as a Label Studio task (a Label Studio project wants them all): data,
    annotations with their annotators, kept predictions and the latest model's prediction."""
    visible_project(store, user, project_id)
    tasks = labelstudio_export.project_tasks(store, project_id, settings, predictions=predictions)
    return _json_download(tasks, f"project-{project_id}-labelstudio.json")


@router.get(
    "/projects/{project_id}/labelstudio-config",
    summary="The Label Studio labeling config of a project",
    responses={
        404: {"description": "No such project (or not yours)."},
        422: {"description": "The project has no classes (or its columns are no names)."},
        200: {"content": {"application/xml": {}}, "description": "The <View> XML."},
    },
    response_class=PlainTextResponse,
)
def labelstudio_config(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> Any:
    """The ``<View>`` to paste into Label Studio (Settings, Labeling Interface, Code)."""
    visible_project(store, user, project_id)
    xml = labelstudio_export.project_label_config(store, project_id)
    return PlainTextResponse(xml, media_type="application/xml")
