"""Store contract of model sources (issue 11) and the job retry backoff, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labelwise.errors import LabelwiseError
from labelwise.storage.base import AlreadyExistsError, NotFound

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _project(store, name="p"):
    return store.create_project(name, "multiclass", ["a", "b"])


def test_model_source_defaults_to_builtin_and_is_set(store):
    pid = _project(store)
    ms = store.get_model_source(pid)
    assert (ms.project_id, ms.source, ms.endpoint, ms.updated) == (pid, "builtin", None, None)
    got = store.set_model_source(pid, "endpoint", " http://127.0.0.1:9/m ", now=T0)
    assert (got.source, got.endpoint, got.updated) == ("endpoint", "http://127.0.0.1:9/m", T0)
    assert store.get_model_source(pid) == got
    later = T0 + timedelta(seconds=5)
    store.set_model_source(pid, "builtin", now=later)  # endpoint cleared, one row per project
    assert store.get_model_source(pid) == type(got)(pid, "builtin", None, later)


def test_model_source_is_checked(store):
    pid = _project(store)
    with pytest.raises(LabelwiseError, match="source"):
        store.set_model_source(pid, "magic")
    with pytest.raises(LabelwiseError, match="needs the endpoint's URL"):
        store.set_model_source(pid, "endpoint")
    with pytest.raises(NotFound):
        store.set_model_source(pid + 99, "builtin")
    with pytest.raises(NotFound):
        store.get_model_source(pid + 99)
    assert store.get_model_source(pid).source == "builtin"  # nothing written


def test_model_uploads_are_versioned_per_project_and_kind(store):
    pid, other = _project(store, "a"), _project(store, "b")
    u1 = store.create_model_upload(
        pid, "predictions", version=1, origin="upload", path="/x/p1", n_rows=3, n_cols=2,
        classes=["a", "b"], model_version="preds.csv", now=T0,
    )  # fmt: skip
    u2 = store.create_model_upload(
        pid, "predictions", version=2, origin="endpoint", path="/x/p2", n_rows=4, n_cols=2,
        classes=["a", "b"], model_version="m-7", now=T0,
    )  # fmt: skip
    e1 = store.create_model_upload(
        pid, "embeddings", version=1, origin="upload", path="/x/e1", n_rows=4, n_cols=8, now=T0
    )
    store.create_model_upload(
        other, "embeddings", version=1, origin="upload", path="/y", n_rows=1, n_cols=1, now=T0
    )
    up = store.get_model_upload(u2)
    assert (up.id, up.project_id, up.kind, up.version, up.origin, up.path) == (
        u2, pid, "predictions", 2, "endpoint", "/x/p2",
    )  # fmt: skip
    assert (up.n_rows, up.n_cols, up.classes, up.model_version, up.created) == (
        4, 2, ("a", "b"), "m-7", T0,
    )  # fmt: skip
    assert [u.id for u in store.list_model_uploads(pid)] == [e1, u1, u2]  # kind, then version
    assert [u.id for u in store.list_model_uploads(pid, "predictions")] == [u1, u2]
    assert store.get_model_upload(e1).classes == ()
    assert store.find_latest_model_upload(pid, "predictions").id == u2
    assert store.find_latest_model_upload(pid, "predictions", origin="upload").id == u1
    assert store.find_latest_model_upload(other, "predictions") is None
    with pytest.raises(AlreadyExistsError, match="version 2"):
        store.create_model_upload(
            pid, "predictions", version=2, origin="upload", path="/z", n_rows=1, n_cols=2
        )
    assert len(store.list_model_uploads(pid)) == 3  # the clash wrote nothing
    with pytest.raises(NotFound):
        store.get_model_upload(u2 + 100)


def test_model_upload_fields_are_checked(store):
    pid = _project(store)
    kw = dict(version=1, origin="upload", path="/x", n_rows=1, n_cols=2)
    with pytest.raises(LabelwiseError, match="kind"):
        store.create_model_upload(pid, "weights", **kw)
    with pytest.raises(LabelwiseError, match="origin"):
        store.create_model_upload(pid, "predictions", **{**kw, "origin": "ftp"})
    with pytest.raises(LabelwiseError, match="n_cols"):
        store.create_model_upload(pid, "predictions", **{**kw, "n_cols": 0})
    with pytest.raises(NotFound):
        store.create_model_upload(pid + 99, "predictions", **kw)
    assert store.list_model_uploads(pid) == []


def test_retry_job_with_backoff_is_not_claimed_before_its_time(store):
    pid = _project(store)
    jid = store.create_job("predict", pid, now=T0)
    assert store.claim_next_job("w1", now=T0).id == jid
    later = T0 + timedelta(seconds=30)
    store.retry_job(jid, "w1", "ModelEndpointError: timed out", now=T0, not_before=later)
    job = store.get_job(jid)
    assert (job.status, job.not_before, job.error, job.attempts) == (
        "queued", later, "ModelEndpointError: timed out", 1,
    )  # fmt: skip
    assert store.claim_next_job("w2", now=T0 + timedelta(seconds=29)) is None
    other = store.create_job("retrain", pid, now=T0)  # a job behind it is not held up
    assert store.claim_next_job("w2", now=T0 + timedelta(seconds=29)).id == other
    again = store.claim_next_job("w2", now=later)
    assert (again.id, again.attempts) == (jid, 2)
    store.retry_job(jid, "w2", "again", now=later)  # no backoff: claimable at once
    assert store.get_job(jid).not_before is None
    assert store.claim_next_job("w3", now=later).id == jid
