"""import runs (issue 12): the checkpoint of a resumable import

One row per import of a big file into a project: the file's sha256 and the import options (and
the sha256 of their JSON, to look runs up), the rows in the file, the rows committed so far and
what the committed batches did. Each batch of rows and the run's new ``rows_committed`` are
written in one transaction, so an import killed mid-file resumes after its last committed batch.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("options_key", sa.String(length=64), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("rows_committed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("n_created", sa.BigInteger(), nullable=False),
        sa.Column("n_duplicates", sa.BigInteger(), nullable=False),
        sa.Column("n_changed", sa.BigInteger(), nullable=False),
        sa.Column("n_updated", sa.BigInteger(), nullable=False),
        sa.Column("changed_ids", JSON, nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_import_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_runs_project_file", ["project_id", "file_sha256", "options_key", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_import_runs_project_file")
    op.drop_table("import_runs")
