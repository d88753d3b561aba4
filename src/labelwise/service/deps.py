"""FastAPI dependencies: the store, the settings, and bearer-token authentication.

Every request but ``/healthz`` carries ``Authorization: Bearer <token>``. Tokens are random
(:func:`new_token`) and stored only as their SHA-256 (:func:`hash_token`) in the annotator
table, so a leaked database does not leak credentials. Three roles:

- ``admin``: every route, every project;
- ``annotator``: reads and labels the projects they are a member of; any other project is a 404
  (not a 403), so annotators cannot probe which projects exist. Admin-only routes are a 403.
- ``reviewer``: an annotator who may also resolve the review queue of their projects (the same
  404 on other projects).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from labelwise.service.schemas import MAX_ID
from labelwise.settings import Settings
from labelwise.storage.base import Annotator, BaseStore, NotFound, Project

__all__ = [
    "Admin",
    "CurrentUser",
    "ProjectId",
    "SettingsDep",
    "StoreDep",
    "authenticate",
    "create_user",
    "get_settings",
    "get_store",
    "hash_token",
    "new_token",
    "require_admin",
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
) -> tuple[int, str]:
    """Create an annotator or admin with a new (or the given) token; returns ``(id, token)``.

    The token is returned once and stored hashed. This is also how the first admin is made
    (``create_app(admin_token=...)`` or ``LABELWISE_ADMIN_TOKEN``).
    """
    token = new_token() if token is None else token
    aid = store.create_annotator(name, token_hash=hash_token(token), role=role, skills=skills)
    return aid, token


def get_store(request: Request) -> BaseStore:
    return request.app.state.store


def get_settings(request: Request) -> Settings:
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
    user = store.find_annotator_by_token(hash_token(token.strip()))
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid token; ask an admin for a new one.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def require_user(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Annotator:
    """The caller, from the bearer token; 401 when it is missing or unknown.

    Requests with a body were authenticated before it was read (``app._GuardBodies``): that
    annotator is reused rather than looked up twice.
    """
    state = request.scope.setdefault("state", {})
    if state.get("user") is None:
        header = "" if credentials is None else f"Bearer {credentials.credentials}"
        # kept for the 404 handler, which words errors by the caller's role
        state["user"] = authenticate(store, header)
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


def visible_project(store: BaseStore, user: Annotator, project_id: int) -> Project:
    """The project if ``user`` may see it; :class:`NotFound` (a 404) otherwise."""
    if user.role != "admin" and project_id not in user.projects:
        raise NotFound("project", project_id)
    return store.get_project(project_id)
