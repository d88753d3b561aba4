"""A project's model: its source (built-in, uploaded predictions, an HTTP endpoint) and uploads.

- ``GET /api/projects/{id}/model``: the source, every version of predictions and embeddings,
  the active ones and the last model job error (with its next attempt time);
- ``PUT /api/projects/{id}/model``: ``{"source": "builtin" | "predictions" | "endpoint",
  "endpoint": url}``; an endpoint is checked (no link-local or metadata addresses) and a
  ``predict`` job fetches its first predictions;
- ``POST /api/projects/{id}/model/predictions`` and ``.../model/embeddings``: a multipart file
  (field ``file``; for ``.npy`` also ``ids``, one external id a line), format from the file
  name or ``?format=``. A bad file is a 422 naming row and field, and nothing is stored.

The logic is :mod:`labelwise.service.model_sources`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, status
from starlette.datastructures import UploadFile

from labelwise.errors import LabelwiseError
from labelwise.service import model_sources
from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    SettingsDep,
    StoreDep,
    project_role,
    visible_project,
)
from labelwise.service.schemas import ModelSourcePublic, ModelSourceUpdate, ModelUploadPublic

router = APIRouter(prefix="/api", tags=["model"])

_NOT_FOUND = {404: {"description": "No such project (or not yours)."}}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "ids": {
                            "type": "string",
                            "format": "binary",
                            "description": "For .npy: the rows' external ids, one a line.",
                        },
                    },
                    "required": ["file"],
                }
            }
        },
    }
}
_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "A concurrent upload took this version number; upload again."},
    413: {"description": "The file is larger than LABELWISE_MAX_UPLOAD_BYTES."},
    422: {"description": "A bad file (row and field named); nothing was stored."},
}
UploadFormat = Annotated[
    Literal["csv", "parquet", "npz", "npy"] | None,
    Query(description="File format; guessed from the file name when omitted."),
]


@router.get("/projects/{project_id}/model", summary="Get the project's model", responses=_NOT_FOUND)
def get_model(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> ModelSourcePublic:
    """The model source, the versions of predictions and embeddings (oldest first), the ones
    in use, and the last error of a model job (a failing endpoint) with its next attempt.
    Members who are not owners see the endpoint URL without its user info and query string
    (where endpoint credentials go)."""
    visible_project(store, user, project_id)
    public = ModelSourcePublic.from_status(model_sources.model_status(store, project_id))
    if project_role(user, project_id) == "owner" or public.endpoint is None:
        return public
    # members see where the model is, not the credentials an endpoint URL may carry
    parts = urlsplit(public.endpoint)
    secrets = [s for s in (parts.netloc.rpartition("@")[0], parts.query) if s]
    endpoint, error = public.endpoint, public.last_error
    for secret in secrets:
        endpoint = endpoint.replace(secret, "***")
        error = None if error is None else error.replace(secret, "***")
    return public.model_copy(update={"endpoint": endpoint, "last_error": error})


@router.put(
    "/projects/{project_id}/model",
    summary="Set the project's model source",
    responses={
        **_NOT_FOUND,
        422: {
            "description": "Unknown source, an endpoint URL that is missing or refused "
            "(link-local, cloud metadata, not http(s)), or 'predictions' with none uploaded."
        },
    },
)
def put_model(
    project_id: ProjectId,
    body: ModelSourceUpdate,
    store: StoreDep,
    settings: SettingsDep,
    owner: ProjectOwner,
) -> ModelSourcePublic:
    """Choose ``builtin`` (labelwise fits its own model), ``predictions`` (the newest upload
    ranks the pool) or ``endpoint`` (an external model over HTTP: a predict job is queued)."""
    _, job_id = model_sources.set_model_source(
        store, project_id, body.source, body.endpoint, settings=settings
    )
    return ModelSourcePublic.from_status(model_sources.model_status(store, project_id), job_id)


async def _upload(
    kind: str,
    project_id: int,
    request: Request,
    store: Any,
    settings: Any,
    fmt: str | None,
) -> ModelUploadPublic:
    from starlette.concurrency import run_in_threadpool

    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise LabelwiseError(
            f"unsupported content type {ctype or 'none'!r}; upload the file as "
            "multipart/form-data field 'file'."
        )
    await run_in_threadpool(store.get_project, project_id)  # 404 before reading the upload
    fn = (
        model_sources.upload_predictions
        if kind == "predictions"
        else model_sources.upload_embeddings
    )
    async with request.form(max_files=2, max_fields=10) as form:
        upload, ids = form.get("file"), form.get("ids")
        if not isinstance(upload, UploadFile):
            raise LabelwiseError("no file uploaded; send it as multipart field 'file'.")
        name = FilePath(upload.filename or "upload").name
        resolved = model_sources.upload_format(name, fmt)
        with tempfile.TemporaryDirectory(prefix="labelwise-model-") as tmp:
            path = FilePath(tmp) / f"upload.{resolved}"
            with path.open("wb") as out:
                await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
            ids_path = None
            if isinstance(ids, UploadFile):
                ids_path = FilePath(tmp) / "ids.txt"
                with ids_path.open("wb") as out:
                    await run_in_threadpool(shutil.copyfileobj, ids.file, out, 1 << 20)
            up = await run_in_threadpool(
                lambda: fn(
                    store,
                    project_id,
                    path,
                    settings=settings,
                    fmt=resolved,
                    ids_path=ids_path,
                    filename=name,
                )
            )
    return ModelUploadPublic.model_validate(up)


@router.post(
    "/projects/{project_id}/model/predictions",
    status_code=status.HTTP_201_CREATED,
    summary="Upload per-item predictions",
    openapi_extra=_UPLOAD_DOC,
    responses=_UPLOAD_RESPONSES,
)
async def upload_predictions(
    project_id: ProjectId,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    owner: ProjectOwner,
    format: UploadFormat = None,
) -> ModelUploadPublic:
    """Class probabilities per item (CSV ``id,<class>...``, Parquet, ``.npz`` with ``ids`` and
    ``proba``, or ``.npy`` with an ``ids`` file). A new version; the project's source becomes
    ``predictions``, so the next rounds are ranked by them."""
    return await _upload("predictions", project_id, request, store, settings, format)


@router.post(
    "/projects/{project_id}/model/embeddings",
    status_code=status.HTTP_201_CREATED,
    summary="Upload per-item embeddings",
    openapi_extra=_UPLOAD_DOC,
    responses=_UPLOAD_RESPONSES,
)
async def upload_embeddings(
    project_id: ProjectId,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    owner: ProjectOwner,
    format: UploadFormat = None,
) -> ModelUploadPublic:
    """One embedding per item of the project (CSV ``id,e0,e1,...``, Parquet with an
    ``embedding`` list column or value columns, ``.npz`` with ``ids`` and ``embeddings``, or
    ``.npy`` with an ``ids`` file). A new version; it becomes the project's feature matrix."""
    return await _upload("embeddings", project_id, request, store, settings, format)
