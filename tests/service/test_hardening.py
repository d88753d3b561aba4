"""Issue 14 (hardening): duplicates and re-imports, limits and abuse, PATCH and error wording.

Every test runs on SQLite and PostgreSQL (and the in-memory store where it says nothing about
SQL), because "the same behaviour on both backends" is part of what is checked.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.settings import Settings
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import postgres_schema_store, sqlite_store

from .conftest import detail as _detail

ADMIN = "admin-token-for-hardening-tests"


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    path = tmp_path_factory.mktemp("hardening") / "template.db"
    with sqlite_store(path):
        pass
    return path


@pytest.fixture(scope="module")
def _pg():
    with postgres_schema_store() as store:
        yield store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "api.db"
        shutil.copy(request.getfixturevalue("_template"), path)
        s = SqlStore(f"sqlite:///{path}")
        yield s
        s.close()
        return
    from labelwise.storage.sql.models import metadata

    s = request.getfixturevalue("_pg")
    with s._engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(sa.delete(table))
    yield s


def _settings(tmp_path, **kw) -> Settings:
    return Settings(worker="external", data_dir=tmp_path / "data", lease_seconds=60, **kw)


@pytest.fixture
def make_client(store, tmp_path):
    clients = []

    def make(**kw) -> TestClient:
        c = TestClient(create_app(_settings(tmp_path, **kw), store, admin_token=ADMIN))
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        clients.append(c.__enter__())
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _project(client, name="p", classes=("neg", "pos"), **kw) -> int:
    r = client.post("/api/projects", json={"name": name, "classes": list(classes), **kw})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload(client, pid, name: str, content: bytes | str, **params):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        f"/api/projects/{pid}/items:import",
        params=params,
        files={"file": (name, data, "application/octet-stream")},
    )


def _user(client, name, projects=(), role="annotator") -> dict:
    r = client.post(
        "/api/annotators", json={"name": name, "role": role, "projects": list(projects)}
    )
    assert r.status_code == 201, r.text
    return r.json()


# --------------------------------------------------------------------------- duplicates


def test_reimport_reports_changed_ids_and_updates_labels_on_request(client, store):
    pid = _project(client)
    first = "id,text,label\na,one,pos\nb,two,\nc,three,neg\n"
    r = _upload(client, pid, "labels.csv", first, label_field="label")
    assert r.status_code == 201, r.text
    edited = "id,text,label\na,one,neg\nb,two,pos\nc,three,neg\n"
    r = _upload(client, pid, "labels.csv", edited, label_field="label")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["n_created"], body["n_skipped"], body.get("n_updated", 0)) == (0, 3, 0)
    assert (body["n_changed"], body["changed_ids"]) == (2, ["a", "b"])
    detail = _detail(
        _upload(client, pid, "labels.csv", edited, label_field="label", on_duplicate="fail"), 409
    )
    assert "2 rows repeat an existing external id" in detail and "'a', 'b'" in detail
    r = _upload(client, pid, "labels.csv", edited, label_field="label", on_duplicate="update")
    assert r.status_code == 201, r.text
    assert (r.json()["n_updated"], r.json()["n_changed"]) == (2, 2)
    labels = {it.external_id: it.label for it in store.list_items(pid)}
    assert labels == {"a": "neg", "b": "pos", "c": "neg"}
    # the JSON route takes the same option
    items = {"items": [{"external_id": "a", "payload": {"text": "one"}, "label": "pos"}]}
    r = client.post(f"/api/projects/{pid}/items", json=items, params={"on_duplicate": "update"})
    assert r.status_code == 201 and r.json()["n_updated"] == 1, r.text
    assert "on_duplicate" in _detail(
        client.post(f"/api/projects/{pid}/items", json=items, params={"on_duplicate": "x"}), 422
    )


def test_split_column_goes_to_the_items_split(client, store):
    pid = _project(client)
    csv = "id,text,label,split\nv1,one,pos,validation\nt1,two,neg,\n"
    assert _upload(client, pid, "x.csv", csv, label_field="label").status_code == 201
    assert store.find_item(pid, "v1").metadata["split"] == "validation"
    assert "fields" not in store.find_item(pid, "v1").metadata


# --------------------------------------------------------------------------- limits and abuse


def _asgi_post(app, path, chunks, headers):
    """Drive the ASGI app directly: how many body chunks it pulled, and the response."""
    import anyio

    pulled = []
    sent = []
    pending = list(chunks)

    async def receive():
        pulled.append(1)
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(msg):
        sent.append(msg)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    # a thread of its own: another test (the browser suite) may leave a loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, app, scope, receive, send).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return len(pulled), start["status"], body


def test_anonymous_bodies_are_refused_before_they_are_read(client):
    pid = _project(client)
    chunk = b'{"items": [' + b" " * 65_536
    for headers in ({}, {"Authorization": "Bearer nope"}):
        headers = {**headers, "content-type": "application/json"}
        pulled, code, body = _asgi_post(
            client.app, f"/api/projects/{pid}/items", [chunk] * 50, headers
        )
        assert (pulled, code) == (0, 401), body
        assert b"token" in body


def test_bodies_over_the_limit_are_413_with_a_message(make_client, store):
    client = make_client(max_json_body_bytes=2_000, max_upload_bytes=5_000)
    pid = _project(client)
    items = {"items": [{"external_id": f"x{i}", "payload": {"text": "t" * 50}} for i in range(40)]}
    detail = _detail(client.post(f"/api/projects/{pid}/items", json=items), 413)
    assert "larger than 2,000 bytes" in detail and "LABELWISE_MAX_JSON_BODY_BYTES" in detail
    # no Content-Length (chunked): cut off as soon as it passes the limit, not read to the end
    auth = {"Authorization": f"Bearer {ADMIN}", "content-type": "application/json"}
    pulled, code, body = _asgi_post(
        client.app, f"/api/projects/{pid}/items", [b" " * 1_500] * 50, auth
    )
    assert code == 413 and pulled == 2, (pulled, body)
    big = "id,text\n" + "".join(f"r{i},{'t' * 40}\n" for i in range(200))
    detail = _detail(_upload(client, pid, "x.csv", big), 413)
    assert "file upload is larger than 5,000 bytes" in detail
    assert store.count_items(pid) == 0
    small = "id,text\na,t\n"
    assert _upload(client, pid, "x.csv", small).status_code == 201


def test_open_leases_per_annotator_are_capped(make_client):
    client = make_client(max_open_leases=2)
    pid = _project(client, batch_size=6)
    items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(12)]
    assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
    ana = _user(client, "ana", [pid])
    h = _auth(ana["token"])
    claimed = [client.post(f"/api/projects/{pid}/tasks/next", headers=h) for _ in range(2)]
    assert [r.status_code for r in claimed] == [200, 200]
    detail = _detail(client.post(f"/api/projects/{pid}/tasks/next", headers=h), 409)
    assert "you hold 2 open leases" in detail and "LABELWISE_MAX_OPEN_LEASES=2" in detail
    # another annotator is not held back by ana
    bob = _user(client, "bob", [pid])
    assert (
        client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(bob["token"])).status_code
        == 200
    )
    tid = claimed[0].json()["task"]["id"]
    r = client.post(f"/api/tasks/{tid}/annotations", json={"label": "pos"}, headers=h)
    assert r.status_code == 201, r.text
    assert client.post(f"/api/projects/{pid}/tasks/next", headers=h).status_code == 200


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "x.jsonl",
            '{"id": ' + "9" * 5000 + ', "text": "t"}\n',
            "line 1: field 'id': an integer of 5000",
        ),
        ("x.jsonl", '{"id": "a", "text": "t", "m": ' + "[" * 5000 + "]" * 5000 + "}\n", "line 1: "),
        (
            "x.jsonl",
            '{"id": "a", "text": "' + "x" * 200_000 + '"}\n',
            "line 1: field 'text': a value of 200,000",
        ),
        ("x.csv", "id,text\na,nul\x00here\n", "line 2: field 'text': a NUL character"),
        ("x.csv", "", "has no rows"),
        ("x.csv", "id,text\n", "has no rows"),
        ("x.jsonl", "", "has no rows"),
    ],
)
def test_import_limits_are_422_naming_line_and_field(client, store, name, content, message):
    pid = _project(client)
    detail = _detail(_upload(client, pid, name, content), 422)
    assert message in detail, detail
    assert store.count_items(pid) == 0


# --------------------------------------------------------------------------- PATCH, 404 wording


def test_patch_refuses_empty_classes_and_dropping_a_used_class(client, store):
    pid = _project(client, classes=("neg", "pos", "meh"))
    items = {"items": [{"external_id": "a", "payload": {"text": "t"}, "label": "pos"}]}
    assert client.post(f"/api/projects/{pid}/items", json=items).status_code == 201
    detail = _detail(client.patch(f"/api/projects/{pid}", json={"classes": []}), 422)
    assert "classes cannot be empty" in detail
    detail = _detail(client.patch(f"/api/projects/{pid}", json={"classes": ["neg", "meh"]}), 422)
    assert "['pos'] is used by stored labels" in detail
    assert list(store.get_project(pid).classes) == ["neg", "pos", "meh"]
    # an unused class may go, and new ones come
    r = client.patch(f"/api/projects/{pid}", json={"classes": ["neg", "pos", "great"]})
    assert r.status_code == 200 and r.json()["classes"] == ["neg", "pos", "great"], r.text


def test_foreign_and_unknown_ids_answer_the_same_404(client):
    mine = _project(client, "mine", batch_size=4)
    theirs = _project(client, "theirs", batch_size=4)
    for pid in (mine, theirs):
        items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(8)]
        assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
        assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
    # an annotation in the foreign project, by an admin
    task = client.post(f"/api/projects/{theirs}/tasks/next").json()["task"]
    ann = client.post(f"/api/tasks/{task['id']}/annotations", json={"label": "pos"}).json()
    ana = _user(client, "ana", [mine])
    h = _auth(ana["token"])
    unknown = 99_999

    def word(r, n):
        return _detail(r, 404).replace(str(n), "N")

    for method, path in [
        ("get", "/api/tasks/{}"),
        ("post", "/api/tasks/{}/skip"),
        ("post", "/api/annotations/{}/undo"),
    ]:
        foreign_id = ann["id"] if "annotations" in path else task["id"]
        a = word(client.request(method, path.format(foreign_id), headers=h), foreign_id)
        b = word(client.request(method, path.format(unknown), headers=h), unknown)
        assert a == b, (path, a, b)
        assert str(theirs) not in a
    a = word(client.get(f"/api/projects/{theirs}", headers=h), theirs)
    b = word(client.get(f"/api/projects/{unknown}", headers=h), unknown)
    assert a == b == "project N not found"


# --------------------------------------------------------------------------- many memberships


def test_a_user_with_10000_project_ids_costs_a_bounded_number_of_queries(client, store):
    """``POST /api/annotators`` checks its (up to 10,000) project ids in one query and writes
    the memberships in one transaction; an unknown id among them is a 404 and writes nothing."""
    pids = [client.post("/api/projects", json={"name": f"p{i}"}).json()["id"] for i in range(3)]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", count)
    try:
        ids = [pids[i % 3] for i in range(9_999)] + [10**9]
        r = client.post("/api/annotators", json={"name": "many", "projects": ids})
        assert _detail(r, 404) == f"project {10**9} not found"
        assert "many" not in [a["name"] for a in client.get("/api/annotators").json()]
        statements.clear()
        ids = [pids[i % 3] for i in range(10_000)]
        r = client.post("/api/annotators", json={"name": "many", "projects": ids})
        assert r.status_code == 201 and sorted(r.json()["projects"]) == sorted(pids)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", count)
    # token lookup, name check, list projects, insert user, memberships, read back: not 10,000
    assert len(statements) < 30, len(statements)
    r = client.post("/api/annotators", json={"name": "more", "projects": list(range(10_001))})
    assert "projects" in _detail(r, 422)
