"""Webhooks and their deliveries (issue 11): the store contract on memory, SQLite, PostgreSQL.

``store`` comes from tests/storage/conftest.py, parametrised over every backend.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from labelwise.errors import LabelwiseError
from labelwise.storage.base import LeaseError, NotFound

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "s" * 40


def _hook(store, pid, events=("batch.completed",), url="http://127.0.0.1:9/hook", **kw):
    return store.create_webhook(pid, url, list(events), SECRET, now=T0, **kw)


def _body(event_id, event="batch.completed"):
    return {"id": event_id, "type": event, "project_id": 1, "data": {"round_id": 3, "n": [1, 2]}}


def test_webhook_round_trip(store):
    pid = store.create_project("p", classes=["a", "b"])
    wid = _hook(store, pid, events=["stopping.met", "batch.completed", "stopping.met"])
    w = store.get_webhook(wid)
    assert (w.id, w.project_id, w.url, w.secret, w.active) == (
        wid, pid, "http://127.0.0.1:9/hook", SECRET, True,
    )  # fmt: skip
    assert w.events == ("batch.completed", "stopping.met")  # sorted, repeats dropped
    assert (w.created, w.updated) == (T0, T0)
    other = store.create_project("q", classes=["a", "b"])
    wid2 = _hook(store, other)
    assert [x.id for x in store.list_webhooks(pid)] == [wid]
    assert [x.id for x in store.list_webhooks()] == [wid, wid2]


def test_webhook_update_and_delete(store):
    pid = store.create_project("p", classes=["a", "b"])
    wid = _hook(store, pid)
    t1 = T0 + timedelta(minutes=5)
    w = store.update_webhook(
        wid, events=["model_version.created"], secret="n" * 32, active=False, now=t1
    )
    assert (w.events, w.secret, w.active, w.url, w.updated) == (
        ("model_version.created",), "n" * 32, False, "http://127.0.0.1:9/hook", t1,
    )  # fmt: skip
    assert store.get_webhook(wid) == w
    store.delete_webhook(wid)
    with pytest.raises(NotFound, match="webhook"):
        store.get_webhook(wid)
    with pytest.raises(NotFound):
        store.delete_webhook(wid)
    with pytest.raises(NotFound):
        store.update_webhook(wid, active=True)


@pytest.mark.parametrize(
    "events", [[], ["batch.done"], "batch.completed", ["batch.completed", "nope"]]
)
def test_webhook_events_are_checked(store, events):
    pid = store.create_project("p", classes=["a", "b"])
    with pytest.raises(LabelwiseError, match="event"):
        store.create_webhook(pid, "http://127.0.0.1/h", events, SECRET)
    assert store.list_webhooks(pid) == []


def test_webhook_bad_fields(store):
    pid = store.create_project("p", classes=["a", "b"])
    with pytest.raises(LabelwiseError, match="url"):
        store.create_webhook(pid, "", ["batch.completed"], SECRET)
    with pytest.raises(LabelwiseError, match="url"):
        store.create_webhook(pid, "http://x/" + "a" * 2000, ["batch.completed"], SECRET)
    with pytest.raises(LabelwiseError, match="secret"):
        store.create_webhook(pid, "http://x/", ["batch.completed"], "short")
    with pytest.raises(NotFound, match="project"):
        store.create_webhook(999, "http://x/", ["batch.completed"], SECRET)
    assert store.list_webhooks() == []


def test_create_deliveries_fans_out_to_active_subscribers_once(store):
    pid = store.create_project("p", classes=["a", "b"])
    both = _hook(store, pid, events=["batch.completed", "stopping.met"])
    only_stop = _hook(store, pid, events=["stopping.met"])
    inactive = _hook(store, pid, events=["batch.completed"], active=False)
    other = store.create_project("q", classes=["a", "b"])
    _hook(store, other)
    ids = store.create_deliveries(pid, "batch.completed", "evt_1", _body("evt_1"), now=T0)
    assert len(ids) == 1
    d = store.get_delivery(ids[0])
    assert (d.webhook_id, d.project_id, d.event, d.event_id) == (both, pid, "batch.completed",
                                                                 "evt_1")  # fmt: skip
    assert d.body == _body("evt_1")
    assert (d.status, d.attempts, d.next_attempt_at, d.worker_id) == ("pending", 0, T0, None)
    assert (d.last_status_code, d.last_error, d.history) == (None, None, [])
    # the same event again (a job run twice) queues nothing new
    assert store.create_deliveries(pid, "batch.completed", "evt_1", _body("evt_1"), now=T0) == []
    stop = store.create_deliveries(pid, "stopping.met", "evt_2", _body("evt_2"), now=T0)
    assert sorted(store.get_delivery(i).webhook_id for i in stop) == [both, only_stop]
    assert inactive not in {d.webhook_id for d in store.list_deliveries(project_id=pid)}
    with pytest.raises(LabelwiseError, match="event"):
        store.create_deliveries(pid, "nope", "evt_3", {}, now=T0)


def test_list_deliveries_newest_first_with_filters(store):
    pid = store.create_project("p", classes=["a", "b"])
    w1 = _hook(store, pid)
    w2 = _hook(store, pid)
    made = []
    for k in range(3):
        made += store.create_deliveries(pid, "batch.completed", f"e{k}", _body(f"e{k}"), now=T0)
    assert len(made) == 6
    assert [d.id for d in store.list_deliveries(project_id=pid)] == sorted(made, reverse=True)
    of_w1 = [d.id for d in store.list_deliveries(w1)]
    assert of_w1 == sorted((i for i in made if store.get_delivery(i).webhook_id == w1),
                           reverse=True)  # fmt: skip
    assert [d.id for d in store.list_deliveries(w2, limit=1)] == [max(made)]
    assert len(store.list_deliveries(status="pending")) == 6
    assert store.list_deliveries(status="failed") == []
    with pytest.raises(LabelwiseError, match="status"):
        store.list_deliveries(status="nope")
    with pytest.raises(NotFound, match="delivery"):
        store.get_delivery(10_000)


def test_delete_webhook_deletes_its_deliveries(store):
    pid = store.create_project("p", classes=["a", "b"])
    w1, w2 = _hook(store, pid), _hook(store, pid)
    store.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)
    store.delete_webhook(w1)
    assert [d.webhook_id for d in store.list_deliveries(project_id=pid)] == [w2]


def test_claim_takes_due_deliveries_earliest_first(store):
    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    late = store.create_deliveries(pid, "batch.completed", "late", _body("late"),
                                   now=T0 + timedelta(seconds=30))[0]  # fmt: skip
    early = store.create_deliveries(pid, "batch.completed", "early", _body("early"), now=T0)[0]
    assert store.claim_next_delivery("w", now=T0 - timedelta(seconds=1)) is None  # nothing due
    d = store.claim_next_delivery("w", lease_seconds=60, now=T0 + timedelta(seconds=31))
    assert d.id == early
    assert (d.status, d.worker_id, d.attempts) == ("delivering", "w", 1)
    assert d.next_attempt_at == T0 + timedelta(seconds=91)  # the lease's end
    assert store.claim_next_delivery("w2", now=T0 + timedelta(seconds=31)).id == late
    assert store.claim_next_delivery("w3", now=T0 + timedelta(seconds=31)) is None


def test_finish_delivery_outcomes_and_history(store):
    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    did = store.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)[0]
    store.claim_next_delivery("w", now=T0)
    retry = T0 + timedelta(seconds=10)
    with pytest.raises(LeaseError, match="not held"):
        store.finish_delivery(did, "other", status_code=200, now=T0)
    d = store.finish_delivery(did, "w", status_code=500, error="HTTP 500", retry_at=retry, now=T0)
    assert (d.status, d.attempts, d.next_attempt_at, d.worker_id) == ("pending", 1, retry, None)
    assert (d.last_status_code, d.last_error) == (500, "HTTP 500")
    assert d.history == [{"attempt": 1, "at": T0.isoformat(), "status_code": 500,
                          "error": "HTTP 500", "next_attempt_at": retry.isoformat()}]  # fmt: skip
    assert store.claim_next_delivery("w", now=retry - timedelta(seconds=1)) is None
    assert store.claim_next_delivery("w", now=retry).attempts == 2
    d = store.finish_delivery(did, "w", status_code=204, now=retry)
    assert (d.status, d.next_attempt_at, d.last_status_code, d.last_error) == (
        "delivered", None, 204, None,
    )  # fmt: skip
    assert [h["status_code"] for h in d.history] == [500, 204]
    assert store.get_delivery(did) == d
    with pytest.raises(LeaseError):
        store.finish_delivery(did, "w", status_code=200, now=retry)


def test_finish_without_retry_fails_and_requeue_sends_again(store):
    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    did = store.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)[0]
    store.claim_next_delivery("w", now=T0)
    with pytest.raises(LeaseError, match="being sent"):
        store.requeue_delivery(did, now=T0)
    d = store.finish_delivery(did, "w", error="connection refused", now=T0)
    assert (d.status, d.next_attempt_at, d.last_status_code) == ("failed", None, None)
    assert store.claim_next_delivery("w", now=T0 + timedelta(days=1)) is None
    t1 = T0 + timedelta(hours=2)
    d = store.requeue_delivery(did, now=t1)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 0, t1)
    assert d.last_error == "connection refused" and len(d.history) == 1  # history kept
    assert store.claim_next_delivery("w", now=t1).id == did


def test_expired_delivery_lease_is_claimed_again(store):
    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    did = store.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)[0]
    store.claim_next_delivery("dead", lease_seconds=60, now=T0)
    assert store.claim_next_delivery("w", now=T0 + timedelta(seconds=59)) is None
    d = store.claim_next_delivery("w", lease_seconds=60, now=T0 + timedelta(seconds=61))
    assert (d.id, d.worker_id, d.attempts) == (did, "w", 2)
    with pytest.raises(LeaseError):  # the dead worker's late report is refused
        store.finish_delivery(did, "dead", status_code=200, now=T0 + timedelta(seconds=62))


def test_history_keeps_the_newest_attempts(store):
    from labelwise.storage.base import MAX_DELIVERY_HISTORY

    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    did = store.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)[0]
    for k in range(MAX_DELIVERY_HISTORY + 3):
        store.claim_next_delivery("w", now=T0)
        d = store.finish_delivery(did, "w", status_code=500 + k % 3, error=f"e{k}", retry_at=T0,
                                  now=T0)  # fmt: skip
    assert len(d.history) == MAX_DELIVERY_HISTORY
    assert d.history[-1]["attempt"] == MAX_DELIVERY_HISTORY + 3
    assert d.history[0]["error"] == "e3"


def test_concurrent_claims_never_share_a_delivery(store):
    pid = store.create_project("p", classes=["a", "b"])
    _hook(store, pid)
    made = set()
    for k in range(24):
        made |= set(store.create_deliveries(pid, "batch.completed", f"e{k}", _body(f"e{k}"),
                                            now=T0))  # fmt: skip
    got: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (d := store.claim_next_delivery(name, now=T0 + timedelta(seconds=1))) is not None:
            with lock:
                got.append(d.id)

    threads = [threading.Thread(target=work, args=(f"w{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(made)  # every one once, none twice


def test_sqlite_idle_delivery_poll_takes_no_write_lock(sqlite):
    import sqlalchemy as sa

    pid = sqlite.create_project("p", classes=["a", "b"])
    _hook(sqlite, pid)
    seen: list[str] = []

    @sa.event.listens_for(sqlite._engine, "before_cursor_execute")
    def log(conn, cursor, statement, *args):
        seen.append(statement)

    assert sqlite.claim_next_delivery("w", now=T0) is None
    assert "BEGIN IMMEDIATE" not in seen  # an idle worker's poll is a read
    sqlite.create_deliveries(pid, "batch.completed", "e", _body("e"), now=T0)
    seen.clear()
    assert sqlite.claim_next_delivery("w", now=T0) is not None
    assert "BEGIN IMMEDIATE" in seen
