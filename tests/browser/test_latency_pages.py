"""A closed labeling tab gives its task back at once, and the dashboard shows strategy health
(issue 13), in real Chromium.

Annotator A opens the labeling page, which claims a task; A closes the tab. The page's
``pagehide`` handler releases the lease (``POST /api/tasks/{id}/release``, ``keepalive``), so
annotator B is served that same task right away instead of after the 5-minute lease expiry.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_closed_tab_releases_its_task_at_once(server, new_page, reviews, helpers):
    pool, val, _ = reviews
    with server.client() as admin:
        body = {"name": "closed-tab", "task_type": "binary", "classes": ["great", "other"],
                "batch_size": 5, "cold_start_strategy": "random"}  # fmt: skip
        pid = admin.post("/api/projects", json=body).raise_for_status().json()["id"]
        items = {"items": pool[:10] + val[:20]}
        admin.post(f"/api/projects/{pid}/items", json=items).raise_for_status()
        admin.post(f"/api/projects/{pid}/rounds").raise_for_status()
        a, b = (
            admin.post("/api/annotators", json={"name": n, "projects": [pid]}).json()["token"]
            for n in ("tab-a", "tab-b")
        )

    page, console = new_page()
    helpers.login(page, server, a, f"/projects/{pid}/label")
    expect(page.locator("#task")).to_be_visible()
    saved = page.evaluate(f"sessionStorage.getItem('labelwise.label.{pid}')")
    held = json.loads(saved)["current"]["task"]
    assert held["status"] == "leased"
    console.assert_clean()

    page.close(run_before_unload=True)

    def queued():
        t = admin.get(f"/api/tasks/{held['id']}").json()
        return t if t["status"] == "queued" else None

    with server.client() as admin:
        # well inside the 300 s lease: without the page's release this times out
        task = helpers.wait_for(queued, timeout=20.0, what="the closed tab's task in the queue")
    assert task["lease_owner"] is None
    with server.client(b) as c:
        claimed = c.post(f"/api/projects/{pid}/tasks/next").json()["task"]
    # the same task (the highest in the queue), to B, long before A's lease would have expired
    assert claimed["id"] == held["id"] and claimed["status"] == "leased"


def _label_round(server, admin, token, pid, truth, helpers) -> None:
    """Label every queued task through the API, then wait for the retrain's model version."""
    n_versions = len(admin.get(f"/api/projects/{pid}/model-versions").json())
    with server.client(token) as ann:
        while (r := ann.post(f"/api/projects/{pid}/tasks/next")).status_code == 200:
            claimed = r.json()
            label = truth[claimed["item"]["external_id"]]
            r = ann.post(f"/api/tasks/{claimed['task']['id']}/annotations", json={"label": label})
            assert r.status_code == 201, r.text
    helpers.wait_for(
        lambda: len(admin.get(f"/api/projects/{pid}/model-versions").json()) > n_versions or None,
        what="the retrain",
    )


def test_dashboard_shows_strategy_health_per_round(server, new_page, reviews, helpers):
    pool, val, truth = reviews
    with server.client() as admin:
        body = {"name": "health", "task_type": "binary", "classes": ["great", "other"],
                "batch_size": 10, "strategy": "adaptive",
                "cold_start_strategy": "random"}  # fmt: skip
        pid = admin.post("/api/projects", json=body).raise_for_status().json()["id"]
        admin.post(f"/api/projects/{pid}/items", json={"items": pool + val}).raise_for_status()
        admin.post(f"/api/projects/{pid}/rounds").raise_for_status()
        token = admin.post("/api/annotators", json={"name": "h", "projects": [pid]}).json()
        for _ in range(2):  # the cold round, then one the adaptive strategy chose
            _label_round(server, admin, token["token"], pid, truth, helpers)
        health = admin.get(f"/api/projects/{pid}/progress").json()["strategy_health"]
    assert [h["round"] for h in health] == [1, 2] and health[1]["arm"]

    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    rows = page.locator("#health tbody tr")
    expect(rows).to_have_count(2)
    # newest first: round 2, its arm beside the strategy, then the agreement with round 1's model
    expect(rows.first.locator("td").nth(0)).to_have_text("2")
    expect(rows.first.locator("td").nth(1)).to_have_text(f"adaptive ({health[1]['arm']})")
    expect(rows.first.locator("td").nth(3)).to_have_text(f"{health[1]['agreement']:.3f}")
    expect(page.locator("#strategy-warning")).to_be_hidden()  # no ready random baseline yet
    expect(page.locator("#batch-advice")).to_contain_text("Batch size advice")
    console.assert_clean()
