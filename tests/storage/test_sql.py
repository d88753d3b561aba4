"""SQL-backend specifics: migrations, SQLite pragmas and transactions, dialect branches."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from labelwise.errors import LabelwiseError
from labelwise.storage import InMemoryStore, open_store
from labelwise.storage.sql import SqlStore, alembic_config, normalize_database_url
from labelwise.storage.sql import models as m


def _head() -> str:
    """The newest migration: several can land at once, so tests ask rather than hard-code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrations_run_once_and_match_the_models(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/a/b/lw.db")  # parent folders are created
    assert store.current_revision() is None
    store.upgrade()
    store.upgrade()  # idempotent
    assert store.current_revision() == _head()
    cfg = alembic_config(store.url)
    command.check(cfg)  # raises if models.py and the migrations disagree
    store.close()


def test_migration_0002_adds_task_confidence_to_existing_tasks(tmp_path):
    from labelwise.testing.store import T0

    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0001")  # a database from before the confidence column
    with store._engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (name, task_type, classes, strategy, strategy_params, "
            "cold_start_strategy, batch_size, stopping, label_cost, show_predictions, created) "
            "VALUES ('p', 'binary', '[\"a\", \"b\"]', 'entropy', '{}', 'random', 10, '{}', "
            "1.0, 0, '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO items (project_id, external_id, payload, meta, status, created) "
            "VALUES (1, 'x', '{}', '{}', 'queued', '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO rounds (project_id, number, strategy, created) "
            "VALUES (1, 1, 'entropy', '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO tasks (project_id, round_id, item_id, status, priority, routing_tag, "
            "created) VALUES (1, 1, 1, 'queued', 0.5, 'a', '2026-01-01 12:00:00')"
        )
    store.upgrade()
    assert store.current_revision() == _head()
    (task,) = store.list_tasks(1)
    assert (task.priority, task.routing_tag, task.confidence, task.created) == (0.5, "a", None, T0)
    store.update_tasks([task.id], priorities=[0.7], confidences=[0.8])
    assert store.get_task(task.id).confidence == 0.8
    command.downgrade(alembic_config(store.url), "0001")  # and back: the task survives
    with store._engine.connect() as conn:
        cols = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
        assert "confidence" not in cols
        assert conn.exec_driver_sql("SELECT priority FROM tasks").scalar() == 0.7
    store.close()


def test_migration_0005_adds_guidelines_flags_and_keeps_old_annotations(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0004")  # a database from before guidelines and flags
    pid = 1
    with store._engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (name, task_type, classes, strategy, strategy_params, "
            "cold_start_strategy, batch_size, stopping, label_cost, show_predictions, created) "
            "VALUES ('p', 'binary', '[\"a\", \"b\"]', 'entropy', '{}', 'random', 10, '{}', "
            "1.0, 0, '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO items (project_id, external_id, payload, meta, status, label, created) "
            "VALUES (1, 'x', '{}', '{}', 'labeled', '\"a\"', '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO annotations (item_id, label, created) "
            "VALUES (1, '\"a\"', '2026-01-01 12:00:00')"
        )
    store.upgrade()
    (ann,) = store.list_annotations(pid)
    assert (ann.label, ann.guideline_version) == ("a", None)  # made before any guidelines
    gid = store.create_guidelines(pid, "# v1", hard_cases="ask")
    assert store.get_guidelines(gid).version == 1
    store.create_flag(1, store.create_annotator("ann"), "blurry")
    command.downgrade(alembic_config(store.url), "0004")  # and back: the annotation survives
    with store._engine.connect() as conn:
        insp = sa.inspect(conn)
        assert "guidelines" not in insp.get_table_names()
        assert "flags" not in insp.get_table_names()
        assert "guideline_version" not in {c["name"] for c in insp.get_columns("annotations")}
        assert conn.exec_driver_sql("SELECT label FROM annotations").scalar() == '"a"'
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'annotations'"
        ).scalar()
        assert "AUTOINCREMENT" in sql  # migration 0004's guarantee outlives the downgrade
    store.close()


def test_migration_0009_keeps_members_as_annotators_and_tokens_working(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0008")  # a database from before project roles and token lifecycle
    with store._engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (name, task_type, classes, strategy, strategy_params, "
            "cold_start_strategy, batch_size, stopping, label_cost, show_predictions, created) "
            "VALUES ('p', 'binary', '[\"a\", \"b\"]', 'entropy', '{}', 'random', 10, '{}', "
            "1.0, 0, '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO annotators (name, token_hash, role, skills, created) "
            "VALUES ('ann', 'h1', 'annotator', '[]', '2026-01-01 12:00:00')"
        )
        conn.exec_driver_sql("INSERT INTO project_members (project_id, annotator_id) VALUES (1, 1)")
    store.upgrade()
    a = store.find_annotator_by_token("h1")
    assert (a.project_roles, a.token_expires, a.token_revoked) == ({1: "annotator"}, None, None)
    store.set_member_role(1, 1, "owner")
    command.downgrade(alembic_config(store.url), "0008")  # and back: the membership survives
    with store._engine.connect() as conn:
        assert "role" not in {c["name"] for c in sa.inspect(conn).get_columns("project_members")}
        assert conn.exec_driver_sql("SELECT annotator_id FROM project_members").scalar() == 1
    store.close()


def test_migrations_downgrade_to_base(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/lw.db", upgrade=True)
    command.downgrade(alembic_config(store.url), "base")
    with store._engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    store.close()


def test_sqlite_pragmas(sqlite):
    with sqlite._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_sqlite_writes_begin_immediate_and_reads_do_not(sqlite):
    seen: list[str] = []

    @sa.event.listens_for(sqlite._engine, "before_cursor_execute")
    def log(conn, cursor, statement, *args):
        seen.append(statement)

    sqlite.create_project("p")
    assert seen[0] == "BEGIN IMMEDIATE"
    seen.clear()
    sqlite.list_projects()
    assert seen[0] == "BEGIN"


def test_sqlite_foreign_keys_are_enforced(sqlite):
    with sqlite._engine.connect() as conn:
        try:
            conn.execute(
                sa.insert(m.rounds).values(
                    project_id=999, number=1, strategy="x", created=sa.func.current_timestamp()
                )
            )
        except sa.exc.IntegrityError:
            return
    raise AssertionError("inserting a round for a missing project should fail")


def test_claim_query_skips_locked_rows_on_postgresql(sqlite, postgres):
    pick = sa.select(m.tasks.c.id)
    lite = sqlite._lock_first(pick).compile(dialect=sqlite_dialect.dialect())
    assert "FOR UPDATE" not in str(lite)  # BEGIN IMMEDIATE already excludes other writers
    pg = postgres._lock_first(pick).compile(dialect=postgresql.dialect())
    assert str(pg).endswith("FOR UPDATE SKIP LOCKED")


def test_normalize_database_url():
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unsupported_database():
    with pytest.raises(LabelwiseError, match="unsupported database"):
        SqlStore("mysql://u@h/db")


def test_open_store(tmp_path):
    assert isinstance(open_store("memory://"), InMemoryStore)
    store = open_store(f"sqlite:///{tmp_path}/lw.db", upgrade=True)
    assert isinstance(store, SqlStore) and store.current_revision() == _head()
    store.close()


def _task_indexes(store: SqlStore) -> set[str]:
    with store._engine.connect() as conn:
        return {ix["name"] for ix in sa.inspect(conn).get_indexes("tasks")}


def test_migration_0003_swaps_in_the_claim_index(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0002")
    assert "ix_tasks_project_status_priority" in _task_indexes(store)
    store.upgrade()
    assert "ix_tasks_claim" in _task_indexes(store)
    assert "ix_tasks_project_status_priority" not in _task_indexes(store)
    command.downgrade(alembic_config(store.url), "0002")
    assert "ix_tasks_project_status_priority" in _task_indexes(store)
    assert "ix_tasks_claim" not in _task_indexes(store)
    store.close()


def _claim_plans(store: SqlStore, n: int = 2000) -> list[str]:
    """EXPLAIN of every task query a claim runs (the UPDATE that picks and leases the task in
    one statement included), on a project with ``n`` queued tasks."""
    from labelwise.storage import NewItem

    pid = store.create_project("p", "multiclass", ["a", "b"])
    store.create_items(pid, [NewItem(f"x{i}", {}) for i in range(n)])
    rid = store.create_round(pid, "entropy")
    ids = [it.id for it in store.list_items(pid)]
    store.create_tasks(rid, ids, priorities=[(i * 7919) % 101 / 101 for i in range(n)])
    ann = store.create_annotator("a")
    if store.dialect == "postgresql":
        with store._engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE tasks")
    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip()[:6].upper()
        if verb in ("SELECT", "UPDATE") and "FROM tasks" in statement:
            seen.append((statement, parameters))

    sa.event.listen(store._engine, "before_cursor_execute", grab)
    try:
        assert store.claim_next_task(pid, ann, max_leases=5) is not None
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", grab)
    assert seen
    plans = []
    with store._engine.connect() as conn:
        for statement, params in seen:
            statement = statement.replace("FOR UPDATE SKIP LOCKED", "")
            prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            plans.append("\n".join(str(r[-1]) for r in rows))
    return plans


def test_claim_walks_the_claim_index_in_order_on_sqlite(sqlite):
    for plan in _claim_plans(sqlite):
        assert "ix_tasks_claim" in plan, plan
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan  # no sort of every queued task


@pytest.mark.postgres
def test_claim_walks_the_claim_index_in_order_on_postgresql(postgres):
    for plan in _claim_plans(postgres):
        assert "ix_tasks_claim" in plan, plan
        assert "Sort" not in plan, plan  # read in index order, stop at the first row


@pytest.mark.postgres
def test_postgresql_pool_holds_a_connection_per_request_thread(postgres):
    # 40 kept (the API's 40 request threads) + 10 on demand: a pool smaller than the thread
    # count closes and reopens PostgreSQL connections on every request under load
    pool = SqlStore(postgres.url)._engine.pool
    assert (pool.size(), pool._max_overflow) == (40, 10)
    pool.dispose()


def test_find_annotator_by_token_lists_memberships(sqlite):
    p1, p2 = sqlite.create_project("p1", classes=["a", "b"]), sqlite.create_project("p2")
    aid = sqlite.create_annotator("a", token_hash="h", skills=["x"])
    assert sqlite.find_annotator_by_token("h").projects == ()
    sqlite.add_member(p2, aid)
    sqlite.add_member(p1, aid)
    got = sqlite.find_annotator_by_token("h")
    assert (got.id, got.skills, got.projects) == (aid, ("x",), (p1, p2))
    assert sqlite.find_annotator_by_token("nope") is None


def _statements_during(store: SqlStore, fn) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    return seen


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_first_import_reads_no_stored_items(backend, request):
    # issue 14: the first big import on PostgreSQL was quadratic because every batch ran a
    # SELECT over the items imported so far, under a plan cached while the table was empty.
    # New ids must cost one unique-index probe (ON CONFLICT) and no query over the table.
    from labelwise.storage.base import NewItem

    store = request.getfixturevalue(backend)
    pid = store.create_project("big", "multiclass", ["neg", "pos"])
    rows = [NewItem(f"e{i}", {"text": "t"}) for i in range(30)]
    statements = _statements_during(store, lambda: store.create_items(pid, rows, batch_size=10))
    reads = [s for s in statements if s.upper().startswith("SELECT") and re.search(r"\bitems\b", s)]
    assert reads == [], reads
    assert store.count_items(pid) == 30
    # a re-import does look the duplicates up: by the unique (project_id, external_id) index
    again = _statements_during(store, lambda: store.create_items(pid, rows, batch_size=10))
    assert any("external_id IN" in s or "external_id = ANY" in s for s in again), again
