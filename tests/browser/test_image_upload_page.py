"""The owner uploads images from the dashboard in real Chromium: two PNGs are imported and
shown on the labeling page at display size; a corrupt file is named in the form and nothing is
imported."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def _png(colour, size=(1600, 800)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_two_pngs_through_the_dashboard(server, new_page, helpers):
    with server.client() as admin:
        body = {"name": "photos", "classes": ["ok", "scratch"], "batch_size": 2}
        pid = admin.post("/api/projects", json=body).raise_for_status().json()["id"]
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    files = page.get_by_label("Images (JPEG, PNG, WebP, GIF, BMP, TIFF) or zip archives")
    expect(files).to_be_visible()
    assert helpers.unnamed_controls(page) == []

    # nothing chosen: said in the form
    page.get_by_role("button", name="Upload images").click()
    expect(page.locator("#images-error")).to_contain_text("Choose images")

    # a corrupt file among good ones: the API names it and nothing is imported
    files.set_input_files(
        files=[
            {"name": "red.png", "mimeType": "image/png", "buffer": _png((255, 0, 0))},
            {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\nxx"},
        ]
    )
    page.get_by_role("button", name="Upload images").click()
    expect(page.locator("#images-error")).to_contain_text("broken.png")
    expect(page.locator("#images-error")).to_contain_text("Nothing was imported")
    expect(files).to_have_attribute("aria-invalid", "true")
    with server.client() as admin:
        assert admin.get(f"/api/projects/{pid}/items").json() == []

    files.set_input_files(
        files=[
            {"name": "red.png", "mimeType": "image/png", "buffer": _png((255, 0, 0))},
            {"name": "blue.png", "mimeType": "image/png", "buffer": _png((0, 0, 255))},
        ]
    )
    page.get_by_role("button", name="Upload images").click()
    expect(page.locator("#images-result")).to_have_text(
        "Imported 2 new images (2 read, 0 already present)."
    )
    expect(page.locator("#images-error")).to_have_text("")
    expect(page.locator("#t-labels")).to_have_text("0 / 2")  # the dashboard's next refresh
    with server.client() as admin:
        got = admin.get(f"/api/projects/{pid}/items").json()
        assert sorted(it["external_id"] for it in got) == ["blue.png", "red.png"]
        assert admin.post(f"/api/projects/{pid}/rounds").status_code == 201

    # the labeling page shows the display copy: 1,024 px wide, not the 1,600 px original
    page.goto(f"{server.url}/projects/{pid}/label")
    img = page.locator("#item-body img")
    expect(img).to_be_visible()
    assert img.evaluate("el => el.naturalWidth") == 1024
    console.assert_clean(r"status of 401", r"status of 422")  # 401: the login page's probe
