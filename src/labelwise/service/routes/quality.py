"""Data quality: consensus, gold items, the review queue and annotator quality.

- ``POST /api/projects/{id}/consensus/resolve`` (owner): re-aggregate every consensus item from
  the whole annotation history (the worker also does this before each retrain).
- ``POST /api/items/{id}/gold`` (owner): make an item gold with its known label.
- ``GET /api/projects/{id}/review``, ``GET .../review/next`` (reviewers, owners): the queue.
- ``POST /api/items/{id}/review`` (reviewers, owners): resolve an item in review; the label
  is recorded with who resolved it (409 for an item not in review).
- ``POST /api/projects/{id}/review`` (owner): send items to review by hand.
- ``GET /api/projects/{id}/annotators/quality`` (reviewers, owners): gold accuracy, agreement
  with consensus, Cohen's and Fleiss' κ, throughput; flagged annotators.
- ``POST /api/projects/{id}/annotators/{aid}/review-pending`` (owner): send an annotator's
  pending answers (round still open) to review.

Roles are the caller's on the project (``deps.require_project_role``; admins hold every one):
a project the caller is no member of is a 404, like for annotators.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from labelwise.service import quality
from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    ProjectReviewer,
    StoreDep,
    require_project_role,
)
from labelwise.service.schemas import (
    MAX_ID,
    GoldMark,
    ItemQualityPublic,
    QualityReport,
    ReviewItem,
    ReviewResolve,
    ReviewSend,
)
from labelwise.storage.base import Annotator, BaseStore, Item

router = APIRouter(prefix="/api", tags=["quality"])
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="Item id.")]
AnnotatorId = Annotated[int, Path(ge=1, le=MAX_ID, description="Annotator id.")]
_404 = {404: {"description": "No such project or item (or not yours)."}}


def _item_for(store: BaseStore, user: Annotator, item_id: int, role: str) -> Item:
    item = store.get_item(item_id)
    require_project_role(store, user, item.project_id, role)
    return item


@router.post("/projects/{project_id}/consensus/resolve", summary="Re-aggregate consensus")
def resolve_consensus(
    project_id: ProjectId, store: StoreDep, owner: ProjectOwner
) -> dict[str, int]:
    """Resolve every consensus item again with the project's method over the whole history;
    returns how many changed label and how many went to review."""
    return quality.reaggregate(store, project_id)


@router.post(
    "/items/{item_id}/gold",
    summary="Make an item gold",
    responses={
        **_404,
        409: {"description": "The item is queued, skipped or in review."},
        422: {"description": "Not a class of the project."},
    },
)
def mark_gold(
    item_id: ItemId, body: GoldMark, store: StoreDep, user: CurrentUser
) -> ItemQualityPublic:
    """The item's known label: it is served among annotators' tasks at the project's
    ``gold_rate``, looks like any task, and never enters the training set."""
    _item_for(store, user, item_id, "owner")
    return ItemQualityPublic.model_validate(store.mark_gold(item_id, body.label))


@router.get("/projects/{project_id}/review", summary="Items in review", responses=_404)
def list_review(
    project_id: ProjectId,
    store: StoreDep,
    user: ProjectReviewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ItemQualityPublic]:
    items = store.list_items(project_id, status="review", limit=limit)
    return [ItemQualityPublic.model_validate(it) for it in items]


@router.get(
    "/projects/{project_id}/review/next",
    summary="The next item to review",
    responses={204: {"description": "The review queue is empty."}, **_404},
    response_model=ReviewItem,
)
def next_review(
    project_id: ProjectId,
    store: StoreDep,
    user: ProjectReviewer,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Skip items up to this id.")] = 0,
) -> Any:
    """One item at a time: its annotations side by side (who, what, when) and the model's
    prediction."""
    project = store.get_project(project_id)
    got = quality.next_review(store, project_id, after=after)
    if got is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    got["item"] = ItemQualityPublic.model_validate(got["item"])
    return ReviewItem(classes=list(project.classes), **got)


@router.post(
    "/items/{item_id}/review",
    summary="Resolve an item in review",
    responses={
        **_404,
        409: {"description": "The item is not in review."},
        422: {"description": "Not a class of the project."},
    },
)
def resolve_review(
    item_id: ItemId, body: ReviewResolve, store: StoreDep, user: CurrentUser
) -> ItemQualityPublic:
    """The label becomes the item's (it joins the training set), recorded with who resolved
    it, when, and whether it confirmed or corrected the earlier label."""
    _item_for(store, user, item_id, "reviewer")
    return ItemQualityPublic.model_validate(store.resolve_review(item_id, body.label, user.id))


@router.post("/projects/{project_id}/review", summary="Send items to review", responses=_404)
def send_to_review(
    project_id: ProjectId, body: ReviewSend, store: StoreDep, owner: ProjectOwner
) -> dict[str, int]:
    """Take items out of the training set until a reviewer resolves them."""
    return {"moved": store.send_to_review(body.item_ids, "manual", project_id=project_id)}


@router.get(
    "/projects/{project_id}/annotators/quality", summary="Annotator quality", responses=_404
)
def annotators_quality(
    project_id: ProjectId, store: StoreDep, user: ProjectReviewer
) -> QualityReport:
    """Per annotator: gold accuracy, agreement with consensus, mean Cohen's κ, throughput and
    whether gold accuracy is below the project's threshold; the project's Fleiss' κ."""
    return QualityReport.model_validate(
        quality.annotator_quality(store, project_id), from_attributes=True
    )


@router.post(
    "/projects/{project_id}/annotators/{annotator_id}/review-pending",
    summary="Send an annotator's pending answers to review",
    responses=_404,
)
def review_pending(
    project_id: ProjectId, annotator_id: AnnotatorId, store: StoreDep, owner: ProjectOwner
) -> dict[str, int]:
    """Their answers whose round is still open (no model learned them yet) go to review."""
    store.get_annotator(annotator_id)
    return {"moved": quality.review_pending(store, project_id, annotator_id)}
