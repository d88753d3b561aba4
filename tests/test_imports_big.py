"""Big imports (issue 12): memory bounded by the batch, not the file; a kill mid-import resumed
without duplicates; a bad last row of a big file stores nothing.

The importing runs in a child process, so its peak resident memory (``VmHWM``) is its own and a
SIGKILL is a real kill. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from labelwise.importers import ImportValidationError, import_items
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import postgres_schema_store, sqlite_store

POSTGRES_URL = os.environ.get(
    "LABELWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: the options an import run of ``import_items(path)`` (a CSV, defaults) is keyed by
OPTIONS = {"format": "csv", "on_duplicate": "skip", "text_field": "text", "id_field": "id",
           "label_field": None}  # fmt: skip

# The child: import ``path`` into project ``pid`` (resumable), print the result as JSON.
# ``--pause`` sleeps after each committed batch, so that the parent can kill it mid-file.
# ``--baseline`` first imports a small file into another project and prints the peak RSS
# after it, then the peak after the big import.
CHILD = r"""
import json, sys, time
from labelwise.importers import import_items
from labelwise.storage.sql import SqlStore

url, schema, pid, path, batch, pause = sys.argv[1:7]
baseline = sys.argv[7] if len(sys.argv) > 7 else None
args = {"options": f"-csearch_path={schema}"} if schema else {}
store = SqlStore(url, connect_args=args)

def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

def slow(p):
    if p.phase == "write" and p.rows > p.resumed_at:
        time.sleep(float(pause))

out = {}
if baseline:
    base_pid = store.create_project("baseline", "multiclass", ["neg", "pos"])
    import_items(store, base_pid, baseline, batch_size=int(batch), resumable=True)
    out["baseline_kb"] = peak_kb()
r = import_items(store, int(pid), path, batch_size=int(batch), resumable=True, on_progress=slow)
out.update(n_created=r.n_created, n_skipped=r.n_skipped, peak_kb=peak_kb())
print(json.dumps(out), flush=True)
"""


def _write_csv(path: Path, n: int, *, last: str | None = None) -> Path:
    """``id,text`` rows ``r0`` .. ``r{n-1}`` (short rows); ``last`` replaces the last row."""
    with path.open("w") as f:
        f.write("id,text\n")
        step = 100_000
        for start in range(0, n, step):
            f.write("".join(f"r{i},t{i % 10}\n" for i in range(start, min(n, start + step))))
        if last is not None:
            f.write(last + "\n")
    return path


def _child(tmp_path: Path, url: str, schema: str, pid: int, path: Path, batch: int,
           pause: float = 0.0, baseline: Path | None = None) -> subprocess.Popen:  # fmt: skip
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    argv = [sys.executable, str(script), url, schema, str(pid), str(path), str(batch), str(pause)]
    if baseline is not None:
        argv.append(str(baseline))
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _sqlite(tmp_path: Path):
    path = tmp_path / "big.db"
    return sqlite_store(path), f"sqlite:///{path}", ""


def _postgres(tmp_path: Path):
    ctx = postgres_schema_store(POSTGRES_URL)
    return ctx, POSTGRES_URL, None  # the schema is read from the store once open


def _open(backend: str, tmp_path: Path):
    return _sqlite(tmp_path) if backend == "sqlite" else _postgres(tmp_path)


def _search_path(store: SqlStore) -> str:
    with store._engine.connect() as conn:
        return conn.exec_driver_sql("SHOW search_path").scalar().strip('"')


def test_a_million_row_import_grows_memory_by_the_batch_not_the_file(tmp_path):
    """RSS growth of the importing process from a 10,000-row import to a 1,000,000-row one
    (peak ``VmHWM``, SQLite file): bounded by the batch (10,000 rows), not the file."""
    n = 1_000_000
    big = _write_csv(tmp_path / "big.csv", n)
    small = _write_csv(tmp_path / "small.csv", 10_000)
    ctx, url, schema = _sqlite(tmp_path)
    with ctx as store:
        pid = store.create_project("big", "multiclass", ["neg", "pos"])
        proc = _child(tmp_path, url, schema, pid, big, 10_000, baseline=small)
        res = _result(proc, timeout=1200)
        assert (res["n_created"], res["n_skipped"]) == (n, 0)
        assert store.count_items(pid) == n
        growth_mb = (res["peak_kb"] - res["baseline_kb"]) / 1024
        assert growth_mb < 150, f"peak RSS grew by {growth_mb:.0f} MB over 1M rows"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_import_killed_mid_file_resumes_after_its_last_committed_batch(backend, tmp_path):
    n, batch = 30_000, 1_000
    path = _write_csv(tmp_path / "items.csv", n)
    ctx, url, schema = _open(backend, tmp_path)
    with ctx as store:
        schema = schema if schema is not None else _search_path(store)
        pid = store.create_project("p", "multiclass", ["neg", "pos"])
        proc = _child(tmp_path, url, schema, pid, path, batch, pause=0.3)
        deadline = time.monotonic() + 600
        run = None
        while run is None or run.rows_committed < 3 * batch:  # some batches are in
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the child committed nothing in 10 minutes"
            time.sleep(0.1)
            run = store.find_import_run(pid, _sha256(path), OPTIONS)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        run = store.get_import_run(run.id)
        committed = run.rows_committed
        assert run.status == "running" and 3 * batch <= committed < n
        # the checkpoint and the rows were committed together: exactly its rows are in
        assert store.count_items(pid) == committed
        before = _ids(store, pid)
        result = import_items(store, pid, path, batch_size=batch, resumable=True)
        assert result.resumed_at == committed and result.import_run_id == run.id
        # the whole file reported; nothing before the checkpoint written again (no skips)
        assert (result.n_read, result.n_created, result.n_skipped) == (n, n, 0)
        after = _ids(store, pid)
        assert len(after) == n and len(set(after.values())) == n  # one item per external id
        assert {k: after[k] for k in before} == before  # the first items kept their ids
        assert store.get_import_run(run.id).status == "done"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_bad_last_row_of_a_big_file_stores_nothing(backend, tmp_path):
    n = 50_000
    path = _write_csv(tmp_path / "items.csv", n, last=",no id")  # line n + 2
    ctx, _, _ = _open(backend, tmp_path)
    with ctx as store:
        pid = store.create_project("p", "multiclass", ["neg", "pos"])
        # resumable by size: the file is over resumable_bytes
        assert path.stat().st_size > 100_000
        with pytest.raises(ImportValidationError, match=f"line {n + 2}: field 'id'"):
            import_items(store, pid, path, batch_size=5_000, resumable_bytes=100_000)
        assert store.count_items(pid) == 0
        assert store.find_import_run(pid, _sha256(path), OPTIONS) is None


def test_small_files_stay_one_transaction_and_fail_is_never_batched(tmp_path):
    path = _write_csv(tmp_path / "items.csv", 30)
    with sqlite_store(tmp_path / "s.db") as store:
        pid = store.create_project("p", "multiclass", ["neg", "pos"])
        r = import_items(store, pid, path, batch_size=10)
        assert (r.n_created, r.import_run_id) == (30, None)  # under resumable_bytes
        path2 = _write_csv(tmp_path / "more.csv", 40)
        r = import_items(store, pid, path2, batch_size=10, resumable=True, on_duplicate="fail")
        assert (r.n_created, r.import_run_id) == (10, None)
        r = import_items(store, pid, path2, batch_size=10, resumable=True)
        assert (r.n_created, r.n_skipped, r.resumed_at) == (0, 40, 0)
        assert r.import_run_id is not None


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ids(store: SqlStore, pid: int) -> dict[str, int]:
    with store._engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT external_id, id FROM items WHERE project_id = :p"), {"p": pid}
        )
        return dict(rows.all())


def test_progress_reports_bytes_while_checking_and_rows_while_writing(tmp_path):
    path = _write_csv(tmp_path / "items.csv", 25)
    size = path.stat().st_size
    seen = []
    with sqlite_store(tmp_path / "p.db") as store:
        pid = store.create_project("p", "multiclass", ["neg", "pos"])
        import_items(store, pid, path, batch_size=10, resumable=True, on_progress=seen.append)
    # (phase, rows, rows in the file, bytes read of the file); the file is one 8 KiB read
    assert [(p.phase, p.rows, p.n_rows, p.bytes_read, p.n_bytes) for p in seen] == [
        ("check", 10, None, size, size),
        ("check", 20, None, size, size),
        ("check", 25, 25, size, size),
        ("write", 0, 25, 0, size),
        ("write", 10, 25, size, size),
        ("write", 20, 25, size, size),
        ("write", 25, 25, size, size),
    ]


def test_cli_import_says_where_it_resumed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from labelwise.cli import app
    from labelwise.storage.base import NewItem

    db = tmp_path / "cli.db"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABELWISE_IMPORT_BATCH_SIZE", "10")
    monkeypatch.setenv("LABELWISE_IMPORT_RESUMABLE_BYTES", "100")  # the file is bigger
    path = _write_csv(tmp_path / "items.csv", 30)
    with sqlite_store(db) as store:
        pid = store.create_project("p", "multiclass", ["neg", "pos"])
        # an earlier run of the same import committed its first batch, then was killed
        run, _ = store.start_import_run(pid, _sha256(path), OPTIONS, n_rows=30)
        rows = [NewItem(f"r{i}", {"text": f"t{i}"}, {"source": "items.csv"}) for i in range(10)]
        store.write_import_batch(run.id, rows, start_row=0, n_rows=10)
    out = CliRunner().invoke(app, ["project", "import", "p", str(path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "resumed at row 10 (committed by an earlier run)" in text
    assert "imported 30 items into 'p' (30 rows read, 0 skipped as existing ids)" in text
