"""The browser pages: the annotator's labeling view and the project owner's dashboard.

Pages are server-rendered Jinja2 shells (``templates/``) with small plain scripts
(``static/``); there is no front-end build step and nothing is fetched from outside the service.
The scripts call the JSON API under ``/api`` with the token the user typed on ``/login``, which
is kept in the tab's ``sessionStorage`` (never in a cookie, so the API's bearer-token
authentication is unchanged and there is no cross-site request to forge).

Routes (none of them is part of the OpenAPI schema):

- ``GET /``: the projects of the logged-in user, with links to label and to the dashboard;
- ``GET /login``: enter a token;
- ``GET /projects/new``: create a project (admins);
- ``GET /projects/{id}/label``: label one task at a time, keyboard first;
- ``GET /projects/{id}/dashboard``: learning curve, rounds, queue, throughput, cost, stopping;
- ``GET /media/items/{item_id}``: the image file of an image item (bearer token, membership);
- ``GET /api/items/{item_id}/keywords``: words to highlight in a text item (bearer token).

Keywords to highlight come from the item's ``metadata["keywords"]`` when the importer set it;
otherwise they are the item's top TF-IDF terms (:func:`labelwise.text.top_terms`, re-exported
here), with document frequencies (:func:`labelwise.text.term_idf`) taken from up to
:data:`KEYWORD_SAMPLE` text items of the project and cached per project.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from labelwise.errors import LabelwiseError
from labelwise.service.deps import CurrentUser, ProjectId, StoreDep, visible_project
from labelwise.service.schemas import MAX_ID
from labelwise.storage.base import BaseStore, NotFound
from labelwise.text import term_idf, top_terms

__all__ = ["IMAGE_TYPES", "KEYWORD_SAMPLE", "router", "static_files", "top_terms"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

KEYWORD_SAMPLE = 2000  # text items of a project used for document frequencies
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Item id.")]


def static_files() -> StaticFiles:
    """The scripts and the style sheet, to mount at ``/static``."""
    return StaticFiles(directory=HERE / "static")


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    return _page(request, "index.html", title="Projects")


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> HTMLResponse:
    return _page(request, "login.html", title="Log in")


@router.get("/projects/new", response_class=HTMLResponse)
def new_project(request: Request) -> HTMLResponse:
    return _page(request, "new_project.html", title="New project")


@router.get("/projects/{project_id}/label", response_class=HTMLResponse)
def label(request: Request, project_id: ProjectId) -> HTMLResponse:
    return _page(request, "label.html", title="Label", project_id=project_id)


@router.get("/projects/{project_id}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, project_id: ProjectId) -> HTMLResponse:
    return _page(request, "dashboard.html", title="Dashboard", project_id=project_id)


# --------------------------------------------------------------------------- item helpers


def _visible_item(store: BaseStore, user: Any, item_id: int) -> Any:
    item = store.get_item(item_id)
    visible_project(store, user, item.project_id)
    return item


@router.get("/media/items/{item_id}")
def item_image(item_id: ItemId, store: StoreDep, user: CurrentUser) -> FileResponse:
    """The image file of an image item (``payload["image"]``), for members of its project.

    Only files with an image suffix are served, so an item cannot be made to leak another file.
    """
    item = _visible_item(store, user, item_id)
    path = item.payload.get("image")
    if not isinstance(path, str):
        raise NotFound("image of item", item_id)
    p = Path(path)
    media = IMAGE_TYPES.get(p.suffix.lower())
    if media is None:
        raise LabelwiseError(f"item {item_id}'s image {p.name!r} is not a png/jpeg/gif/webp/bmp.")
    if not p.is_file():
        raise NotFound("image file of item", item_id)
    return FileResponse(p, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


_idf_lock = threading.Lock()


def _project_idf(request: Request, store: BaseStore, project_id: int) -> dict[str, float]:
    """Document frequencies of a project's text items, cached on the app per item count."""
    cache: dict[int, tuple[int, dict[str, float]]] = request.app.state.__dict__.setdefault(
        "keyword_idf", {}
    )
    n_items = store.count_items(project_id)
    with _idf_lock:
        hit = cache.get(project_id)
        if hit is not None and hit[0] == n_items:
            return hit[1]
    texts = [
        str(it.payload["text"])
        for it in store.list_items(project_id, limit=KEYWORD_SAMPLE)
        if isinstance(it.payload.get("text"), str)
    ]
    idf = term_idf(texts)
    with _idf_lock:
        cache[project_id] = (n_items, idf)
    return idf


@router.get("/api/items/{item_id}/keywords")
def item_keywords(
    request: Request,
    item_id: ItemId,
    store: StoreDep,
    user: CurrentUser,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> dict[str, Any]:
    """Words to highlight in a text item: ``{"keywords": [...], "source": ...}``."""
    item = _visible_item(store, user, item_id)
    given = item.metadata.get("keywords")
    if isinstance(given, list) and all(isinstance(w, str) for w in given):
        return {"keywords": given[:k], "source": "metadata"}
    text = item.payload.get("text")
    if not isinstance(text, str):
        return {"keywords": [], "source": "none"}
    idf = _project_idf(request, store, item.project_id)
    return {"keywords": top_terms(text, idf, k), "source": "tfidf"}
