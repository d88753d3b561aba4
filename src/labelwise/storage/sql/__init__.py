"""SQL backend of the store: SQLite (embedded default) and PostgreSQL, migrated by Alembic."""

from labelwise.storage.sql.store import (
    MIGRATIONS_DIR,
    SqlStore,
    alembic_config,
    normalize_database_url,
)

__all__ = ["MIGRATIONS_DIR", "SqlStore", "alembic_config", "normalize_database_url"]
