"""Progress, model versions and background jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from labelwise.service.deps import (
    Admin,
    CurrentUser,
    ProjectId,
    SettingsDep,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import MAX_ID, JobPublic, ModelVersionPublic, ProgressPublic

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


@router.get("/jobs", summary="List background jobs")
def list_jobs(
    store: StoreDep,
    admin: Admin,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Literal["queued", "running", "done", "failed"] | None = None,
) -> list[JobPublic]:
    """Retraining and selection jobs, oldest first; failed ones carry the error."""
    return [JobPublic.model_validate(j) for j in store.list_jobs(project_id, status)]


@router.get("/jobs/{job_id}", summary="Get a job", responses={404: {"description": "No such job."}})
def get_job(
    job_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: StoreDep, admin: Admin
) -> JobPublic:
    from labelwise.service.big_imports import import_progress

    job = store.get_job(job_id)
    return JobPublic.model_validate(job).model_copy(
        update={"progress": import_progress(store, job)}
    )
