"""Projects: create (admin), list and read (members), update (owners); the strategy catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from labelwise.service.deps import (
    Admin,
    CurrentUser,
    ProjectId,
    ProjectOwner,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import ProjectCreate, ProjectPublic, ProjectUpdate

router = APIRouter(prefix="/api", tags=["projects"])

_ERR = {404: {"description": "No such project (or not yours)."}}


@router.post(
    "/projects",
    status_code=status.HTTP_201_CREATED,
    summary="Create a project",
    responses={409: {"description": "A project with that name exists."}},
)
def create_project(body: ProjectCreate, store: StoreDep, admin: Admin) -> ProjectPublic:
    """Create a labeling project. The strategy and its parameters are checked against the
    registry, the stopping rule with ``labelwise.stopping.from_config``."""
    pid = store.create_project(**body.model_dump())
    return ProjectPublic.model_validate(store.get_project(pid))


@router.get("/projects", summary="List projects")
def list_projects(store: StoreDep, user: CurrentUser) -> list[ProjectPublic]:
    """Every project for admins; the projects they belong to for annotators."""
    projects = store.list_projects()
    if user.role != "admin":
        projects = [p for p in projects if p.id in user.projects]
    return [ProjectPublic.model_validate(p) for p in projects]


@router.get("/projects/{project_id}", summary="Get a project", responses=_ERR)
def get_project(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> ProjectPublic:
    return ProjectPublic.model_validate(visible_project(store, user, project_id))


@router.patch("/projects/{project_id}", summary="Update a project", responses=_ERR)
def update_project(
    project_id: ProjectId, body: ProjectUpdate, store: StoreDep, owner: ProjectOwner
) -> ProjectPublic:
    """Change the strategy, batch size, stopping rule, label cost, classes or display options;
    the next round uses the new settings."""
    changes = body.changes()
    if not changes:
        return ProjectPublic.model_validate(store.get_project(project_id))
    # the store refuses classes that drop one in use, in the update's own transaction
    return ProjectPublic.model_validate(store.update_project(project_id, **changes))


@router.get("/strategies", summary="List selection strategies")
def list_strategies(user: CurrentUser) -> list[dict[str, Any]]:
    """Every registered strategy: name, description, task types, inputs, cold start."""
    from dataclasses import asdict

    from labelwise.strategies import list_strategies as _list

    return [asdict(s) for s in _list()]
