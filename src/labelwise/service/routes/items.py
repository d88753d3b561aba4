"""Items: import a file (CSV, JSON Lines, Parquet) or a JSON list, and browse the pool.

An import is one transaction: a bad row is a 422 naming the line and the field, and nothing is
imported. A file upload larger than ``settings.import_async_bytes`` is imported by a worker
instead (202 with the job; :mod:`labelwise.service.big_imports`): checked whole first, then
written in committed batches that a retried job resumes. Re-importing is harmless; existing
external ids are skipped and counted, and those whose content differs are reported and handled
by ``?on_duplicate=skip|update|fail``.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from labelwise.errors import LabelMismatchError, LabelwiseError
from labelwise.importers import (
    ImportResult,
    ImportValidationError,
    check_value,
    import_items,
    import_labelstudio,
)
from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    SettingsDep,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import ImportResultPublic, ItemPublic, ItemsImport, JobPublic
from labelwise.storage.base import BaseStore, NewItem, Project, check_label

router = APIRouter(prefix="/api", tags=["items"])

_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "labelstudio": ".json"}
_IMPORT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ItemsImport"},
                        {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "format=labelstudio: a Label Studio task list.",
                        },
                    ]
                }
            },
        },
    }
}
_IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such project."},
    409: {"description": "on_duplicate=fail and ids repeat with other content; nothing imported."},
    422: {"description": "A bad row (line and field named); nothing was imported."},
}
_ASYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobPublic,
        "description": "A file upload over settings.import_async_bytes: queued as an import "
        "job; GET /api/jobs/{id} shows its progress (rows done / total).",
    }
}
OnDuplicate = Annotated[
    Literal["skip", "update", "fail"],
    Query(
        description="An existing external id with different content: keep the stored item "
        "(reported in n_changed / changed_ids), replace it, or import nothing (409)."
    ),
]


def _inline_items(project: Project, body: ItemsImport) -> Iterator[NewItem]:
    for line, it in enumerate(body.items, start=1):
        # the same limits as a file import (depth, sizes, NUL), so both backends agree
        check_value(it.payload, line, "payload")
        check_value(it.metadata, line, "metadata")
        check_value(it.label, line, "label")
        label = None
        if it.label is not None:
            try:
                label = check_label(project, it.label)
            except LabelMismatchError as e:
                raise ImportValidationError(str(e), line=line, field="label") from None
        if it.gold and label is None:
            raise ImportValidationError(
                "a gold item needs its known label.", line=line, field="label"
            )
        yield NewItem(it.external_id, it.payload, it.metadata, label=label, gold=it.gold)


def _import_json(
    store: BaseStore, project_id: int, body: ItemsImport, on_duplicate: str = "skip"
) -> ImportResult:
    project = store.get_project(project_id)
    w = store.write_items(project_id, _inline_items(project, body), on_duplicate=on_duplicate)
    n_read = len(body.items)
    return ImportResult(
        n_read=n_read,
        n_created=w.n_created,
        n_skipped=n_read - w.n_created - w.n_updated,
        n_updated=w.n_updated,
        n_changed=w.n_changed,
        changed_ids=w.changed_ids,
    )


@router.post(
    "/projects/{project_id}/items",
    status_code=status.HTTP_201_CREATED,
    summary="Add items given inline as JSON",
    responses=_IMPORT_RESPONSES,
    response_model_exclude_defaults=True,
)
def add_items(
    project_id: ProjectId,
    body: ItemsImport,
    store: StoreDep,
    owner: ProjectOwner,
    on_duplicate: OnDuplicate = "skip",
) -> ImportResultPublic:
    """Add items given in the body; items with a ``label`` are stored as labeled."""
    return ImportResultPublic.model_validate(_import_json(store, project_id, body, on_duplicate))


@router.post(
    "/projects/{project_id}/items:import",
    status_code=status.HTTP_201_CREATED,
    summary="Import items from a file upload or a JSON body",
    openapi_extra=_IMPORT_DOC,
    response_model=ImportResultPublic,
    responses={**_ASYNC_RESPONSE, **_IMPORT_RESPONSES},
    response_model_exclude_defaults=True,
)
async def import_project_items(
    project_id: ProjectId,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    owner: ProjectOwner,
    format: Annotated[
        Literal["csv", "jsonl", "parquet", "labelstudio"] | None,
        Query(
            description="File format; guessed from the file name when omitted (.json: "
            "labelstudio, a Label Studio JSON export, also accepted as the JSON body)."
        ),
    ] = None,
    text_field: Annotated[
        str, Query(max_length=200, description="Text column; empty for tabular rows.")
    ] = "text",
    id_field: Annotated[
        str, Query(max_length=200, description="External id column; empty to number rows.")
    ] = "id",
    label_field: Annotated[
        str, Query(max_length=200, description="Optional label column; empty for none.")
    ] = "",
    on_duplicate: OnDuplicate = "skip",
) -> Any:
    """Upload a CSV, JSON Lines or Parquet file as the multipart field ``file``, or send a
    JSON body ``{"items": [...]}``. Streams into one transaction: a bad row is a 422 naming
    the line and the field, and nothing is imported.

    A CSV, JSON Lines or Parquet upload larger than ``import_async_bytes`` (16 MiB) is
    answered 202 with an ``import`` job instead: a worker checks every row (a bad row fails
    the job, nothing stored), then imports in committed batches, resumed after a kill; follow
    it with GET /api/jobs/{id} (``progress``)."""
    from starlette.concurrency import run_in_threadpool

    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json") and format == "labelstudio":
        body_bytes = await request.body()
        result = await run_in_threadpool(
            import_labelstudio, store, project_id, body_bytes, source="labelstudio.json",
            on_duplicate=on_duplicate, batch_size=settings.import_batch_size,
        )  # fmt: skip
        return ImportResultPublic.model_validate(result)
    if ctype.startswith("application/json"):
        try:
            body = ItemsImport.model_validate_json(await request.body())
        except ValidationError as e:
            from fastapi.exceptions import RequestValidationError

            raise RequestValidationError(e.errors(include_url=False)) from None
        result = await run_in_threadpool(_import_json, store, project_id, body, on_duplicate)
        return ImportResultPublic.model_validate(result)
    if not ctype.startswith("multipart/form-data"):
        raise LabelwiseError(
            f"unsupported content type {ctype or 'none'!r}; upload a file as multipart/form-data "
            "field 'file', or send application/json {'items': [...]}."
        )
    await run_in_threadpool(store.get_project, project_id)  # 404 before reading the upload
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise LabelwiseError("no file uploaded; send it as multipart field 'file'.")
        fmt = format or _guess_format(upload.filename)
        with tempfile.TemporaryDirectory(prefix="labelwise-import-") as tmp:
            path = FilePath(tmp) / _upload_name(upload.filename, fmt)
            with path.open("wb") as out:
                await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
            if fmt != "labelstudio" and path.stat().st_size > settings.import_async_bytes:
                return await run_in_threadpool(
                    _queue_import, store, project_id, path, fmt, settings,
                    text_field=text_field or None, id_field=id_field or None,
                    label_field=label_field or None, on_duplicate=on_duplicate,
                )  # fmt: skip
            result = await run_in_threadpool(
                _import_file,
                store,
                project_id,
                path,
                fmt,
                text_field=text_field or None,
                id_field=id_field or None,
                label_field=label_field or None,
                batch_size=settings.import_batch_size,
                on_duplicate=on_duplicate,
            )
    return ImportResultPublic.model_validate(result)


def _queue_import(
    store: BaseStore, project_id: int, path: FilePath, fmt: str, settings: Any, **kw: Any
) -> JSONResponse:
    """A 202 with the queued ``import`` job of a big upload (:mod:`.big_imports`)."""
    from labelwise.service.big_imports import queue_import

    job_id = queue_import(
        store, project_id, path, fmt, data_dir=settings.data_dir, filename=path.name, **kw
    )
    job = JobPublic.model_validate(store.get_job(job_id))
    return JSONResponse(job.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


def _import_file(store: BaseStore, project_id: int, path: FilePath, fmt: str, **kw: Any) -> Any:
    """:func:`import_items`, with unreadable files (not UTF-8, not Parquet) reported as 422."""
    import pyarrow as pa

    try:
        return import_items(store, project_id, path, fmt, **kw)
    except UnicodeDecodeError as e:
        raise ImportValidationError(
            f"the file is not UTF-8 text ({e.reason} at byte {e.start}); is it really {fmt}?"
        ) from None
    except csv.Error as e:
        raise ImportValidationError(f"unreadable CSV ({e}).") from None
    except (pa.ArrowException, OSError) as e:
        raise ImportValidationError(f"unreadable {fmt} file ({e}).") from None


def _upload_name(filename: str | None, fmt: str) -> str:
    """The uploaded file's own name when its suffix fits (items remember it as their source)."""
    name = FilePath(filename or "").name
    suffix = FilePath(name).suffix.lower()
    if suffix == _SUFFIX[fmt] or (fmt == "csv" and suffix == ".tsv"):
        return name
    return f"upload{_SUFFIX[fmt]}"


def _guess_format(filename: str | None) -> str:
    suffix = FilePath(filename or "").suffix.lower()
    for fmt, suffixes in {
        "csv": (".csv", ".tsv"),
        "jsonl": (".jsonl", ".ndjson"),
        "parquet": (".parquet", ".pq"),
        "labelstudio": (".json",),
    }.items():
        if suffix in suffixes:
            return fmt
    raise LabelwiseError(
        f"cannot tell the format of {filename!r}; name the file .csv, .jsonl, .parquet or .json "
        "(Label Studio), or pass ?format=csv|jsonl|parquet|labelstudio."
    )


_NEXT_LINK = {
    "description": 'The next page, when this one is full: `<...?after_id=N&limit=L>; rel="next"`.',
    "schema": {"type": "string"},
}


@router.get(
    "/projects/{project_id}/items",
    summary="List items",
    responses={
        200: {"headers": {"Link": _NEXT_LINK}},
        404: {"description": "No such project (or not yours)."},
    },
)
def list_items(
    project_id: ProjectId,
    store: StoreDep,
    user: CurrentUser,
    request: Request,
    response: Response,
    status: Literal["unlabeled", "queued", "labeled", "skipped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="Keyset paging: items with an id above this one (the last id of the "
            "previous page; the Link header names the next page). Costs the same at any depth.",
        ),
    ] = None,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=2**31 - 1,
            description="Skip this many items first (kept for compatibility: the database "
            "reads and drops them, so deep pages get slow; page with after_id instead).",
        ),
    ] = 0,
) -> list[ItemPublic]:
    """Items ordered by id, optionally filtered by status, paged by keyset with ``after_id``
    (or ``offset``). A full page carries a ``Link: <...>; rel="next"`` header."""
    visible_project(store, user, project_id)
    items = store.list_items(
        project_id, status=status, limit=limit, offset=offset, after_id=after_id
    )
    if len(items) == limit:
        url = request.url.remove_query_params("offset").include_query_params(
            after_id=items[-1].id, limit=limit
        )
        response.headers["Link"] = f'<{url}>; rel="next"'
    return [ItemPublic.model_validate(it) for it in items]
