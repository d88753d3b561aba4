"""Progress, model versions and background jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from labelwise.service.deps import (
    CurrentUser,
    ProjectId,
    SettingsDep,
    StoreDep,
    project_role,
    require_admin,
    require_project_role,
    visible_project,
)
from labelwise.service.schemas import MAX_ID, JobPublic, ModelVersionPublic, ProgressPublic
from labelwise.storage.base import NotFound

router = APIRouter(prefix="/api", tags=["progress"])
_NOT_FOUND = {404: {"description": "No such project (or not yours)."}}


@router.get("/projects/{project_id}/progress", summary="Project progress", responses=_NOT_FOUND)
def get_progress(
    project_id: ProjectId, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> ProgressPublic:
    """Items and labels, rounds, queue depth, the learning curve beside a random-sampling
    estimate, throughput, cost so far, projected labels to target and the stopping status."""
    from labelwise.service.progress import project_progress

    visible_project(store, user, project_id)
    return ProgressPublic.from_progress(project_progress(store, project_id, settings=settings))


@router.get(
    "/projects/{project_id}/model-versions", summary="List model versions", responses=_NOT_FOUND
)
def list_model_versions(
    project_id: ProjectId, store: StoreDep, user: CurrentUser
) -> list[ModelVersionPublic]:
    """Every retrained model of the project, oldest first, with metrics and calibration."""
    visible_project(store, user, project_id)
    return [ModelVersionPublic.model_validate(m) for m in store.list_model_versions(project_id)]


@router.get("/jobs", summary="List background jobs", responses=_NOT_FOUND)
def list_jobs(
    store: StoreDep,
    user: CurrentUser,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Literal["queued", "running", "done", "failed"] | None = None,
) -> list[JobPublic]:
    """Retraining, selection and import jobs, oldest first; failed ones carry the error.

    Every job for the admin; a project's owner lists that project's (``project_id``).
    """
    if project_id is None:
        require_admin(user)
    else:
        require_project_role(store, user, project_id, "owner")
    return [JobPublic.model_validate(j) for j in store.list_jobs(project_id, status)]


@router.get("/jobs/{job_id}", summary="Get a job", responses={404: {"description": "No such job."}})
def get_job(
    job_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep, user: CurrentUser
) -> JobPublic:
    """A job with its progress (imports: phase, rows done of rows total); the admin's, or an
    owner's for a job of their project. Any other job is a 404, as an unknown one."""
    from labelwise.service.big_imports import import_progress

    job = store.get_job(job_id)
    allowed = user.role == "admin" or (
        job.project_id is not None and project_role(user, job.project_id) == "owner"
    )
    if not allowed:
        raise NotFound("job", job_id)  # foreign and unknown answer alike
    return JobPublic.model_validate(job).model_copy(
        update={"progress": import_progress(store, job)}
    )
