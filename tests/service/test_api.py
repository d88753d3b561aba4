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
        ({"strategy_params": {"bogus": 1}}, "bad strategy_params for 'diverse_margin'"),
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


def test_nul_characters_are_422_on_every_backend(pg_client):
    # PostgreSQL cannot store U+0000 in text or JSON: rejected up front (JSON bodies) or when
    # the database refuses it (files), never a 500, and nothing is written
    client = pg_client
    pid = _project(client)["id"]
    r = client.post(
        f"/api/projects/{pid}/items", json={"items": [{"external_id": "a", "payload": {"t": "\0"}}]}
    )
    assert "NUL" in _detail(r, 422)
    r = client.post(
        f"/api/projects/{pid}/items:import", files={"file": ("n.csv", b"id,text\n1,a\0\n")}
    )
    assert r.status_code in (201, 422), r.text  # SQLite stores NUL; PostgreSQL refuses it
    if r.status_code == 422:
        assert client.get(f"/api/projects/{pid}/items").json() == []
    assert "NUL" in _detail(
        client.post("/api/projects", json={"name": "x", "stopping": {"\0": 1}}), 422
    )


# --------------------------------------------------------------------------- annotators


def test_create_annotator_with_memberships_and_skills(client):
    pid = _project(client)["id"]
    ana = _user(client, "ana", projects=[pid], skills=["de"])
    assert (ana["role"], ana["skills"], ana["projects"]) == ("annotator", ["de"], [pid])
    assert len(ana["token"]) >= 32
    bob = _user(client, "bob")
    r = client.post(f"/api/projects/{pid}/members", json={"annotator_id": bob["id"]})
    assert r.status_code == 201 and r.json()["project_role"] == "annotator"
    assert "projects" not in r.json()  # an owner sees their project, not the member's others
    members = client.get(f"/api/projects/{pid}/members").json()
    assert [(m["name"], m["project_role"]) for m in members] == [
        ("ana", "annotator"), ("bob", "annotator")
    ]  # fmt: skip


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


# --------------------------------------------------------------------------- rounds and tasks


def _queued_project(client, n_items=6, batch_size=4, **kw):
    """A project with ``n_items`` text items and a first round of ``batch_size`` tasks, and two
    member annotators; returns (project, round, ana_token, bob_token)."""
    p = _project(client, batch_size=batch_size, **kw)
    texts = ["good", "bad", "great", "awful", "fine", "poor", "nice", "worse"]
    items = [
        {"external_id": f"t{i}", "payload": {"text": f"{texts[i % 8]} item number {i}"}}
        for i in range(n_items)
    ]
    assert client.post(f"/api/projects/{p['id']}/items", json={"items": items}).status_code == 201
    r = client.post(f"/api/projects/{p['id']}/rounds")
    assert r.status_code == 201, r.text
    ana = _user(client, "ana", projects=[p["id"]])["token"]
    bob = _user(client, "bob", projects=[p["id"]])["token"]
    return p, r.json(), ana, bob


def test_start_round_queues_a_batch(pg_client):
    client = pg_client
    p, rnd, _, _ = _queued_project(client)
    assert (rnd["project_id"], rnd["number"], rnd["closed"]) == (p["id"], 1, None)
    assert client.get(f"/api/projects/{p['id']}/rounds").json() == [rnd]
    queued = client.get(f"/api/projects/{p['id']}/items", params={"status": "queued"}).json()
    assert len(queued) == 4  # batch_size


def test_claim_submit_skip(pg_client):
    client = pg_client
    p, rnd, ana, bob = _queued_project(client)
    r = client.post(f"/api/projects/{p['id']}/tasks/next", headers=_auth(ana))
    assert r.status_code == 200, r.text
    claimed = r.json()
    task = claimed["task"]
    assert (task["status"], task["round_id"]) == ("leased", rnd["id"])
    assert claimed["item"]["id"] == task["item_id"]
    assert claimed["item"]["payload"]["text"]
    assert claimed["classes"] == ["neg", "pos"] and claimed["prediction"] is None
    other = client.post(f"/api/projects/{p['id']}/tasks/next", headers=_auth(bob)).json()
    assert other["task"]["id"] != task["id"]
    # bob cannot answer ana's task
    answer = f"/api/tasks/{task['id']}/annotations"
    r = client.post(answer, json={"label": "pos"}, headers=_auth(bob))
    assert "not leased by annotator" in _detail(r, 409)
    # a bad label names the classes and stores nothing
    r = client.post(answer, json={"label": "meh"}, headers=_auth(ana))
    assert "['neg', 'pos']" in _detail(r, 422)
    r = client.post(
        f"/api/tasks/{task['id']}/annotations",
        json={"label": "pos", "duration_s": 2.5},
        headers=_auth(ana),
    )
    assert r.status_code == 201, r.text
    ann = r.json()
    assert (ann["task_id"], ann["label"], ann["duration_s"]) == (task["id"], "pos", 2.5)
    items = client.get(f"/api/projects/{p['id']}/items").json()
    item = next(it for it in items if it["id"] == task["item_id"])
    assert (item["status"], item["label"]) == ("labeled", "pos")
    # answering twice: the lease is gone
    r = client.post(answer, json={"label": "neg"}, headers=_auth(ana))
    assert _detail(r, 409)
    # skip
    r = client.post(f"/api/tasks/{other['task']['id']}/skip", headers=_auth(bob))
    assert r.status_code == 200 and r.json()["status"] == "skipped"
    assert _detail(client.post(f"/api/tasks/{other['task']['id']}/skip", headers=_auth(bob)), 409)
    assert client.get(f"/api/tasks/{task['id']}", headers=_auth(ana)).json()["status"] == "done"


def test_claim_until_empty_then_204_and_retrain_job(client):
    p, _, ana, _ = _queued_project(client, n_items=3, batch_size=3)
    seen = []
    claim = f"/api/projects/{p['id']}/tasks/next"
    while (r := client.post(claim, headers=_auth(ana))).status_code == 200:
        t = r.json()["task"]
        seen.append(t["id"])
        label = ["neg", "pos"][len(seen) % 2]
        r = client.post(
            f"/api/tasks/{t['id']}/annotations", json={"label": label}, headers=_auth(ana)
        )
        assert r.status_code == 201, r.text
    assert r.status_code == 204 and r.content == b""
    assert len(seen) == len(set(seen)) == 3
    jobs = client.get("/api/jobs", params={"project_id": p["id"]}).json()
    assert [(j["kind"], j["status"]) for j in jobs] == [("retrain", "queued")]  # batch complete
    # the pool is exhausted: no next round, and the answer says why
    assert "no unlabeled items" in _detail(client.post(f"/api/projects/{p['id']}/rounds"), 409)


def test_task_access_rules(client):
    p, _, ana, _ = _queued_project(client)
    outsider = _user(client, "zoe")["token"]
    task = client.post(f"/api/projects/{p['id']}/tasks/next", headers=_auth(ana)).json()["task"]
    for method, path, body in [
        ("get", f"/api/tasks/{task['id']}", None),
        ("post", f"/api/tasks/{task['id']}/annotations", {"label": "pos"}),
        ("post", f"/api/tasks/{task['id']}/skip", None),
    ]:
        r = client.request(method, path, json=body, headers=_auth(outsider))
        # a foreign task reads like an unknown one: the answer tells nothing about other projects
        assert _detail(r, 404) == f"task {task['id']} not found"
    assert _detail(client.get("/api/tasks/999"), 404) == "task 999 not found"
    r = client.post("/api/tasks/999/annotations", json={"label": "pos"})
    assert _detail(r, 404) == "task 999 not found"
    r = client.post(f"/api/tasks/{task['id']}/annotations", json={"label": "pos", "x": 1})
    assert "x: Extra inputs are not permitted" in _detail(r, 422)
    r = client.post(f"/api/tasks/{task['id']}/annotations", json={"label": "pos", "duration_s": -1})
    assert "duration_s" in _detail(r, 422)


def test_rounds_of_unknown_project_is_404(client):
    assert _detail(client.post("/api/projects/5/rounds"), 404) == "project 5 not found"


# --------------------------------------------------------------------------- end to end


def _digits_items(n_pool=200, n_val=150):
    """Real data: sklearn's 8x8 digits as tabular payloads; a labelled validation split."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))[: n_pool + n_val]
    items, truth = [], {}
    for rank, i in enumerate(order):
        ext = f"d{i:04d}"
        truth[ext] = str(y[i])
        item = {"external_id": ext, "payload": {f"px{j}": float(v) for j, v in enumerate(X[i])}}
        if rank >= n_pool:
            item |= {"label": str(y[i]), "metadata": {"split": "validation"}}
        items.append(item)
    return items, truth


def _wait_for(fn, timeout=90.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := fn()) is not None:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the in-process worker")


@pytest.mark.timeout(240)
def test_full_loop_with_in_process_worker(api_store, tmp_path):
    settings = Settings(
        worker="inline", worker_poll_seconds=0.1, data_dir=tmp_path / "data", random_fraction=0.1
    )
    with TestClient(create_app(settings, api_store, admin_token=ADMIN)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        p = _project(
            client, "digits", classes=[str(d) for d in range(10)], batch_size=30,
            label_cost=0.5, show_predictions=True,
        )  # fmt: skip
        pid = p["id"]
        items, truth = _digits_items()
        r = client.post(f"/api/projects/{pid}/items:import", json={"items": items})
        assert r.json() == {"n_read": 350, "n_created": 350, "n_skipped": 0}
        tokens = [_user(client, f"ann{i}", projects=[pid])["token"] for i in range(3)]
        r1 = client.post(f"/api/projects/{pid}/rounds")
        assert r1.status_code == 201 and r1.json()["number"] == 1

        # annotators claim round-robin and answer with the true labels
        n = 0
        while True:
            tok = tokens[n % 3]
            r = client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(tok))
            if r.status_code == 204:
                break
            claimed = r.json()
            assert claimed["task"]["round_id"] == r1.json()["id"]
            label = truth[claimed["item"]["external_id"]]
            r = client.post(
                f"/api/tasks/{claimed['task']['id']}/annotations",
                json={"label": label, "duration_s": 1.0},
                headers=_auth(tok),
            )
            assert r.status_code == 201, r.text
            n += 1
        assert n == 30

        # the in-process worker retrains and opens round 2
        rounds = _wait_for(
            lambda: rs if len(rs := client.get(f"/api/projects/{pid}/rounds").json()) > 1 else None
        )
        assert [r["number"] for r in rounds] == [1, 2] and rounds[0]["closed"] is not None
        jobs = client.get("/api/jobs", params={"project_id": pid}).json()
        assert [(j["kind"], j["status"]) for j in jobs] == [("retrain", "done")]
        versions = client.get(f"/api/projects/{pid}/model-versions").json()
        assert len(versions) == 1 and versions[0]["metrics"]["accuracy"] > 0.3  # chance: 0.1

        # round 2 is claimable and shows the model's guess
        r = client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(tokens[0]))
        assert r.status_code == 200 and r.json()["task"]["round_id"] == rounds[1]["id"]
        assert r.json()["prediction"]["label"] in p["classes"]

        progress = client.get(f"/api/projects/{pid}/progress", headers=_auth(tokens[1])).json()
        assert (progress["n_annotations"], progress["cost"]) == (30, 15.0)  # 30 labels x 0.5
        assert progress["n_items"] == 350 and progress["n_labeled"] == 180  # 150 val + 30
        assert progress["learning_curve"][0][1] == versions[0]["metrics"]["accuracy"]

        # the retrain snapshotted the labels; export them
        dsv = client.get(f"/api/projects/{pid}/dataset-versions").json()
        assert len(dsv) == 1 and dsv[0]["n_labels"] == 180
        r = client.get(f"/api/dataset-versions/{dsv[0]['id']}/export", params={"format": "csv"})
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 180 and all(truth[row["id"]] == row["label"] for row in rows)
        r = client.get(f"/api/dataset-versions/{dsv[0]['id']}/export", params={"format": "jsonl"})
        assert [json.loads(x)["id"] for x in r.text.splitlines()] == [row["id"] for row in rows]


# --------------------------------------------------------------------------- undo, confidence


def test_undo_last_label_gives_the_task_back(pg_client):
    client = pg_client
    p, rnd, ana, bob = _queued_project(client)
    claim = f"/api/projects/{p['id']}/tasks/next"
    answers = []
    for label in ["pos", "neg"]:
        task = client.post(claim, headers=_auth(ana)).json()["task"]
        r = client.post(
            f"/api/tasks/{task['id']}/annotations", json={"label": label}, headers=_auth(ana)
        )
        assert r.status_code == 201, r.text
        answers.append(r.json())
    first, last = answers
    undo = f"/api/annotations/{last['id']}/undo"
    assert "another annotator" in _detail(client.post(undo, headers=_auth(bob)), 409)
    older = f"/api/annotations/{first['id']}/undo"
    assert "not your most recent" in _detail(client.post(older, headers=_auth(ana)), 409)
    r = client.post(undo, headers=_auth(ana))
    assert r.status_code == 200, r.text
    back = r.json()  # shaped like a claim, so the page can show the item again
    assert (back["task"]["id"], back["task"]["status"]) == (last["task_id"], "leased")
    assert back["item"]["id"] == last["item_id"] and back["classes"] == ["neg", "pos"]
    item = client.get(f"/api/projects/{p['id']}/items", params={"status": "queued"}).json()
    assert last["item_id"] in {it["id"] for it in item}  # unlabeled again
    assert _detail(client.post(undo, headers=_auth(ana)), 404) == (
        f"annotation {last['id']} not found"
    )
    # answered again through the normal route
    r = client.post(
        f"/api/tasks/{last['task_id']}/annotations", json={"label": "pos"}, headers=_auth(ana)
    )
    assert r.status_code == 201, r.text
    assert rnd["closed"] is None


def test_undo_access_rules(client):
    p, _, ana, _ = _queued_project(client)
    outsider = _user(client, "zoe")["token"]
    task = client.post(f"/api/projects/{p['id']}/tasks/next", headers=_auth(ana)).json()["task"]
    ann = client.post(
        f"/api/tasks/{task['id']}/annotations", json={"label": "pos"}, headers=_auth(ana)
    ).json()
    r = client.post(f"/api/annotations/{ann['id']}/undo", headers=_auth(outsider))
    assert _detail(r, 404) == f"annotation {ann['id']} not found"  # as for an unknown id
    assert _detail(client.post("/api/annotations/999/undo"), 404) == "annotation 999 not found"
    assert client.post("/api/annotations/0/undo").status_code == 422


def test_undo_after_the_round_closed_is_409(client, api_store):
    p, rnd, ana, _ = _queued_project(client)
    task = client.post(f"/api/projects/{p['id']}/tasks/next", headers=_auth(ana)).json()["task"]
    ann = client.post(
        f"/api/tasks/{task['id']}/annotations", json={"label": "pos"}, headers=_auth(ana)
    ).json()
    api_store.close_round(rnd["id"])  # what a retrain does once the batch is done
    r = client.post(f"/api/annotations/{ann['id']}/undo", headers=_auth(ana))
    assert "closed" in _detail(r, 409)


def test_claimed_prediction_carries_the_stored_confidence(client, api_store):
    p = _project(client, show_predictions=True)
    _items(client, p["id"], 2)
    ids = api_store.list_unlabeled_item_ids(p["id"])
    api_store.create_model_version(p["id"], metrics={"accuracy": 0.9})  # a model exists
    rid = api_store.create_round(p["id"], "entropy")
    api_store.create_tasks(
        rid, ids, priorities=[2.0, 1.0], routing_tags=["pos", "neg"], confidences=[0.8125, None]
    )
    ana = _user(client, "ana", projects=[p["id"]])["token"]
    claim = f"/api/projects/{p['id']}/tasks/next"
    first = client.post(claim, headers=_auth(ana)).json()
    assert first["prediction"] == {"label": "pos", "confidence": 0.8125}
    assert first["task"]["confidence"] == 0.8125
    second = client.post(claim, headers=_auth(ana)).json()  # queued before it was recorded
    assert second["prediction"] == {"label": "neg", "confidence": None}
