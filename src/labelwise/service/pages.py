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
- ``GET /projects/{id}/dashboard``: learning curve, rounds, queue, throughput, cost, stopping,
  data quality (annotator quality, review-queue counts, consensus and gold settings);
- ``GET /projects/{id}/review``: resolve the review queue one item at a time (reviewers, admins);
- ``GET /media/items/{item_id}``: an image item's picture, at most 1,024 px a side by default
  (bearer token, membership; ``?size=original`` for the file itself);
- ``GET /api/items/{item_id}/keywords``: words to highlight in a text item (bearer token).

Keywords to highlight come from the item's ``metadata["keywords"]`` when the importer set it;
otherwise they are what the project's current model weighs for its prediction
(:func:`labelwise.text.model_cues`: the item's terms with the largest ``|coef × tfidf|`` toward
the predicted class, signed). There are none while the project has no model, for items that are
not text, and for models that are not linear: no highlight beats a misleading one. The feature
matrix, its vocabulary (:func:`labelwise.text.tfidf_vocabulary`) and the model are loaded once
per project and kept until the item count or the model version changes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from labelwise.errors import LabelwiseError
from labelwise.service.deps import CurrentUser, ProjectId, StoreDep, visible_project
from labelwise.service.schemas import MAX_ID
from labelwise.storage.base import BaseStore, NotFound, Project
from labelwise.text import model_cues, tfidf_vocabulary

__all__ = ["IMAGE_TYPES", "router", "static_files"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",  # shown converted (browsers do not show TIFF)
    ".tiff": "image/tiff",
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


@router.get("/projects/{project_id}/review", response_class=HTMLResponse)
def review(request: Request, project_id: ProjectId) -> HTMLResponse:
    # the shell is the same for everyone; access is the API's (404 off your projects, 403 for
    # annotators), so the page cannot show what the API would refuse
    return _page(request, "review.html", title="Review", project_id=project_id)


@router.get("/projects/{project_id}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, project_id: ProjectId) -> HTMLResponse:
    return _page(request, "dashboard.html", title="Dashboard", project_id=project_id)


# --------------------------------------------------------------------------- item helpers


def _visible_item(store: BaseStore, user: Any, item_id: int) -> Any:
    item = store.get_item(item_id)
    visible_project(store, user, item.project_id)
    return item


@router.get("/media/items/{item_id}")
def item_image(
    request: Request,
    item_id: ItemId,
    store: StoreDep,
    user: CurrentUser,
    size: Annotated[Literal["display", "original"], Query()] = "display",
) -> Response:
    """The image of an image item (``payload["image"]``), for members of its project.

    ``size=display`` (default): a copy at most ``settings.image_display_size`` px on its longest
    side, EXIF orientation applied, cached on disk (:func:`labelwise.service.images.display_copy`);
    ``size=original``: the file itself. ETag and ``Cache-Control: private``; a matching
    ``If-None-Match`` is a 304. Only files with an image suffix are read, so an item cannot be
    made to leak another file.
    """
    from labelwise.service.images import display_copy

    item = _visible_item(store, user, item_id)
    path = item.payload.get("image")
    if not isinstance(path, str):
        raise NotFound("image of item", item_id)
    p = Path(path)
    media = IMAGE_TYPES.get(p.suffix.lower())
    if media is None:
        raise LabelwiseError(
            f"item {item_id}'s image {p.name!r} is not a png/jpeg/gif/webp/bmp/tiff."
        )
    if not p.is_file():
        raise NotFound("image file of item", item_id)
    headers = {"Cache-Control": "private, max-age=3600"}
    if size == "original" and not p.suffix.lower().startswith(".tif"):
        return FileResponse(p, media_type=media, headers=headers)
    shown = display_copy(p, request.app.state.settings)
    headers["ETag"] = shown.etag
    if shown.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(shown.path, media_type=shown.media_type, headers=headers)


_cue_lock = threading.Lock()


class _CueModel:
    """What keyword cues need for one project: feature rows, their terms, the model."""

    def __init__(self, item_ids: Any, X: Any, names: list[str], model: Any) -> None:
        self.item_ids, self.X, self.names, self.model = item_ids, X, names, model

    def row(self, item_id: int) -> Any:
        import numpy as np

        pos = int(np.searchsorted(self.item_ids, item_id))
        if pos >= len(self.item_ids) or self.item_ids[pos] != item_id:
            return None  # imported after the model's features were read
        return self.X[pos]


def _load_cue_model(request: Request, store: BaseStore, project: Project) -> _CueModel | None:
    from labelwise.service.features import project_features
    from labelwise.service.rounds import load_model

    fm = project_features(store, project.id, request.app.state.settings)
    if fm.kind != "text":
        return None
    loaded = load_model(store, project, fm)
    if loaded is None:
        return None
    texts: list[str] = []
    page, after_id = 50_000, None
    while True:  # ascending item ids (keyset pages): the rows of fm.X
        batch = store.list_items(project.id, limit=page, after_id=after_id)
        texts.extend(str(it.payload.get("text", "")) for it in batch)
        if len(batch) < page:
            break
        after_id = batch[-1].id
    names = tfidf_vocabulary(texts)
    if len(names) != fm.X.shape[1]:
        return None  # the matrix was built differently: better no cues than wrong ones
    return _CueModel(fm.item_ids, fm.X, names, loaded.model)


def _cue_model(request: Request, store: BaseStore, project: Project) -> _CueModel | None:
    """The project's :class:`_CueModel`, cached on the app per (item count, model version)."""
    latest = store.find_latest_model_version(project.id)
    if latest is None:
        return None
    key = (store.count_items(project.id), latest.id)
    cache: dict[int, tuple[Any, _CueModel | None]] = request.app.state.__dict__.setdefault(
        "keyword_cues", {}
    )
    with _cue_lock:
        hit = cache.get(project.id)
        if hit is not None and hit[0] == key:
            return hit[1]
    try:
        value = _load_cue_model(request, store, project)
    except LabelwiseError:  # e.g. items of mixed kinds: highlighting is optional
        value = None
    with _cue_lock:
        cache[project.id] = (key, value)
    return value


@router.get("/api/items/{item_id}/keywords")
def item_keywords(
    request: Request,
    item_id: ItemId,
    store: StoreDep,
    user: CurrentUser,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> dict[str, Any]:
    """Words to highlight in a text item.

    ``{"keywords": [...], "source": "metadata" | "model" | "none"}``; from the model also
    ``"weights"`` (each term's ``coef × tfidf`` toward the predicted class, positive: for it)
    and ``"label"`` (the predicted class).
    """
    item = _visible_item(store, user, item_id)
    given = item.metadata.get("keywords")
    if isinstance(given, list) and all(isinstance(w, str) for w in given):
        return {"keywords": given[:k], "source": "metadata"}
    none: dict[str, Any] = {"keywords": [], "source": "none"}
    if not isinstance(item.payload.get("text"), str):
        return none
    cm = _cue_model(request, store, store.get_project(item.project_id))
    row = None if cm is None else cm.row(item.id)
    if cm is None or row is None:
        return none
    cues = model_cues(row, cm.names, cm.model, k)
    if not cues.terms:
        return none
    return {
        "keywords": [t for t, _ in cues.terms],
        "weights": [round(w, 6) for _, w in cues.terms],
        "label": cues.label,
        "source": "model",
    }
