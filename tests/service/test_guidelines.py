"""Guidelines over HTTP: versioned Markdown, rendered safely, written by admins, read by members;
annotations record the version they were made under; hard cases are marked on claimed tasks."""

from __future__ import annotations

import pytest

from labelwise.service.routes.guidelines import render_markdown
from labelwise.service.routes.tasks import hard_case_threshold

from .conftest import auth as _auth
from .conftest import detail as _detail


def _setup(client, **kw) -> tuple[int, str]:
    r = client.post(
        "/api/projects", json={"name": "reviews", "classes": ["neg", "pos"], "batch_size": 4, **kw}
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    items = [{"external_id": f"t{i}", "payload": {"text": f"item {i}"}} for i in range(6)]
    assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    r = client.post("/api/annotators", json={"name": "ana", "projects": [pid]})
    return pid, r.json()["token"]


GUIDE = {
    "body": "# Sentiment\n\nLabel the **whole** review.\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    "classes": {
        "pos": {"definition": "Praise for the product", "examples": ["Loved it", "5 stars"]},
        "neg": {"definition": "A complaint"},
    },
    "hard_cases": "Sarcasm counts as *neg*.",
}


def test_markdown_is_rendered_and_raw_html_is_escaped():
    assert render_markdown("*a* <b>") == "<p><em>a</em> &lt;b&gt;</p>\n"
    html = render_markdown('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    link = render_markdown("[click](javascript:alert(1)) [ok](https://example.org)")
    assert 'href="javascript' not in link and 'href="https://example.org"' in link
    assert render_markdown("  \n") == ""
    assert render_markdown("# a\n#### b") == "<h3>a</h3>\n<h6>b</h6>\n"


def test_no_guidelines_yet_is_an_empty_version(client):
    pid, ana = _setup(client)
    r = client.get(f"/api/projects/{pid}/guidelines", headers=_auth(ana))
    assert r.status_code == 200, r.text
    g = r.json()
    assert (g["version"], g["body"], g["body_html"], g["classes"]) == (None, "", "", {})
    assert client.get(f"/api/projects/{pid}/guidelines/versions").json() == []


def test_admin_writes_versions_members_read_them(client):
    pid, ana = _setup(client)
    r = client.put(f"/api/projects/{pid}/guidelines", json=GUIDE)
    assert r.status_code == 200, r.text
    v1 = r.json()
    assert (v1["version"], v1["project_id"]) == (1, pid)
    assert "<h3>Sentiment</h3>" in v1["body_html"]  # under the page's h1 and a section's h2
    assert "<strong>whole</strong>" in v1["body_html"]
    assert "<table>" in v1["body_html"]
    assert v1["hard_cases_html"] == "<p>Sarcasm counts as <em>neg</em>.</p>\n"
    assert v1["classes"]["pos"] == {
        "definition": "Praise for the product",
        "examples": ["Loved it", "5 stars"],
    }
    assert v1["classes"]["neg"] == {"definition": "A complaint", "examples": []}
    r = client.put(f"/api/projects/{pid}/guidelines", json={"body": "v2"})
    assert r.json()["version"] == 2
    got = client.get(f"/api/projects/{pid}/guidelines", headers=_auth(ana)).json()
    assert (got["version"], got["body"]) == (2, "v2")
    versions = client.get(f"/api/projects/{pid}/guidelines/versions", headers=_auth(ana)).json()
    assert [v["version"] for v in versions] == [1, 2]
    one = client.get(f"/api/projects/{pid}/guidelines/versions/1", headers=_auth(ana)).json()
    assert one["body"] == GUIDE["body"]
    r = client.get(f"/api/projects/{pid}/guidelines/versions/3")
    assert "not found" in _detail(r, 404)


def test_user_html_comes_back_escaped(client):
    pid, ana = _setup(client)
    evil = '<script>alert("x")</script> <img src=x onerror=alert(1)> [a](javascript:alert(1))'
    r = client.put(f"/api/projects/{pid}/guidelines", json={"body": evil, "hard_cases": evil})
    g = client.get(f"/api/projects/{pid}/guidelines", headers=_auth(ana)).json()
    for html in (g["body_html"], g["hard_cases_html"]):
        assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert r.json()["body"] == evil  # stored as written


def test_guidelines_access_and_bad_input(client):
    pid, ana = _setup(client)
    r = client.put(f"/api/projects/{pid}/guidelines", json=GUIDE, headers=_auth(ana))
    assert "admin role" in _detail(r, 403)
    outsider = client.post("/api/annotators", json={"name": "zoe"}).json()["token"]
    r = client.get(f"/api/projects/{pid}/guidelines", headers=_auth(outsider))
    assert _detail(r, 404) == f"project {pid} not found"
    r = client.put(
        f"/api/projects/{pid}/guidelines", json={"classes": {"meh": {"definition": "?"}}}
    )
    assert "not a class" in _detail(r, 422)
    assert _detail(client.put(f"/api/projects/{pid}/guidelines", json={"body": 3}), 422)
    r = client.put(f"/api/projects/{pid}/guidelines", json={"body": "x" * 100_001})
    assert _detail(r, 422)
    r = client.put(f"/api/projects/{pid}/guidelines", json={"nope": 1})
    assert "nope" in _detail(r, 422)
    assert _detail(client.put("/api/projects/999/guidelines", json={}), 404)
    assert client.get(f"/api/projects/{pid}/guidelines/versions").json() == []


def test_annotations_record_the_guidelines_version(client):
    pid, ana = _setup(client)
    assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
    claim = f"/api/projects/{pid}/tasks/next"

    def answer() -> dict:
        task = client.post(claim, headers=_auth(ana)).json()["task"]
        r = client.post(
            f"/api/tasks/{task['id']}/annotations", json={"label": "pos"}, headers=_auth(ana)
        )
        assert r.status_code == 201, r.text
        return r.json()

    assert answer()["guideline_version"] is None
    client.put(f"/api/projects/{pid}/guidelines", json=GUIDE)
    assert answer()["guideline_version"] == 1
    client.put(f"/api/projects/{pid}/guidelines", json={"body": "v2"})
    assert answer()["guideline_version"] == 2


@pytest.mark.parametrize(
    ("task_type", "classes", "expected"),
    [
        ("binary", ["a", "b"], 0.75),
        ("multiclass", ["a", "b", "c"], 2 / 3),
        ("multiclass", [str(i) for i in range(10)], 0.55),
        ("multilabel", ["a", "b", "c"], 0.75),
    ],
)
def test_hard_case_threshold_is_midway_between_chance_and_certainty(task_type, classes, expected):
    from labelwise.storage import InMemoryStore

    s = InMemoryStore()
    project = s.get_project(s.create_project("p", task_type, classes))
    assert hard_case_threshold(project) == pytest.approx(expected)


def test_claimed_tasks_say_hard_case_and_batch_position(client, store):
    pid, ana = _setup(client)
    ids = store.list_unlabeled_item_ids(pid)[:3]
    store.create_model_version(pid, metrics={"accuracy": 0.7})
    rid = store.create_round(pid, "entropy")
    # two classes: hard below 0.75; None (queued while cold) is never a hard case
    store.create_tasks(
        rid, ids, priorities=[3.0, 2.0, 1.0], routing_tags=["pos", "neg", "pos"],
        confidences=[0.55, 0.9, None],
    )  # fmt: skip
    claim = f"/api/projects/{pid}/tasks/next"
    seen = []
    for _ in range(3):
        c = client.post(claim, headers=_auth(ana)).json()
        seen.append((c["hard_case"], c["batch"]))
        r = client.post(
            f"/api/tasks/{c['task']['id']}/annotations", json={"label": "pos"}, headers=_auth(ana)
        )
        assert r.status_code == 201
    number = store.get_round(rid).number
    assert seen == [
        (True, {"round_number": number, "position": 1, "total": 3, "finished": 0}),
        (False, {"round_number": number, "position": 2, "total": 3, "finished": 1}),
        (False, {"round_number": number, "position": 3, "total": 3, "finished": 2}),
    ]
