"""The page routes without a browser: HTML shells, static files, item images, keywords."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
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


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    "path", ["/", "/login", "/projects/new", "/projects/1/label", "/projects/1/dashboard"]
)
def test_pages_are_html_without_a_token(setup, path):
    client, _, _ = setup
    r = client.get(path, headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="' in r.text and 'role="status"' in r.text


@pytest.mark.parametrize(
    "name", ["app.js", "label.js", "dashboard.js", "forms.js", "project_admin.js", "style.css"]
)
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


def test_keywords_from_metadata_then_none_without_a_model(setup):
    client, store, _ = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(
        pid,
        [
            NewItem("k", {"text": "anything"}, {"keywords": ["chosen", "words"]}),
            NewItem("a", {"text": "the gum tastes of sugar, sugar everywhere"}),
            NewItem("t", {"x": 1.0}),
        ],
    )
    ids = {it.external_id: it.id for it in store.list_items(pid)}
    r = client.get(f"/api/items/{ids['k']}/keywords").json()
    assert r == {"keywords": ["chosen", "words"], "source": "metadata"}
    # no model yet: no highlights (rare words are not cues for the classes)
    assert client.get(f"/api/items/{ids['a']}/keywords").json() == {
        "keywords": [],
        "source": "none",
    }
    assert client.get(f"/api/items/{ids['t']}/keywords").json()["keywords"] == []
    outsider = _user(client, "o", [])
    assert client.get(f"/api/items/{ids['a']}/keywords", headers=outsider).status_code == 404


TEXTS = {
    "g1": "great gum, great taste",
    "g2": "a great lemon drink",
    "g3": "great value boxes",
    "o1": "stale gum, awful taste",
    "o2": "awful lemon drink",
    "o3": "awful boxes arrived",
}


def _import_model(client, store, tmp_path, pid, model_factory):
    import joblib

    from labelwise.service import rounds
    from labelwise.service.features import project_features

    settings = client.app.state.settings
    fm = project_features(store, pid, settings)
    y = [
        "great" if store.get_item(int(i)).external_id.startswith("g") else "other"
        for i in fm.item_ids
    ]
    model = model_factory().fit(fm.X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    rounds.import_model(store, pid, tmp_path / "m.joblib", settings=settings)
    return model


def test_keywords_are_what_a_linear_model_weighs(setup):
    from sklearn.linear_model import LogisticRegression

    client, store, tmp_path = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(pid, [NewItem(k, {"text": v}) for k, v in TEXTS.items()])
    ids = {it.external_id: it.id for it in store.list_items(pid)}
    _import_model(client, store, tmp_path, pid, lambda: LogisticRegression(C=10))
    r = client.get(f"/api/items/{ids['g2']}/keywords", params={"k": 2}).json()
    assert (r["source"], r["label"]) == ("model", "great")
    # "great" is the class cue, not the rare topic word "lemon" (in one text of each class)
    assert r["keywords"][0] == "great" and r["weights"][0] > 0
    r = client.get(f"/api/items/{ids['o3']}/keywords").json()
    assert (r["label"], r["keywords"][0]) == ("other", "awful")


def test_no_keywords_from_a_model_that_is_not_linear(setup):
    from sklearn.naive_bayes import MultinomialNB

    client, store, tmp_path = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(pid, [NewItem(k, {"text": v}) for k, v in TEXTS.items()])
    ids = {it.external_id: it.id for it in store.list_items(pid)}
    _import_model(client, store, tmp_path, pid, MultinomialNB)
    r = client.get(f"/api/items/{ids['g2']}/keywords").json()
    assert r == {"keywords": [], "source": "none"}


def test_keywords_k_out_of_range_is_422(setup):
    client, store, _ = setup
    pid = store.create_project("reviews", "binary", ["great", "other"])
    store.create_items(pid, [NewItem("a", {"text": "gum"})])
    item = store.list_items(pid)[0]
    assert client.get(f"/api/items/{item.id}/keywords", params={"k": 0}).status_code == 422
