"""The store contract (labelwise.testing.store) on memory, SQLite and PostgreSQL."""

from labelwise.testing.store import *  # noqa: F403
