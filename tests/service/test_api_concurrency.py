"""50 annotators claiming from one queue through a real server never get the same task.

The API runs in its own process (``uvicorn --factory labelwise.service.app:create_app`` on
127.0.0.1 and a free port), on a SQLite file and on a fresh PostgreSQL database. 50 threads, each
with its own HTTP client and token, start together on a barrier and claim and label until the
queue answers 204. Every task must be handed out exactly once.
"""

from __future__ import annotations

import os
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

ADMIN = "concurrency-admin-token"
N_ANNOTATORS = 50
N_ITEMS = 150
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(database_url: str, data_dir):
    port = _free_port()
    env = {
        **os.environ,
        "LABELWISE_DATABASE_URL": database_url,
        "LABELWISE_ADMIN_TOKEN": ADMIN,
        "LABELWISE_WORKER": "external",
        "LABELWISE_DATA_DIR": str(data_dir),
        "LABELWISE_LEASE_SECONDS": "600",
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "labelwise.service.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a hang guard, not a speed limit
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read().decode()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not start in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'concurrency.db'}"


@pytest.fixture
def postgres_url():
    """A fresh database for this run (the server opens its store from a plain URL)."""
    name = f"lw_api_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _seed(base: str, seed_queue) -> tuple[int, list[str]]:
    """A project with one round of N_ITEMS queued tasks and N_ANNOTATORS member tokens."""
    return seed_queue(base, ADMIN, "queue", N_ITEMS, [f"a{i}" for i in range(N_ANNOTATORS)])


def _annotate(base: str, pid: int, token: str, barrier, claimed: list, errors: list) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            barrier.wait()
            while True:
                r = c.post(f"/api/projects/{pid}/tasks/next")
                if r.status_code == 204:
                    return
                r.raise_for_status()
                task = r.json()["task"]
                claimed.append((task["id"], token))
                label = "pos" if task["item_id"] % 2 else "neg"
                a = c.post(f"/api/tasks/{task['id']}/annotations", json={"label": label})
                a.raise_for_status()
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))
        barrier.abort()


def _run_annotators(base: str, seed_queue) -> None:
    pid, tokens = _seed(base, seed_queue)
    claimed: list[tuple[int, str]] = []
    errors: list[str] = []
    barrier = threading.Barrier(N_ANNOTATORS)
    threads = [
        threading.Thread(target=_annotate, args=(base, pid, t, barrier, claimed, errors))
        for t in tokens
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]
    counts = Counter(task_id for task_id, _ in claimed)
    assert [tid for tid, n in counts.items() if n > 1] == []  # nobody got a task twice
    assert len(counts) == N_ITEMS
    assert len({tok for _, tok in claimed}) > 1  # the work was actually shared
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
    ) as c:
        items = c.get(f"/api/projects/{pid}/items", params={"limit": 1000}).json()
        assert Counter(it["status"] for it in items) == {"labeled": N_ITEMS}
        jobs = c.get("/api/jobs", params={"project_id": pid}).json()
        # the completed batch queued exactly one retrain, even when several answers completed it
        # at the same moment (store.ensure_job; no worker runs here, so it is still queued)
        assert [(j["kind"], j["status"]) for j in jobs] == [("retrain", "queued")]


@pytest.mark.timeout(400)
def test_50_annotators_sqlite(sqlite_url, tmp_path, seed_queue):
    with _server(sqlite_url, tmp_path / "data") as base:
        _run_annotators(base, seed_queue)


@pytest.mark.postgres
@pytest.mark.timeout(400)
def test_50_annotators_postgres(postgres_url, tmp_path, seed_queue):
    with _server(postgres_url, tmp_path / "data") as base:
        _run_annotators(base, seed_queue)


# --------------------------------------------------------------------------- consensus

N_CONSENSUS_ANNOTATORS = 20
N_CONSENSUS_ITEMS = 40
K = 3


def _consensus_worker(base, pid, token, barrier, answered, errors) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            barrier.wait()
            while True:
                r = c.post(f"/api/projects/{pid}/tasks/next")
                if r.status_code == 204:
                    return
                r.raise_for_status()
                task = r.json()["task"]
                answered.append((task["item_id"], token))
                label = "pos" if task["item_id"] % 2 else "neg"
                c.post(
                    f"/api/tasks/{task['id']}/annotations", json={"label": label}
                ).raise_for_status()
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))
        barrier.abort()


@pytest.mark.postgres
@pytest.mark.timeout(400)
def test_consensus_items_get_k_distinct_annotators_under_20_concurrent_postgres(
    postgres_url, tmp_path
):
    """Half of the batch (the hardest by score) needs 3 answers. 20 annotators claim at once
    (PostgreSQL, FOR UPDATE SKIP LOCKED): every consensus item is answered by exactly 3 different
    people, every other item once, and every consensus item is resolved (all agree here)."""
    with _server(postgres_url, tmp_path / "data") as base:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
        ) as c:
            body = {
                "name": "consensus", "classes": ["neg", "pos"], "batch_size": N_CONSENSUS_ITEMS,
                "consensus_share": 0.5, "consensus_k": K,
                "strategy_params": {"random_fraction": 0.0},
            }  # fmt: skip
            pid = c.post("/api/projects", json=body).raise_for_status().json()["id"]
            tokens = [
                c.post("/api/annotators", json={"name": f"c{i}", "projects": [pid]})
                .raise_for_status()
                .json()["token"]
                for i in range(N_CONSENSUS_ANNOTATORS)
            ]
            items = [
                {"external_id": f"i{i}", "payload": {"text": f"item {i} word{i % 4}"}}
                for i in range(N_CONSENSUS_ITEMS)
            ]
            c.post(f"/api/projects/{pid}/items", json={"items": items}).raise_for_status()
            c.post(f"/api/projects/{pid}/rounds", timeout=60).raise_for_status()
        answered: list[tuple[int, str]] = []
        errors: list[str] = []
        barrier = threading.Barrier(N_CONSENSUS_ANNOTATORS)
        threads = [
            threading.Thread(
                target=_consensus_worker, args=(base, pid, t, barrier, answered, errors)
            )
            for t in tokens
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors[:5]
        assert len(answered) == len(set(answered))  # nobody answered an item twice
        per_item = Counter(item for item, _ in answered)
        n_hard = N_CONSENSUS_ITEMS // 2
        assert sorted(Counter(per_item.values()).items()) == [
            (1, N_CONSENSUS_ITEMS - n_hard),
            (K, n_hard),
        ]
        assert len({tok for _, tok in answered}) > K
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
        ) as c:
            got = c.get(f"/api/projects/{pid}/items", params={"limit": 1000}).json()
            assert Counter(it["status"] for it in got) == {"labeled": N_CONSENSUS_ITEMS}
            assert all(it["label"] == ("pos" if it["id"] % 2 else "neg") for it in got)
            q = c.get(f"/api/projects/{pid}/progress").json()["quality"]
            assert q["extra_annotations"] == n_hard * (K - 1)
