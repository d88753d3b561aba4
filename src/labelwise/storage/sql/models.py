"""SQLAlchemy Core tables of the SQL store. Alembic migrations (``migrations/``) create them.

Times are stored as naive UTC (``TIMESTAMP WITHOUT TIME ZONE``) and returned timezone-aware by
:class:`UTCDateTime`, the same on SQLite and PostgreSQL. JSON columns are ``JSONB`` on
PostgreSQL and ``JSON`` (text) on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["JSONType", "UTCDateTime", "metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, naive UTC in the database, aware UTC datetimes out."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _fk(name: str, target: str, nullable: bool = False, index: bool = True) -> sa.Column[int]:
    return sa.Column(
        name, sa.Integer, sa.ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index
    )


projects = sa.Table(
    "projects",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("task_type", sa.String(20), nullable=False),
    sa.Column("classes", JSONType, nullable=False),
    sa.Column("strategy", sa.String(100), nullable=False),
    sa.Column("strategy_params", JSONType, nullable=False),
    sa.Column("cold_start_strategy", sa.String(100), nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("stopping", JSONType, nullable=False),
    sa.Column("label_cost", sa.Float, nullable=False),
    sa.Column("show_predictions", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    # migration 0006: data-quality settings
    sa.Column("consensus_share", sa.Float, nullable=False, server_default="0"),
    sa.Column("consensus_k", sa.Integer, nullable=False, server_default="3"),
    sa.Column("consensus_method", sa.String(20), nullable=False, server_default="majority"),
    sa.Column("consensus_min_agreement", sa.Float, nullable=False, server_default="0.6"),
    sa.Column("gold_rate", sa.Float, nullable=False, server_default="0"),
    sa.Column("gold_min_accuracy", sa.Float, nullable=False, server_default="0.7"),
    # migration 0012: bumped by imports that replace items' content (feature versions)
    sa.Column("items_revision", sa.BigInteger, nullable=False, server_default="0"),
)

annotators = sa.Table(
    "annotators",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(200), nullable=True, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("skills", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("token_expires", UTCDateTime, nullable=True),
    sa.Column("token_revoked", UTCDateTime, nullable=True),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "annotator_id",
        sa.Integer,
        sa.ForeignKey("annotators.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("role", sa.String(20), nullable=False, server_default="annotator"),
)

items = sa.Table(
    "items",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("external_id", sa.String(500), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("meta", JSONType, nullable=False),
    sa.Column("features_path", sa.String(1000), nullable=True),
    sa.Column("features_row", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("label", JSONType, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    # migration 0006: consensus, gold and review. resolved_by has no foreign key: SQLite would
    # rebuild the items table to add one, and a deleted reviewer's id is still history.
    sa.Column("consensus", sa.Integer, nullable=False, server_default="1"),
    sa.Column("gold_label", JSONType, nullable=True),
    sa.Column("review_reason", sa.String(20), nullable=True),
    sa.Column("review_outcome", sa.String(20), nullable=True),
    sa.Column("resolved_by", sa.Integer, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("project_id", "external_id"),
    # migration 0010: a round's ids by status, and keyset pages, come back in id order from
    # these (it replaced ix_items_project_status)
    sa.Index("ix_items_project_status_id", "project_id", "status", "id"),
    sa.Index("ix_items_project_id_id", "project_id", "id"),
)
# migration 0013: progress counts the few items that went to review or need consensus without
# reading a million that did not (partial indexes: only those rows are in them)
sa.Index(
    "ix_items_project_review",
    items.c.project_id,
    items.c.review_reason,
    sqlite_where=items.c.review_reason.is_not(None),
    postgresql_where=items.c.review_reason.is_not(None),
)
sa.Index(
    "ix_items_project_consensus",
    items.c.project_id,
    sqlite_where=items.c.consensus > 1,
    postgresql_where=items.c.consensus > 1,
)

rounds = sa.Table(
    "rounds",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(100), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("closed", UTCDateTime, nullable=True),
    sa.UniqueConstraint("project_id", "number"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    _fk("round_id", "rounds.id", index=False),  # ix_tasks_round_status (migration 0010)
    _fk("item_id", "items.id"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column(
        "lease_owner",
        sa.Integer,
        sa.ForeignKey("annotators.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("lease_expires", UTCDateTime, nullable=True),
    sa.Column("priority", sa.Float, nullable=False),
    sa.Column("routing_tag", sa.String(100), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),  # migration 0002
)
# migration 0003: the claim walks this index in its ORDER BY (priority DESC, id) and stops at
# the first row; it replaced ix_tasks_project_status_priority (project_id, status, priority)
sa.Index("ix_tasks_claim", tasks.c.project_id, tasks.c.status, tasks.c.priority.desc(), tasks.c.id)
sa.Index("ix_tasks_round_status", tasks.c.round_id, tasks.c.status)  # migration 0010

annotations = sa.Table(
    "annotations",
    metadata,
    _id(),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True),
    _fk("item_id", "items.id"),
    sa.Column(
        "annotator_id",
        sa.Integer,
        sa.ForeignKey("annotators.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("label", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("guideline_version", sa.Integer, nullable=True),  # migration 0005
    sa.Index("ix_annotations_annotator_created", "annotator_id", "created"),
    sa.Index("ix_annotations_task_id", "task_id"),  # migration 0010
    # Undo deletes annotations; without AUTOINCREMENT SQLite would hand a deleted id to the next
    # annotation, and an id would no longer name one event in the audit trail.
    sqlite_autoincrement=True,
)

# migration 0005: versioned guidelines (a new row per edit) and annotators' flags on items
guidelines = sa.Table(
    "guidelines",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("classes", JSONType, nullable=False),
    sa.Column("hard_cases", sa.Text, nullable=False),
    sa.Column(
        "author_id",
        sa.Integer,
        sa.ForeignKey("annotators.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "version"),
)

flags = sa.Table(
    "flags",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    _fk("item_id", "items.id"),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True),
    sa.Column(
        "annotator_id",
        sa.Integer,
        sa.ForeignKey("annotators.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    sa.Column(
        "round_id", sa.Integer, sa.ForeignKey("rounds.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("metrics", JSONType, nullable=False),
    sa.Column("calibration", JSONType, nullable=False),
    sa.Column("artifact_path", sa.String(1000), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("n_labels", sa.Integer, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "content_hash"),
)

dataset_rows = sa.Table(
    "dataset_rows",
    metadata,
    sa.Column(
        "dataset_version_id",
        sa.Integer,
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("external_id", sa.String(500), primary_key=True),
    sa.Column("item_id", sa.Integer, nullable=True),
    sa.Column("label", JSONType, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    _id(),
    sa.Column("kind", sa.String(20), nullable=False),
    _fk("project_id", "projects.id", nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("leased_until", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=True),  # a retry's backoff (issue 11)
    sa.Index("ix_jobs_status_id", "status", "id"),
)

# ---- webhooks (issue 11), migration 0007: endpoints per project and their durable deliveries
webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", JSONType, nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),  # HMAC key: stored, cannot be hashed
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _fk("webhook_id", "webhooks.id", index=False),
    _fk("project_id", "projects.id"),
    sa.Column("event", sa.String(50), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),  # due time, or lease end
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("history", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.UniqueConstraint("webhook_id", "event_id"),  # one delivery per event and endpoint
    # the claim: WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now
    sa.Index("ix_webhook_deliveries_claim", "status", "next_attempt_at", "id"),
    sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
)

# model sources (issue 11): a project's model source and its versions of predictions/embeddings
model_sources = sa.Table(
    "model_sources",
    metadata,
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("endpoint", sa.String(2000), nullable=True),
    sa.Column("updated", UTCDateTime, nullable=False),
)

model_uploads = sa.Table(
    "model_uploads",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_cols", sa.Integer, nullable=False),
    sa.Column("classes", JSONType, nullable=False),
    sa.Column("model_version", sa.String(200), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "kind", "version"),
)

# resumable imports (issue 12), migration 0011: the checkpoint of a big import, committed with
# each batch of rows
import_runs = sa.Table(
    "import_runs",
    metadata,
    _id(),
    _fk("project_id", "projects.id", index=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("options_key", sa.String(64), nullable=False),  # sha256 of the options' JSON
    sa.Column("options", JSONType, nullable=False),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("rows_committed", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("n_created", sa.BigInteger, nullable=False),
    sa.Column("n_duplicates", sa.BigInteger, nullable=False),
    sa.Column("n_changed", sa.BigInteger, nullable=False),
    sa.Column("n_updated", sa.BigInteger, nullable=False),
    sa.Column("changed_ids", JSONType, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # start_import_run / find_import_run: the newest run of a file and options in a project
    sa.Index("ix_import_runs_project_file", "project_id", "file_sha256", "options_key", "id"),
)
