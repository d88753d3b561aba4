"""Label Studio's ML-backend protocol under ``/labelstudio/{project_id}``.

Label Studio (Project -> Settings -> Model -> Connect model) takes the URL
``<labelwise>/labelstudio/<project_id>`` and calls ``GET /health``, ``POST /setup``,
``POST /predict`` and ``POST /webhook`` below it. Every call needs a labelwise API token, sent
either as HTTP basic auth (Label Studio's "Use basic auth" with any user name and the token as
the password) or as ``Authorization: Bearer <token>`` (a webhook's headers). Health, setup and
predict accept any user who may see the project; the webhook, which records answers on behalf
of Label Studio's users, needs an admin token. The body is read only after the token checked
out, and at most ``LABELWISE_MAX_JSON_BODY_BYTES`` of it.

Each route is parse -> one call of :mod:`labelwise.service.labelstudio_backend` -> format.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from labelwise.service.deps import (
    ProjectId,
    StoreDep,
    authenticate,
    project_role,
    visible_project,
)
from labelwise.storage.base import Annotator

router = APIRouter(prefix="/labelstudio/{project_id}", tags=["labelstudio"])


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SetupRequest(_Open):
    """What Label Studio sends to ``/setup`` (extra fields are ignored)."""

    project: Any = Field(None, description="Label Studio's '<project id>.<timestamp>'.")
    schema_: str | None = Field(None, alias="schema", description="The labeling config (XML).")
    extra_params: Any = None


class PredictRequest(_Open):
    """What Label Studio sends to ``/predict``."""

    tasks: list[dict[str, Any]] = Field(
        description="Label Studio tasks; data.labelwise_id names the item."
    )
    label_config: Any = None
    project: Any = None
    params: Any = None


class WebhookRequest(_Open):
    """A Label Studio webhook event (``send_payload`` on)."""

    action: str = Field(description="ANNOTATION_CREATED, ANNOTATION_UPDATED, START_TRAINING, ...")
    annotation: Any = None
    task: Any = None
    project: Any = None


class HealthAnswer(BaseModel):
    status: str = Field(examples=["UP"])
    model_class: str = Field(examples=["labelwise"])
    project_id: int
    model_version: str = Field(examples=["labelwise-12"])


class SetupAnswer(BaseModel):
    model_version: str


class Prediction(BaseModel):
    result: list[dict[str, Any]]
    score: float | None = Field(
        description="Minus the active-learning score: the lowest is the most informative task."
    )
    model_version: str


class PredictAnswer(BaseModel):
    results: list[Prediction]


_AUTH = {
    401: {"description": "No or an unknown labelwise token (basic auth password or bearer)."},
    404: {"description": "No such project (or not yours)."},
}
_BODY = {
    413: {"description": "The body is larger than LABELWISE_MAX_JSON_BODY_BYTES."},
    422: {"description": "Not JSON, or a field labelwise cannot use; the message names it."},
}


def _bearer_header(authorization: str) -> str:
    """``Basic base64(user:token)`` becomes ``Bearer token``; other headers pass unchanged."""
    scheme, _, cred = authorization.partition(" ")
    if scheme.lower() != "basic":
        return authorization
    try:
        decoded = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return f"Bearer {decoded.partition(':')[2]}"


def _caller(request: Request, project_id: ProjectId, store: StoreDep) -> Annotator:
    user = authenticate(store, _bearer_header(request.headers.get("authorization", "")))
    visible_project(store, user, project_id)
    return user


Caller = Annotated[Annotator, Depends(_caller)]


async def _json_body(request: Request) -> dict[str, Any]:
    limit = request.app.state.settings.max_json_body_bytes
    too_big = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the request body is larger than {limit:,} bytes (LABELWISE_MAX_JSON_BODY_BYTES); "
        "ask Label Studio for fewer tasks at a time.",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_big
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (ValueError, RecursionError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "body: not JSON; send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body: expected a JSON object.")
    return body


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name}: expected {getattr(kind, '__name__', 'another type')}; got "
            f"{type(value).__name__}.",
        )
    return value


@router.get("/health", summary="ML backend: health", responses=_AUTH)
def health(project_id: ProjectId, store: StoreDep, user: Caller) -> HealthAnswer:
    """``{"status": "UP", "model_class": "labelwise"}`` plus the current model version."""
    from labelwise.service.labelstudio_backend import backend_health

    return HealthAnswer(**backend_health(store, project_id))


@router.post(
    "/setup",
    summary="ML backend: setup",
    responses={**_AUTH, **_BODY},
    openapi_extra=_body_doc(SetupRequest),
)
async def setup(project_id: ProjectId, request: Request, user: Caller) -> SetupAnswer:
    """Check Label Studio's labeling config against the project; answer the model version."""
    from labelwise.service.labelstudio_backend import setup_backend

    body = await _json_body(request)
    schema = _field(body, "schema", str, None)
    store = request.app.state.store
    return SetupAnswer(**await run_in_threadpool(setup_backend, store, project_id, schema))


@router.post(
    "/predict",
    summary="ML backend: predict",
    responses={**_AUTH, **_BODY},
    openapi_extra=_body_doc(PredictRequest),
)
async def predict(project_id: ProjectId, request: Request, user: Caller) -> PredictAnswer:
    """One prediction per task: the model's choice and ``score`` = minus the active-learning
    score (Label Studio's uncertainty sampling serves the lowest score first)."""
    from labelwise.service.labelstudio_backend import predict_tasks

    body = await _json_body(request)
    tasks = _field(body, "tasks", list, None)
    if tasks is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "tasks: required (a list).")
    config = _field(body, "label_config", str, None)
    app = request.app
    results = await run_in_threadpool(
        lambda: predict_tasks(
            app.state.store, project_id, tasks, config, settings=app.state.settings
        )
    )
    return PredictAnswer(results=[Prediction(**r) for r in results])


@router.post(
    "/webhook",
    summary="ML backend: webhook",
    responses={
        **_AUTH,
        **_BODY,
        403: {
            "description": "The token is not the project owner's or an admin's (the webhook "
            "records others' answers)."
        },
    },
    openapi_extra=_body_doc(WebhookRequest),
)
async def webhook(project_id: ProjectId, request: Request, user: Caller) -> dict[str, Any]:
    """Store a Label Studio annotation as a labelwise answer (retraining follows as for answers
    given in labelwise); ``START_TRAINING`` queues a retrain."""
    from labelwise.service.labelstudio_backend import handle_webhook

    if project_role(user, project_id) != "owner":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the Label Studio webhook needs the owner role on project {project_id} (or the "
            f"admin role); {user.name!r} is {project_role(user, project_id)} there.",
        )
    body = await _json_body(request)
    app = request.app
    return await run_in_threadpool(
        lambda: handle_webhook(app.state.store, project_id, body, settings=app.state.settings)
    )
