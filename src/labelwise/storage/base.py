"""The store contract: what the service keeps (projects, items, queues, labels, jobs).

One abstract :class:`BaseStore`, two backends (:class:`~labelwise.storage.memory.InMemoryStore`,
:class:`~labelwise.storage.sql.SqlStore`) and one test suite (:mod:`labelwise.testing.store`) run
against every backend. Conventions, the same for every entity:

- ``create_*`` returns the new row's ``int`` id;
- ``get_*`` returns a frozen dataclass or raises :class:`NotFound` (a :class:`KeyError`);
- ``find_*`` returns the dataclass or ``None``;
- ``list_*`` returns a ``list``.

Times are timezone-aware UTC :class:`~datetime.datetime` values. Every method that depends on the
clock takes ``now=None`` (meaning "the current time") so tests and simulations can pin it.

The store keeps ids; the library sees positions. A task's life cycle::

    queued --claim_next_task--> leased --create_annotation--> done
                                   |  \\--skip_task--> skipped
                                   \\--lease expires--> claimable again (still "leased" until then)
    done --undo_annotation--> leased (by the same annotator, while the round is open)
    queued --withdraw_tasks--> withdrawn (a newer model no longer wants it; item unlabeled again)
    done --revise_annotation--> done (a new answer replaces the annotator's old one, round open)

An item is ``unlabeled`` until a task is created for it (``queued``), ``labeled`` once it has a
resolved label (from an annotation or an import) and ``skipped`` when its task was skipped.

Data quality (issue 10):

- **Consensus.** ``create_tasks(copies=...)`` queues several tasks for one item (its
  ``Item.consensus``, the answers it needs). An annotator is never served two tasks of the same
  item (:meth:`BaseStore.claim_next_task`). Answers to such an item do not resolve it; the
  service aggregates them (:mod:`labelwise.annotators`) and calls :meth:`BaseStore.set_item_label`
  or :meth:`BaseStore.send_to_review`.
- **Review.** An item in ``review`` has no trusted label: it is neither in the training set nor
  in the pool until a reviewer resolves it (:meth:`BaseStore.resolve_review`), which records who
  did and whether the label was confirmed or corrected.
- **Gold.** A ``gold`` item has a known label (``Item.gold_label``) used only to measure
  annotators: :meth:`BaseStore.lease_gold_task` serves it like any task, and its answers never
  resolve it, so it never enters the training set.

A project's guidelines are versioned (:meth:`BaseStore.create_guidelines` writes version 1, 2,
...; nothing is ever overwritten) and every annotation records the version that was current when
it was made (``Annotation.guideline_version``). Flags (:meth:`BaseStore.create_flag`) are an
annotator's note that an item is broken or ambiguous, with a reason, for the project's owner.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from labelwise.errors import LabelMismatchError, LabelwiseError
from labelwise.strategies.registry import DEFAULT_STRATEGY
from labelwise.tasks import TaskType, parse_task_type

__all__ = [
    "ITEM_STATUSES",
    "JOB_STATUSES",
    "ON_DUPLICATE",
    "PROJECT_ROLES",
    "ROLES",
    "TASK_STATUSES",
    "AlreadyExistsError",
    "Annotation",
    "Annotator",
    "BaseStore",
    "DatasetVersion",
    "DuplicateItemsError",
    "Flag",
    "Guidelines",
    "ImportConflictError",
    "ImportRun",
    "Item",
    "ItemsWritten",
    "Job",
    "LabeledArrays",
    "LeaseError",
    "LeaseLimitError",
    "ModelSource",
    "ModelUpload",
    "ModelVersion",
    "NewItem",
    "NotFound",
    "Project",
    "ReviewError",
    "Round",
    "Task",
    "UndoError",
    "check_label",
    "dataset_hash",
    "utcnow",
]

ITEM_STATUSES = ("unlabeled", "queued", "labeled", "skipped", "review", "gold")
TASK_STATUSES = ("queued", "leased", "done", "skipped", "withdrawn")
JOB_STATUSES = ("queued", "running", "done", "failed")
# predict: model sources (issue 11); import: a big upload imported by a worker (issue 12)
JOB_KINDS = ("retrain", "select", "predict", "import")
ROLES = ("admin", "annotator", "reviewer")
#: A membership's role, weakest first: each may do what the ones before it may.
PROJECT_ROLES = ("annotator", "reviewer", "owner")
CONSENSUS_METHODS = ("majority", "dawid_skene")
#: Why an item is in review (``Item.review_reason``).
REVIEW_REASONS = ("disagreement", "label_issue", "annotator", "manual")
MAX_CONSENSUS_K = 20
#: Longest guidelines text (Markdown characters), class definition, example and flag reason.
MAX_GUIDELINES_CHARS = 100_000
MAX_DEFINITION_CHARS = 2_000
MAX_EXAMPLES = 20
MAX_REASON_CHARS = 2_000


# --------------------------------------------------------------------------- errors


class NotFound(KeyError):
    """``get_*`` found no row with that id; the message names the entity and the id."""

    def __init__(self, entity: str, id: object) -> None:
        super().__init__(f"{entity} {id!r} not found")
        self.entity = entity
        self.id = id

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class AlreadyExistsError(LabelwiseError):
    """A row with the same unique key (project name, annotator name, item external id) exists."""


class DuplicateItemsError(AlreadyExistsError):
    """``on_duplicate="fail"`` and some external ids already exist (or repeat in the input)
    with different content; nothing was written. ``written`` says how many and which."""

    def __init__(self, message: str, written: ItemsWritten) -> None:
        super().__init__(message)
        self.written = written


class LeaseError(LabelwiseError):
    """The task or job is not leased by the caller, or its lease has expired: claim it again."""


class LeaseLimitError(LeaseError):
    """A claim refused because the annotator already holds ``limit`` valid leases in the
    project (``task_ids``, in id order): answer or skip one first."""

    def __init__(self, limit: int, task_ids: Sequence[int]) -> None:
        self.limit, self.task_ids = limit, tuple(task_ids)
        shown = ", ".join(str(i) for i in self.task_ids[:5])
        more = ", ..." if len(self.task_ids) > 5 else ""
        super().__init__(
            f"you hold {len(self.task_ids)} open leases in this project, the most one annotator "
            f"may hold ({limit}); answer or skip one (ids {shown}{more}) before claiming more."
        )


class ImportConflictError(LabelwiseError):
    """A batch of a resumable import does not start where its import run stands: another
    process is importing the same file (or resumed it first). Nothing of the batch was written;
    read the run again (:meth:`BaseStore.get_import_run`) and go on from ``rows_committed``."""


class ReviewError(LabelwiseError):
    """The item cannot be resolved or marked: it is not in review, or not in a state that
    allows the change (a queued item cannot become gold)."""


class UndoError(LabelwiseError):
    """The annotation cannot be undone: another annotator's, not the caller's most recent one,
    or its round is closed (a retrain already took its label)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    task_type: str
    classes: tuple[str, ...]
    strategy: str
    strategy_params: dict[str, Any]
    cold_start_strategy: str
    batch_size: int
    stopping: dict[str, Any]
    label_cost: float
    show_predictions: bool
    created: datetime
    # data quality (migration 0006); labelwise.service.quality reads them
    consensus_share: float = 0.0  # hardest share of each batch answered by consensus_k people
    consensus_k: int = 3
    consensus_method: str = "majority"  # or "dawid_skene"
    consensus_min_agreement: float = 0.6  # below it (vote share / posterior): review
    gold_rate: float = 0.0  # share of an annotator's tasks that are gold items
    gold_min_accuracy: float = 0.7  # below it an annotator is flagged
    # migration 0012: bumped when an import replaces what items' features are computed from
    # (on_duplicate=update); a feature version built at another revision is rebuilt
    items_revision: int = 0


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    project_id: int
    external_id: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    features_path: str | None
    features_row: int | None
    status: str
    label: Any
    created: datetime
    consensus: int = 1  # answers the item needs (consensus_k for the hardest items)
    gold_label: Any = None  # the known label of a gold item
    review_reason: str | None = None  # why it went to review (kept after resolution)
    review_outcome: str | None = None  # "confirmed" or "corrected" once resolved
    resolved_by: int | None = None  # the reviewer who resolved it
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewItem:
    """One item to insert with :meth:`BaseStore.create_items` (importers build these)."""

    external_id: str
    payload: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    features_path: str | None = None
    features_row: int | None = None
    label: Any = None
    gold: bool = False  # with a label: a gold item (status "gold"), never a training label


#: What :meth:`BaseStore.write_items` does with an external id that already exists (in the
#: store or earlier in the same input) with *different* content: keep the stored item
#: (reported), replace it, or write nothing and raise :class:`DuplicateItemsError`. Exact
#: repeats are always skipped, so re-running an import is harmless under every choice.
ON_DUPLICATE = ("skip", "update", "fail")
#: How many differing duplicate ids an :class:`ItemsWritten` lists (the count is exact).
MAX_REPORTED_IDS = 10


@dataclass(frozen=True)
class LabeledArrays:
    """A project's labelled items as arrays (:meth:`BaseStore.list_labeled_arrays`).

    Attributes
    ----------
    item_ids : ndarray of shape (n_labeled,), int64
        Ascending.
    labels : list, length n_labeled
        ``labels[i]`` is item ``item_ids[i]``'s label (a class, or a sorted list of classes).
    validation : ndarray of shape (n_labeled,), bool
        ``metadata["split"] == "validation"``: evaluation only, never a training label.
    """

    item_ids: np.ndarray
    labels: list[Any]
    validation: np.ndarray


@dataclass(frozen=True, slots=True)
class ItemsWritten:
    """What :meth:`BaseStore.write_items` did.

    ``n_duplicates`` counts every row whose external id was already stored or repeated earlier
    in the input; ``n_changed`` those of them whose content (payload, metadata but its
    ``source``, features, label, gold) differs, ``changed_ids`` the first
    :data:`MAX_REPORTED_IDS` of them; ``n_updated`` the items replaced (``update`` only).
    """

    n_created: int
    n_duplicates: int = 0
    n_changed: int = 0
    n_updated: int = 0
    changed_ids: tuple[str, ...] = ()


def item_differs(stored: Item, new: NewItem, label: Any) -> bool:
    """Whether ``new`` (its label already checked) would change ``stored``.

    A row without a label changes no label: the pool file re-imported after annotators worked
    must not read as a conflict with their labels. The metadata's ``source`` (the file name)
    is left out, so the same rows in a renamed file are the same items.
    """
    if features_differ(stored, new):
        return True
    if label is None:
        return False
    if new.gold:
        return stored.status != "gold" or stored.gold_label != label
    return stored.status == "gold" or stored.label != label


#: Item statuses an update may relabel: an item queued, leased or in review belongs to a task
#: or a reviewer now; relabelling it under them would desynchronise task and item.
UPDATABLE_STATUSES = frozenset({"unlabeled", "labeled", "skipped", "gold"})


def features_differ(stored: Item, new: NewItem) -> bool:
    """Whether ``new`` changes what ``stored``'s features are computed from: its payload, its
    metadata but ``source`` (tags), its ``.npy`` file or row. A label alone does not."""

    def meta(d: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "source"}

    return (
        dict(new.payload) != stored.payload
        or meta(new.metadata) != meta(stored.metadata)
        or new.features_path != stored.features_path
        or new.features_row != stored.features_row
    )


def updated_fields(stored: Item, new: NewItem, label: Any) -> dict[str, Any]:
    """The item fields an ``update`` sets (``meta`` is the SQL column name of metadata)."""
    out: dict[str, Any] = {
        "payload": dict(new.payload),
        "meta": dict(new.metadata),
        "features_path": new.features_path,
        "features_row": new.features_row,
    }
    if label is not None and stored.status in UPDATABLE_STATUSES:
        if new.gold:
            out.update(status="gold", label=None, gold_label=label)
        else:
            out.update(status="labeled", label=label, gold_label=None)
    return out


def check_on_duplicate(on_duplicate: str) -> str:
    if on_duplicate not in ON_DUPLICATE:
        raise LabelwiseError(
            f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}; got {on_duplicate!r}."
        )
    return on_duplicate


def duplicates_message(written: ItemsWritten) -> str:
    ids = ", ".join(repr(i) for i in written.changed_ids)
    more = "" if written.n_changed <= len(written.changed_ids) else ", ..."
    return (
        f"{written.n_changed} rows repeat an existing external id with different content "
        f"({ids}{more}); nothing was written. Pass on_duplicate=update to replace them or "
        "on_duplicate=skip to keep the stored items."
    )


@dataclass(frozen=True, slots=True)
class Round:
    id: int
    project_id: int
    number: int
    strategy: str
    created: datetime
    closed: datetime | None


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    project_id: int
    round_id: int
    item_id: int
    status: str
    lease_owner: int | None
    lease_expires: datetime | None
    priority: float
    routing_tag: str | None
    created: datetime
    confidence: float | None = None  # the model's probability of routing_tag, when predicted


@dataclass(frozen=True, slots=True)
class Annotation:
    id: int
    task_id: int | None
    item_id: int
    annotator_id: int | None
    label: Any
    created: datetime
    duration_s: float | None
    guideline_version: int | None = None  # the project's guidelines when it was made


@dataclass(frozen=True, slots=True)
class Guidelines:
    """One version of a project's labeling guidelines.

    ``body`` and ``hard_cases`` are Markdown; ``classes`` maps a class name to
    ``{"definition": str, "examples": [str, ...]}`` (classes without notes are absent).
    """

    id: int
    project_id: int
    version: int
    body: str
    classes: dict[str, dict[str, Any]]
    hard_cases: str
    author_id: int | None
    created: datetime


@dataclass(frozen=True, slots=True)
class Flag:
    """An annotator's report that an item needs the owner's attention, with the reason."""

    id: int
    project_id: int
    item_id: int
    task_id: int | None
    annotator_id: int | None
    reason: str
    created: datetime


@dataclass(frozen=True, slots=True)
class Annotator:
    id: int
    name: str
    token_hash: str | None
    role: str
    skills: tuple[str, ...]
    projects: tuple[int, ...]
    created: datetime
    #: project id -> the membership's role (one of ``PROJECT_ROLES``), for every project
    project_roles: dict[int, str] = field(default_factory=dict)
    #: when the token stops working (``None``: never), and when it was revoked
    token_expires: datetime | None = None
    token_revoked: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    id: int
    project_id: int
    round_id: int | None
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    artifact_path: str | None
    created: datetime


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    id: int
    project_id: int
    content_hash: str
    n_labels: int
    created: datetime


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    project_id: int | None
    status: str
    payload: dict[str, Any]
    attempts: int
    worker_id: str | None
    leased_until: datetime | None
    error: str | None
    created: datetime
    updated: datetime
    #: a queued job is not claimed before this time (a retry's backoff); ``None``: at once
    not_before: datetime | None = None


#: An import run's states: batches are being committed, or every row is in.
IMPORT_RUN_STATUSES = ("running", "done")


@dataclass(frozen=True, slots=True)
class ImportRun:
    """The checkpoint of a resumable import (:meth:`BaseStore.start_import_run`).

    One import of one file (``file_sha256``) with the same ``options`` into a project.
    ``rows_committed`` rows of its ``n_rows`` are written; the counters add up what the
    committed batches did (as :class:`ItemsWritten`), so a resumed import reports the whole
    file.
    """

    id: int
    project_id: int
    file_sha256: str
    options: dict[str, Any]
    n_rows: int
    rows_committed: int
    status: str
    n_created: int
    n_duplicates: int
    n_changed: int
    n_updated: int
    changed_ids: tuple[str, ...]
    created: datetime
    updated: datetime


def import_options_key(options: Mapping[str, Any]) -> str:
    """The sha256 of ``options`` as canonical JSON: import runs are looked up by it."""
    text = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _merge_written(run: ImportRun, w: ItemsWritten) -> dict[str, Any]:
    """The counter columns of ``run`` after one more batch that did ``w``."""
    room = MAX_REPORTED_IDS - len(run.changed_ids)
    return {
        "n_created": run.n_created + w.n_created,
        "n_duplicates": run.n_duplicates + w.n_duplicates,
        "n_changed": run.n_changed + w.n_changed,
        "n_updated": run.n_updated + w.n_updated,
        "changed_ids": [*run.changed_ids, *w.changed_ids[: max(room, 0)]],
    }


def _check_batch_on_duplicate(on_duplicate: str) -> None:
    """A batch of a resumable import can skip or update duplicates, never fail on them."""
    if check_on_duplicate(on_duplicate) == "fail":
        raise LabelwiseError(
            "on_duplicate=fail needs the whole import in one transaction; use write_items."
        )


def _check_import_batch(run: ImportRun, start_row: int, n_rows: int) -> None:
    if run.status != "running":
        raise ImportConflictError(
            f"import run {run.id} is {run.status}; start the import again to run it anew."
        )
    if run.rows_committed != start_row:
        raise ImportConflictError(
            f"import run {run.id} has {run.rows_committed:,} rows committed, not {start_row:,}: "
            "another process is importing this file; nothing of this batch was written."
        )
    if n_rows < 0 or run.rows_committed + n_rows > run.n_rows:
        raise LabelwiseError(
            f"a batch of {n_rows:,} rows from row {start_row:,} overruns import run {run.id} "
            f"of {run.n_rows:,} rows."
        )


# --------------------------------------------------------------------------- helpers


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _resolve_now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise LabelwiseError(
            f"now={now!r} is naive; pass a timezone-aware datetime, e.g. datetime.now(UTC)."
        )
    return now.astimezone(UTC)


def _lease_until(now: datetime, seconds: float) -> datetime:
    if not seconds > 0:
        raise LabelwiseError(f"lease_seconds must be > 0; got {seconds!r}.")
    return now + timedelta(seconds=float(seconds))


def dataset_hash(pairs: Iterable[tuple[str, Any]]) -> str:
    """SHA-256 of sorted ``(external_id, label)`` pairs: the identity of a labeled dataset.

    Labels are serialised as canonical JSON (sorted keys, no spaces), one ``id\\tlabel\\n`` line
    per pair, so the same labels always give the same hash whatever the backend or the order.
    """
    h = hashlib.sha256()
    for ext, label in sorted(pairs, key=lambda p: p[0]):
        h.update(f"{ext}\t{json.dumps(label, sort_keys=True, separators=(',', ':'))}\n".encode())
    return h.hexdigest()


def check_label(project: Project, label: Any) -> Any:
    """Validate ``label`` against the project's task type and classes; return it normalised.

    Single-label projects take one class name; multilabel projects take a list of class names
    (returned sorted and de-duplicated). Projects created without classes accept any JSON label.

    Raises
    ------
    LabelMismatchError
        If the label is not one of the project's classes (or not a list for multilabel).
    """
    classes = project.classes
    if project.task_type == TaskType.MULTILABEL:
        if isinstance(label, str) or not isinstance(label, Sequence):
            raise LabelMismatchError(
                f"project {project.name!r} is multilabel; pass a list of class names, "
                f"got {label!r}."
            )
        out = sorted(set(label))
        bad = [c for c in out if classes and c not in classes]
        if bad:
            raise LabelMismatchError(
                f"labels {bad!r} are not classes of project {project.name!r}; "
                f"use some of {list(classes)!r}."
            )
        return out
    if classes and label not in classes:
        raise LabelMismatchError(
            f"label {label!r} is not a class of project {project.name!r}; "
            f"use one of {list(classes)!r}."
        )
    return label


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise LabelwiseError(f"{name} must be one of {list(allowed)!r}; got {value!r}.")
    return value


def _project_fields(
    name: str,
    task_type: str,
    classes: Sequence[str],
    strategy: str,
    strategy_params: Mapping[str, Any] | None,
    cold_start_strategy: str,
    batch_size: int,
    stopping: Mapping[str, Any] | None,
    label_cost: float,
    show_predictions: bool,
    consensus_share: float = 0.0,
    consensus_k: int = 3,
    consensus_method: str = "majority",
    consensus_min_agreement: float = 0.6,
    gold_rate: float = 0.0,
    gold_min_accuracy: float = 0.7,
) -> dict[str, Any]:
    """Validate create_project's arguments once, for every backend."""
    if not isinstance(name, str) or not name.strip():
        raise LabelwiseError("project name must be a non-empty string.")
    task = parse_task_type(task_type)
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise LabelwiseError(f"classes must be unique; got {classes!r}.")
    if task == TaskType.BINARY and classes and len(classes) != 2:
        raise LabelwiseError(f"a binary project needs exactly 2 classes; got {classes!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LabelwiseError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if label_cost < 0:
        raise LabelwiseError(f"label_cost must be >= 0; got {label_cost!r}.")
    for fname, value, hi in (
        ("consensus_share", consensus_share, 1.0),
        ("consensus_min_agreement", consensus_min_agreement, 1.0),
        ("gold_rate", gold_rate, 0.5),
        ("gold_min_accuracy", gold_min_accuracy, 1.0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi:
            raise LabelwiseError(f"{fname} must be a number in [0, {hi:g}]; got {value!r}.")
    if (
        isinstance(consensus_k, bool)
        or not isinstance(consensus_k, int)
        or not 2 <= consensus_k <= MAX_CONSENSUS_K
    ):
        raise LabelwiseError(
            f"consensus_k must be an integer in [2, {MAX_CONSENSUS_K}] (annotators per hard "
            f"item); got {consensus_k!r}."
        )
    _check_choice("consensus_method", consensus_method, CONSENSUS_METHODS)
    return {
        "name": name,
        "task_type": task.value,
        "classes": classes,
        "strategy": strategy,
        "strategy_params": dict(strategy_params or {}),
        "cold_start_strategy": cold_start_strategy,
        "batch_size": batch_size,
        "stopping": dict(stopping or {}),
        "label_cost": float(label_cost),
        "show_predictions": bool(show_predictions),
        "consensus_share": float(consensus_share),
        "consensus_k": int(consensus_k),
        "consensus_method": consensus_method,
        "consensus_min_agreement": float(consensus_min_agreement),
        "gold_rate": float(gold_rate),
        "gold_min_accuracy": float(gold_min_accuracy),
    }


#: Data-quality settings of a project (keyword arguments of create_project, updatable).
QUALITY_FIELDS = (
    "consensus_share",
    "consensus_k",
    "consensus_method",
    "consensus_min_agreement",
    "gold_rate",
    "gold_min_accuracy",
)
PROJECT_FIELDS = (
    "name",
    "task_type",
    "classes",
    "strategy",
    "strategy_params",
    "cold_start_strategy",
    "batch_size",
    "stopping",
    "label_cost",
    "show_predictions",
    *QUALITY_FIELDS,
)
PROJECT_UPDATABLE = frozenset(
    {
        "classes",
        "strategy",
        "strategy_params",
        "cold_start_strategy",
        "batch_size",
        "stopping",
        "label_cost",
        "show_predictions",
        *QUALITY_FIELDS,
    }
)


def _check_quality(quality: Mapping[str, Any]) -> dict[str, Any]:
    """The data-quality keyword arguments of create_project; unknown names are an error."""
    bad = set(quality) - set(QUALITY_FIELDS)
    if bad:
        raise LabelwiseError(
            f"unknown project setting(s) {sorted(bad)!r}; data-quality settings are "
            f"{list(QUALITY_FIELDS)}."
        )
    return dict(quality)


def _check_update(fields: Mapping[str, Any]) -> None:
    bad = set(fields) - PROJECT_UPDATABLE
    if bad:
        raise LabelwiseError(
            f"cannot update project field(s) {sorted(bad)!r}; "
            f"updatable: {sorted(PROJECT_UPDATABLE)}"
        )


def _check_classes_kept(old: Sequence[str], new: Sequence[str], labels: Iterable[Any]) -> None:
    """Refuse new classes that are empty, or leave out one that ``labels`` (stored labels, gold
    labels and answers: a class, a list of them, or ``None``) use.

    Label checks compare against the project's classes: with a class gone, stored labels
    would no longer be valid ones (training, exports and agreement would meet an unknown
    class), and renaming a class is not what dropping one does.
    """
    if old and not new:
        raise LabelwiseError("classes cannot be empty; list the project's classes.")
    used: set[str] = set()
    for label in labels:
        if label is not None:
            used.update(str(x) for x in (label if isinstance(label, list) else [label]))
    dropped = sorted(used - {str(c) for c in new})
    if dropped:
        raise LabelwiseError(
            f"classes: {dropped!r} {'is' if len(dropped) == 1 else 'are'} used by stored "
            "labels or answers and cannot be removed; keep them in the list (new classes "
            "may be added)."
        )


def _copies_args(item_ids: Sequence[int], copies: Sequence[int] | None) -> list[int]:
    """Tasks per item for create_tasks (1 each by default), validated."""
    n = len(item_ids)
    out = [1] * n if copies is None else list(copies)
    if len(out) != n:
        raise LabelwiseError(f"copies must have one entry per item ({n}); got {len(out)}.")
    for c in out:
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_CONSENSUS_K:
            raise LabelwiseError(
                f"copies must be integers in [1, {MAX_CONSENSUS_K}] (tasks per item); got {c!r}."
            )
    return out


def _gold_label(project: Project, item: Item, label: Any) -> Any:
    """Why ``item`` cannot become gold with ``label`` (a :class:`ReviewError`), else the label."""
    if item.status not in ("unlabeled", "labeled", "gold"):
        raise ReviewError(
            f"item {item.id} is {item.status}: only unlabeled or labeled items (not queued, "
            "skipped or in review) can become gold."
        )
    if label is None:
        raise LabelwiseError(f"gold item {item.id} needs its known label.")
    return check_label(project, label)


def _review_outcome(item: Item, label: Any) -> str:
    """``"corrected"`` when the reviewer changed the item's label, else ``"confirmed"``."""
    if item.status != "review":
        raise ReviewError(
            f"item {item.id} is {item.status}, not in review: there is nothing to resolve."
        )
    return "confirmed" if item.label == label else "corrected"


def _tasks_args(
    item_ids: Sequence[int],
    priorities: Sequence[float] | None,
    routing_tags: Sequence[str | None] | None,
    confidences: Sequence[float | None] | None = None,
) -> list[tuple[int, float, str | None, float | None]]:
    n = len(item_ids)
    pr = [0.0] * n if priorities is None else [float(p) for p in priorities]
    tags = [None] * n if routing_tags is None else list(routing_tags)
    conf = (
        [None] * n
        if confidences is None
        else [None if c is None else float(c) for c in confidences]
    )
    if len(pr) != n or len(tags) != n or len(conf) != n:
        raise LabelwiseError(
            f"priorities, routing_tags and confidences must have one entry per item ({n}); "
            f"got {len(pr)}, {len(tags)} and {len(conf)}."
        )
    if len(set(item_ids)) != n:
        raise LabelwiseError("item_ids must be unique within one create_tasks call.")
    return list(zip([int(i) for i in item_ids], pr, tags, conf, strict=True))


def _check_undo(
    annotation: Annotation,
    annotator_id: int,
    latest_id: int | None,
    task: Task | None,
    round_closed: datetime | None,
) -> Task:
    """Why ``annotator_id`` may not undo ``annotation`` (an :class:`UndoError`), else its task."""
    aid = annotation.id
    if annotation.annotator_id != annotator_id:
        raise UndoError(
            f"annotation {aid} was made by another annotator; you can only undo your own."
        )
    if task is None:
        raise UndoError(f"annotation {aid} has no task (an import?); there is nothing to reopen.")
    if latest_id != aid:
        raise UndoError(
            f"annotation {aid} is not your most recent one in this project (annotation "
            f"{latest_id} is); undo that first."
        )
    if task.status != "done":
        raise UndoError(f"task {task.id} of annotation {aid} is {task.status}, not done.")
    if round_closed is not None:
        raise UndoError(
            f"the round of annotation {aid} is closed: a retrained model already learned "
            "its label, so it can no longer be undone."
        )
    return task


def _check_revise(
    annotation: Annotation, annotator_id: int, task: Task | None, round_closed: datetime | None
) -> Task:
    """Why ``annotator_id`` may not revise ``annotation`` (an :class:`UndoError`), else its task.

    Unlike undo, any of the annotator's annotations may be revised, not only the most recent:
    the task stays ``done``, so nothing else in the queue moves.
    """
    aid = annotation.id
    if annotation.annotator_id != annotator_id:
        raise UndoError(
            f"annotation {aid} was made by another annotator; you can only change your own."
        )
    if task is None:
        raise UndoError(f"annotation {aid} has no task (an import?); it cannot be changed here.")
    if round_closed is not None:
        raise UndoError(
            f"the round of annotation {aid} is closed: a retrained model already learned "
            "its label, so it can no longer be changed."
        )
    return task


def _guidelines_fields(
    project: Project,
    body: str,
    classes: Mapping[str, Mapping[str, Any]] | None,
    hard_cases: str,
) -> dict[str, Any]:
    """Validate create_guidelines' arguments once, for every backend; return them normalised."""
    for name, text in (("body", body), ("hard_cases", hard_cases)):
        if not isinstance(text, str):
            raise LabelwiseError(f"guidelines {name} must be a string of Markdown.")
        if len(text) > MAX_GUIDELINES_CHARS:
            raise LabelwiseError(
                f"guidelines {name} has {len(text)} characters; at most "
                f"{MAX_GUIDELINES_CHARS} are kept. Link to a longer document instead."
            )
    notes: dict[str, dict[str, Any]] = {}
    for cls, note in dict(classes or {}).items():
        if project.classes and cls not in project.classes:
            raise LabelwiseError(
                f"guidelines name class {cls!r}, which is not a class of project "
                f"{project.name!r}; use one of {list(project.classes)!r}."
            )
        if not isinstance(note, Mapping) or set(note) - {"definition", "examples"}:
            raise LabelwiseError(
                f"the note of class {cls!r} must be {{'definition': str, 'examples': [str]}}."
            )
        definition = note.get("definition") or ""
        examples = list(note.get("examples") or [])
        if not isinstance(definition, str) or len(definition) > MAX_DEFINITION_CHARS:
            raise LabelwiseError(
                f"the definition of class {cls!r} must be a string of at most "
                f"{MAX_DEFINITION_CHARS} characters."
            )
        if len(examples) > MAX_EXAMPLES or not all(
            isinstance(e, str) and len(e) <= MAX_DEFINITION_CHARS for e in examples
        ):
            raise LabelwiseError(
                f"the examples of class {cls!r} must be at most {MAX_EXAMPLES} strings of at "
                f"most {MAX_DEFINITION_CHARS} characters each."
            )
        if definition.strip() or examples:
            notes[str(cls)] = {"definition": definition.strip(), "examples": examples}
    return {"body": body, "classes": notes, "hard_cases": hard_cases}


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise LabelwiseError("a flag needs a reason: say what is wrong with the item.")
    if len(reason) > MAX_REASON_CHARS:
        raise LabelwiseError(
            f"the reason has {len(reason)} characters; keep it under {MAX_REASON_CHARS}."
        )
    return reason.strip()


def _check_statuses(statuses: Sequence[str]) -> list[str]:
    out = list(statuses)
    if not out:
        raise LabelwiseError("statuses must name at least one job status.")
    for st in out:
        _check_choice("status", st, JOB_STATUSES)
    return out


def _check_task_statuses(statuses: Sequence[str]) -> list[str]:
    if isinstance(statuses, str):
        statuses = [statuses]
    out = list(statuses)
    if not out:
        raise LabelwiseError(f"statuses must name at least one task status of {TASK_STATUSES}.")
    for st in out:
        _check_choice("status", st, TASK_STATUSES)
    return out


# --------------------------------------------------------------------------- webhooks (issue 11)

#: Events a project's webhooks may subscribe to (:mod:`labelwise.service.webhooks` emits them).
WEBHOOK_EVENTS = (
    "batch.completed",
    "model_version.created",
    "stopping.met",
    "label_errors.flagged",
)
#: A delivery's life: ``pending`` (due at ``next_attempt_at``) -> ``delivering`` (claimed by a
#: worker, lease until ``next_attempt_at``) -> ``delivered``, or ``pending`` again after a failed
#: attempt, or ``failed`` after the last one.
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed")
MAX_WEBHOOK_URL_CHARS = 2_000
#: Attempts a delivery's ``history`` keeps (the newest).
MAX_DELIVERY_HISTORY = 20


@dataclass(frozen=True, slots=True)
class Webhook:
    """An HTTP(S) endpoint of a project subscribed to events.

    ``secret`` signs every delivery (HMAC-SHA256); it is stored as is, since the server must
    compute the signature, and never shown by the API after creation or rotation.
    """

    id: int
    project_id: int
    url: str
    events: tuple[str, ...]
    secret: str
    active: bool
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook: a durable row that workers send until it is delivered.

    ``event_id`` names the event (the same for every webhook it goes to, and across retries):
    receivers dedupe on it. ``body`` is the JSON object sent. ``history`` lists the attempts
    (newest last, at most :data:`MAX_DELIVERY_HISTORY`): ``{"attempt", "at", "status_code",
    "error", "next_attempt_at"}``.
    """

    id: int
    webhook_id: int
    project_id: int
    event: str
    event_id: str
    body: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime | None
    worker_id: str | None
    last_status_code: int | None
    last_error: str | None
    history: list[dict[str, Any]]
    created: datetime
    updated: datetime


def _check_events(events: Sequence[str]) -> tuple[str, ...]:
    if isinstance(events, str) or not events:
        raise LabelwiseError(
            f"events must be a non-empty list of {', '.join(WEBHOOK_EVENTS)}; got {events!r}."
        )
    for e in events:
        _check_choice("event", e, WEBHOOK_EVENTS)
    return tuple(sorted(set(events)))


def _check_webhook_url(url: str) -> str:
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_WEBHOOK_URL_CHARS:
        raise LabelwiseError(
            f"a webhook url must be 1 to {MAX_WEBHOOK_URL_CHARS} characters; got {url!r:.80}."
        )
    return url.strip()


def _webhook_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check :meth:`BaseStore.update_webhook`'s fields; ``None`` values are left out."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if v is None:
            continue
        if k == "url":
            out[k] = _check_webhook_url(v)
        elif k == "events":
            out[k] = _check_events(v)
        elif k == "secret":
            if not isinstance(v, str) or len(v) < 16:
                raise LabelwiseError("a webhook secret must be a string of 16+ characters.")
            out[k] = v
        elif k == "active":
            out[k] = bool(v)
        else:
            raise LabelwiseError(f"unknown webhook field {k!r}; use url, events, secret, active.")
    return out


def _attempt_record(
    d: Delivery, status_code: int | None, error: str | None, retry_at: datetime | None,
    now: datetime,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    """The status after an attempt and the history with it appended (newest kept)."""
    status = "delivered" if error is None else "pending" if retry_at is not None else "failed"
    entry = {
        "attempt": d.attempts,
        "at": now.isoformat(),
        "status_code": status_code,
        "error": error,
        "next_attempt_at": None if retry_at is None else retry_at.isoformat(),
    }
    return status, [*d.history, entry][-MAX_DELIVERY_HISTORY:]


# ------------------------------------------------------------------------ model sources (issue 11)

#: Where a project's class probabilities come from (:mod:`labelwise.service.model_sources`).
MODEL_SOURCES = ("builtin", "predictions", "endpoint")
#: What a :class:`ModelUpload` holds, and where it came from.
MODEL_UPLOAD_KINDS = ("predictions", "embeddings")
MODEL_UPLOAD_ORIGINS = ("upload", "endpoint")
MAX_ENDPOINT_URL_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A project's model source: ``builtin`` (labelwise fits its own model), ``predictions``
    (the newest uploaded predictions rank the pool) or ``endpoint`` (an external model over
    HTTP at ``endpoint``). A project without a stored row is ``builtin``."""

    project_id: int
    source: str
    endpoint: str | None
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class ModelUpload:
    """One version of per-item predictions or embeddings, uploaded or returned by an endpoint.

    The arrays live on disk in the folder ``path`` (``item_ids.npy``: int64 item ids, ascending;
    ``values.npy``: float32 rows of shape (n_rows, n_cols), memory-mappable). ``version`` counts
    1, 2, ... per project and kind; the newest is the active one. ``classes`` names the columns
    of predictions (the project's classes, in its order); ``()`` for embeddings.
    ``model_version`` is the endpoint's model version or the uploaded file's name.
    """

    id: int
    project_id: int
    kind: str
    version: int
    origin: str
    path: str
    n_rows: int
    n_cols: int
    classes: tuple[str, ...]
    model_version: str | None
    created: datetime


def _check_model_source(source: str, endpoint: str | None) -> str | None:
    _check_choice("source", source, MODEL_SOURCES)
    if source != "endpoint":
        return endpoint
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise LabelwiseError("source 'endpoint' needs the endpoint's URL (http:// or https://).")
    if len(endpoint) > MAX_ENDPOINT_URL_CHARS:
        raise LabelwiseError(f"an endpoint URL is at most {MAX_ENDPOINT_URL_CHARS} characters.")
    return endpoint.strip()


def _check_model_upload(kind: str, origin: str, n_rows: int, n_cols: int) -> None:
    _check_choice("kind", kind, MODEL_UPLOAD_KINDS)
    _check_choice("origin", origin, MODEL_UPLOAD_ORIGINS)
    if n_rows < 0 or n_cols < 1:
        raise LabelwiseError(f"an upload has n_rows >= 0 and n_cols >= 1; got {n_rows}, {n_cols}.")


# --------------------------------------------------------------------------- contract


class BaseStore(ABC):
    """Abstract storage contract shared by every backend.

    Methods that write are atomic: each runs in one transaction (SQL) or under one lock
    (memory). ``claim_next_task`` and ``claim_next_job`` are safe to call from many threads and
    processes at once: no two callers ever get the same task or job while its lease is valid.
    """

    # ---- projects
    @abstractmethod
    def create_project(
        self,
        name: str,
        task_type: str = "multiclass",
        classes: Sequence[str] = (),
        *,
        strategy: str = DEFAULT_STRATEGY,
        strategy_params: Mapping[str, Any] | None = None,
        cold_start_strategy: str = "random",
        batch_size: int = 10,
        stopping: Mapping[str, Any] | None = None,
        label_cost: float = 1.0,
        show_predictions: bool = False,
        **quality: Any,
    ) -> int:
        """Create a project; raises :class:`AlreadyExistsError` if the name is taken.

        ``quality`` takes the data-quality settings (:data:`QUALITY_FIELDS`: ``consensus_share``,
        ``consensus_k``, ``consensus_method``, ``consensus_min_agreement``, ``gold_rate``,
        ``gold_min_accuracy``); out-of-range values are a :class:`LabelwiseError`.
        """

    @abstractmethod
    def get_project(self, project_id: int) -> Project: ...

    @abstractmethod
    def find_project(self, name: str) -> Project | None: ...

    @abstractmethod
    def list_projects(self) -> list[Project]: ...

    @abstractmethod
    def update_project(self, project_id: int, **fields: Any) -> Project:
        """Change any of ``PROJECT_UPDATABLE`` fields; returns the updated project.

        Without fields nothing is written and the project is returned as it is. New
        ``classes`` may not be empty (when the project has classes) nor leave out a class that
        a stored label, gold label or answer uses (:class:`~labelwise.errors.LabelwiseError`,
        nothing written): the check and the update are one transaction, with the project's
        row locked on PostgreSQL.
        """

    # ---- annotators
    @abstractmethod
    def create_annotator(
        self,
        name: str,
        *,
        token_hash: str | None = None,
        role: str = "annotator",
        skills: Sequence[str] = (),
        token_expires: datetime | None = None,
    ) -> int:
        """Create an annotator (``role`` is one of ``ROLES``); the token stops working at
        ``token_expires`` (never when ``None``)."""

    @abstractmethod
    def get_annotator(self, annotator_id: int) -> Annotator: ...

    @abstractmethod
    def find_annotator(self, name: str) -> Annotator | None: ...

    @abstractmethod
    def find_annotator_by_token(self, token_hash: str) -> Annotator | None:
        """The annotator holding the token, revoked or expired ones included (the caller
        words the 401 after ``token_revoked`` / ``token_expires``); one query."""

    @abstractmethod
    def update_token(
        self, annotator_id: int, token_hash: str, *, token_expires: datetime | None = None
    ) -> None:
        """Give the annotator a new token (rotation): the old one stops working, a revocation
        is lifted, the new one expires at ``token_expires`` (never when ``None``).
        :class:`NotFound` for an unknown annotator, :class:`AlreadyExistsError` if another
        annotator holds that token."""

    @abstractmethod
    def revoke_token(self, annotator_id: int, now: datetime | None = None) -> None:
        """Stop the annotator's token from working (idempotent: a second revocation keeps
        the first time); :class:`NotFound` for an unknown annotator."""

    @abstractmethod
    def list_annotators(self, project_id: int | None = None) -> list[Annotator]:
        """Every annotator, or the members of one project."""

    @abstractmethod
    def add_member(self, project_id: int, annotator_id: int, role: str | None = None) -> None:
        """Make the annotator a member of the project with ``role`` (one of
        ``PROJECT_ROLES``). Idempotent: without a role a new membership is ``"annotator"`` and
        an existing one keeps its role; with one, an existing membership takes it."""

    @abstractmethod
    def set_member_role(self, project_id: int, annotator_id: int, role: str) -> None:
        """Change a membership's role; :class:`NotFound` (``member``) if the annotator is not
        a member of the project."""

    def add_members(self, project_ids: Sequence[int], annotator_id: int) -> None:
        """Make the annotator a member of every project, all or nothing: :class:`NotFound`
        for the first unknown project (or annotator) and no membership is written."""
        for pid in dict.fromkeys(project_ids):
            self.get_project(pid)
        for pid in dict.fromkeys(project_ids):
            self.add_member(pid, annotator_id)

    @abstractmethod
    def remove_member(self, project_id: int, annotator_id: int) -> int:
        """Remove a membership (no error if it does not exist) and give the tasks of that
        project the annotator holds leased back to the queue, in one transaction; returns how
        many tasks went back."""

    # ---- items
    def create_item(
        self,
        project_id: int,
        external_id: str,
        payload: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        features_path: str | None = None,
        features_row: int | None = None,
        label: Any = None,
    ) -> int:
        """Create one item; raises :class:`AlreadyExistsError` if the external id exists."""
        new = NewItem(
            str(external_id),
            dict(payload),
            dict(metadata or {}),
            features_path,
            features_row,
            label,
        )
        if self.create_items(project_id, [new]) == 0:
            raise AlreadyExistsError(
                f"item {external_id!r} already exists in project {project_id}; "
                "use find_item to fetch it."
            )
        item = self.find_item(project_id, str(external_id))
        assert item is not None
        return item.id

    def create_items(
        self, project_id: int, items: Iterable[NewItem], *, batch_size: int = 5000
    ) -> int:
        """Insert items, skipping external ids that already exist; return how many were created.

        :meth:`write_items` with ``on_duplicate="skip"``; see there.
        """
        return self.write_items(project_id, items, batch_size=batch_size).n_created

    @abstractmethod
    def write_items(
        self,
        project_id: int,
        items: Iterable[NewItem],
        *,
        on_duplicate: str = "skip",
        batch_size: int = 5000,
    ) -> ItemsWritten:
        """Insert items; say what happened to the external ids that already exist.

        ``items`` may be a lazy iterator: SQL stores consume it ``batch_size`` items at a time
        (bounded memory, a cost per row that does not grow with the table) inside ONE
        transaction, so an exception raised by the iterator, a bad label
        (:class:`~labelwise.errors.LabelMismatchError`) or ``on_duplicate="fail"``
        (:class:`DuplicateItemsError`) writes nothing. A repeated external id (already stored,
        or earlier in ``items``) with the same content is skipped; with different content it
        is handled by ``on_duplicate`` (:data:`ON_DUPLICATE`) and reported either way. Items
        with a ``label`` are stored as ``labeled`` (``gold`` with ``gold=True``).
        """

    @abstractmethod
    def get_item(self, item_id: int) -> Item: ...

    @abstractmethod
    def find_item(self, project_id: int, external_id: str) -> Item | None: ...

    @abstractmethod
    def list_items(
        self,
        project_id: int,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        after_id: int | None = None,
    ) -> list[Item]:
        """Items of a project ordered by id, optionally filtered by status and paged.

        Page by keyset: ``after_id`` (the last id of the previous page) returns the items with
        a larger id, one index probe on SQL stores however deep the page; ``offset`` still
        works but reads and drops ``offset`` rows first.
        """

    @abstractmethod
    def count_items(self, project_id: int, status: str | None = None) -> int: ...

    @abstractmethod
    def count_items_by_status(self, project_id: int) -> dict[str, int]:
        """The project's items counted per status (statuses without items left out): one read
        of the ``(project_id, status, id)`` index on SQL stores where ``count_items`` per status
        would read it once each."""

    @abstractmethod
    def count_review_items(self, project_id: int) -> dict[tuple[str, str | None, bool], int]:
        """Items that went to review, counted by ``(review_reason, review_outcome, in_review)``
        (``in_review``: the status is ``review`` now), plus ``("consensus", None, False)``:
        items that need more than one answer. For progress, without listing the items (a
        partial index on SQL stores: O(items that went to review))."""

    @abstractmethod
    def list_unlabeled_item_ids(self, project_id: int) -> list[int]:
        """Ids (ascending) of items with status ``unlabeled``: the pool a strategy selects from."""

    @abstractmethod
    def list_labeled(self, project_id: int) -> list[tuple[int, Any]]:
        """``(item_id, label)`` for every labeled item, ascending by item id."""

    @abstractmethod
    def list_item_ids(
        self, project_id: int, status: str | None = None, *, after_id: int | None = None
    ) -> np.ndarray:
        """Ids of a project's items, ascending, as an int64 array (no per-item objects).

        Optionally only items of ``status`` and items with an id above ``after_id``. SQL stores
        read the ids in chunks straight into the array; a round over a million items calls this
        instead of :meth:`list_items`.
        """

    @abstractmethod
    def list_labeled_arrays(self, project_id: int) -> LabeledArrays:
        """Every ``labeled`` item's id, label and validation flag, ascending by item id."""

    @abstractmethod
    def set_item_label(self, item_id: int, label: Any) -> None:
        """Set an item's resolved label (e.g. after consensus); marks it ``labeled``."""

    # ---- data quality: gold and review
    @abstractmethod
    def mark_gold(self, item_id: int, label: Any) -> Item:
        """Make an unlabeled or labeled item gold with its known ``label``; returns it.

        A gold item leaves the training set and the pool (status ``gold``, ``label`` cleared,
        ``gold_label`` set). Raises :class:`~labelwise.errors.LabelMismatchError` for a label
        outside the classes and :class:`ReviewError` for an item that is queued, skipped or in
        review; nothing is written then.
        """

    @abstractmethod
    def lease_gold_task(
        self,
        project_id: int,
        annotator_id: int,
        lease_seconds: float = 300,
        now: datetime | None = None,
        *,
        max_leases: int | None = None,
    ) -> Task | None:
        """Create a task for a gold item the annotator has not answered, leased to them.

        The task joins the project's latest round with priority 0; ``None`` when there is no
        round or no gold item left for this annotator. Gold items are taken in id order.
        ``max_leases`` caps the annotator's valid leases in the project as in
        :meth:`claim_next_task` (:class:`LeaseLimitError`).
        """

    @abstractmethod
    def send_to_review(
        self, item_ids: Sequence[int], reason: str, project_id: int | None = None
    ) -> int:
        """Move items to ``review`` (out of the training set) with ``reason``
        (:data:`REVIEW_REASONS`); gold items and items already in review are left alone.
        Returns how many moved. With ``project_id``, an item of another project is
        :class:`NotFound` like an unknown one (nothing is moved)."""

    @abstractmethod
    def resolve_review(
        self, item_id: int, label: Any, reviewer_id: int, now: datetime | None = None
    ) -> Item:
        """A reviewer's decision: the item becomes ``labeled`` with ``label``, recording who
        resolved it, when, and whether the label was ``confirmed`` or ``corrected``.

        Raises :class:`ReviewError` unless the item is in review (nothing is written),
        :class:`~labelwise.errors.LabelMismatchError` for a label outside the classes.
        """

    # ---- rounds
    @abstractmethod
    def create_round(self, project_id: int, strategy: str, now: datetime | None = None) -> int:
        """Open the project's next round (numbers start at 1)."""

    @abstractmethod
    def get_round(self, round_id: int) -> Round: ...

    @abstractmethod
    def list_rounds(self, project_id: int) -> list[Round]: ...

    @abstractmethod
    def close_round(self, round_id: int, now: datetime | None = None) -> None: ...

    # ---- tasks
    @abstractmethod
    def create_tasks(
        self,
        round_id: int,
        item_ids: Sequence[int],
        *,
        priorities: Sequence[float] | None = None,
        routing_tags: Sequence[str | None] | None = None,
        confidences: Sequence[float | None] | None = None,
        copies: Sequence[int] | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Queue tasks for the items of the round (items become ``queued``); returns task ids.

        ``copies[i]`` tasks are queued for item ``i`` (1 by default; the ids come item by item);
        an item with more than one needs that many answers from different annotators
        (``Item.consensus``).

        ``priorities`` are the strategy's scores (higher is served first); ``routing_tags``
        route a task to annotators whose skills include the tag; ``confidences`` are the
        model's probabilities of the predicted class (the routing tag), ``None`` while cold.
        """

    @abstractmethod
    def get_task(self, task_id: int) -> Task: ...

    @abstractmethod
    def list_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        status: str | None = None,
        lease_owner: int | None = None,
        item_id: int | None = None,
    ) -> list[Task]: ...

    @abstractmethod
    def claim_next_task(
        self,
        project_id: int,
        annotator_id: int,
        lease_seconds: float = 300,
        now: datetime | None = None,
        *,
        max_leases: int | None = None,
    ) -> Task | None:
        """Atomically lease the next task for the annotator, or return ``None``.

        Claimable: ``queued`` tasks and ``leased`` tasks whose lease has expired, excluding tasks
        for items this annotator already annotated, skipped or holds another valid lease on (a
        consensus item's k tasks go to k different people). Order: tasks whose routing tag is
        one of the annotator's skills first, then higher priority, then lower id.

        With ``max_leases``, an annotator who already holds that many valid leases in the
        project gets :class:`LeaseLimitError` instead (nothing is leased). The count and the
        lease are one transaction, and one annotator's claims run one at a time, so concurrent
        claims with one token never end above the cap.
        """

    def get_round_progress(self, round_id: int) -> tuple[int, int, int]:
        """``(round number, its tasks, those done or skipped)``: what a claimed task shows as
        "12 of 50 in this batch". Withdrawn tasks (:meth:`withdraw_tasks`) are not counted: they
        are no longer part of the batch. :class:`NotFound` for an unknown round.

        This default reads the round and counts twice; SQL backends answer in one query (it
        runs on every claim).
        """
        rnd = self.get_round(round_id)
        live = tuple(s for s in TASK_STATUSES if s != "withdrawn")
        total = self.count_tasks(rnd.project_id, round_id=round_id, statuses=live)
        finished = self.count_tasks(rnd.project_id, round_id=round_id, statuses=("done", "skipped"))
        return rnd.number, total, finished

    @abstractmethod
    def skip_task(self, task_id: int, annotator_id: int, now: datetime | None = None) -> None:
        """Mark a task the annotator holds as ``skipped`` (its item too); :class:`LeaseError`
        if the annotator does not hold a valid lease on it."""

    @abstractmethod
    def release_task(self, task_id: int, annotator_id: int) -> None:
        """Give a leased task back to the queue (``queued``, no owner)."""

    @abstractmethod
    def queue_depth(self, project_id: int, now: datetime | None = None) -> int:
        """How many tasks are claimable now (queued or with an expired lease)."""

    def count_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> int:
        """How many tasks of the project (of one round) have one of ``statuses`` (any status
        when ``None``); a COUNT in SQL, never a listing. Unknown statuses are a
        :class:`~labelwise.errors.LabelwiseError`.

        This default lists the tasks; backends override it.
        """
        wanted = None if statuses is None else _check_task_statuses(statuses)
        return sum(
            1
            for t in self.list_tasks(project_id, round_id=round_id)
            if wanted is None or t.status in wanted
        )

    def has_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> bool:
        """Whether :meth:`count_tasks` would be above zero (an ``EXISTS`` in SQL)."""
        return self.count_tasks(project_id, round_id=round_id, statuses=statuses) > 0

    @abstractmethod
    def update_tasks(
        self,
        task_ids: Sequence[int],
        *,
        priorities: Sequence[float],
        routing_tags: Sequence[str | None] | None = None,
        confidences: Sequence[float | None] | None = None,
    ) -> int:
        """Re-score tasks that are still ``queued`` (never claimed, or released).

        Sets each task's ``priority`` (and ``routing_tag`` / ``confidence`` when
        ``routing_tags`` / ``confidences`` are given), e.g. after a retrain re-scored the items
        of older rounds. Tasks that are leased, done or skipped are left alone; returns how
        many tasks were updated.
        """

    @abstractmethod
    def withdraw_tasks(self, task_ids: Sequence[int]) -> list[int]:
        """Withdraw tasks that are still ``queued``; returns the ids withdrawn (ascending).

        A withdrawn task is never served again and its item is ``unlabeled`` again (a later
        round may select it). The status check and the change are one statement per chunk of
        ids in one transaction, so a concurrent :meth:`claim_next_task` either leased the task
        first (it stays leased) or never sees it: a task is never both claimed and withdrawn.
        Tasks that are leased (even with an expired lease), done or skipped are left alone, and
        so is every task of an item with another task that is not withdrawn (a consensus item's
        copies stay together).
        """

    # ---- annotations
    @abstractmethod
    def create_annotation(
        self,
        task_id: int,
        annotator_id: int,
        label: Any,
        *,
        duration_s: float | None = None,
        resolve: bool = True,
        now: datetime | None = None,
    ) -> int:
        """Record a label for a leased task and mark the task ``done``, in one transaction.

        Raises :class:`LeaseError` if the task is not leased by this annotator or the lease
        expired, and :class:`~labelwise.errors.LabelMismatchError` for a label outside the
        project's classes. With ``resolve=True`` (default) the item becomes ``labeled`` with this
        label; pass ``False`` when labels are resolved later by consensus (``set_item_label``).
        Consensus items (``consensus > 1``), gold items and items in review are never resolved
        by one answer.
        The annotation records the project's current guidelines version (``None`` without any).
        """

    @abstractmethod
    def undo_annotation(
        self,
        annotation_id: int,
        annotator_id: int,
        *,
        lease_seconds: float = 300,
        now: datetime | None = None,
    ) -> Task:
        """Take back the annotator's most recent annotation; returns its task, leased again.

        In one transaction: the annotation is deleted, the task becomes ``leased`` by the
        annotator with a fresh lease of ``lease_seconds``, and a ``labeled`` item gets the label
        of its latest remaining annotation, or none (``queued``) when no other is left.

        Raises :class:`UndoError` unless the annotation is the annotator's own, their most
        recent one in the project, made on a task whose round is still open (once a round is
        closed a retrained model has learned its labels); :class:`NotFound` for an unknown id.
        """

    @abstractmethod
    def revise_annotation(
        self,
        annotation_id: int,
        annotator_id: int,
        label: Any,
        *,
        duration_s: float | None = None,
        now: datetime | None = None,
    ) -> int:
        """Change an earlier answer: a new annotation replaces the annotator's old one.

        In one transaction the old annotation is deleted and a new one (a new id, the same task
        and item, the current guideline version) records ``label``; a ``labeled`` item takes the
        new label (it is now the item's latest annotation). Returns the new annotation's id.

        Raises :class:`UndoError` unless the annotation is the annotator's own and its round is
        still open (any of their annotations, not only the most recent);
        :class:`~labelwise.errors.LabelMismatchError` for a label outside the project's classes;
        :class:`NotFound` for an unknown id.
        """

    @abstractmethod
    def get_annotation(self, annotation_id: int) -> Annotation: ...

    def list_recent_annotations(
        self, project_id: int, annotator_id: int, limit: int = 10
    ) -> list[Annotation]:
        """The annotator's ``limit`` most recent annotations in the project, newest first.

        This default lists them all; backends override it with a bounded query.
        """
        if limit < 1:
            raise LabelwiseError(f"limit must be >= 1; got {limit!r}.")
        return self.list_annotations(project_id, annotator_id=annotator_id)[::-1][:limit]

    @abstractmethod
    def list_annotations(
        self,
        project_id: int,
        *,
        item_id: int | None = None,
        annotator_id: int | None = None,
        since: datetime | None = None,
    ) -> list[Annotation]:
        """The project's annotations, ascending by id; optionally one item's, one annotator's,
        or only those created at or after ``since`` (progress reads the last day's, not a
        million-annotation history)."""

    def count_annotations(self, project_id: int, annotator_id: int | None = None) -> int:
        """How many annotations the project's items have, or one annotator's of them (a COUNT
        in SQL: a gold-enabled project asks on every claim).

        This default lists them; backends override it.
        """
        return len(self.list_annotations(project_id, annotator_id=annotator_id))

    def list_annotation_times(
        self, project_id: int, since: datetime, until: datetime | None = None
    ) -> dict[int, list[float]]:
        """When each annotator answered in ``[since, until)`` (``until`` = now): annotator id
        to POSIX timestamps in no set order; answers without an annotator left out. For throughput:
        SQL reads two columns instead of building an :class:`Annotation` per answer. This
        default lists them."""
        until = _resolve_now(until)
        out: dict[int, list[float]] = {}
        for a in self.list_annotations(project_id, since=since):
            if a.annotator_id is not None and a.created < until:
                out.setdefault(a.annotator_id, []).append(a.created.timestamp())
        return out

    def count_labeled_by_split(self, project_id: int) -> list[tuple[Any, str | None, int]]:
        """Labelled items grouped by ``(label, metadata["split"])``: ``(label, split, n)``
        rows in no set order (``split`` is ``None`` where the item has none; a split that is
        not a string comes back as SQL reads it, as text, and as ``None`` from this default:
        progress only compares it with ``"validation"``). For progress's class counts without
        building an :class:`Item` per labelled item. This default lists them; SQL groups them
        in one query."""
        groups: dict[tuple[str, str | None], tuple[Any, str | None, int]] = {}
        for item in self.list_items(project_id, status="labeled"):
            split = item.metadata.get("split")
            split = split if isinstance(split, str) else None
            key = (json.dumps(item.label, sort_keys=True), split)
            n = groups[key][2] + 1 if key in groups else 1
            groups[key] = (item.label, split, n)
        return list(groups.values())

    def count_annotations_by_gold(self, project_id: int) -> dict[bool, tuple[int, int]]:
        """Annotations and distinct annotated items, split by whether the item is gold:
        ``{is_gold: (n_annotations, n_items)}``, only keys that have annotations.

        What data quality costs: answers beyond the first on non-gold items are the extra
        annotations consensus asked for. This default lists them; SQL counts them in one
        grouped query.
        """
        gold = set(self.list_item_ids(project_id, status="gold").tolist())
        per_item = Counter(a.item_id for a in self.list_annotations(project_id))
        out: dict[bool, tuple[int, int]] = {}
        for iid, n in per_item.items():
            answers, items = out.get(iid in gold, (0, 0))
            out[iid in gold] = (answers + n, items + 1)
        return out

    def annotator_throughput(
        self, project_id: int, since: datetime, until: datetime | None = None
    ) -> dict[int, int]:
        """Annotations per annotator id created in ``[since, until)`` (``until`` = now).

        This default counts :meth:`list_annotation_times`; SQL counts in the database.
        """
        return {
            aid: len(t) for aid, t in self.list_annotation_times(project_id, since, until).items()
        }

    # ---- guidelines
    @abstractmethod
    def create_guidelines(
        self,
        project_id: int,
        body: str = "",
        *,
        classes: Mapping[str, Mapping[str, Any]] | None = None,
        hard_cases: str = "",
        author_id: int | None = None,
        now: datetime | None = None,
    ) -> int:
        """Write the project's next guidelines version (1 for the first); returns its id.

        ``body`` and ``hard_cases`` are Markdown (stored as given; rendering and sanitising is
        the reader's job); ``classes`` maps class names to ``{"definition": str, "examples":
        [str]}``. Versions are numbered per project without gaps, also under concurrent writers.

        Raises :class:`~labelwise.errors.LabelwiseError` for a class outside the project's
        classes or texts over the size limits, :class:`NotFound` for an unknown project.
        """

    @abstractmethod
    def get_guidelines(self, guidelines_id: int) -> Guidelines: ...

    @abstractmethod
    def find_guidelines(self, project_id: int, version: int | None = None) -> Guidelines | None:
        """The given version of the project's guidelines (the latest when ``None``), or ``None``."""

    @abstractmethod
    def list_guidelines(self, project_id: int) -> list[Guidelines]:
        """Every version of the project's guidelines, oldest first."""

    # ---- flags
    @abstractmethod
    def create_flag(
        self,
        item_id: int,
        annotator_id: int,
        reason: str,
        *,
        task_id: int | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record that an annotator flagged an item (broken, ambiguous, off-topic) and why.

        Raises :class:`~labelwise.errors.LabelwiseError` for an empty or over-long reason or a
        task of another item; :class:`NotFound` for an unknown item, task or annotator.
        """

    @abstractmethod
    def get_flag(self, flag_id: int) -> Flag: ...

    @abstractmethod
    def list_flags(self, project_id: int, *, item_id: int | None = None) -> list[Flag]:
        """The project's flags (of one item), oldest first."""

    # ---- model versions
    @abstractmethod
    def create_model_version(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        calibration: Mapping[str, Any] | None = None,
        artifact_path: str | None = None,
        now: datetime | None = None,
    ) -> int: ...

    @abstractmethod
    def get_model_version(self, model_version_id: int) -> ModelVersion: ...

    @abstractmethod
    def list_model_versions(self, project_id: int) -> list[ModelVersion]: ...

    def find_latest_model_version(self, project_id: int) -> ModelVersion | None:
        versions = self.list_model_versions(project_id)
        return versions[-1] if versions else None

    # ---- dataset versions
    @abstractmethod
    def create_dataset_version(self, project_id: int, now: datetime | None = None) -> int:
        """Snapshot the project's current labels as an immutable version.

        If a version with the same content hash exists for the project, its id is returned and
        nothing is written.
        """

    @abstractmethod
    def get_dataset_version(self, dataset_version_id: int) -> DatasetVersion: ...

    @abstractmethod
    def list_dataset_versions(self, project_id: int) -> list[DatasetVersion]: ...

    @abstractmethod
    def list_dataset_rows(self, dataset_version_id: int) -> list[tuple[str, Any]]:
        """The snapshot's ``(external_id, label)`` pairs, sorted by external id."""

    # ---- jobs
    @abstractmethod
    def create_job(
        self,
        kind: str,
        project_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Queue a durable job (``kind`` is ``"retrain"`` or ``"select"``)."""

    @abstractmethod
    def ensure_job(
        self,
        kind: str,
        project_id: int,
        payload: Mapping[str, Any] | None = None,
        *,
        statuses: Sequence[str] = ("queued",),
        now: datetime | None = None,
    ) -> tuple[int, bool]:
        """Queue a job unless the project has one of this kind in ``statuses``, atomically.

        Returns ``(job_id, created)``: the new job's id and ``True``, or the oldest matching
        job's id and ``False``. Concurrent callers never create two (SQLite: the
        ``BEGIN IMMEDIATE`` write transaction; PostgreSQL: a row lock on the project).
        """

    @abstractmethod
    def get_job(self, job_id: int) -> Job: ...

    @abstractmethod
    def list_jobs(self, project_id: int | None = None, status: str | None = None) -> list[Job]: ...

    @abstractmethod
    def claim_next_job(
        self,
        worker_id: str,
        lease_seconds: float = 600,
        now: datetime | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Job | None:
        """Atomically lease the oldest queued job (or one whose lease expired): it becomes
        ``running`` with ``attempts + 1``. ``None`` when there is nothing to do."""

    @abstractmethod
    def finish_job(
        self,
        job_id: int,
        worker_id: str,
        error: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Mark a running job ``done`` (or ``failed`` with ``error``); :class:`LeaseError` if
        ``worker_id`` does not hold it."""

    @abstractmethod
    def renew_job_lease(
        self,
        job_id: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> Job:
        """Extend a running job's lease to ``now + lease_seconds`` (a worker's heartbeat).

        :class:`LeaseError` if ``worker_id`` does not hold the job (another worker reclaimed
        it after the lease expired, or it is finished): the caller should stop working on it.
        """

    @abstractmethod
    def retry_job(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        now: datetime | None = None,
        *,
        not_before: datetime | None = None,
    ) -> None:
        """Put a running job back in the queue after a failed attempt.

        The job becomes ``queued`` again with no owner, keeps its ``attempts`` count and records
        ``error`` (the last failure); :class:`LeaseError` if ``worker_id`` does not hold it.
        With ``not_before`` (a backoff), :meth:`claim_next_job` leaves it alone until then.
        """

    # ---- webhooks (issue 11)
    @abstractmethod
    def create_webhook(
        self,
        project_id: int,
        url: str,
        events: Sequence[str],
        secret: str,
        *,
        active: bool = True,
        now: datetime | None = None,
    ) -> int:
        """Subscribe ``url`` to some of :data:`WEBHOOK_EVENTS` of a project.

        The store checks only the shape (length, known events); the service checks the URL
        against the SSRF guard and generates the secret.
        """

    @abstractmethod
    def get_webhook(self, webhook_id: int) -> Webhook: ...

    @abstractmethod
    def list_webhooks(self, project_id: int | None = None) -> list[Webhook]:
        """The webhooks (of one project), oldest first."""

    @abstractmethod
    def update_webhook(
        self,
        webhook_id: int,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        active: bool | None = None,
        now: datetime | None = None,
    ) -> Webhook:
        """Change the given fields (``None`` keeps one); returns the webhook as stored."""

    @abstractmethod
    def delete_webhook(self, webhook_id: int) -> None:
        """Delete a webhook and its deliveries; :class:`NotFound` if there is none."""

    @abstractmethod
    def create_deliveries(
        self,
        project_id: int,
        event: str,
        event_id: str,
        body: Mapping[str, Any],
        now: datetime | None = None,
    ) -> list[int]:
        """Queue ``body`` for every active webhook of the project subscribed to ``event``.

        Idempotent per ``(webhook, event_id)``: emitting the same event again (a retrain job run
        a second time after a crash) queues nothing new. Returns the new deliveries' ids, due
        at ``now``.
        """

    @abstractmethod
    def get_delivery(self, delivery_id: int) -> Delivery: ...

    @abstractmethod
    def list_deliveries(
        self,
        webhook_id: int | None = None,
        *,
        project_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Delivery]:
        """Deliveries (of a webhook, of a project, in a status), **newest first**, at most
        ``limit``."""

    @abstractmethod
    def claim_next_delivery(
        self, worker_id: str, lease_seconds: float = 60, now: datetime | None = None
    ) -> Delivery | None:
        """Atomically lease the due delivery with the earliest ``next_attempt_at``.

        Due: ``pending`` with ``next_attempt_at <= now``, or ``delivering`` whose lease (kept in
        ``next_attempt_at``) expired because its worker died. It becomes ``delivering`` with
        ``attempts + 1`` and ``next_attempt_at = now + lease_seconds``. Several workers never
        claim the same row (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the write lock).
        """

    @abstractmethod
    def finish_delivery(
        self,
        delivery_id: int,
        worker_id: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Delivery:
        """Record an attempt: ``delivered`` when ``error`` is ``None``; else ``pending`` again
        at ``retry_at``, or ``failed`` when there is no ``retry_at``. Appends the attempt to
        ``history``; :class:`LeaseError` if ``worker_id`` does not hold the delivery."""

    @abstractmethod
    def requeue_delivery(self, delivery_id: int, now: datetime | None = None) -> Delivery:
        """Send a delivery again (redeliver): ``pending`` now with ``attempts`` reset, history
        kept. :class:`LeaseError` while a worker is sending it."""

    # ---- model sources (issue 11)
    @abstractmethod
    def set_model_source(
        self,
        project_id: int,
        source: str,
        endpoint: str | None = None,
        now: datetime | None = None,
    ) -> ModelSource:
        """Make ``source`` (:data:`MODEL_SOURCES`) the project's model source.

        ``endpoint`` is required for ``"endpoint"``; for the other sources it is kept as given
        (``None`` clears it). :class:`NotFound` for an unknown project.
        """

    @abstractmethod
    def get_model_source(self, project_id: int) -> ModelSource:
        """The project's model source (``builtin`` when never set); :class:`NotFound` for an
        unknown project."""

    @abstractmethod
    def create_model_upload(
        self,
        project_id: int,
        kind: str,
        *,
        version: int,
        origin: str,
        path: str,
        n_rows: int,
        n_cols: int,
        classes: Sequence[str] = (),
        model_version: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record a version of predictions or embeddings whose arrays are already at ``path``.

        :class:`AlreadyExistsError` if the project has that ``version`` of ``kind`` (a
        concurrent upload took it: read the versions and retry).
        """

    @abstractmethod
    def get_model_upload(self, upload_id: int) -> ModelUpload: ...

    @abstractmethod
    def list_model_uploads(self, project_id: int, kind: str | None = None) -> list[ModelUpload]:
        """The project's uploads (of one kind), oldest first (by kind, then version)."""

    def find_latest_model_upload(
        self, project_id: int, kind: str, origin: str | None = None
    ) -> ModelUpload | None:
        """The newest version of ``kind`` (from ``origin`` only, when given), or ``None``."""
        ups = [u for u in self.list_model_uploads(project_id, kind)
               if origin is None or u.origin == origin]  # fmt: skip
        return max(ups, key=lambda u: u.version) if ups else None

    # ---- resumable imports (issue 12)
    @abstractmethod
    def start_import_run(
        self,
        project_id: int,
        file_sha256: str,
        options: Mapping[str, Any],
        n_rows: int,
        now: datetime | None = None,
    ) -> tuple[ImportRun, bool]:
        """The ``running`` import of this file and these options into the project, or a new one.

        Returns ``(run, created)``: an interrupted run to resume from its ``rows_committed``
        and ``False``, or a new run (nothing committed) and ``True``. A ``done`` run of the same
        file is not resumed: importing it again is a new run (whose rows are all duplicates).
        Atomic like :meth:`ensure_job`: concurrent callers get the same run.
        """

    @abstractmethod
    def get_import_run(self, import_run_id: int) -> ImportRun: ...

    @abstractmethod
    def find_import_run(
        self, project_id: int, file_sha256: str, options: Mapping[str, Any]
    ) -> ImportRun | None:
        """The newest run (any status) of this file and options in the project, or ``None``."""

    @abstractmethod
    def write_import_batch(
        self,
        import_run_id: int,
        items: Sequence[NewItem],
        *,
        start_row: int,
        n_rows: int,
        on_duplicate: str = "skip",
        now: datetime | None = None,
    ) -> ImportRun:
        """Write one batch of a resumable import and move its checkpoint, in ONE transaction.

        ``items`` are the batch's rows ``start_row`` to ``start_row + n_rows`` of the file (as
        :meth:`write_items`, ``on_duplicate`` ``"skip"`` or ``"update"``); the run's
        ``rows_committed`` becomes ``start_row + n_rows`` and its counters add what the batch
        did, so the checkpoint is committed exactly with the rows. :class:`ImportConflictError`
        (nothing written) if the run is not ``running`` at ``rows_committed == start_row``.
        Returns the run afterwards.
        """

    @abstractmethod
    def finish_import_run(self, import_run_id: int, now: datetime | None = None) -> ImportRun:
        """Mark the run ``done`` (every row committed; :class:`ImportConflictError` if not)."""

    # ---- lifecycle
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
