"""A file upload over ``import_async_bytes`` is imported by a worker job (issue 12): 202 with
the job, its progress in GET /api/jobs/{id}, resumed by the next worker after a kill."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labelwise.importers import import_run_options
from labelwise.service.app import create_app
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.storage.base import NewItem, utcnow

from .conftest import ADMIN

N = 250  # rows of the big file: ~3.5 kB, over the 2,000 bytes set below


def _csv(n: int = N, last: str | None = None) -> bytes:
    rows = "".join(f"r{i},text number {i}\n" for i in range(n))
    return ("id,text\n" + rows + ("" if last is None else last + "\n")).encode()


@pytest.fixture
def settings(tmp_path):
    return Settings(
        worker="external", data_dir=tmp_path / "data", import_async_bytes=2_000,
        import_batch_size=100, job_lease_seconds=60, job_max_attempts=3,
    )  # fmt: skip


@pytest.fixture
def client(store, settings):
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def _project(client) -> int:
    r = client.post("/api/projects", json={"name": "big", "classes": ["neg", "pos"]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload(client, pid: int, body: bytes):
    return client.post(f"/api/projects/{pid}/items:import", files={"file": ("big.csv", body)})


def test_a_big_upload_is_a_job_with_progress(client, store, settings):
    pid = _project(client)
    r = _upload(client, pid, _csv())
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["kind"], job["status"], job["project_id"]) == ("import", "queued", pid)
    got = client.get(f"/api/jobs/{job['id']}").json()
    assert got["progress"] == {"phase": "checking", "rows_done": 0, "rows_total": None}
    assert store.count_items(pid) == 0
    done = Worker(store, settings).run_once()
    assert (done.id, done.status) == (job["id"], "done"), done.error
    assert store.count_items(pid) == N
    assert store.find_item(pid, "r0").metadata["source"] == "big.csv"
    got = client.get(f"/api/jobs/{job['id']}").json()
    assert got["progress"] == {"phase": "done", "rows_done": N, "rows_total": N}
    assert not Path(job["payload"]["path"]).exists()  # the upload is deleted once imported
    # a small upload is still imported in the request
    r = client.post(f"/api/projects/{pid}/items:import", files={"file": ("s.csv", _csv(3))})
    assert r.status_code == 201 and r.json() == {"n_read": 3, "n_created": 0, "n_skipped": 3}


def test_a_killed_import_job_is_resumed_by_the_next_worker(client, store, settings):
    pid = _project(client)
    job_id = _upload(client, pid, _csv()).json()["id"]
    # a worker claims the job, commits one batch of 100 rows and dies (its lease runs out)
    t0 = utcnow()
    job = store.claim_next_job("dead-worker", lease_seconds=60, now=t0)
    p = job.payload
    run, _ = store.start_import_run(pid, p["file_sha256"], p["options"], n_rows=N)
    batch = [NewItem(f"r{i}", {"text": f"text number {i}"}, {"source": "big.csv"})
             for i in range(100)]  # fmt: skip
    store.write_import_batch(run.id, batch, start_row=0, n_rows=100)
    first = {i: store.find_item(pid, f"r{i}").id for i in range(100)}
    progress = client.get(f"/api/jobs/{job_id}").json()["progress"]
    assert progress == {"phase": "writing", "rows_done": 100, "rows_total": N}
    # another worker takes the job over once the lease expired, and resumes at row 100
    done = Worker(store, settings, worker_id="next").run_once(now=t0 + timedelta(seconds=61))
    assert (done.status, done.attempts, done.worker_id) == ("done", 2, "next"), done.error
    assert store.count_items(pid) == N
    assert {i: store.find_item(pid, f"r{i}").id for i in range(100)} == first
    run = store.get_import_run(run.id)
    assert (run.status, run.rows_committed, run.n_created, run.n_duplicates) == ("done", N, N, 0)


def test_a_bad_last_row_fails_the_job_and_stores_nothing(client, store, settings):
    pid = _project(client)
    job_id = _upload(client, pid, _csv(last=",no id")).json()["id"]
    job = Worker(store, settings).run_once()
    # failed at the first attempt: every retry would read the same file to the same line
    assert (job.id, job.status, job.attempts) == (job_id, "failed", 1)
    assert f"line {N + 2}: field 'id'" in job.error and "not retried" in job.error
    assert store.count_items(pid) == 0
    opts = import_run_options("csv", "skip", "text", "id", None)
    assert store.find_import_run(pid, job.payload["file_sha256"], opts) is None
