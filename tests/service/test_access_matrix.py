"""Who may call what: every route of the app x every kind of caller x own and foreign project.

``RULES`` is the hand-written table: one rule per route (method, path template). The routes are
read from the app itself, so a new route without a rule fails
:func:`test_every_route_has_a_rule`. Each route then runs against a world of two projects
(``own`` and ``foreign``, each with items, a round, a task, an answer, a dataset version,
guidelines, a webhook with a delivery and a member to act on) on SQLite, as each caller:

=================  ==========================================================================
anonymous          no token                                        -> 401 "missing token"
revoked            a member of ``own`` whose token was revoked     -> 401 "revoked"
expired            a member of ``own`` whose token expired         -> 401 "expired"
member             annotator member of ``own``
non_member         annotator of no project
proj_reviewer      reviewer of ``own``
proj_owner         owner of ``own``
other_owner        owner of ``foreign`` only
global_reviewer    global reviewer, annotator member of ``own`` (a reviewer there)
admin              global admin
=================  ==========================================================================

Expected per cell, from the rule and the caller's role on the route's project: a project the
caller is no member of is a 404; a member without the role a 403 naming it; allowed is a 2xx or
a 4xx about the request itself (400/409/413/422: the world's task is not leased to the caller,
the body is not an upload ...), never 401/403/404. Denied requests must change nothing, so
they share one copy of the world per route; each allowed request gets a fresh copy.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.service.deps import create_user
from labelwise.settings import Settings
from labelwise.storage.base import utcnow
from labelwise.storage.sql import SqlStore
from labelwise.testing.store import postgres_schema_store, sqlite_store

ADMIN = "admin-secret-token"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# --------------------------------------------------------------------------- the rules

PUBLIC = "public"  # no token needed
USER = "user"  # any valid token
ADMIN_ONLY = "admin"  # the global admin role
MEMBER, REVIEWER, OWNER = "annotator", "reviewer", "owner"  # the role on the route's project
TOKEN = "token"  # self, admin, or owner of a project the token's holder is a member of

RULES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/projects/new"): PUBLIC,
    ("GET", "/projects/{project_id}/label"): PUBLIC,  # page shells: the API decides access
    ("GET", "/projects/{project_id}/review"): PUBLIC,
    ("GET", "/projects/{project_id}/dashboard"): PUBLIC,
    ("MOUNT", "/static"): PUBLIC,
    ("GET", "/api/me"): USER,
    ("GET", "/api/projects"): USER,
    ("GET", "/api/strategies"): USER,
    ("POST", "/api/projects"): ADMIN_ONLY,
    ("POST", "/api/annotators"): ADMIN_ONLY,
    ("GET", "/api/annotators"): ADMIN_ONLY,
    ("GET", "/api/jobs"): ADMIN_ONLY,
    ("GET", "/api/jobs/{job_id}"): "job",  # the world's job is own's: its owners see it
    ("POST", "/api/annotators/{annotator_id}/token"): TOKEN,
    ("DELETE", "/api/annotators/{annotator_id}/token"): TOKEN,
    # read and label: any member
    ("GET", "/api/projects/{project_id}"): MEMBER,
    ("GET", "/api/projects/{project_id}/guidelines"): MEMBER,
    ("GET", "/api/projects/{project_id}/guidelines/versions"): MEMBER,
    ("GET", "/api/projects/{project_id}/guidelines/versions/{version}"): MEMBER,
    ("GET", "/api/projects/{project_id}/items"): MEMBER,
    ("GET", "/api/projects/{project_id}/rounds"): MEMBER,
    ("POST", "/api/projects/{project_id}/tasks/next"): MEMBER,
    ("GET", "/api/tasks/{task_id}"): MEMBER,
    ("POST", "/api/tasks/{task_id}/annotations"): MEMBER,
    ("POST", "/api/tasks/{task_id}/skip"): MEMBER,
    ("POST", "/api/tasks/{task_id}/release"): MEMBER,
    ("POST", "/api/annotations/{annotation_id}/undo"): MEMBER,
    ("POST", "/api/annotations/{annotation_id}/edit"): MEMBER,
    ("GET", "/api/projects/{project_id}/history"): MEMBER,
    ("POST", "/api/tasks/{task_id}/flags"): MEMBER,
    ("GET", "/api/projects/{project_id}/dataset-versions"): MEMBER,
    ("GET", "/api/dataset-versions/{dataset_version_id}/export"): MEMBER,
    ("GET", "/api/projects/{project_id}/export"): MEMBER,
    ("GET", "/api/projects/{project_id}/labelstudio-config"): MEMBER,
    ("GET", "/labelstudio/{project_id}/health"): MEMBER,
    ("POST", "/labelstudio/{project_id}/setup"): MEMBER,
    ("POST", "/labelstudio/{project_id}/predict"): MEMBER,
    ("GET", "/api/projects/{project_id}/progress"): MEMBER,
    ("GET", "/api/projects/{project_id}/model-versions"): MEMBER,
    ("GET", "/api/projects/{project_id}/model"): MEMBER,
    ("GET", "/media/items/{item_id}"): MEMBER,
    ("GET", "/api/items/{item_id}/keywords"): MEMBER,
    # review
    ("GET", "/api/projects/{project_id}/review"): REVIEWER,
    ("GET", "/api/projects/{project_id}/review/next"): REVIEWER,
    ("POST", "/api/items/{item_id}/review"): REVIEWER,
    ("GET", "/api/projects/{project_id}/annotators/quality"): REVIEWER,
    # run the project
    ("PATCH", "/api/projects/{project_id}"): OWNER,
    ("PUT", "/api/projects/{project_id}/guidelines"): OWNER,
    ("POST", "/api/projects/{project_id}/items"): OWNER,
    ("POST", "/api/projects/{project_id}/items:import"): OWNER,
    ("POST", "/api/projects/{project_id}/images:upload"): OWNER,
    ("POST", "/api/projects/{project_id}/rounds"): OWNER,
    ("GET", "/api/projects/{project_id}/flags"): OWNER,
    ("POST", "/api/projects/{project_id}/consensus/resolve"): OWNER,
    ("POST", "/api/items/{item_id}/gold"): OWNER,
    ("POST", "/api/projects/{project_id}/review"): OWNER,
    ("POST", "/api/projects/{project_id}/annotators/{annotator_id}/review-pending"): OWNER,
    ("POST", "/api/projects/{project_id}/members"): OWNER,
    ("GET", "/api/projects/{project_id}/members"): OWNER,
    ("PATCH", "/api/projects/{project_id}/members/{annotator_id}"): OWNER,
    ("DELETE", "/api/projects/{project_id}/members/{annotator_id}"): OWNER,
    ("POST", "/api/projects/{project_id}/dataset-versions"): OWNER,
    ("POST", "/labelstudio/{project_id}/webhook"): OWNER,
    ("PUT", "/api/projects/{project_id}/model"): OWNER,
    ("POST", "/api/projects/{project_id}/model/predictions"): OWNER,
    ("POST", "/api/projects/{project_id}/model/embeddings"): OWNER,
    ("POST", "/api/projects/{project_id}/webhooks"): OWNER,
    ("GET", "/api/projects/{project_id}/webhooks"): OWNER,
    ("GET", "/api/webhooks/{webhook_id:int}"): OWNER,
    ("PATCH", "/api/webhooks/{webhook_id:int}"): OWNER,
    ("DELETE", "/api/webhooks/{webhook_id:int}"): OWNER,
    ("POST", "/api/webhooks/{webhook_id}:rotate-secret"): OWNER,
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): OWNER,
    ("POST", "/api/deliveries/{delivery_id}:redeliver"): OWNER,
}

#: request bodies that pass validation, so an allowed caller reaches the route's work and a
#: denied one is refused for who they are, not for what they sent
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/api/projects"): {"name": "new project"},
    ("POST", "/api/annotators"): {"name": "newcomer"},
    ("PATCH", "/api/projects/{project_id}"): {"batch_size": 5},
    ("PUT", "/api/projects/{project_id}/guidelines"): {"body": "# v2"},
    ("POST", "/api/projects/{project_id}/items"): {
        "items": [{"external_id": "new", "payload": {"text": "fresh"}}]
    },
    ("POST", "/api/tasks/{task_id}/annotations"): {"label": "pos"},
    ("POST", "/api/annotations/{annotation_id}/edit"): {"label": "neg"},
    ("POST", "/api/tasks/{task_id}/flags"): {"reason": "cut off"},
    ("POST", "/api/items/{item_id}/gold"): {"label": "pos"},
    ("POST", "/api/items/{item_id}/review"): {"label": "pos"},
    ("POST", "/api/projects/{project_id}/review"): {"item_ids": ["{item_id}"]},
    ("POST", "/api/projects/{project_id}/members"): {"annotator_id": "{annotator_id}"},
    ("PATCH", "/api/projects/{project_id}/members/{annotator_id}"): {"role": "reviewer"},
    ("PUT", "/api/projects/{project_id}/model"): {"source": "builtin"},
    ("POST", "/api/projects/{project_id}/webhooks"): {
        "url": "http://127.0.0.1:9/hook",
        "events": ["batch.completed"],
    },
    ("PATCH", "/api/webhooks/{webhook_id:int}"): {"active": False},
    ("POST", "/labelstudio/{project_id}/setup"): {},
    ("POST", "/labelstudio/{project_id}/predict"): {"tasks": []},
    ("POST", "/labelstudio/{project_id}/webhook"): {"action": "PROJECT_UPDATED"},
}

CALLERS = (
    "anonymous", "revoked", "expired", "member", "non_member", "proj_reviewer", "proj_owner",
    "other_owner", "global_reviewer", "admin",
)  # fmt: skip
_RANK = {MEMBER: 0, REVIEWER: 1, OWNER: 2}


def _app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, nested routers included."""

    def walk(routes):
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes)
            elif getattr(r, "methods", None):
                for m in r.methods - {"HEAD"}:
                    yield m, r.path
            else:
                yield "MOUNT", r.path

    return set(walk(app.routes))


# --------------------------------------------------------------------------- the world


def _settings(data_dir: Path) -> Settings:
    return Settings(worker="external", data_dir=data_dir, lease_seconds=60)


def _ok(r, what: str) -> dict:
    assert r.status_code < 300, (what, r.status_code, r.text)
    return r.json() if r.content else {}


def _build_world(store, data_dir: Path) -> dict:
    """Two projects and one user per kind of caller; returns ids and tokens."""
    world: dict = {"tokens": {}, "projects": {}}
    with TestClient(create_app(_settings(data_dir), store, admin_token=ADMIN)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        for side in ("own", "foreign"):
            new = {"name": side, "classes": ["neg", "pos"], "batch_size": 3}
            pid = _ok(c.post("/api/projects", json=new), "project")["id"]
            items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(6)]
            # an item whose "image" is not an image file: /media answers 422, not a 404
            items.append({"external_id": "pic", "payload": {"text": "t", "image": "note.txt"}})
            _ok(c.post(f"/api/projects/{pid}/items", json={"items": items}), "items")
            _ok(c.put(f"/api/projects/{pid}/guidelines", json={"body": "# v1"}), "guidelines")
            hook = _ok(
                c.post(
                    f"/api/projects/{pid}/webhooks",
                    json={"url": "http://127.0.0.1:9/hook", "events": ["batch.completed"]},
                ),
                "webhook",
            )["id"]
            _ok(c.post(f"/api/projects/{pid}/rounds"), "round")
            claimed = _ok(c.post(f"/api/projects/{pid}/tasks/next"), "claim")["task"]["id"]
            ann = _ok(c.post(f"/api/tasks/{claimed}/annotations", json={"label": "pos"}), "ann")
            queued = next(t for t in store.list_tasks(pid) if t.status == "queued").id
            dv = _ok(c.post(f"/api/projects/{pid}/dataset-versions"), "dataset version")["id"]
            (delivery,) = store.create_deliveries(pid, "batch.completed", f"e-{side}", {"a": 1})
            pic = store.find_item(pid, "pic").id
            new = {"name": f"target-{side}", "projects": [pid]}
            target = _ok(c.post("/api/annotators", json=new), "target")
            world["projects"][side] = {
                "project_id": pid, "task_id": queued, "annotation_id": ann["id"],
                "item_id": pic, "dataset_version_id": dv, "webhook_id": hook,
                "webhook_id:int": hook, "delivery_id": delivery, "version": 1,
                "annotator_id": target["id"],
            }  # fmt: skip
        own = world["projects"]["own"]["project_id"]
        foreign = world["projects"]["foreign"]["project_id"]
        members = {  # name: (global role, {project: role})
            "revoked": ("annotator", {own: "annotator"}),
            "member": ("annotator", {own: "annotator"}),
            "non_member": ("annotator", {}),
            "proj_reviewer": ("annotator", {own: "reviewer"}),
            "proj_owner": ("annotator", {own: "owner"}),
            "other_owner": ("annotator", {foreign: "owner"}),
            "global_reviewer": ("reviewer", {own: "annotator"}),
        }
        for name, (role, roles) in members.items():
            u = _ok(c.post("/api/annotators", json={"name": name, "role": role}), name)
            for p, r in roles.items():
                body = {"annotator_id": u["id"], "role": r}
                _ok(c.post(f"/api/projects/{p}/members", json=body), "member")
            world["tokens"][name] = u["token"]
            if name == "revoked":
                _ok(c.delete(f"/api/annotators/{u['id']}/token"), "revoke")
        _, world["tokens"]["expired"] = create_user(
            store, "expired", token_expires=utcnow() - timedelta(minutes=1)
        )
        store.add_member(own, store.find_annotator("expired").id)
        world["tokens"]["admin"] = ADMIN
        world["job_id"] = store.create_job("retrain", own)
        world["roles"] = {name: (role, roles) for name, (role, roles) in members.items()}
        world["roles"]["admin"] = ("admin", {})
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix")
    template = base / "template.db"
    with sqlite_store(template):
        pass
    data_dir = base / "data"
    store = SqlStore(f"sqlite:///{template}")
    try:
        w = _build_world(store, data_dir)
    finally:
        store.close()
    w["template"], w["data_dir"] = template, data_dir
    return w


# --------------------------------------------------------------------------- expectations


def _role_on(world: dict, caller: str, side: str) -> str | None:
    """The caller's effective role on a project (as deps.project_role decides it)."""
    role, roles = world["roles"][caller]
    if role == "admin":
        return OWNER
    pid = world["projects"][side]["project_id"]
    got = roles.get(pid)
    if got is not None and role == "reviewer" and _RANK[got] < _RANK[REVIEWER]:
        return REVIEWER
    return got


def _expected(world: dict, rule: str, caller: str, side: str) -> str:
    """``"ok"``, or the status code the cell must answer (as a string)."""
    if rule == PUBLIC:
        return "ok"
    if caller in ("anonymous", "revoked", "expired"):
        return "401"
    if rule == USER:
        return "ok"
    if rule == ADMIN_ONLY:
        return "ok" if caller == "admin" else "403"
    if rule == "job":  # a job of ``own``: the admin and own's owners, a 404 for the rest
        return "ok" if _role_on(world, caller, "own") == OWNER else "404"
    if rule == TOKEN:  # the target is a plain member of the side's project
        if caller == "admin":
            return "ok"
        owns = [s for s in ("own", "foreign") if _role_on(world, caller, s) == OWNER]
        if not owns:
            return "403"
        return "ok" if side in owns else "404"
    have = _role_on(world, caller, side)
    if have is None:
        return "404"
    return "ok" if _RANK[have] >= _RANK[rule] else "403"


def _fill(template: str, ids: dict) -> str:
    out = template
    for key, value in ids.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def _body(method: str, path: str, ids: dict):
    body = BODIES.get((method, path))
    if body is None:
        return None
    filled = {}
    for k, v in body.items():
        if isinstance(v, str) and v.startswith("{"):
            v = int(_fill(v, ids))
        elif isinstance(v, list):
            v = [int(_fill(x, ids)) if isinstance(x, str) and x.startswith("{") else x for x in v]
        filled[k] = v
    return filled


def _client(world: dict, path: Path) -> TestClient:
    store = SqlStore(f"sqlite:///{path}")
    client = TestClient(create_app(_settings(world["data_dir"]), store))
    client.store = store  # closed by the caller
    return client


def _copy(world: dict, tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"cell{n}.db"
    shutil.copy(world["template"], path)
    return path


def _check(r, expected: str, caller: str, rule: str) -> str | None:
    """What is wrong with the answer, or ``None``."""
    code = r.status_code
    if expected == "ok":
        if code in (401, 403, 404) or code >= 500:
            return f"{code} {r.text[:160]}"
        return None
    if str(code) != expected:
        return f"{code} (expected {expected}) {r.text[:160]}"
    detail = r.json().get("detail", "")
    if expected == "401":
        word = {"anonymous": "missing token", "revoked": "revoked", "expired": "expired"}[caller]
        if word not in detail:
            return f"401 without {word!r}: {detail}"
    if expected == "403" and rule in (MEMBER, REVIEWER, OWNER) and f"the {rule} role" not in detail:
        return f"403 not naming the {rule} role: {detail}"
    if expected == "404" and "not found" not in detail:
        return f"404 not worded 'not found': {detail}"
    return None


# --------------------------------------------------------------------------- tests


def test_every_route_has_a_rule(world, tmp_path):
    client = _client(world, _copy(world, tmp_path, 0))
    try:
        served = _app_routes(client.app)
    finally:
        client.store.close()
    assert served - set(RULES) == set(), "routes without a rule in RULES"
    assert set(RULES) - served == set(), "rules for routes the app does not serve"


@pytest.mark.parametrize(("method", "path"), sorted(RULES), ids=lambda x: x)
def test_access_matrix(world, tmp_path, method, path):
    if method == "MOUNT":
        method, path = "GET", "/static/app.js"
    rule = RULES.get((method, path), PUBLIC)
    denied_client = _client(world, _copy(world, tmp_path, 0))
    wrong: list[str] = []
    n = 0
    try:
        for side in ("own", "foreign"):
            ids = world["projects"][side] | {"job_id": world["job_id"]}
            url = _fill(path, ids)
            body = _body(method, path, ids)
            for caller in CALLERS:
                expected = _expected(world, rule, caller, side)
                token = world["tokens"].get(caller)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if expected == "ok" and method != "GET":
                    n += 1
                    client = _client(world, _copy(world, tmp_path, n))
                else:
                    client = denied_client
                try:
                    r = client.request(method, url, json=body, headers=headers)
                finally:
                    if client is not denied_client:
                        client.store.close()
                problem = _check(r, expected, caller, rule)
                if problem:
                    wrong.append(f"{caller:>16} on {side:<7}: {problem}")
    finally:
        denied_client.store.close()
    assert not wrong, f"{method} {path} ({rule}):\n" + "\n".join(wrong)


def test_denied_requests_change_nothing(world, tmp_path):
    """The matrix shares one copy of the world among denied callers; prove that sharing safe
    for the writes: after every denied write, the database is what it was."""
    path = _copy(world, tmp_path, 0)
    client = _client(world, path)
    before = path.read_bytes()
    try:
        for (method, template), rule in sorted(RULES.items()):
            if method in ("GET", "MOUNT") or rule in (PUBLIC, USER):
                continue
            ids = world["projects"]["foreign"] | {"job_id": world["job_id"]}
            headers = {"Authorization": f"Bearer {world['tokens']['member']}"}
            r = client.request(
                method, _fill(template, ids), json=_body(method, template, ids), headers=headers
            )
            assert r.status_code in (403, 404), (method, template, r.status_code, r.text)
    finally:
        client.store.close()
    assert path.read_bytes() == before


@pytest.mark.postgres
def test_access_matrix_on_postgresql(tmp_path):
    """One pass on PostgreSQL over the cells that change nothing (every denial, and allowed
    reads): the same world, the same expectations."""
    with postgres_schema_store(POSTGRES_URL) as store:
        w = _build_world(store, tmp_path / "data")
        client = TestClient(create_app(_settings(tmp_path / "data"), store))
        wrong: list[str] = []
        for (method, template), rule in sorted(RULES.items()):
            if method == "MOUNT":
                continue
            for side in ("own", "foreign"):
                ids = w["projects"][side] | {"job_id": w["job_id"]}
                for caller in CALLERS:
                    expected = _expected(w, rule, caller, side)
                    if expected == "ok" and method != "GET":
                        continue  # a write: the SQLite matrix gives it a fresh world
                    token = w["tokens"].get(caller)
                    r = client.request(
                        method,
                        _fill(template, ids),
                        json=_body(method, template, ids),
                        headers={"Authorization": f"Bearer {token}"} if token else {},
                    )
                    problem = _check(r, expected, caller, rule)
                    if problem:
                        wrong.append(f"{method} {template} {caller} on {side}: {problem}")
    assert not wrong, "\n".join(wrong)
