"""Project members on the dashboard in real Chromium (Debian's /usr/bin/chromium).

A project's owner (not an admin) opens the dashboard, sees the members with their role here,
makes an annotator a reviewer with the role select, and removes them with the Remove button
(confirming the dialog): the removed annotator gets a 404 on the project from then on and the
task they held is back in the queue. A plain annotator of the project does not see the panel.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _setup(server) -> tuple[int, dict[str, dict]]:
    with server.client() as admin:
        r = admin.post(
            "/api/projects", json={"name": "members", "classes": ["neg", "pos"], "batch_size": 4}
        )
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(4)]
        assert admin.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
        users = {}
        for name, role in [("olga", "owner"), ("ana", "annotator"), ("bob", "annotator")]:
            r = admin.post("/api/annotators", json={"name": name, "projects": [pid]})
            assert r.status_code == 201, r.text
            users[name] = r.json()
            if role != "annotator":
                r = admin.patch(
                    f"/api/projects/{pid}/members/{users[name]['id']}", json={"role": role}
                )
                assert r.status_code == 200, r.text
    return pid, users


def test_owner_changes_a_role_and_removes_a_member(server, new_page, helpers):
    pid, users = _setup(server)
    with server.client(users["ana"]["token"]) as ana:
        held = ana.post(f"/api/projects/{pid}/tasks/next").json()["task"]["id"]
    page, console = new_page()
    helpers.login(page, server, users["olga"]["token"], f"/projects/{pid}/dashboard")
    panel = page.locator("#project-admin")
    expect(panel).to_be_visible()
    rows = page.locator("#members tbody tr")
    expect(rows).to_have_count(3)
    expect(page.get_by_label("Role of olga")).to_have_value("owner")
    expect(page.get_by_label("Role of ana")).to_have_value("annotator")

    page.get_by_label("Role of ana").select_option("reviewer")
    expect(page.locator("#members-result")).to_have_text("ana is now reviewer of this project.")
    with server.client() as admin:
        listed = admin.get(f"/api/projects/{pid}/members").json()
        assert {m["name"]: m["project_role"] for m in listed}["ana"] == "reviewer"

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove ana").click()
    expect(page.locator("#members-result")).to_have_text("ana was removed.")
    expect(rows).to_have_count(2)
    expect(page.get_by_label("Role of ana")).to_have_count(0)
    with server.client(users["ana"]["token"]) as ana:
        r = ana.get(f"/api/projects/{pid}")
        assert r.status_code == 404 and r.json()["detail"] == f"project {pid} not found"
    with server.client() as admin:
        assert admin.get(f"/api/tasks/{held}").json()["status"] == "queued"

    # the owner runs the project from here: import form, rounds, snapshots, quality settings
    for control in ("#import-form", "#start-round", "#snapshot", "#quality-form"):
        expect(page.locator(control)).to_be_visible()

    # an unknown user id: the API's message, nothing added
    page.locator("#member-id").fill("999")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#members-error")).to_have_text("annotator 999 not found")
    expect(rows).to_have_count(2)
    console.assert_clean(r"status of 404")


def test_annotator_does_not_see_the_members_panel(server, new_page, helpers):
    pid, users = _second_project(server)
    page, console = new_page()
    helpers.login(page, server, users["bob"]["token"], f"/projects/{pid}/dashboard")
    expect(page.locator("h1")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#project-admin")).to_be_hidden()
    for control in ("#import-form", "#start-round", "#snapshot", "#quality"):
        expect(page.locator(control)).to_be_hidden()
    console.assert_clean()


def _second_project(server) -> tuple[int, dict[str, dict]]:
    with server.client() as admin:
        r = admin.post("/api/projects", json={"name": "members-2", "classes": ["neg", "pos"]})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = admin.post("/api/annotators", json={"name": "bob-2", "projects": [pid]})
        assert r.status_code == 201, r.text
    return pid, {"bob": r.json()}
