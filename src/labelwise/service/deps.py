"""FastAPI dependencies: the store, the settings, bearer-token authentication and roles.

Every request but ``/healthz`` carries ``Authorization: Bearer <token>``. Tokens are random
(:func:`new_token`) and stored only as their SHA-256 (:func:`hash_token`) in the annotator
table, so a leaked database does not leak credentials. A token may expire and may be revoked:
each is a 401 that says so. Two kinds of role:

- global (``Annotator.role``): ``admin`` may do everything everywhere; ``reviewer`` reviews in
  every project they are a member of; ``annotator`` nothing more than their memberships give.
- per project (the membership's role, ``PROJECT_ROLES``): ``annotator`` reads and labels the
  project, ``reviewer`` also works its review queue and reads annotator quality, ``owner``
  also imports, exports, changes settings, members, model sources, webhooks, rounds and
  guidelines.

:func:`require_project_role` is the one place that decides: a project the caller is no member
of is a 404 (not a 403), the same as one that does not exist, so nobody can probe which
projects exist; a member lacking the role gets a 403 naming it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from labelwise.service.schemas import MAX_ID
from labelwise.settings import Settings
from labelwise.storage.base import (
    PROJECT_ROLES,
    Annotator,
    BaseStore,
    NotFound,
    Project,
    utcnow,
)

__all__ = [
    "Admin",
    "CurrentUser",
    "ProjectId",
    "ProjectOwner",
    "ProjectReviewer",
    "SettingsDep",
    "StoreDep",
    "authenticate",
    "create_user",
    "get_settings",
    "get_store",
    "hash_token",
    "new_token",
    "project_role",
    "require_admin",
    "require_project_role",
    "require_reviewer",
    "require_user",
    "visible_project",
]

_bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/annotators.")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random API token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def create_user(
    store: BaseStore,
    name: str,
    *,
    role: str = "annotator",
    skills: tuple[str, ...] | list[str] = (),
    token: str | None = None,
    token_expires: datetime | None = None,
) -> tuple[int, str]:
    """Create an annotator or admin with a new (or the given) token; returns ``(id, token)``.

    The token is returned once and stored hashed; it stops working at ``token_expires`` (never
    when ``None``). This is also how the first admin is made
    (``create_app(admin_token=...)`` or ``LABELWISE_ADMIN_TOKEN``).
    """
    token = new_token() if token is None else token
    aid = store.create_annotator(
        name, token_hash=hash_token(token), role=role, skills=skills, token_expires=token_expires
    )
    return aid, token


# async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per dependency and
# request (these two are attribute reads)
async def get_store(request: Request) -> BaseStore:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[BaseStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def authenticate(store: BaseStore, authorization: str) -> Annotator:
    """The annotator an ``Authorization`` header names; 401 when it is missing or unknown."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing token; send 'Authorization: Bearer <token>' (tokens come from "
            "POST /api/annotators).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # one query: expiry and revocation are read off the row the lookup returns
    user = store.find_annotator_by_token(hash_token(token.strip()))
    if user is None:
        reason = "invalid token; ask an admin for a new one."
    elif user.token_revoked is not None:
        reason = (
            f"token revoked at {user.token_revoked.isoformat(timespec='seconds')}; ask an "
            "admin (or a project owner) for a new one."
        )
    elif user.token_expires is not None and user.token_expires <= utcnow():
        reason = (
            f"token expired at {user.token_expires.isoformat(timespec='seconds')}; ask an "
            "admin (or a project owner) for a new one."
        )
    else:
        return user
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def require_user(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Annotator:
    """The caller, from the bearer token; 401 when it is missing or unknown.

    Requests with a body were authenticated before it was read (``app._GuardBodies``): that
    annotator is reused rather than looked up twice, without a trip through the thread pool
    (only the database lookup runs there).
    """
    state = request.scope.setdefault("state", {})
    if state.get("user") is None:
        header = "" if credentials is None else f"Bearer {credentials.credentials}"
        # kept for the 404 handler, which words errors by the caller's role
        state["user"] = await run_in_threadpool(authenticate, store, header)
    return state["user"]


CurrentUser = Annotated[Annotator, Depends(require_user)]


def require_admin(user: CurrentUser) -> Annotator:
    """The caller if they are an admin; 403 otherwise."""
    if user.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this needs the admin role; {user.name!r} is {user.role}."
        )
    return user


Admin = Annotated[Annotator, Depends(require_admin)]


def require_reviewer(user: CurrentUser) -> Annotator:
    """The caller if they are a reviewer or an admin; 403 otherwise."""
    if user.role not in ("admin", "reviewer"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs the reviewer role; {user.name!r} is {user.role}.",
        )
    return user


Reviewer = Annotated[Annotator, Depends(require_reviewer)]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="Project id.")]


_RANK = {role: i for i, role in enumerate(PROJECT_ROLES)}


def project_role(user: Annotator, project_id: int) -> str | None:
    """What ``user`` is on a project: one of ``PROJECT_ROLES``, or ``None`` for no member.

    A global admin is an owner of every project; a global reviewer is at least a reviewer of
    the projects they are a member of.
    """
    if user.role == "admin":
        return "owner"
    role = user.project_roles.get(project_id)
    if role is not None and user.role == "reviewer" and _RANK[role] < _RANK["reviewer"]:
        return "reviewer"
    return role


def require_project_role(store: BaseStore, user: Annotator, project_id: int, role: str) -> Project:
    """The project if ``user`` holds ``role`` on it (or a stronger one).

    :class:`NotFound` (a 404 worded like an unknown project) when ``user`` is no member of it,
    a 403 naming the role when they are a member without it.
    """
    have = project_role(user, project_id)
    if have is None:
        raise NotFound("project", project_id)
    if _RANK[have] < _RANK[role]:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs the {role} role on project {project_id} (or the admin role); "
            f"{user.name!r} is {have} there.",
        )
    return store.get_project(project_id)


def visible_project(store: BaseStore, user: Annotator, project_id: int) -> Project:
    """The project if ``user`` may see it (any member); :class:`NotFound` (a 404) otherwise."""
    return require_project_role(store, user, project_id, "annotator")


def _on_path_project(role: str) -> Callable[..., Annotator]:
    def dependency(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> Annotator:
        require_project_role(store, user, project_id, role)
        return user

    dependency.__doc__ = f"The caller if they are {role} of the path's project (or admin)."
    return dependency


#: the caller, an owner (or admin) of the ``{project_id}`` in the path
ProjectOwner = Annotated[Annotator, Depends(_on_path_project("owner"))]
#: the caller, a reviewer or owner (or admin, or a global reviewer) of the path's project
ProjectReviewer = Annotated[Annotator, Depends(_on_path_project("reviewer"))]
