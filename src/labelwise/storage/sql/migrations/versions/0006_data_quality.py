"""data quality: consensus, gold and review settings and item columns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_PROJECT_COLUMNS = (
    ("consensus_share", sa.Float(), "0"),
    ("consensus_k", sa.Integer(), "3"),
    ("consensus_method", sa.String(20), "majority"),
    ("consensus_min_agreement", sa.Float(), "0.6"),
    ("gold_rate", sa.Float(), "0"),
    ("gold_min_accuracy", sa.Float(), "0.7"),
)
_ITEM_COLUMNS = ("gold_label", "review_reason", "review_outcome", "resolved_by", "resolved_at")


def upgrade() -> None:
    # Only ADD COLUMN (with server defaults for existing rows): SQLite alters both tables in
    # place, so nothing is rebuilt and no foreign key or AUTOINCREMENT setting is lost.
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for name, type_, default in _PROJECT_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=False, server_default=default))
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consensus", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("gold_label", JSON, nullable=True))
        batch_op.add_column(sa.Column("review_reason", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("review_outcome", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        for name in ("consensus", *_ITEM_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for name, _, _ in _PROJECT_COLUMNS:
            batch_op.drop_column(name)
