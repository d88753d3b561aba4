"""Rounds (admin) and the labeling loop (annotators): claim, label, skip, undo.

A claim leases the next task for ``settings.lease_seconds``; labeling or skipping needs a valid
lease held by the caller, otherwise the answer is 409 and the annotator claims again. An
annotator can undo their most recent label while its round is open: the task comes back to them
(409 once a retrain closed the round, or for an older or someone else's annotation).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from labelwise.service.deps import (
    Admin,
    CurrentUser,
    ProjectId,
    SettingsDep,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import (
    MAX_ID,
    AnnotationCreate,
    AnnotationPublic,
    ClaimedTask,
    ItemPublic,
    Prediction,
    RoundPublic,
    TaskPublic,
)
from labelwise.storage.base import Annotator, BaseStore, NotFound, Project, Task, UndoError

router = APIRouter(prefix="/api")
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="Task id.")]
AnnotationId = Annotated[int, Path(ge=1, le=MAX_ID, description="Annotation id.")]

_NOT_FOUND = {404: {"description": "No such project or task (or not yours)."}}
_LEASE = {409: {"description": "The lease is lost, expired or another annotator's; claim again."}}


@router.post(
    "/projects/{project_id}/rounds",
    status_code=status.HTTP_201_CREATED,
    summary="Start a selection round",
    tags=["rounds"],
    responses={
        **_NOT_FOUND,
        409: {"description": "No round: the pool is exhausted or the stopping rule says stop."},
    },
)
def start_round(
    project_id: ProjectId, store: StoreDep, settings: SettingsDep, admin: Admin
) -> RoundPublic:
    """Select the next ``batch_size`` items with the project's strategy (its cold-start
    strategy while there is no model) and queue them as tasks."""
    store.get_project(project_id)
    from labelwise.service import rounds

    rnd = rounds.start_round(store, project_id, settings=settings)
    if rnd is None:
        why = rounds.why_no_round(store, project_id) or "nothing to select"
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"no round started for project {project_id}: {why}."
        )
    return RoundPublic.model_validate(rnd)


@router.get(
    "/projects/{project_id}/rounds", summary="List rounds", tags=["rounds"], responses=_NOT_FOUND
)
def list_rounds(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> list[RoundPublic]:
    visible_project(store, user, project_id)
    return [RoundPublic.model_validate(r) for r in store.list_rounds(project_id)]


def _prediction(store: BaseStore, project: Project, task: Task) -> Prediction | None:
    """The model's guess for the task's item: the class predicted when the task was queued or
    last re-scored (its routing tag), once the project has a model."""
    if not project.show_predictions or task.routing_tag not in project.classes:
        return None
    if store.find_latest_model_version(project.id) is None:
        return None  # cold start: the routing tag is the item's own tag, not a prediction
    return Prediction(label=task.routing_tag, confidence=task.confidence)


def _claimed(store: BaseStore, project: Project, task: Task) -> ClaimedTask:
    return ClaimedTask(
        task=TaskPublic.model_validate(task),
        item=ItemPublic.model_validate(store.get_item(task.item_id)),
        classes=list(project.classes),
        prediction=_prediction(store, project, task),
    )


@router.post(
    "/projects/{project_id}/tasks/next",
    summary="Claim the next task",
    tags=["tasks"],
    responses={204: {"description": "The queue is empty."}, **_NOT_FOUND},
    response_model=ClaimedTask,
)
def claim_next(
    project_id: ProjectId, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> ClaimedTask | Response:
    """Lease the next task (highest priority first, tasks routed to your skills before others)
    for ``lease_seconds``; includes the item and, if the project shows predictions, the current
    model's guess. 204 when there is nothing to label."""
    project = visible_project(store, user, project_id)
    task = store.claim_next_task(project_id, user.id, lease_seconds=settings.lease_seconds)
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _claimed(store, project, task)


def _task_for(store: BaseStore, user: Annotator, task_id: int) -> Task:
    task = store.get_task(task_id)
    if user.role != "admin" and task.project_id not in user.projects:
        raise NotFound("project", task.project_id)  # as visible_project, without loading it
    return task


@router.get("/tasks/{task_id}", summary="Get a task", tags=["tasks"], responses=_NOT_FOUND)
def get_task(task_id: TaskId, store: StoreDep, user: CurrentUser) -> TaskPublic:
    return TaskPublic.model_validate(_task_for(store, user, task_id))


@router.post(
    "/tasks/{task_id}/annotations",
    status_code=status.HTTP_201_CREATED,
    summary="Label a task",
    tags=["tasks"],
    responses={**_NOT_FOUND, **_LEASE, 422: {"description": "Not a class of the project."}},
)
def submit_annotation(
    task_id: TaskId,
    body: AnnotationCreate,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> AnnotationPublic:
    """Record the label of a task you hold; when the round's batch is complete a retraining
    job is queued. A label outside the project's classes is a 422 that lists them."""
    _task_for(store, user, task_id)
    from labelwise.service import rounds

    ann = rounds.submit_annotation(
        store, task_id, user.id, body.label, settings=settings, duration_s=body.duration_s
    )
    return AnnotationPublic.model_validate(ann)


@router.post(
    "/tasks/{task_id}/skip",
    summary="Skip a task",
    tags=["tasks"],
    responses={**_NOT_FOUND, **_LEASE},
)
def skip(task_id: TaskId, store: StoreDep, settings: SettingsDep, user: CurrentUser) -> TaskPublic:
    """Give up on a task you hold (unclear, off-topic, unreadable); it is not served again."""
    _task_for(store, user, task_id)
    from labelwise.service import rounds

    rounds.skip_task(store, task_id, user.id, settings=settings)
    return TaskPublic.model_validate(store.get_task(task_id))


@router.post(
    "/annotations/{annotation_id}/undo",
    summary="Undo your last label",
    tags=["tasks"],
    responses={
        404: {"description": "No such annotation (or not in one of your projects)."},
        409: {
            "description": "Not your most recent annotation, someone else's, or its round is "
            "closed (a retrained model already learned it)."
        },
    },
)
def undo_annotation(
    annotation_id: AnnotationId, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> ClaimedTask:
    """Take back your most recent label while its round is still open: the annotation is
    deleted and its task is leased to you again (a fresh lease), returned like a claim so it can
    be shown and answered again. A retrain job the label had queued is left queued."""
    ann = store.get_annotation(annotation_id)
    project = visible_project(store, user, store.get_item(ann.item_id).project_id)
    from labelwise.service import rounds

    try:
        task = rounds.undo_annotation(store, annotation_id, user.id, settings=settings)
    except UndoError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return _claimed(store, project, task)
