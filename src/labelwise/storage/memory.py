"""In-memory store: dictionaries behind one lock. For tests, notebooks and simulations."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import count
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError
from labelwise.storage.base import (
    DELIVERY_STATUSES,
    ITEM_STATUSES,
    JOB_KINDS,
    JOB_STATUSES,
    MAX_REPORTED_IDS,
    PROJECT_FIELDS,
    PROJECT_ROLES,
    REVIEW_REASONS,
    ROLES,
    TASK_STATUSES,
    WEBHOOK_EVENTS,
    AlreadyExistsError,
    Annotation,
    Annotator,
    BaseStore,
    DatasetVersion,
    Delivery,
    DuplicateItemsError,
    Flag,
    Guidelines,
    ImportConflictError,
    ImportRun,
    Item,
    ItemsWritten,
    Job,
    LabeledArrays,
    LeaseError,
    LeaseLimitError,
    ModelSource,
    ModelUpload,
    ModelVersion,
    NewItem,
    NotFound,
    Project,
    Round,
    Task,
    Webhook,
    _attempt_record,
    _check_batch_on_duplicate,
    _check_choice,
    _check_classes_kept,
    _check_import_batch,
    _check_model_source,
    _check_model_upload,
    _check_quality,
    _check_reason,
    _check_revise,
    _check_statuses,
    _check_task_statuses,
    _check_undo,
    _check_update,
    _copies_args,
    _gold_label,
    _guidelines_fields,
    _lease_until,
    _merge_written,
    _project_fields,
    _resolve_now,
    _review_outcome,
    _tasks_args,
    _webhook_update,
    check_label,
    check_on_duplicate,
    dataset_hash,
    duplicates_message,
    features_differ,
    item_differs,
    updated_fields,
    utcnow,
)
from labelwise.strategies.registry import DEFAULT_STRATEGY

__all__ = ["InMemoryStore"]


def _get(table: dict[int, Any], entity: str, id: int) -> Any:
    try:
        return table[id]
    except KeyError:
        raise NotFound(entity, id) from None


def _from_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """:func:`updated_fields` names metadata by its SQL column, ``meta``; Item calls it
    ``metadata``."""
    return {("metadata" if k == "meta" else k): v for k, v in fields.items()}


class InMemoryStore(BaseStore):
    """Every entity in a ``dict`` keyed by id; one :class:`threading.RLock` makes writes atomic.

    JSON-like values (payloads, labels, metrics) are deep-copied on the way in, so callers
    cannot change stored state by mutating what they passed.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids: dict[str, count[int]] = {}
        self._projects: dict[int, Project] = {}
        self._annotators: dict[int, Annotator] = {}
        self._members: dict[tuple[int, int], str] = {}  # (project, annotator) -> role
        self._items: dict[int, Item] = {}
        self._item_keys: dict[tuple[int, str], int] = {}
        self._rounds: dict[int, Round] = {}
        self._tasks: dict[int, Task] = {}
        self._annotations: dict[int, Annotation] = {}
        self._model_versions: dict[int, ModelVersion] = {}
        self._dataset_versions: dict[int, DatasetVersion] = {}
        self._dataset_rows: dict[int, list[tuple[str, Any]]] = {}
        self._jobs: dict[int, Job] = {}
        self._guidelines: dict[int, Guidelines] = {}
        self._flags: dict[int, Flag] = {}
        self._webhooks: dict[int, Webhook] = {}  # webhooks (issue 11)
        self._deliveries: dict[int, Delivery] = {}
        self._model_sources: dict[int, ModelSource] = {}  # model sources (issue 11)
        self._model_uploads: dict[int, ModelUpload] = {}
        self._import_runs: dict[int, ImportRun] = {}  # resumable imports (issue 12)

    def _next_id(self, table: str) -> int:
        return next(self._ids.setdefault(table, count(1)))

    # ---- projects
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
        f = _project_fields(
            name, task_type, classes, strategy, strategy_params, cold_start_strategy,
            batch_size, stopping, label_cost, show_predictions, **_check_quality(quality),
        )  # fmt: skip
        with self._lock:
            if self.find_project(name) is not None:
                raise AlreadyExistsError(f"project {name!r} already exists; pick another name.")
            pid = self._next_id("projects")
            f["classes"] = tuple(f["classes"])
            self._projects[pid] = Project(id=pid, created=utcnow(), **copy.deepcopy(f))
            return pid

    def get_project(self, project_id: int) -> Project:
        return copy.deepcopy(_get(self._projects, "project", project_id))

    def find_project(self, name: str) -> Project | None:
        with self._lock:
            for p in self._projects.values():
                if p.name == name:
                    return copy.deepcopy(p)
        return None

    def list_projects(self) -> list[Project]:
        with self._lock:
            return [copy.deepcopy(p) for _, p in sorted(self._projects.items())]

    def update_project(self, project_id: int, **fields: Any) -> Project:
        _check_update(fields)
        if not fields:
            return self.get_project(project_id)
        with self._lock:
            p = _get(self._projects, "project", project_id)
            if "classes" in fields:
                items = [it for it in self._items.values() if it.project_id == project_id]
                ids = {it.id for it in items}
                labels = [x for it in items for x in (it.label, it.gold_label)]
                labels += [a.label for a in self._annotations.values() if a.item_id in ids]
                _check_classes_kept(p.classes, fields["classes"], labels)
            merged = {k: getattr(p, k) for k in PROJECT_FIELDS}
            merged.update(fields)
            f = _project_fields(**merged)
            f["classes"] = tuple(f["classes"])
            self._projects[project_id] = replace(p, **copy.deepcopy(f))
            return self.get_project(project_id)

    # ---- annotators
    def create_annotator(
        self,
        name: str,
        *,
        token_hash: str | None = None,
        role: str = "annotator",
        skills: Sequence[str] = (),
        token_expires: datetime | None = None,
    ) -> int:
        _check_choice("role", role, ROLES)
        with self._lock:
            if self.find_annotator(name) is not None:
                raise AlreadyExistsError(f"annotator {name!r} already exists; pick another name.")
            if token_hash is not None and self.find_annotator_by_token(token_hash) is not None:
                raise AlreadyExistsError("another annotator already uses this token.")
            aid = self._next_id("annotators")
            self._annotators[aid] = Annotator(
                id=aid,
                name=name,
                token_hash=token_hash,
                role=role,
                skills=tuple(str(s) for s in skills),
                projects=(),
                created=utcnow(),
                token_expires=token_expires,
            )
            return aid

    def _annotator(self, a: Annotator) -> Annotator:
        roles = {p: r for (p, aid), r in sorted(self._members.items()) if aid == a.id}
        return replace(a, projects=tuple(roles), project_roles=roles)

    def get_annotator(self, annotator_id: int) -> Annotator:
        with self._lock:
            return self._annotator(_get(self._annotators, "annotator", annotator_id))

    def find_annotator(self, name: str) -> Annotator | None:
        with self._lock:
            for a in self._annotators.values():
                if a.name == name:
                    return self._annotator(a)
        return None

    def find_annotator_by_token(self, token_hash: str) -> Annotator | None:
        with self._lock:
            for a in self._annotators.values():
                if a.token_hash == token_hash:
                    return self._annotator(a)
        return None

    def update_token(
        self, annotator_id: int, token_hash: str, *, token_expires: datetime | None = None
    ) -> None:
        with self._lock:
            a = _get(self._annotators, "annotator", annotator_id)
            other = self.find_annotator_by_token(token_hash)
            if other is not None and other.id != annotator_id:
                raise AlreadyExistsError("another annotator already uses this token.")
            self._annotators[annotator_id] = replace(
                a, token_hash=token_hash, token_expires=token_expires, token_revoked=None
            )

    def revoke_token(self, annotator_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        with self._lock:
            a = _get(self._annotators, "annotator", annotator_id)
            if a.token_revoked is None:
                self._annotators[annotator_id] = replace(a, token_revoked=now)

    def list_annotators(self, project_id: int | None = None) -> list[Annotator]:
        with self._lock:
            out = [self._annotator(a) for _, a in sorted(self._annotators.items())]
        if project_id is not None:
            out = [a for a in out if project_id in a.projects]
        return out

    def add_member(self, project_id: int, annotator_id: int, role: str | None = None) -> None:
        if role is not None:
            _check_choice("role", role, PROJECT_ROLES)
        with self._lock:
            _get(self._projects, "project", project_id)
            _get(self._annotators, "annotator", annotator_id)
            key = (project_id, annotator_id)
            self._members[key] = role or self._members.get(key, "annotator")

    def set_member_role(self, project_id: int, annotator_id: int, role: str) -> None:
        _check_choice("role", role, PROJECT_ROLES)
        with self._lock:
            if (project_id, annotator_id) not in self._members:
                raise NotFound("member", annotator_id)
            self._members[(project_id, annotator_id)] = role

    def add_members(self, project_ids: Sequence[int], annotator_id: int) -> None:
        with self._lock:
            ids = list(dict.fromkeys(int(p) for p in project_ids))
            for pid in ids:
                _get(self._projects, "project", pid)
            _get(self._annotators, "annotator", annotator_id)
            for pid in ids:
                self._members.setdefault((pid, annotator_id), "annotator")

    def remove_member(self, project_id: int, annotator_id: int) -> int:
        with self._lock:
            self._members.pop((project_id, annotator_id), None)
            held = [
                t
                for t in self._tasks.values()
                if t.project_id == project_id
                and t.status == "leased"
                and t.lease_owner == annotator_id
            ]
            for t in held:
                self._tasks[t.id] = replace(
                    t, status="queued", lease_owner=None, lease_expires=None
                )
            return len(held)

    # ---- items
    def write_items(
        self,
        project_id: int,
        items: Iterable[NewItem],
        *,
        on_duplicate: str = "skip",
        batch_size: int = 5000,
    ) -> ItemsWritten:
        check_on_duplicate(on_duplicate)
        with self._lock:
            project = self.get_project(project_id)
            staged: dict[str, Item] = {}
            updates: dict[int, dict[str, Any]] = {}
            n_dup = n_changed = 0
            changed: list[str] = []
            stale_features = False
            now = utcnow()
            for it in items:
                key = str(it.external_id)
                label = None if it.label is None else check_label(project, it.label)
                if it.gold and label is None:
                    raise LabelwiseError(f"gold item {key!r} needs its known label.")
                iid = self._item_keys.get((project_id, key))
                stored = staged.get(key) if iid is None else self._items[iid]
                if stored is not None:
                    n_dup += 1
                    if iid is not None and iid in updates:  # an earlier row of this input
                        stored = replace(stored, **_from_columns(updates[iid]))
                    if not item_differs(stored, it, label):
                        continue
                    n_changed += 1
                    if len(changed) < MAX_REPORTED_IDS:
                        changed.append(key)
                    if on_duplicate != "update":
                        continue
                    fields = updated_fields(stored, it, label)
                    stale_features = stale_features or (
                        iid is not None and features_differ(stored, it)
                    )
                    if iid is None:
                        staged[key] = replace(stored, **_from_columns(fields))
                    else:
                        updates[iid] = {**updates.get(iid, {}), **fields}
                    continue
                gold, label = (label, None) if it.gold else (None, label)
                staged[key] = Item(
                    id=0,
                    project_id=project_id,
                    external_id=key,
                    payload=copy.deepcopy(dict(it.payload)),
                    metadata=copy.deepcopy(dict(it.metadata)),
                    features_path=it.features_path,
                    features_row=it.features_row,
                    status="gold" if it.gold else "unlabeled" if label is None else "labeled",
                    label=copy.deepcopy(label),
                    created=now,
                    gold_label=copy.deepcopy(gold),
                )
            written = ItemsWritten(
                n_created=len(staged),
                n_duplicates=n_dup,
                n_changed=n_changed,
                n_updated=len(updates),
                changed_ids=tuple(changed),
            )
            if on_duplicate == "fail" and n_changed:
                raise DuplicateItemsError(duplicates_message(written), written)
            for key, item in staged.items():  # all validated: now write
                iid = self._next_id("items")
                self._items[iid] = replace(item, id=iid)
                self._item_keys[(project_id, key)] = iid
            for iid, fields in updates.items():
                self._items[iid] = replace(self._items[iid], **copy.deepcopy(_from_columns(fields)))
            if stale_features:
                self._projects[project_id] = replace(
                    project, items_revision=project.items_revision + 1
                )
            return written

    def get_item(self, item_id: int) -> Item:
        return copy.deepcopy(_get(self._items, "item", item_id))

    def find_item(self, project_id: int, external_id: str) -> Item | None:
        with self._lock:
            iid = self._item_keys.get((project_id, str(external_id)))
            return None if iid is None else self.get_item(iid)

    def _project_items(self, project_id: int, status: str | None = None) -> list[Item]:
        if status is not None:
            _check_choice("status", status, ITEM_STATUSES)
        with self._lock:
            return [
                it
                for _, it in sorted(self._items.items())
                if it.project_id == project_id and (status is None or it.status == status)
            ]

    def list_items(
        self,
        project_id: int,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        after_id: int | None = None,
    ) -> list[Item]:
        items = self._project_items(project_id, status)
        if after_id is not None:
            items = [it for it in items if it.id > after_id]
        end = None if limit is None else offset + limit
        return [copy.deepcopy(it) for it in items[offset:end]]

    def count_items(self, project_id: int, status: str | None = None) -> int:
        return len(self._project_items(project_id, status))

    def count_items_by_status(self, project_id: int) -> dict[str, int]:
        return dict(Counter(it.status for it in self._project_items(project_id, None)))

    def count_review_items(self, project_id: int) -> dict[tuple[str, str | None, bool], int]:
        items = self._project_items(project_id, None)
        out = Counter(
            (it.review_reason, it.review_outcome, it.status == "review")
            for it in items
            if it.review_reason is not None
        )
        n_consensus = sum(it.consensus > 1 for it in items)
        if n_consensus:
            out["consensus", None, False] = n_consensus
        return dict(out)

    def list_unlabeled_item_ids(self, project_id: int) -> list[int]:
        return [it.id for it in self._project_items(project_id, "unlabeled")]

    def list_labeled(self, project_id: int) -> list[tuple[int, Any]]:
        return [
            (it.id, copy.deepcopy(it.label)) for it in self._project_items(project_id, "labeled")
        ]

    def list_item_ids(
        self, project_id: int, status: str | None = None, *, after_id: int | None = None
    ) -> np.ndarray:
        floor = -1 if after_id is None else after_id
        ids = [it.id for it in self._project_items(project_id, status) if it.id > floor]
        return np.asarray(ids, dtype=np.int64)

    def list_labeled_arrays(self, project_id: int) -> LabeledArrays:
        items = self._project_items(project_id, "labeled")
        return LabeledArrays(
            np.asarray([it.id for it in items], dtype=np.int64),
            [copy.deepcopy(it.label) for it in items],
            np.asarray([it.metadata.get("split") == "validation" for it in items], dtype=bool),
        )

    def set_item_label(self, item_id: int, label: Any) -> None:
        with self._lock:
            item = _get(self._items, "item", item_id)
            label = check_label(self.get_project(item.project_id), label)
            self._items[item_id] = replace(item, label=copy.deepcopy(label), status="labeled")

    # ---- data quality
    def mark_gold(self, item_id: int, label: Any) -> Item:
        with self._lock:
            item = _get(self._items, "item", item_id)
            label = _gold_label(self.get_project(item.project_id), item, label)
            self._items[item_id] = replace(
                item, status="gold", label=None, gold_label=copy.deepcopy(label)
            )
            return self.get_item(item_id)

    def lease_gold_task(
        self,
        project_id: int,
        annotator_id: int,
        lease_seconds: float = 300,
        now: datetime | None = None,
        *,
        max_leases: int | None = None,
    ) -> Task | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            self._check_lease_cap(project_id, annotator_id, now, max_leases)
            rounds = [r for _, r in sorted(self._rounds.items()) if r.project_id == project_id]
            if not rounds:
                return None
            seen = self._seen_items(annotator_id, now)
            gold = [
                it.id
                for _, it in sorted(self._items.items())
                if it.project_id == project_id and it.status == "gold" and it.id not in seen
            ]
            if not gold:
                return None
            tid = self._next_id("tasks")
            task = Task(
                tid, project_id, rounds[-1].id, gold[0], "leased", annotator_id, until, 0.0, None,
                now,
            )  # fmt: skip
            self._tasks[tid] = task
            return task

    def send_to_review(
        self, item_ids: Sequence[int], reason: str, project_id: int | None = None
    ) -> int:
        _check_choice("reason", reason, REVIEW_REASONS)
        n = 0
        with self._lock:
            ids = list(dict.fromkeys(int(i) for i in item_ids))
            for iid in ids:  # check every id before moving any
                item = _get(self._items, "item", iid)
                if project_id is not None and item.project_id != project_id:
                    raise NotFound("item", iid)
            for iid in ids:
                item = _get(self._items, "item", iid)
                if item.status in ("gold", "review"):
                    continue
                self._items[iid] = replace(
                    item, status="review", review_reason=reason, review_outcome=None
                )
                n += 1
        return n

    def resolve_review(
        self, item_id: int, label: Any, reviewer_id: int, now: datetime | None = None
    ) -> Item:
        now = _resolve_now(now)
        with self._lock:
            item = _get(self._items, "item", item_id)
            _get(self._annotators, "annotator", reviewer_id)
            label = check_label(self.get_project(item.project_id), label)
            outcome = _review_outcome(item, label)
            self._items[item_id] = replace(
                item,
                status="labeled",
                label=copy.deepcopy(label),
                review_outcome=outcome,
                resolved_by=reviewer_id,
                resolved_at=now,
            )
            return self.get_item(item_id)

    # ---- rounds
    def create_round(self, project_id: int, strategy: str, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        with self._lock:
            _get(self._projects, "project", project_id)
            number = 1 + max(
                (r.number for r in self._rounds.values() if r.project_id == project_id), default=0
            )
            rid = self._next_id("rounds")
            self._rounds[rid] = Round(rid, project_id, number, strategy, now, None)
            return rid

    def get_round(self, round_id: int) -> Round:
        return _get(self._rounds, "round", round_id)

    def list_rounds(self, project_id: int) -> list[Round]:
        with self._lock:
            return [r for _, r in sorted(self._rounds.items()) if r.project_id == project_id]

    def close_round(self, round_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        with self._lock:
            r = _get(self._rounds, "round", round_id)
            if r.closed is None:
                self._rounds[round_id] = replace(r, closed=now)

    # ---- tasks
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
        rows = _tasks_args(item_ids, priorities, routing_tags, confidences)
        n_copies = _copies_args(item_ids, copies)
        now = _resolve_now(now)
        with self._lock:
            rnd = _get(self._rounds, "round", round_id)
            for iid, *_ in rows:
                item = _get(self._items, "item", iid)
                if item.project_id != rnd.project_id:
                    raise LabelwiseError(
                        f"item {iid} belongs to project {item.project_id}, not to round "
                        f"{round_id}'s project {rnd.project_id}."
                    )
            ids = []
            for (iid, priority, tag, conf), n in zip(rows, n_copies, strict=True):
                for _ in range(n):
                    tid = self._next_id("tasks")
                    self._tasks[tid] = Task(
                        tid, rnd.project_id, round_id, iid, "queued", None, None, priority, tag,
                        now, conf,
                    )  # fmt: skip
                    ids.append(tid)
                item = self._items[iid]
                if item.status == "unlabeled":
                    item = replace(item, status="queued")
                if n > 1:
                    item = replace(item, consensus=n)
                self._items[iid] = item
            return ids

    def get_task(self, task_id: int) -> Task:
        return _get(self._tasks, "task", task_id)

    def list_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        status: str | None = None,
        lease_owner: int | None = None,
        item_id: int | None = None,
    ) -> list[Task]:
        if status is not None:
            _check_choice("status", status, TASK_STATUSES)
        with self._lock:
            return [
                t
                for _, t in sorted(self._tasks.items())
                if t.project_id == project_id
                and (item_id is None or t.item_id == item_id)
                and (round_id is None or t.round_id == round_id)
                and (status is None or t.status == status)
                and (lease_owner is None or t.lease_owner == lease_owner)
            ]

    @staticmethod
    def _claimable(t: Task, now: datetime) -> bool:
        return t.status == "queued" or (
            t.status == "leased" and t.lease_expires is not None and t.lease_expires < now
        )

    def _seen_items(self, annotator_id: int, now: datetime) -> set[int]:
        """Items the annotator answered, skipped or holds a valid lease on: never served to them
        again, so a consensus item's tasks go to different people."""
        seen = {a.item_id for a in self._annotations.values() if a.annotator_id == annotator_id}
        seen.update(
            t.item_id
            for t in self._tasks.values()
            if t.lease_owner == annotator_id
            and (
                t.status == "skipped"
                or (t.status == "leased" and t.lease_expires is not None and t.lease_expires >= now)
            )
        )
        return seen

    def claim_next_task(
        self,
        project_id: int,
        annotator_id: int,
        lease_seconds: float = 300,
        now: datetime | None = None,
        *,
        max_leases: int | None = None,
    ) -> Task | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            skills = set(self.get_annotator(annotator_id).skills)
            self._check_lease_cap(project_id, annotator_id, now, max_leases)
            done_items = self._seen_items(annotator_id, now)
            best: Task | None = None
            best_key: tuple[int, float, int] | None = None
            for t in self._tasks.values():
                if (
                    t.project_id != project_id
                    or not self._claimable(t, now)
                    or t.item_id in done_items
                ):
                    continue
                key = (0 if t.routing_tag in skills else 1, -t.priority, t.id)
                if best_key is None or key < best_key:
                    best, best_key = t, key
            if best is None:
                return None
            claimed = replace(best, status="leased", lease_owner=annotator_id, lease_expires=until)
            self._tasks[best.id] = claimed
            return claimed

    def _check_lease_cap(
        self, project_id: int, annotator_id: int, now: datetime, max_leases: int | None
    ) -> None:
        """:class:`LeaseLimitError` when the annotator holds ``max_leases`` valid leases in the
        project (called under ``self._lock``, like the claim that follows)."""
        if max_leases is None:
            return
        held = [
            t.id
            for _, t in sorted(self._tasks.items())
            if t.project_id == project_id
            and t.lease_owner == annotator_id
            and t.status == "leased"
            and t.lease_expires is not None
            and t.lease_expires >= now
        ]
        if len(held) >= max_leases:
            raise LeaseLimitError(max_leases, held)

    def _held(self, task_id: int, annotator_id: int, now: datetime) -> Task:
        t = _get(self._tasks, "task", task_id)
        if t.status != "leased" or t.lease_owner != annotator_id:
            raise LeaseError(
                f"task {task_id} is {t.status} and not leased by annotator {annotator_id}; "
                "claim a task with claim_next_task first."
            )
        if t.lease_expires is None or t.lease_expires < now:
            raise LeaseError(
                f"the lease of annotator {annotator_id} on task {task_id} expired at "
                f"{t.lease_expires}; claim a new task."
            )
        return t

    def skip_task(self, task_id: int, annotator_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        with self._lock:
            t = self._held(task_id, annotator_id, now)
            self._tasks[task_id] = replace(t, status="skipped")
            item = self._items[t.item_id]
            if item.status == "queued" and item.consensus <= 1:
                self._items[t.item_id] = replace(item, status="skipped")

    def release_task(self, task_id: int, annotator_id: int) -> None:
        with self._lock:
            t = _get(self._tasks, "task", task_id)
            if t.status != "leased" or t.lease_owner != annotator_id:
                raise LeaseError(f"task {task_id} is not leased by annotator {annotator_id}.")
            self._tasks[task_id] = replace(t, status="queued", lease_owner=None, lease_expires=None)

    def queue_depth(self, project_id: int, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        with self._lock:
            return sum(
                1
                for t in self._tasks.values()
                if t.project_id == project_id and self._claimable(t, now)
            )

    def count_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> int:
        wanted = None if statuses is None else set(_check_task_statuses(statuses))
        with self._lock:
            return sum(
                1
                for t in self._tasks.values()
                if t.project_id == project_id
                and (round_id is None or t.round_id == round_id)
                and (wanted is None or t.status in wanted)
            )

    def update_tasks(
        self,
        task_ids: Sequence[int],
        *,
        priorities: Sequence[float],
        routing_tags: Sequence[str | None] | None = None,
        confidences: Sequence[float | None] | None = None,
    ) -> int:
        rows = _tasks_args(task_ids, priorities, routing_tags, confidences)
        n = 0
        with self._lock:
            for tid, priority, tag, conf in rows:
                t = self._tasks.get(tid)
                if t is None or t.status != "queued":
                    continue
                self._tasks[tid] = replace(
                    t,
                    priority=priority,
                    routing_tag=t.routing_tag if routing_tags is None else tag,
                    confidence=t.confidence if confidences is None else conf,
                )
                n += 1
        return n

    def withdraw_tasks(self, task_ids: Sequence[int]) -> list[int]:
        out: list[int] = []
        with self._lock:
            live = Counter(t.item_id for t in self._tasks.values() if t.status != "withdrawn")
            for tid in sorted(set(task_ids)):
                t = self._tasks.get(tid)
                if t is None or t.status != "queued" or live[t.item_id] > 1:
                    continue  # claimed or finished, or one of a consensus item's copies
                self._tasks[tid] = replace(t, status="withdrawn")
                item = self._items[t.item_id]
                if item.status == "queued":
                    self._items[t.item_id] = replace(item, status="unlabeled")
                out.append(tid)
        return out

    # ---- annotations
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
        now = _resolve_now(now)
        with self._lock:
            t = self._held(task_id, annotator_id, now)
            label = check_label(self.get_project(t.project_id), label)
            aid = self._next_id("annotations")
            self._annotations[aid] = Annotation(
                aid,
                task_id,
                t.item_id,
                annotator_id,
                copy.deepcopy(label),
                now,
                duration_s,
                self._guideline_version(t.project_id),
            )
            self._tasks[task_id] = replace(t, status="done")
            item = self._items[t.item_id]
            if resolve and item.consensus <= 1 and item.status not in ("gold", "review"):
                self._items[t.item_id] = replace(item, label=copy.deepcopy(label), status="labeled")
            return aid

    def undo_annotation(
        self,
        annotation_id: int,
        annotator_id: int,
        *,
        lease_seconds: float = 300,
        now: datetime | None = None,
    ) -> Task:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            a = _get(self._annotations, "annotation", annotation_id)
            project_id = self._items[a.item_id].project_id
            latest = max(
                (
                    x.id
                    for x in self._annotations.values()
                    if x.annotator_id == annotator_id
                    and self._items[x.item_id].project_id == project_id
                ),
                default=None,
            )
            task = None if a.task_id is None else self._tasks.get(a.task_id)
            closed = None if task is None else self._rounds[task.round_id].closed
            task = _check_undo(a, annotator_id, latest, task, closed)
            del self._annotations[annotation_id]
            item = self._items[a.item_id]
            if item.status == "labeled" and item.consensus <= 1:
                rest = [x for _, x in sorted(self._annotations.items()) if x.item_id == item.id]
                label = copy.deepcopy(rest[-1].label) if rest else None
                status = "labeled" if rest else "queued"
                self._items[item.id] = replace(item, label=label, status=status)
            reopened = replace(task, status="leased", lease_owner=annotator_id, lease_expires=until)
            self._tasks[task.id] = reopened
            return reopened

    def _guideline_version(self, project_id: int) -> int | None:
        return max(
            (g.version for g in self._guidelines.values() if g.project_id == project_id),
            default=None,
        )

    def revise_annotation(
        self,
        annotation_id: int,
        annotator_id: int,
        label: Any,
        *,
        duration_s: float | None = None,
        now: datetime | None = None,
    ) -> int:
        now = _resolve_now(now)
        with self._lock:
            a = _get(self._annotations, "annotation", annotation_id)
            task = None if a.task_id is None else self._tasks.get(a.task_id)
            closed = None if task is None else self._rounds[task.round_id].closed
            task = _check_revise(a, annotator_id, task, closed)
            label = check_label(self.get_project(task.project_id), label)
            del self._annotations[annotation_id]
            aid = self._next_id("annotations")
            self._annotations[aid] = Annotation(
                aid,
                task.id,
                a.item_id,
                annotator_id,
                copy.deepcopy(label),
                now,
                duration_s,
                self._guideline_version(task.project_id),
            )
            item = self._items[a.item_id]
            if item.status == "labeled" and item.consensus <= 1:
                self._items[item.id] = replace(item, label=copy.deepcopy(label))
            return aid

    def get_annotation(self, annotation_id: int) -> Annotation:
        return copy.deepcopy(_get(self._annotations, "annotation", annotation_id))

    def list_annotations(
        self,
        project_id: int,
        *,
        item_id: int | None = None,
        annotator_id: int | None = None,
        since: datetime | None = None,
    ) -> list[Annotation]:
        since = None if since is None else _resolve_now(since)
        with self._lock:
            return [
                copy.deepcopy(a)
                for _, a in sorted(self._annotations.items())
                if self._items[a.item_id].project_id == project_id
                and (item_id is None or a.item_id == item_id)
                and (annotator_id is None or a.annotator_id == annotator_id)
                and (since is None or a.created >= since)
            ]

    def count_annotations(self, project_id: int, annotator_id: int | None = None) -> int:
        with self._lock:
            items = self._items
            return sum(
                1
                for a in self._annotations.values()
                if items[a.item_id].project_id == project_id
                and (annotator_id is None or a.annotator_id == annotator_id)
            )

    # ---- model versions
    # ---- guidelines
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
        now = _resolve_now(now)
        with self._lock:
            fields = _guidelines_fields(self.get_project(project_id), body, classes, hard_cases)
            if author_id is not None:
                self.get_annotator(author_id)
            version = (self._guideline_version(project_id) or 0) + 1
            gid = self._next_id("guidelines")
            self._guidelines[gid] = Guidelines(
                gid,
                project_id,
                version,
                fields["body"],
                copy.deepcopy(fields["classes"]),
                fields["hard_cases"],
                author_id,
                now,
            )
            return gid

    def get_guidelines(self, guidelines_id: int) -> Guidelines:
        return copy.deepcopy(_get(self._guidelines, "guidelines", guidelines_id))

    def find_guidelines(self, project_id: int, version: int | None = None) -> Guidelines | None:
        with self._lock:
            versions = [g for g in self._guidelines.values() if g.project_id == project_id]
            if version is not None:
                versions = [g for g in versions if g.version == version]
            best = max(versions, key=lambda g: g.version, default=None)
            return copy.deepcopy(best)

    def list_guidelines(self, project_id: int) -> list[Guidelines]:
        with self._lock:
            return [
                copy.deepcopy(g)
                for g in sorted(self._guidelines.values(), key=lambda g: g.version)
                if g.project_id == project_id
            ]

    # ---- flags
    def create_flag(
        self,
        item_id: int,
        annotator_id: int,
        reason: str,
        *,
        task_id: int | None = None,
        now: datetime | None = None,
    ) -> int:
        now = _resolve_now(now)
        reason = _check_reason(reason)
        with self._lock:
            item = self.get_item(item_id)
            self.get_annotator(annotator_id)
            if task_id is not None and self.get_task(task_id).item_id != item_id:
                raise LabelwiseError(f"task {task_id} is not a task of item {item_id}.")
            fid = self._next_id("flags")
            self._flags[fid] = Flag(
                fid, item.project_id, item_id, task_id, annotator_id, reason, now
            )
            return fid

    def get_flag(self, flag_id: int) -> Flag:
        return _get(self._flags, "flag", flag_id)

    def list_flags(self, project_id: int, *, item_id: int | None = None) -> list[Flag]:
        with self._lock:
            return [
                f
                for _, f in sorted(self._flags.items())
                if f.project_id == project_id and (item_id is None or f.item_id == item_id)
            ]

    def create_model_version(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        calibration: Mapping[str, Any] | None = None,
        artifact_path: str | None = None,
        now: datetime | None = None,
    ) -> int:
        now = _resolve_now(now)
        with self._lock:
            _get(self._projects, "project", project_id)
            if round_id is not None:
                _get(self._rounds, "round", round_id)
            mid = self._next_id("model_versions")
            self._model_versions[mid] = ModelVersion(
                mid,
                project_id,
                round_id,
                copy.deepcopy(dict(metrics or {})),
                copy.deepcopy(dict(calibration or {})),
                artifact_path,
                now,
            )
            return mid

    def get_model_version(self, model_version_id: int) -> ModelVersion:
        return copy.deepcopy(_get(self._model_versions, "model version", model_version_id))

    def list_model_versions(self, project_id: int) -> list[ModelVersion]:
        with self._lock:
            return [
                copy.deepcopy(m)
                for _, m in sorted(self._model_versions.items())
                if m.project_id == project_id
            ]

    # ---- dataset versions
    def create_dataset_version(self, project_id: int, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        with self._lock:
            _get(self._projects, "project", project_id)
            rows = sorted(
                (it.external_id, copy.deepcopy(it.label))
                for it in self._project_items(project_id, "labeled")
            )
            digest = dataset_hash(rows)
            for v in self._dataset_versions.values():
                if v.project_id == project_id and v.content_hash == digest:
                    return v.id
            did = self._next_id("dataset_versions")
            self._dataset_versions[did] = DatasetVersion(did, project_id, digest, len(rows), now)
            self._dataset_rows[did] = rows
            return did

    def get_dataset_version(self, dataset_version_id: int) -> DatasetVersion:
        return _get(self._dataset_versions, "dataset version", dataset_version_id)

    def list_dataset_versions(self, project_id: int) -> list[DatasetVersion]:
        with self._lock:
            return [
                v for _, v in sorted(self._dataset_versions.items()) if v.project_id == project_id
            ]

    def list_dataset_rows(self, dataset_version_id: int) -> list[tuple[str, Any]]:
        with self._lock:
            _get(self._dataset_versions, "dataset version", dataset_version_id)
            return copy.deepcopy(self._dataset_rows[dataset_version_id])

    # ---- model sources (issue 11)
    def set_model_source(
        self,
        project_id: int,
        source: str,
        endpoint: str | None = None,
        now: datetime | None = None,
    ) -> ModelSource:
        now = _resolve_now(now)
        endpoint = _check_model_source(source, endpoint)
        with self._lock:
            _get(self._projects, "project", project_id)
            ms = ModelSource(project_id, source, endpoint, now)
            self._model_sources[project_id] = ms
            return ms

    def get_model_source(self, project_id: int) -> ModelSource:
        with self._lock:
            _get(self._projects, "project", project_id)
            return self._model_sources.get(
                project_id, ModelSource(project_id, "builtin", None, None)
            )

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
        now = _resolve_now(now)
        _check_model_upload(kind, origin, n_rows, n_cols)
        with self._lock:
            _get(self._projects, "project", project_id)
            if any(u.project_id == project_id and u.kind == kind and u.version == version
                   for u in self._model_uploads.values()):  # fmt: skip
                raise AlreadyExistsError(
                    f"project {project_id} already has {kind} version {version}."
                )
            uid = self._next_id("model_uploads")
            self._model_uploads[uid] = ModelUpload(
                uid, project_id, kind, int(version), origin, str(path), int(n_rows), int(n_cols),
                tuple(str(c) for c in classes), model_version, now,
            )  # fmt: skip
            return uid

    def get_model_upload(self, upload_id: int) -> ModelUpload:
        with self._lock:
            return _get(self._model_uploads, "model upload", upload_id)

    def list_model_uploads(self, project_id: int, kind: str | None = None) -> list[ModelUpload]:
        with self._lock:
            ups = [u for u in self._model_uploads.values() if u.project_id == project_id
                   and (kind is None or u.kind == kind)]  # fmt: skip
        return sorted(ups, key=lambda u: (u.kind, u.version))

    # ---- jobs
    def create_job(
        self,
        kind: str,
        project_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        _check_choice("kind", kind, JOB_KINDS)
        now = _resolve_now(now)
        with self._lock:
            if project_id is not None:
                _get(self._projects, "project", project_id)
            jid = self._next_id("jobs")
            self._jobs[jid] = Job(
                jid, kind, project_id, "queued", copy.deepcopy(dict(payload or {})),
                0, None, None, None, now, now,
            )  # fmt: skip
            return jid

    def ensure_job(
        self,
        kind: str,
        project_id: int,
        payload: Mapping[str, Any] | None = None,
        *,
        statuses: Sequence[str] = ("queued",),
        now: datetime | None = None,
    ) -> tuple[int, bool]:
        _check_choice("kind", kind, JOB_KINDS)
        blocking = _check_statuses(statuses)
        with self._lock:
            _get(self._projects, "project", project_id)
            for jid, j in sorted(self._jobs.items()):
                if j.project_id == project_id and j.kind == kind and j.status in blocking:
                    return jid, False
            return self.create_job(kind, project_id, payload, now=now), True

    def get_job(self, job_id: int) -> Job:
        return copy.deepcopy(_get(self._jobs, "job", job_id))

    def list_jobs(self, project_id: int | None = None, status: str | None = None) -> list[Job]:
        if status is not None:
            _check_choice("status", status, JOB_STATUSES)
        with self._lock:
            return [
                copy.deepcopy(j)
                for _, j in sorted(self._jobs.items())
                if (project_id is None or j.project_id == project_id)
                and (status is None or j.status == status)
            ]

    def claim_next_job(
        self,
        worker_id: str,
        lease_seconds: float = 600,
        now: datetime | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Job | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            for _, j in sorted(self._jobs.items()):
                if kinds is not None and j.kind not in kinds:
                    continue
                expired = (
                    j.status == "running" and j.leased_until is not None and j.leased_until < now
                )
                waiting = j.not_before is not None and j.not_before > now  # a retry's backoff
                if (j.status == "queued" and not waiting) or expired:
                    claimed = replace(
                        j,
                        status="running",
                        worker_id=worker_id,
                        leased_until=until,
                        attempts=j.attempts + 1,
                        updated=now,
                    )
                    self._jobs[j.id] = claimed
                    return copy.deepcopy(claimed)
            return None

    def finish_job(
        self,
        job_id: int,
        worker_id: str,
        error: str | None = None,
        now: datetime | None = None,
    ) -> None:
        now = _resolve_now(now)
        with self._lock:
            j = _get(self._jobs, "job", job_id)
            if j.status != "running" or j.worker_id != worker_id:
                raise LeaseError(
                    f"job {job_id} is {j.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_job first."
                )
            self._jobs[job_id] = replace(
                j,
                status="failed" if error is not None else "done",
                error=error,
                leased_until=None,
                updated=now,
            )

    def _running(self, job_id: int, worker_id: str) -> Job:
        j = _get(self._jobs, "job", job_id)
        if j.status != "running" or j.worker_id != worker_id:
            raise LeaseError(
                f"job {job_id} is {j.status} and not held by worker {worker_id!r}; "
                "claim it with claim_next_job first."
            )
        return j

    def renew_job_lease(
        self,
        job_id: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> Job:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            j = replace(self._running(job_id, worker_id), leased_until=until, updated=now)
            self._jobs[job_id] = j
            return copy.deepcopy(j)

    def retry_job(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        now: datetime | None = None,
        *,
        not_before: datetime | None = None,
    ) -> None:
        now = _resolve_now(now)
        not_before = None if not_before is None else _resolve_now(not_before)
        with self._lock:
            j = _get(self._jobs, "job", job_id)
            if j.status != "running" or j.worker_id != worker_id:
                raise LeaseError(
                    f"job {job_id} is {j.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_job first."
                )
            self._jobs[job_id] = replace(
                j, status="queued", worker_id=None, leased_until=None, error=error, updated=now,
                not_before=not_before,
            )  # fmt: skip

    # ---- webhooks (issue 11)
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
        fields = _webhook_update({"url": url, "events": events, "secret": secret})
        now = _resolve_now(now)
        with self._lock:
            _get(self._projects, "project", project_id)
            wid = self._next_id("webhooks")
            self._webhooks[wid] = Webhook(
                wid, project_id, fields["url"], fields["events"], secret, bool(active), now, now
            )
            return wid

    def get_webhook(self, webhook_id: int) -> Webhook:
        with self._lock:
            return _get(self._webhooks, "webhook", webhook_id)

    def list_webhooks(self, project_id: int | None = None) -> list[Webhook]:
        with self._lock:
            return [
                w
                for _, w in sorted(self._webhooks.items())
                if project_id is None or w.project_id == project_id
            ]

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
        fields = _webhook_update({"url": url, "events": events, "secret": secret, "active": active})
        now = _resolve_now(now)
        with self._lock:
            w = replace(self.get_webhook(webhook_id), **fields, updated=now)
            self._webhooks[webhook_id] = w
            return w

    def delete_webhook(self, webhook_id: int) -> None:
        with self._lock:
            self.get_webhook(webhook_id)
            del self._webhooks[webhook_id]
            for did in [k for k, d in self._deliveries.items() if d.webhook_id == webhook_id]:
                del self._deliveries[did]

    def create_deliveries(
        self,
        project_id: int,
        event: str,
        event_id: str,
        body: Mapping[str, Any],
        now: datetime | None = None,
    ) -> list[int]:
        _check_choice("event", event, WEBHOOK_EVENTS)
        now = _resolve_now(now)
        with self._lock:
            _get(self._projects, "project", project_id)
            sent = {(d.webhook_id, d.event_id) for d in self._deliveries.values()}
            out = []
            for w in self.list_webhooks(project_id):
                if not w.active or event not in w.events or (w.id, event_id) in sent:
                    continue
                did = self._next_id("deliveries")
                self._deliveries[did] = Delivery(
                    did, w.id, project_id, event, event_id, copy.deepcopy(dict(body)),
                    "pending", 0, now, None, None, None, [], now, now,
                )  # fmt: skip
                out.append(did)
            return out

    def get_delivery(self, delivery_id: int) -> Delivery:
        with self._lock:
            return copy.deepcopy(_get(self._deliveries, "delivery", delivery_id))

    def list_deliveries(
        self,
        webhook_id: int | None = None,
        *,
        project_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Delivery]:
        if status is not None:
            _check_choice("status", status, DELIVERY_STATUSES)
        with self._lock:
            out = [
                copy.deepcopy(d)
                for _, d in sorted(self._deliveries.items(), reverse=True)
                if (webhook_id is None or d.webhook_id == webhook_id)
                and (project_id is None or d.project_id == project_id)
                and (status is None or d.status == status)
            ]
        return out if limit is None else out[: max(0, int(limit))]

    def claim_next_delivery(
        self, worker_id: str, lease_seconds: float = 60, now: datetime | None = None
    ) -> Delivery | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        with self._lock:
            due = [
                d
                for d in self._deliveries.values()
                if d.status in ("pending", "delivering")
                and d.next_attempt_at is not None
                and d.next_attempt_at <= now
            ]
            if not due:
                return None
            d = min(due, key=lambda d: (d.next_attempt_at, d.id))
            claimed = replace(
                d, status="delivering", worker_id=worker_id, attempts=d.attempts + 1,
                next_attempt_at=until, updated=now,
            )  # fmt: skip
            self._deliveries[d.id] = claimed
            return copy.deepcopy(claimed)

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
        now = _resolve_now(now)
        retry_at = None if retry_at is None else _resolve_now(retry_at)
        with self._lock:
            d = _get(self._deliveries, "delivery", delivery_id)
            if d.status != "delivering" or d.worker_id != worker_id:
                raise LeaseError(
                    f"delivery {delivery_id} is {d.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_delivery first."
                )
            status, history = _attempt_record(d, status_code, error, retry_at, now)
            d = replace(
                d, status=status, worker_id=None, next_attempt_at=retry_at,
                last_status_code=status_code, last_error=error, history=history, updated=now,
            )  # fmt: skip
            self._deliveries[delivery_id] = d
            return copy.deepcopy(d)

    def requeue_delivery(self, delivery_id: int, now: datetime | None = None) -> Delivery:
        now = _resolve_now(now)
        with self._lock:
            d = _get(self._deliveries, "delivery", delivery_id)
            if d.status == "delivering":
                raise LeaseError(
                    f"delivery {delivery_id} is being sent by worker {d.worker_id!r}; "
                    "wait for the attempt to finish."
                )
            d = replace(d, status="pending", attempts=0, next_attempt_at=now, updated=now)
            self._deliveries[delivery_id] = d
            return copy.deepcopy(d)

    # ---- resumable imports (issue 12)
    def start_import_run(
        self,
        project_id: int,
        file_sha256: str,
        options: Mapping[str, Any],
        n_rows: int,
        now: datetime | None = None,
    ) -> tuple[ImportRun, bool]:
        now = _resolve_now(now)
        with self._lock:
            self.get_project(project_id)
            run = self.find_import_run(project_id, file_sha256, options)
            if run is not None and run.status == "running":
                return run, False
            rid = self._next_id("import_runs")
            run = ImportRun(
                id=rid, project_id=project_id, file_sha256=file_sha256,
                options=copy.deepcopy(dict(options)), n_rows=n_rows, rows_committed=0,
                status="running", n_created=0, n_duplicates=0, n_changed=0, n_updated=0,
                changed_ids=(), created=now, updated=now,
            )  # fmt: skip
            self._import_runs[rid] = run
            return copy.deepcopy(run), True

    def get_import_run(self, import_run_id: int) -> ImportRun:
        with self._lock:
            return copy.deepcopy(_get(self._import_runs, "import run", import_run_id))

    def find_import_run(
        self, project_id: int, file_sha256: str, options: Mapping[str, Any]
    ) -> ImportRun | None:
        with self._lock:
            runs = [r for r in self._import_runs.values() if r.project_id == project_id
                    and r.file_sha256 == file_sha256 and r.options == dict(options)]  # fmt: skip
            return copy.deepcopy(max(runs, key=lambda r: r.id)) if runs else None

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
        _check_batch_on_duplicate(on_duplicate)
        now = _resolve_now(now)
        with self._lock:
            run = _get(self._import_runs, "import run", import_run_id)
            _check_import_batch(run, start_row, n_rows)
            w = self.write_items(run.project_id, items, on_duplicate=on_duplicate)
            merged = _merge_written(run, w)
            run = replace(
                run, rows_committed=start_row + n_rows, updated=now,
                **{**merged, "changed_ids": tuple(merged["changed_ids"])},
            )  # fmt: skip
            self._import_runs[import_run_id] = run
            return copy.deepcopy(run)

    def finish_import_run(self, import_run_id: int, now: datetime | None = None) -> ImportRun:
        now = _resolve_now(now)
        with self._lock:
            run = _get(self._import_runs, "import run", import_run_id)
            if run.status == "running" and run.rows_committed != run.n_rows:
                raise ImportConflictError(
                    f"import run {run.id} has {run.rows_committed:,} of {run.n_rows:,} rows "
                    "committed; write the rest before finishing it."
                )
            run = replace(run, status="done", updated=now)
            self._import_runs[import_run_id] = run
            return copy.deepcopy(run)
