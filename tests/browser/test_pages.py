"""The labeling page and the dashboard in real Chromium (Debian's /usr/bin/chromium).

1. An annotator logs in and labels a whole batch with the keyboard only (skip and undo
   included); the in-process worker retrains; the dashboard's learning curve gains a point.
2. An annotator cannot open another project's task: the pages say "Not found", the API is 404.
3. The server goes down during a submission: the page keeps the task and the label, offers a
   retry and retries by itself; after a restart on the same database the label is stored once.

Screenshots of the labeling view and the dashboard go to docs/screenshots/ when the run sets
LABELWISE_SCREENSHOTS=1 (``make screenshots``), to a temporary folder otherwise.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from labelwise.storage.sql import SqlStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

KEYS = {"great": "1", "other": "2"}


def _project(client, name, **kw) -> int:
    body = {
        "name": name,
        "task_type": "binary",
        "classes": ["great", "other"],
        "strategy": "entropy",
        "cold_start_strategy": "random",
        "batch_size": 5,
        "stopping": {"any": [{"target": 0.95}, {"max_labels": 100}]},
        "label_cost": 0.05,
        "show_predictions": True,
        **kw,
    }
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _user(client, name, projects) -> dict:
    r = client.post("/api/annotators", json={"name": name, "projects": projects})
    assert r.status_code == 201, r.text
    return r.json()


def _import(client, pid, items) -> None:
    r = client.post(f"/api/projects/{pid}/items", json={"items": items})
    assert r.status_code == 201, r.text


def _label_round_by_api(server, client, token, pid, truth, helpers) -> None:
    """Label every queued task through the API, then wait for the retrain's next round."""
    n_rounds = len(client.get(f"/api/projects/{pid}/rounds").json())
    with server.client(token) as ann:
        while (r := ann.post(f"/api/projects/{pid}/tasks/next")).status_code == 200:
            claimed = r.json()
            label = truth[claimed["item"]["external_id"]]
            r = ann.post(f"/api/tasks/{claimed['task']['id']}/annotations", json={"label": label})
            assert r.status_code == 201, r.text
    helpers.wait_for(
        lambda: True if len(client.get(f"/api/projects/{pid}/rounds").json()) > n_rounds else None,
        what="the retrain to open the next round",
    )


def _curve_points(page) -> int:
    return page.locator("#curve svg circle.pt-active").count()


def test_keyboard_labeling_retrains_and_the_curve_gains_a_point(server, new_page, reviews, helpers):
    pool, val, truth = reviews
    with server.client() as admin:
        pid = _project(admin, "reviews", batch_size=20)
        _import(admin, pid, pool + val)
        ana = _user(admin, "ana", [pid])
        seed = _user(admin, "seed", [pid])
        # two rounds of 20 labelled through the API: two curve points; then batches of 6
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
        _label_round_by_api(server, admin, seed["token"], pid, truth, helpers)
        assert admin.patch(f"/api/projects/{pid}", json={"batch_size": 6}).status_code == 200
        _label_round_by_api(server, admin, seed["token"], pid, truth, helpers)
        assert len(admin.get(f"/api/projects/{pid}/progress").json()["learning_curve"]) == 2

    # the owner's dashboard before: two points
    owner, owner_console = new_page()
    helpers.login(owner, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(owner.locator("#curve svg circle.pt-active")).to_have_count(2)

    # the annotator labels round 3 with the keyboard only
    page, console = new_page()
    helpers.login(page, server, ana["token"], f"/projects/{pid}/label")
    task = page.locator("#task")
    expect(task).to_be_visible()
    expect(page.locator("#project-title")).to_have_text("reviews")
    expect(page.get_by_role("button", name="1 great")).to_be_visible()
    expect(page.locator("#prediction")).to_be_visible()  # the model exists and predictions show
    expect(page.locator("#prediction")).to_contain_text("Model suggests")
    helpers.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expect(page.locator("#item-body mark").first).to_be_visible()  # what the model weighs
    page.screenshot(path=str(helpers.SCREENSHOTS / "labeling.png"))
    assert helpers.unnamed_controls(page) == []

    labelled: list[str] = []
    skipped = undone = None
    while True:
        expect(page.locator("#task:not([hidden]), #empty:not([hidden])").first).to_be_visible()
        if page.locator("#empty").is_visible():
            break
        ext = task.get_attribute("data-external-id")
        task_id = task.get_attribute("data-task-id")
        if skipped is None:  # skip the first item with "s"
            page.keyboard.press("s")
            skipped = ext
        else:
            page.keyboard.press(KEYS[truth[ext]])
            labelled.append(ext)
            if undone is None and len(labelled) == 2:
                # undo the second label with "u": the same item comes back
                expect(page.locator("#status")).to_contain_text(f"Saved “{truth[ext]}” for {ext}")
                page.keyboard.press("u")
                expect(task).to_have_attribute("data-external-id", ext)
                expect(page.locator("#status")).to_contain_text("Undone")
                undone = ext
                labelled.pop()
                continue
        expect(page.locator(f'#task[data-task-id="{task_id}"]:not([hidden])')).to_have_count(
            0
        )  # the next task or the empty queue replaced it
    assert undone is not None  # the undo step ran
    assert skipped is not None and len(labelled) == 5  # batch of 6: one skipped, five labelled

    # the batch is complete: the worker retrains, round 4 opens, the curve gains a point
    expect(owner.locator("#curve svg circle.pt-active")).to_have_count(3, timeout=60_000)
    expect(owner.locator("#rounds tbody tr")).to_have_count(4, timeout=30_000)
    expect(owner.locator("#stopping")).to_contain_text(re.compile(r"^(Continue|Stop now)"))
    expect(owner.locator("#t-cost")).to_have_text("2.25")  # (20 + 20 + 5 labels) x 0.05
    expect(owner.locator("#versions tbody tr")).to_have_count(3)
    owner.screenshot(path=str(helpers.SCREENSHOTS / "dashboard.png"), full_page=True)
    assert helpers.unnamed_controls(owner) == []
    with owner.expect_download() as dl:
        owner.get_by_role("button", name=re.compile(r"Export version \d+ as CSV")).first.click()
    assert dl.value.suggested_filename.endswith(".csv")
    assert dl.value.path().read_text().splitlines()[0] == "id,label"

    # the labeling page picked up round 4 by itself
    expect(task).to_be_visible(timeout=30_000)

    store = SqlStore(f"sqlite:///{server.db}")
    try:
        anns = store.list_annotations(pid, annotator_id=ana["id"])
        by_ext = {store.get_item(a.item_id).external_id: a.label for a in anns}
        assert by_ext == {ext: truth[ext] for ext in labelled}  # undone label gone, once each
    finally:
        store.close()
    console.assert_clean()
    owner_console.assert_clean()


def test_foreign_annotator_cannot_open_another_projects_task(server, new_page, reviews, helpers):
    pool, val, _ = reviews
    with server.client() as admin:
        mine = _project(admin, "mine")
        theirs = _project(admin, "theirs")
        _import(admin, theirs, pool[:10] + val[:20])
        insider = _user(admin, "insider", [theirs])
        outsider = _user(admin, "outsider", [mine])
        assert admin.post(f"/api/projects/{theirs}/rounds").status_code == 201
    with server.client(insider["token"]) as c:
        claimed = c.post(f"/api/projects/{theirs}/tasks/next").json()
    tid = claimed["task"]["id"]
    with server.client(outsider["token"]) as c:
        assert c.get(f"/api/tasks/{tid}").status_code == 404
        assert c.post(f"/api/tasks/{tid}/annotations", json={"label": "great"}).status_code == 404
        assert c.post(f"/api/projects/{theirs}/tasks/next").status_code == 404
        assert c.get(f"/media/items/{claimed['item']['id']}").status_code == 404
        assert c.get(f"/api/items/{claimed['item']['id']}/keywords").status_code == 404

    page, console = new_page()
    helpers.login(page, server, outsider["token"], f"/projects/{theirs}/label")
    expect(page.locator("#not-found")).to_be_visible()
    expect(page.locator("#task")).to_be_hidden()
    page.goto(f"{server.url}/projects/{theirs}/dashboard")
    expect(page.locator("#not-found")).to_be_visible()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("link", name="Label mine")).to_be_visible()
    expect(page.get_by_role("link", name="Label theirs")).to_have_count(0)
    console.assert_clean(r"status of 404")


def test_failed_submission_is_retried_without_loss(tmp_path, new_page, reviews, helpers):
    pool, val, truth = reviews
    server = helpers.make_server(tmp_path)
    try:
        with server.client() as admin:
            pid = _project(admin, "outage", batch_size=3)
            _import(admin, pid, pool[:10] + val[:20])
            ana = _user(admin, "ana", [pid])
            assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
        page, console = new_page()
        helpers.login(page, server, ana["token"], f"/projects/{pid}/label")
        task = page.locator("#task")
        expect(task).to_be_visible()
        ext = task.get_attribute("data-external-id")
        task_id = int(task.get_attribute("data-task-id"))

        server.stop()
        page.keyboard.press(KEYS[truth[ext]])
        retry = page.locator("#retry-box")
        expect(retry).to_be_visible()
        expect(retry).to_contain_text("Your label is kept")
        expect(retry).to_contain_text("cannot be reached")
        expect(task).to_have_attribute("data-external-id", ext)  # the task stays on screen
        expect(page.locator(f'.class-button[data-label="{truth[ext]}"]')).to_have_class(
            re.compile("chosen")
        )

        server.start()
        page.keyboard.press("r")  # retry now (it also retries by itself with backoff)
        expect(retry).to_be_hidden(timeout=30_000)
        expect(page.locator("#status")).to_contain_text(f"Saved “{truth[ext]}”")
        expect(task).not_to_have_attribute("data-task-id", str(task_id))

        store = SqlStore(f"sqlite:///{server.db}")
        try:
            item_id = store.get_task(task_id).item_id
            anns = store.list_annotations(pid, item_id=item_id)
            assert [(a.label, a.annotator_id) for a in anns] == [(truth[ext], ana["id"])]
        finally:
            store.close()
        console.assert_clean(r"ERR_CONNECTION_REFUSED")
    finally:
        server.stop()
