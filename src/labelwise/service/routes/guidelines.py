"""Guidelines: read them (members), write a new version (owners), list the versions.

Guidelines are Markdown (a body, per-class notes, instructions for hard cases). They are stored
as written and rendered here with markdown-it-py in CommonMark mode with raw HTML **off**: a
``<script>`` or ``<img onerror=...>`` typed into the guidelines is shown as text, and links with
``javascript:``/``vbscript:``/``data:`` targets are not made into links. The pages insert the
rendered HTML as is, so this is the only place that turns user text into markup.

Each ``PUT`` writes a new version (1, 2, ...); annotations record the version they were made
under, so a label can be read against the instructions its annotator saw.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Path

from labelwise.service.deps import CurrentUser, ProjectId, ProjectOwner, StoreDep, visible_project
from labelwise.service.schemas import MAX_ID, GuidelinesPublic, GuidelinesUpdate
from labelwise.storage.base import Guidelines, NotFound

__all__ = ["render_markdown", "router"]

router = APIRouter(prefix="/api", tags=["projects"])
Version = Annotated[int, Path(ge=1, le=MAX_ID, description="Guidelines version (1, 2, ...).")]
_ERR = {404: {"description": "No such project (or not yours), or no such version."}}


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    # "commonmark" + tables; html=False escapes raw HTML instead of passing it through
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to insert into a page.

    Parameters
    ----------
    text : str
        CommonMark (with tables). Raw HTML in it is escaped, never passed through.

    Returns
    -------
    str
        HTML; ``"*a* <b>"`` -> ``"<p><em>a</em> &lt;b&gt;</p>\\n"``. Headings move down two
        levels (``#`` is ``<h3>``, capped at ``<h6>``): the guidelines are always shown under a
        page's ``<h1>`` and a section's ``<h2>``, and heading levels must not jump.
    """
    if not text.strip():
        return ""
    md = _renderer()
    env: dict[str, Any] = {}
    tokens = md.parse(text, env)
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + 2)}"
    return md.renderer.render(tokens, md.options, env)


def _public(project_id: int, g: Guidelines | None) -> GuidelinesPublic:
    if g is None:
        return GuidelinesPublic(
            project_id=project_id, version=None, body="", body_html="", classes={},
            hard_cases="", hard_cases_html="", author_id=None, created=None,
        )  # fmt: skip
    return GuidelinesPublic(
        project_id=g.project_id,
        version=g.version,
        body=g.body,
        body_html=render_markdown(g.body),
        classes=g.classes,
        hard_cases=g.hard_cases,
        hard_cases_html=render_markdown(g.hard_cases),
        author_id=g.author_id,
        created=g.created,
    )


@router.get("/projects/{project_id}/guidelines", summary="Get the guidelines", responses=_ERR)
def get_guidelines(project_id: ProjectId, store: StoreDep, user: CurrentUser) -> GuidelinesPublic:
    """The latest version, its Markdown rendered to safe HTML; ``version`` is null (and the
    texts empty) while the project has none."""
    visible_project(store, user, project_id)
    return _public(project_id, store.find_guidelines(project_id))


@router.put(
    "/projects/{project_id}/guidelines",
    summary="Write a new version of the guidelines",
    responses={**_ERR, 422: {"description": "A class that is not the project's; too long."}},
)
def put_guidelines(
    project_id: ProjectId, body: GuidelinesUpdate, store: StoreDep, owner: ProjectOwner
) -> GuidelinesPublic:
    """Store the guidelines as the next version (earlier versions are kept) and return it.
    Class notes must name classes of the project."""
    store.get_project(project_id)
    gid = store.create_guidelines(
        project_id,
        body.body,
        classes={k: v.model_dump() for k, v in body.classes.items()},
        hard_cases=body.hard_cases,
        author_id=owner.id,
    )
    return _public(project_id, store.get_guidelines(gid))


@router.get(
    "/projects/{project_id}/guidelines/versions",
    summary="List the versions of the guidelines",
    responses=_ERR,
)
def list_guidelines(
    project_id: ProjectId, store: StoreDep, user: CurrentUser
) -> list[GuidelinesPublic]:
    """Every version, oldest first."""
    visible_project(store, user, project_id)
    return [_public(project_id, g) for g in store.list_guidelines(project_id)]


@router.get(
    "/projects/{project_id}/guidelines/versions/{version}",
    summary="Get one version of the guidelines",
    responses=_ERR,
)
def get_guidelines_version(
    project_id: ProjectId, version: Version, store: StoreDep, user: CurrentUser
) -> GuidelinesPublic:
    visible_project(store, user, project_id)
    g = store.find_guidelines(project_id, version)
    if g is None:
        raise NotFound(f"guidelines version of project {project_id}", version)
    return _public(project_id, g)
