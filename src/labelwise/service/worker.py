"""The background worker: claims durable jobs from the store and runs them.

Jobs are rows (:meth:`~labelwise.storage.base.BaseStore.create_job`), so nothing lives only in a
worker's memory: a worker killed mid-job leaves its job ``running`` under a lease that expires
(``settings.job_lease_seconds``), and then any worker claims it again (``attempts`` + 1). The
handlers (:func:`~labelwise.service.rounds.run_retrain` and, for ``select`` jobs,
:func:`~labelwise.service.rounds.start_round`) are written to be re-run from the start.

While a handler runs, a heartbeat thread renews the job's lease every ``heartbeat_seconds`` (a
third of ``settings.job_lease_seconds`` by default, on the wall clock): a retrain that takes
longer than the lease keeps its job, and only a worker that died (no more heartbeats) loses it.
A renewal refused with :class:`~labelwise.storage.base.LeaseError` (another worker took the job
over) stops the heartbeat; the outcome is then left to that worker.

A handler that raises puts the job back in the queue (:meth:`BaseStore.retry_job`, the error
recorded) until ``settings.job_max_attempts`` attempts were made; then the job is ``failed`` with
the last error. An error carrying ``retry_after`` seconds (a model endpoint's
:class:`~labelwise.service.model_sources.ModelEndpointError`: exponential backoff) queues the
retry with ``not_before`` = now + that delay, so no worker claims it earlier. A job whose lease
expired that many times (its workers kept dying) is failed when next claimed. An error of the
job's input itself (:data:`NOT_RETRIED`: a bad row of an imported file, ids that repeat with
other content under ``on_duplicate=fail``) fails the job at once: every attempt would read
the same file and stop at the same line.

Run it in the API process (:meth:`Worker.start_in_thread`, the default) or as its own process
(``labelwise worker`` calls :meth:`Worker.run_forever`); several workers may share a store.

Between jobs, :meth:`Worker.run_forever` also sends one due webhook delivery per turn
(:func:`labelwise.service.webhooks.deliver_next`, leased like jobs).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from labelwise.importers import ImportValidationError
from labelwise.storage.base import BaseStore, DuplicateItemsError, Job, LeaseError, utcnow

__all__ = ["NOT_RETRIED", "Handler", "Worker", "default_handlers"]

log = logging.getLogger(__name__)

# the job's input is wrong: another attempt reads the same input and fails the same way
NOT_RETRIED = (ImportValidationError, DuplicateItemsError)

Handler = Callable[[BaseStore, Job, Any], object]


def _retrain(store: BaseStore, job: Job, settings: Any) -> object:
    from labelwise.service.rounds import run_retrain

    return run_retrain(store, job, settings=settings)


def _select(store: BaseStore, job: Job, settings: Any) -> object:
    from labelwise.errors import LabelwiseError
    from labelwise.service.rounds import OVERLAP_REASON, early_round_due, start_round

    if job.project_id is None:
        raise LabelwiseError(f"select job {job.id} has no project_id; queue it for a project.")
    reason = str((job.payload or {}).get("reason", ""))
    if reason.startswith(OVERLAP_REASON) and not early_round_due(store, job.project_id, settings):
        log.info("select job %d: a round was started since it was queued; none started", job.id)
        return None
    return start_round(store, job.project_id, settings=settings)


def _predict(store: BaseStore, job: Job, settings: Any) -> object:
    from labelwise.service.model_sources import run_predict

    return run_predict(store, job, settings)


def _import(store: BaseStore, job: Job, settings: Any) -> object:
    from labelwise.service.big_imports import run_import

    return run_import(store, job, settings)


def default_handlers() -> dict[str, Handler]:
    """``{"retrain": run_retrain, "select": start_round, "predict": run_predict, "import":
    run_import}`` as ``handler(store, job, settings)``."""
    return {"retrain": _retrain, "select": _select, "predict": _predict, "import": _import}


class Worker:
    """Claims jobs one at a time and runs them.

    Parameters
    ----------
    store : BaseStore
    settings : Settings
        ``job_lease_seconds``, ``job_max_attempts``, ``worker_poll_seconds`` and what the
        handlers read.
    worker_id : str, optional
        Lease owner name; defaults to ``host:pid:random``.
    handlers : mapping of str to callable, optional
        Job kind -> ``handler(store, job, settings)``; defaults to :func:`default_handlers`.
    heartbeat_seconds : float, optional
        Seconds between lease renewals while a job runs; defaults to a third of
        ``settings.job_lease_seconds``.
    """

    def __init__(
        self,
        store: BaseStore,
        settings: Any,
        worker_id: str | None = None,
        handlers: Mapping[str, Handler] | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.handlers = dict(default_handlers() if handlers is None else handlers)
        if heartbeat_seconds is None:
            heartbeat_seconds = settings.job_lease_seconds / 3
        if not heartbeat_seconds > 0:
            from labelwise.errors import LabelwiseError

            raise LabelwiseError(f"heartbeat_seconds must be > 0; got {heartbeat_seconds!r}.")
        self.heartbeat_seconds = float(heartbeat_seconds)

    def _renew_until(self, job: Job, stop: threading.Event) -> None:
        """Renew ``job``'s lease every ``heartbeat_seconds`` until ``stop`` is set."""
        while not stop.wait(self.heartbeat_seconds):
            try:
                self.store.renew_job_lease(job.id, self.worker_id, self.settings.job_lease_seconds)
            except LeaseError:
                log.warning("job %d: lease lost to another worker; heartbeat stopped", job.id)
                return
            except Exception:  # the store hiccupped: try again at the next beat
                log.exception("worker %s: cannot renew the lease of job %d", self.worker_id,
                              job.id)  # fmt: skip

    @contextmanager
    def _heartbeat(self, job: Job) -> Iterator[None]:
        """Keep renewing ``job``'s lease in a daemon thread while the block runs."""
        stop = threading.Event()
        beat = threading.Thread(
            target=self._renew_until, args=(job, stop), name=f"labelwise-heartbeat-{job.id}",
            daemon=True,
        )  # fmt: skip
        beat.start()
        try:
            yield
        finally:  # stopped before the outcome is recorded: no renewal after finish_job
            stop.set()
            beat.join()

    def run_once(self, now: datetime | None = None) -> Job | None:
        """Claim the next job, run it and record the outcome; ``None`` when the queue is empty.

        Returns the job as stored afterwards (``done``, ``failed``, or ``queued`` again for a
        retry).
        """
        s = self.settings
        job = self.store.claim_next_job(
            self.worker_id, lease_seconds=s.job_lease_seconds, now=now, kinds=list(self.handlers)
        )
        if job is None:
            return None
        if job.attempts > s.job_max_attempts:  # earlier workers died holding it
            why = job.error or "its worker stopped before finishing (lease expired)"
            self._finish(job, f"gave up after {job.attempts - 1} attempts; last: {why}", now)
            return self.store.get_job(job.id)
        log.info("worker %s: running %s job %d (attempt %d)", self.worker_id, job.kind, job.id,
                 job.attempts)  # fmt: skip
        try:
            with self._heartbeat(job):
                self.handlers[job.kind](self.store, job, s)
        except Exception as e:  # any failure is recorded on the job, the worker goes on
            error = f"{type(e).__name__}: {e}"
            log.exception("worker %s: job %d failed", self.worker_id, job.id)
            if isinstance(e, NOT_RETRIED):
                self._finish(job, f"{error} (not retried: the input itself is wrong)", now)
            elif job.attempts < s.job_max_attempts:
                # an error with ``retry_after`` (a model endpoint's) backs the job off
                delay = getattr(e, "retry_after", None)
                not_before = None if delay is None else (now or utcnow()) + timedelta(seconds=delay)
                try:
                    self.store.retry_job(
                        job.id, self.worker_id, error, now=now, not_before=not_before
                    )
                except LeaseError:
                    log.warning("job %d: lease lost before retry could be recorded", job.id)
            else:
                self._finish(job, error, now)
        else:
            self._finish(job, None, now)
        return self.store.get_job(job.id)

    def _finish(self, job: Job, error: str | None, now: datetime | None) -> None:
        try:
            self.store.finish_job(job.id, self.worker_id, error=error, now=now)
        except LeaseError:  # our lease expired and another worker took the job over
            log.warning("job %d: lease lost to another worker; leaving it to them", job.id)

    def run_forever(
        self, stop_event: threading.Event | None = None, poll_interval: float | None = None
    ) -> None:
        """Run jobs until ``stop_event`` is set, sleeping ``poll_interval`` seconds (default
        ``settings.worker_poll_seconds``) when there is nothing to do."""
        stop_event = threading.Event() if stop_event is None else stop_event
        poll = self.settings.worker_poll_seconds if poll_interval is None else poll_interval
        while not stop_event.is_set():
            try:
                job = self.run_once()
            except Exception:  # the store is unreachable: wait and retry
                log.exception("worker %s: cannot claim jobs", self.worker_id)
                job = None
            try:  # webhooks (issue 11): one due delivery per turn, between jobs
                from labelwise.service.webhooks import deliver_next

                sent = deliver_next(self.store, self.settings, self.worker_id)
            except Exception:
                log.exception("worker %s: cannot deliver webhooks", self.worker_id)
                sent = None
            if job is None and sent is None:
                stop_event.wait(poll)

    def start_in_thread(
        self, poll_interval: float | None = None
    ) -> tuple[threading.Thread, threading.Event]:
        """Run :meth:`run_forever` in a daemon thread; set the event and join to stop it."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self.run_forever,
            args=(stop, poll_interval),
            name=f"labelwise-worker-{self.worker_id}",
            daemon=True,
        )
        thread.start()
        return thread, stop
