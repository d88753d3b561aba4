"""project roles and token lifecycle (issue 14): project_members.role, annotators.token_expires
and annotators.token_revoked

A membership carries a role (``annotator``, ``reviewer`` or ``owner``); memberships made before
this revision become ``annotator``, what they could do before. A token may expire and may be
revoked; tokens made before this revision do neither.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="annotator")
        )
    with op.batch_alter_table("annotators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_expires", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("token_revoked", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotators", schema=None) as batch_op:
        batch_op.drop_column("token_revoked")
        batch_op.drop_column("token_expires")
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.drop_column("role")
