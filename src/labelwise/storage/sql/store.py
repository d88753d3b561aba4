"""SQL store on SQLAlchemy 2 Core: SQLite (embedded default) and PostgreSQL.

Dialect differences live in a few private methods, like optuna's ``RDBStorage``:

- :meth:`SqlStore._configure` sets SQLite up: WAL journal, ``foreign_keys=ON``, a busy timeout,
  and the driver's own transaction handling switched off so writes can start with
  ``BEGIN IMMEDIATE`` (one writer at a time, no lock upgrades that deadlock).
- :meth:`SqlStore._insert` builds ``INSERT ... ON CONFLICT DO NOTHING`` for either dialect.
- :meth:`SqlStore._lock_first` picks one row to claim: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  on SQLite the ``BEGIN IMMEDIATE`` write transaction already excludes other writers.

The schema is created by Alembic migrations (:meth:`SqlStore.upgrade`), never by ``create_all``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from labelwise.errors import LabelwiseError
from labelwise.storage.base import (
    DELIVERY_STATUSES,
    ITEM_STATUSES,
    JOB_KINDS,
    JOB_STATUSES,
    MAX_REPORTED_IDS,
    PROJECT_FIELDS,
    PROJECT_ROLES,
    QUALITY_FIELDS,
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
    import_options_key,
    item_differs,
    updated_fields,
    utcnow,
)
from labelwise.storage.sql import models as m
from labelwise.strategies.registry import DEFAULT_STRATEGY

__all__ = ["MIGRATIONS_DIR", "SqlStore", "alembic_config", "normalize_database_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_WRITE = "labelwise_write"
_CHUNK = 1000  # ids per IN (...) list; far below SQLite's bound-parameter limit
_ID_CHUNK = 65_536  # ids fetched per round trip by list_item_ids


def normalize_database_url(url: str) -> str:
    """Map the URLs people paste (``postgres://``, ``postgresql://``) to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def alembic_config(url: str | sa.URL | None = None) -> Any:
    """An Alembic ``Config`` pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        if isinstance(url, sa.URL):
            url = url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return cfg


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _batched(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(it)
    while batch := list(islice(it, n)):
        yield batch


# ---- row -> dataclass


def _item_row(project_id: int, it: NewItem, label: Any, now: datetime) -> dict[str, Any]:
    gold, label = (label, None) if it.gold else (None, label)
    return {
        "project_id": project_id,
        "external_id": str(it.external_id),
        "payload": dict(it.payload),
        "meta": dict(it.metadata),
        "features_path": it.features_path,
        "features_row": it.features_row,
        "status": "gold" if it.gold else "unlabeled" if label is None else "labeled",
        "label": label,
        "gold_label": gold,
        "created": now,
    }


_PG_JSON_COLUMNS = ("payload", "meta", "label", "gold_label")
_PG_INSERT_ITEMS = sa.text(
    """
    INSERT INTO items (project_id, external_id, payload, meta, features_path, features_row,
                       status, label, gold_label, created)
    SELECT :project_id, u.external_id, u.payload::jsonb, u.meta::jsonb, u.features_path,
           u.features_row, u.status, u.label::jsonb, u.gold_label::jsonb, :created
    FROM unnest(CAST(:external_id AS text[]), CAST(:payload AS text[]), CAST(:meta AS text[]),
                CAST(:features_path AS text[]), CAST(:features_row AS bigint[]),
                CAST(:status AS text[]), CAST(:label AS text[]), CAST(:gold_label AS text[]))
         AS u(external_id, payload, meta, features_path, features_row, status, label,
              gold_label)
    ON CONFLICT (project_id, external_id) DO NOTHING
    RETURNING external_id
    """
)


_SQLITE_INSERT_ITEMS = (
    "INSERT INTO items (project_id, external_id, payload, meta, features_path, features_row, "
    "status, label, gold_label, created) VALUES {values} "
    "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING external_id"
)
#: rows per SQLite insert statement: 10 parameters each, below SQLite's 32,766 per statement
_SQLITE_INSERT_ROWS = 2000


def _pg_item_arrays(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Column arrays for :data:`_PG_INSERT_ITEMS`. JSON values are serialised like the JSON
    column type does (``None`` is the JSON ``null``, as SQLAlchemy's default stores it)."""
    out: dict[str, Any] = {
        "project_id": rows[0]["project_id"],
        "created": m.UTCDateTime().process_bind_param(rows[0]["created"], None),
    }
    for col in ("external_id", "features_path", "features_row", "status"):
        out[col] = [r[col] for r in rows]
    for col in _PG_JSON_COLUMNS:
        out[col] = [json.dumps(r[col]) for r in rows]
    return out


def _item_fields(columns: dict[str, Any]) -> dict[str, Any]:
    """Column names (``meta``) to :class:`Item` field names (``metadata``)."""
    return {("metadata" if k == "meta" else k): v for k, v in columns.items()}


def _project(r: sa.Row[Any]) -> Project:
    return Project(
        id=r.id,
        name=r.name,
        task_type=r.task_type,
        classes=tuple(r.classes),
        strategy=r.strategy,
        strategy_params=r.strategy_params,
        cold_start_strategy=r.cold_start_strategy,
        batch_size=r.batch_size,
        stopping=r.stopping,
        label_cost=r.label_cost,
        show_predictions=bool(r.show_predictions),
        created=r.created,
        items_revision=r.items_revision,
        **{k: getattr(r, k) for k in QUALITY_FIELDS},
    )


def _item(r: sa.Row[Any]) -> Item:
    return Item(
        id=r.id,
        project_id=r.project_id,
        external_id=r.external_id,
        payload=r.payload,
        metadata=r.meta,
        features_path=r.features_path,
        features_row=r.features_row,
        status=r.status,
        label=r.label,
        created=r.created,
        consensus=r.consensus,
        gold_label=r.gold_label,
        review_reason=r.review_reason,
        review_outcome=r.review_outcome,
        resolved_by=r.resolved_by,
        resolved_at=r.resolved_at,
    )


def _round(r: sa.Row[Any]) -> Round:
    return Round(r.id, r.project_id, r.number, r.strategy, r.created, r.closed)


def _task(r: sa.Row[Any]) -> Task:
    return Task(
        r.id, r.project_id, r.round_id, r.item_id, r.status, r.lease_owner, r.lease_expires,
        r.priority, r.routing_tag, r.created, r.confidence,
    )  # fmt: skip


def _annotation(r: sa.Row[Any]) -> Annotation:
    return Annotation(
        r.id, r.task_id, r.item_id, r.annotator_id, r.label, r.created, r.duration_s,
        r.guideline_version,
    )  # fmt: skip


def _guidelines(r: sa.Row[Any]) -> Guidelines:
    return Guidelines(
        r.id, r.project_id, r.version, r.body, r.classes, r.hard_cases, r.author_id, r.created
    )


def _flag(r: sa.Row[Any]) -> Flag:
    return Flag(r.id, r.project_id, r.item_id, r.task_id, r.annotator_id, r.reason, r.created)


def _annotator_of(r: sa.Row[Any], roles: dict[int, str]) -> Annotator:
    return Annotator(
        r.id, r.name, r.token_hash, r.role, tuple(r.skills), tuple(roles), r.created, roles,
        r.token_expires, r.token_revoked,
    )  # fmt: skip


def _model_version(r: sa.Row[Any]) -> ModelVersion:
    return ModelVersion(
        r.id, r.project_id, r.round_id, r.metrics, r.calibration, r.artifact_path, r.created
    )


def _dataset_version(r: sa.Row[Any]) -> DatasetVersion:
    return DatasetVersion(r.id, r.project_id, r.content_hash, r.n_labels, r.created)


def _job(r: sa.Row[Any]) -> Job:
    return Job(
        r.id, r.kind, r.project_id, r.status, r.payload, r.attempts, r.worker_id,
        r.leased_until, r.error, r.created, r.updated, r.not_before,
    )  # fmt: skip


def _model_upload(r: sa.Row[Any]) -> ModelUpload:  # model sources (issue 11)
    return ModelUpload(
        r.id, r.project_id, r.kind, r.version, r.origin, r.path, r.n_rows, r.n_cols,
        tuple(r.classes), r.model_version, r.created,
    )  # fmt: skip


def _import_run(r: sa.Row[Any]) -> ImportRun:  # resumable imports (issue 12)
    fields = {k: v for k, v in r._mapping.items() if k != "options_key"}
    return ImportRun(**{**fields, "changed_ids": tuple(r.changed_ids)})


def _webhook(r: sa.Row[Any]) -> Webhook:  # webhooks (issue 11)
    return Webhook(
        r.id, r.project_id, r.url, tuple(r.events), r.secret, bool(r.active), r.created, r.updated
    )


def _delivery(r: sa.Row[Any]) -> Delivery:
    return Delivery(
        r.id, r.webhook_id, r.project_id, r.event, r.event_id, r.body, r.status, r.attempts,
        r.next_attempt_at, r.worker_id, r.last_status_code, r.last_error, list(r.history),
        r.created, r.updated,
    )  # fmt: skip


class SqlStore(BaseStore):
    """The store on a SQL database reached through an SQLAlchemy URL.

    Parameters
    ----------
    url : str
        ``sqlite:///path/to/labelwise.db`` (the parent folder is created) or
        ``postgresql+psycopg://user@host:5432/db`` (``postgres://`` and ``postgresql://`` are
        mapped to psycopg 3).
    connect_args : dict, optional
        Passed to the DB-API ``connect``; e.g. ``{"options": "-csearch_path=myschema"}`` to
        keep a PostgreSQL store in its own schema.
    upgrade : bool, default=False
        Run the Alembic migrations to ``head`` on construction (same as calling
        :meth:`upgrade`). Production deployments run ``labelwise db upgrade`` instead.
    busy_timeout : float, default=30.0
        Seconds a SQLite connection waits for the write lock before raising.
    pool_size : int, default=40
        Connections kept open once opened (SQLite file and PostgreSQL). The default matches
        the API's 40 request threads: a connection beyond ``pool_size`` is closed when it is
        returned, and reopening one per request (a new PostgreSQL backend each time) cost more
        than the requests themselves under load. PostgreSQL allows 10 more on demand.
    echo : bool, default=False
        Log every SQL statement.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_args: Mapping[str, Any] | None = None,
        upgrade: bool = False,
        busy_timeout: float = 30.0,
        pool_size: int = 40,
        echo: bool = False,
    ) -> None:
        self.url = sa.make_url(normalize_database_url(str(url)))
        self.dialect = self.url.get_backend_name()
        self.busy_timeout = busy_timeout
        args = dict(connect_args or {})
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size, pool_timeout=60)
            else:
                kwargs["poolclass"] = sa.StaticPool  # one shared in-memory database
            args.setdefault("check_same_thread", False)
            args.setdefault("timeout", busy_timeout)
        elif self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=10, pool_pre_ping=True)
        else:
            raise LabelwiseError(
                f"unsupported database {self.dialect!r} in {self.url!r}; use sqlite:///file.db "
                "or postgresql+psycopg://user@host/db."
            )
        self._engine = sa.create_engine(self.url, connect_args=args, **kwargs)
        self._configure(self._engine)
        self._write_engine = self._engine.execution_options(**{_WRITE: True})
        # PostgreSQL reads run in autocommit: no BEGIN / ROLLBACK round trips around each one
        # (a read is one statement, or a few that need no common snapshot). SQLite reads keep
        # their BEGIN: a WAL read transaction is local and free.
        self._read_engine = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else self._engine
        )
        if upgrade:
            self.upgrade()

    # ---- dialect branches
    def _configure(self, engine: sa.Engine) -> None:
        if self.dialect != "sqlite":
            return
        busy_ms = int(self.busy_timeout * 1000)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get(_WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def _insert(self, table: sa.Table) -> Any:
        """``INSERT`` for this dialect, so callers can add ``on_conflict_do_nothing``."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _insert_items(self, conn: sa.Connection, rows: list[dict]) -> set[str]:
        """Bulk ``INSERT ... ON CONFLICT DO NOTHING RETURNING external_id``: the ids inserted.

        The conflict check is the unique index's own probe, one per row, whatever the planner
        thinks of the table: a first import into an empty table costs the same per row at the
        millionth row as at the first. (It used to count the batch's existing ids with a
        ``SELECT ... IN (...)`` first; on PostgreSQL psycopg prepares that statement after five
        runs, and the generic plan made while the table was still empty scanned every row
        imported so far: quadratic.)

        PostgreSQL gets the whole batch as one statement over ``unnest`` of one array per
        column: ``RETURNING`` through executemany pages (SQLAlchemy's "insertmanyvalues") was
        three times slower than the plain pipelined executemany, this is faster than both.
        SQLite runs the executemany pages in-process, where they cost little.
        """
        if not rows:
            return set()
        if self.dialect == "postgresql":
            return set(conn.execute(_PG_INSERT_ITEMS, _pg_item_arrays(rows)).scalars())
        # SQLite: multi-row VALUES with the values serialised here; SQLAlchemy's per-row
        # bind processing (JSON, datetimes) cost more than the inserts themselves
        created = m.items.c.created.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        now = created(rows[0]["created"])
        inserted: set[str] = set()
        for chunk in _chunks(rows, _SQLITE_INSERT_ROWS):
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            params: list[Any] = []
            for r in chunk:
                label, gold = r["label"], r["gold_label"]
                params += (
                    r["project_id"], r["external_id"], json.dumps(r["payload"]),
                    json.dumps(r["meta"]), r["features_path"], r["features_row"], r["status"],
                    "null" if label is None else json.dumps(label),
                    "null" if gold is None else json.dumps(gold), now,
                )  # fmt: skip
            cur = conn.exec_driver_sql(_SQLITE_INSERT_ITEMS.format(values=values), tuple(params))
            inserted.update(x for (x,) in cur)
        return inserted

    def _items_by_external_id(
        self, conn: sa.Connection, project_id: int, external_ids: Sequence[str]
    ) -> dict[str, Item]:
        """The stored items of these external ids (one unique-index probe per id)."""
        out: dict[str, Item] = {}
        for chunk in _chunks(list(external_ids)):
            stmt = sa.select(m.items).where(
                m.items.c.project_id == project_id, m.items.c.external_id.in_(chunk)
            )
            out.update((r.external_id, _item(r)) for r in conn.execute(stmt))
        return out

    def _update_items(self, conn: sa.Connection, updates: dict[int, dict[str, Any]]) -> None:
        """One executemany per set of updated columns (rows with and without a label)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for iid, fields in updates.items():
            keys = tuple(sorted(fields))
            groups.setdefault(keys, []).append({"_id": iid, **{f"v_{k}": fields[k] for k in keys}})
        for keys, params in groups.items():
            stmt = (
                sa.update(m.items)
                .where(m.items.c.id == sa.bindparam("_id"))
                .values({k: sa.bindparam(f"v_{k}") for k in keys})
            )
            conn.execute(stmt, params)

    def _lock_first(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        """Limit to one row, skipping rows other transactions hold (PostgreSQL)."""
        stmt = stmt.limit(1)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    # ---- plumbing
    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._read_engine.connect() as conn:
            yield conn

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to ``revision`` (idempotent)."""
        from alembic import command

        cfg = alembic_config(self.url)
        with self._write() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (``None`` before the first upgrade)."""
        from alembic.runtime.migration import MigrationContext

        with self._read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    @staticmethod
    def _one(conn: sa.Connection, stmt: Any, entity: str, id: object) -> sa.Row[Any]:
        row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(entity, id)
        return row

    def _get_project(
        self, conn: sa.Connection, project_id: int, lock: str | None = None
    ) -> Project:
        """The project; ``lock`` locks its row until commit on PostgreSQL (SQLite's ``BEGIN
        IMMEDIATE`` already excludes other writers): ``"update"`` to change its classes,
        ``"key share"`` to write a label checked against them. The two conflict, so a label
        is either written before a classes change looks for labels in use, or checked against
        the new classes; key-share locks of concurrent answers do not wait for each other, nor
        for other changes to the project."""
        stmt = sa.select(m.projects).where(m.projects.c.id == project_id)
        if lock is not None and self.dialect == "postgresql":
            share = lock == "key share"
            stmt = stmt.with_for_update(read=share, key_share=share)
        return _project(self._one(conn, stmt, "project", project_id))

    @staticmethod
    def _labels_used(conn: sa.Connection, project_id: int) -> Iterator[Any]:
        """Every stored label, gold label and answer of the project (``None`` included)."""
        it, a = m.items, m.annotations
        mine = it.c.project_id == project_id
        labelled = sa.or_(it.c.label.is_not(None), it.c.gold_label.is_not(None))
        for row in conn.execute(sa.select(it.c.label, it.c.gold_label).where(mine, labelled)):
            yield from row
        answers = sa.select(a.c.label).join(it, it.c.id == a.c.item_id).where(mine)
        yield from conn.execute(answers).scalars()

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
        try:
            with self._write() as conn:
                stmt = (
                    sa.insert(m.projects).values(created=utcnow(), **f).returning(m.projects.c.id)
                )
                return conn.execute(stmt).scalar_one()
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(
                f"project {name!r} already exists; pick another name."
            ) from None

    def get_project(self, project_id: int) -> Project:
        with self._read() as conn:
            return self._get_project(conn, project_id)

    def find_project(self, name: str) -> Project | None:
        with self._read() as conn:
            r = conn.execute(sa.select(m.projects).where(m.projects.c.name == name)).first()
        return None if r is None else _project(r)

    def list_projects(self) -> list[Project]:
        with self._read() as conn:
            return [_project(r) for r in conn.execute(sa.select(m.projects).order_by("id"))]

    def update_project(self, project_id: int, **fields: Any) -> Project:
        _check_update(fields)
        if not fields:  # nothing to change: an empty UPDATE ... SET is invalid SQL
            return self.get_project(project_id)
        with self._write() as conn:
            p = self._get_project(conn, project_id, "update" if "classes" in fields else None)
            if "classes" in fields:
                _check_classes_kept(p.classes, fields["classes"], self._labels_used(conn, p.id))
            merged = {k: getattr(p, k) for k in PROJECT_FIELDS}
            merged.update(fields)
            f = _project_fields(**merged)
            conn.execute(
                sa.update(m.projects)
                .where(m.projects.c.id == project_id)
                .values({k: f[k] for k in fields})
            )
            return self._get_project(conn, project_id)

    # ---- annotators
    def _annotator(self, conn: sa.Connection, r: sa.Row[Any]) -> Annotator:
        pm = m.project_members
        roles = dict(
            conn.execute(
                sa.select(pm.c.project_id, pm.c.role)
                .where(pm.c.annotator_id == r.id)
                .order_by(pm.c.project_id)
            ).all()
        )
        return _annotator_of(r, roles)

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
        values = {
            "name": name,
            "token_hash": token_hash,
            "role": role,
            "skills": [str(s) for s in skills],
            "created": utcnow(),
            "token_expires": token_expires,
        }
        try:
            with self._write() as conn:
                stmt = sa.insert(m.annotators).values(values).returning(m.annotators.c.id)
                return conn.execute(stmt).scalar_one()
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(
                f"annotator {name!r} (or its token) already exists; pick another name."
            ) from None

    def _find_annotator(self, where: Any) -> Annotator | None:
        """One query (every request's token lookup): the annotator joined to its projects."""
        a, pm = m.annotators, m.project_members
        stmt = (
            sa.select(a, pm.c.project_id.label("member_of"), pm.c.role.label("member_role"))
            .outerjoin(pm, pm.c.annotator_id == a.c.id)
            .where(where)
            .order_by(pm.c.project_id)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return None
        roles = {x.member_of: x.member_role for x in rows if x.member_of is not None}
        return _annotator_of(rows[0], roles)

    def get_annotator(self, annotator_id: int) -> Annotator:
        a = self._find_annotator(m.annotators.c.id == annotator_id)
        if a is None:
            raise NotFound("annotator", annotator_id)
        return a

    def find_annotator(self, name: str) -> Annotator | None:
        return self._find_annotator(m.annotators.c.name == name)

    def find_annotator_by_token(self, token_hash: str) -> Annotator | None:
        return self._find_annotator(m.annotators.c.token_hash == token_hash)

    def update_token(
        self, annotator_id: int, token_hash: str, *, token_expires: datetime | None = None
    ) -> None:
        a = m.annotators
        try:
            with self._write() as conn:
                n = conn.execute(
                    sa.update(a)
                    .where(a.c.id == annotator_id)
                    .values(token_hash=token_hash, token_expires=token_expires, token_revoked=None)
                ).rowcount
        except sa.exc.IntegrityError:
            raise AlreadyExistsError("another annotator already uses this token.") from None
        if n == 0:
            raise NotFound("annotator", annotator_id)

    def revoke_token(self, annotator_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        a = m.annotators
        with self._write() as conn:
            self._one(
                conn, sa.select(a.c.id).where(a.c.id == annotator_id), "annotator", annotator_id
            )
            conn.execute(
                sa.update(a)
                .where(a.c.id == annotator_id, a.c.token_revoked.is_(None))
                .values(token_revoked=now)
            )

    def list_annotators(self, project_id: int | None = None) -> list[Annotator]:
        stmt = sa.select(m.annotators).order_by(m.annotators.c.id)
        if project_id is not None:
            pm = m.project_members
            stmt = stmt.join(pm, pm.c.annotator_id == m.annotators.c.id).where(
                pm.c.project_id == project_id
            )
        with self._read() as conn:
            return [self._annotator(conn, r) for r in conn.execute(stmt).all()]

    def add_member(self, project_id: int, annotator_id: int, role: str | None = None) -> None:
        if role is not None:
            _check_choice("role", role, PROJECT_ROLES)
        with self._write() as conn:
            self._get_project(conn, project_id)
            self._one(
                conn,
                sa.select(m.annotators.c.id).where(m.annotators.c.id == annotator_id),
                "annotator",
                annotator_id,
            )
            stmt = self._insert(m.project_members).values(
                project_id=project_id, annotator_id=annotator_id, role=role or "annotator"
            )
            conn.execute(
                stmt.on_conflict_do_nothing()
                if role is None
                else stmt.on_conflict_do_update(
                    index_elements=["project_id", "annotator_id"], set_={"role": role}
                )
            )

    def set_member_role(self, project_id: int, annotator_id: int, role: str) -> None:
        _check_choice("role", role, PROJECT_ROLES)
        pm = m.project_members
        with self._write() as conn:
            n = conn.execute(
                sa.update(pm)
                .where(pm.c.project_id == project_id, pm.c.annotator_id == annotator_id)
                .values(role=role)
            ).rowcount
        if n == 0:
            raise NotFound("member", annotator_id)

    def add_members(self, project_ids: Sequence[int], annotator_id: int) -> None:
        ids = list(dict.fromkeys(int(p) for p in project_ids))
        pr = m.projects
        with self._write() as conn:
            self._one(
                conn,
                sa.select(m.annotators.c.id).where(m.annotators.c.id == annotator_id),
                "annotator",
                annotator_id,
            )
            for chunk in _chunks(ids):
                found = set(conn.execute(sa.select(pr.c.id).where(pr.c.id.in_(chunk))).scalars())
                missing = [p for p in chunk if p not in found]
                if missing:
                    raise NotFound("project", missing[0])
                conn.execute(
                    self._insert(m.project_members)
                    .values([{"project_id": p, "annotator_id": annotator_id} for p in chunk])
                    .on_conflict_do_nothing()
                )

    def remove_member(self, project_id: int, annotator_id: int) -> int:
        pm, t = m.project_members, m.tasks
        with self._write() as conn:
            conn.execute(
                sa.delete(pm).where(
                    pm.c.project_id == project_id, pm.c.annotator_id == annotator_id
                )
            )
            return conn.execute(
                sa.update(t)
                .where(
                    t.c.project_id == project_id,
                    t.c.status == "leased",
                    t.c.lease_owner == annotator_id,
                )
                .values(status="queued", lease_owner=None, lease_expires=None)
            ).rowcount

    # ---- items
    def _write_batch(
        self,
        conn: sa.Connection,
        project: Project,
        batch: Sequence[NewItem],
        on_duplicate: str,
        now: datetime,
    ) -> tuple[ItemsWritten, set[int]]:
        """One batch of :meth:`write_items` in the caller's transaction: what it did, and the
        ids of the items it replaced."""
        project_id = project.id
        n_created = n_dup = n_changed = 0
        changed: list[str] = []
        staged: dict[str, tuple[NewItem, Any]] = {}
        repeats: list[tuple[str, NewItem, Any]] = []  # ids seen earlier in the batch
        for it in batch:
            key = str(it.external_id)
            label = None if it.label is None else check_label(project, it.label)
            if it.gold and label is None:
                raise LabelwiseError(f"gold item {key!r} needs its known label.")
            if key in staged:
                repeats.append((key, it, label))
            else:
                staged[key] = (it, label)
        inserted = self._insert_items(
            conn, [_item_row(project_id, it, label, now) for it, label in staged.values()]
        )
        n_created += len(inserted)
        dups = [(k, it, lb) for k, (it, lb) in staged.items() if k not in inserted]
        dups += repeats
        if not dups:
            return ItemsWritten(n_created=n_created), set()
        stored = self._items_by_external_id(conn, project_id, {k for k, _, _ in dups})
        updates: dict[int, dict[str, Any]] = {}
        stale_features = False
        for key, it, label in dups:
            n_dup += 1
            cur = stored[key]
            if cur.id in updates:  # an earlier row of this batch already replaced it
                cur = replace(cur, **_item_fields(updates[cur.id]))
            if not item_differs(cur, it, label):
                continue
            n_changed += 1
            if len(changed) < MAX_REPORTED_IDS:
                changed.append(key)
            if on_duplicate == "update":
                fields = updated_fields(cur, it, label)
                updates[cur.id] = {**updates.get(cur.id, {}), **fields}
                stale_features = stale_features or features_differ(cur, it)
        self._update_items(conn, updates)
        if stale_features:  # the project's feature version no longer matches its items
            conn.execute(
                sa.update(m.projects)
                .where(m.projects.c.id == project_id)
                .values(items_revision=m.projects.c.items_revision + 1)
            )
        return (
            ItemsWritten(
                n_created=n_created,
                n_duplicates=n_dup,
                n_changed=n_changed,
                n_updated=len(updates),
                changed_ids=tuple(changed),
            ),
            set(updates),
        )

    def write_items(
        self,
        project_id: int,
        items: Iterable[NewItem],
        *,
        on_duplicate: str = "skip",
        batch_size: int = 5000,
    ) -> ItemsWritten:
        check_on_duplicate(on_duplicate)
        with self._read() as conn:
            project = self._get_project(conn, project_id)
        now = utcnow()
        n_created = n_dup = n_changed = 0
        changed: list[str] = []
        updated: set[int] = set()
        with self._write() as conn:  # one transaction: an error anywhere inserts nothing
            if self.dialect == "postgresql":
                # the duplicate lookup below runs once per batch with the same text; a generic
                # plan cached while the table was small would stay a scan as the table grows
                conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            for batch in _batched(items, batch_size):
                w, ids = self._write_batch(conn, project, batch, on_duplicate, now)
                n_created += w.n_created
                n_dup += w.n_duplicates
                n_changed += w.n_changed
                changed += w.changed_ids[: MAX_REPORTED_IDS - len(changed)]
                updated.update(ids)
            written = ItemsWritten(
                n_created=n_created,
                n_duplicates=n_dup,
                n_changed=n_changed,
                n_updated=len(updated),
                changed_ids=tuple(changed),
            )
            if on_duplicate == "fail" and n_changed:
                raise DuplicateItemsError(duplicates_message(written), written)  # rolls back
        return written

    def get_item(self, item_id: int) -> Item:
        with self._read() as conn:
            stmt = sa.select(m.items).where(m.items.c.id == item_id)
            return _item(self._one(conn, stmt, "item", item_id))

    def find_item(self, project_id: int, external_id: str) -> Item | None:
        stmt = sa.select(m.items).where(
            m.items.c.project_id == project_id, m.items.c.external_id == str(external_id)
        )
        with self._read() as conn:
            r = conn.execute(stmt).first()
        return None if r is None else _item(r)

    def _items_where(self, project_id: int, status: str | None) -> list[Any]:
        where = [m.items.c.project_id == project_id]
        if status is not None:
            _check_choice("status", status, ITEM_STATUSES)
            where.append(m.items.c.status == status)
        return where

    def list_items(
        self,
        project_id: int,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        after_id: int | None = None,
    ) -> list[Item]:
        where = self._items_where(project_id, status)
        if after_id is not None:
            where.append(m.items.c.id > after_id)
        stmt = (
            sa.select(m.items)
            .where(*where)
            .order_by(m.items.c.id)
            .limit(limit)
            .offset(offset or None)
        )
        with self._read() as conn:
            return [_item(r) for r in conn.execute(stmt)]

    def count_items(self, project_id: int, status: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).where(*self._items_where(project_id, status))
        with self._read() as conn:
            return conn.execute(stmt.select_from(m.items)).scalar_one()

    def count_items_by_status(self, project_id: int) -> dict[str, int]:
        it = m.items
        stmt = (
            sa.select(it.c.status, sa.func.count())
            .where(it.c.project_id == project_id)
            .group_by(it.c.status)
        )
        with self._read() as conn:
            return {status: int(n) for status, n in conn.execute(stmt)}

    def count_review_items(self, project_id: int) -> dict[tuple[str, str | None, bool], int]:
        it = m.items
        in_review = it.c.status == "review"
        # the WHERE clauses repeat the partial indexes' predicates, so the planners use them
        reviewed = (
            sa.select(it.c.review_reason, it.c.review_outcome, in_review, sa.func.count())
            .where(it.c.project_id == project_id, it.c.review_reason.is_not(None))
            .group_by(it.c.review_reason, it.c.review_outcome, in_review)
        )
        # a literal 1, not a bound parameter: SQLite uses a partial index only for a WHERE
        # term that repeats its predicate exactly
        consensus = sa.select(sa.func.count()).where(
            it.c.project_id == project_id, it.c.consensus > sa.literal_column("1")
        )
        with self._read() as conn:
            out = {(r[0], r[1], bool(r[2])): int(r[3]) for r in conn.execute(reviewed)}
            n_consensus = conn.execute(consensus.select_from(it)).scalar_one()
        if n_consensus:
            out["consensus", None, False] = int(n_consensus)
        return out

    def list_unlabeled_item_ids(self, project_id: int) -> list[int]:
        stmt = (
            sa.select(m.items.c.id)
            .where(*self._items_where(project_id, "unlabeled"))
            .order_by(m.items.c.id)
        )
        with self._read() as conn:
            return list(conn.execute(stmt).scalars())

    def list_labeled(self, project_id: int) -> list[tuple[int, Any]]:
        stmt = (
            sa.select(m.items.c.id, m.items.c.label)
            .where(*self._items_where(project_id, "labeled"))
            .order_by(m.items.c.id)
        )
        with self._read() as conn:
            return [(r.id, r.label) for r in conn.execute(stmt)]

    def list_item_ids(
        self, project_id: int, status: str | None = None, *, after_id: int | None = None
    ) -> np.ndarray:
        where = self._items_where(project_id, status)
        if after_id is not None:
            where.append(m.items.c.id > after_id)
        stmt = sa.select(m.items.c.id).where(*where).order_by(m.items.c.id)
        # chunks of ids go straight into arrays: a million ids never sit in one Python list.
        # The DB-API cursor is read directly: through SQLAlchemy's rows it took 2-4x as long.
        parts = []
        with self._read() as conn:
            cursor = conn.execute(stmt).cursor
            while chunk := cursor.fetchmany(_ID_CHUNK):
                ids = (row[0] for row in chunk)
                parts.append(np.fromiter(ids, dtype=np.int64, count=len(chunk)))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def list_labeled_arrays(self, project_id: int) -> LabeledArrays:
        split = m.items.c.meta["split"].as_string()
        stmt = (
            sa.select(m.items.c.id, m.items.c.label, split)
            .where(*self._items_where(project_id, "labeled"))
            .order_by(m.items.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return LabeledArrays(
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            [r[1] for r in rows],
            np.fromiter((r[2] == "validation" for r in rows), dtype=bool, count=len(rows)),
        )

    def set_item_label(self, item_id: int, label: Any) -> None:
        with self._write() as conn:
            stmt = sa.select(m.items.c.project_id).where(m.items.c.id == item_id)
            pid = self._one(conn, stmt, "item", item_id).project_id
            label = check_label(self._get_project(conn, pid, "key share"), label)
            conn.execute(
                sa.update(m.items)
                .where(m.items.c.id == item_id)
                .values(label=label, status="labeled")
            )

    # ---- data quality
    def _lock_item(self, conn: sa.Connection, item_id: int) -> Item:
        stmt = self._for_update(sa.select(m.items).where(m.items.c.id == item_id))
        return _item(self._one(conn, stmt, "item", item_id))

    def mark_gold(self, item_id: int, label: Any) -> Item:
        with self._write() as conn:
            item = self._lock_item(conn, item_id)
            label = _gold_label(self._get_project(conn, item.project_id, "key share"), item, label)
            conn.execute(
                sa.update(m.items)
                .where(m.items.c.id == item_id)
                .values(status="gold", label=None, gold_label=label)
            )
            return self._lock_item(conn, item_id)

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
        it, t = m.items, m.tasks
        with self._write() as conn:
            self._lock_annotator(conn, annotator_id)
            self._check_lease_cap(conn, project_id, annotator_id, now, max_leases)
            round_id = conn.execute(
                sa.select(sa.func.max(m.rounds.c.id)).where(m.rounds.c.project_id == project_id)
            ).scalar()
            if round_id is None:
                return None
            item_id = conn.execute(
                sa.select(it.c.id)
                .where(
                    it.c.project_id == project_id,
                    it.c.status == "gold",
                    ~self._seen_by(it.c.id, annotator_id, now, project_id),
                )
                .order_by(it.c.id)
                .limit(1)
            ).scalar()
            if item_id is None:
                return None
            row = conn.execute(
                sa.insert(t)
                .values(
                    project_id=project_id,
                    round_id=round_id,
                    item_id=item_id,
                    status="leased",
                    lease_owner=annotator_id,
                    lease_expires=until,
                    priority=0.0,
                    created=now,
                )
                .returning(*t.c)
            ).one()
            return _task(row)

    def send_to_review(
        self, item_ids: Sequence[int], reason: str, project_id: int | None = None
    ) -> int:
        _check_choice("reason", reason, REVIEW_REASONS)
        ids = list(dict.fromkeys(int(i) for i in item_ids))
        it = m.items
        n = 0
        with self._write() as conn:
            for chunk in _chunks(ids):
                query = sa.select(it.c.id).where(it.c.id.in_(chunk))
                if project_id is not None:
                    query = query.where(it.c.project_id == project_id)
                found = set(conn.execute(query).scalars())
                missing = [i for i in chunk if i not in found]
                if missing:
                    raise NotFound("item", missing[0])
                n += conn.execute(
                    sa.update(it)
                    .where(it.c.id.in_(chunk), it.c.status.not_in(("gold", "review")))
                    .values(status="review", review_reason=reason, review_outcome=None)
                ).rowcount
        return n

    def resolve_review(
        self, item_id: int, label: Any, reviewer_id: int, now: datetime | None = None
    ) -> Item:
        now = _resolve_now(now)
        with self._write() as conn:
            item = self._lock_item(conn, item_id)
            self._lock_annotator(conn, reviewer_id)
            label = check_label(self._get_project(conn, item.project_id, "key share"), label)
            outcome = _review_outcome(item, label)
            conn.execute(
                sa.update(m.items)
                .where(m.items.c.id == item_id)
                .values(
                    status="labeled",
                    label=label,
                    review_outcome=outcome,
                    resolved_by=reviewer_id,
                    resolved_at=now,
                )
            )
            return self._lock_item(conn, item_id)

    # ---- rounds
    def create_round(self, project_id: int, strategy: str, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        with self._write() as conn:
            self._get_project(conn, project_id)
            number = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(m.rounds.c.number), 0) + 1).where(
                    m.rounds.c.project_id == project_id
                )
            ).scalar_one()
            stmt = (
                sa.insert(m.rounds)
                .values(project_id=project_id, number=number, strategy=strategy, created=now)
                .returning(m.rounds.c.id)
            )
            return conn.execute(stmt).scalar_one()

    def get_round(self, round_id: int) -> Round:
        with self._read() as conn:
            stmt = sa.select(m.rounds).where(m.rounds.c.id == round_id)
            return _round(self._one(conn, stmt, "round", round_id))

    def list_rounds(self, project_id: int) -> list[Round]:
        stmt = sa.select(m.rounds).where(m.rounds.c.project_id == project_id).order_by("id")
        with self._read() as conn:
            return [_round(r) for r in conn.execute(stmt)]

    def close_round(self, round_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        with self._write() as conn:
            self._one(
                conn, sa.select(m.rounds.c.id).where(m.rounds.c.id == round_id), "round", round_id
            )
            conn.execute(
                sa.update(m.rounds)
                .where(m.rounds.c.id == round_id, m.rounds.c.closed.is_(None))
                .values(closed=now)
            )

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
        if not rows:
            return []
        ids = [r[0] for r in rows]
        with self._write() as conn:
            stmt = sa.select(m.rounds.c.project_id).where(m.rounds.c.id == round_id)
            pid = self._one(conn, stmt, "round", round_id).project_id
            found: dict[int, int] = {}
            for chunk in _chunks(ids):
                q = sa.select(m.items.c.id, m.items.c.project_id).where(m.items.c.id.in_(chunk))
                found.update((r.id, r.project_id) for r in conn.execute(q))
            for iid in ids:
                if iid not in found:
                    raise NotFound("item", iid)
                if found[iid] != pid:
                    raise LabelwiseError(
                        f"item {iid} belongs to project {found[iid]}, not to round "
                        f"{round_id}'s project {pid}."
                    )
            values = [
                {
                    "project_id": pid,
                    "round_id": round_id,
                    "item_id": iid,
                    "status": "queued",
                    "priority": priority,
                    "routing_tag": tag,
                    "confidence": conf,
                    "created": now,
                }
                for (iid, priority, tag, conf), n in zip(rows, n_copies, strict=True)
                for _ in range(n)
            ]
            ins = sa.insert(m.tasks).returning(m.tasks.c.id, sort_by_parameter_order=True)
            task_ids = list(conn.execute(ins, values).scalars())
            for chunk in _chunks(ids):
                conn.execute(
                    sa.update(m.items)
                    .where(m.items.c.id.in_(chunk), m.items.c.status == "unlabeled")
                    .values(status="queued")
                )
            for n in sorted(set(n_copies) - {1}):
                multi = [iid for (iid, *_), c in zip(rows, n_copies, strict=True) if c == n]
                for chunk in _chunks(multi):
                    conn.execute(
                        sa.update(m.items).where(m.items.c.id.in_(chunk)).values(consensus=n)
                    )
            return task_ids

    def get_task(self, task_id: int) -> Task:
        with self._read() as conn:
            stmt = sa.select(m.tasks).where(m.tasks.c.id == task_id)
            return _task(self._one(conn, stmt, "task", task_id))

    def list_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        status: str | None = None,
        lease_owner: int | None = None,
        item_id: int | None = None,
    ) -> list[Task]:
        t = m.tasks
        stmt = sa.select(t).where(t.c.project_id == project_id).order_by(t.c.id)
        if item_id is not None:
            stmt = stmt.where(t.c.item_id == item_id)
        if round_id is not None:
            stmt = stmt.where(t.c.round_id == round_id)
        if status is not None:
            _check_choice("status", status, TASK_STATUSES)
            stmt = stmt.where(t.c.status == status)
        if lease_owner is not None:
            stmt = stmt.where(t.c.lease_owner == lease_owner)
        with self._read() as conn:
            return [_task(r) for r in conn.execute(stmt)]

    @staticmethod
    def _claimable_task(now: datetime) -> Any:
        t = m.tasks
        return sa.or_(
            t.c.status == "queued", sa.and_(t.c.status == "leased", t.c.lease_expires < now)
        )

    @staticmethod
    def _seen_by(item_id: Any, annotator_id: int, now: datetime, project_id: int) -> Any:
        """Whether the annotator answered, skipped or holds a valid lease on a task of the item
        (of ``project_id``): such items are never served to them again (a consensus item's k
        tasks go to k people)."""
        a, t2 = m.annotations, m.tasks.alias("seen")
        answered = sa.exists().where(a.c.item_id == item_id, a.c.annotator_id == annotator_id)
        held = sa.exists().where(
            t2.c.item_id == item_id,
            # PostgreSQL runs this as one hashed lookup per claim: the project and statuses
            # let it read them from ix_tasks_claim, not scan every task of every project
            t2.c.project_id == project_id,
            t2.c.status.in_(("skipped", "leased")),
            t2.c.lease_owner == annotator_id,
            sa.or_(
                t2.c.status == "skipped",
                sa.and_(t2.c.status == "leased", t2.c.lease_expires >= now),
            ),
        )
        return sa.or_(answered, held)

    def _lock_annotator(self, conn: sa.Connection, annotator_id: int) -> sa.Row[Any]:
        """The annotator's row, locked on PostgreSQL until commit so one annotator's claims run
        one at a time (two tabs never get two tasks of one item). ``FOR NO KEY UPDATE`` does not
        block the foreign-key checks of other transactions that insert rows naming them."""
        stmt = sa.select(m.annotators.c.skills).where(m.annotators.c.id == annotator_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(key_share=True)
        return self._one(conn, stmt, "annotator", annotator_id)

    def _pick_task(
        self, conn: sa.Connection, project_id: int, annotator_id: int, skills: list[str],
        now: datetime,
    ) -> Any:  # fmt: skip
        """The task to claim: its id (locked on PostgreSQL), ``None``, or a scalar subquery
        that picks it inside the claim's ``UPDATE``.

        One ``(skill match, -priority, id)`` order over queued and expired-leased tasks, as
        queries that each walk ``ix_tasks_claim`` (project, status, priority DESC, id) in order
        and stop at the first row: an ``OR`` of the two statuses, or a ``CASE`` on the skills
        in the ``ORDER BY``, would sort every claimable task on each claim. Each tier looks up
        its first expired lease (rarely any); the last tier's queued query, limited to tasks
        ordered before that expired one, is returned unrun with the expired one as fallback,
        so that a claim without skills is two statements: lock the annotator, lease the task.
        """
        t = m.tasks
        seen = self._seen_by(t.c.item_id, annotator_id, now, project_id)
        where = [t.c.project_id == project_id, ~seen]

        def first(*conds: Any) -> sa.Select[Any]:
            return self._lock_first(
                sa.select(t.c.id, t.c.priority)
                .where(*where, *conds)
                .order_by(t.c.priority.desc(), t.c.id)
            )

        tiers = [[t.c.routing_tag.in_(skills)], []] if skills else [[]]
        for n, tier in enumerate(tiers):
            expired = conn.execute(
                first(t.c.status == "leased", t.c.lease_expires < now, *tier)
            ).first()
            before = []
            if expired is not None:
                before = [
                    sa.or_(
                        t.c.priority > expired.priority,
                        sa.and_(t.c.priority == expired.priority, t.c.id < expired.id),
                    )
                ]
            queued = first(t.c.status == "queued", *tier, *before).with_only_columns(t.c.id)
            if n == len(tiers) - 1:
                # the UPDATE's own table is tasks too: keep this subquery's FROM tasks
                pick = queued.correlate(None).scalar_subquery()
                return pick if expired is None else sa.func.coalesce(pick, expired.id)
            row = conn.execute(queued).first()
            if row is not None or expired is not None:
                return (row or expired).id
        return None

    @staticmethod
    def _leases_held(project_id: int, annotator_id: int, now: datetime) -> sa.Select[Any]:
        """Ids of the annotator's valid leases in the project."""
        held = m.tasks.alias("held")
        return (
            sa.select(held.c.id)
            .where(
                held.c.project_id == project_id,
                held.c.status == "leased",
                held.c.lease_owner == annotator_id,
                held.c.lease_expires >= now,
            )
            .correlate(None)
        )

    def _check_lease_cap(
        self,
        conn: sa.Connection,
        project_id: int,
        annotator_id: int,
        now: datetime,
        max_leases: int | None,
    ) -> None:
        """:class:`LeaseLimitError` when the annotator holds ``max_leases`` valid leases in the
        project; run after :meth:`_lock_annotator`, so a concurrent claim of theirs has
        committed (PostgreSQL reads committed rows per statement) or not started."""
        if max_leases is None:
            return
        stmt = self._leases_held(project_id, annotator_id, now)
        held = conn.execute(stmt.order_by(stmt.selected_columns.id)).scalars().all()
        if len(held) >= max_leases:
            raise LeaseLimitError(max_leases, held)

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
        t = m.tasks
        with self._write() as conn:
            skills = self._lock_annotator(conn, annotator_id).skills
            pick = self._pick_task(conn, project_id, annotator_id, list(skills), now)
            row = None
            if pick is not None:
                where = [t.c.id == pick]
                if max_leases is not None:  # the cap in the same statement: no extra trip
                    held = self._leases_held(project_id, annotator_id, now).subquery()
                    count = sa.select(sa.func.count()).select_from(held).scalar_subquery()
                    where.append(count < max_leases)
                row = conn.execute(
                    sa.update(t)
                    .where(*where)
                    .values(status="leased", lease_owner=annotator_id, lease_expires=until)
                    .returning(*t.c)
                ).first()
            if row is None:  # nothing to claim, or the cap: say which
                self._check_lease_cap(conn, project_id, annotator_id, now, max_leases)
                return None
            return _task(row)

    def get_round_progress(self, round_id: int) -> tuple[int, int, int]:
        r, t = m.rounds, m.tasks

        def count(*where: Any) -> Any:  # each an index-only count on ix_tasks_round_status
            return (
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.round_id == round_id, *where)
                .scalar_subquery()
            )

        finished = count(t.c.status.in_(("done", "skipped")))
        live = count(t.c.status != "withdrawn")
        stmt = sa.select(r.c.number, live, finished).where(r.c.id == round_id)
        with self._read() as conn:
            number, total, done = self._one(conn, stmt, "round", round_id)
        return number, total, done

    def _held(self, conn: sa.Connection, task_id: int, annotator_id: int, now: datetime) -> Task:
        stmt = sa.select(m.tasks).where(m.tasks.c.id == task_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        task = _task(self._one(conn, stmt, "task", task_id))
        if task.status != "leased" or task.lease_owner != annotator_id:
            raise LeaseError(
                f"task {task_id} is {task.status} and not leased by annotator {annotator_id}; "
                "claim a task with claim_next_task first."
            )
        if task.lease_expires is None or task.lease_expires < now:
            raise LeaseError(
                f"the lease of annotator {annotator_id} on task {task_id} expired at "
                f"{task.lease_expires}; claim a new task."
            )
        return task

    def skip_task(self, task_id: int, annotator_id: int, now: datetime | None = None) -> None:
        now = _resolve_now(now)
        with self._write() as conn:
            task = self._held(conn, task_id, annotator_id, now)
            conn.execute(sa.update(m.tasks).where(m.tasks.c.id == task_id).values(status="skipped"))
            conn.execute(
                sa.update(m.items)
                .where(
                    m.items.c.id == task.item_id,
                    m.items.c.status == "queued",
                    m.items.c.consensus <= 1,
                )
                .values(status="skipped")
            )

    def release_task(self, task_id: int, annotator_id: int) -> None:
        with self._write() as conn:
            t = m.tasks
            n = conn.execute(
                sa.update(t)
                .where(t.c.id == task_id, t.c.status == "leased", t.c.lease_owner == annotator_id)
                .values(status="queued", lease_owner=None, lease_expires=None)
            ).rowcount
            if n == 0:
                self._one(conn, sa.select(t.c.id).where(t.c.id == task_id), "task", task_id)
                raise LeaseError(f"task {task_id} is not leased by annotator {annotator_id}.")

    def queue_depth(self, project_id: int, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        stmt = (
            sa.select(sa.func.count())
            .select_from(m.tasks)
            .where(m.tasks.c.project_id == project_id, self._claimable_task(now))
        )
        with self._read() as conn:
            return conn.execute(stmt).scalar_one()

    def _tasks_where(
        self, project_id: int, round_id: int | None, statuses: Sequence[str] | None
    ) -> list[Any]:
        t = m.tasks
        where = [t.c.project_id == project_id]
        if round_id is not None:
            where.append(t.c.round_id == round_id)
        if statuses is not None:
            where.append(t.c.status.in_(_check_task_statuses(statuses)))
        return where

    def count_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> int:
        where = self._tasks_where(project_id, round_id, statuses)
        stmt = sa.select(sa.func.count()).select_from(m.tasks).where(*where)
        with self._read() as conn:
            return conn.execute(stmt).scalar_one()

    def has_tasks(
        self,
        project_id: int,
        *,
        round_id: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> bool:
        where = self._tasks_where(project_id, round_id, statuses)
        stmt = sa.select(sa.exists().where(*where))
        with self._read() as conn:
            return bool(conn.execute(stmt).scalar())

    def update_tasks(
        self,
        task_ids: Sequence[int],
        *,
        priorities: Sequence[float],
        routing_tags: Sequence[str | None] | None = None,
        confidences: Sequence[float | None] | None = None,
    ) -> int:
        rows = _tasks_args(task_ids, priorities, routing_tags, confidences)
        if not rows:
            return 0
        t = m.tasks
        values: dict[str, Any] = {"priority": sa.bindparam("p")}
        if routing_tags is not None:
            values["routing_tag"] = sa.bindparam("tag")
        if confidences is not None:
            values["confidence"] = sa.bindparam("conf")
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("tid"), t.c.status == "queued")
            .values(**values)
        )
        params = [{"tid": tid, "p": p, "tag": tag, "conf": c} for tid, p, tag, c in rows]
        with self._write() as conn:
            queued = 0
            for chunk in _chunks([r[0] for r in rows]):
                queued += conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.id.in_(chunk), t.c.status == "queued")
                ).scalar_one()
            conn.execute(stmt, params)
            return queued

    def withdraw_tasks(self, task_ids: Sequence[int]) -> list[int]:
        t, other = m.tasks, m.tasks.alias("other")
        # a consensus item's copies stay together: none is withdrawn while another is live
        sibling = sa.exists().where(
            other.c.item_id == t.c.item_id, other.c.id != t.c.id, other.c.status != "withdrawn"
        )
        out: list[tuple[int, int]] = []
        with self._write() as conn:
            for chunk in _chunks(sorted(set(task_ids))):
                # check and change in one UPDATE: on PostgreSQL a row a claim holds is re-read
                # after the claim commits (status 'leased': left alone), on SQLite the write
                # transaction excludes the claim
                out += conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_(chunk), t.c.status == "queued", ~sibling)
                    .values(status="withdrawn")
                    .returning(t.c.id, t.c.item_id)
                ).all()
            for chunk in _chunks(sorted({iid for _, iid in out})):
                conn.execute(
                    sa.update(m.items)
                    .where(m.items.c.id.in_(chunk), m.items.c.status == "queued")
                    .values(status="unlabeled")
                )
        return sorted(tid for tid, _ in out)

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
        with self._write() as conn:
            task = self._held(conn, task_id, annotator_id, now)
            label = check_label(self._get_project(conn, task.project_id, "key share"), label)
            aid = conn.execute(
                sa.insert(m.annotations)
                .values(
                    task_id=task_id,
                    item_id=task.item_id,
                    annotator_id=annotator_id,
                    label=label,
                    created=now,
                    duration_s=duration_s,
                    guideline_version=self._guideline_version(conn, task.project_id),
                )
                .returning(m.annotations.c.id)
            ).scalar_one()
            conn.execute(sa.update(m.tasks).where(m.tasks.c.id == task_id).values(status="done"))
            if resolve:
                it = m.items
                conn.execute(
                    sa.update(it)
                    .where(
                        it.c.id == task.item_id,
                        it.c.consensus <= 1,
                        it.c.status.not_in(("gold", "review")),
                    )
                    .values(label=label, status="labeled")
                )
            return aid

    def _for_update(self, stmt: Any) -> Any:
        """Lock the selected rows until commit on PostgreSQL (SQLite's write lock covers it)."""
        return stmt.with_for_update() if self.dialect == "postgresql" else stmt

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
        a, t, it = m.annotations, m.tasks, m.items
        with self._write() as conn:
            stmt = self._for_update(sa.select(a).where(a.c.id == annotation_id))
            ann = _annotation(self._one(conn, stmt, "annotation", annotation_id))
            item = conn.execute(self._for_update(sa.select(it).where(it.c.id == ann.item_id))).one()
            latest = conn.execute(
                sa.select(sa.func.max(a.c.id))
                .join(it, it.c.id == a.c.item_id)
                .where(it.c.project_id == item.project_id, a.c.annotator_id == annotator_id)
            ).scalar()
            task, closed = None, None
            if ann.task_id is not None:
                row = conn.execute(
                    self._for_update(sa.select(t).where(t.c.id == ann.task_id))
                ).first()
                if row is not None:
                    task = _task(row)
                    closed = conn.execute(
                        sa.select(m.rounds.c.closed).where(m.rounds.c.id == task.round_id)
                    ).scalar()
            task = _check_undo(ann, annotator_id, latest, task, closed)
            conn.execute(sa.delete(a).where(a.c.id == annotation_id))
            if item.status == "labeled" and item.consensus <= 1:
                rest = conn.execute(
                    sa.select(a.c.label).where(a.c.item_id == item.id).order_by(a.c.id.desc())
                ).first()
                values = (
                    {"label": rest.label, "status": "labeled"}
                    if rest is not None
                    else {"label": None, "status": "queued"}
                )
                conn.execute(sa.update(it).where(it.c.id == item.id).values(**values))
            row = conn.execute(
                sa.update(t)
                .where(t.c.id == task.id)
                .values(status="leased", lease_owner=annotator_id, lease_expires=until)
                .returning(*t.c)
            ).one()
            return _task(row)

    @staticmethod
    def _guideline_version(conn: sa.Connection, project_id: int) -> int | None:
        g = m.guidelines
        return conn.execute(
            sa.select(sa.func.max(g.c.version)).where(g.c.project_id == project_id)
        ).scalar()

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
        a, t, it = m.annotations, m.tasks, m.items
        with self._write() as conn:
            stmt = self._for_update(sa.select(a).where(a.c.id == annotation_id))
            ann = _annotation(self._one(conn, stmt, "annotation", annotation_id))
            task, closed = None, None
            if ann.task_id is not None:
                row = conn.execute(sa.select(t).where(t.c.id == ann.task_id)).first()
                if row is not None:
                    task = _task(row)
                    closed = conn.execute(
                        sa.select(m.rounds.c.closed).where(m.rounds.c.id == task.round_id)
                    ).scalar()
            task = _check_revise(ann, annotator_id, task, closed)
            label = check_label(self._get_project(conn, task.project_id, "key share"), label)
            conn.execute(sa.delete(a).where(a.c.id == annotation_id))
            new_id = conn.execute(
                sa.insert(a)
                .values(
                    task_id=task.id,
                    item_id=ann.item_id,
                    annotator_id=annotator_id,
                    label=label,
                    created=now,
                    duration_s=duration_s,
                    guideline_version=self._guideline_version(conn, task.project_id),
                )
                .returning(a.c.id)
            ).scalar_one()
            conn.execute(
                sa.update(it)
                .where(it.c.id == ann.item_id, it.c.status == "labeled", it.c.consensus <= 1)
                .values(label=label)
            )
            return new_id

    def get_annotation(self, annotation_id: int) -> Annotation:
        with self._read() as conn:
            stmt = sa.select(m.annotations).where(m.annotations.c.id == annotation_id)
            return _annotation(self._one(conn, stmt, "annotation", annotation_id))

    def list_annotations(
        self,
        project_id: int,
        *,
        item_id: int | None = None,
        annotator_id: int | None = None,
        since: datetime | None = None,
    ) -> list[Annotation]:
        a = m.annotations
        stmt = (
            sa.select(a)
            .join(m.items, m.items.c.id == a.c.item_id)
            .where(m.items.c.project_id == project_id)
            .order_by(a.c.id)
        )
        if item_id is not None:
            stmt = stmt.where(a.c.item_id == item_id)
        if annotator_id is not None:
            stmt = stmt.where(a.c.annotator_id == annotator_id)
        if since is not None:
            stmt = stmt.where(a.c.created >= _resolve_now(since))
        with self._read() as conn:
            return [_annotation(r) for r in conn.execute(stmt)]

    def list_annotation_times(
        self, project_id: int, since: datetime, until: datetime | None = None
    ) -> dict[int, list[float]]:
        a = m.annotations
        stmt = (
            sa.select(a.c.annotator_id, a.c.created)
            .join(m.items, m.items.c.id == a.c.item_id)
            .where(
                m.items.c.project_id == project_id,
                a.c.annotator_id.is_not(None),
                a.c.created >= _resolve_now(since),
                a.c.created < _resolve_now(until),
            )
        )  # no ORDER BY: the caller sorts the times; a sort here would cost the whole window
        out: dict[int, list[float]] = {}
        with self._read() as conn:
            for aid, created in conn.execute(stmt):
                out.setdefault(aid, []).append(created.timestamp())
        return out

    def count_labeled_by_split(self, project_id: int) -> list[tuple[Any, str | None, int]]:
        it = m.items
        split = it.c.meta["split"].as_string()
        stmt = (
            sa.select(it.c.label, split, sa.func.count())
            .where(it.c.project_id == project_id, it.c.status == "labeled")
            .group_by(it.c.label, split)
        )
        with self._read() as conn:
            return [(label, s, int(n)) for label, s, n in conn.execute(stmt)]

    def count_annotations_by_gold(self, project_id: int) -> dict[bool, tuple[int, int]]:
        a, it = m.annotations, m.items
        is_gold = it.c.status == "gold"
        stmt = (
            sa.select(is_gold, sa.func.count(), sa.func.count(sa.distinct(a.c.item_id)))
            .select_from(a)
            .join(it, it.c.id == a.c.item_id)
            .where(it.c.project_id == project_id)
            .group_by(is_gold)
        )
        with self._read() as conn:
            return {bool(r[0]): (int(r[1]), int(r[2])) for r in conn.execute(stmt)}

    def list_recent_annotations(
        self, project_id: int, annotator_id: int, limit: int = 10
    ) -> list[Annotation]:
        if limit < 1:
            raise LabelwiseError(f"limit must be >= 1; got {limit!r}.")
        a = m.annotations
        stmt = (
            sa.select(a)
            .join(m.items, m.items.c.id == a.c.item_id)
            .where(m.items.c.project_id == project_id, a.c.annotator_id == annotator_id)
            .order_by(a.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_annotation(r) for r in conn.execute(stmt)]

    def count_annotations(self, project_id: int, annotator_id: int | None = None) -> int:
        a = m.annotations
        stmt = (
            sa.select(sa.func.count())
            .select_from(a)
            .join(m.items, m.items.c.id == a.c.item_id)
            .where(m.items.c.project_id == project_id)
        )
        if annotator_id is not None:
            stmt = stmt.where(a.c.annotator_id == annotator_id)
        with self._read() as conn:
            return conn.execute(stmt).scalar_one()

    def annotator_throughput(
        self, project_id: int, since: datetime, until: datetime | None = None
    ) -> dict[int, int]:
        since = _resolve_now(since)
        until = _resolve_now(until)
        a = m.annotations
        stmt = (
            sa.select(a.c.annotator_id, sa.func.count())
            .join(m.items, m.items.c.id == a.c.item_id)
            .where(
                m.items.c.project_id == project_id,
                a.c.annotator_id.is_not(None),
                a.c.created >= since,
                a.c.created < until,
            )
            .group_by(a.c.annotator_id)
        )
        with self._read() as conn:
            return {r[0]: r[1] for r in conn.execute(stmt)}

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
        g, p = m.guidelines, m.projects
        with self._write() as conn:
            # Number versions without gaps or duplicates: SQLite's BEGIN IMMEDIATE excludes other
            # writers; on PostgreSQL the project row lock serialises concurrent editors.
            lock = sa.select(p).where(p.c.id == project_id)
            if self.dialect == "postgresql":
                lock = lock.with_for_update(key_share=True)
            project = _project(self._one(conn, lock, "project", project_id))
            fields = _guidelines_fields(project, body, classes, hard_cases)
            if author_id is not None:
                stmt = sa.select(m.annotators.c.id).where(m.annotators.c.id == author_id)
                self._one(conn, stmt, "annotator", author_id)
            version = (self._guideline_version(conn, project_id) or 0) + 1
            return conn.execute(
                sa.insert(g)
                .values(project_id=project_id, version=version, author_id=author_id,
                        created=now, **fields)
                .returning(g.c.id)
            ).scalar_one()  # fmt: skip

    def get_guidelines(self, guidelines_id: int) -> Guidelines:
        with self._read() as conn:
            stmt = sa.select(m.guidelines).where(m.guidelines.c.id == guidelines_id)
            return _guidelines(self._one(conn, stmt, "guidelines", guidelines_id))

    def find_guidelines(self, project_id: int, version: int | None = None) -> Guidelines | None:
        g = m.guidelines
        stmt = sa.select(g).where(g.c.project_id == project_id)
        if version is not None:
            stmt = stmt.where(g.c.version == version)
        stmt = stmt.order_by(g.c.version.desc()).limit(1)
        with self._read() as conn:
            row = conn.execute(stmt).first()
            return None if row is None else _guidelines(row)

    def list_guidelines(self, project_id: int) -> list[Guidelines]:
        g = m.guidelines
        stmt = sa.select(g).where(g.c.project_id == project_id).order_by(g.c.version)
        with self._read() as conn:
            return [_guidelines(r) for r in conn.execute(stmt)]

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
        with self._write() as conn:
            stmt = sa.select(m.items.c.project_id).where(m.items.c.id == item_id)
            project_id = self._one(conn, stmt, "item", item_id).project_id
            stmt = sa.select(m.annotators.c.id).where(m.annotators.c.id == annotator_id)
            self._one(conn, stmt, "annotator", annotator_id)
            if task_id is not None:
                stmt = sa.select(m.tasks.c.item_id).where(m.tasks.c.id == task_id)
                if self._one(conn, stmt, "task", task_id).item_id != item_id:
                    raise LabelwiseError(f"task {task_id} is not a task of item {item_id}.")
            return conn.execute(
                sa.insert(m.flags)
                .values(project_id=project_id, item_id=item_id, task_id=task_id,
                        annotator_id=annotator_id, reason=reason, created=now)
                .returning(m.flags.c.id)
            ).scalar_one()  # fmt: skip

    def get_flag(self, flag_id: int) -> Flag:
        with self._read() as conn:
            stmt = sa.select(m.flags).where(m.flags.c.id == flag_id)
            return _flag(self._one(conn, stmt, "flag", flag_id))

    def list_flags(self, project_id: int, *, item_id: int | None = None) -> list[Flag]:
        f = m.flags
        stmt = sa.select(f).where(f.c.project_id == project_id).order_by(f.c.id)
        if item_id is not None:
            stmt = stmt.where(f.c.item_id == item_id)
        with self._read() as conn:
            return [_flag(r) for r in conn.execute(stmt)]

    # ---- model versions
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
        with self._write() as conn:
            self._get_project(conn, project_id)
            if round_id is not None:
                stmt = sa.select(m.rounds.c.id).where(m.rounds.c.id == round_id)
                self._one(conn, stmt, "round", round_id)
            return conn.execute(
                sa.insert(m.model_versions)
                .values(
                    project_id=project_id,
                    round_id=round_id,
                    metrics=dict(metrics or {}),
                    calibration=dict(calibration or {}),
                    artifact_path=artifact_path,
                    created=now,
                )
                .returning(m.model_versions.c.id)
            ).scalar_one()

    def get_model_version(self, model_version_id: int) -> ModelVersion:
        with self._read() as conn:
            stmt = sa.select(m.model_versions).where(m.model_versions.c.id == model_version_id)
            return _model_version(self._one(conn, stmt, "model version", model_version_id))

    def list_model_versions(self, project_id: int) -> list[ModelVersion]:
        mv = m.model_versions
        stmt = sa.select(mv).where(mv.c.project_id == project_id).order_by(mv.c.id)
        with self._read() as conn:
            return [_model_version(r) for r in conn.execute(stmt)]

    # ---- dataset versions
    def create_dataset_version(self, project_id: int, now: datetime | None = None) -> int:
        now = _resolve_now(now)
        dv = m.dataset_versions
        with self._write() as conn:
            self._get_project(conn, project_id)
            labeled = conn.execute(
                sa.select(m.items.c.id, m.items.c.external_id, m.items.c.label).where(
                    *self._items_where(project_id, "labeled")
                )
            ).all()
            digest = dataset_hash((r.external_id, r.label) for r in labeled)
            existing = conn.execute(
                sa.select(dv.c.id).where(dv.c.project_id == project_id, dv.c.content_hash == digest)
            ).scalar()
            if existing is not None:
                return existing
            did = conn.execute(
                sa.insert(dv)
                .values(
                    project_id=project_id, content_hash=digest, n_labels=len(labeled), created=now
                )
                .returning(dv.c.id)
            ).scalar_one()
            for batch in _batched(labeled, 5000):
                conn.execute(
                    sa.insert(m.dataset_rows),
                    [
                        {
                            "dataset_version_id": did,
                            "external_id": r.external_id,
                            "item_id": r.id,
                            "label": r.label,
                        }
                        for r in batch
                    ],
                )
            return did

    def get_dataset_version(self, dataset_version_id: int) -> DatasetVersion:
        with self._read() as conn:
            stmt = sa.select(m.dataset_versions).where(
                m.dataset_versions.c.id == dataset_version_id
            )
            return _dataset_version(self._one(conn, stmt, "dataset version", dataset_version_id))

    def list_dataset_versions(self, project_id: int) -> list[DatasetVersion]:
        dv = m.dataset_versions
        stmt = sa.select(dv).where(dv.c.project_id == project_id).order_by(dv.c.id)
        with self._read() as conn:
            return [_dataset_version(r) for r in conn.execute(stmt)]

    def list_dataset_rows(self, dataset_version_id: int) -> list[tuple[str, Any]]:
        dr = m.dataset_rows
        with self._read() as conn:
            self._one(
                conn,
                sa.select(m.dataset_versions.c.id).where(
                    m.dataset_versions.c.id == dataset_version_id
                ),
                "dataset version",
                dataset_version_id,
            )
            stmt = (
                sa.select(dr.c.external_id, dr.c.label)
                .where(dr.c.dataset_version_id == dataset_version_id)
                .order_by(dr.c.external_id)
            )
            rows = [(r.external_id, r.label) for r in conn.execute(stmt)]
        # sort in Python too: database collations may order strings differently
        return sorted(rows, key=lambda p: p[0])

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
        t = m.model_sources
        with self._write() as conn:
            self._get_project(conn, project_id)
            values = {"source": source, "endpoint": endpoint, "updated": now}
            n = conn.execute(sa.update(t).where(t.c.project_id == project_id).values(**values))
            if n.rowcount == 0:
                conn.execute(sa.insert(t).values(project_id=project_id, **values))
        return ModelSource(project_id, source, endpoint, now)

    def get_model_source(self, project_id: int) -> ModelSource:
        t = m.model_sources
        with self._read() as conn:
            self._get_project(conn, project_id)
            row = conn.execute(sa.select(t).where(t.c.project_id == project_id)).first()
        if row is None:
            return ModelSource(project_id, "builtin", None, None)
        return ModelSource(row.project_id, row.source, row.endpoint, row.updated)

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
        try:
            with self._write() as conn:
                self._get_project(conn, project_id)
                return conn.execute(
                    sa.insert(m.model_uploads)
                    .values(project_id=project_id, kind=kind, version=int(version), origin=origin,
                            path=str(path), n_rows=int(n_rows), n_cols=int(n_cols),
                            classes=[str(c) for c in classes], model_version=model_version,
                            created=now)
                    .returning(m.model_uploads.c.id)
                ).scalar_one()  # fmt: skip
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(
                f"project {project_id} already has {kind} version {version}."
            ) from None

    def get_model_upload(self, upload_id: int) -> ModelUpload:
        with self._read() as conn:
            stmt = sa.select(m.model_uploads).where(m.model_uploads.c.id == upload_id)
            return _model_upload(self._one(conn, stmt, "model upload", upload_id))

    def list_model_uploads(self, project_id: int, kind: str | None = None) -> list[ModelUpload]:
        t = m.model_uploads
        stmt = sa.select(t).where(t.c.project_id == project_id).order_by(t.c.kind, t.c.version)
        if kind is not None:
            stmt = stmt.where(t.c.kind == kind)
        with self._read() as conn:
            return [_model_upload(r) for r in conn.execute(stmt)]

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
        with self._write() as conn:
            if project_id is not None:
                self._get_project(conn, project_id)
            return conn.execute(
                sa.insert(m.jobs)
                .values(
                    kind=kind,
                    project_id=project_id,
                    status="queued",
                    payload=dict(payload or {}),
                    attempts=0,
                    created=now,
                    updated=now,
                )
                .returning(m.jobs.c.id)
            ).scalar_one()

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
        now = _resolve_now(now)
        j, p = m.jobs, m.projects
        with self._write() as conn:
            # Serialise the check and the insert per project. SQLite: BEGIN IMMEDIATE already
            # excludes every other writer. PostgreSQL: lock the project row; FOR NO KEY UPDATE
            # (key_share) still lets other transactions insert rows that reference the project.
            lock = sa.select(p.c.id).where(p.c.id == project_id)
            if self.dialect == "postgresql":
                lock = lock.with_for_update(key_share=True)
            self._one(conn, lock, "project", project_id)
            existing = conn.execute(
                sa.select(j.c.id)
                .where(j.c.project_id == project_id, j.c.kind == kind, j.c.status.in_(blocking))
                .order_by(j.c.id)
                .limit(1)
            ).scalar()
            if existing is not None:
                return existing, False
            jid = conn.execute(
                sa.insert(j)
                .values(
                    kind=kind,
                    project_id=project_id,
                    status="queued",
                    payload=dict(payload or {}),
                    attempts=0,
                    created=now,
                    updated=now,
                )
                .returning(j.c.id)
            ).scalar_one()
            return jid, True

    def get_job(self, job_id: int) -> Job:
        with self._read() as conn:
            return _job(
                self._one(conn, sa.select(m.jobs).where(m.jobs.c.id == job_id), "job", job_id)
            )

    def list_jobs(self, project_id: int | None = None, status: str | None = None) -> list[Job]:
        j = m.jobs
        stmt = sa.select(j).order_by(j.c.id)
        if project_id is not None:
            stmt = stmt.where(j.c.project_id == project_id)
        if status is not None:
            _check_choice("status", status, JOB_STATUSES)
            stmt = stmt.where(j.c.status == status)
        with self._read() as conn:
            return [_job(r) for r in conn.execute(stmt)]

    def claim_next_job(
        self,
        worker_id: str,
        lease_seconds: float = 600,
        now: datetime | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Job | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        j = m.jobs
        claimable = sa.or_(
            sa.and_(
                j.c.status == "queued",  # not before a retry's backoff ends
                sa.or_(j.c.not_before.is_(None), j.c.not_before <= now),
            ),
            sa.and_(j.c.status == "running", j.c.leased_until < now),
        )
        stmt = sa.select(j.c.id).where(claimable).order_by(j.c.id)
        if kinds is not None:
            stmt = stmt.where(j.c.kind.in_(list(kinds)))
        with self._write() as conn:
            job_id = conn.execute(self._lock_first(stmt)).scalar()
            if job_id is None:
                return None
            row = conn.execute(
                sa.update(j)
                .where(j.c.id == job_id)
                .values(
                    status="running",
                    worker_id=worker_id,
                    leased_until=until,
                    attempts=j.c.attempts + 1,
                    updated=now,
                )
                .returning(*j.c)
            ).one()
            return _job(row)

    def finish_job(
        self,
        job_id: int,
        worker_id: str,
        error: str | None = None,
        now: datetime | None = None,
    ) -> None:
        now = _resolve_now(now)
        j = m.jobs
        with self._write() as conn:
            n = conn.execute(
                sa.update(j)
                .where(j.c.id == job_id, j.c.status == "running", j.c.worker_id == worker_id)
                .values(
                    status="failed" if error is not None else "done",
                    error=error,
                    leased_until=None,
                    updated=now,
                )
            ).rowcount
            if n == 0:
                job = _job(self._one(conn, sa.select(j).where(j.c.id == job_id), "job", job_id))
                raise LeaseError(
                    f"job {job_id} is {job.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_job first."
                )

    def renew_job_lease(
        self,
        job_id: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> Job:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        j = m.jobs
        with self._write() as conn:
            row = conn.execute(
                sa.update(j)
                .where(j.c.id == job_id, j.c.status == "running", j.c.worker_id == worker_id)
                .values(leased_until=until, updated=now)
                .returning(*j.c)
            ).first()
            if row is None:
                job = _job(self._one(conn, sa.select(j).where(j.c.id == job_id), "job", job_id))
                raise LeaseError(
                    f"job {job_id} is {job.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_job first."
                )
            return _job(row)

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
        j = m.jobs
        with self._write() as conn:
            n = conn.execute(
                sa.update(j)
                .where(j.c.id == job_id, j.c.status == "running", j.c.worker_id == worker_id)
                .values(
                    status="queued",
                    worker_id=None,
                    leased_until=None,
                    error=error,
                    updated=now,
                    not_before=not_before,
                )
            ).rowcount
            if n == 0:
                job = _job(self._one(conn, sa.select(j).where(j.c.id == job_id), "job", job_id))
                raise LeaseError(
                    f"job {job_id} is {job.status} and not held by worker {worker_id!r}; "
                    "claim it with claim_next_job first."
                )

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
        with self._write() as conn:
            self._get_project(conn, project_id)
            return conn.execute(
                sa.insert(m.webhooks)
                .values(
                    project_id=project_id, url=fields["url"], events=list(fields["events"]),
                    secret=secret, active=bool(active), created=now, updated=now,
                )
                .returning(m.webhooks.c.id)
            ).scalar_one()  # fmt: skip

    def get_webhook(self, webhook_id: int) -> Webhook:
        w = m.webhooks
        with self._read() as conn:
            return _webhook(self._one(conn, sa.select(w).where(w.c.id == webhook_id), "webhook",
                                      webhook_id))  # fmt: skip

    def list_webhooks(self, project_id: int | None = None) -> list[Webhook]:
        w = m.webhooks
        stmt = sa.select(w).order_by(w.c.id)
        if project_id is not None:
            stmt = stmt.where(w.c.project_id == project_id)
        with self._read() as conn:
            return [_webhook(r) for r in conn.execute(stmt)]

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
        if "events" in fields:
            fields["events"] = list(fields["events"])
        now = _resolve_now(now)
        w = m.webhooks
        with self._write() as conn:
            row = conn.execute(
                sa.update(w).where(w.c.id == webhook_id).values(**fields, updated=now)
                .returning(*w.c)
            ).first()  # fmt: skip
            if row is None:
                raise NotFound("webhook", webhook_id)
            return _webhook(row)

    def delete_webhook(self, webhook_id: int) -> None:
        with self._write() as conn:
            n = conn.execute(sa.delete(m.webhooks).where(m.webhooks.c.id == webhook_id)).rowcount
            if n == 0:
                raise NotFound("webhook", webhook_id)

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
        w, d = m.webhooks, m.webhook_deliveries
        out: list[int] = []
        with self._write() as conn:
            self._get_project(conn, project_id)
            hooks = conn.execute(
                sa.select(w.c.id, w.c.events).where(w.c.project_id == project_id, w.c.active)
            ).all()
            for hook_id, events in hooks:
                if event not in events:
                    continue
                new = conn.execute(
                    self._insert(d)
                    .values(
                        webhook_id=hook_id, project_id=project_id, event=event,
                        event_id=event_id, body=dict(body), status="pending", attempts=0,
                        next_attempt_at=now, history=[], created=now, updated=now,
                    )
                    .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                    .returning(d.c.id)
                ).scalar()  # fmt: skip
                if new is not None:
                    out.append(new)
        return out

    def get_delivery(self, delivery_id: int) -> Delivery:
        d = m.webhook_deliveries
        with self._read() as conn:
            return _delivery(self._one(conn, sa.select(d).where(d.c.id == delivery_id),
                                       "delivery", delivery_id))  # fmt: skip

    def list_deliveries(
        self,
        webhook_id: int | None = None,
        *,
        project_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[Delivery]:
        d = m.webhook_deliveries
        stmt = sa.select(d).order_by(d.c.id.desc())
        if webhook_id is not None:
            stmt = stmt.where(d.c.webhook_id == webhook_id)
        if project_id is not None:
            stmt = stmt.where(d.c.project_id == project_id)
        if status is not None:
            _check_choice("status", status, DELIVERY_STATUSES)
            stmt = stmt.where(d.c.status == status)
        if limit is not None:
            stmt = stmt.limit(max(0, int(limit)))
        with self._read() as conn:
            return [_delivery(r) for r in conn.execute(stmt)]

    def claim_next_delivery(
        self, worker_id: str, lease_seconds: float = 60, now: datetime | None = None
    ) -> Delivery | None:
        now = _resolve_now(now)
        until = _lease_until(now, lease_seconds)
        d = m.webhook_deliveries
        stmt = (
            sa.select(d.c.id)
            .where(d.c.status.in_(("pending", "delivering")), d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at, d.c.id)
        )
        with self._read() as conn:  # an idle worker polls: no write lock when nothing is due
            if conn.execute(stmt.limit(1)).first() is None:
                return None
        with self._write() as conn:
            delivery_id = conn.execute(self._lock_first(stmt)).scalar()
            if delivery_id is None:
                return None
            row = conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(
                    status="delivering", worker_id=worker_id, attempts=d.c.attempts + 1,
                    next_attempt_at=until, updated=now,
                )
                .returning(*d.c)
            ).one()  # fmt: skip
            return _delivery(row)

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
        d = m.webhook_deliveries
        with self._write() as conn:
            held = self._lock_delivery(conn, delivery_id)
            if held.status != "delivering" or held.worker_id != worker_id:
                raise LeaseError(
                    f"delivery {delivery_id} is {held.status} and not held by worker "
                    f"{worker_id!r}; claim it with claim_next_delivery first."
                )
            status, history = _attempt_record(held, status_code, error, retry_at, now)
            row = conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(
                    status=status, worker_id=None, next_attempt_at=retry_at,
                    last_status_code=status_code, last_error=error, history=history,
                    updated=now,
                )
                .returning(*d.c)
            ).one()  # fmt: skip
            return _delivery(row)

    def _lock_delivery(self, conn: sa.Connection, delivery_id: int) -> Delivery:
        d = m.webhook_deliveries
        stmt = sa.select(d).where(d.c.id == delivery_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return _delivery(self._one(conn, stmt, "delivery", delivery_id))

    def requeue_delivery(self, delivery_id: int, now: datetime | None = None) -> Delivery:
        now = _resolve_now(now)
        d = m.webhook_deliveries
        with self._write() as conn:
            held = self._lock_delivery(conn, delivery_id)
            if held.status == "delivering":
                raise LeaseError(
                    f"delivery {delivery_id} is being sent by worker {held.worker_id!r}; "
                    "wait for the attempt to finish."
                )
            row = conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(status="pending", attempts=0, next_attempt_at=now, updated=now)
                .returning(*d.c)
            ).one()
            return _delivery(row)

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
        r, p = m.import_runs, m.projects
        key = import_options_key(options)
        with self._write() as conn:
            # one run per file and options: serialised like ensure_job (SQLite: BEGIN
            # IMMEDIATE; PostgreSQL: a key-share lock on the project row)
            lock = sa.select(p.c.id).where(p.c.id == project_id)
            if self.dialect == "postgresql":
                lock = lock.with_for_update(key_share=True)
            self._one(conn, lock, "project", project_id)
            row = conn.execute(
                sa.select(r)
                .where(
                    r.c.project_id == project_id,
                    r.c.file_sha256 == file_sha256,
                    r.c.options_key == key,
                    r.c.status == "running",
                )
                .order_by(r.c.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                return _import_run(row), False
            row = conn.execute(
                sa.insert(r)
                .values(
                    project_id=project_id, file_sha256=file_sha256, options_key=key,
                    options=dict(options), n_rows=n_rows, rows_committed=0, status="running",
                    n_created=0, n_duplicates=0, n_changed=0, n_updated=0, changed_ids=[],
                    created=now, updated=now,
                )
                .returning(*r.c)
            ).one()  # fmt: skip
            return _import_run(row), True

    def get_import_run(self, import_run_id: int) -> ImportRun:
        stmt = sa.select(m.import_runs).where(m.import_runs.c.id == import_run_id)
        with self._read() as conn:
            return _import_run(self._one(conn, stmt, "import run", import_run_id))

    def find_import_run(
        self, project_id: int, file_sha256: str, options: Mapping[str, Any]
    ) -> ImportRun | None:
        r = m.import_runs
        stmt = (
            sa.select(r)
            .where(
                r.c.project_id == project_id,
                r.c.file_sha256 == file_sha256,
                r.c.options_key == import_options_key(options),
            )
            .order_by(r.c.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _import_run(row)

    def _lock_import_run(self, conn: sa.Connection, import_run_id: int) -> ImportRun:
        stmt = sa.select(m.import_runs).where(m.import_runs.c.id == import_run_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return _import_run(self._one(conn, stmt, "import run", import_run_id))

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
        r = m.import_runs
        with self._write() as conn:
            # the run's row lock makes a second process that resumed the same import wait,
            # then see the moved checkpoint and write nothing
            run = self._lock_import_run(conn, import_run_id)
            _check_import_batch(run, start_row, n_rows)
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            project = self._get_project(conn, run.project_id)
            w, _ = self._write_batch(conn, project, items, on_duplicate, now)
            row = conn.execute(
                sa.update(r)
                .where(r.c.id == import_run_id)
                .values(rows_committed=start_row + n_rows, updated=now, **_merge_written(run, w))
                .returning(*r.c)
            ).one()
            return _import_run(row)

    def finish_import_run(self, import_run_id: int, now: datetime | None = None) -> ImportRun:
        now = _resolve_now(now)
        r = m.import_runs
        with self._write() as conn:
            run = self._lock_import_run(conn, import_run_id)
            if run.status == "running" and run.rows_committed != run.n_rows:
                raise ImportConflictError(
                    f"import run {run.id} has {run.rows_committed:,} of {run.n_rows:,} rows "
                    "committed; write the rest before finishing it."
                )
            row = conn.execute(
                sa.update(r)
                .where(r.c.id == import_run_id)
                .values(status="done", updated=now)
                .returning(*r.c)
            ).one()
            return _import_run(row)
