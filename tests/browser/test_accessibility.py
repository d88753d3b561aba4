"""Accessibility in real Chromium: axe-core (vendored, injected into the page) finds no
violation on any page: login, the project list, a new project, labeling (with the guidelines
open), the dashboard (with the guidelines editor, the flags table and the data-quality
sections: annotator quality, review queue, consensus and gold settings), the review page (with
its keys listed)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def project(server):
    with server.client() as admin:
        r = admin.post(
            "/api/projects",
            json={"name": "a11y", "task_type": "binary", "classes": ["great", "other"],
                  "batch_size": 4, "show_predictions": True},
        )  # fmt: skip
        pid = r.json()["id"]
        items = [{"external_id": f"r{i}", "payload": {"text": f"review {i}"}} for i in range(8)]
        assert admin.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
        r = admin.put(
            f"/api/projects/{pid}/guidelines",
            json={"body": "# How to label\\n\\nRead the **whole** review.",
                  "classes": {"great": {"definition": "The reviewer is happy",
                                        "examples": ["Loved it"]}},
                  "hard_cases": "Mixed reviews: what did they *conclude*?"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
        ann = admin.post("/api/annotators", json={"name": "ally", "projects": [pid]}).json()
        with server.client(ann["token"]) as c:
            tid = c.post(f"/api/projects/{pid}/tasks/next").json()["task"]["id"]
            c.post(f"/api/tasks/{tid}/flags", json={"reason": "cut off"})
            c.post(f"/api/tasks/{tid}/skip")
    return pid, ann["token"]


def _clean(page, helpers):
    assert helpers.axe_violations(page) == []


def test_login_and_project_list_have_no_axe_violations(server, new_page, helpers, project):
    page, console = new_page()
    page.goto(server.url + "/login")
    expect(page.locator("#token")).to_be_visible()
    _clean(page, helpers)
    helpers.login(page, server, helpers.ADMIN, "/")
    expect(page.get_by_role("link", name="Label a11y")).to_be_visible()
    _clean(page, helpers)
    console.assert_clean(r"status of 401")


def test_new_project_page_has_no_axe_violations(server, new_page, helpers, project):
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, "/projects/new")
    expect(page.get_by_label("Name")).to_be_focused()
    _clean(page, helpers)
    page.keyboard.press("Enter")  # inline errors shown
    expect(page.locator("#err-name")).not_to_be_empty()
    _clean(page, helpers)
    console.assert_clean(r"status of 401")


def test_labeling_page_has_no_axe_violations(server, new_page, helpers, project):
    pid, token = project
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/label")
    expect(page.locator("#task")).to_be_visible()
    # the visible text is part of each button's accessible name (axe's label-in-name rule)
    expect(page.get_by_role("button", name="1 great")).to_be_visible()
    _clean(page, helpers)
    page.keyboard.press("g")  # the guidelines
    expect(page.locator("#guidelines-dialog")).to_be_visible()
    _clean(page, helpers)
    page.keyboard.press("Escape")
    console.assert_clean(r"status of 401")


def test_dashboard_has_no_axe_violations(server, new_page, helpers, project):
    pid, _ = project
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(page.locator("#rounds tbody tr")).to_have_count(1)
    expect(page.locator("#flags tbody tr")).to_have_count(1)
    # the data-quality sections, loaded, with the admin's settings form
    expect(page.locator("#quality")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#quality-form")).to_be_visible()
    expect(page.locator("#quality-chart svg")).to_be_visible()
    _clean(page, helpers)
    console.assert_clean(r"status of 401")


@pytest.fixture(scope="module")
def review_project(server, project):
    """The a11y project with a reviewer and one item sent to review by hand."""
    pid, _ = project
    with server.client() as admin:
        unlabeled = admin.get(f"/api/projects/{pid}/items", params={"status": "unlabeled"}).json()
        r = admin.post(f"/api/projects/{pid}/review", json={"item_ids": [unlabeled[0]["id"]]})
        assert r.json() == {"moved": 1}, r.text
        rev = admin.post(
            "/api/annotators", json={"name": "rae", "role": "reviewer", "projects": [pid]}
        ).json()
    return pid, rev["token"]


def test_review_page_has_no_axe_violations(server, new_page, helpers, review_project):
    pid, token = review_project
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/review")
    expect(page.locator("#review-item")).to_be_visible()
    expect(page.get_by_role("button", name="1 great")).to_be_visible()
    _clean(page, helpers)
    page.keyboard.press("?")  # the keys
    expect(page.locator("#help-dialog")).to_be_visible()
    _clean(page, helpers)
    page.keyboard.press("Escape")
    console.assert_clean(r"status of 401")


def test_dashboard_for_a_reviewer_has_no_axe_violations(server, new_page, helpers, review_project):
    pid, token = review_project
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/dashboard")
    expect(page.locator("#quality")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#quality-form")).to_be_hidden()  # settings are the admins'
    expect(page.locator("#q-in-review")).to_have_text("1")
    _clean(page, helpers)
    console.assert_clean(r"status of 401", r"status of 403")
