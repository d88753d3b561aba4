"""labelwise -> Label Studio -> labelwise through both APIs, against a real Label Studio 1.23.2.

labelwise's project export (``GET /api/projects/{id}/export?format=labelstudio``: every item,
its labels with their annotators, the latest model's predictions) is imported into a Label
Studio project; an annotator adds an answer there; Label Studio's snapshot export (predictions
and annotators written whole) is imported into a new labelwise project, which must hold the
same labels, the same annotators and the same predictions, plus the answer given in Label Studio.
"""

from __future__ import annotations

import time

import httpx
from tests.labelstudio.conftest import CLASSES

from labelwise.labelstudio import ID_FIELD

ANN = "ann@example.org"


def _lw_annotate(labelwise, name: str, n: int) -> dict[str, str]:
    """``n`` answers in labelwise by a new annotator ``name``, through the API: the model's
    guess flipped for the first, agreed for the rest. Returns {external id: label}."""
    with labelwise.client() as admin:
        body = {"name": name, "projects": [labelwise.project_id]}
        token = admin.post("/api/annotators", json=body).raise_for_status().json()["token"]
    given: dict[str, str] = {}
    with labelwise.client(token) as c:
        for k in range(n):
            task = c.post(f"/api/projects/{labelwise.project_id}/tasks/next")
            assert task.status_code == 200, task.text
            task = task.json()
            label = CLASSES[k % 2]
            answer = {"label": label, "duration_s": 4.5}
            c.post(f"/api/tasks/{task['task']['id']}/annotations", json=answer).raise_for_status()
            given[task["item"]["external_id"]] = label
    return given


def _ls_snapshot(ls: httpx.Client, ls_pid: int) -> list[dict]:
    """Label Studio's JSON export with predictions and annotators written whole."""
    options = {"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": False}}
    body = {"title": "labelwise", "serialization_options": options}
    export = ls.post(f"/api/projects/{ls_pid}/exports/", json=body).raise_for_status().json()
    deadline = time.monotonic() + 60
    while export["status"] != "completed":
        assert export["status"] != "failed", export
        assert time.monotonic() < deadline, export
        time.sleep(0.3)
        export = ls.get(f"/api/projects/{ls_pid}/exports/{export['id']}").json()
    r = ls.get(
        f"/api/projects/{ls_pid}/exports/{export['id']}/download", params={"exportType": "JSON"}
    )
    return r.raise_for_status().json()


def _answers(item) -> set[tuple[str, str]]:
    """(annotator, label) of the Label Studio annotations an import kept on an item."""
    kept = item.metadata.get("labelstudio", {}).get("annotations", [])
    return {
        (a["completed_by"], "|".join(c for r in a["result"] for c in r["value"]["choices"]))
        for a in kept
    }


def test_labelwise_export_through_label_studio_and_back(ls, labelwise):
    given = _lw_annotate(labelwise, ANN, 3)
    pid = labelwise.project_id
    with labelwise.client() as c:
        exported = c.get(f"/api/projects/{pid}/export", params={"format": "labelstudio"})
        exported = exported.raise_for_status().json()
        config = c.get(f"/api/projects/{pid}/labelstudio-config").raise_for_status().text
    by_ext = {t["data"][ID_FIELD]: t for t in exported}
    assert {e for e in given} <= set(by_ext)
    assert all(t["predictions"] for t in exported)  # the latest model's, on every item

    # Label Studio: the annotator exists there too (same email), then the import
    ls.post(
        "/api/users/", json={"email": ANN, "username": "ann", "password": "ann-pass-12345"}
    ).raise_for_status()
    ls_pid = ls.post(
        "/api/projects", json={"title": "labelwise round trip", "label_config": config}
    )
    ls_pid = ls_pid.raise_for_status().json()["id"]
    imported = ls.post(f"/api/projects/{ls_pid}/import", json=exported).raise_for_status().json()
    assert imported["task_count"] == len(exported)
    assert imported["prediction_count"] == sum(len(t["predictions"]) for t in exported)

    # an answer given in Label Studio, on a task nobody answered yet
    tasks = ls.get("/api/tasks", params={"project": ls_pid, "page_size": 1000}).json()["tasks"]
    fresh = next(
        t for t in tasks if t["total_annotations"] == 0 and t["data"][ID_FIELD] not in given
    )  # fmt: skip
    result = [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}
    ]
    ls.post(f"/api/tasks/{fresh['id']}/annotations", json={"result": result}).raise_for_status()
    snapshot = _ls_snapshot(ls, ls_pid)
    assert len(snapshot) == len(exported)

    # back into a new labelwise project
    with labelwise.client() as c:
        body = {"name": "reviews back from Label Studio", "task_type": "binary", "classes": CLASSES}
        back = c.post("/api/projects", json=body).raise_for_status().json()["id"]
        r = c.post(
            f"/api/projects/{back}/items:import", params={"format": "labelstudio"}, json=snapshot
        )
        assert r.status_code in (200, 201), r.text
    store = labelwise.store()
    try:
        before = {it.external_id: it for it in store.list_items(pid)}
        after = {it.external_id: it for it in store.list_items(back)}
        assert set(after) == set(before)
        # labels: every labelwise label, plus the Label Studio answer
        for e, it in before.items():
            if e == fresh["data"][ID_FIELD]:
                assert it.label is None and after[e].label == "pos"
            else:
                assert after[e].label == it.label, e
        # annotators: labelwise's answers keep their annotator; Label Studio's is its user
        for e, label in given.items():
            assert (ANN, label) in _answers(after[e]), e
        assert ("admin@example.com", "pos") in _answers(after[fresh["data"][ID_FIELD]])
        members = {a.name for a in store.list_annotators(back)}
        assert {ANN, "admin@example.com"} <= members
        # predictions: the model version and the score of each, as labelwise exported them
        for e, t in by_ext.items():
            kept = after[e].metadata["labelstudio"]["predictions"]
            want = [(p["model_version"], p["score"], p["result"][0]["value"]["choices"])
                    for p in t["predictions"]]  # fmt: skip
            got = [(p["model_version"], p["score"], p["result"][0]["value"]["choices"])
                   for p in kept]  # fmt: skip
            assert got == want, e
    finally:
        store.close()
