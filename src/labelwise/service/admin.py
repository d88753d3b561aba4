"""Administration calls behind the ``labelwise`` CLI: projects, tokens, exports and status.

Each function is the *one library call* of a command (``labelwise project create``, ``labelwise
token create``, ``labelwise project export``, ``labelwise project status``) and validates its
input with the same rules as the HTTP API, raising :class:`~labelwise.errors.LabelwiseError`
with a message that says what to fix. Nothing is written when validation fails.

>>> from labelwise.storage import InMemoryStore
>>> store = InMemoryStore()
>>> create_project_from_options(store, "reviews", classes=["great", "other"]).task_type
'multiclass'
>>> resolve_project(store, "1").name
'reviews'
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from labelwise.errors import LabelwiseError
from labelwise.storage.base import (
    ROLES,
    Annotator,
    BaseStore,
    DatasetVersion,
    NotFound,
    Project,
    utcnow,
)
from labelwise.strategies.registry import DEFAULT_STRATEGY

__all__ = [
    "EXPORT_FORMATS",
    "ExportResult",
    "ProjectStatus",
    "TokenCreated",
    "create_admin_token",
    "create_project_from_options",
    "create_token",
    "export_dataset_version",
    "export_project",
    "parse_json_object",
    "parse_strategy_params",
    "project_status",
    "resolve_annotator",
    "resolve_dataset_version",
    "resolve_project",
    "revoke_token",
    "rotate_token",
    "token_expiry",
]

EXPORT_FORMATS = ("csv", "jsonl")


# --------------------------------------------------------------------------- projects


def resolve_project(store: BaseStore, ref: str | int) -> Project:
    """The project named ``ref``, or whose id is ``ref`` (a name wins over an id).

    Raises
    ------
    LabelwiseError
        If no project has that name or id; the message lists the existing names.
    """
    text = str(ref).strip()
    project = store.find_project(text)
    if project is not None:
        return project
    if text.isdigit():
        try:
            return store.get_project(int(text))
        except NotFound:
            pass
    names = [p.name for p in store.list_projects()]
    hint = f"existing projects: {names}" if names else "create one with `labelwise project create`"
    raise LabelwiseError(f"no project named or numbered {text!r}; {hint}.")


def parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object (``None`` or empty: ``{}``)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelwiseError(f"{what} must be a JSON object; {e.msg} in {text!r}.") from None
    if not isinstance(value, dict):
        raise LabelwiseError(f"{what} must be a JSON object such as {{...}}; got {text!r}.")
    return value


def parse_strategy_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``["k=10", "model=nb"]`` -> ``{"k": 10, "model": "nb"}`` (values parsed as JSON when
    they are JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise LabelwiseError(f"a strategy parameter is key=value, e.g. beta=1.0; got {pair!r}.")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def create_project_from_options(
    store: BaseStore,
    name: str,
    *,
    classes: Sequence[str],
    task_type: str = "multiclass",
    strategy: str = DEFAULT_STRATEGY,
    strategy_params: Mapping[str, Any] | None = None,
    cold_start_strategy: str = "random",
    batch_size: int = 10,
    stopping: Mapping[str, Any] | None = None,
    label_cost: float = 1.0,
    show_predictions: bool = False,
    **quality: Any,
) -> Project:
    """Create a project with the API's validation (:class:`~labelwise.service.schemas.
    ProjectCreate`: registered strategy suited to the task, cold-start strategy, stopping rule,
    unique classes, two classes for binary).

    Raises
    ------
    LabelwiseError
        On any invalid option (the message names it) or a taken name.
    """
    from pydantic import ValidationError

    from labelwise.service.schemas import ProjectCreate

    if not classes:
        raise LabelwiseError("a project needs classes, e.g. --classes great,other.")
    try:
        body = ProjectCreate(
            name=name,
            task_type=task_type,
            classes=list(classes),
            strategy=strategy,
            strategy_params=dict(strategy_params or {}),
            cold_start_strategy=cold_start_strategy,
            batch_size=batch_size,
            stopping=dict(stopping or {}),
            label_cost=label_cost,
            show_predictions=show_predictions,
            **quality,
        )
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            msgs.append(f"{loc}: {msg}" if loc else msg)
        raise LabelwiseError("; ".join(msgs)) from None
    if store.find_project(body.name) is not None:
        raise LabelwiseError(f"a project named {body.name!r} exists; pick another name.")
    return store.get_project(store.create_project(**body.model_dump()))


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenCreated:
    """A new user and their API token (shown once; the store keeps only its SHA-256)."""

    annotator: Annotator
    token: str


def create_token(
    store: BaseStore,
    name: str,
    *,
    role: str = "annotator",
    projects: Sequence[int] = (),
    skills: Sequence[str] = (),
    expires_in_days: int | None = None,
) -> TokenCreated:
    """Create a user with a fresh random token (``secrets``), stored hashed.

    Parameters
    ----------
    store : BaseStore
    name : str
        Unique user name.
    role : {"admin", "annotator", "reviewer"}
    projects : sequence of int
        Project ids the user becomes a member of (checked before anything is written).
    skills : sequence of str
        Routing tags: tasks tagged with one of them are served to this user first.
    expires_in_days : int, optional
        The token stops working this many days from now (1-3650); never when ``None``.
    """
    from labelwise.service.deps import create_user

    if role not in ROLES:
        raise LabelwiseError(f"role must be one of {list(ROLES)}; got {role!r}.")
    if not name or not name.strip():
        raise LabelwiseError("a user needs a non-empty name.")
    if store.find_annotator(name) is not None:
        raise LabelwiseError(f"a user named {name!r} exists; pick another name.")
    check_projects(store, projects)
    expires = token_expiry(expires_in_days)
    aid, token = create_user(store, name, role=role, skills=tuple(skills), token_expires=expires)
    store.add_members(projects, aid)
    return TokenCreated(store.get_annotator(aid), token)


def token_expiry(days: int | None) -> datetime | None:
    """When a token made now for ``days`` days stops working (``None``: never).

    Raises
    ------
    LabelwiseError
        If ``days`` is not 1-3650.
    """
    if days is None:
        return None
    if not 1 <= days <= 3650:
        raise LabelwiseError(f"expires in days must be 1-3650 (ten years); got {days}.")
    return utcnow() + timedelta(days=days)


def resolve_annotator(store: BaseStore, ref: str | int) -> Annotator:
    """The user named ``ref``, or whose id is ``ref`` (a name wins over an id).

    Raises
    ------
    LabelwiseError
        If no user has that name or id.
    """
    text = str(ref).strip()
    user = store.find_annotator(text)
    if user is not None:
        return user
    if text.isdigit():
        try:
            return store.get_annotator(int(text))
        except NotFound:
            pass
    raise LabelwiseError(f"no user named or numbered {text!r}; `labelwise token create` makes one.")


def rotate_token(
    store: BaseStore, ref: str | int, expires_in_days: int | None = None
) -> TokenCreated:
    """Give a user a new token (shown once); the old one stops working, a revocation is lifted.

    Parameters
    ----------
    store : BaseStore
    ref : str or int
        User name or id.
    expires_in_days : int, optional
        The new token's lifetime (1-3650 days); never expires when ``None``.
    """
    from labelwise.service.deps import hash_token, new_token

    user = resolve_annotator(store, ref)
    expires = token_expiry(expires_in_days)
    token = new_token()
    store.update_token(user.id, hash_token(token), token_expires=expires)
    return TokenCreated(store.get_annotator(user.id), token)


def revoke_token(store: BaseStore, ref: str | int) -> Annotator:
    """Stop a user's token from working at once (requests with it answer 401 "revoked")."""
    user = resolve_annotator(store, ref)
    store.revoke_token(user.id)
    return store.get_annotator(user.id)


def check_projects(store: BaseStore, project_ids: Sequence[int]) -> None:
    """:class:`NotFound` for the first id that is no project, in one query however many ids
    (a user may be given up to 10,000 memberships at once)."""
    if not project_ids:
        return
    known = {p.id for p in store.list_projects()}
    missing = next((pid for pid in project_ids if pid not in known), None)
    if missing is not None:
        raise NotFound("project", missing)


def create_admin_token(store: BaseStore, name: str = "admin") -> TokenCreated:
    """Create an admin user (``name``, or ``name-2``, ``name-3``... if taken) and its token."""
    candidate, n = name, 1
    while store.find_annotator(candidate) is not None:
        n += 1
        candidate = f"{name}-{n}"
    return create_token(store, candidate, role="admin")


# --------------------------------------------------------------------------- exports


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the dataset version, the rows and where (``None``: a stream)."""

    dataset_version: DatasetVersion
    n_rows: int
    path: str | None


def resolve_dataset_version(
    store: BaseStore, project_id: int, version: int | None = None
) -> DatasetVersion:
    """Dataset version ``version`` (its id) of the project, or a snapshot of the current labels
    when ``None`` (the existing version if the labels did not change)."""
    if version is None:
        return store.get_dataset_version(store.create_dataset_version(project_id))
    versions = {v.id: v for v in store.list_dataset_versions(project_id)}
    if version not in versions:
        have = sorted(versions) or "none yet"
        raise LabelwiseError(
            f"project {project_id} has no dataset version {version}; its versions: {have}."
        )
    return versions[version]


def _csv_label(label: Any) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, list):  # multilabel as a|b, what the importer reads back
        return "|".join(str(x) for x in label)
    return json.dumps(label)


def export_dataset_version(
    store: BaseStore, dataset_version_id: int, fmt: str, out: IO[str]
) -> int:
    """Write a dataset version's ``(id, label)`` rows, sorted by id, to the text stream ``out``.

    CSV has an ``id,label`` header and writes multilabel labels as ``a|b``; JSON Lines writes
    one ``{"id": ..., "label": ...}`` object per line. Returns the number of rows.
    """
    if fmt not in EXPORT_FORMATS:
        raise LabelwiseError(f"export format must be one of {list(EXPORT_FORMATS)}; got {fmt!r}.")
    rows = store.list_dataset_rows(dataset_version_id)
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "label"])
        for ext, label in rows:
            writer.writerow([ext, _csv_label(label)])
    else:
        for ext, label in rows:
            out.write(json.dumps({"id": ext, "label": label}, ensure_ascii=False) + "\n")
    return len(rows)


def export_project(
    store: BaseStore,
    project_id: int,
    fmt: str,
    out: str | os.PathLike[str] | IO[str],
    *,
    version: int | None = None,
) -> ExportResult:
    """Export a dataset version of a project (see :func:`resolve_dataset_version`) to a path
    (written to a temporary file, then renamed: never half-written) or an open text stream."""
    if fmt not in EXPORT_FORMATS:
        raise LabelwiseError(f"export format must be one of {list(EXPORT_FORMATS)}; got {fmt!r}.")
    dv = resolve_dataset_version(store, project_id, version)
    if not isinstance(out, str | os.PathLike):
        return ExportResult(dv, export_dataset_version(store, dv.id, fmt, out), None)
    path = Path(out)
    if not path.parent.exists():
        raise LabelwiseError(f"folder {path.parent} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            n = export_dataset_version(store, dv.id, fmt, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportResult(dv, n, str(path))


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class ProjectStatus:
    """A project, its :class:`~labelwise.service.progress.Progress` and its jobs by status."""

    project: Project
    progress: Any
    jobs: dict[str, int] = field(default_factory=dict)
    last_job_error: str | None = None


def project_status(store: BaseStore, project_id: int, *, settings: Any = None) -> ProjectStatus:
    """Everything ``labelwise project status`` shows: labels, rounds, queue depth, learning
    curve, cost, projected labels to target, savings vs random, stopping status and jobs."""
    from labelwise.service.progress import project_progress

    project = store.get_project(project_id)
    progress = project_progress(store, project_id, settings=settings)
    jobs: dict[str, int] = {}
    last_error = None
    for job in store.list_jobs(project_id):
        jobs[job.status] = jobs.get(job.status, 0) + 1
        if job.status == "failed":
            last_error = job.error
    return ProjectStatus(project, progress, jobs, last_error)
