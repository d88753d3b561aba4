"""Token lifecycle and project roles over HTTP: expiry, revocation, rotation, member removal.

Memory and SQLite (the store contract covers PostgreSQL). Every 401 names why: "invalid",
"revoked" or "expired".
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.service.deps import create_user
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore
from labelwise.storage.base import utcnow
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import sqlite_store

ADMIN = "admin-secret-token"


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens-sqlite") / "template.db"
    with sqlite_store(path):
        pass
    return path


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield InMemoryStore()
        return
    path = tmp_path / "api.db"
    shutil.copy(request.getfixturevalue("_template"), path)
    s = SqlStore(f"sqlite:///{path}")
    yield s
    s.close()


@pytest.fixture
def client(store, tmp_path):
    settings = Settings(worker="external", data_dir=tmp_path / "data", lease_seconds=60)
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _detail(r, code: int) -> str:
    assert r.status_code == code, r.text
    return r.json()["detail"]


def _project(client, name: str, n_items: int = 0) -> int:
    r = client.post("/api/projects", json={"name": name, "classes": ["neg", "pos"]})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    if n_items:
        items = [{"external_id": f"x{i}", "payload": {"text": f"t {i}"}} for i in range(n_items)]
        assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    return pid


def _user(client, name: str, projects=(), **kw) -> dict:
    r = client.post("/api/annotators", json={"name": name, "projects": list(projects), **kw})
    assert r.status_code == 201, r.text
    return r.json()


# --------------------------------------------------------------------------- lifecycle


def test_token_with_expiry_works_until_it_expires(client, store):
    ana = _user(client, "ana", expires_in_days=30)
    expires = utcnow() + timedelta(days=30)
    assert abs(store.get_annotator(ana["id"]).token_expires - expires) < timedelta(minutes=1)
    me = client.get("/api/me", headers=_auth(ana["token"]))
    assert me.status_code == 200 and me.json()["token_expires"] == ana["token_expires"]
    # a token that expired a second ago: 401 naming the expiry, not "invalid"
    _, token = create_user(store, "old", token_expires=utcnow() - timedelta(seconds=1))
    detail = _detail(client.get("/api/me", headers=_auth(token)), 401)
    assert "token expired at" in detail and "invalid" not in detail
    # writes are refused before their body is read, with the same answer
    r = client.post("/api/projects", json={"name": "x"}, headers=_auth(token))
    assert "token expired at" in _detail(r, 401)
    assert "invalid token" in _detail(client.get("/api/me", headers=_auth("nope")), 401)


@pytest.mark.parametrize("days", [0, 3651, "7", 1.5])
def test_bad_expiry_is_422(client, days):
    r = client.post("/api/annotators", json={"name": "ana", "expires_in_days": days})
    assert "expires_in_days" in _detail(r, 422)
    assert [a["name"] for a in client.get("/api/annotators").json()] == ["admin"]


def test_revoke_stops_a_token_at_once_and_rotation_gives_a_new_one(client):
    pid = _project(client, "p")
    ana = _user(client, "ana", [pid])
    h = _auth(ana["token"])
    assert client.get(f"/api/projects/{pid}", headers=h).status_code == 200
    assert client.delete(f"/api/annotators/{ana['id']}/token").status_code == 204
    assert "token revoked at" in _detail(client.get(f"/api/projects/{pid}", headers=h), 401)
    r = client.post(f"/api/projects/{pid}/tasks/next", headers=h)
    assert "token revoked at" in _detail(r, 401)
    assert client.get("/api/annotators").json()[1]["token_revoked"] is not None
    # rotation: a new token that works, with a lifetime; the revoked one stays dead
    r = client.post(f"/api/annotators/{ana['id']}/token", json={"expires_in_days": 7})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"] != ana["token"] and new["token_revoked"] is None
    assert new["token_expires"] is not None
    assert client.get(f"/api/projects/{pid}", headers=_auth(new["token"])).status_code == 200
    assert "invalid token" in _detail(client.get("/api/me", headers=h), 401)
    # rotation without a body: no expiry
    r = client.post(f"/api/annotators/{ana['id']}/token")
    assert r.status_code == 201 and r.json()["token_expires"] is None
    assert _detail(client.delete("/api/annotators/999/token"), 404) == "annotator 999 not found"


def test_users_rotate_and_revoke_their_own_token_only(client):
    ana, bob = _user(client, "ana"), _user(client, "bob")
    r = client.post(f"/api/annotators/{ana['id']}/token", headers=_auth(ana["token"]))
    assert r.status_code == 201
    ana_token = r.json()["token"]
    assert "invalid token" in _detail(client.get("/api/me", headers=_auth(ana["token"])), 401)
    for method in ("post", "delete"):
        r = client.request(method, f"/api/annotators/{bob['id']}/token", headers=_auth(ana_token))
        assert "needs the admin role" in _detail(r, 403)
    assert client.get("/api/me", headers=_auth(bob["token"])).status_code == 200
    r = client.delete(f"/api/annotators/{ana['id']}/token", headers=_auth(ana_token))
    assert r.status_code == 204
    assert "revoked" in _detail(client.get("/api/me", headers=_auth(ana_token)), 401)


def test_owners_manage_their_members_tokens_but_not_admins_or_strangers(client):
    pid, other = _project(client, "mine"), _project(client, "theirs")
    owner = _user(client, "olga", [pid])
    r = client.patch(f"/api/projects/{pid}/members/{owner['id']}", json={"role": "owner"})
    assert r.status_code == 200
    member, stranger = _user(client, "ana", [pid]), _user(client, "sam", [other])
    boss = _user(client, "boss", [pid], role="admin")
    h = _auth(owner["token"])
    r = client.post(f"/api/annotators/{member['id']}/token", headers=h)
    assert r.status_code == 201
    assert client.get("/api/me", headers=_auth(r.json()["token"])).json()["name"] == "ana"
    assert client.delete(f"/api/annotators/{member['id']}/token", headers=h).status_code == 204
    # a user in none of the owner's projects reads like an unknown one
    r = client.delete(f"/api/annotators/{stranger['id']}/token", headers=h)
    assert _detail(r, 404) == f"annotator {stranger['id']} not found"
    assert "only an admin" in _detail(
        client.delete(f"/api/annotators/{boss['id']}/token", headers=h), 403
    )
    assert client.get("/api/me", headers=_auth(boss["token"])).status_code == 200


# --------------------------------------------------------------------------- project roles


def test_owner_runs_their_project_and_nothing_else(client):
    pid, other = _project(client, "mine"), _project(client, "theirs")
    olga = _user(client, "olga", [pid, other])
    r = client.post(
        f"/api/projects/{pid}/members", json={"annotator_id": olga["id"], "role": "owner"}
    )
    assert r.json() == {**r.json(), "project_role": "owner", "role": "annotator"}
    h = _auth(olga["token"])
    items = {"items": [{"external_id": "a", "payload": {"text": "good"}}]}
    assert client.post(f"/api/projects/{pid}/items", json=items, headers=h).status_code == 201
    r = client.patch(f"/api/projects/{pid}", json={"batch_size": 5}, headers=h)
    assert r.status_code == 200 and r.json()["batch_size"] == 5
    assert client.post(f"/api/projects/{pid}/rounds", headers=h).status_code == 201
    # in the other project she is an annotator: a 403 naming the role, nothing changed
    r = client.patch(f"/api/projects/{other}", json={"batch_size": 5}, headers=h)
    assert _detail(r, 403) == (
        f"this needs the owner role on project {other} (or the admin role); "
        "'olga' is annotator there."
    )
    assert client.get(f"/api/projects/{other}").json()["batch_size"] != 5
    # global routes stay the admin's
    assert "admin role" in _detail(client.post("/api/projects", json={"name": "x"}, headers=h), 403)
    r = client.post("/api/annotators", json={"name": "x"}, headers=h)
    assert "admin role" in _detail(r, 403)


def test_owners_follow_their_projects_jobs_and_no_others(client, store):
    pid, other = _project(client, "mine"), _project(client, "theirs")
    olga = _user(client, "olga", [pid, other])
    client.post(f"/api/projects/{pid}/members", json={"annotator_id": olga["id"], "role": "owner"})
    mine, theirs = store.create_job("retrain", pid), store.create_job("retrain", other)
    h = _auth(olga["token"])
    assert client.get(f"/api/jobs/{mine}", headers=h).json()["id"] == mine
    assert [j["id"] for j in client.get(f"/api/jobs?project_id={pid}", headers=h).json()] == [mine]
    # an annotator there: the job answers as an unknown one would, the listing names the role
    assert _detail(client.get(f"/api/jobs/{theirs}", headers=h), 404) == (
        _detail(client.get("/api/jobs/99999", headers=h), 404).replace("99999", str(theirs))
    )
    assert "owner role" in _detail(client.get(f"/api/jobs?project_id={other}", headers=h), 403)
    assert "admin role" in _detail(client.get("/api/jobs", headers=h), 403)
    assert {j["id"] for j in client.get("/api/jobs").json()} == {mine, theirs}  # the admin


def test_member_roles_are_set_listed_and_validated(client):
    pid = _project(client, "p")
    ana = _user(client, "ana", [pid])
    r = client.patch(f"/api/projects/{pid}/members/{ana['id']}", json={"role": "reviewer"})
    assert r.status_code == 200 and r.json()["project_role"] == "reviewer"
    assert client.get("/api/me", headers=_auth(ana["token"])).json()["project_roles"] == {
        str(pid): "reviewer"
    }
    r = client.patch(f"/api/projects/{pid}/members/{ana['id']}", json={"role": "admin"})
    assert "role" in _detail(r, 422)  # a global admin is made by an admin, not by an owner
    bob = _user(client, "bob")
    r = client.patch(f"/api/projects/{pid}/members/{bob['id']}", json={"role": "owner"})
    assert _detail(r, 404) == f"member {bob['id']} not found"
    listed = client.get(f"/api/projects/{pid}/members").json()
    assert [(m["name"], m["project_role"]) for m in listed] == [("ana", "reviewer")]


def test_removed_member_loses_the_project_and_their_leases_go_back(client, store):
    pid = _project(client, "p", n_items=4)
    other = _project(client, "q", n_items=2)
    assert client.patch(f"/api/projects/{pid}", json={"batch_size": 4}).status_code == 200
    ana, bob = _user(client, "ana", [pid, other]), _user(client, "bob", [pid])
    for p in (pid, other):
        assert client.post(f"/api/projects/{p}/rounds").status_code == 201
    h = _auth(ana["token"])
    held = [client.post(f"/api/projects/{pid}/tasks/next", headers=h).json() for _ in range(2)]
    kept = client.post(f"/api/projects/{other}/tasks/next", headers=h).json()["task"]["id"]
    r = client.delete(f"/api/projects/{pid}/members/{ana['id']}")
    assert r.status_code == 204
    for claimed in held:
        t = store.get_task(claimed["task"]["id"])
        assert (t.status, t.lease_owner) == ("queued", None)
    assert store.get_task(kept).lease_owner == ana["id"]
    assert _detail(client.get(f"/api/projects/{pid}", headers=h), 404) == f"project {pid} not found"
    tid = held[0]["task"]["id"]
    r = client.post(f"/api/tasks/{tid}/annotations", json={"label": "pos"}, headers=h)
    assert _detail(r, 404) == f"task {tid} not found"
    assert [p["id"] for p in client.get("/api/projects", headers=h).json()] == [other]
    # bob gets all four tasks now
    hb = _auth(bob["token"])
    got = {client.post(f"/api/projects/{pid}/tasks/next", headers=hb).json()["task"]["id"]
           for _ in range(4)}  # fmt: skip
    assert {c["task"]["id"] for c in held} <= got
    assert client.delete(f"/api/projects/{pid}/members/{ana['id']}").status_code == 204
    r = client.delete(f"/api/projects/{pid}/members/999")
    assert _detail(r, 404) == "annotator 999 not found"


def test_project_reviewer_reviews_that_project_only(client):
    pid, other = _project(client, "mine"), _project(client, "theirs")
    rita = _user(client, "rita", [pid, other])
    r = client.post(
        f"/api/projects/{pid}/members", json={"annotator_id": rita["id"], "role": "reviewer"}
    )
    assert r.status_code == 201
    h = _auth(rita["token"])
    assert client.get(f"/api/projects/{pid}/review", headers=h).status_code == 200
    assert client.get(f"/api/projects/{pid}/annotators/quality", headers=h).status_code == 200
    r = client.get(f"/api/projects/{other}/review", headers=h)
    assert "needs the reviewer role" in _detail(r, 403)
    # reviewing is not owning
    r = client.patch(f"/api/projects/{pid}", json={"batch_size": 5}, headers=h)
    assert "needs the owner role" in _detail(r, 403)


# --------------------------------------------------------------------------- CLI


def test_cli_tokens_and_members(tmp_path, monkeypatch):
    import hashlib
    import json

    from typer.testing import CliRunner

    from labelwise.cli import app
    from labelwise.storage import open_store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        res = runner.invoke(app, list(args), env={"COLUMNS": "200"})
        assert res.exit_code == code, res.output
        return res

    run("project", "create", "reviews", "--classes", "neg,pos")
    created = json.loads(run("token", "create", "ana", "--expires-in-days", "30", "--json").stdout)
    assert created["annotator"]["token_expires"] is not None
    assert (
        "expires in days must be 1-3650"
        in run("token", "create", "bob", "--expires-in-days", "0", code=2).output
    )
    run("project", "member", "add", "reviews", "ana", "--role", "owner")
    listed = json.loads(run("project", "member", "list", "reviews", "--json").stdout)
    assert [(m["name"], m["project_role"]) for m in listed] == [("ana", "owner")]
    assert (
        "role must be one of"
        in run("project", "member", "add", "reviews", "ana", "--role", "admin", code=2).output
    )
    run("token", "revoke", "ana")
    with open_store(url) as store:
        assert store.find_annotator("ana").token_revoked is not None
    new = run("token", "rotate", "ana").stdout.strip().splitlines()[-1]
    with open_store(url) as store:
        a = store.find_annotator("ana")
        assert a.token_hash == hashlib.sha256(new.encode()).hexdigest()
        assert (a.token_revoked, a.token_expires) == (None, None)
    assert "0 leased task(s)" in run("project", "member", "remove", "reviews", "ana").stdout
    with open_store(url) as store:
        assert store.find_annotator("ana").projects == ()
    assert "no user named or numbered 'zed'" in run("token", "revoke", "zed", code=2).output
