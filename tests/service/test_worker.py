"""The job worker: retries, failures, dead workers, the in-process thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from labelwise.service.rounds import start_round
from labelwise.service.worker import Worker

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _boom(store, job, settings):
    raise ValueError(f"cannot train job {job.id}")


def test_failing_job_is_retried_then_failed_with_the_error(store, settings):
    settings = settings.model_copy(update={"job_max_attempts": 2})
    pid = store.create_project("p", "binary", ["a", "b"])
    jid = store.create_job("retrain", pid, now=T0)
    worker = Worker(store, settings, worker_id="w", handlers={"retrain": _boom})
    first = worker.run_once(now=T0)
    msg = f"ValueError: cannot train job {jid}"
    assert (first.id, first.status, first.attempts, first.error) == (jid, "queued", 1, msg)
    second = worker.run_once(now=T0)
    assert (second.status, second.attempts, second.error) == ("failed", 2, msg)
    assert worker.run_once(now=T0) is None  # failed jobs are not claimed again


def test_killed_worker_job_is_reclaimed_and_completes_once(
    store, settings, digits_project, annotate
):
    pid, truth = digits_project()
    start_round(store, pid, settings=settings)
    ann = store.create_annotator("a")
    annotate(pid, [ann], truth)
    (job,) = store.list_jobs(pid)
    now = datetime.now(UTC)
    # a worker claims the job and dies: nothing else happens until its lease expires
    dead = store.claim_next_job("dead", lease_seconds=settings.job_lease_seconds, now=now)
    assert dead.id == job.id
    alive = Worker(store, settings, worker_id="alive")
    assert alive.run_once(now=now) is None  # still leased by the dead worker
    later = now + timedelta(seconds=settings.job_lease_seconds + 1)
    done = alive.run_once(now=later)
    assert (done.id, done.status, done.worker_id, done.attempts) == (job.id, "done", "alive", 2)
    assert alive.run_once(now=later) is None
    assert len(store.list_model_versions(pid)) == 1
    assert len(store.list_rounds(pid)) == 2


def test_job_whose_workers_keep_dying_is_given_up(store, settings):
    settings = settings.model_copy(update={"job_max_attempts": 1})
    pid = store.create_project("p", "binary", ["a", "b"])
    jid = store.create_job("retrain", pid, now=T0)
    store.claim_next_job("dead", lease_seconds=10, now=T0)
    ran = []
    worker = Worker(store, settings, worker_id="w", handlers={"retrain": lambda *a: ran.append(1)})
    job = worker.run_once(now=T0 + timedelta(seconds=11))
    assert (job.id, job.status, job.attempts) == (jid, "failed", 2) and ran == []
    assert job.error.startswith("gave up after 1 attempts")


def test_select_job_starts_a_round(store, settings, digits_project):
    pid, _ = digits_project()
    store.create_job("select", pid)
    job = Worker(store, settings).run_once()
    assert job.status == "done" and len(store.list_rounds(pid)) == 1


def test_start_in_thread_runs_jobs_until_stopped(store, settings):
    pid = store.create_project("p", "binary", ["a", "b"])
    seen = threading.Event()

    def handler(store_, job, settings_):
        seen.set()

    store.create_job("retrain", pid)
    thread, stop = Worker(store, settings, handlers={"retrain": handler}).start_in_thread(
        poll_interval=0.01
    )
    try:
        assert seen.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [j.status for j in store.list_jobs(pid)] == ["done"]


def test_heartbeat_keeps_a_long_job_past_its_lease(store, settings):
    # the job runs longer than its 1 s lease; the heartbeat renews it every 0.2 s, so a second
    # worker polling meanwhile never takes it over
    settings = settings.model_copy(update={"job_lease_seconds": 1})
    pid = store.create_project("p", "binary", ["a", "b"])
    jid = store.create_job("retrain", pid)
    stolen = []

    def long_job(store_, job, settings_):
        first_lease = job.leased_until
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while datetime.now(UTC) < first_lease + timedelta(seconds=0.5):  # past the first lease
            assert datetime.now(UTC) < deadline
            threading.Event().wait(0.05)
        stolen.append(store_.claim_next_job("other", lease_seconds=1))
        assert store_.get_job(job.id).leased_until > first_lease  # renewed

    worker = Worker(store, settings, worker_id="w", handlers={"retrain": long_job},
                    heartbeat_seconds=0.2)  # fmt: skip
    job = worker.run_once()
    assert stolen == [None]
    assert (job.id, job.status, job.worker_id, job.attempts, job.error) == (
        jid, "done", "w", 1, None,
    )  # fmt: skip


def test_heartbeat_stops_when_the_lease_is_lost(store, settings):
    settings = settings.model_copy(update={"job_lease_seconds": 1})
    pid = store.create_project("p", "binary", ["a", "b"])
    jid = store.create_job("retrain", pid)
    renewals = []
    real_renew = store.renew_job_lease

    def lost_job(store_, job, settings_):
        # the job is no longer ours to renew (here: finished behind the worker's back, as when
        # another worker took it over after the lease expired and completed it)
        store_.finish_job(job.id, "w")
        threading.Event().wait(0.5)  # room for 5 heartbeats: the first is refused and ends it

    class Spy:
        def __getattr__(self, name):
            return getattr(store, name)

        def renew_job_lease(self, *args, **kwargs):
            renewals.append(args)
            return real_renew(*args, **kwargs)

    worker = Worker(Spy(), settings, worker_id="w", handlers={"retrain": lost_job},
                    heartbeat_seconds=0.1)  # fmt: skip
    job = worker.run_once()
    assert job.id == jid and job.status == "done"
    assert len(renewals) == 1  # refused with LeaseError: no more renewals
