"""Signed webhooks (issue 11) against a real receiver: an ``http.server`` on 127.0.0.1 started by
the test, which checks every request with the verification recipe of docs/integrations.md (the
code is read from the docs and run as is).

Events come from real flows (a round answered over the API, the retrain job, the stopping rule,
the label check); retries run on an injected clock (``now=``), never on sleeps.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from labelwise.cli import app as cli_app
from labelwise.service import webhooks
from labelwise.service.app import create_app
from labelwise.service.rounds import start_round
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore, NewItem
from labelwise.storage.base import LeaseError

from .conftest import ADMIN, auth, detail

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
T0 = datetime.now(UTC).replace(microsecond=0)


def _recipe():
    """The ``verify`` function of the docs' Webhooks section, executed from the docs' text."""
    section = DOCS.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "def verify" in b]
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # our own docs
    return code, namespace["verify"]


RECIPE, verify = _recipe()


# --------------------------------------------------------------------------- the receiver


class Receiver:
    """A webhook endpoint on 127.0.0.1: verifies signatures, follows a script of answers.

    ``script`` lists what to do with the next requests: an HTTP status, or ``"timeout"`` (answer
    after ``slow`` seconds, past the sender's timeout); afterwards every verified request gets a
    204 and an unverified one a 400. ``requests`` records each request (headers, body, verified).
    """

    def __init__(self, secret: str = "", script=(), port: int = 0, slow: float = 1.5):
        self.secret, self.script, self.slow = secret, list(script), slow
        self.on_request = None  # called with each request's body before the answer
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify(receiver.secret, body, self.headers.get("Labelwise-Signature", ""))
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "verified": ok}
                )
                if receiver.on_request is not None:
                    receiver.on_request(body)
                action = receiver.script.pop(0) if receiver.script else (204 if ok else 400)
                if action == "timeout":
                    time.sleep(receiver.slow)
                    action = 204
                try:
                    self.send_response(action)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if action >= 300 else b"ok")
                except OSError:  # the sender gave up (timeout)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/labelwise"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self):
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(tmp_path, **kw):
    kw = {"webhook_timeout_seconds": 0.5, "webhook_max_attempts": 3, **kw}
    return Settings(worker="external", data_dir=tmp_path / "data", random_fraction=0.0, **kw)


def _drain(store, settings, now=None, limit=50):
    """Send every due delivery (one worker); the deliveries as stored after each attempt."""
    out = []
    while len(out) < limit and (d := webhooks.deliver_next(store, settings, "w", now=now)):
        out.append(d)
    return out


# --------------------------------------------------------------------------- signature


def test_the_docs_recipe_is_ten_lines_and_checks_a_hand_computed_signature():
    assert len(RECIPE.strip().splitlines()) <= 12
    # openssl dgst -sha256 -hmac whsec_test <<< '1767268800.{"a":1}' (no newline)
    expected = "92b0e01559c03e7aa16335807711cc7ffb950dc8cf9f1f3a03a18c9519313074"
    assert webhooks.sign("whsec_test", 1767268800, b'{"a":1}') == expected
    assert expected in DOCS.read_text()
    now = int(time.time())
    header = webhooks.signature_header("whsec_test", b'{"a":1}', timestamp=now)
    payload = b'{"a":1}'
    assert header == f"t={now},v1={webhooks.sign('whsec_test', now, payload)}"
    assert verify("whsec_test", b'{"a":1}', header)
    assert not verify("whsec_test", b'{"a":2}', header)  # tampered body
    assert not verify("whsec_other", b'{"a":1}', header)  # another secret
    old = webhooks.signature_header("whsec_test", b'{"a":1}', timestamp=now - 301)
    assert not verify("whsec_test", b'{"a":1}', old)  # a replay after 5 minutes
    assert not verify("whsec_test", b'{"a":1}', "t=abc,v1=00")
    assert not verify("whsec_test", b'{"a":1}', "")


def test_retry_schedule_triples_and_is_capped(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert [webhooks.retry_delay(a, s) for a in range(1, 9)] == [
        10, 30, 90, 270, 810, 2430, 3600, 3600,
    ]  # fmt: skip


# --------------------------------------------------------------------------- the API


@pytest.fixture
def api(store, tmp_path):
    settings = _settings(tmp_path)
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as c:
        c.headers.update(auth(ADMIN))
        c.settings = settings
        yield c


def test_create_list_and_secrets(api, store, receiver):
    pid = store.create_project("p", classes=["neg", "pos"])
    r = api.post(
        f"/api/projects/{pid}/webhooks",
        json={"url": receiver.url, "events": ["batch.completed", "stopping.met"]},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 40
    assert created["events"] == ["batch.completed", "stopping.met"]
    assert store.get_webhook(created["id"]).secret == created["secret"]
    listed = api.get(f"/api/projects/{pid}/webhooks").json()
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0] and listed[0]["last_delivery"] is None
    assert "secret" not in api.get(f"/api/webhooks/{created['id']}").json()
    rotated = api.post(f"/api/webhooks/{created['id']}:rotate-secret").json()
    assert rotated["secret"] != created["secret"]
    assert store.get_webhook(created["id"]).secret == rotated["secret"]
    patched = api.patch(f"/api/webhooks/{created['id']}", json={"active": False}).json()
    assert (patched["active"], patched["url"]) == (False, receiver.url)
    assert api.delete(f"/api/webhooks/{created['id']}").status_code == 204
    assert api.get(f"/api/projects/{pid}/webhooks").json() == []
    detail(api.delete(f"/api/webhooks/{created['id']}"), 404)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
        ("http://metadata.google.internal/", "cloud metadata"),
        ("ftp://127.0.0.1/x", "http:// or https://"),
        ("http://no-such-host.invalid/", "cannot resolve host"),
    ],
)
def test_refused_urls_are_422_with_the_reason(api, store, url, why):
    pid = store.create_project("p", classes=["neg", "pos"])
    r = api.post(f"/api/projects/{pid}/webhooks", json={"url": url, "events": ["stopping.met"]})
    assert why in detail(r, 422)
    assert store.list_webhooks(pid) == []


def test_bad_input_and_roles(api, store, receiver):
    pid = store.create_project("p", classes=["neg", "pos"])
    body = {"url": receiver.url, "events": ["batch.done"]}
    assert "events" in detail(api.post(f"/api/projects/{pid}/webhooks", json=body), 422)
    body = {"url": receiver.url, "events": []}
    assert "events" in detail(api.post(f"/api/projects/{pid}/webhooks", json=body), 422)
    body = {"url": receiver.url, "events": ["stopping.met"]}
    detail(api.post("/api/projects/999/webhooks", json=body), 404)
    wid = api.post(f"/api/projects/{pid}/webhooks", json=body).json()["id"]
    bad = {"url": "http://169.254.169.254/"}
    assert "link-local" in detail(api.patch(f"/api/webhooks/{wid}", json=bad), 422)
    assert store.get_webhook(wid).url == receiver.url
    detail(api.get(f"/api/webhooks/{wid}/deliveries", params={"status": "nope"}), 422)
    detail(api.post("/api/deliveries/12345:redeliver"), 404)
    token = api.post("/api/annotators", json={"name": "ana", "projects": [pid]}).json()["token"]
    for method, path in [
        ("post", f"/api/projects/{pid}/webhooks"),
        ("get", f"/api/projects/{pid}/webhooks"),
        ("get", f"/api/webhooks/{wid}/deliveries"),
        ("delete", f"/api/webhooks/{wid}"),
    ]:
        kw = {"json": body} if method == "post" else {}
        r = getattr(api, method)(path, headers=auth(token), **kw)
        assert "admin" in detail(r, 403)


# --------------------------------------------------------------------------- events from real flows


def _digits(store, tmp_path, n_pool=60, n_val=100, **project_kw):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = (X[: n_pool + n_val] / 16.0).astype(np.float32), y[: n_pool + n_val].astype(str)
    np.save(tmp_path / "d.npy", X)
    pid = store.create_project("digits", "multiclass", [str(c) for c in range(10)], **project_kw)
    store.create_items(pid, [
        NewItem(f"d{i:03d}", {}, {"split": "validation"} if i >= n_pool else {},
                features_path=str(tmp_path / "d.npy"), features_row=i,
                label=y[i] if i >= n_pool else None)
        for i in range(n_pool + n_val)
    ])  # fmt: skip
    truth = {it.id: y[int(it.external_id[1:])] for it in store.list_items(pid)}
    return pid, truth


def _answer_all_over_the_api(api, pid, truth):
    token = api.post("/api/annotators", json={"name": "ana", "projects": [pid]}).json()["token"]
    n = 0
    while (
        r := api.post(f"/api/projects/{pid}/tasks/next", headers=auth(token))
    ).status_code == 200:
        task = r.json()["task"]
        label = truth[task["item_id"]]
        answer = api.post(f"/api/tasks/{task['id']}/annotations", headers=auth(token),
                          json={"label": label, "duration_s": 2.0})  # fmt: skip
        assert answer.status_code == 201, answer.text
        n += 1
    assert r.status_code == 204, r.text
    return n


def test_round_retrain_and_stop_reach_the_receiver_signed(api, store, tmp_path, receiver):
    pid, truth = _digits(store, tmp_path, batch_size=20, stopping={"max_labels": 20})
    r = api.post(f"/api/projects/{pid}/webhooks", json={
        "url": receiver.url, "events": ["batch.completed", "model_version.created",
                                        "stopping.met"],
    })  # fmt: skip
    receiver.secret = r.json()["secret"]
    assert api.post(f"/api/projects/{pid}/rounds").status_code == 201
    (rnd,) = store.list_rounds(pid)
    assert _answer_all_over_the_api(api, pid, truth) == 20
    # the answer that completed the batch wrote the delivery before its response
    (pending,) = store.list_deliveries(project_id=pid)
    assert (pending.event, pending.status) == ("batch.completed", "pending")
    assert Worker(store, api.settings).run_once().status == "done"  # the retrain job
    (mv,) = store.list_model_versions(pid)
    assert [d.event for d in store.list_deliveries(project_id=pid)][::-1] == [
        "batch.completed",
        "model_version.created",
        "stopping.met",
    ]  # fmt: skip  (the retrain closing the round emitted no second batch.completed)
    sent = _drain(store, api.settings)
    assert [d.status for d in sent] == ["delivered"] * 3
    assert all(r["verified"] for r in receiver.requests)
    events = {e["type"]: e for e in receiver.events()}
    batch = events["batch.completed"]
    assert batch["project_id"] == pid
    assert batch["data"] == {
        "round_id": rnd.id, "round_number": 1, "strategy": rnd.strategy, "n_tasks": 20,
        "n_done": 20, "n_skipped": 0, "n_labeled_items": 120,  # 100 validation + 20 answers
    }  # fmt: skip
    model = events["model_version.created"]["data"]
    assert (model["model_version_id"], model["round_id"], model["stop"]) == (mv.id, rnd.id, True)
    assert model["metrics"]["n_labels"] == 20
    assert model["metrics"]["accuracy"] == mv.metrics["accuracy"]
    stop = events["stopping.met"]["data"]
    assert stop["reason"] == "budget: 20 of 20 labels used"
    assert stop["criterion"] == "max_labels"
    assert (stop["model_version_id"], stop["n_labels"]) == (mv.id, 20)
    for req in receiver.requests:
        h, body = req["headers"], json.loads(req["body"])
        assert h["Labelwise-Event"] == body["type"]
        assert h["Labelwise-Event-Id"] == body["id"]
        assert h["Content-Type"] == "application/json"
        assert store.get_delivery(int(h["Labelwise-Delivery"])).event_id == body["id"]
    listed = api.get(f"/api/projects/{pid}/webhooks").json()
    assert listed[0]["last_delivery"]["status"] == "delivered"
    assert listed[0]["last_delivery"]["last_status_code"] == 204
    # the retrain job run again (a crash after it emitted) queues nothing twice
    from labelwise.service.rounds import run_retrain

    (first,) = store.list_jobs(pid)
    run_retrain(store, first, settings=api.settings)
    assert len(store.list_deliveries(project_id=pid)) == 3
    # a later retrain that still says stop: a new model version, stopping is not news
    job = store.create_job("retrain", pid, {"round_id": rnd.id})
    run_retrain(store, store.get_job(job), settings=api.settings)
    assert [d.event for d in store.list_deliveries(project_id=pid)] == [
        "model_version.created", "stopping.met", "model_version.created", "batch.completed",
    ]  # fmt: skip


def test_skips_complete_a_batch_too(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid, truth = _digits(store, tmp_path, batch_size=3)
    created = webhooks.create_webhook(store, pid, receiver.url, ["batch.completed"],
                                      settings=settings)  # fmt: skip
    receiver.secret = created.secret
    from labelwise.service.rounds import skip_task, submit_annotation

    rnd = start_round(store, pid, settings=settings)
    ana = store.create_annotator("ana")
    store.add_member(pid, ana)
    t1, t2, t3 = (store.claim_next_task(pid, ana) for _ in range(3))
    submit_annotation(store, t1.id, ana, truth[t1.item_id], settings=settings)
    skip_task(store, t2.id, ana, settings=settings)
    assert store.list_deliveries(project_id=pid) == []  # one task is still leased
    skip_task(store, t3.id, ana, settings=settings)
    assert _drain(store, settings)[0].status == "delivered"
    (event,) = receiver.events()
    assert event["data"]["round_id"] == rnd.id
    assert (event["data"]["n_done"], event["data"]["n_skipped"]) == (1, 2)


def test_label_errors_flagged_lists_the_items_sent_to_review(tmp_path, receiver):
    from tests.service.test_label_check import _project

    store = InMemoryStore()
    settings = _settings(tmp_path)
    pid, _ = _project(store, tmp_path, True)
    created = webhooks.create_webhook(store, pid, receiver.url, ["label_errors.flagged"],
                                      settings=settings)  # fmt: skip
    receiver.secret = created.secret
    store.create_job("retrain", pid, {"reason": "test"})
    assert Worker(store, settings).run_once().status == "done"
    review = sorted(it.id for it in store.list_items(pid, status="review"))
    assert review
    assert [d.status for d in _drain(store, settings)] == ["delivered"]
    (event,) = receiver.events()
    assert event["type"] == "label_errors.flagged"
    assert event["data"]["n_flagged"] == len(review)
    assert event["data"]["item_ids"] == review
    assert event["data"]["external_ids"] == [store.get_item(i).external_id for i in review]
    assert receiver.requests[0]["verified"]


# --------------------------------------------------------------------------- retries


def test_fails_twice_then_accepts_on_the_third_attempt_with_backoff(store, tmp_path):
    settings = _settings(tmp_path)
    receiver = Receiver(script=[500, "timeout"])
    try:
        pid = store.create_project("p", classes=["neg", "pos"])
        created = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                          settings=settings)  # fmt: skip
        receiver.secret = created.secret
        (did,) = webhooks.emit(store, pid, "stopping.met", {"reason": "r"}, key="k", now=T0)
        d = webhooks.deliver_next(store, settings, "w", now=T0)
        assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
        assert d.last_error.startswith("HTTP 500")
        assert d.next_attempt_at == T0 + timedelta(seconds=10)
        assert webhooks.deliver_next(store, settings, "w", now=T0 + timedelta(seconds=9)) is None
        t1 = T0 + timedelta(seconds=10)
        d = webhooks.deliver_next(store, settings, "w", now=t1)
        assert (d.status, d.attempts, d.last_status_code) == ("pending", 2, None)
        assert "timed out after 0.5 s" in d.last_error
        assert d.next_attempt_at == t1 + timedelta(seconds=30)
        assert webhooks.deliver_next(store, settings, "w", now=t1 + timedelta(seconds=29)) is None
        d = webhooks.deliver_next(store, settings, "w", now=t1 + timedelta(seconds=30))
        assert (d.id, d.status, d.attempts, d.last_status_code, d.last_error) == (
            did, "delivered", 3, 204, None,
        )  # fmt: skip
        assert [(h["status_code"], h["error"] is None) for h in d.history] == [
            (500, False), (None, False), (204, True),
        ]  # fmt: skip
        assert [h["next_attempt_at"] for h in d.history] == [
            (T0 + timedelta(seconds=10)).isoformat(), (t1 + timedelta(seconds=30)).isoformat(),
            None,
        ]  # fmt: skip
        # three requests, one event: same id, same bytes, each signed
        bodies = {r["body"] for r in receiver.requests}
        assert len(receiver.requests) == 3 and len(bodies) == 1
        assert all(r["verified"] for r in receiver.requests)
        assert {r["headers"]["Labelwise-Delivery"] for r in receiver.requests} == {str(did)}
    finally:
        receiver.stop()


def test_a_receiver_down_for_every_attempt_loses_nothing(api, store, tmp_path):
    port = _free_port()  # nothing listens there yet: connection refused
    url = f"http://127.0.0.1:{port}/hooks/labelwise"
    pid = store.create_project("p", classes=["neg", "pos"])
    created = api.post(f"/api/projects/{pid}/webhooks",
                       json={"url": url, "events": ["model_version.created"]}).json()  # fmt: skip
    mv = store.create_model_version(pid, metrics={"n_labels": 5, "accuracy": 0.8})
    webhooks.model_version_created(store, pid, mv, now=T0)
    attempts = [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=40)]
    for now in attempts:
        d = webhooks.deliver_next(store, api.settings, "w", now=now)
        assert "ConnectError" in d.last_error
    assert (d.status, d.attempts, d.next_attempt_at) == ("failed", 3, None)
    assert webhooks.deliver_next(store, api.settings, "w", now=T0 + timedelta(days=1)) is None
    shown = api.get(f"/api/webhooks/{created['id']}/deliveries").json()
    assert [(x["status"], x["attempts"], x["last_status_code"]) for x in shown] == [
        ("failed", 3, None),
    ]  # fmt: skip
    assert "ConnectError" in shown[0]["last_error"]
    assert len(shown[0]["history"]) == 3
    assert shown[0]["body"]["data"]["model_version_id"] == mv
    failed = api.get(f"/api/webhooks/{created['id']}/deliveries", params={"status": "failed"})
    assert len(failed.json()) == 1
    assert api.get(f"/api/projects/{pid}/webhooks").json()[0]["last_delivery"]["status"] == (
        "failed"
    )
    receiver = Receiver(secret=created["secret"], port=port)  # back up
    try:
        r = api.post(f"/api/deliveries/{d.id}:redeliver")
        assert r.status_code == 202, r.text
        assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
        (d2,) = _drain(store, api.settings)
        assert (d2.id, d2.status, d2.last_status_code) == (d.id, "delivered", 204)
        (event,) = receiver.events()
        assert event["id"] == d.event_id and receiver.requests[0]["verified"]
        assert event["data"]["model_version_id"] == mv
    finally:
        receiver.stop()


def test_a_tampered_body_fails_verification(receiver, store, tmp_path):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    created = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                      settings=settings)  # fmt: skip
    receiver.secret = created.secret
    webhooks.emit(store, pid, "stopping.met", {"reason": "budget"}, key="k", now=T0)
    (d,) = _drain(store, settings, now=T0)
    assert d.status == "delivered"
    original = receiver.requests[0]
    tampered = original["body"].replace(b"budget", b"BUDGET")
    r = httpx.post(receiver.url, content=tampered, headers={
        "Labelwise-Signature": original["headers"]["Labelwise-Signature"],
        "Content-Type": "application/json",
    })  # fmt: skip
    assert r.status_code == 400
    assert [x["verified"] for x in receiver.requests] == [True, False]


def test_a_refused_address_at_delivery_time_fails_with_the_reason(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    wid = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                  settings=settings).webhook.id  # fmt: skip
    # the name now resolves elsewhere (DNS changed): modelled by the stored URL changing
    store.update_webhook(wid, url="http://169.254.1.1:9/hook")
    webhooks.emit(store, pid, "stopping.met", {}, key="k", now=T0)
    (d,) = _drain(store, settings, now=T0)
    assert (d.status, d.attempts, d.next_attempt_at) == ("failed", 1, None)
    assert d.last_error.startswith("refused: URL host '169.254.1.1' resolves to 169.254.1.1")
    assert receiver.requests == []
    allowed = _settings(tmp_path, outbound_allow=["169.254.1.0/24"])
    webhooks.redeliver(store, d.id, now=T0)
    d = webhooks.deliver_next(store, allowed, "w", now=T0)  # allowed: tried (nothing there)
    assert not d.last_error.startswith("refused")


def test_a_delivery_whose_worker_died_is_sent_by_another(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    created = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                      settings=settings)  # fmt: skip
    receiver.secret = created.secret
    (did,) = webhooks.emit(store, pid, "stopping.met", {}, key="k", now=T0)
    store.claim_next_delivery("dead", lease_seconds=30, now=T0)  # and never reports
    with pytest.raises(LeaseError):
        webhooks.redeliver(store, did, now=T0)
    assert webhooks.deliver_next(store, settings, "w", now=T0 + timedelta(seconds=29)) is None
    d = webhooks.deliver_next(store, settings, "w", now=T0 + timedelta(seconds=31))
    assert (d.status, d.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 1


def test_the_worker_loop_sends_deliveries(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    created = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                      settings=settings)  # fmt: skip
    receiver.secret = created.secret
    (did,) = webhooks.emit(store, pid, "stopping.met", {"reason": "r"}, key="k")
    thread, stop = Worker(store, settings).start_in_thread(poll_interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while store.get_delivery(did).status != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert store.get_delivery(did).status == "delivered"
    assert receiver.requests[0]["verified"]


# --------------------------------------------------------------------------- CLI


def test_cli_webhook_add_and_list(tmp_path, monkeypatch, receiver):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(cli_app, ["project", "create", "p", "--classes", "neg,pos"]).exit_code == 0
    res = runner.invoke(cli_app, ["webhook", "list", "p"])
    assert res.exit_code == 0 and "no webhooks" in res.output
    res = runner.invoke(cli_app, ["webhook", "add", "p", receiver.url, "--event",
                                  "batch.completed", "--event", "stopping.met"])  # fmt: skip
    assert res.exit_code == 0, res.output
    secret = res.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    res = runner.invoke(cli_app, ["webhook", "list", "p"])
    assert res.exit_code == 0, res.output
    assert f"active  {receiver.url}  batch.completed, stopping.met  last: none" in res.stdout
    assert secret not in res.output
    from labelwise.storage import open_store

    with open_store(url) as store:
        pid = store.find_project("p").id
        (wh,) = store.list_webhooks(pid)
        assert wh.secret == secret
        receiver.secret = secret
        webhooks.emit(store, pid, "stopping.met", {}, key="k")
        assert _drain(store, _settings(tmp_path))[0].status == "delivered"
    res = runner.invoke(cli_app, ["webhook", "list", "p", "--json"])
    (listed,) = json.loads(res.stdout)
    assert "secret" not in listed
    assert (listed["last_delivery"]["status"], listed["last_delivery"]["last_status_code"]) == (
        "delivered", 204,
    )  # fmt: skip
    assert "last: delivered (HTTP 204)" in runner.invoke(cli_app, ["webhook", "list", "p"]).stdout
    res = runner.invoke(cli_app, ["webhook", "add", "p", "http://169.254.169.254/", "--event",
                                  "stopping.met"])  # fmt: skip
    assert res.exit_code == 2 and "link-local" in res.output
    res = runner.invoke(cli_app, ["webhook", "add", "p", receiver.url, "--event", "nope"])
    assert res.exit_code == 2 and "event" in res.output
    res = runner.invoke(cli_app, ["webhook", "deliveries", str(wh.id)])
    assert res.exit_code == 0, res.output
    (line,) = res.stdout.strip().splitlines()
    did = int(line.split()[0])
    assert line == f"{did}  stopping.met  delivered  attempts 1  HTTP 204"
    res = runner.invoke(cli_app, ["webhook", "deliveries", str(wh.id), "--status", "failed"])
    assert res.exit_code == 0 and res.stdout == ""
    res = runner.invoke(cli_app, ["webhook", "deliveries", str(wh.id), "--status", "nope"])
    assert res.exit_code == 2 and "status" in res.output
    res = runner.invoke(cli_app, ["webhook", "redeliver", str(did)])
    assert res.exit_code == 0 and "pending again" in res.stdout
    with open_store(url) as store:
        assert (store.get_delivery(did).status, store.get_delivery(did).attempts) == ("pending", 0)
    assert runner.invoke(cli_app, ["webhook", "remove", str(wh.id)]).exit_code == 0
    res = runner.invoke(cli_app, ["webhook", "list", "p"])
    assert "no webhooks" in res.output
    for args in (["remove", str(wh.id)], ["deliveries", str(wh.id)], ["redeliver", str(did)]):
        res = runner.invoke(cli_app, ["webhook", *args])
        assert res.exit_code == 2 and "not found" in res.output, res.output


def test_a_webhook_deleted_during_an_attempt_ends_it_quietly(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    wid = webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"],
                                  settings=settings).webhook.id  # fmt: skip
    webhooks.emit(store, pid, "stopping.met", {}, key="k", now=T0)
    receiver.on_request = lambda body: store.delete_webhook(wid)
    assert webhooks.deliver_next(store, settings, "w", now=T0) is None
    assert len(receiver.requests) == 1
    assert store.list_deliveries(project_id=pid) == []
    assert webhooks.deliver_next(store, settings, "w", now=T0 + timedelta(hours=1)) is None


def test_emit_stores_plain_json_and_is_idempotent(store, tmp_path, receiver):
    settings = _settings(tmp_path)
    pid = store.create_project("p", classes=["neg", "pos"])
    webhooks.create_webhook(store, pid, receiver.url, ["stopping.met"], settings=settings)
    data = {"n": np.int64(3), "accuracy": np.float32(0.5), "ids": np.arange(2), "at": T0}
    (did,) = webhooks.emit(store, pid, "stopping.met", data, key="mv:7", now=T0)
    d = store.get_delivery(did)
    assert d.body["data"] == {"n": 3, "accuracy": 0.5, "ids": [0, 1], "at": T0.isoformat()}
    assert d.event_id == webhooks.event_id(pid, "stopping.met", "mv:7") == d.body["id"]
    assert d.body["created_at"] == T0.isoformat() and d.body["type"] == "stopping.met"
    assert webhooks.emit(store, pid, "stopping.met", data, key="mv:7", now=T0) == []
    assert webhooks.emit(store, pid, "batch.completed", {}, key="k", now=T0) == []  # not subscribed
