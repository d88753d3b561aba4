"""The owner's forms in real Chromium: create a project, import items (inline errors for bad
input), start a round; then a tabular item is labelled from a two-column table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

GOOD_CSV = b"id,width,height\nt1,1.5,2\nt2,3,4.5\nt3,0.5,1\nt4,7,8\n"
BAD_CSV = b"id,width,label\nt1,1.5,small\nt2,3,enormous\n"


def test_create_project_and_import_through_the_pages(server, new_page, helpers):
    page, console = new_page()
    # a link with the token in the fragment logs in at once (what `labelwise serve --demo` prints)
    page.goto(f"{server.url}/login#next=/projects/new&token={helpers.ADMIN}")
    page.wait_for_url(f"{server.url}/projects/new")
    assert "token" not in page.url
    name = page.get_by_label("Name")
    expect(name).to_be_focused()
    assert helpers.unnamed_controls(page) == []

    # empty form: inline messages beside the fields, focus on the first bad one
    page.keyboard.press("Enter")
    expect(page.locator("#err-name")).to_have_text("Give the project a name.")
    expect(page.locator("#err-classes")).to_contain_text("at least one class")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()

    # the API's 422 detail is shown in the form
    page.keyboard.type("sizes")
    page.get_by_label("Classes (comma-separated)").fill("small, small")
    page.keyboard.press("Enter")
    expect(page.locator("#form-error")).to_contain_text("classes must be unique")
    expect(page).to_have_url(re.compile(r"/projects/new$"))

    page.get_by_label("Classes (comma-separated)").fill("small, large")
    page.get_by_label("Batch size").fill("2")
    page.get_by_label("Strategy", exact=True).select_option("margin")
    page.get_by_label("Show the model's prediction to annotators").check()
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/\d+/dashboard\?created=1$"))
    pid = int(re.search(r"/projects/(\d+)/", page.url).group(1))
    expect(page.locator("#project-title")).to_have_text("sizes")
    expect(page.locator("#t-strategy")).to_contain_text("margin")

    # a duplicate name is a 409 whose detail appears in the form
    page.goto(f"{server.url}/projects/new")
    expect(name).to_be_focused()
    page.keyboard.type("sizes")
    page.get_by_label("Classes (comma-separated)").fill("a, b")
    page.keyboard.press("Enter")
    expect(page.locator("#form-error")).to_contain_text("sizes")
    page.goto(f"{server.url}/projects/{pid}/dashboard")

    # import: no file, then a file with a bad label (line named), then a good tabular file
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-error")).to_contain_text("Choose a CSV")
    page.get_by_label("File (CSV, JSON Lines or Parquet)").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV}]
    )
    page.get_by_label("Text column").fill("")
    page.get_by_label("Label column (optional)").fill("label")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-error")).to_contain_text("enormous")
    expect(page.locator("#import-error")).to_contain_text("line")
    page.get_by_label("File (CSV, JSON Lines or Parquet)").set_input_files(
        files=[{"name": "sizes.csv", "mimeType": "text/csv", "buffer": GOOD_CSV}]
    )
    page.get_by_label("Text column").fill("")
    page.get_by_label("Label column (optional)").fill("")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_have_text(
        "Imported 4 new items (4 read, 0 already present)."
    )
    expect(page.locator("#t-labels")).to_have_text("0 / 4")

    page.get_by_role("button", name="Start round").click()
    expect(page.locator("#rounds tbody tr")).to_have_count(1)
    expect(page.locator("#t-queue")).to_have_text("2")

    # the admin labels: the tabular row is a two-column table
    page.get_by_role("link", name="Start labeling").click()
    expect(page.locator("#task")).to_be_visible()
    table = page.locator("#item-body table.fields")
    expect(table.locator("th")).to_have_text(["width", "height"])
    expect(page.locator("#prediction")).to_be_hidden()  # cold start: no model, no guess
    page.keyboard.press("2")
    expect(page.locator("#status")).to_contain_text("Saved “large”")
    console.assert_clean(r"status of 4(09|22)")
