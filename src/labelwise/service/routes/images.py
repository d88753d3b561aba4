"""Images: upload image files or zip archives of images as items of a project.

``POST /api/projects/{id}/images:upload`` (admins): multipart field ``files``, repeated, each an
image (JPEG, PNG, WebP, GIF, BMP, TIFF) or a ``.zip`` of them. All or nothing, like
``items:import``: a corrupt, unsupported or oversized file is an error naming it, and nothing is
imported. See :mod:`labelwise.service.images` for the checks and where the files go.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import Field
from starlette.datastructures import UploadFile

from labelwise.errors import LabelwiseError
from labelwise.service.deps import ProjectId, ProjectOwner, SettingsDep, StoreDep
from labelwise.service.images import ImageTooLargeError, ImageUpload, import_images
from labelwise.service.schemas import ImportResultPublic

router = APIRouter(prefix="/api", tags=["items"])

MAX_FILES = 1000  # multipart parts per request; more images go in a zip

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Images, or zip archives of images.",
                        }
                    },
                    "required": ["files"],
                }
            }
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed multipart body, or too many parts."},
    404: {"description": "No such project."},
    409: {
        "description": "on_duplicate=fail and names repeat with other content; nothing imported."
    },
    413: {
        "description": "The request, an image (bytes or pixels) or a zip (entries or bytes "
        "decompressed) is over a limit; nothing imported."
    },
    422: {
        "description": "A file that is not an image of a supported type, a corrupt image, an "
        "unsafe zip entry or a bad label (the file is named); nothing imported."
    },
}


class ImagesImportPublic(ImportResultPublic):
    """What an image upload did, plus the zip entries skipped (hidden files, ``__MACOSX``,
    files without an image suffix)."""

    n_ignored: int = Field(0, description="Zip entries skipped (not images).")


@router.post(
    "/projects/{project_id}/images:upload",
    status_code=status.HTTP_201_CREATED,
    summary="Upload images (files or zip archives) as items",
    openapi_extra=_UPLOAD_DOC,
    responses=_RESPONSES,
    response_model_exclude_defaults=True,
)
async def upload_images(
    project_id: ProjectId,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    owner: ProjectOwner,
    labels: Annotated[
        Literal["none", "folder"],
        Query(description="'folder': a zip entry's parent folder is its label."),
    ] = "none",
    label: Annotated[
        str | None,
        Query(max_length=200, description="One label for every image ('a|b' for multilabel)."),
    ] = None,
    on_duplicate: Annotated[
        Literal["skip", "update", "fail"],
        Query(description="A file name already imported with other content: keep, replace, 409."),
    ] = "skip",
) -> ImagesImportPublic:
    """Upload images as the multipart field ``files`` (repeat it for many, or send zips).
    Each file is checked by content; items get ``payload.image`` and the file name as external
    id. A bad file is a 422 (413 for size limits) naming it, and nothing is imported."""
    from starlette.concurrency import run_in_threadpool

    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise LabelwiseError("upload the images as multipart/form-data field 'files'.")
    await run_in_threadpool(store.get_project, project_id)  # 404 before reading the upload
    async with request.form(max_files=MAX_FILES, max_fields=10) as form:
        uploads = [
            ImageUpload(f.filename or "upload", f.file)
            for f in form.getlist("files")
            if isinstance(f, UploadFile)
        ]
        try:
            result, n_ignored = await run_in_threadpool(
                lambda: import_images(
                    store,
                    project_id,
                    uploads,
                    settings,
                    labels=labels,
                    label=label,
                    on_duplicate=on_duplicate,
                )
            )
        except ImageTooLargeError as e:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(e)) from None
    return ImagesImportPublic.model_validate({**asdict(result), "n_ignored": n_ignored})
