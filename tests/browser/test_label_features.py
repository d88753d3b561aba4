"""The labeling page's guidelines, hard cases, flags, history, batch counter, multilabel
confirmation, and the phone layout (390 px), in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from labelwise.storage.sql import SqlStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

GUIDE = {
    "body": '# How to label\n\nRead the **whole** review. <img src=x onerror="window.__xss=1">',
    "classes": {
        "great": {"definition": "The reviewer is happy with it", "examples": ["Loved it"]},
        "other": {"definition": "Anything else"},
    },
    "hard_cases": "Mixed reviews: go by the *conclusion*.",
}


def _setup(server, name, n=4, task_type="binary", classes=("great", "other"), payloads=None):
    """A project with ``n`` items and a member; returns (pid, token)."""
    with server.client() as admin:
        r = admin.post(
            "/api/projects",
            json={"name": name, "task_type": task_type, "classes": list(classes),
                  "batch_size": n, "show_predictions": True},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        payloads = payloads or [{"text": f"review number {i} of {name}"} for i in range(n)]
        items = [{"external_id": f"{name}{i}", "payload": p} for i, p in enumerate(payloads)]
        assert admin.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
        ann = admin.post("/api/annotators", json={"name": f"{name}-ann", "projects": [pid]})
        return pid, ann.json()["token"]


def _hard_round(server, pid, confidences):
    """A round whose tasks carry the model's confidences, as a retrain would queue them."""
    store = SqlStore(f"sqlite:///{server.db}")
    try:
        store.create_model_version(pid, metrics={"accuracy": 0.7})
        rid = store.create_round(pid, "margin")
        ids = store.list_unlabeled_item_ids(pid)[: len(confidences)]
        store.create_tasks(
            rid, ids, priorities=[float(len(ids) - i) for i in range(len(ids))],
            routing_tags=["great"] * len(ids), confidences=confidences,
        )  # fmt: skip
    finally:
        store.close()


def test_guidelines_key_definitions_hard_case_and_batch_counter(server, new_page, helpers):
    pid, token = _setup(server, "guide", n=3)
    with server.client() as admin:
        assert admin.put(f"/api/projects/{pid}/guidelines", json=GUIDE).status_code == 200
    _hard_round(server, pid, [0.55, 0.95, None])  # binary: hard below 0.75
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/label")
    expect(page.locator("#task")).to_be_visible()
    expect(page.locator("#batch-progress")).to_have_text(re.compile(r"^1 of 3 in this batch"))
    hard = page.locator("#hard-case")
    expect(hard).to_be_visible()
    expect(hard).to_contain_text("The model is unsure")
    expect(hard.locator("em")).to_have_text("conclusion")  # the owner's Markdown, rendered
    # the class buttons describe their class on focus
    great = page.get_by_role("button", name="1 great")
    great.focus()
    expect(page.locator("#class-definition")).to_have_text(
        "great: The reviewer is happy with it Examples: “Loved it”."
    )
    expect(great).to_have_accessible_description(re.compile("The reviewer is happy"))
    # g opens the guidelines; user HTML shows as text and never runs
    page.locator("#item-body").focus()
    page.keyboard.press("g")
    dialog = page.locator("#guidelines-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h3", has_text="How to label")).to_be_visible()
    expect(dialog).to_contain_text('<img src=x onerror="window.__xss=1">')
    assert page.evaluate("() => window.__xss") is None
    expect(dialog).to_contain_text("Version 1")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # the next task is confident: no hard-case note, and the counter moves on
    page.keyboard.press("1")
    expect(page.locator("#batch-progress")).to_have_text(re.compile(r"^2 of 3 in this batch"))
    expect(hard).to_be_hidden()
    page.keyboard.press("2")
    expect(page.locator("#batch-progress")).to_have_text(re.compile(r"^3 of 3 in this batch"))
    expect(hard).to_be_hidden()  # queued while cold: no confidence, no hard case
    with server.client() as admin:
        anns = SqlStore(f"sqlite:///{server.db}")
        try:
            versions = {a.guideline_version for a in anns.list_annotations(pid)}
        finally:
            anns.close()
    assert versions == {1}
    console.assert_clean(r"status of 401")


def test_flag_then_history_edit(server, new_page, helpers):
    pid, token = _setup(server, "flags", n=4)
    with server.client() as admin:
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/label")
    task = page.locator("#task")
    expect(task).to_be_visible()
    first = task.get_attribute("data-external-id")
    # f: flag with a reason (an empty reason is refused in place)
    page.keyboard.press("f")
    dialog = page.locator("#flag-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#flag-reason")).to_be_focused()
    page.get_by_role("button", name="Send flag").click()
    expect(page.locator("#flag-error")).to_have_text("Say what is wrong with the item.")
    page.keyboard.type("The review is cut off")
    page.get_by_role("button", name="Send flag").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(f"Flagged {first}")
    with server.client() as admin:
        flags = admin.get(f"/api/projects/{pid}/flags").json()
    assert [(f["external_id"], f["reason"]) for f in flags] == [(first, "The review is cut off")]
    # label two items; both appear in the history, newest first
    page.keyboard.press("1")
    expect(task).not_to_have_attribute("data-external-id", first)
    second = task.get_attribute("data-external-id")
    page.keyboard.press("1")
    history = page.locator("#history-list li")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text(second)
    expect(history.nth(1)).to_contain_text(first)
    third = task.get_attribute("data-external-id")
    # change the older answer: the item comes back, a key gives the new label
    page.get_by_role("button", name=f"Change the label of {first}").click()
    expect(page.locator("#edit-banner")).to_be_visible()
    expect(task).to_have_attribute("data-external-id", first)
    page.keyboard.press("2")
    expect(page.locator("#status")).to_contain_text(f"Changed {first} to “other”")
    expect(page.locator("#edit-banner")).to_be_hidden()
    expect(task).to_have_attribute("data-external-id", third)  # back where we were
    expect(history.first).to_contain_text(first)  # the edit is the newest answer
    expect(history.first).to_contain_text("other")
    with server.client() as admin:
        items = admin.get(f"/api/projects/{pid}/items", params={"status": "labeled"}).json()
    assert {it["external_id"]: it["label"] for it in items} == {first: "other", second: "great"}
    console.assert_clean(r"status of 401")

    # the owner sees the flag on the dashboard
    owner, owner_console = new_page()
    helpers.login(owner, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(owner.locator("#flags tbody tr")).to_have_count(1)
    expect(owner.locator("#flags tbody tr")).to_contain_text("The review is cut off")
    owner_console.assert_clean(r"status of 401")


def test_multilabel_enter_with_nothing_selected_asks_first(server, new_page, helpers):
    pid, token = _setup(server, "multi", n=3, task_type="multilabel", classes=("a", "b", "c"))
    with server.client() as admin:
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
    page, console = new_page()
    helpers.login(page, server, token, f"/projects/{pid}/label")
    task = page.locator("#task")
    expect(task).to_be_visible()
    first = task.get_attribute("data-external-id")
    page.locator("#item-body").focus()
    page.keyboard.press("Enter")
    confirm = page.locator("#confirm-empty")
    expect(confirm).to_be_visible()
    expect(task).to_have_attribute("data-external-id", first)  # nothing was saved
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    page.keyboard.press("2")  # toggles b: Enter now saves at once
    page.keyboard.press("Enter")
    expect(task).not_to_have_attribute("data-external-id", first)
    second = task.get_attribute("data-external-id")
    page.keyboard.press("Enter")
    expect(confirm).to_be_visible()
    page.keyboard.press("Enter")  # asked and confirmed: an empty label is saved
    expect(task).not_to_have_attribute("data-external-id", second)
    with server.client() as admin:
        items = admin.get(f"/api/projects/{pid}/items", params={"status": "labeled"}).json()
    assert {it["external_id"]: it["label"] for it in items} == {first: ["b"], second: []}
    console.assert_clean(r"status of 401")


def _png(path, size):
    from PIL import Image

    Image.new("RGB", size, (30, 120, 200)).save(path)
    return str(path)


def _page_width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def test_phone_width_tables_scroll_and_images_fit_with_zoom(server, new_page, helpers, tmp_path):
    big = _png(tmp_path / "big.png", (1600, 900))
    tiny = _png(tmp_path / "tiny.png", (8, 8))
    pid, token = _setup(server, "phone", n=2, payloads=[{"image": big}, {"image": tiny}])
    with server.client() as admin:
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
    page, console = new_page()
    page.set_viewport_size(helpers.PHONE)
    helpers.login(page, server, token, f"/projects/{pid}/label")
    img = page.locator("#item-body img")
    expect(img).to_be_visible()
    box = img.bounding_box()
    assert 200 <= box["width"] <= 390 and box["x"] >= 0  # fits, not at its natural 1,600 px
    assert _page_width(page) <= 390
    page.locator("#item-body").focus()
    page.keyboard.press("z")
    expect(page.locator("#zoom")).to_have_attribute("aria-pressed", "true")
    assert img.bounding_box()["width"] > 2 * box["width"]  # larger, scrolling inside its box
    assert _page_width(page) <= 390
    page.keyboard.press("1")
    expect(page.locator("#zoom")).to_have_attribute("aria-pressed", "false")
    expect(img).to_be_visible()
    assert img.bounding_box()["width"] >= 200  # an 8 x 8 image is scaled up to be seen
    console.assert_clean(r"status of 401")

    owner, owner_console = new_page()
    owner.set_viewport_size(helpers.PHONE)
    helpers.login(owner, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(owner.locator("#rounds tbody tr")).to_have_count(1)
    expect(owner.locator("#flags tbody tr")).to_have_count(1)
    assert _page_width(owner) <= 390  # the rounds table scrolls inside its card
    owner_console.assert_clean(r"status of 401")


def test_owner_edits_guidelines_on_the_dashboard(server, new_page, helpers):
    pid, _ = _setup(server, "editor", n=2)
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(page.locator("#guide-version")).to_have_text("No guidelines yet.")
    page.get_by_label("Instructions (Markdown)").fill("# Rules\n\nBe *consistent*.")
    page.get_by_label("great: definition").fill("Happy customer")
    page.get_by_label("great: examples").fill("Loved it\nFive stars")
    page.get_by_label("Hard cases (Markdown): shown on items the model is unsure of").fill("Ask.")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#guide-result")).to_have_text("Saved as version 1.")
    with server.client() as admin:
        g = admin.get(f"/api/projects/{pid}/guidelines").json()
    assert (g["version"], g["body"], g["hard_cases"]) == (1, "# Rules\n\nBe *consistent*.", "Ask.")
    assert g["classes"] == {
        "great": {"definition": "Happy customer", "examples": ["Loved it", "Five stars"]}
    }
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#guide-result")).to_have_text("Saved as version 2.")
    expect(page.locator("#guide-versions li")).to_have_count(2)
    console.assert_clean(r"status of 401")
