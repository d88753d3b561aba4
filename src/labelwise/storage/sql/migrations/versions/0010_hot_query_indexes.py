"""indexes for the hot queries of a million-item project (issue 12)

- items ``(project_id, status, id)`` replaces ``(project_id, status)``: a round's unlabelled ids
  and labelled ids + labels come back in id order straight from the index. PostgreSQL orders
  equal keys by heap position, so the old index left a sort of every unlabelled id; SQLite's
  index already ended in the rowid and reads the same.
- items ``(project_id, id)``: the keyset page ``WHERE project_id = ? AND id > ? ORDER BY id
  LIMIT n`` is one index probe however deep the page.
- tasks ``(round_id, status)`` replaces ``(round_id)``: "does round r still have queued or
  leased tasks?" after every answer.
- annotations ``(task_id)``: a task's answers, and what deleting a task (``ON DELETE SET
  NULL``) looks up; without it every deleted task scanned every annotation.

The feature versions of issue 12 are recorded in a manifest file beside their files
(``labelwise.service.features``), not in a table: see there why.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_project_status_id", ["project_id", "status", "id"])
        batch_op.create_index("ix_items_project_id_id", ["project_id", "id"])
        batch_op.drop_index("ix_items_project_status")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_round_status", ["round_id", "status"])
        batch_op.drop_index("ix_tasks_round_id")
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.create_index("ix_annotations_task_id", ["task_id"])


def downgrade() -> None:
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_index("ix_annotations_task_id")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_round_id", ["round_id"])
        batch_op.drop_index("ix_tasks_round_status")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_project_status", ["project_id", "status"])
        batch_op.drop_index("ix_items_project_id_id")
        batch_op.drop_index("ix_items_project_status_id")
