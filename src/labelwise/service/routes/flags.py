"""Flags: an annotator reports an item (cut off, not the language, no class fits) with a reason;
the project's owner reads them on the dashboard or here. A flag does not skip or label the item:
the annotator still answers or skips it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from labelwise.service.deps import CurrentUser, ProjectId, ProjectOwner, StoreDep, visible_project
from labelwise.service.schemas import MAX_ID, FlagCreate, FlagPublic

router = APIRouter(prefix="/api", tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="Task id.")]


@router.post(
    "/tasks/{task_id}/flags",
    status_code=status.HTTP_201_CREATED,
    summary="Flag a task's item",
    responses={
        404: {"description": "No such task (or not in one of your projects)."},
        422: {"description": "An empty or over-long reason."},
    },
)
def flag_task(task_id: TaskId, body: FlagCreate, store: StoreDep, user: CurrentUser) -> FlagPublic:
    """Record that the task's item needs the owner's attention, and why."""
    task = store.get_task(task_id)
    visible_project(store, user, task.project_id)
    fid = store.create_flag(task.item_id, user.id, body.reason, task_id=task.id)
    return FlagPublic.model_validate(store.get_flag(fid))


@router.get(
    "/projects/{project_id}/flags",
    summary="List flagged items",
    tags=["projects"],
    responses={404: {"description": "No such project."}},
)
def list_flags(project_id: ProjectId, store: StoreDep, owner: ProjectOwner) -> list[FlagPublic]:
    """Every flag of the project, oldest first, with the item's external id and the
    annotator's name (admins)."""
    store.get_project(project_id)
    names = {a.id: a.name for a in store.list_annotators()}
    out = []
    for f in store.list_flags(project_id):
        flag = FlagPublic.model_validate(f)
        flag.external_id = store.get_item(f.item_id).external_id
        flag.annotator = names.get(f.annotator_id) if f.annotator_id is not None else None
        out.append(flag)
    return out
