"""Store fixtures: ``memory``, ``sqlite`` (temporary file), ``postgres`` (own schema).

``store`` is parametrised over all three, so every contract test runs on every backend. The
PostgreSQL server at 127.0.0.1:5432 is part of CI: when it is unreachable the ``postgres`` tests
fail, they do not skip. SQL stores are migrated once per session (SQLite: a template file copied
per test; PostgreSQL: one schema with a random name, emptied between tests, dropped at the end).
"""

from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa

from labelwise.storage import InMemoryStore
from labelwise.storage.sql import SqlStore
from labelwise.storage.sql.models import metadata
from labelwise.testing.store import postgres_schema_store, sqlite_store

POSTGRES_URL = os.environ.get(
    "LABELWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def memory():
    return InMemoryStore()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    with sqlite_store(path):
        pass  # migrated, then disposed (WAL checkpointed into the file)
    return path


@pytest.fixture
def sqlite(_sqlite_template, tmp_path):
    path = tmp_path / "labelwise.db"
    shutil.copy(_sqlite_template, path)
    store = SqlStore(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture(scope="session")
def _postgres_session():
    with postgres_schema_store(POSTGRES_URL) as store:
        yield store


@pytest.fixture
def postgres(_postgres_session):
    store = _postgres_session
    with store._engine.begin() as conn:  # DELETE beats TRUNCATE on tiny tables
        for table in reversed(metadata.sorted_tables):
            conn.execute(sa.delete(table))
    return store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request):
    return request.getfixturevalue(request.param)
