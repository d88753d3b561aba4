"""The HTTP API over the memory store and SQLite (and a PostgreSQL smoke subset).

Every test talks to ``create_app(settings, store)`` through Starlette's TestClient with the
admin token; ``_user`` makes annotators. Errors must be 4xx JSON ``{"detail": "<message>"}``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.service.deps import hash_token
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import postgres_schema_store, sqlite_store

ADMIN = "admin-secret-token"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("api-sqlite") / "template.db"
    with sqlite_store(path):
        pass
    return path


@pytest.fixture(scope="module")
def _pg_store():
    with postgres_schema_store(POSTGRES_URL) as store:
        yield store


def _memory(request, tmp_path):
    return InMemoryStore()


def _sqlite(request, tmp_path):
    path = tmp_path / "api.db"
    shutil.copy(request.getfixturevalue("_sqlite_template"), path)
    return SqlStore(f"sqlite:///{path}")


def _postgres(request, tmp_path):
    from labelwise.storage.sql.models import metadata

    store = request.getfixturevalue("_pg_store")
    with store._engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(sa.delete(table))
    return store


_BACKENDS = {"memory": _memory, "sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=["memory", "sqlite"])
def api_store(request, tmp_path):
    store = _BACKENDS[request.param](request, tmp_path)
    yield store
    if request.param == "sqlite":
        store.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request, tmp_path):
    """Every backend, PostgreSQL included: for the smoke subset."""
    store = _BACKENDS[request.param](request, tmp_path)
    yield store
    if request.param == "sqlite":
        store.close()


def _client(store, tmp_path) -> TestClient:
    settings = Settings(worker="external", data_dir=tmp_path / "data", lease_seconds=60)
    client = TestClient(create_app(settings, store, admin_token=ADMIN))
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


@pytest.fixture
def client(api_store, tmp_path):
    with _client(api_store, tmp_path) as c:
        yield c


@pytest.fixture
def pg_client(any_store, tmp_path):
    with _client(any_store, tmp_path) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _project(client, name="reviews", classes=("neg", "pos"), **kw) -> dict:
    r = client.post("/api/projects", json={"name": name, "classes": list(classes), **kw})
    assert r.status_code == 201, r.text
    return r.json()


def _user(client, name, projects=(), role="annotator", skills=()) -> dict:
    r = client.post(
        "/api/annotators",
        json={"name": name, "role": role, "projects": list(projects), "skills": list(skills)},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _items(client, pid, n, labels=None) -> dict:
    items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(n)]
    for it, label in zip(items, labels or [], strict=False):
        it["label"] = label
    r = client.post(f"/api/projects/{pid}/items", json={"items": items})
    assert r.status_code == 201, r.text
    return r.json()


def _detail(r, code: int) -> str:
    """The response is ``code`` with a JSON ``{"detail": "<message>"}`` body."""
    assert r.status_code == code, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


# --------------------------------------------------------------------------- health, auth


def test_healthz_needs_no_token(client):
    r = client.get("/healthz", headers={"Authorization": ""})
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_missing_token_is_401(client):
    r = client.get("/api/projects", headers={"Authorization": ""})
    assert "Bearer" in _detail(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_unknown_token_is_401(client):
    assert "invalid token" in _detail(client.get("/api/projects", headers=_auth("nope")), 401)


def test_tokens_are_stored_hashed(client, api_store):
    ana = _user(client, "ana")
    stored = api_store.get_annotator(ana["id"])
    assert stored.token_hash == hash_token(ana["token"]) != ana["token"]
    listed = client.get("/api/annotators").json()
    assert all("token" not in a and "token_hash" not in a for a in listed)
    assert client.get("/api/me", headers=_auth(ana["token"])).json()["name"] == "ana"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/projects"),
        ("patch", "/api/projects/1"),
        ("post", "/api/projects/1/items"),
        ("post", "/api/projects/1/rounds"),
        ("post", "/api/annotators"),
        ("get", "/api/annotators"),
        ("post", "/api/projects/1/members"),
        ("post", "/api/projects/1/dataset-versions"),
        ("get", "/api/jobs"),
    ],
)
def test_annotator_on_admin_route_is_403(client, method, path):
    pid = _project(client)["id"]
    assert pid == 1
    ana = _user(client, "ana", projects=[pid])
    r = client.request(method, path, headers=_auth(ana["token"]), json={})
    assert "admin role" in _detail(r, 403)


def test_annotator_sees_only_member_projects(client):
    mine = _project(client, "mine")["id"]
    other = _project(client, "other")["id"]
    tok = _user(client, "ana", projects=[mine])["token"]
    listed = client.get("/api/projects", headers=_auth(tok)).json()
    assert [p["id"] for p in listed] == [mine]
    assert len(client.get("/api/projects").json()) == 2  # the admin sees both
    for path in (
        f"/api/projects/{other}",
        f"/api/projects/{other}/items",
        f"/api/projects/{other}/rounds",
        f"/api/projects/{other}/model-versions",
        f"/api/projects/{other}/dataset-versions",
    ):
        assert _detail(client.get(path, headers=_auth(tok)), 404) == f"project {other} not found"
    r = client.post(f"/api/projects/{other}/tasks/next", headers=_auth(tok))
    assert _detail(r, 404) == f"project {other} not found"


# --------------------------------------------------------------------------- projects


def test_create_get_list_update_project(client):
    body = {
        "name": "digits",
        "task_type": "multiclass",
        "classes": [str(d) for d in range(10)],
        "strategy": "kcenter",
        "strategy_params": {"prefilter": 50},
        "cold_start_strategy": "random",
        "batch_size": 20,
        "stopping": {"any": [{"target": 0.95}, {"max_labels": 500}]},
        "label_cost": 0.08,
        "show_predictions": True,
    }
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    p = r.json()
    assert {k: p[k] for k in body} == body
    assert client.get(f"/api/projects/{p['id']}").json() == p
    assert client.get("/api/projects").json() == [p]
    r = client.patch(f"/api/projects/{p['id']}", json={"batch_size": 5, "strategy": "margin"})
    assert r.status_code == 200, r.text
    q = r.json()
    assert (q["batch_size"], q["strategy"], q["label_cost"]) == (5, "margin", 0.08)


def test_unknown_strategy_lists_valid_names(client):
    r = client.post("/api/projects", json={"name": "p", "strategy": "psychic"})
    detail = _detail(r, 422)
    assert "unknown strategy 'psychic'" in detail
    assert "entropy" in detail and "margin" in detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"strategy_params": {"bogus": 1}}, "bad strategy_params for 'entropy'"),
        ({"cold_start_strategy": "entropy"}, "cannot start cold"),
        ({"task_type": "multilabel", "strategy": "egl"}, "does not support 'multilabel'"),
        ({"task_type": "ternary"}, "task_type"),
        ({"batch_size": 0}, "batch_size"),
        ({"label_cost": -1}, "label_cost"),
        ({"stopping": {"someday": True}}, "bad stopping rule"),
        ({"classes": ["a", "a"]}, "classes must be unique"),
        ({"task_type": "binary", "classes": ["a", "b", "c"]}, "exactly 2 classes"),
        ({"name": ""}, "name"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_project_is_422(client, body, message):
    r = client.post("/api/projects", json={"name": "p", "classes": ["a", "b"], **body})
    assert message in _detail(r, 422)
    assert client.get("/api/projects").json() == []


def test_duplicate_project_is_409(client):
    _project(client, "p")
    assert "already exists" in _detail(client.post("/api/projects", json={"name": "p"}), 409)


def test_bad_update_is_4xx(client):
    pid = _project(client)["id"]
    assert "name" in _detail(client.patch(f"/api/projects/{pid}", json={"name": "x"}), 422)
    r = client.patch(f"/api/projects/{pid}", json={"strategy": "psychic"})
    assert "unknown strategy" in _detail(r, 422)
    assert _detail(client.patch("/api/projects/99", json={"batch_size": 2}), 404)
    assert _detail(client.get("/api/projects/0"), 422)


def test_strategies_catalogue(client):
    names = [s["name"] for s in client.get("/api/strategies").json()]
    assert "entropy" in names and names == sorted(names)


# --------------------------------------------------------------------------- items


def test_json_import_and_list(client):
    pid = _project(client)["id"]
    assert _items(client, pid, 5, labels=["pos"]) == {"n_read": 5, "n_created": 5, "n_skipped": 0}
    assert _items(client, pid, 6) == {"n_read": 6, "n_created": 1, "n_skipped": 5}  # re-import
    items = client.get(f"/api/projects/{pid}/items").json()
    assert [it["external_id"] for it in items] == [f"x{i}" for i in range(6)]
    assert (items[0]["status"], items[0]["label"]) == ("labeled", "pos")
    page = client.get(f"/api/projects/{pid}/items", params={"limit": 2, "offset": 3}).json()
    assert [it["external_id"] for it in page] == ["x3", "x4"]
    labeled = client.get(f"/api/projects/{pid}/items", params={"status": "labeled"}).json()
    assert [it["external_id"] for it in labeled] == ["x0"]
    assert _detail(client.get(f"/api/projects/{pid}/items", params={"status": "odd"}), 422)


def test_bad_json_label_names_line_and_nothing_is_imported(client):
    pid = _project(client)["id"]
    items = [
        {"external_id": "a", "payload": {"text": "fine"}, "label": "pos"},
        {"external_id": "b", "payload": {"text": "bad"}, "label": "maybe"},
    ]
    r = client.post(f"/api/projects/{pid}/items:import", json={"items": items})
    detail = _detail(r, 422)
    assert "line 2" in detail and "'label'" in detail and "['neg', 'pos']" in detail
    assert client.get(f"/api/projects/{pid}/items").json() == []


def _csv_bytes(rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerows(rows)
    return buf.getvalue().encode()


def test_file_imports_csv_jsonl_parquet(client):
    pid = _project(client)["id"]
    data = _csv_bytes([["id", "text", "label"], ["c1", "good", "pos"], ["c2", "meh", ""]])
    r = client.post(
        f"/api/projects/{pid}/items:import",
        params={"label_field": "label"},
        files={"file": ("reviews.csv", data, "text/csv")},
    )
    assert r.json() == {"n_read": 2, "n_created": 2, "n_skipped": 0}, r.text
    jsonl = b'{"id": "j1", "text": "hello"}\n{"id": "j2", "text": "bye"}\n'
    r = client.post(f"/api/projects/{pid}/items:import", files={"file": ("more.jsonl", jsonl)})
    assert r.json()["n_created"] == 2, r.text
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["p1"], "text": ["parquet row"]}), buf)
    r = client.post(
        f"/api/projects/{pid}/items:import",
        params={"format": "parquet"},
        files={"file": ("blob.bin", buf.getvalue())},
    )
    assert r.json()["n_created"] == 1, r.text
    items = {it["external_id"]: it for it in client.get(f"/api/projects/{pid}/items").json()}
    assert set(items) == {"c1", "c2", "j1", "j2", "p1"}
    assert (items["c1"]["label"], items["c1"]["metadata"]["source"]) == ("pos", "reviews.csv")
    assert items["c2"]["status"] == "unlabeled"


def test_tabular_csv_import(client):
    pid = _project(client)["id"]
    data = _csv_bytes([["id", "f0", "f1"], ["r1", "0.5", "3"]])
    r = client.post(
        f"/api/projects/{pid}/items:import",
        params={"text_field": ""},
        files={"file": ("t.csv", data)},
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/api/projects/{pid}/items").json()[0]["payload"] == {"f0": 0.5, "f1": 3}


def test_bad_file_names_line_and_field_and_imports_nothing(client):
    pid = _project(client)["id"]
    data = _csv_bytes([["id", "text", "label"], ["a", "ok", "pos"], ["b", "ok", "maybe"]])
    r = client.post(
        f"/api/projects/{pid}/items:import",
        params={"label_field": "label"},
        files={"file": ("bad.csv", data)},
    )
    detail = _detail(r, 422)
    assert "line 3" in detail and "field 'label'" in detail and "Nothing was imported" in detail
    assert client.get(f"/api/projects/{pid}/items").json() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"files": {"file": ("notes.txt", b"hi")}}, "cannot tell the format"),
        ({"files": {"other": ("a.csv", b"id,text\n1,a\n")}}, "no file uploaded"),
        ({"content": b"id,text", "headers": {"content-type": "text/csv"}}, "content type"),
        ({"json": {"items": []}}, "items"),
        ({"json": {"items": [{"external_id": "a"}]}}, "payload"),
    ],
)
def test_bad_import_request_is_422(client, kwargs, message):
    pid = _project(client)["id"]
    r = client.post(f"/api/projects/{pid}/items:import", **kwargs)
    assert message in _detail(r, 422)


def test_import_into_unknown_project_is_404(client):
    r = client.post("/api/projects/42/items:import", files={"file": ("a.csv", b"id,text\n1,a\n")})
    assert _detail(r, 404) == "project 42 not found"
    r = client.post("/api/projects/42/items", json={"items": [{"external_id": "a", "payload": {}}]})
    assert _detail(r, 404) == "project 42 not found"


# --------------------------------------------------------------------------- annotators


def test_create_annotator_with_memberships_and_skills(client):
    pid = _project(client)["id"]
    ana = _user(client, "ana", projects=[pid], skills=["de"])
    assert (ana["role"], ana["skills"], ana["projects"]) == ("annotator", ["de"], [pid])
    assert len(ana["token"]) >= 32
    bob = _user(client, "bob")
    r = client.post(f"/api/projects/{pid}/members", json={"annotator_id": bob["id"]})
    assert r.status_code == 201 and r.json()["projects"] == [pid]
    members = client.get(f"/api/projects/{pid}/members").json()
    assert [m["name"] for m in members] == ["ana", "bob"]


def test_new_admin_can_use_admin_routes(client):
    boss = _user(client, "boss", role="admin")
    r = client.post("/api/projects", json={"name": "p"}, headers=_auth(boss["token"]))
    assert r.status_code == 201


def test_bad_annotator_requests(client):
    _user(client, "ana")
    assert "already exists" in _detail(client.post("/api/annotators", json={"name": "ana"}), 409)
    r = client.post("/api/annotators", json={"name": "zed", "projects": [77]})
    assert _detail(r, 404) == "project 77 not found"
    assert [a["name"] for a in client.get("/api/annotators").json()] == ["admin", "ana"]
    assert _detail(client.post("/api/annotators", json={"name": "x", "role": "god"}), 422)
    pid = _project(client)["id"]
    r = client.post(f"/api/projects/{pid}/members", json={"annotator_id": 99})
    assert _detail(r, 404) == "annotator 99 not found"


# --------------------------------------------------------------------------- exports, jobs


def test_dataset_version_export_csv_and_jsonl(pg_client):
    client = pg_client
    pid = _project(client, task_type="multilabel", classes=["a", "b"])["id"]
    items = [
        {"external_id": "i2", "payload": {"text": "two"}, "label": ["b", "a"]},
        {"external_id": "i1", "payload": {"text": "one"}, "label": ["a"]},
        {"external_id": "i3", "payload": {"text": "three"}},
    ]
    assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    r = client.post(f"/api/projects/{pid}/dataset-versions")
    assert r.status_code == 201, r.text
    version = r.json()
    assert version["n_labels"] == 2
    assert client.get(f"/api/projects/{pid}/dataset-versions").json() == [version]
    r = client.get(f"/api/dataset-versions/{version['id']}/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == "id,label\ni1,a\ni2,a|b\n"  # sorted by id; labels sorted, a|b
    r = client.get(f"/api/dataset-versions/{version['id']}/export", params={"format": "jsonl"})
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert rows == [{"id": "i1", "label": ["a"]}, {"id": "i2", "label": ["a", "b"]}]
    assert _detail(client.get("/api/dataset-versions/99/export"), 404)
    r = client.get(f"/api/dataset-versions/{version['id']}/export", params={"format": "xml"})
    assert _detail(r, 422)


def test_jobs_and_model_versions_lists(client, api_store):
    pid = _project(client)["id"]
    assert client.get(f"/api/projects/{pid}/model-versions").json() == []
    jid = api_store.create_job("retrain", pid, {"round_id": None})
    mid = api_store.create_model_version(pid, metrics={"accuracy": 0.9})
    jobs = client.get("/api/jobs", params={"project_id": pid}).json()
    assert [(j["id"], j["kind"], j["status"]) for j in jobs] == [(jid, "retrain", "queued")]
    assert client.get("/api/jobs", params={"status": "done"}).json() == []
    assert client.get(f"/api/jobs/{jid}").json()["payload"] == {"round_id": None}
    assert _detail(client.get("/api/jobs/12345"), 404) == "job 12345 not found"
    versions = client.get(f"/api/projects/{pid}/model-versions").json()
    assert [(v["id"], v["metrics"]) for v in versions] == [(mid, {"accuracy": 0.9})]
    assert np.isclose(versions[0]["metrics"]["accuracy"], 0.9)
