"""Webhooks (project owners, admins): subscribe a project's events, read deliveries, redeliver.

The secret that signs deliveries is in the answer of ``POST /api/projects/{id}/webhooks`` and
``POST /api/webhooks/{id}:rotate-secret`` only; no other answer contains it. See
:mod:`labelwise.service.webhooks` for events, payloads, signatures and retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from labelwise.service import webhooks
from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    SettingsDep,
    StoreDep,
    project_role,
    require_project_role,
)
from labelwise.service.schemas import MAX_ID
from labelwise.storage.base import (
    MAX_WEBHOOK_URL_CHARS,
    Annotator,
    BaseStore,
    Delivery,
    NotFound,
    Webhook,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="Webhook id.")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="Delivery id.")]
Event = Literal["batch.completed", "model_version.created", "stopping.met", "label_errors.flagged"]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_WEBHOOK_URL_CHARS,
        pattern=r"^[^\x00]+$",
        description="http:// or https:// URL the events are POSTed to.",
        examples=["https://example.com/labelwise-hook"],
    ),
]
_NO_HOOK = {404: {"description": "No such webhook."}}
_BAD_URL = {
    422: {
        "description": "A URL that is not http(s), does not resolve, or points at a "
        "link-local or cloud metadata address (see LABELWISE_OUTBOUND_ALLOW); an unknown event."
    }
}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: list[Event] = Field(min_length=1, max_length=20, description="Events to receive.")
    active: bool = Field(True, description="Inactive webhooks get no new deliveries.")


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[Event] | None = Field(None, min_length=1, max_length=20)
    active: bool | None = None


class DeliverySummary(BaseModel):
    id: int
    event: str
    status: str = Field(description="pending, delivering, delivered or failed.")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    updated: datetime


class WebhookPublic(BaseModel):
    id: int
    project_id: int
    url: str
    events: list[str]
    active: bool
    created: datetime
    updated: datetime
    last_delivery: DeliverySummary | None = Field(None, description="The newest delivery.")


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Signs every delivery (Labelwise-Signature); shown only in this answer."
    )


class Attempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None


class DeliveryPublic(DeliverySummary):
    webhook_id: int
    project_id: int
    event_id: str = Field(description="The body's id: the same across retries, dedupe on it.")
    created: datetime
    history: list[Attempt] = Field(description="The attempts, oldest first (the last 20).")
    body: dict[str, Any] = Field(description="The JSON object sent.")


def _summary(d: Delivery | None) -> DeliverySummary | None:
    if d is None:
        return None
    return DeliverySummary(
        id=d.id, event=d.event, status=d.status, attempts=d.attempts,
        last_status_code=d.last_status_code, last_error=d.last_error,
        next_attempt_at=d.next_attempt_at, updated=d.updated,
    )  # fmt: skip


def _public(w: Webhook, last: Delivery | None = None) -> WebhookPublic:
    return WebhookPublic(
        id=w.id, project_id=w.project_id, url=w.url, events=list(w.events), active=w.active,
        created=w.created, updated=w.updated, last_delivery=_summary(last),
    )  # fmt: skip


def _created(c: webhooks.CreatedWebhook) -> WebhookCreated:
    return WebhookCreated(**_public(c.webhook).model_dump(), secret=c.secret)


def _owned(store: BaseStore, user: Annotator, entity: str, id: int, project_id: int) -> None:
    """A 404 worded after the webhook or delivery (not its project) for a non-member, so the
    answer is the same as for an unknown id; a 403 for a member who is not an owner."""
    if project_role(user, project_id) is None:
        raise NotFound(entity, id)
    require_project_role(store, user, project_id, "owner")


def _webhook(store: BaseStore, user: Annotator, webhook_id: int) -> Webhook:
    w = store.get_webhook(webhook_id)
    _owned(store, user, "webhook", webhook_id, w.project_id)
    return w


def _delivery(d: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        **_summary(d).model_dump(), webhook_id=d.webhook_id, project_id=d.project_id,
        event_id=d.event_id, created=d.created, history=d.history, body=d.body,
    )  # fmt: skip


@router.post(
    "/projects/{project_id}/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to a project's events",
    responses={404: {"description": "No such project."}, **_BAD_URL},
)
def create_webhook(
    project_id: ProjectId,
    body: WebhookCreate,
    store: StoreDep,
    settings: SettingsDep,
    _: ProjectOwner,
) -> WebhookCreated:
    """Create a webhook with a new signing secret, returned **only in this answer**: store it
    where the receiver can read it."""
    created = webhooks.create_webhook(
        store, project_id, body.url, body.events, settings=settings, active=body.active
    )
    return _created(created)


@router.get(
    "/projects/{project_id}/webhooks",
    summary="List a project's webhooks",
    responses={404: {"description": "No such project."}},
)
def list_webhooks(project_id: ProjectId, store: StoreDep, _: ProjectOwner) -> list[WebhookPublic]:
    """Oldest first, each with its newest delivery (no secrets)."""
    return [_public(w, d) for w, d in webhooks.list_webhooks_with_last_delivery(store, project_id)]


@router.get("/webhooks/{webhook_id:int}", summary="Get a webhook", responses=_NO_HOOK)
def get_webhook(webhook_id: WebhookId, store: StoreDep, user: CurrentUser) -> WebhookPublic:
    w = _webhook(store, user, webhook_id)
    return _public(w, next(iter(store.list_deliveries(w.id, limit=1)), None))


@router.patch(
    "/webhooks/{webhook_id:int}", summary="Change a webhook", responses={**_NO_HOOK, **_BAD_URL}
)
def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> WebhookPublic:
    """Change the URL (checked like at creation), the events or ``active``; omitted fields
    are kept."""
    _webhook(store, user, webhook_id)
    w = webhooks.update_webhook(
        store, webhook_id, settings=settings, url=body.url, events=body.events, active=body.active
    )
    return _public(w)


@router.delete(
    "/webhooks/{webhook_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook and its deliveries",
    responses=_NO_HOOK,
)
def delete_webhook(webhook_id: WebhookId, store: StoreDep, user: CurrentUser) -> Response:
    _webhook(store, user, webhook_id)
    store.delete_webhook(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}:rotate-secret",
    summary="Give a webhook a new signing secret",
    responses=_NO_HOOK,
)
def rotate_secret(webhook_id: WebhookId, store: StoreDep, user: CurrentUser) -> WebhookCreated:
    """The new secret is in this answer only; every attempt from now on is signed with it (let
    the receiver accept the old and the new secret while you switch)."""
    _webhook(store, user, webhook_id)
    return _created(webhooks.rotate_secret(store, webhook_id))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="List a webhook's deliveries",
    responses={**_NO_HOOK, 422: {"description": "An unknown status; a bad limit."}},
)
def list_deliveries(
    webhook_id: WebhookId,
    store: StoreDep,
    user: CurrentUser,
    status_: Annotated[
        Literal["pending", "delivering", "delivered", "failed"] | None,
        Query(alias="status", description="pending, delivering, delivered or failed."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryPublic]:
    """Newest first: status, attempts, the last status code or error, the next attempt time
    (while ``delivering``: when its lease ends), every attempt and the body sent."""
    _webhook(store, user, webhook_id)
    return [_delivery(d) for d in store.list_deliveries(webhook_id, status=status_, limit=limit)]


@router.post(
    "/deliveries/{delivery_id}:redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivery again",
    responses={
        404: {"description": "No such delivery."},
        409: {"description": "A worker is sending it right now."},
    },
)
def redeliver(delivery_id: DeliveryId, store: StoreDep, user: CurrentUser) -> DeliveryPublic:
    """Queue the delivery (failed, or delivered and lost by the receiver) for a fresh set of
    attempts, due now; the body and its event id are the same, so receivers can dedupe."""
    d = store.get_delivery(delivery_id)
    _owned(store, user, "delivery", delivery_id, d.project_id)
    return _delivery(webhooks.redeliver(store, delivery_id))
