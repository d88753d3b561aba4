"""items revision (issue 12): a project's feature version knows when items changed in place

``projects.items_revision`` counts the imports that replaced what some item's features are
computed from (``on_duplicate=update`` with another payload, tags or ``.npy`` row). A feature
version records the revision it was built at; at another revision the service builds a new
one, so replaced items never keep their old rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 23:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("items_revision", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("items_revision")
