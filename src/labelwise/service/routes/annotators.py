"""Annotators and tokens: create users (admin) with a token shown once, list them, rotate and
revoke tokens (admin, the token's holder, or an owner of a project the holder is in), manage a
project's members and their roles (the project's owners)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from labelwise.service.admin import check_projects
from labelwise.service.deps import (
    Admin,
    CurrentUser,
    ProjectId,
    ProjectOwner,
    StoreDep,
    create_user,
    hash_token,
    new_token,
    project_role,
)
from labelwise.service.schemas import (
    MAX_ID,
    AnnotatorCreate,
    AnnotatorCreated,
    AnnotatorPublic,
    MemberAdd,
    MemberPublic,
    MemberRoleUpdate,
    TokenCreate,
)
from labelwise.storage.base import Annotator, BaseStore, NotFound, utcnow

router = APIRouter(prefix="/api", tags=["annotators"])
AnnotatorId = Annotated[int, Path(ge=1, le=MAX_ID, description="Annotator id.")]
_NO_MEMBER = {404: {"description": "No such project (or not yours), or no such annotator."}}


def expires_at(days: int | None) -> datetime | None:
    """When a token made now for ``days`` days stops working (``None``: never)."""
    return None if days is None else utcnow() + timedelta(days=days)


def _created(a: Annotator, token: str) -> AnnotatorCreated:
    return AnnotatorCreated.model_validate(
        {**AnnotatorPublic.model_validate(a).model_dump(), "token": token}
    )


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
    """Create a user with a role, skills (routing tags), project memberships (as annotators)
    and optionally a token lifetime (``expires_in_days``). The response carries the API token:
    it is stored hashed and cannot be shown again."""
    check_projects(store, body.projects)  # 404 before anything is written
    aid, token = create_user(
        store,
        body.name,
        role=body.role,
        skills=body.skills,
        token_expires=expires_at(body.expires_in_days),
    )
    store.add_members(body.projects, aid)
    return _created(store.get_annotator(aid), token)


@router.get("/annotators", summary="List annotators")
def list_annotators(store: StoreDep, admin: Admin) -> list[AnnotatorPublic]:
    return [AnnotatorPublic.model_validate(a) for a in store.list_annotators()]


@router.get("/me", summary="Who am I")
def me(user: CurrentUser) -> AnnotatorPublic:
    """The caller: name, role, skills, the projects they belong to with their role in each,
    and when their token expires."""
    return AnnotatorPublic.model_validate(user)


def _token_holder(store: BaseStore, user: Annotator, annotator_id: int) -> Annotator:
    """The annotator whose token ``user`` may rotate or revoke.

    Anyone may manage their own token, an admin anyone's. An owner may manage the tokens of
    non-admins who are members of a project they own; an annotator in none of those is a 404
    for them, as if unknown (members of other projects stay hidden). Others get a 403.
    """
    if annotator_id == user.id:
        return user
    if user.role == "admin":
        return store.get_annotator(annotator_id)
    owned = {p for p in user.project_roles if project_role(user, p) == "owner"}
    if not owned:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "managing another user's token needs the admin role, or the owner role on a "
            f"project they are a member of; {user.name!r} owns no project.",
        )
    target = store.get_annotator(annotator_id)
    if not owned & set(target.projects):
        raise NotFound("annotator", annotator_id)
    if target.role == "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{target.name!r} is an admin: only an admin may change an admin's token.",
        )
    return target


@router.post(
    "/annotators/{annotator_id}/token",
    status_code=status.HTTP_201_CREATED,
    summary="Rotate a token",
    responses={404: {"description": "No such annotator (or not in a project you own)."}},
)
def rotate_token(
    annotator_id: AnnotatorId,
    store: StoreDep,
    user: CurrentUser,
    body: TokenCreate | None = None,
) -> AnnotatorCreated:
    """A new token for the annotator, shown only in this answer; the old one stops working at
    once (a revoked user works again with the new one). ``expires_in_days`` sets its lifetime
    (omitted: it never expires)."""
    target = _token_holder(store, user, annotator_id)
    token = new_token()
    days = None if body is None else body.expires_in_days
    store.update_token(target.id, hash_token(token), token_expires=expires_at(days))
    return _created(store.get_annotator(target.id), token)


@router.delete(
    "/annotators/{annotator_id}/token",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a token",
    responses={404: {"description": "No such annotator (or not in a project you own)."}},
)
def revoke_token(annotator_id: AnnotatorId, store: StoreDep, user: CurrentUser) -> Response:
    """The token stops working at once: requests with it answer 401 "token revoked". Rotate
    it to give the user a new one."""
    target = _token_holder(store, user, annotator_id)
    store.revoke_token(target.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _member(a: Annotator, project_id: int) -> MemberPublic:
    return MemberPublic(
        id=a.id, name=a.name, role=a.role, project_role=a.project_roles[project_id],
        skills=list(a.skills), created=a.created,
    )  # fmt: skip


@router.post(
    "/projects/{project_id}/members",
    status_code=status.HTTP_201_CREATED,
    summary="Add a project member",
    responses=_NO_MEMBER,
)
def add_member(
    project_id: ProjectId, body: MemberAdd, store: StoreDep, owner: ProjectOwner
) -> MemberPublic:
    """Let an annotator see and label a project, with a role there (``annotator``,
    ``reviewer`` or ``owner``). Idempotent: without a role an existing member keeps theirs."""
    store.add_member(project_id, body.annotator_id, role=body.role)
    return _member(store.get_annotator(body.annotator_id), project_id)


@router.get("/projects/{project_id}/members", summary="List project members", responses=_NO_MEMBER)
def list_members(project_id: ProjectId, store: StoreDep, owner: ProjectOwner) -> list[MemberPublic]:
    """The members with their role on this project."""
    return [_member(a, project_id) for a in store.list_annotators(project_id)]


@router.patch(
    "/projects/{project_id}/members/{annotator_id}",
    summary="Change a member's role",
    responses=_NO_MEMBER,
)
def set_member_role(
    project_id: ProjectId,
    annotator_id: AnnotatorId,
    body: MemberRoleUpdate,
    store: StoreDep,
    owner: ProjectOwner,
) -> MemberPublic:
    """``annotator``, ``reviewer`` or ``owner`` on this project (a global role is the admin's
    to give, with ``POST /api/annotators``)."""
    store.set_member_role(project_id, annotator_id, body.role)
    return _member(store.get_annotator(annotator_id), project_id)


@router.delete(
    "/projects/{project_id}/members/{annotator_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a project member",
    responses=_NO_MEMBER,
)
def remove_member(
    project_id: ProjectId, annotator_id: AnnotatorId, store: StoreDep, owner: ProjectOwner
) -> Response:
    """The annotator no longer sees the project (404 from now on); the tasks of it they hold
    leased go back to the queue at once. Idempotent: removing a non-member is a 204 too."""
    store.get_annotator(annotator_id)
    store.remove_member(project_id, annotator_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
