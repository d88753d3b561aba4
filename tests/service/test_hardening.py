"""Issue 14 (hardening): duplicates and re-imports, limits and abuse, PATCH and error wording.

Every test runs on SQLite and PostgreSQL (and the in-memory store where it says nothing about
SQL), because "the same behaviour on both backends" is part of what is checked.
"""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.settings import Settings
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import postgres_schema_store, sqlite_store

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


def _detail(r, code: int) -> str:
    assert r.status_code == code, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


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
