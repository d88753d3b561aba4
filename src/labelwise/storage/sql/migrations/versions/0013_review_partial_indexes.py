"""partial indexes for progress's data-quality counts (issue 12)

``/progress`` (the dashboard polls it) counts the items that went to review, by reason and
outcome, and the items that need consensus. It used to list every item of the project to do
so: a million ``Item`` objects per poll. Now it asks the store to count
(``count_review_items``), and these partial indexes hold only the rows counted, so the count
costs the few reviewed and consensus items, not the project.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 23:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    reviewed = sa.text("review_reason IS NOT NULL")
    consensus = sa.text("consensus > 1")
    op.create_index("ix_items_project_review", "items", ["project_id", "review_reason"],
                    sqlite_where=reviewed, postgresql_where=reviewed)  # fmt: skip
    op.create_index("ix_items_project_consensus", "items", ["project_id"],
                    sqlite_where=consensus, postgresql_where=consensus)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_items_project_consensus", table_name="items")
    op.drop_index("ix_items_project_review", table_name="items")
