"""Dataset versions (immutable label snapshots) and their export as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import StreamingResponse

from labelwise.service.deps import Admin, CurrentUser, ProjectId, StoreDep, visible_project
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
    project_id: ProjectId, store: StoreDep, admin: Admin
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
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "description": "One row per labeled item: id (external id) and label.",
        },
    },
    response_class=StreamingResponse,
)
def export_dataset_version(
    dataset_version_id: DatasetVersionId,
    store: StoreDep,
    user: CurrentUser,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "csv",
) -> StreamingResponse:
    """Stream the snapshot's ``(id, label)`` rows, sorted by id. CSV writes multilabel labels
    as ``a|b`` (what the importer reads back); JSON Lines keeps them as lists."""
    version = store.get_dataset_version(dataset_version_id)
    visible_project(store, user, version.project_id)
    rows = store.list_dataset_rows(dataset_version_id)
    name = f"dataset-{version.project_id}-v{version.id}-{version.content_hash[:12]}.{format}"
    if format == "csv":
        body, media = _iter_csv(rows), "text/csv; charset=utf-8"
    else:
        body, media = _iter_jsonl(rows), "application/x-ndjson"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
