"""Annotators (admin): create users with a token shown once, list them, manage membership."""

from __future__ import annotations

from fastapi import APIRouter, status

from labelwise.service.admin import check_projects
from labelwise.service.deps import Admin, CurrentUser, ProjectId, StoreDep, create_user
from labelwise.service.schemas import (
    AnnotatorCreate,
    AnnotatorCreated,
    AnnotatorPublic,
    MemberAdd,
)

router = APIRouter(prefix="/api", tags=["annotators"])


@router.post(
    "/annotators",
    status_code=status.HTTP_201_CREATED,
    summary="Create an annotator or admin",
    responses={
        404: {"description": "A listed project does not exist."},
        409: {"description": "The name is taken."},
    },
)
def create_annotator(body: AnnotatorCreate, store: StoreDep, admin: Admin) -> AnnotatorCreated:
    """Create a user with a role, skills (routing tags) and project memberships. The response
    carries the API token: it is stored hashed and cannot be shown again."""
    check_projects(store, body.projects)  # 404 before anything is written
    aid, token = create_user(store, body.name, role=body.role, skills=body.skills)
    store.add_members(body.projects, aid)
    a = store.get_annotator(aid)
    return AnnotatorCreated.model_validate({**AnnotatorPublic.model_validate(a).model_dump(),
                                            "token": token})  # fmt: skip


@router.get("/annotators", summary="List annotators")
def list_annotators(store: StoreDep, admin: Admin) -> list[AnnotatorPublic]:
    return [AnnotatorPublic.model_validate(a) for a in store.list_annotators()]


@router.get("/me", summary="Who am I")
def me(user: CurrentUser) -> AnnotatorPublic:
    """The caller: name, role, skills and the projects they belong to."""
    return AnnotatorPublic.model_validate(user)


@router.post(
    "/projects/{project_id}/members",
    status_code=status.HTTP_201_CREATED,
    summary="Add a project member",
    responses={404: {"description": "No such project or annotator."}},
)
def add_member(
    project_id: ProjectId, body: MemberAdd, store: StoreDep, admin: Admin
) -> AnnotatorPublic:
    """Let an annotator see and label a project (idempotent)."""
    store.add_member(project_id, body.annotator_id)
    return AnnotatorPublic.model_validate(store.get_annotator(body.annotator_id))


@router.get(
    "/projects/{project_id}/members",
    summary="List project members",
    responses={404: {"description": "No such project."}},
)
def list_members(project_id: ProjectId, store: StoreDep, admin: Admin) -> list[AnnotatorPublic]:
    store.get_project(project_id)
    return [AnnotatorPublic.model_validate(a) for a in store.list_annotators(project_id)]
