"""A token that stops working mid-session, in real Chromium: the admin revokes an annotator's
token while their labeling page is open; the page's next API call gets a 401 and the login page
says why ("token revoked at ...; ask an admin ..."), not just "Log in". A first visit without a
token shows no reason."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_a_revoked_token_sends_the_page_to_login_with_the_reason(server, new_page, helpers):
    with server.client() as admin:
        r = admin.post("/api/projects", json={"name": "revoke", "classes": ["neg", "pos"]})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = admin.post("/api/annotators", json={"name": "rita", "projects": [pid]})
        assert r.status_code == 201, r.text
        rita = r.json()
    page, console = new_page()
    page.goto(server.url + "/login")
    expect(page.locator("#token-error")).to_have_text("")  # a first visit: no reason
    helpers.login(page, server, rita["token"], f"/projects/{pid}/label")
    with server.client() as admin:
        assert admin.delete(f"/api/annotators/{rita['id']}/token").status_code == 204
    page.reload()
    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.locator("#token-error")).to_contain_text("You were logged out: token revoked at")
    expect(page.locator("#token-error")).to_contain_text("ask an")
    page.reload()  # said once: a reload of the login page starts clean
    expect(page.locator("#token-error")).to_have_text("")
    console.assert_clean(r"status of 401")
