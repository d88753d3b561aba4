"""labelwise as the ML backend of a real Label Studio 1.23.2 project.

Label Studio runs from ``.venv-ls`` (conftest ``label_studio``), labelwise under uvicorn over
SQLite (conftest ``labelwise``). Label Studio's own API connects labelwise as the project's
model, fetches predictions and sends annotation webhooks; the tests check what each side stored.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
from tests.labelstudio.conftest import ADMIN, N_ITEMS, N_LABELED, review_texts

from labelwise.labelstudio import ID_FIELD, label_config
from labelwise.service.labelstudio_backend import (
    LabelStudioBackendError,
    parse_label_config,
    score_items,
)
from labelwise.service.rounds import audit_mask

CONFIG = label_config(["neg", "pos"], "binary", "text")


def _basic(token: str, user: str = "labelstudio") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _ls_project(ls: httpx.Client, title: str, item_idx: range) -> tuple[int, dict[str, int]]:
    """A Label Studio project with labelwise's config and one task per review of ``item_idx``;
    returns (project id, {labelwise external id: Label Studio task id})."""
    pid = ls.post("/api/projects", json={"title": title, "label_config": CONFIG})
    pid = pid.raise_for_status().json()["id"]
    texts = review_texts(N_ITEMS)
    tasks = [{"data": {"text": texts[i][0], ID_FIELD: f"r{i:03d}"}} for i in item_idx]
    ls.post(f"/api/projects/{pid}/import", json=tasks).raise_for_status()
    got = ls.get("/api/tasks", params={"project": pid, "page_size": 1000}).raise_for_status()
    return pid, {t["data"][ID_FIELD]: t["id"] for t in got.json()["tasks"]}


def _connect(ls: httpx.Client, ls_pid: int, labelwise, *, token: str = ADMIN) -> dict:
    """Connect labelwise as the Label Studio project's model (Settings -> Model), with basic
    auth (the labelwise token as password) and interactive preannotations on."""
    body = {
        "url": f"{labelwise.url}/labelstudio/{labelwise.project_id}",
        "project": ls_pid,
        "title": "labelwise",
        "auth_method": "BASIC_AUTH",
        "basic_auth_user": "labelstudio",
        "basic_auth_pass": token,
        "is_interactive": True,
    }
    return ls.post("/api/ml/", json=body).raise_for_status().json()


def test_label_studio_server_answers(label_studio, ls):
    """The fixture's server is a real Label Studio 1.23.2 that knows the test user's token."""
    assert httpx.get(f"{label_studio.url}/health", timeout=10).json() == {"status": "UP"}
    version = ls.get("/api/version").raise_for_status().json()
    assert version["release"] == "1.23.2"
    me = ls.get("/api/current-user/whoami").raise_for_status().json()
    assert me["email"] == "admin@example.com"


def test_label_studio_stores_labelwise_predictions_with_scores(ls, labelwise):
    ls_pid, task_ids = _ls_project(ls, "predictions", range(N_LABELED, N_ITEMS))
    ml = _connect(ls, ls_pid, labelwise)
    assert ml["state"] == "CO", ml  # connected: /health and /setup answered
    store = labelwise.store()
    try:
        versions = store.list_model_versions(labelwise.project_id)
        assert ml["model_version"] == f"labelwise-{versions[-1].id}"
        r = ls.post(
            "/api/dm/actions",
            params={"id": "retrieve_tasks_predictions", "project": ls_pid},
            json={"selectedItems": {"all": True, "excluded": []}},
        )
        r.raise_for_status()
        preds = ls.get("/api/predictions", params={"project": ls_pid}).raise_for_status().json()
        by_task = {p["task"]: p for p in preds}
        assert set(by_task) == set(task_ids.values())
        ext = sorted(task_ids)
        items = [store.find_item(labelwise.project_id, e) for e in ext]
        proba, scores, version, _ = score_items(
            store, labelwise.project_id, [it.id for it in items], settings=labelwise.settings()
        )
        got = np.array([by_task[task_ids[e]]["score"] for e in ext])
        # Label Studio stores minus labelwise's active-learning score (entropy here)
        expected = (proba * np.log(proba)).sum(axis=1)
        np.testing.assert_allclose(got, -scores, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
        assert all(-np.log(2) - 1e-9 <= s <= 0 for s in got)
        for e, p in zip(ext, proba, strict=True):
            pred = by_task[task_ids[e]]
            assert pred["model_version"] == version
            assert pred["result"][0]["value"]["choices"] == [["neg", "pos"][int(p[1] > p[0])]]
            assert pred["result"][0]["from_name"] == "label"
        # labelwise queued its current round by the same scores: the queued, non-audit tasks'
        # priorities are minus what Label Studio stored
        queued = store.list_tasks(labelwise.project_id, status="queued")
        ext_of = {it.id: it.external_id for it in items}
        queued_ids = np.array([t.item_id for t in queued])
        audit = set(queued_ids[audit_mask(queued_ids, 0.1)].tolist())
        compared = 0
        for t in queued:
            e = ext_of.get(t.item_id)
            if e is not None and t.item_id not in audit:
                assert by_task[task_ids[e]]["score"] == pytest.approx(-t.priority, rel=1e-6)
                compared += 1
        assert compared >= 5
        # sorted ascending by score, Label Studio lists the most uncertain first
        most = ext[int(np.argmax(scores))]
        first = min(by_task.values(), key=lambda p: p["score"])
        assert first["task"] == task_ids[most]
    finally:
        store.close()


def test_annotation_in_label_studio_becomes_a_labelwise_label(ls, labelwise):
    ls_pid, task_ids = _ls_project(ls, "webhook", range(N_LABELED, N_ITEMS))
    _connect(ls, ls_pid, labelwise)
    # Label Studio created the webhook to <model url>/webhook; give it the labelwise token
    hooks = ls.get("/api/webhooks/", params={"project": ls_pid}).raise_for_status().json()
    url = f"/labelstudio/{labelwise.project_id}/webhook"
    (hook,) = [h for h in hooks if h["url"].endswith(url)]
    ls.patch(
        f"/api/webhooks/{hook['id']}/", json={"headers": {"Authorization": f"Bearer {ADMIN}"}}
    ).raise_for_status()
    store = labelwise.store()
    try:
        e = f"r{N_ITEMS - 1:03d}"
        item = store.find_item(labelwise.project_id, e)
        assert item.label is None
        jobs_before = len(store.list_jobs(labelwise.project_id))
        result = [
            {"from_name": "label", "to_name": "text", "type": "choices",
             "value": {"choices": ["neg"]}}
        ]  # fmt: skip
        ann = ls.post(f"/api/tasks/{task_ids[e]}/annotations", json={"result": result})
        ann.raise_for_status()
        me = ls.get("/api/current-user/whoami").json()["id"]
        after = store.get_item(item.id)
        assert after.label == "neg" and after.status == "labeled"
        (mine,) = store.list_annotations(labelwise.project_id, item_id=item.id)
        assert mine.label == "neg"
        assert store.get_annotator(mine.annotator_id).name == f"labelstudio-user-{me}"
        # a changed answer in Label Studio replaces the labelwise one
        result[0]["value"]["choices"] = ["pos"]
        ls.patch(f"/api/annotations/{ann.json()['id']}", json={"result": result})
        assert store.get_item(item.id).label == "pos"
        (mine,) = store.list_annotations(labelwise.project_id, item_id=item.id)
        assert mine.label == "pos"
        # START_TRAINING (Label Studio's "Start training") queues a labelwise retrain
        ml = ls.get("/api/ml/", params={"project": ls_pid}).json()[0]
        ls.post(f"/api/ml/{ml['id']}/train", json={}).raise_for_status()
        jobs = store.list_jobs(labelwise.project_id)[jobs_before:]
        assert "Label Studio: START_TRAINING" in [j.payload.get("reason") for j in jobs]
    finally:
        store.close()


# --------------------------------------------------------------------------- the protocol itself


def test_protocol_routes_and_auth(labelwise):
    base = f"{labelwise.url}/labelstudio/{labelwise.project_id}"
    anon = httpx.get(f"{base}/health", timeout=30)
    assert anon.status_code == 401 and "token" in anon.json()["detail"]
    assert httpx.get(f"{base}/health", headers=_basic("wrong"), timeout=30).status_code == 401
    ok = httpx.get(f"{base}/health", headers=_basic(ADMIN), timeout=30).json()
    assert ok["status"] == "UP" and ok["model_class"] == "labelwise"
    with labelwise.client() as c:
        assert c.get("/labelstudio/999999/health").status_code == 404
        bad = c.post(f"/labelstudio/{labelwise.project_id}/setup", json={"schema": "<View/>"})
        assert bad.status_code == 422 and "<Choices>" in bad.json()["detail"]
        foreign = CONFIG.replace('value="pos"', 'value="maybe"')
        bad = c.post(f"/labelstudio/{labelwise.project_id}/setup", json={"schema": foreign})
        assert bad.status_code == 422 and "'maybe'" in bad.json()["detail"]
        setup = c.post(f"/labelstudio/{labelwise.project_id}/setup", json={"schema": CONFIG})
        assert setup.json()["model_version"].startswith("labelwise-")
        # a task labelwise has no item for gets an empty prediction, in its place
        tasks = [{"id": 1, "data": {"text": "new text"}}, {"id": 2, "data": {ID_FIELD: "r030"}}]
        res = c.post(f"/labelstudio/{labelwise.project_id}/predict", json={"tasks": tasks}).json()[
            "results"
        ]
        assert res[0]["result"] == [] and res[0]["score"] is None
        assert res[1]["result"][0]["type"] == "choices" and res[1]["score"] < 0
        assert c.post(f"/labelstudio/{labelwise.project_id}/predict", json={}).status_code == 422
        notjson = c.post(f"/labelstudio/{labelwise.project_id}/predict", content=b"{")
        assert notjson.status_code == 422 and "not JSON" in notjson.json()["detail"]
        hook = {"action": "ANNOTATION_CREATED", "annotation": {"result": []}, "task": {"data": {}}}
        bad = c.post(f"/labelstudio/{labelwise.project_id}/webhook", json=hook)
        assert bad.status_code == 422 and f"task.data.{ID_FIELD}" in bad.json()["detail"]
        hook = {
            "action": "ANNOTATION_CREATED",
            "task": {"data": {ID_FIELD: "r031"}},
            "annotation": {"completed_by": 7, "result": [
                {"type": "choices", "value": {"choices": ["maybe"]}}]},
        }  # fmt: skip
        bad = c.post(f"/labelstudio/{labelwise.project_id}/webhook", json=hook)
        assert bad.status_code == 422 and "maybe" in bad.json()["detail"]
        ignored = c.post(
            f"/labelstudio/{labelwise.project_id}/webhook",
            json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 3}]},
        ).json()
        assert ignored["status"] == "ignored"


def test_webhook_needs_an_admin_token(labelwise):
    from labelwise.service.deps import create_user

    store = labelwise.store()
    try:
        aid, token = create_user(store, "member-of-reviews")
        store.add_member(labelwise.project_id, aid)
    finally:
        store.close()
    base = f"{labelwise.url}/labelstudio/{labelwise.project_id}"
    r = httpx.post(f"{base}/webhook", json={"action": "START_TRAINING"}, headers=_basic(token))
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    # a member may still connect labelwise for predictions
    assert httpx.get(f"{base}/health", headers=_basic(token), timeout=30).status_code == 200


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("", "expected the labeling config"),
        ("<View><Text name='t' value='$t'/>", "not valid XML"),
        ("<View><Choices name='c'/></View>", "name and toName"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><View/>', "DTDs"),
    ],
)
def test_parse_label_config_errors(config, error):
    with pytest.raises(LabelStudioBackendError, match=error):
        parse_label_config(config)


def test_parse_label_config_reads_choices():
    c = parse_label_config(
        '<View><Text name="review" value="$text"/>'
        '<Choices name="sentiment" toName="review" choice="multiple">'
        '<Choice value="neg"/><Choice value="pos"/></Choices></View>'
    )
    assert (c.from_name, c.to_name, c.multiple, c.choices) == (
        "sentiment", "review", True, ("neg", "pos"),
    )  # fmt: skip


def test_missing_label_studio_venv_fails_and_says_make_test(monkeypatch, tmp_path):
    """Without .venv-ls the Label Studio fixture fails (never skips) and says what installs it."""
    from tests.labelstudio import ls_server
    from tests.labelstudio.conftest import require_label_studio

    monkeypatch.setattr(ls_server, "LS_BIN", tmp_path / "no-venv" / "bin" / "label-studio")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_label_studio()
    assert "run `make test`, which installs Label Studio 1.23.2 into .venv-ls" in str(failed.value)
