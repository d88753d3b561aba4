"""The service's rounds on the real two-node Ray cluster (``select_backend="ray"``).

Two stores hold the same digits project; one selects locally, the other on the cluster. After
the same cold-start round and the same answers, the worker's retrain starts round 2 in each:
the queued items and their priorities must be identical, and the cluster must have done the
selection (a strategy without a distributed plan falls back to local and still agrees).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from labelwise.service.rounds import request_round, selector_for, start_round
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.storage.base import NewItem
from labelwise.storage.memory import InMemoryStore

pytestmark = pytest.mark.timeout(300)

N_POOL, N_VAL = 900, 200


def _project(tmp_path, strategy: str) -> tuple[InMemoryStore, int, dict[int, str]]:
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(X.shape[0])[: N_POOL + N_VAL]
    X, y = (X[order] / 16.0).astype(np.float32), y[order].astype(str)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"digits-{strategy}.npy"
    np.save(path, X)
    store = InMemoryStore()
    pid = store.create_project(
        "digits",
        "multiclass",
        [str(c) for c in range(10)],
        strategy=strategy,
        cold_start_strategy="random",
        batch_size=40,
        strategy_params={"random_state": 7},
    )
    items = [
        NewItem(
            external_id=f"d{i:04d}",
            payload={},
            metadata={"split": "validation"} if i >= N_POOL else {},
            features_path=str(path),
            features_row=i,
            label=y[i] if i >= N_POOL else None,
        )
        for i in range(X.shape[0])
    ]
    store.create_items(pid, items)
    truth = {it.id: y[int(it.external_id[1:])] for it in store.list_items(pid)}
    return store, pid, truth


def _two_rounds(tmp_path, strategy: str, settings: Settings) -> list[tuple[int, float]]:
    """Round 1 (cold start), answered with the truth; the worker retrains and starts round 2."""
    from labelwise.service.rounds import submit_annotation

    store, pid, truth = _project(tmp_path, strategy)
    annotator = store.create_annotator("ann")
    store.add_member(pid, annotator)
    assert start_round(store, pid, settings=settings) is not None
    while (task := store.claim_next_task(pid, annotator)) is not None:
        submit_annotation(store, task.id, annotator, truth[task.item_id], settings=settings)
    job = Worker(store, settings, worker_id="w").run_once()
    assert (job.kind, job.status, job.error) == ("retrain", "done", None)
    second = store.list_rounds(pid)[-1]
    assert second.number == 2
    return sorted(
        (t.item_id, round(t.priority, 9)) for t in store.list_tasks(pid, round_id=second.id)
    )


@pytest.mark.parametrize(
    ("strategy", "backend"), [("margin", "ray"), ("kmeans_uncertainty", "ray"), ("badge", "local")]
)
def test_a_round_on_the_cluster_queues_what_a_local_round_queues(
    ray_cluster, tmp_path, strategy, backend
):
    local = Settings(data_dir=tmp_path / "local", random_fraction=0.1)
    on_ray = Settings(
        data_dir=tmp_path / "ray",
        random_fraction=0.1,
        select_backend="ray",
        ray_address=ray_cluster.address,
    )
    expected = _two_rounds(tmp_path / "a", strategy, local)
    got = _two_rounds(tmp_path / "b", strategy, on_ray)
    assert len(expected) == 40
    assert got == expected
    # where round 2's selection ran: badge has no block plan, so it stays local
    assert selector_for(on_ray).last_backend == backend


def test_with_the_ray_backend_the_api_leaves_rounds_to_the_worker(ray_cluster, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data", select_backend="ray", ray_address=ray_cluster.address
    )
    store, pid, _ = _project(tmp_path, "margin")
    job = request_round(store, pid, settings=settings)
    assert (job.kind, job.status, job.payload["reason"]) == (
        "select",
        "queued",
        "select on the Ray cluster",
    )
    assert request_round(store, pid, settings=settings).id == job.id  # no second job
    assert store.list_rounds(pid) == []
    done = Worker(store, settings, worker_id="w").run_once()
    assert (done.id, done.status, done.error) == (job.id, "done", None)
    (rnd,) = store.list_rounds(pid)
    assert len(store.list_tasks(pid, round_id=rnd.id)) == 40


def test_local_backend_has_no_selector():
    assert selector_for(Settings()) is None
