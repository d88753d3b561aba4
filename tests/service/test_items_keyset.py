"""GET /api/projects/{id}/items pages by keyset: ``after_id`` and a ``Link: rel="next"``."""

from __future__ import annotations

import re


def _project_with_items(client, n: int) -> int:
    r = client.post("/api/projects", json={"name": "keyset", "classes": ["neg", "pos"]})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    items = [{"external_id": f"x{i}", "payload": {"text": f"text {i}"}} for i in range(n)]
    items[1]["label"] = items[3]["label"] = "pos"
    r = client.post(f"/api/projects/{pid}/items", json={"items": items})
    assert r.status_code == 201, r.text
    return pid


def _next(r) -> str | None:
    link = r.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<(.+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def test_following_the_link_header_walks_every_item_once(client):
    pid = _project_with_items(client, 5)
    r = client.get(f"/api/projects/{pid}/items", params={"limit": 2})
    seen = [it["external_id"] for it in r.json()]
    pages = 1
    while (url := _next(r)) is not None:
        assert "after_id=" in url and "limit=2" in url
        r = client.get(url)
        assert r.status_code == 200, r.text
        seen += [it["external_id"] for it in r.json()]
        pages += 1
    assert seen == ["x0", "x1", "x2", "x3", "x4"]
    assert pages == 3  # 2 + 2 + 1: the short last page has no next link


def test_after_id_with_a_status_filter_and_offset(client):
    pid = _project_with_items(client, 5)
    every = client.get(f"/api/projects/{pid}/items").json()
    ids = [it["id"] for it in every]
    r = client.get(f"/api/projects/{pid}/items", params={"after_id": ids[0], "status": "labeled"})
    assert [it["external_id"] for it in r.json()] == ["x1", "x3"]
    assert _next(r) is None  # 2 items, a page of 100
    r = client.get(f"/api/projects/{pid}/items", params={"after_id": ids[1], "limit": 1})
    assert [it["external_id"] for it in r.json()] == ["x2"]
    assert f"after_id={ids[2]}" in _next(r)
    # offset keeps working; a next link from an offset page continues by keyset
    r = client.get(f"/api/projects/{pid}/items", params={"offset": 3, "limit": 1})
    assert [it["external_id"] for it in r.json()] == ["x3"]
    assert "offset" not in _next(r) and f"after_id={ids[3]}" in _next(r)


def test_bad_after_id_is_a_422(client):
    pid = _project_with_items(client, 4)
    for bad in ("-1", "abc", str(2**63)):
        r = client.get(f"/api/projects/{pid}/items", params={"after_id": bad})
        assert r.status_code == 422, r.text
