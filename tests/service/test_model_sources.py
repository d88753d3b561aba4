"""Bring your own model (issue 11): uploaded predictions and embeddings, and a model endpoint.

Uploads of every format round-trip and drive selection (least confidence picks exactly the
items whose uploaded rows are least confident); malformed uploads are 422s naming row and field
and store nothing; a real HTTP model server started here (``http.server`` in a thread) serves a
project's rounds, receives its labels on ``/train``, and misbehaves in each way the worker must
survive: each failure is a recorded job error with a backoff, the project is left as it was, and
the job succeeds once the server recovers.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelwise.service import model_sources as ms
from labelwise.service.features import project_features
from labelwise.service.rounds import run_retrain, start_round
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.storage import NewItem

from .conftest import ADMIN, detail

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLASSES = ["a", "b", "c"]
N = 24
K = 5
#: the items (by index) whose uploaded rows are the least confident, most uncertain first
UNSURE = [7, 19, 2, 13, 22]


def _proba() -> np.ndarray:
    """One row per item: max probabilities 0.9, ... except the UNSURE items (0.34 .. 0.42)."""
    P = np.zeros((N, 3))
    for i in range(N):
        top = 0.6 + 0.3 * ((i * 7) % N) / N  # 0.6 .. 0.9: confident
        P[i] = [top, (1 - top) / 2, (1 - top) / 2]
        P[i] = np.roll(P[i], i % 3)
    for rank, i in enumerate(UNSURE):
        top = 0.34 + 0.02 * rank
        P[i] = np.roll([top, (1 - top) / 2, (1 - top) / 2], i % 3)
    return P


def _project(store, **kw) -> int:
    params = {"strategy": "least_confidence", "cold_start_strategy": "random", "batch_size": K}
    params.update(kw)
    pid = store.create_project("byom", "multiclass", CLASSES, **params)
    rng = np.random.RandomState(0)
    store.create_items(
        pid,
        [
            NewItem(external_id=f"x{i}", payload={"u": float(rng.rand()), "v": float(i)})
            for i in range(N)
        ],
    )
    return pid


@pytest.fixture
def settings(tmp_path):
    return Settings(
        data_dir=tmp_path / "data",
        random_fraction=0.0,
        job_max_attempts=10,
        model_endpoint_timeout_seconds=0.5,
        model_endpoint_batch_size=10,
        model_endpoint_backoff_seconds=30,
    )


@pytest.fixture
def client(store, settings):
    """The API over ``store`` as the admin, with this module's settings (no audit sample)."""
    from fastapi.testclient import TestClient

    from labelwise.service.app import create_app

    app = create_app(settings.model_copy(update={"worker": "external"}), store, admin_token=ADMIN)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def _annotator(store, pid) -> int:
    ann = store.create_annotator("ann")
    store.add_member(pid, ann)
    return ann


def _picked(store, pid) -> list[str]:
    """External ids of the queued tasks, highest priority first."""
    tasks = sorted(store.list_tasks(pid), key=lambda t: -t.priority)
    return [store.get_item(t.item_id).external_id for t in tasks]


def _write(tmp_path: Path, fmt: str, ids: list[str], values: np.ndarray, kind: str) -> dict:
    """A file of ``values`` keyed by ``ids`` in ``fmt``; the upload's keyword arguments."""
    cols = CLASSES if kind == "predictions" else [f"e{j}" for j in range(values.shape[1])]
    if fmt == "csv":
        path = tmp_path / "up.csv"
        lines = ["id," + ",".join(cols)]
        lines += [
            f"{i}," + ",".join(repr(float(x)) for x in row)
            for i, row in zip(ids, values, strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")
        return {"path": path}
    if fmt == "parquet":  # value columns
        path = tmp_path / "up.parquet"
        pq.write_table(pa.table({"id": ids, **{c: values[:, j] for j, c in enumerate(cols)}}), path)
        return {"path": path}
    if fmt == "parquet-list":  # one list column
        path = tmp_path / "up.pq"
        name = "proba" if kind == "predictions" else "embedding"
        pq.write_table(pa.table({"id": ids, name: values.tolist()}), path)
        return {"path": path}
    if fmt == "npz":
        path = tmp_path / "up.npz"
        key = "proba" if kind == "predictions" else "embeddings"
        np.savez(path, ids=np.array(ids), **{key: values})
        return {"path": path}
    path, ids_path = tmp_path / "up.npy", tmp_path / "ids.txt"
    np.save(path, values)
    ids_path.write_text("\n".join(ids) + "\n")
    return {"path": path, "ids_path": ids_path}


# --------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("fmt", ["csv", "parquet", "parquet-list", "npz", "npy"])
def test_uploaded_predictions_round_trip_and_rank_the_pool(store, settings, tmp_path, fmt):
    pid = _project(store)
    P = _proba()
    ids = [f"x{i}" for i in range(N)]
    perm = np.random.RandomState(1).permutation(N)  # file order is not item order
    kw = _write(tmp_path, fmt, [ids[i] for i in perm], P[perm], "predictions")
    up = ms.upload_predictions(store, pid, settings=settings, now=T0, **kw)
    assert (up.kind, up.version, up.origin, up.n_rows, up.n_cols, up.classes) == (
        "predictions", 1, "upload", N, 3, tuple(CLASSES),
    )  # fmt: skip
    item_ids, values = ms.load_arrays(up)
    by_ext = {it.id: it.external_id for it in store.list_items(pid)}
    assert [by_ext[i] for i in item_ids] == ids  # stored in item order
    np.testing.assert_allclose(values, P, atol=1e-6)
    assert isinstance(values, np.memmap)
    assert store.get_model_source(pid).source == "predictions"
    rnd = start_round(store, pid, settings=settings, now=T0)
    # least confidence: exactly the five least confident uploaded rows, most uncertain first
    assert rnd.strategy == "least_confidence"
    assert _picked(store, pid) == [f"x{i}" for i in UNSURE]
    tasks = {store.get_item(t.item_id).external_id: t for t in store.list_tasks(pid)}
    i = UNSURE[0]
    assert tasks[f"x{i}"].routing_tag == CLASSES[int(np.argmax(P[i]))]
    assert tasks[f"x{i}"].confidence == pytest.approx(P[i].max(), abs=1e-6)


def test_new_upload_is_a_new_version_and_missing_items_are_not_selected(store, settings, tmp_path):
    pid = _project(store)
    P = _proba()
    ids = [f"x{i}" for i in range(N)]
    ms.upload_predictions(
        store, pid, settings=settings, **_write(tmp_path, "csv", ids, P, "predictions")
    )
    # version 2 leaves out the three most uncertain items: they are not candidates now
    keep = [i for i in range(N) if i not in UNSURE[:3]]
    v2 = ms.upload_predictions(
        store, pid, settings=settings,
        **_write(tmp_path, "npz", [ids[i] for i in keep], P[keep], "predictions"),
    )  # fmt: skip
    assert v2.version == 2 and v2.n_rows == N - 3
    assert [u.version for u in store.list_model_uploads(pid, "predictions")] == [1, 2]
    assert Path(store.list_model_uploads(pid)[0].path).is_dir()  # old versions are kept
    start_round(store, pid, settings=settings, now=T0)
    picked = _picked(store, pid)
    assert picked[:2] == [f"x{i}" for i in UNSURE[3:]] and len(picked) == K
    assert not {f"x{i}" for i in UNSURE[:3]} & set(picked)


def test_predictions_source_retrain_fits_no_model_and_queues_the_next_batch(
    store, settings, tmp_path
):
    pid = _project(store)
    P = _proba()
    ids = [f"x{i}" for i in range(N)]
    ms.upload_predictions(
        store, pid, settings=settings, **_write(tmp_path, "csv", ids, P, "predictions")
    )
    start_round(store, pid, settings=settings, now=T0)
    ann = _annotator(store, pid)
    truth = {f"x{i}": CLASSES[int(np.argmax(P[i]))] for i in range(N)}
    from labelwise.service.rounds import submit_annotation

    while (task := store.claim_next_task(pid, ann, now=T0)) is not None:
        ext = store.get_item(task.item_id).external_id
        submit_annotation(store, task.id, ann, truth[ext], settings=settings, now=T0)
    job = store.claim_next_job("w", now=T0)
    result = run_retrain(store, job, settings=settings, now=T0)
    assert result.model_version_id is None  # the model is the team's, not labelwise's
    assert store.list_model_versions(pid) == []
    # the next batch: the next least confident uploaded rows, labeled ones excluded
    order = np.argsort(P.max(axis=1), kind="stable")
    expected = [f"x{i}" for i in order if i not in UNSURE][:K]
    queued = [store.get_item(t.item_id).external_id for t in sorted(
        store.list_tasks(pid, status="queued"), key=lambda t: -t.priority)]  # fmt: skip
    assert queued == expected


@pytest.mark.parametrize("fmt", ["csv", "parquet", "parquet-list", "npz", "npy"])
def test_uploaded_embeddings_are_the_feature_matrix(store, settings, tmp_path, fmt):
    pid = _project(store, strategy="kcenter")
    E = np.random.RandomState(2).normal(size=(N, 4)).astype(np.float32)
    ids = [f"x{i}" for i in range(N)]
    before = project_features(store, pid, settings)
    assert before.kind == "tabular" and before.X.shape == (N, 2)
    up = ms.upload_embeddings(
        store, pid, settings=settings, **_write(tmp_path, fmt, ids, E, "embeddings")
    )
    assert (up.kind, up.version, up.n_rows, up.n_cols, up.classes) == ("embeddings", 1, N, 4, ())
    fm = project_features(store, pid, settings)
    assert fm.kind == "embeddings" and fm.X.shape == (N, 4)
    np.testing.assert_allclose(np.asarray(fm.X), E, atol=1e-6)
    assert store.get_model_source(pid).source == "builtin"  # embeddings do not change the model
    up2 = ms.upload_embeddings(
        store, pid, settings=settings, **_write(tmp_path, "csv", ids, E * 2, "embeddings")
    )
    fm2 = project_features(store, pid, settings)
    assert up2.version == 2 and fm2.key != fm.key  # a new version, a new cache key
    np.testing.assert_allclose(np.asarray(fm2.X), 2 * E, atol=1e-5)


def test_kcenter_selects_on_uploaded_embeddings(store, settings, tmp_path):
    """Embeddings of three tight clusters: the cold-start k-center batch of 3 takes one item
    of each cluster, which the tabular features (cluster-blind) would not."""
    pid = _project(store, strategy="kcenter", cold_start_strategy="kcenter", batch_size=3)
    centres = np.array([[0, 0], [100, 0], [0, 100]], dtype=np.float32)
    E = centres[np.arange(N) % 3] + np.random.RandomState(3).normal(scale=0.1, size=(N, 2))
    ids = [f"x{i}" for i in range(N)]
    ms.upload_embeddings(
        store, pid, settings=settings, **_write(tmp_path, "npz", ids, E, "embeddings")
    )
    start_round(store, pid, settings=settings, now=T0)
    clusters = sorted(int(ext[1:]) % 3 for ext in _picked(store, pid))
    assert clusters == [0, 1, 2]


def test_embeddings_must_cover_items_added_later(store, settings, tmp_path):
    pid = _project(store)
    E = np.ones((N, 2))
    ms.upload_embeddings(
        store,
        pid,
        settings=settings,
        **_write(tmp_path, "csv", [f"x{i}" for i in range(N)], E, "embeddings"),
    )
    store.create_items(pid, [NewItem(external_id="late", payload={"u": 1.0, "v": 2.0})])
    with pytest.raises(Exception, match=r"1 items .* have no row in embeddings version 1"):
        project_features(store, pid, settings)


# --------------------------------------------------------------------------- malformed uploads

GOOD = "id,a,b,c\n" + "".join(f"x{i},0.5,0.25,0.25\n" for i in range(N))

BAD_PREDICTIONS = [
    ("unknown id", GOOD.replace("x3,", "nope,"), r"row 5: field 'id': unknown external id 'nope'"),
    (
        "repeated id",
        GOOD.replace("x3,", "x2,"),
        r"row 5: field 'id': external id 'x2' repeats row 4",
    ),
    ("wrong width", GOOD.replace("x4,0.5,0.25,0.25", "x4,0.5,0.5"), r"row 6: 3 cells"),
    ("nan", GOOD.replace("x5,0.5,", "x5,nan,"), r"row 7: field 'a': nan is not a finite"),
    ("inf", GOOD.replace("x5,0.5,", "x5,inf,"), r"row 7: field 'a': inf is not a finite"),
    (
        "sum",
        GOOD.replace("x6,0.5,0.25,0.25", "x6,0.5,0.25,0.3"),
        r"row 8: field 'x6': the probabilities sum to 1.05",
    ),
    ("unknown class", GOOD.replace("id,a,b,c", "id,a,b,dog"), r"field 'dog': unknown class 'dog'"),
    (
        "missing class",
        GOOD.replace("id,a,b,c", "id,a,b").replace(",0.25\n", "\n"),
        r"no column for class\(es\) \['c'\]",
    ),
    (
        "not a number",
        GOOD.replace("x7,0.5,", "x7,half,"),
        r"row 9: field 'a': 'half' is not a number",
    ),
    ("no id column", GOOD.replace("id,a", "key,a"), r"first column must be 'id'"),
    ("header only", "id,a,b,c\n", r"no rows"),
]


@pytest.mark.parametrize("case", BAD_PREDICTIONS, ids=[c[0] for c in BAD_PREDICTIONS])
def test_malformed_predictions_are_422_and_store_nothing(client, store, case, tmp_path):
    _, text, message = case
    pid = _project(store)
    r = client.post(
        f"/api/projects/{pid}/model/predictions", files={"file": ("p.csv", text.encode())}
    )
    got = detail(r, 422)
    assert __import__("re").search(message, got), got
    assert "Nothing was stored" in got
    assert store.list_model_uploads(pid) == []
    assert store.get_model_source(pid).source == "builtin"
    folder = tmp_path / "data" / "model_sources"
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def test_malformed_embeddings_and_arrays_are_422(client, store, tmp_path):
    pid = _project(store)
    url = f"/api/projects/{pid}/model/embeddings"
    part = "id,e0,e1\n" + "".join(f"x{i},1,2\n" for i in range(N - 2))
    got = detail(client.post(url, files={"file": ("e.csv", part.encode())}), 422)
    assert "2 of the project's 24 items have no row (first: ['x22', 'x23'])" in got
    buf = io.BytesIO()
    np.savez(buf, ids=np.array([f"x{i}" for i in range(N)]), proba=np.full((N, 2), 0.5))
    got = detail(client.post(f"/api/projects/{pid}/model/predictions",
                             files={"file": ("p.npz", buf.getvalue())}), 422)  # fmt: skip
    assert "rows have 2 probabilities; the project has 3 classes" in got
    buf = io.BytesIO()
    np.save(buf, np.zeros((N, 3)))
    got = detail(client.post(f"/api/projects/{pid}/model/predictions",
                             files={"file": ("p.npy", buf.getvalue())}), 422)  # fmt: skip
    assert "a .npy file has no ids" in got
    got = detail(client.post(f"/api/projects/{pid}/model/predictions",
                             files={"file": ("p.txt", b"x")}), 422)  # fmt: skip
    assert "cannot tell the format" in got
    got = detail(client.post(f"/api/projects/{pid}/model/predictions?format=parquet",
                             files={"file": ("p.bin", b"not parquet")}), 422)  # fmt: skip
    assert "not a readable Parquet file" in got
    assert store.list_model_uploads(pid) == []


def test_api_uploads_and_shows_the_model(client, store, tmp_path):
    pid = _project(store)
    P = _proba()
    csv_text = "id,c,a,b\n" + "".join(  # columns in another order than the project's
        f"x{i},{float(P[i, 2])!r},{float(P[i, 0])!r},{float(P[i, 1])!r}\n" for i in range(N)
    )
    r = client.post(
        f"/api/projects/{pid}/model/predictions", files={"file": ("p.csv", csv_text.encode())}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["kind"], body["version"], body["n_rows"], body["classes"]) == (
        "predictions", 1, N, CLASSES,
    )  # fmt: skip
    # .npy rows with a companion ids file (multipart field "ids")
    buf = io.BytesIO()
    np.save(buf, np.arange(N * 2, dtype=np.float32).reshape(N, 2))
    ids = "\n".join(f"x{i}" for i in range(N)).encode()
    r = client.post(f"/api/projects/{pid}/model/embeddings",
                    files={"file": ("e.npy", buf.getvalue()), "ids": ("ids.txt", ids)})  # fmt: skip
    assert r.status_code == 201, r.text
    model = client.get(f"/api/projects/{pid}/model").json()
    assert (model["source"], model["endpoint"], model["last_error"]) == ("predictions", None, None)
    assert [(u["kind"], u["version"]) for u in model["uploads"]] == [
        ("embeddings", 1), ("predictions", 1),
    ]  # fmt: skip
    assert model["active"] == {"predictions": body["id"], "embeddings": model["uploads"][0]["id"]}
    r = client.post(f"/api/projects/{pid}/rounds")
    assert r.status_code == 201, r.text
    assert _picked(store, pid) == [f"x{i}" for i in UNSURE]
    r = client.put(f"/api/projects/{pid}/model", json={"source": "builtin"})
    assert r.status_code == 200 and r.json()["source"] == "builtin"
    assert detail(client.put(f"/api/projects/{pid}/model", json={"source": "endpoint"}), 422)
    metadata_url = {"source": "endpoint", "endpoint": "http://169.254.169.254/m"}
    got = detail(client.put(f"/api/projects/{pid}/model", json=metadata_url), 422)
    assert "169.254.169.254" in got
    assert client.get(f"/api/projects/{pid}/model").json()["source"] == "builtin"
    assert detail(client.get("/api/projects/999999/model"), 404)


# --------------------------------------------------------------------------- the endpoint


class ModelServer:
    """A real model endpoint on 127.0.0.1: a nearest-centroid model on the payloads' ``u``.

    ``mode`` makes it misbehave: ``"slow"`` (sleeps past the client's timeout), ``"500"``,
    ``"rows"`` (one row too few), ``"shape"`` (rows of 2 values), ``"nan"``, ``"sum"`` (rows
    summing to 1.2), ``"class"`` (an unknown class name). ``trained`` records /train bodies.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.trained: list[dict] = []
        self.predicted = 0
        self.version = 1
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/train":
                    server.trained.append(body)
                    server.version += 1
                    return self._send(200, {"model_version": f"m{server.version}"})
                if self.path != "/predict":
                    return self._send(404, {"error": "no such route"})
                return self._predict(body)

            def _predict(self, body):
                mode = server.mode
                if mode == "slow":
                    time.sleep(1.5)
                if mode == "500":
                    return self._send(500, {"error": "model crashed"})
                items = body["items"]
                classes = list(body["classes"])
                proba = []
                for it in items:
                    i = int(it["id"][1:])
                    p = [0.8, 0.1, 0.1] if i % 3 == 0 else [0.1, 0.8, 0.1]
                    if i in UNSURE:
                        p = [0.4, 0.35, 0.25]
                    proba.append(p)
                if mode == "rows":
                    proba = proba[:-1]
                elif mode == "shape":
                    proba[1] = proba[1][:2]
                elif mode == "nan":
                    proba[2][0] = math.nan
                elif mode == "sum":
                    proba[3] = [0.6, 0.4, 0.2]
                elif mode == "class":
                    classes = ["a", "b", "zebra"]
                emb = [[float(it["data"]["v"]), 1.0] for it in items]
                server.predicted += len(items)
                return self._send(200, {"proba": proba, "classes": classes, "embeddings": emb,
                                        "model_version": f"m{server.version}"})  # fmt: skip

            def _send(self, code, obj):
                data = json.dumps(obj).encode()  # NaN goes out as the NaN token
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_server():
    server = ModelServer()
    yield server
    server.close()


def _endpoint_project(store, settings, server) -> tuple[int, int]:
    pid = _project(store)
    _, job_id = ms.set_model_source(store, pid, "endpoint", server.url, settings=settings, now=T0)
    assert job_id is not None and store.get_job(job_id).kind == "predict"
    return pid, job_id


def test_endpoint_serves_rounds_and_trains_on_labels(store, settings, model_server):
    pid, job_id = _endpoint_project(store, settings, model_server)
    hook = store.create_webhook(pid, "http://127.0.0.1:9/hook", ["model_version.created"], "s" * 32)
    worker = Worker(store, settings, worker_id="w")
    job = worker.run_once(now=T0)
    assert (job.id, job.status, job.error) == (job_id, "done", None)
    assert model_server.predicted == N  # every item, in batches of 10
    (event,) = store.list_deliveries(hook)  # the endpoint's model version is announced
    assert event.event == "model_version.created" and event.body["data"]["source"] == "endpoint"
    (pred,) = store.list_model_uploads(pid, "predictions")
    (emb,) = store.list_model_uploads(pid, "embeddings")
    assert (pred.origin, pred.model_version, emb.n_cols) == ("endpoint", "m1", 2)
    # the endpoint's probabilities rank the pool: the UNSURE items, tied, in some order
    assert sorted(_picked(store, pid)) == sorted(f"x{i}" for i in UNSURE)
    fm = project_features(store, pid, settings)  # the endpoint's embeddings are the features
    assert fm.kind == "embeddings" and fm.X.shape == (N, 2)
    (mv,) = store.list_model_versions(pid)
    assert mv.metrics["source"] == "endpoint" and mv.metrics["endpoint_model_version"] == "m1"

    ann = _annotator(store, pid)
    from labelwise.service.rounds import submit_annotation

    labels = {}
    while (task := store.claim_next_task(pid, ann, now=T0)) is not None:
        ext = store.get_item(task.item_id).external_id
        labels[ext] = "c"
        submit_annotation(store, task.id, ann, "c", settings=settings, now=T0)
    job = worker.run_once(now=T0)  # the retrain: /train with the labels, then /predict again
    assert (job.kind, job.status, job.error) == ("retrain", "done", None)
    assert len(model_server.trained) == 1
    sent = model_server.trained[0]
    assert sorted((x["id"], x["label"]) for x in sent["labels"]) == sorted(labels.items())
    assert sent["classes"] == CLASSES
    assert model_server.predicted == 2 * N
    assert [u.model_version for u in store.list_model_uploads(pid, "predictions")] == ["m1", "m2"]
    assert len(store.list_model_versions(pid)) == 2
    queued = store.list_tasks(pid, status="queued")
    assert len(queued) == K and not {store.get_item(t.item_id).external_id for t in queued} & set(
        labels
    )


FAILURES = [
    ("slow", "no answer within 0.5 s (timeout)"),
    ("500", "HTTP 500 (server error)"),
    ("rows", "'proba' has 9 rows for 10 items (wrong number of rows)"),
    ("shape", "row 1 (id 'x1') of 'proba' has 2 values; expected 3 (wrong shape)"),
    ("nan", "row 2 (id 'x2'), column 0 of 'proba' is nan, not a finite number"),
    ("sum", "row 3 (id 'x3'): the probabilities sum to 1.2, not 1"),
    ("class", "unknown class 'zebra'"),
]


@pytest.mark.parametrize("mode,message", FAILURES, ids=[f[0] for f in FAILURES])
def test_endpoint_failures_are_recorded_backed_off_and_recovered(
    client, store, settings, model_server, mode, message
):
    pid, _ = _endpoint_project(store, settings, model_server)
    worker = Worker(store, settings, worker_id="w")
    assert worker.run_once(now=T0).status == "done"  # a good first version
    before = (store.list_model_uploads(pid), store.list_model_versions(pid),
              sorted(t.id for t in store.list_tasks(pid)))  # fmt: skip
    files_before = sorted(p for p in (settings.data_dir / "model_sources").rglob("*"))

    model_server.mode = mode
    again = store.create_job("predict", pid, now=T0)
    job = worker.run_once(now=T0)
    assert (job.id, job.status, job.attempts) == (again, "queued", 1)
    assert message in job.error and job.error.startswith("ModelEndpointError: ")
    if mode != "slow" and mode != "500":
        assert "batch 1 (items 1-10 of 24): malformed reply" in job.error
    assert job.not_before == T0 + timedelta(seconds=30)  # backoff: base * 2**0
    after = (store.list_model_uploads(pid), store.list_model_versions(pid),
             sorted(t.id for t in store.list_tasks(pid)))  # fmt: skip
    assert after == before  # nothing half-written; the previous version stays active
    assert sorted(p for p in (settings.data_dir / "model_sources").rglob("*")) == files_before
    shown = client.get(f"/api/projects/{pid}/model").json()
    assert message in shown["last_error"] and shown["last_error_job_id"] == again
    assert shown["next_attempt_at"].startswith("2026-03-01T12:00:30")

    assert worker.run_once(now=T0 + timedelta(seconds=29)) is None  # still backing off
    job = worker.run_once(now=T0 + timedelta(seconds=30))  # fails again: the backoff doubles
    assert (job.attempts, job.not_before) == (2, T0 + timedelta(seconds=90))

    model_server.mode = "ok"
    job = worker.run_once(now=T0 + timedelta(seconds=90))
    assert (job.id, job.status, job.error) == (again, "done", None)
    assert [u.version for u in store.list_model_uploads(pid, "predictions")] == [1, 2]
    assert client.get(f"/api/projects/{pid}/model").json()["last_error"] is None


def test_retrain_with_a_failing_endpoint_changes_nothing(store, settings, model_server):
    pid, _ = _endpoint_project(store, settings, model_server)
    worker = Worker(store, settings, worker_id="w")
    worker.run_once(now=T0)
    ann = _annotator(store, pid)
    from labelwise.service.rounds import submit_annotation

    while (task := store.claim_next_task(pid, ann, now=T0)) is not None:
        submit_annotation(store, task.id, ann, "a", settings=settings, now=T0)
    rounds = store.list_rounds(pid)
    n_dv = len(store.list_dataset_versions(pid))
    model_server.mode = "500"
    job = worker.run_once(now=T0)
    assert (job.kind, job.status) == ("retrain", "queued") and "HTTP 500" in job.error
    assert store.list_rounds(pid) == rounds  # the batch is not closed, no next round
    assert len(store.list_dataset_versions(pid)) == n_dv
    assert len(store.list_model_uploads(pid, "predictions")) == 1
    assert len(model_server.trained) == 1  # /train was reached; /predict failed
    model_server.mode = "ok"
    job = worker.run_once(now=T0 + timedelta(seconds=30))
    assert (job.status, job.error) == ("done", None)
    assert len(store.list_rounds(pid)) == len(rounds) + 1


def test_put_endpoint_through_the_api_queues_a_predict_job(client, store, model_server):
    pid = _project(store)
    r = client.put(
        f"/api/projects/{pid}/model", json={"source": "endpoint", "endpoint": model_server.url}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["endpoint"]) == ("endpoint", model_server.url)
    job = store.get_job(body["job_id"])
    assert (job.kind, job.status, job.project_id) == ("predict", "queued", pid)
    got = detail(client.post(f"/api/projects/{pid}/rounds"), 422)
    assert "waits for its model endpoint's first predictions" in got


# --------------------------------------------------------------------------- CLI


def test_cli_model_set_and_show(tmp_path, model_server):
    from typer.testing import CliRunner

    from labelwise.cli import app
    from labelwise.storage.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with SqlStore(url, upgrade=True) as store:
        _project(store)
    env = {"LABELWISE_DATABASE_URL": url, "LABELWISE_DATA_DIR": str(tmp_path / "data"),
           "COLUMNS": "200"}  # fmt: skip
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, ["project", "model", *args], env=env)

    P = _proba()
    ids = [f"x{i}" for i in range(N)]
    csv_path = _write(tmp_path, "csv", ids, P, "predictions")["path"]
    res = run("set", "byom", "--predictions", str(csv_path))
    assert res.exit_code == 0, res.output
    assert "model source: predictions" in res.output and "up.csv" in res.output
    E = np.arange(N * 2, dtype=np.float32).reshape(N, 2)
    kw = _write(tmp_path, "npy", ids, E, "embeddings")
    res = run("set", "byom", "--embeddings", str(kw["path"]), "--ids", str(kw["ids_path"]))
    assert res.exit_code == 0, res.output
    shown = json.loads(run("show", "byom", "--json").output)
    assert shown["source"]["source"] == "predictions"
    assert [(u["kind"], u["version"], u["n_cols"]) for u in shown["uploads"]] == [
        ("embeddings", 1, 2), ("predictions", 1, 3),
    ]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("id,a,b,c\nx0,0.5,0.5,0.5\n")
    res = run("set", "byom", "--predictions", str(bad))
    assert res.exit_code == 2
    assert "row 2: field 'x0': the probabilities sum to 1.5" in res.output
    res = run("set", "byom", "--endpoint", "http://169.254.169.254/latest")
    assert res.exit_code == 2 and "169.254.169.254" in res.output
    assert run("set", "byom").exit_code == 2  # nothing to set
    res = run("set", "byom", "--endpoint", model_server.url)
    assert res.exit_code == 0, res.output
    assert f"model source: endpoint ({model_server.url})" in res.output
    assert "predict job 1 queued" in res.output
    with SqlStore(url) as store:
        assert store.get_model_source(1).source == "endpoint"
        assert len(store.list_model_uploads(1)) == 2  # the bad file stored nothing


def test_dashboard_page_has_the_model_error_line(client, store):
    """The page's script reads GET /model and fills #model-error (the browser test,
    tests/browser/test_model_error.py, sees it filled by a failing endpoint)."""
    pid = _project(store)
    html = client.get(f"/projects/{pid}/dashboard").text
    assert 'id="model-error"' in html and 'role="alert"' in html
    assert "/api/projects/${pid}/model" in html and "model.last_error" in html


@pytest.mark.parametrize("strategy", ["qbc_kl", "egl", "adaptive"])
def test_strategies_that_refit_labelwise_model_are_refused_with_external_predictions(
    settings, tmp_path, strategy
):
    from labelwise.errors import LabelwiseError
    from labelwise.storage import InMemoryStore

    store = InMemoryStore()
    pid = _project(store, strategy=strategy)
    ids = [f"x{i}" for i in range(N)]
    kw = _write(tmp_path, "csv", ids, _proba(), "predictions")
    ms.upload_predictions(store, pid, settings=settings, **kw)
    with pytest.raises(LabelwiseError, match=f"strategy '{strategy}' needs a model labelwise"):
        start_round(store, pid, settings=settings, now=T0)
    assert store.list_rounds(pid) == []


def test_unreachable_endpoint_is_a_connection_error_with_backoff(store, settings):
    import socket

    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pid = _project(store)
    ms.set_model_source(store, pid, "endpoint", f"http://127.0.0.1:{port}", settings=settings)
    job = Worker(store, settings, worker_id="w").run_once(now=T0)
    assert job.status == "queued" and job.not_before == T0 + timedelta(seconds=30)
    assert job.error.startswith(f"ModelEndpointError: POST http://127.0.0.1:{port}/predict: ")
    assert "connection error" in job.error
    assert store.list_model_uploads(pid) == [] and store.list_rounds(pid) == []
    status = ms.model_status(store, pid)
    assert (status.last_error, status.next_attempt_at) == (job.error, job.not_before)


def test_predict_job_stores_once_when_starting_the_round_fails(settings, model_server):
    """The answer is stored, then the round cannot start (a committee strategy): the retry
    does not ask the endpoint again nor store a second version."""
    from labelwise.storage import InMemoryStore

    store = InMemoryStore()
    pid = _project(store, strategy="qbc_kl")
    ms.set_model_source(store, pid, "endpoint", model_server.url, settings=settings, now=T0)
    worker = Worker(store, settings, worker_id="w")
    job = worker.run_once(now=T0)
    assert job.status == "queued" and "needs a model labelwise fits itself" in job.error
    assert job.not_before is None  # not the endpoint's fault: no backoff
    worker.run_once(now=T0)
    assert model_server.predicted == N  # asked once
    assert len(store.list_model_uploads(pid, "predictions")) == 1
    assert len(store.list_model_versions(pid)) == 1


def test_uploads_are_authenticated_and_capped_by_the_upload_limit(settings):
    from fastapi.testclient import TestClient

    from labelwise.service.app import create_app
    from labelwise.storage import InMemoryStore

    store = InMemoryStore()
    pid = _project(store)
    limits = {"worker": "external", "max_upload_bytes": 3_000, "max_json_body_bytes": 200}
    app = create_app(settings.model_copy(update=limits), store, admin_token=ADMIN)
    url = f"/api/projects/{pid}/model/predictions"
    with TestClient(app) as c:
        assert c.post(url, files={"file": ("p.csv", GOOD.encode())}).status_code == 401
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        assert len(GOOD) > 200  # over the JSON limit, under the upload limit: accepted
        assert c.post(url, files={"file": ("p.csv", GOOD.encode())}).status_code == 201
        big = GOOD + "".join(f"x{i},0.5,0.25,0.25\n" for i in range(N, 200))
        got = detail(c.post(url, files={"file": ("p.csv", big.encode())}), 413)
        assert "LABELWISE_MAX_UPLOAD_BYTES" in got
    assert len(store.list_model_uploads(pid)) == 1


@pytest.mark.parametrize("strategy", ["badge", "margin", "kcenter"])
def test_text_project_ranks_by_uploaded_predictions_on_sparse_features(
    settings, tmp_path, strategy
):
    """TF-IDF features are sparse: uncertainty strategies work with uploaded predictions;
    distance strategies (BADGE's gradient embeddings too) ask for embeddings."""
    from labelwise.errors import LabelwiseError
    from labelwise.storage import InMemoryStore

    store = InMemoryStore()
    pid = store.create_project("txt", "multiclass", CLASSES, strategy=strategy, batch_size=K)
    words = ["good", "bad", "fine", "awful", "nice", "poor", "meh"]
    store.create_items(
        pid,
        [
            NewItem(external_id=f"x{i}", payload={"text": f"{words[i % 7]} {words[i % 5]} {i}"})
            for i in range(N)
        ],
    )
    assert project_features(store, pid, settings).kind == "text"
    ids = [f"x{i}" for i in range(N)]
    ms.upload_predictions(
        store, pid, settings=settings, **_write(tmp_path, "csv", ids, _proba(), "predictions")
    )
    if strategy in ("kcenter", "badge"):
        with pytest.raises(LabelwiseError, match="needs dense features: upload embeddings"):
            start_round(store, pid, settings=settings, now=T0)
        return
    start_round(store, pid, settings=settings, now=T0)
    assert _picked(store, pid) == [f"x{i}" for i in UNSURE]  # margins order like the max here


def test_members_do_not_see_the_endpoint_credentials(client, store, settings):
    """An endpoint URL carries the credentials a model server needs (user info, a key in the
    query): admins read it whole, project members without the admin role read it without them,
    in ``endpoint`` and in the job error that quotes the URL."""
    import socket

    from labelwise.service.deps import create_user

    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pid = _project(store)
    url = f"http://bob:s3cret@127.0.0.1:{port}/m?key=k3y"
    r = client.put(f"/api/projects/{pid}/model", json={"source": "endpoint", "endpoint": url})
    assert r.status_code == 200, r.text
    Worker(store, settings, worker_id="w").run_once(now=T0)  # connection refused
    aid, token = create_user(store, "member")
    store.add_member(pid, aid)

    admin = client.get(f"/api/projects/{pid}/model").json()
    assert admin["endpoint"] == url
    assert f"POST http://bob:s3cret@127.0.0.1:{port}/m/predict?key=k3y: conn" in admin["last_error"]
    member = client.get(
        f"/api/projects/{pid}/model", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert member["endpoint"] == f"http://***@127.0.0.1:{port}/m?***"
    assert (
        f"POST http://***@127.0.0.1:{port}/m/predict?***: connection error"
        in (member["last_error"])
    )
    assert "s3cret" not in json.dumps(member) and "k3y" not in json.dumps(member)


def test_endpoint_with_a_query_string_gets_the_route_in_its_path():
    """``http://host/m?key=k`` is asked at ``/m/predict?key=k`` (and ``/m/train?key=k``), not
    at ``/m?key=k/predict``: a query string is where many model servers take their key."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.path)
            data = b'{"model_version": "m1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        ms.EndpointClient(f"{base}/m?key=k", 2.0).train([], CLASSES)
        ms.EndpointClient(f"{base}/", 2.0).train([], CLASSES)
        ms.EndpointClient(f"{base}/v1/?a=1&b=2", 2.0).train([], CLASSES)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == ["/m/train?key=k", "/train", "/v1/train?a=1&b=2"]


@pytest.mark.parametrize(
    ("code", "body", "error"),
    [
        (204, b"", None),
        (200, b"", None),
        (200, b"ok", None),
        (202, b'{"queued": true}', None),
        (302, b"", "HTTP 302 (a redirect, not followed)"),
        (503, b"busy", "HTTP 503 (server error)"),
    ],
)
def test_train_accepts_any_2xx_answer(code, body, error):
    """/train's answer body is ignored (docs: any 2xx is success): a 204, an empty 200 or a
    text body do not fail the retrain; a redirect or an error status does."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            if code != 204:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = ms.EndpointClient(f"http://127.0.0.1:{httpd.server_address[1]}", 2.0)
        if error is None:
            assert client.train([{"id": "x1", "label": "a"}], CLASSES) is None
        else:
            with pytest.raises(ms.ModelEndpointError, match=re.escape(error)):
                client.train([{"id": "x1", "label": "a"}], CLASSES)
    finally:
        httpd.shutdown()
        httpd.server_close()
