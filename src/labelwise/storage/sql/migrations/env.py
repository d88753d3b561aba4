"""Alembic environment for labelwise's SQL store.

Run through :meth:`labelwise.storage.sql.SqlStore.upgrade` (or ``labelwise db upgrade``), which
passes an open connection in ``config.attributes["connection"]``; with only a URL in the config
(``sqlalchemy.url``) a connection is made here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from labelwise.storage.sql.models import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"), poolclass=sa.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
