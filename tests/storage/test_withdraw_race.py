"""Stale-task withdrawal racing concurrent claims on real databases (issue 13).

A retrain withdraws the queued tasks a newer model no longer wants while annotators keep
claiming: a task must end either claimed (and kept) or withdrawn, never both.
"""

from __future__ import annotations

import threading

import pytest

from labelwise.storage.base import NewItem
from labelwise.testing.store import T0

N_TASKS = 120
N_ANNOTATORS = 6
CLAIMS_EACH = 8


def _race(store) -> tuple[dict[int, int], list[int]]:
    """Annotators claim while one thread withdraws every task; returns (claims, withdrawn)."""
    pid = store.create_project("race", "multiclass", ["neg", "pos"])
    store.create_items(pid, [NewItem(f"x{i}", {"text": f"t{i}"}) for i in range(N_TASKS)])
    item_ids = [store.find_item(pid, f"x{i}").id for i in range(N_TASKS)]
    rid = store.create_round(pid, "entropy", now=T0)
    task_ids = store.create_tasks(rid, item_ids, now=T0)
    annotators = [store.create_annotator(f"a{i}") for i in range(N_ANNOTATORS)]
    start = threading.Barrier(N_ANNOTATORS + 1)
    claims: dict[int, int] = {}
    withdrawn: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    for aid in annotators:  # one claim each before the race: those must survive it too
        claims[store.claim_next_task(pid, aid, lease_seconds=3600).id] = aid

    def annotate(aid: int) -> None:
        try:
            start.wait()
            for _ in range(CLAIMS_EACH):
                task = store.claim_next_task(pid, aid, lease_seconds=3600)
                if task is None:
                    return
                with lock:
                    assert task.id not in claims, "one task leased twice"
                    claims[task.id] = aid
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    def withdraw() -> None:
        try:
            start.wait()
            # half the tasks one by one (many short transactions), then the rest at once
            for tid in task_ids[: N_TASKS // 2]:
                withdrawn.extend(store.withdraw_tasks([tid]))
            withdrawn.extend(store.withdraw_tasks(task_ids))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=annotate, args=(a,)) for a in annotators]
    threads.append(threading.Thread(target=withdraw))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return claims, withdrawn


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
def test_no_task_is_both_claimed_and_withdrawn(backend, request):
    store = request.getfixturevalue(backend)
    claims, withdrawn = _race(store)
    assert len(claims) >= N_ANNOTATORS and withdrawn
    assert not set(claims) & set(withdrawn)
    pid = store.list_projects()[0].id
    tasks = {t.id: t for t in store.list_tasks(pid)}
    for tid, aid in claims.items():  # every claimed task survived, still its annotator's
        assert (tasks[tid].status, tasks[tid].lease_owner) == ("leased", aid)
        assert store.get_item(tasks[tid].item_id).status == "queued"
    for tid in withdrawn:
        assert (tasks[tid].status, tasks[tid].lease_owner) == ("withdrawn", None)
        assert store.get_item(tasks[tid].item_id).status == "unlabeled"
    # the final withdrawal saw every task: each is claimed or withdrawn, none left queued
    assert sorted([*claims, *withdrawn]) == sorted(tasks)
