"""The review page in real Chromium (Debian's /usr/bin/chromium).

A project asks two annotators for every item (``consensus_share=1``, ``consensus_k=2``) and
needs full agreement (``consensus_min_agreement=0.9``); the two agree on half the items (real
fine-food reviews) and disagree on the rest, which land in review. Then:

1. a reviewer resolves a disagreement with the keyboard only (``?`` help, ``s`` skip, a number
   key): the item's label becomes the reviewer's choice, recorded with who resolved it;
2. a reviewer of another project is refused (the page says "Not found", the API is 404), and
   so is an annotator of this one (the page says "Reviewers only", the API is 403);
3. at 390 px the page is never wider than the screen.

A screenshot of the review page goes to docs/screenshots/review.png when the run sets
LABELWISE_SCREENSHOTS=1, to a temporary folder otherwise.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from labelwise.storage.sql import SqlStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

N_ITEMS = 6


def _in_review(server, reviews, name="disputed"):
    """A project whose disagreements are in review; returns (pid, tokens, items in review)."""
    pool, _, truth = reviews
    with server.client() as admin:
        r = admin.post(
            "/api/projects",
            json={"name": name, "task_type": "binary", "classes": ["great", "other"],
                  "batch_size": N_ITEMS, "show_predictions": True,
                  "consensus_share": 1.0, "consensus_k": 2, "consensus_min_agreement": 0.9,
                  "strategy_params": {"random_fraction": 0.0}},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        tokens = {}
        for who, role in [("ann", "annotator"), ("bo", "annotator"), ("rita", "reviewer")]:
            r = admin.post("/api/annotators", json={"name": who, "role": role, "projects": [pid]})
            assert r.status_code == 201, r.text
            tokens[who] = r.json()["token"]
        items = pool[:N_ITEMS]
        # labeled seeds (both classes), so that the first retrain gives a model whose
        # prediction the review page shows beside the answers
        seeds = [{**it, "label": truth[it["external_id"]]} for it in pool[N_ITEMS : 2 * N_ITEMS]]
        r = admin.post(f"/api/projects/{pid}/items", json={"items": items + seeds})
        assert r.status_code == 201, r.text
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201
        # ann answers the truth; bo agrees on even-numbered reviews only
        ids = {it["external_id"]: i for i, it in enumerate(items)}
        other = {"great": "other", "other": "great"}
        for who in ("ann", "bo"):
            with server.client(tokens[who]) as c:
                while (r := c.post(f"/api/projects/{pid}/tasks/next")).status_code == 200:
                    ext = r.json()["item"]["external_id"]
                    label = truth[ext] if who == "ann" or ids[ext] % 2 == 0 else other[truth[ext]]
                    tid = r.json()["task"]["id"]
                    a = c.post(f"/api/tasks/{tid}/annotations", json={"label": label})
                    assert a.status_code == 201, a.text
        # the round is complete: the in-process worker retrains (the model's guess is shown)
        deadline = time.monotonic() + 60
        while not admin.get(f"/api/projects/{pid}/model-versions").json():
            assert time.monotonic() < deadline, "no retrain within 60 s"
            time.sleep(0.2)
        listed = admin.get(f"/api/projects/{pid}/review").json()
    assert sorted(it["external_id"] for it in listed) == [
        e for e, i in ids.items() if i % 2 == 1
    ], listed
    return pid, tokens, listed


@pytest.fixture(scope="module")
def disputed(server, reviews):
    return _in_review(server, reviews)


def test_a_reviewer_resolves_a_disagreement_with_the_keyboard(
    server, new_page, helpers, disputed, reviews
):
    pid, tokens, listed = disputed
    truth = reviews[2]
    page, console = new_page()
    helpers.login(page, server, tokens["rita"], f"/projects/{pid}/review")
    first = listed[0]
    expect(page.locator("#item-id")).to_have_text(first["external_id"])
    expect(page.locator("#item-body")).to_be_focused()  # keys work at once, no click
    expect(page.locator("#review-reason")).to_contain_text("annotators disagree")
    # both answers side by side, with who and what
    answers = page.locator("#answers .answer:not(.model)")
    expect(answers).to_have_count(2)
    expect(page.locator('#answers [data-annotator="ann"]')).to_contain_text(
        truth[first["external_id"]]
    )
    expect(page.locator('#answers [data-annotator="bo"]')).to_be_visible()
    model = page.locator('#answers [data-annotator="model"]')  # the model's guess, set apart
    expect(model).to_contain_text("confidence")
    expect(model).to_contain_text(re.compile(r"great|other"))
    # accessible names contain the visible text (axe's label-in-name rule)
    expect(page.get_by_role("button", name="1 great")).to_be_visible()
    expect(page.get_by_role("button", name="2 other")).to_contain_text("1 of 2 answers")

    page.keyboard.press("?")  # the keys, then Esc back to the item
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()
    expect(page.locator("#item-body")).to_be_focused()

    page.keyboard.press("s")  # skip: the next item in review
    second = listed[1]
    expect(page.locator("#item-id")).to_have_text(second["external_id"])

    # resolve it as the class bo gave (the wrong one): the reviewer's choice wins
    choice = "other" if truth[second["external_id"]] == "great" else "great"
    page.keyboard.press({"great": "1", "other": "2"}[choice])
    expect(page.locator("#status")).to_contain_text(f"Resolved {second['external_id']}")
    expect(page.locator("#item-id")).not_to_have_text(second["external_id"])
    with server.client() as admin:
        in_review = [it["id"] for it in admin.get(f"/api/projects/{pid}/review").json()]
    assert second["id"] not in in_review and first["id"] in in_review  # skipped: still there
    store = SqlStore(f"sqlite:///{server.db}")
    try:
        item = store.get_item(second["id"])
        rita = store.find_annotator("rita")
    finally:
        store.close()
    # the reviewer's choice is the item's label, recorded with who resolved it
    assert (item.status, item.label, item.resolved_by) == ("labeled", choice, rita.id)
    expected = "confirmed" if second["label"] == choice else "corrected"
    assert item.review_outcome == expected and item.resolved_at is not None

    helpers.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(helpers.SCREENSHOTS / "review.png"), full_page=True)
    console.assert_clean(r"status of 401")


def test_a_reviewer_of_another_project_and_an_annotator_are_refused(
    server, new_page, helpers, disputed
):
    pid, tokens, _ = disputed
    with server.client() as admin:
        other = admin.post(
            "/api/projects", json={"name": "elsewhere", "classes": ["x", "y"]}
        ).json()["id"]
        rob = admin.post(
            "/api/annotators", json={"name": "rob", "role": "reviewer", "projects": [other]}
        ).json()["token"]
    page, console = new_page()
    helpers.login(page, server, rob, f"/projects/{pid}/review")
    expect(page.locator("#not-found")).to_be_visible()
    expect(page.locator("#review-item")).to_be_hidden()
    expect(page.locator("#answers")).to_be_hidden()
    assert page.locator("#item-body").inner_text() == ""  # nothing of project A leaked
    with server.client(rob) as c:
        assert c.get(f"/api/projects/{pid}/review/next").status_code == 404
    console.assert_clean(r"status of 401", r"status of 404")

    page, console = new_page()
    helpers.login(page, server, tokens["ann"], f"/projects/{pid}/review")
    expect(page.locator("#forbidden")).to_be_visible()
    expect(page.locator("#forbidden")).to_contain_text("reviewer role")
    expect(page.locator("#review-item")).to_be_hidden()
    console.assert_clean(r"status of 401", r"status of 403")


def test_the_review_page_fits_a_phone(server, new_page, helpers, disputed):
    pid, tokens, _ = disputed
    page, console = new_page()
    page.set_viewport_size(helpers.PHONE)
    helpers.login(page, server, tokens["rita"], f"/projects/{pid}/review")
    expect(page.locator("#review-item")).to_be_visible()
    expect(page.locator("#answers .answer").first).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= helpers.PHONE["width"], width
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= helpers.PHONE["width"], width
    assert helpers.unnamed_controls(page) == []
    console.assert_clean(r"status of 401")


def test_the_dashboard_shows_annotator_quality_and_saves_the_settings(
    server, new_page, helpers, disputed
):
    """The review counts (in review + resolved = the disagreements), a row and three bars per
    annotator, Fleiss' kappa; then the admin's settings form: a value out
    of range is refused beside its field, a valid one is saved (PATCH)."""
    pid, _, _ = disputed
    with server.client() as admin:
        report = admin.get(f"/api/projects/{pid}/annotators/quality").json()
        q = admin.get(f"/api/projects/{pid}/progress").json()["quality"]
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    expect(page.locator("#quality")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#q-in-review")).to_have_text(str(q["in_review"]))
    resolved = int(page.locator("#q-confirmed").inner_text()) + int(
        page.locator("#q-corrected").inner_text()
    )
    done = sum(v for k, v in q.items() if k.endswith(("_confirmed", "_corrected")))
    assert resolved == done and q["in_review"] + done == N_ITEMS // 2  # each disagreement once
    for row in report["annotators"]:
        tr = page.locator(f'#quality-table tr[data-annotator="{row["name"]}"]')
        expect(tr).to_contain_text(str(row["n_answers"]))
        expect(page.locator(f'#quality-chart rect[data-annotator="{row["name"]}"]')).to_have_count(
            3
        )
    expect(page.locator('#quality-table tr[data-annotator="ann"]')).to_be_visible()
    fleiss = report["fleiss_kappa"]
    expect(page.locator("#fleiss")).to_contain_text("–" if fleiss is None else f"{fleiss:.2f}")
    expect(page.get_by_role("link", name="Open the review page")).to_have_attribute(
        "href", f"/projects/{pid}/review"
    )

    share = page.get_by_label("Consensus share (0–1, 0 = off)")
    expect(share).to_have_value("1")
    share.fill("1.5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#quality-form #err-consensus_share")).not_to_be_empty()
    expect(share).to_have_attribute("aria-invalid", "true")
    with server.client() as admin:
        assert admin.get(f"/api/projects/{pid}").json()["consensus_share"] == 1.0  # unchanged
    share.fill("0.5")
    page.get_by_label("Annotators per consensus item (2–20)").fill("3")
    page.get_by_label("Consensus method").select_option("dawid_skene")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#quality-result")).to_contain_text("Saved")
    with server.client() as admin:
        p = admin.get(f"/api/projects/{pid}").json()
    assert (p["consensus_share"], p["consensus_k"], p["consensus_method"]) == (
        0.5, 3, "dawid_skene",
    )  # fmt: skip
    console.assert_clean(r"status of 401", r"status of 422")


def test_the_new_project_form_sets_consensus_and_gold(server, new_page, helpers):
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, "/projects/new")
    page.get_by_label("Name").fill("with consensus")
    page.get_by_label("Classes (comma-separated)").fill("great, other")
    page.get_by_label("Consensus share (0–1, 0 = off)").fill("0.2")
    page.get_by_label("Consensus method").select_option("dawid_skene")
    page.get_by_label("Gold rate (share of tasks, 0–0.5)").fill("0.1")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/dashboard?created=1")
    pid = int(page.url.split("/projects/")[1].split("/")[0])
    with server.client() as admin:
        p = admin.get(f"/api/projects/{pid}").json()
    assert (p["consensus_share"], p["consensus_k"], p["consensus_method"]) == (
        0.2, 3, "dawid_skene",
    )  # fmt: skip
    assert (p["gold_rate"], p["gold_min_accuracy"], p["consensus_min_agreement"]) == (0.1, 0.7, 0.6)
    console.assert_clean(r"status of 401")
