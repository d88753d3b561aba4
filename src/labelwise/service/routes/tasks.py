"""Rounds (owners) and the labeling loop (annotators): claim, label, skip, undo, edit, history.

A claim leases the next task for ``settings.lease_seconds``; labeling or skipping needs a valid
lease held by the caller, otherwise the answer is 409 and the annotator claims again. An
annotator can undo their most recent label while its round is open: the task comes back to them
(409 once a retrain closed the round, or for an older or someone else's annotation). Any of
their recent answers (``GET .../history``) can be changed while its round is open: an edit is a
new answer that replaces the old one (``POST /api/annotations/{id}/edit``).

A claimed task says where it stands in its batch (``batch``: "12 of 50 in this batch") and
whether it is a *hard case* (:func:`is_hard_case`): the model's confidence in its predicted class
is below the midpoint between chance and certainty, ``(1 + 1/k) / 2`` for ``k`` classes (0.75
for two classes, 0.55 for ten; multilabel projects use two, since each class is a yes/no).
Uncertainty strategies send exactly these items first, and they are where the guidelines'
hard-case instructions are shown. Tasks queued before a model existed have no confidence and are
never hard cases.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse

from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    ProjectOwner,
    SettingsDep,
    StoreDep,
    project_role,
    visible_project,
)
from labelwise.service.schemas import (
    MAX_ID,
    AnnotationCreate,
    AnnotationEdit,
    AnnotationPublic,
    BatchProgress,
    ClaimedTask,
    ItemPublic,
    JobPublic,
    Prediction,
    RecentAnnotation,
    RoundPublic,
    TaskPublic,
)
from labelwise.storage.base import (
    Annotator,
    BaseStore,
    Item,
    Job,
    LeaseError,
    LeaseLimitError,
    NotFound,
    Project,
    Task,
    UndoError,
)
from labelwise.tasks import TaskType

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
        202: {
            "model": JobPublic,
            "description": "Features are being computed first (sentence embeddings of many "
            "new texts): the worker's `select` job, which starts the round; poll "
            "`GET /api/jobs/{id}` (its `Location`) or the project's rounds.",
        },
    },
)
def start_round(
    project_id: ProjectId, store: StoreDep, settings: SettingsDep, owner: ProjectOwner
) -> RoundPublic:
    """Select the next ``batch_size`` items with the project's strategy (its cold-start
    strategy while there is no model) and queue them as tasks. A project whose sentence
    embeddings are not computed yet answers 202 with the job that computes them and then starts
    the round."""
    store.get_project(project_id)
    from labelwise.service import rounds

    rnd = rounds.request_round(store, project_id, settings=settings)
    if isinstance(rnd, Job):
        body = JobPublic.model_validate(rnd).model_dump(mode="json")
        return JSONResponse(body, status.HTTP_202_ACCEPTED, {"Location": f"/api/jobs/{rnd.id}"})
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


def hard_case_threshold(project: Project) -> float:
    """Confidence below which a task is a hard case: ``(1 + 1/k) / 2`` for ``k`` classes.

    That is the midpoint between a guess (``1/k``) and certainty (1): 0.75 for two classes,
    ``2/3`` for three, 0.55 for ten. Multilabel projects decide each class yes/no, so ``k = 2``.
    """
    k = 2 if project.task_type == TaskType.MULTILABEL else max(2, len(project.classes))
    return (1 + 1 / k) / 2


def is_hard_case(project: Project, task: Task) -> bool:
    """Whether the model was unsure of the task's item when it was queued or last re-scored."""
    return task.confidence is not None and task.confidence < hard_case_threshold(project)


def _batch(store: BaseStore, task: Task) -> BatchProgress:
    number, total, finished = store.get_round_progress(task.round_id)
    return BatchProgress(
        round_number=number, position=min(finished + 1, total), total=total, finished=finished
    )


def _as_task(item: Item) -> ItemPublic:
    """The item as an annotator sees it: a gold item looks like any queued one (its known
    label is never sent), so gold checks measure ordinary work."""
    out = ItemPublic.model_validate(item)
    if item.status == "gold":
        out = out.model_copy(update={"status": "queued", "label": None})
    return out


def _claimed(store: BaseStore, project: Project, task: Task) -> ClaimedTask:
    return ClaimedTask(
        task=TaskPublic.model_validate(task),
        item=_as_task(store.get_item(task.item_id)),
        classes=list(project.classes),
        prediction=_prediction(store, project, task),
        hard_case=is_hard_case(project, task),
        batch=_batch(store, task),
    )


@router.post(
    "/projects/{project_id}/tasks/next",
    summary="Claim the next task",
    tags=["tasks"],
    responses={
        204: {"description": "The queue is empty."},
        409: {"description": "You hold max_open_leases tasks already: answer or skip one."},
        **_NOT_FOUND,
    },
    response_model=ClaimedTask,
)
def claim_next(
    project_id: ProjectId, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> ClaimedTask | Response:
    """Lease the next task (highest priority first, tasks routed to your skills before others)
    for ``lease_seconds``; includes the item and, if the project shows predictions, the current
    model's guess. 204 when there is nothing to label."""
    project = visible_project(store, user, project_id)
    from labelwise.service import quality

    # Without a cap one annotator could lease a whole round (each claim is a new task) and
    # leave the others nothing for lease_seconds. The store counts and leases in one
    # transaction, so two claims racing from one token cannot both pass the cap.
    try:
        task = quality.claim_task(
            store, project, user.id, lease_seconds=settings.lease_seconds,
            max_leases=settings.max_open_leases,
        )  # fmt: skip
    except LeaseLimitError as e:
        raise LeaseError(
            str(e).replace(f"({e.limit})", f"(LABELWISE_MAX_OPEN_LEASES={e.limit})")
        ) from None
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _claimed(store, project, task)


def _task_for(store: BaseStore, user: Annotator, task_id: int) -> Task:
    task = store.get_task(task_id)
    if project_role(user, task.project_id) is None:
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
    # read it back for what the store recorded with it (the guidelines version)
    return AnnotationPublic.model_validate(store.get_annotation(ann.id))


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
    "/tasks/{task_id}/release",
    summary="Release a task",
    tags=["tasks"],
    responses={**_NOT_FOUND, **_LEASE},
)
def release(task_id: TaskId, store: StoreDep, user: CurrentUser) -> TaskPublic:
    """Give a task you hold back to the queue unanswered, at once (the labeling page sends
    this when its tab is closed, instead of leaving the task to its lease expiry)."""
    _task_for(store, user, task_id)
    store.release_task(task_id, user.id)
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


@router.get(
    "/projects/{project_id}/history",
    summary="Your recent labels",
    tags=["tasks"],
    responses=_NOT_FOUND,
)
def history(
    project_id: ProjectId,
    store: StoreDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100, description="How many, newest first.")] = 10,
) -> list[RecentAnnotation]:
    """Your ``limit`` most recent answers in the project, newest first, each with its item and
    whether it can still be changed (its round is open)."""
    visible_project(store, user, project_id)
    out = []
    open_rounds: dict[int, bool] = {}
    for ann in store.list_recent_annotations(project_id, user.id, limit):
        editable = False
        if ann.task_id is not None:
            round_id = store.get_task(ann.task_id).round_id
            if round_id not in open_rounds:
                open_rounds[round_id] = store.get_round(round_id).closed is None
            editable = open_rounds[round_id]
        out.append(
            RecentAnnotation(
                annotation=AnnotationPublic.model_validate(ann),
                item=_as_task(store.get_item(ann.item_id)),
                editable=editable,
            )
        )
    return out


@router.post(
    "/annotations/{annotation_id}/edit",
    status_code=status.HTTP_201_CREATED,
    summary="Change one of your labels",
    tags=["tasks"],
    responses={
        404: {"description": "No such annotation (or not in one of your projects)."},
        409: {"description": "Someone else's annotation, or its round is closed."},
        422: {"description": "Not a class of the project."},
    },
)
def edit_annotation(
    annotation_id: AnnotationId, body: AnnotationEdit, store: StoreDep, user: CurrentUser
) -> AnnotationPublic:
    """Give a new answer for one of your annotations while its round is open: the new
    annotation (a new id, today's guidelines version) replaces the old one, and the item takes
    the new label. Not limited to the most recent answer, unlike undo."""
    ann = store.get_annotation(annotation_id)
    visible_project(store, user, store.get_item(ann.item_id).project_id)
    try:
        new_id = store.revise_annotation(
            annotation_id, user.id, body.label, duration_s=body.duration_s
        )
    except UndoError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return AnnotationPublic.model_validate(store.get_annotation(new_id))
