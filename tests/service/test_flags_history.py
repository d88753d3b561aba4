"""Flags on items, an annotator's recent history and editing an earlier answer, over HTTP."""

from __future__ import annotations

from .conftest import auth as _auth
from .conftest import detail as _detail


def _queued(client) -> tuple[int, str, str]:
    r = client.post("/api/projects", json={"name": "p", "classes": ["neg", "pos"], "batch_size": 4})
    pid = r.json()["id"]
    items = [{"external_id": f"t{i}", "payload": {"text": f"item {i}"}} for i in range(6)]
    assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
    ana = client.post("/api/annotators", json={"name": "ana", "projects": [pid]}).json()["token"]
    bob = client.post("/api/annotators", json={"name": "bob", "projects": [pid]}).json()["token"]
    return pid, ana, bob


def _answer(client, pid, token, label) -> dict:
    task = client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(token)).json()["task"]
    r = client.post(
        f"/api/tasks/{task['id']}/annotations", json={"label": label}, headers=_auth(token)
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_flag_an_item_and_the_admin_lists_flags(client):
    pid, ana, _ = _queued(client)
    claimed = client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(ana)).json()
    tid = claimed["task"]["id"]
    r = client.post(
        f"/api/tasks/{tid}/flags", json={"reason": "The text is cut off"}, headers=_auth(ana)
    )
    assert r.status_code == 201, r.text
    flag = r.json()
    assert (flag["task_id"], flag["item_id"], flag["reason"]) == (
        tid,
        claimed["item"]["id"],
        "The text is cut off",
    )
    # the task is still the annotator's to answer or skip
    assert client.get(f"/api/tasks/{tid}", headers=_auth(ana)).json()["status"] == "leased"
    listed = client.get(f"/api/projects/{pid}/flags").json()
    assert [f["id"] for f in listed] == [flag["id"]]
    assert "admin role" in _detail(
        client.get(f"/api/projects/{pid}/flags", headers=_auth(ana)), 403
    )


def test_flag_bad_input_and_access(client):
    pid, ana, _ = _queued(client)
    tid = client.post(f"/api/projects/{pid}/tasks/next", headers=_auth(ana)).json()["task"]["id"]
    assert "reason" in _detail(client.post(f"/api/tasks/{tid}/flags", json={"reason": "  "}), 422)
    assert _detail(client.post(f"/api/tasks/{tid}/flags", json={}), 422)
    assert _detail(client.post(f"/api/tasks/{tid}/flags", json={"reason": "x" * 2001}), 422)
    outsider = client.post("/api/annotators", json={"name": "zoe"}).json()["token"]
    r = client.post(f"/api/tasks/{tid}/flags", json={"reason": "x"}, headers=_auth(outsider))
    assert _detail(r, 404) == f"task {tid} not found"  # a foreign task reads like an unknown one
    assert _detail(client.post("/api/tasks/999/flags", json={"reason": "x"}), 404)
    assert _detail(client.get("/api/projects/999/flags"), 404)
    assert client.get(f"/api/projects/{pid}/flags").json() == []


def test_history_lists_recent_answers_newest_first(client):
    pid, ana, bob = _queued(client)
    first = _answer(client, pid, ana, "pos")
    second = _answer(client, pid, ana, "neg")
    _answer(client, pid, bob, "pos")  # someone else's
    r = client.get(f"/api/projects/{pid}/history", headers=_auth(ana))
    assert r.status_code == 200, r.text
    got = r.json()
    assert [(e["annotation"]["id"], e["editable"]) for e in got] == [
        (second["id"], True),
        (first["id"], True),
    ]
    assert got[0]["item"]["id"] == second["item_id"]
    one = client.get(f"/api/projects/{pid}/history", params={"limit": 1}, headers=_auth(ana))
    assert [e["annotation"]["id"] for e in one.json()] == [second["id"]]
    assert _detail(client.get(f"/api/projects/{pid}/history", params={"limit": 0}), 422)


def test_edit_an_earlier_answer_is_a_new_answer(client, store):
    pid, ana, bob = _queued(client)
    first = _answer(client, pid, ana, "pos")
    _answer(client, pid, ana, "neg")
    edit = f"/api/annotations/{first['id']}/edit"
    assert "another annotator" in _detail(
        client.post(edit, json={"label": "neg"}, headers=_auth(bob)), 409
    )
    assert "['neg', 'pos']" in _detail(
        client.post(edit, json={"label": "meh"}, headers=_auth(ana)), 422
    )
    r = client.post(edit, json={"label": "neg", "duration_s": 1.0}, headers=_auth(ana))
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["id"] != first["id"] and (new["item_id"], new["label"]) == (first["item_id"], "neg")
    assert store.get_item(first["item_id"]).label == "neg"
    assert _detail(client.post(edit, json={"label": "pos"}, headers=_auth(ana)), 404)
    history = client.get(f"/api/projects/{pid}/history", headers=_auth(ana)).json()
    assert history[0]["annotation"]["id"] == new["id"]  # the edit is the newest answer
    # once a retrain closed the round, the answer is history
    store.close_round(store.get_task(first["task_id"]).round_id)
    history = client.get(f"/api/projects/{pid}/history", headers=_auth(ana)).json()
    assert {e["editable"] for e in history} == {False}
    r = client.post(f"/api/annotations/{new['id']}/edit", json={"label": "pos"}, headers=_auth(ana))
    assert "closed" in _detail(r, 409)
