"""The service commands of the ``labelwise`` CLI on a temporary SQLite database.

serve/kill -9 is covered by test_kill9.py; here: db upgrade, project create/list/import/export/
status, token create, the worker process (SIGTERM) and the demo project.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.settings import Settings
from labelwise.storage import open_store

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh SQLite URL, also set as LABELWISE_DATABASE_URL (data dir under tmp_path)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    return url


def run(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    return result.output


def store_of(url):
    return open_store(url)


@pytest.fixture
def reviews(db):
    ok("project", "create", "reviews", "--classes", "great,other", "--task-type", "binary")
    return db


def write_csv(path, rows, header=("id", "text", "label")):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------- db


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path):
    from alembic.script import ScriptDirectory

    from labelwise.storage.sql import alembic_config

    url = f"sqlite:///{tmp_path / 'new.db'}"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert f"revision {head}" in ok("db", "upgrade", "--database-url", url).output
    assert f"revision {head}" in ok("db", "upgrade", "--database-url", url).output


def test_db_upgrade_rejects_memory():
    assert "memory://" in fails("db", "upgrade", "--database-url", "memory://")


def test_unsupported_database_url_is_one_line():
    out = fails("project", "list", "--database-url", "mysql://x@localhost/db")
    assert "unsupported database" in out


# --------------------------------------------------------------------------- project create


def test_project_create_with_every_option(db):
    out = ok(
        "project", "create", "digits", "--classes", "0,1,2", "--strategy", "information_density",
        "--strategy-param", "model=nb", "--strategy-param", "beta=2",
        "--batch-size", "25", "--label-cost", "0.5", "--stopping", '{"max_labels": 300}',
        "--cold-start", "stratified", "--show-predictions", "--json",
    ).output  # fmt: skip
    data = json.loads(out)
    assert data["classes"] == ["0", "1", "2"]
    assert data["strategy_params"] == {"model": "nb", "beta": 2}  # "2" parsed as JSON
    assert data["batch_size"] == 25 and data["label_cost"] == 0.5
    assert data["stopping"] == {"max_labels": 300}
    assert data["cold_start_strategy"] == "stratified" and data["show_predictions"] is True
    listed = json.loads(ok("project", "list", "--json").output)
    assert [p["name"] for p in listed] == ["digits"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "a,a"], "unique"),
        (["--classes", ""], "needs classes"),
        (["--classes", "a,b,c", "--task-type", "binary"], "exactly 2 classes"),
        (["--classes", "a,b", "--task-type", "regression"], "task_type"),
        (["--classes", "a,b", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["--classes", "a,b", "--cold-start", "entropy"], "cannot start cold"),
        (["--classes", "a,b", "--strategy-param", "noequals"], "key=value"),
        (["--classes", "a,b", "--stopping", "{not json"], "JSON object"),
        (["--classes", "a,b", "--stopping", "[1]"], "JSON object"),
        (["--classes", "a,b", "--stopping", '{"bogus": 1}'], "stopping"),
        (["--classes", "a,b", "--batch-size", "0"], "batch_size"),
        (["--classes", "a,b", "--label-cost", "-1"], "label_cost"),
    ],
)
def test_project_create_bad_input_writes_nothing(db, args, message):
    assert message in fails("project", "create", "p", *args)
    assert json.loads(ok("project", "list", "--json").output) == []


def test_project_create_taken_name(reviews):
    assert "exists" in fails("project", "create", "reviews", "--classes", "a,b")


# --------------------------------------------------------------------------- import


def test_import_csv_with_labels_then_reimport_skips(reviews, tmp_path):
    path = write_csv(
        tmp_path / "r.csv", [("r1", "tasty", "great"), ("r2", "stale", "other"), ("r3", "ok", "")]
    )
    out = ok("project", "import", "reviews", str(path), "--label-field", "label", "--json")
    assert json.loads(out.output) == {"n_read": 3, "n_created": 3, "n_skipped": 0}
    again = ok("project", "import", "1", str(path), "--label-field", "label")  # by id
    assert "imported 0 items" in again.output and "3 skipped" in again.output
    with store_of(reviews) as store:
        pid = store.find_project("reviews").id
        assert store.count_items(pid) == 3
        assert store.count_items(pid, "labeled") == 2
        assert store.find_item(pid, "r1").payload == {"text": "tasty"}


def test_import_tabular_jsonl_without_ids(reviews, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1, "b": 2.5}\n{"a": 3, "b": 4}\n')
    ok("project", "import", "reviews", str(path), "--text-field", "", "--id-field", "")
    with store_of(reviews) as store:
        items = store.list_items(store.find_project("reviews").id)
    assert [(it.external_id, it.payload) for it in items] == [
        ("1", {"a": 1, "b": 2.5}),
        ("2", {"a": 3, "b": 4}),
    ]


def test_import_bad_row_imports_nothing(reviews, tmp_path):
    rows = [(f"r{i}", f"text {i}", "great") for i in range(50)] + [("bad", "x", "meh")]
    path = write_csv(tmp_path / "bad.csv", rows)
    out = fails("project", "import", "reviews", str(path), "--label-field", "label")
    assert "line 52" in out and "meh" in out  # header is line 1, the bad row line 52
    with store_of(reviews) as store:
        assert store.count_items(store.find_project("reviews").id) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "FILE"], "no project named or numbered 'nope'"),
        (["reviews", "missing.csv"], "does not exist"),
        (["reviews", "FILE.txt"], "cannot tell the format"),
        (["reviews", "FILE", "--format", "xml"], "unknown import format"),
    ],
)
def test_import_bad_arguments(reviews, tmp_path, args, message):
    path = write_csv(tmp_path / "ok.csv", [("r1", "fine", "")])
    (tmp_path / "ok.csv.txt").write_text("id,text\nr1,x\n")
    args = [str(path) if a == "FILE" else str(path) + ".txt" if a == "FILE.txt" else a
            for a in args]  # fmt: skip
    if args[1] == "missing.csv":
        args[1] = str(tmp_path / "missing.csv")
    assert message in fails("project", "import", *args)
    with store_of(reviews) as store:
        assert store.count_items(store.find_project("reviews").id) == 0


# --------------------------------------------------------------------------- export


@pytest.fixture
def labelled(reviews, tmp_path):
    path = write_csv(
        tmp_path / "l.csv",
        [("b", "meh", "other"), ("a", "yum", "great"), ("c", "unlabelled", "")],
    )
    ok("project", "import", "reviews", str(path), "--label-field", "label")
    return reviews


def test_export_csv_to_file_and_jsonl_to_stdout(labelled, tmp_path):
    out = tmp_path / "labels.csv"
    res = ok("project", "export", "reviews", "--format", "csv", "--out", str(out))
    assert "2 labels" in res.output and "dataset version 1" in res.output
    assert out.read_text() == "id,label\na,great\nb,other\n"  # sorted by id, c unlabelled
    res = runner.invoke(app, ["project", "export", "reviews", "--format", "jsonl"])
    assert res.exit_code == 0
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines == [{"id": "a", "label": "great"}, {"id": "b", "label": "other"}]
    # same labels, same version: the snapshot is reused, and --version 1 reads it
    assert "dataset version 1" in ok("project", "export", "reviews", "--version", "1").output


def test_export_bad_input_writes_no_file(labelled, tmp_path):
    out = tmp_path / "x.csv"
    assert "no dataset version 7" in fails(
        "project", "export", "reviews", "--version", "7", "--out", str(out)
    )
    assert "csv" in fails("project", "export", "reviews", "--format", "xml", "--out", str(out))
    assert not out.exists()
    assert list(tmp_path.glob(".x.csv*")) == []
    missing_dir = tmp_path / "no" / "x.csv"
    assert "does not exist" in fails("project", "export", "reviews", "--out", str(missing_dir))
    assert "no project" in fails("project", "export", "nope")


def test_export_streams_rows(labelled):
    from labelwise.service.admin import export_dataset_version

    with store_of(labelled) as store:
        pid = store.find_project("reviews").id
        dv = store.create_dataset_version(pid)
        buf = io.StringIO()
        assert export_dataset_version(store, dv, "csv", buf) == 2
    assert buf.getvalue().splitlines() == ["id,label", "a,great", "b,other"]


# --------------------------------------------------------------------------- status


def test_status_table_and_json(labelled, tmp_path):
    from labelwise.service.rounds import start_round, submit_annotation

    settings = Settings(database_url=labelled, data_dir=tmp_path / "data")
    with store_of(labelled) as store:
        pid = store.find_project("reviews").id
        start_round(store, pid, settings=settings)  # queues the one unlabelled item
        aid = store.create_annotator("ana")
        task = store.claim_next_task(pid, aid)
        submit_annotation(store, task.id, aid, "great", settings=settings)
    data = json.loads(ok("project", "status", "reviews", "--json").output)
    progress = data["progress"]
    assert progress["n_items"] == 3 and progress["n_labeled"] == 3
    assert progress["n_annotations"] == 1
    assert progress["cost"] == 1.0  # 1 annotation x label cost 1.0
    assert progress["rounds"] == 1 and progress["queue_depth"] == 0
    assert data["jobs"] == {"queued": 1}  # the finished batch queued a retrain
    assert progress["stopping_status"].startswith("stop now: the pool is exhausted")
    table = ok("project", "status", "reviews").output
    for word in ("queue depth", "labels saved vs random", "stopping", "1 queued"):
        assert word in table
    # no retrain has run: no time to cover, so no advice yet (issue 13)
    assert progress["batch_advice"]["batch_size"] is None
    assert "batch size advice" in table and "no advice yet" in table


def test_status_unknown_project(db):
    assert "no project named or numbered '9'" in fails("project", "status", "9")


# --------------------------------------------------------------------------- tokens


def test_token_create_prints_the_token_once_and_stores_its_hash(reviews):
    res = runner.invoke(
        app, ["token", "create", "ana", "--project", "reviews", "--skills", "de,fr"]
    )
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert len(token) >= 40
    with store_of(reviews) as store:
        user = store.find_annotator("ana")
        assert user.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert user.role == "annotator"
        assert user.skills == ("de", "fr")
        assert user.projects == (store.find_project("reviews").id,)
        assert token not in json.dumps([str(a) for a in store.list_annotators()])
    admin = json.loads(ok("token", "create", "boss", "--role", "admin", "--json").output)
    assert admin["annotator"]["role"] == "admin" and admin["token"] != token


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--role", "owner"], "role must be one of"),
        (["x", "--project", "nope"], "no project named"),
        (["ana"], "exists"),
    ],
)
def test_token_create_bad_input_creates_no_user(reviews, args, message):
    ok("token", "create", "ana")
    assert message in fails("token", "create", *args)
    with store_of(reviews) as store:
        assert [a.name for a in store.list_annotators()] == ["ana"]


# --------------------------------------------------------------------------- worker


@pytest.mark.timeout(120)
def test_worker_runs_jobs_and_stops_on_sigterm(labelled, tmp_path):
    with store_of(labelled) as store:
        pid = store.find_project("reviews").id
        job = store.create_job("select", pid)
    env = {**os.environ, "LABELWISE_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "labelwise.cli", "worker", "--database-url", labelled,
           "--poll", "0.1"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with store_of(labelled) as store:
            deadline = time.monotonic() + 300  # a hang guard, not a speed limit
            while store.get_job(job).status != "done" and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.2)
            assert store.get_job(job).status == "done"
            assert len(store.list_rounds(pid)) == 1  # the select job started a round
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        output = proc.stdout.read().decode()
        assert "SIGTERM: stopping" in output and "stopped" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- demo


def test_demo_project_is_idempotent_and_ready_to_label(tmp_path):
    from labelwise.service.demo_project import DEMO_PROJECT, setup_demo_project
    from labelwise.service.deps import hash_token

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}", data_dir=tmp_path / "d")
    with open_store(settings.database_url, upgrade=True) as store:
        first = setup_demo_project(store, settings, limit=60, batch_size=10)
        again = setup_demo_project(store, settings, limit=60, batch_size=10)
        assert first.created and not again.created
        assert (again.project_id, again.admin_token, again.annotator_token) == (
            first.project_id, first.admin_token, first.annotator_token,
        )  # fmt: skip
        pid = first.project_id
        project = store.get_project(pid)
        assert project.name == DEMO_PROJECT and project.classes == ("great", "other")
        assert first.n_items == 120 and first.n_validation == 60  # 60 pool + 60 validation
        val = store.list_items(pid, status="labeled")
        assert {it.metadata["split"] for it in val} == {"validation"}
        assert {it.label for it in val} <= {"great", "other"}
        assert len(store.list_rounds(pid)) == 1 and store.queue_depth(pid) == 10
        item = store.get_item(store.list_tasks(pid)[0].item_id)
        assert item.payload["text"] and item.metadata["product"]
        admin = store.find_annotator_by_token(hash_token(first.admin_token))
        annotator = store.find_annotator_by_token(hash_token(first.annotator_token))
        assert admin.role == "admin" and annotator.projects == (pid,)
        assert oct((tmp_path / "d" / "demo_tokens.json").stat().st_mode & 0o777) == "0o600"
        # tokens file lost: new users, new tokens, still one project
        (tmp_path / "d" / "demo_tokens.json").unlink()
        third = setup_demo_project(store, settings, limit=60)
        assert third.admin_token != first.admin_token
        assert store.find_annotator("demo-admin-2") is not None
        assert len(store.list_projects()) == 1


def test_serving_banner_shows_url_and_tokens():
    from labelwise.cli import _format_serving
    from labelwise.service.demo_project import DemoProject

    demo = DemoProject(3, True, "ADMIN-T", "ANN-T", 5000, 1000)
    text = _format_serving("http://127.0.0.1:8000", demo).plain
    assert "http://127.0.0.1:8000/docs" in text
    assert "ADMIN-T" in text and "ANN-T" in text
    assert "/api/projects/3/tasks/next" in text


def test_project_round_queues_a_batch_then_says_why_not(reviews, tmp_path):
    rows = [(f"r{i}", f"review {i} tastes {'great' if i % 2 else 'odd'}", "") for i in range(8)]
    write_csv(tmp_path / "r.csv", rows)
    ok("project", "import", "reviews", str(tmp_path / "r.csv"))
    assert "round 1 of project" in ok("project", "round", "reviews").output
    store = store_of(reviews)
    try:
        pid = store.find_project("reviews").id
        # batch size 10 (the default) > 8 items: the whole pool is queued
        assert store.queue_depth(pid) == 8
    finally:
        store.close()
    assert "pool is exhausted" in fails("project", "round", "reviews")
    assert "no project named or numbered 'nope'" in fails("project", "round", "nope")


def test_project_import_model_then_the_first_round_uses_it(reviews, tmp_path):
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [f"review {i} tastes {'great' if i % 2 else 'odd'}" for i in range(12)]
    write_csv(tmp_path / "r.csv", [(f"r{i}", t, "") for i, t in enumerate(texts)])
    ok("project", "import", "reviews", str(tmp_path / "r.csv"))
    # a "pre-trained" model on the project's own feature space (its TF-IDF width)
    store = store_of(reviews)
    try:
        from labelwise.service.features import project_features

        pid = store.find_project("reviews").id
        fm = project_features(store, pid, Settings(data_dir=tmp_path / "data"))
    finally:
        store.close()
    y = ["great" if i % 2 else "other" for i in range(12)]
    joblib.dump(LogisticRegression().fit(fm.X, y), tmp_path / "model.joblib")
    foreign = TfidfVectorizer().fit_transform(["apple pie", "cold tea"])
    joblib.dump(LogisticRegression().fit(foreign, [0, 1]), tmp_path / "foreign.joblib")
    assert "must be at least two of the project's classes" in fails(
        "project", "import-model", "reviews", str(tmp_path / "foreign.joblib")
    )
    assert (
        "next round uses it"
        in ok("project", "import-model", "reviews", str(tmp_path / "model.joblib")).output
    )
    assert (
        "started with diverse_margin" in ok("project", "round", "reviews").output
    )  # not the cold start


# --------------------------------------------------------------------------- serve --workers


def _wait(ready, proc, lines, timeout=600):
    """Poll ``ready()`` while the server process lives; fail with its output if it died."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_serve_with_two_workers_answers_and_runs_jobs_in_the_parent(labelled, tmp_path):
    import socket

    import httpx

    with store_of(labelled) as store:
        pid = store.find_project("reviews").id
        job = store.create_job("select", pid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LABELWISE_DATA_DIR": str(tmp_path / "data"),
        "LABELWISE_ADMIN_TOKEN": "serve-admin",
        "LABELWISE_WORKER_POLL_SECONDS": "0.1",
    }
    cmd = [sys.executable, "-m", "labelwise.cli", "serve", "--workers", "2", "--port", str(port),
           "--database-url", labelled]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(lambda: proc.stdout.readline().decode(), "")),
        daemon=True,
    )
    reader.start()
    try:
        # readiness, not a deadline: each worker process says when it is up (the timeout only
        # guards against a hang, and is long enough for a loaded 2-core machine)
        _wait(lambda: sum("Application startup complete" in ln for ln in lines) >= 2, proc, lines)
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
        admin = {"Authorization": "Bearer serve-admin"}  # the parent created this admin
        projects = httpx.get(f"{base}/api/projects", headers=admin, timeout=10).json()
        assert [p["name"] for p in projects] == ["reviews"]
        # the one retraining worker runs in the supervising process
        with store_of(labelled) as store:
            _wait(lambda: store.get_job(job).status == "done", proc, lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        reader.join(timeout=30)
        output = "".join(lines)
        assert output.count("Started server process") == 2, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
