"""kill -9 the server mid-stream: no acknowledged annotation is lost, nothing is duplicated.

The server runs as ``python -m labelwise.cli serve`` on 127.0.0.1 and a free port (SQLite file;
PostgreSQL in a schema of its own). One annotator claims and labels in a loop while another
thread sends SIGKILL to the server once enough answers were acknowledged. The server is
restarted on the same database and the store is read directly:

- every annotation acknowledged with a 2xx before the kill is there, with its label;
- no task and no item has two annotations; at most the one request in flight at the kill is
  unaccounted for (it may or may not have committed; it was never acknowledged);

then the stream resumes on the restarted server until the queue is empty.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa

from labelwise.storage import open_store

ADMIN = "kill9-admin-token"
N_ITEMS = 150
KILL_AFTER = 40  # acknowledged annotations before the kill
POSTGRES_URL = os.environ.get(
    "LABELWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(database_url: str, data_dir) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "LABELWISE_ADMIN_TOKEN": ADMIN,
        "LABELWISE_DATA_DIR": str(data_dir),
        "LABELWISE_LEASE_SECONDS": "600",
    }
    cmd = [
        sys.executable, "-m", "labelwise.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--database-url", database_url, "--no-worker",
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a hang guard, not a speed limit
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start in 60 s")
        time.sleep(0.2)


@contextmanager
def _stopped_at_exit(procs: list[subprocess.Popen]):
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _seed(base: str, seed_queue) -> tuple[int, str]:
    """A project with one round of N_ITEMS queued tasks and one annotator's token."""
    pid, (token,) = seed_queue(base, ADMIN, "kill9", N_ITEMS, ["ann"])
    return pid, token


def _label(item_id: int) -> str:
    return "pos" if item_id % 2 else "neg"


def _stream(base: str, pid: int, token: str, acked: dict, limit: int) -> str:
    """Claim and label until the queue is empty ("empty"), the server dies ("died") or
    ``limit`` loops; acknowledged answers go to ``acked`` (task id -> (item id, label))."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for _ in range(limit):
            try:
                r = c.post(f"/api/projects/{pid}/tasks/next")
                if r.status_code == 204:
                    return "empty"
                r.raise_for_status()
                task = r.json()["task"]
                label = _label(task["item_id"])
                a = c.post(f"/api/tasks/{task['id']}/annotations", json={"label": label})
            except httpx.TransportError:
                return "died"
            assert a.status_code == 201, a.text
            acked[task["id"]] = (task["item_id"], label)
    return "limit"


def _check_store(database_url: str, pid: int, acked: dict) -> list:
    with open_store(database_url) as store:
        anns = store.list_annotations(pid)
        by_task = Counter(a.task_id for a in anns)
        by_item = Counter(a.item_id for a in anns)
        assert [t for t, n in by_task.items() if n > 1] == []  # nothing duplicated
        assert [i for i, n in by_item.items() if n > 1] == []
        stored = {a.task_id: (a.item_id, a.label) for a in anns}
        lost = {t: v for t, v in acked.items() if stored.get(t) != v}
        assert lost == {}  # every acknowledged annotation survived the kill
        for task_id in acked:
            assert store.get_task(task_id).status == "done"
            assert store.get_item(acked[task_id][0]).label == acked[task_id][1]
        return anns


def _kill9_roundtrip(database_url: str, data_dir, seed_queue) -> None:
    procs: list[subprocess.Popen] = []
    with _stopped_at_exit(procs):
        proc, base = _start(database_url, data_dir)
        procs.append(proc)
        pid, token = _seed(base, seed_queue)
        acked: dict[int, tuple[int, str]] = {}

        def killer() -> None:
            deadline = time.monotonic() + 300  # a hang guard, not a speed limit
            while len(acked) < KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.001)
            os.kill(proc.pid, signal.SIGKILL)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        outcome = _stream(base, pid, token, acked, limit=N_ITEMS + 10)
        t.join(timeout=70)
        assert outcome == "died"  # the kill landed mid-stream
        assert proc.wait(timeout=10) == -signal.SIGKILL
        n_before = len(acked)
        assert KILL_AFTER <= n_before < N_ITEMS

        proc2, base2 = _start(database_url, data_dir)
        procs.append(proc2)
        anns = _check_store(database_url, pid, acked)
        assert n_before <= len(anns) <= n_before + 1  # + the answer in flight, if committed

        outcome = _stream(base2, pid, token, acked, limit=N_ITEMS + 10)
        assert outcome == "empty"  # the stream resumed and drained the queue
        anns = _check_store(database_url, pid, acked)
        with open_store(database_url) as store:
            done = len(store.list_tasks(pid, status="done"))
            leased = store.list_tasks(pid, status="leased")
        # only the task claimed when the server died can still be leased (lease: 600 s)
        assert len(leased) <= 1
        assert done == len(anns) >= N_ITEMS - 1
        assert len(acked) >= N_ITEMS - 1


@pytest.mark.timeout(600)
def test_kill9_sqlite(tmp_path, seed_queue):
    _kill9_roundtrip(f"sqlite:///{tmp_path / 'kill9.db'}", tmp_path / "data", seed_queue)


@pytest.fixture
def postgres_schema_url():
    """The test database with a fresh schema as the search path (dropped afterwards)."""
    schema = f"lw_kill9_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_kill9_postgres(postgres_schema_url, tmp_path, seed_queue):
    _kill9_roundtrip(postgres_schema_url, tmp_path / "data", seed_queue)
