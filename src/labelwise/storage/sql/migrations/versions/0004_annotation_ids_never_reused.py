"""annotations: ids are never reused on SQLite (AUTOINCREMENT)

Undo deletes an annotation; SQLite's default rowid allocation would then give the deleted id to
the next annotation. PostgreSQL sequences never reuse ids, so only SQLite's table is rebuilt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "annotations", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
