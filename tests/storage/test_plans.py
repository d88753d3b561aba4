"""The hot queries of a large project use their indexes on SQLite and PostgreSQL (issue 12).

Each test runs the real store method, captures the SELECTs it sends, and asks the database
for their plans (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``). PostgreSQL plans a tiny table with a
sequential scan whatever indexes exist, so its plans are taken with ``enable_seqscan = off``:
the planner then still scans when no index can serve the query, and the test fails. The claim
query has its own plan tests in ``test_sql.py``. ``python tests/storage/test_plans.py`` prints
every plan (docs/scaling.md, *Query plans*).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from labelwise.storage import NewItem
from labelwise.storage.sql import SqlStore

N = 1000  # the project's items; another project holds 8 N, so the project filter counts


def _project(store: SqlStore) -> tuple[int, list[int], int, int]:
    """A project of ``N`` items beside one of ``8 N``, a quarter labelled, a round of 100
    tasks with one answer beside a round of 2,000; (project_id, item ids, round_id, a task)."""
    pid = store.create_project("p", "multiclass", ["a", "b"])
    other = store.create_project("q", "multiclass", ["a", "b"])
    for p, n in ((pid, N), (other, 8 * N)):  # the other project's ids come after
        store.create_items(
            p, [NewItem(f"x{i}", {}, label="a" if i % 4 == 0 else None) for i in range(n)]
        )
    ids = store.list_item_ids(pid).tolist()
    rid = store.create_round(pid, "entropy")
    task_ids = store.create_tasks(rid, [i for i in ids if (i % 4) != 0][:100])
    busy = store.create_round(other, "entropy")  # other rounds' tasks: the round filter counts
    store.create_tasks(busy, store.list_item_ids(other, "unlabeled")[: 20 * 100].tolist())
    ann = store.create_annotator("a")
    for i in range(200):  # enough tokens that a lookup by hash beats reading them all
        store.create_annotator(f"u{i}", token_hash=f"hash{i}")
    store.add_member(pid, ann)
    claimed = store.claim_next_task(pid, ann)
    store.create_annotation(claimed.id, ann, "b")
    if store.dialect == "postgresql":  # statistics and the visibility map, as autovacuum keeps
        with store._engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("items", "tasks", "annotations", "annotators", "project_members"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return pid, ids, rid, task_ids[-1]


def _explain(store: SqlStore, statement: str, params: Any = None) -> str:
    with store._engine.connect() as conn:
        if store.dialect == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params or ()).all()
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, params or {}).all()
            conn.exec_driver_sql("RESET enable_seqscan")
        return "\n".join(str(r[-1]) for r in rows)


def _plans(store: SqlStore, table: str, call: Callable[[], Any]) -> list[str]:
    """Plans of every SELECT on ``table`` that ``call`` sends."""
    seen: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            seen.append((statement, parameters))

    sa.event.listen(store._engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", grab)
    assert seen, f"no SELECT on {table}"
    return [_explain(store, s, p) for s, p in seen]


def hot_queries(store: SqlStore) -> dict[str, tuple[str, list[str]]]:
    """Each hot query's name -> (the index it must use, its plans)."""
    pid, ids, rid, task_id = _project(store)
    token = "hash150"
    annotations_by_task = f"SELECT id, label FROM annotations WHERE task_id = {task_id}"
    store.send_to_review(ids[1:4], "label_issue")
    review, consensus = _plans(store, "items", lambda: store.count_review_items(pid))
    return {
        "unlabelled ids (a round's pool)": (
            "ix_items_project_status_id",
            _plans(store, "items", lambda: store.list_item_ids(pid, "unlabeled")),
        ),
        # PostgreSQL may fetch the labelled rows by bitmap and sort them: O(labels), not O(pool)
        "labelled ids + labels (sorted: the labels)": (
            "ix_items_project_status_id",
            _plans(store, "items", lambda: store.list_labeled_arrays(pid)),
        ),
        "item keyset page": (
            "ix_items_project_id_id",
            _plans(store, "items", lambda: store.list_items(pid, limit=100, after_id=ids[700])),
        ),
        "item keyset page of one status": (
            "ix_items_project_status_id",
            _plans(
                store, "items", lambda: store.list_items(pid, "unlabeled", 100, after_id=ids[700])
            ),
        ),
        "tasks of a round still open": (
            "ix_tasks_round_status",
            _plans(
                store, "tasks", lambda: store.has_tasks(pid, round_id=rid, statuses=("queued",))
            ),
        ),
        # ORDER BY id sorts the round's tasks (a batch, hundreds), never the pool's
        "tasks of a round (sorted: one batch)": (
            "ix_tasks_round_status",
            _plans(store, "tasks", lambda: store.list_tasks(pid, round_id=rid)),
        ),
        "annotations of a task": ("ix_annotations_task_id", [_explain(store, annotations_by_task)]),
        # progress's data-quality counts (partial indexes: only reviewed / consensus rows)
        "items that went to review (sorted: grouped by reason)": (
            "ix_items_project_review",
            [review],
        ),
        "items that need consensus": ("ix_items_project_consensus", [consensus]),
        "token lookup (sorted: one annotator's memberships)": (
            "uq_annotators_token_hash"
            if store.dialect == "postgresql"
            else "autoindex_annotators_2",
            _plans(store, "annotators", lambda: store.find_annotator_by_token(token)),
        ),
    }


def _check(store: SqlStore) -> None:
    sort = "TEMP B-TREE" if store.dialect == "sqlite" else "Sort"
    for name, (index, plans) in hot_queries(store).items():
        for plan in plans:
            assert index in plan, f"{name}: {plan}"
            if "sorted" not in name:
                assert sort not in plan, f"{name}: {plan}"  # read in index order
            scans = [
                line
                for line in plan.splitlines()
                if ("Seq Scan" in line or line.strip().startswith("SCAN "))
                and "CONSTANT ROW" not in line  # SQLite's SELECT EXISTS(...) wrapper
            ]
            assert not scans, f"{name}: {plan}"


def _indexes(store: SqlStore, table: str) -> set[str]:
    with store._engine.connect() as conn:
        return {ix["name"] for ix in sa.inspect(conn).get_indexes(table)}


def test_migration_0010_adds_the_indexes_and_downgrades(tmp_path):
    from alembic import command

    from labelwise.storage.sql.store import alembic_config

    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0009")
    before = {t: _indexes(store, t) for t in ("items", "tasks", "annotations")}
    assert "ix_items_project_status" in before["items"] and "ix_tasks_round_id" in before["tasks"]
    store.upgrade("0010")
    assert {"ix_items_project_status_id", "ix_items_project_id_id"} <= _indexes(store, "items")
    assert "ix_items_project_status" not in _indexes(store, "items")
    assert "ix_tasks_round_status" in _indexes(store, "tasks")
    assert "ix_tasks_round_id" not in _indexes(store, "tasks")
    assert "ix_annotations_task_id" in _indexes(store, "annotations")
    command.downgrade(alembic_config(store.url), "0009")
    assert {t: _indexes(store, t) for t in before} == before
    store.close()


def test_migration_0013_adds_the_partial_indexes_and_downgrades(tmp_path):
    from alembic import command

    from labelwise.storage.sql.store import alembic_config

    store = SqlStore(f"sqlite:///{tmp_path}/lw.db")
    store.upgrade("0012")
    before = _indexes(store, "items")
    store.upgrade("0013")
    assert _indexes(store, "items") - before == {
        "ix_items_project_review",
        "ix_items_project_consensus",
    }
    command.downgrade(alembic_config(store.url), "0012")
    assert _indexes(store, "items") == before
    store.close()


def test_hot_queries_use_their_indexes_on_sqlite(sqlite):
    _check(sqlite)


@pytest.mark.postgres
def test_hot_queries_use_their_indexes_on_postgresql(postgres):
    _check(postgres)


if __name__ == "__main__":  # print the plans for the docs
    import tempfile

    from labelwise.testing.store import postgres_schema_store, sqlite_store

    url = sys.argv[1] if len(sys.argv) > 1 else "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    with tempfile.TemporaryDirectory() as d, sqlite_store(f"{d}/lw.db") as lite:
        for name, (_, plans) in hot_queries(lite).items():  # type: ignore[arg-type]
            print(f"SQLite, {name}:\n  " + "\n  ".join(plans))
    with postgres_schema_store(url) as pg:
        for name, (_, plans) in hot_queries(pg).items():  # type: ignore[arg-type]
            print(f"PostgreSQL, {name}:\n  " + "\n  ".join(plans))
