"""Projects: create (admin), list and read (members), update (owners); the strategy catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from labelwise.errors import LabelwiseError
from labelwise.service.deps import (
    Admin,
    CurrentUser,
    ProjectId,
    ProjectOwner,
    StoreDep,
    visible_project,
)
from labelwise.service.schemas import ProjectCreate, ProjectPublic, ProjectUpdate
from labelwise.storage.base import BaseStore, Project

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
    if "classes" in changes:
        _check_classes_kept(store, store.get_project(project_id), changes["classes"])
    return ProjectPublic.model_validate(store.update_project(project_id, **changes))


def _check_classes_kept(store: BaseStore, project: Project, classes: list[str]) -> None:
    """Refuse new classes that leave out one a stored label, gold label or answer uses.

    Label checks compare against the project's classes: with a class gone, stored labels
    would no longer be valid ones (training, exports and agreement would meet an unknown
    class), and renaming a class is not what dropping one does.
    """
    used: set[str] = set()

    def add(label: Any) -> None:
        if label is None:
            return
        used.update(str(x) for x in (label if isinstance(label, list) else [label]))

    for it in store.list_items(project.id):
        add(it.label)
        add(it.gold_label)
    for ann in store.list_annotations(project.id):
        add(ann.label)
    dropped = sorted(used - set(classes))
    if dropped:
        raise LabelwiseError(
            f"classes: {dropped!r} {'is' if len(dropped) == 1 else 'are'} used by stored "
            "labels or answers and cannot be removed; keep them in the list (new classes "
            "may be added)."
        )


@router.get("/strategies", summary="List selection strategies")
def list_strategies(user: CurrentUser) -> list[dict[str, Any]]:
    """Every registered strategy: name, description, task types, inputs, cold start."""
    from dataclasses import asdict

    from labelwise.strategies import list_strategies as _list

    return [asdict(s) for s in _list()]
