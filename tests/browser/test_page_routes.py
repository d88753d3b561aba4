"""The page routes without a browser: HTML shells, static files, item images, keywords."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.service.pages import top_terms
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore, NewItem

ADMIN = "pages-admin-token"


@pytest.fixture
def setup(tmp_path):
    store = InMemoryStore()
    settings = Settings(worker="external", data_dir=tmp_path / "data")
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield client, store, tmp_path


def _user(client, name, projects):
    r = client.post("/api/annotators", json={"name": name, "projects": projects})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _png(path):
    from PIL import Image

    Image.new("RGB", (4, 3), (200, 10, 10)).save(path)
    return str(path)


# --------------------------------------------------------------------------- top_terms


def test_top_terms_ranks_by_tf_times_idf():
    idf = {"sugar": 1.0, "gum": 2.0, "taste": 1.5}
    # tf-idf: sugar 2 x 1.0 = 2.0, gum 1 x 2.0 = 2.0 (tie: sugar came first), taste 1 x 1.5 = 1.5;
    # "the" is a stop word, "unknown" has no idf
    text = "Sugar sugar gum the taste unknown"
    assert top_terms(text, idf) == ["sugar", "gum", "taste"]
    assert top_terms(text, idf, k=2) == ["sugar", "gum"]


def test_top_terms_ignores_html_tags():
    assert top_terms("great<br />gum<br/>", {"br": 9.0, "gum": 1.0, "great": 0.5}) == [
        "gum",
        "great",
    ]


def test_top_terms_of_text_without_known_terms_is_empty():
    assert top_terms("the and of", {"sugar": 1.0}) == []


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    "path", ["/", "/login", "/projects/new", "/projects/1/label", "/projects/1/dashboard"]
)
def test_pages_are_html_without_a_token(setup, path):
    client, _, _ = setup
    r = client.get(path, headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="' in r.text and 'role="status"' in r.text


@pytest.mark.parametrize("name", ["app.js", "label.js", "dashboard.js", "forms.js", "style.css"])
def test_static_files_are_served(setup, name):
    client, _, _ = setup
    assert client.get(f"/static/{name}").status_code == 200


def test_page_routes_are_not_in_the_api_schema(setup):
    client, _, _ = setup
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/media", "/projects", "/login")) for p in paths)
    assert "/api/items/{item_id}/keywords" not in paths


def test_bad_project_id_page_is_422(setup):
    client, _, _ = setup
    assert client.get("/projects/0/label").status_code == 422


# --------------------------------------------------------------------------- media


def test_item_image_is_served_to_members_only(setup):
    client, store, tmp = setup
    pid = store.create_project("pics", "binary", ["cat", "dog"])
    other = store.create_project("other", "binary", ["a", "b"])
    store.create_items(pid, [NewItem("p1", {"image": _png(tmp / "p1.png")})])
    item = store.list_items(pid)[0]
    member, outsider = _user(client, "m", [pid]), _user(client, "o", [other])
    r = client.get(f"/media/items/{item.id}", headers=member)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/media/items/{item.id}", headers=outsider).status_code == 404
    assert client.get(f"/media/items/{item.id}", headers={"Authorization": ""}).status_code == 401


def test_item_image_must_be_an_image_file(setup):
    client, store, tmp = setup
    secret = tmp / "secret.txt"
    secret.write_text("not for annotators")
    pid = store.create_project("pics", "binary", ["cat", "dog"])
    store.create_items(
        pid,
        [
            NewItem("txt", {"image": str(secret)}),
            NewItem("gone", {"image": str(tmp / "missing.png")}),
            NewItem("text", {"text": "no image here"}),
        ],
    )
    ids = {it.external_id: it.id for it in store.list_items(pid)}
    r = client.get(f"/media/items/{ids['txt']}")
    assert r.status_code == 422 and "secret.txt" in r.json()["detail"]
    assert client.get(f"/media/items/{ids['gone']}").status_code == 404
    assert client.get(f"/media/items/{ids['text']}").status_code == 404
    assert client.get("/media/items/999").status_code == 404


# --------------------------------------------------------------------------- keywords


def test_keywords_from_metadata_then_tfidf(setup):
    client, store, _ = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(
        pid,
        [
            NewItem("k", {"text": "anything"}, {"keywords": ["chosen", "words"]}),
            NewItem("a", {"text": "the gum tastes of sugar, sugar everywhere"}),
            NewItem("b", {"text": "the gum is fine"}),
            NewItem("c", {"text": "the gum is stale"}),
            NewItem("t", {"x": 1.0}),
        ],
    )
    ids = {it.external_id: it.id for it in store.list_items(pid)}
    r = client.get(f"/api/items/{ids['k']}/keywords").json()
    assert r == {"keywords": ["chosen", "words"], "source": "metadata"}
    r = client.get(f"/api/items/{ids['a']}/keywords", params={"k": 1}).json()
    # sugar: tf 2, in 1 of 5 documents; gum is in 3 of them: sugar first
    assert r == {"keywords": ["sugar"], "source": "tfidf"}
    assert client.get(f"/api/items/{ids['t']}/keywords").json()["keywords"] == []
    outsider = _user(client, "o", [])
    assert client.get(f"/api/items/{ids['a']}/keywords", headers=outsider).status_code == 404


def test_keywords_k_out_of_range_is_422(setup):
    client, store, _ = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(pid, [NewItem("a", {"text": "gum"})])
    item = store.list_items(pid)[0]
    assert client.get(f"/api/items/{item.id}/keywords", params={"k": 0}).status_code == 422
