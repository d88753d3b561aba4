"""The FastAPI application: ``create_app(settings, store)``.

Nothing is created at import time. ``create_app`` opens the store named by
``settings.database_url`` (running migrations when ``settings.auto_upgrade``) unless a store is
passed in, and its lifespan starts the in-process retraining worker (``settings.worker ==
"inline"``, the default) and stops it on shutdown. Run it with::

    uvicorn --factory labelwise.service.app:create_app

The first admin: pass ``admin_token=`` or set ``LABELWISE_ADMIN_TOKEN``; an admin holding that
token is created on start-up when none exists. Admins then create users with
``POST /api/annotators``.

Errors are JSON ``{"detail": "..."}`` with a message that says what to fix: unknown ids are 404,
lease conflicts and duplicates 409, invalid input 422 (:class:`~labelwise.errors.LabelwiseError`
and request validation), a missing or bad token 401, an annotator on an admin route 403.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from labelwise.errors import LabelwiseError
from labelwise.settings import Settings
from labelwise.storage.base import AlreadyExistsError, BaseStore, LeaseError, NotFound, ReviewError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_TAGS = [
    {"name": "projects", "description": "Labeling projects and their active-learning settings."},
    {"name": "items", "description": "The item pool: import and browse."},
    {"name": "rounds", "description": "Selection rounds: each queues the next batch to label."},
    {"name": "tasks", "description": "Claim, label, skip: what annotators do."},
    {"name": "annotators", "description": "Users, roles, tokens and project membership."},
    {"name": "exports", "description": "Immutable dataset versions and their export."},
    {"name": "progress", "description": "Progress, model versions and background jobs."},
    {"name": "health", "description": "Liveness."},
]


def _ensure_admin(store: BaseStore, token: str) -> None:
    from labelwise.service.deps import create_user, hash_token

    if store.find_annotator_by_token(hash_token(token)) is not None:
        return
    name, n = "admin", 1
    while store.find_annotator(name) is not None:
        n += 1
        name = f"admin-{n}"
    create_user(store, name, role="admin", token=token)


def _document_errors(app: FastAPI) -> None:
    """Serve the generated schema with labelwise's error shapes (see service.openapi)."""
    from labelwise.service.openapi import document_errors

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI schema documents at ``path`` (for a 405's ``Allow``).

    FastAPI's nested routers hide the sibling routes of a path from Starlette's 405, so the
    schema (what clients read) is the list of record.
    """
    import re

    methods: set[str] = set()
    for template, ops in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/:]+", re.escape(template))  # ids hold no ":"
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in ops if m.isalpha() and m != "parameters"}
    return sorted(methods)


def _in_process_worker(settings: Settings) -> bool:
    return bool(getattr(settings, "run_worker_in_process", settings.worker == "inline"))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request"


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _GuardBodies:
    """Authenticate API writes before their body is read, and cap its size per route.

    FastAPI reads and parses a request body before it runs the route's dependencies, so an
    anonymous caller could make the server hold (and parse) any amount of JSON. This ASGI
    layer answers 401 for a missing or unknown bearer token on ``/api/`` requests that carry a
    body before any of it is read (the token's annotator is left in ``scope["state"]`` for
    :func:`~labelwise.service.deps.require_user`), then counts the body as it streams: a
    ``Content-Length`` over the route's limit is a 413 at once, a chunked body a 413 as soon
    as it passes the limit. File imports (``items:import``) get ``max_upload_bytes`` (the
    multipart parser spools them to disk); every other route ``max_json_body_bytes``.
    """

    def __init__(self, app: Any, store: BaseStore, settings: Settings) -> None:
        self.app, self.store, self.settings = app, store, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _BODY_METHODS
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        from labelwise.service.deps import authenticate

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            user = await run_in_threadpool(
                authenticate, self.store, headers.get("authorization", "")
            )
        except HTTPException as e:
            await JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["user"] = user
        upload = scope["path"].endswith(
            ("/items:import", "/images:upload", "/model/predictions", "/model/embeddings")
        ) and headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.settings.max_upload_bytes if upload else self.settings.max_json_body_bytes
        what = "file upload" if upload else "request body"
        setting = "LABELWISE_MAX_UPLOAD_BYTES" if upload else "LABELWISE_MAX_JSON_BODY_BYTES"
        message = (
            f"the {what} is larger than {limit:,} bytes ({setting}); send less (split the "
            "file, or import a file instead of a JSON list)."
        )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _error(status.HTTP_413_CONTENT_TOO_LARGE, message)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:  # FastAPI passes HTTPException from the body through
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, message)
            return msg

        await self.app(scope, counted, send)


_PATH_ENTITY = re.compile(r"^/api/([a-z-]+?)s/(\d+)(?:/|$)")


def _not_found_message(request: Request, exc: NotFound) -> str:
    """The 404 wording, the same for what does not exist and what is not the caller's.

    Routes reach a task, annotation, item or dataset version by id and then check that the
    caller may see its project; for an annotator that check fails as "project 7 not found",
    which would tell them the task exists (and in which project) while an unknown id reads
    "task 99999 not found". For non-admins a project 404 on a path that names another entity
    is worded after that entity instead: "task 5 not found" either way.
    """
    user = request.scope.get("state", {}).get("user")
    if exc.entity != "project" or user is None or user.role == "admin":
        return str(exc)
    m = _PATH_ENTITY.match(request.url.path)
    if m is None or m.group(1) == "project":
        return str(exc)
    return f"{m.group(1).replace('-', ' ')} {int(m.group(2))} not found"


def _error(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


def create_app(
    settings: Settings | None = None,
    store: BaseStore | None = None,
    *,
    admin_token: str | None = None,
) -> FastAPI:
    """Build the labelwise API.

    Parameters
    ----------
    settings : Settings, optional
        Read from the environment (``LABELWISE_*``) when omitted.
    store : BaseStore, optional
        Opened from ``settings.database_url`` when omitted (and closed on shutdown); a store
        passed in is left open.
    admin_token : str, optional
        Make sure an admin with this token exists (default: ``LABELWISE_ADMIN_TOKEN``).
    """
    from labelwise.service.routes import api_router

    settings = Settings() if settings is None else settings
    owns_store = store is None
    if store is None:
        from labelwise.storage import open_store

        store = open_store(settings.database_url, upgrade=settings.auto_upgrade)
    admin_token = admin_token or os.environ.get("LABELWISE_ADMIN_TOKEN") or None
    if admin_token:
        _ensure_admin(store, admin_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if _in_process_worker(settings):
            from labelwise.service.worker import Worker

            worker = Worker(store, settings).start_in_thread()
        try:
            yield
        finally:
            if worker is not None:
                thread, stop = worker
                stop.set()
                thread.join(timeout=30)
            if owns_store:
                store.close()

    from labelwise import __version__

    app = FastAPI(
        title="labelwise",
        version=__version__,
        summary="Active learning in production: pick what to label, queue it, retrain.",
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    _document_errors(app)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(status.HTTP_404_NOT_FOUND, _not_found_message(request, exc))

    @app.exception_handler(LabelwiseError)
    async def _labelwise_error(request: Request, exc: LabelwiseError) -> JSONResponse:
        code = (
            status.HTTP_409_CONFLICT
            if isinstance(exc, LeaseError | AlreadyExistsError | ReviewError)
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return _error(code, str(exc))

    from sqlalchemy.exc import DataError

    @app.exception_handler(DataError)
    async def _bad_data(request: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL character or an out-of-range number inside an uploaded file: the
        # transaction rolled back, nothing was written
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return _error(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the database rejected a value ({reason}); nothing was written. Fix the input.",
        )

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Starlette names only the first route matching the path; a path served by
            # several routes (GET and POST apart) supports them all
            allowed = _allowed_methods(app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        body: dict[str, Any] = {"detail": _validation_message(exc)}
        body["errors"] = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    app.add_middleware(_GuardBodies, store=store, settings=settings)
    app.include_router(api_router)
    from labelwise.service import pages

    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    return app
