"""tasks: claim index (project_id, status, priority DESC, id)

Replaces ix_tasks_project_status_priority. The claim orders by ``priority DESC, id``; with this
index the database reads the first claimable row in order instead of sorting every queued task
of the project on each claim.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_claim",
            ["project_id", "status", sa.literal_column("priority DESC"), "id"],
            unique=False,
        )
        batch_op.drop_index("ix_tasks_project_status_priority")


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_project_status_priority", ["project_id", "status", "priority"], unique=False
        )
        batch_op.drop_index("ix_tasks_claim")
