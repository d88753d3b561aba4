"""Labeling latency in the service (issue 13): stale-task withdrawal after a retrain, the next
round started early (``round_overlap``), a task released at once (``POST .../release``),
strategy health per retrain, and the batch-size advice, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from labelwise.health import batch_accuracy, prediction_agreement
from labelwise.progress import RandomBaseline, advise_batch_size
from labelwise.service.features import project_features
from labelwise.service.progress import behind_random_note, project_progress
from labelwise.service.rounds import (
    audit_mask,
    load_model,
    run_retrain,
    start_round,
    submit_annotation,
)
from labelwise.service.worker import Worker
from labelwise.strategies.scores import entropy

from .conftest import auth, detail


def _annotators(store, pid, n=2):
    ids = [store.create_annotator(f"ann{i}") for i in range(n)]
    for a in ids:
        store.add_member(pid, a)
    return ids


# --------------------------------------------------------------------------- withdrawal


def test_retrain_withdraws_queued_tasks_outside_the_new_top(
    store, settings, digits_project, annotate
):
    settings = settings.model_copy(update={"retrain_every": 10})
    pid, truth = digits_project(batch_size=30)
    rnd = start_round(store, pid, settings=settings)
    anns = _annotators(store, pid)
    annotate(pid, anns, truth, limit=10, settings=settings)
    held = store.claim_next_task(pid, anns[0])  # an annotator is on it: never withdrawn
    queued = store.list_tasks(pid, status="queued")
    assert len(queued) == 19

    result = run_retrain(store, store.claim_next_job("w"), settings=settings)

    # the expected set, computed here from the stored model: entropy of the new model over
    # the round's candidates (unlabeled items outside the audit subset) and the queued items
    # outside it; a task below the 30th best score goes
    project = store.get_project(pid)
    fm = project_features(store, pid, settings)
    loaded = load_model(store, project, fm)
    q_items = np.array([t.item_id for t in queued], dtype=np.int64)
    q_audit = audit_mask(q_items, 0.1)
    unlabeled = {t.item_id for t in queued} | {
        i.id for i in store.list_items(pid, status="unlabeled")
    }
    pool = np.array(
        sorted(unlabeled - set(q_items.tolist())), dtype=np.int64
    )  # before the withdrawal: the unlabeled ones
    pool = pool[~audit_mask(pool, 0.1)]
    ranked = np.concatenate([q_items[~q_audit], pool])
    proba = loaded.transform(loaded.model.predict_proba(fm.X[fm.positions(ranked)]))
    scores = entropy(proba)
    kth = np.sort(scores)[::-1][29]
    expected = sorted(
        t.id
        for t, s in zip(
            [t for t, a in zip(queued, q_audit, strict=True) if not a],
            scores[: int((~q_audit).sum())],
            strict=True,
        )
        if s < kth
    )
    withdrawn = sorted(t.id for t in store.list_tasks(pid, status="withdrawn"))
    assert expected and withdrawn == expected
    assert result.n_withdrawn == len(expected) and result.n_rescored == 19
    assert store.get_task(held.id).status == "leased"
    for t in store.list_tasks(pid, status="withdrawn"):
        assert store.get_item(t.item_id).status == "unlabeled"
    # audit tasks stay: they are the random baseline
    assert all(t.status == "queued" for t, a in zip(queued, q_audit, strict=True) if a)
    assert store.get_round(rnd.id).closed is None  # the held task and the kept ones remain


def test_withdraw_stale_off_keeps_every_task(store, settings, digits_project, annotate):
    settings = settings.model_copy(update={"retrain_every": 10, "withdraw_stale": False})
    pid, truth = digits_project(batch_size=30)
    start_round(store, pid, settings=settings)
    annotate(pid, _annotators(store, pid), truth, limit=10, settings=settings)
    result = run_retrain(store, store.claim_next_job("w"), settings=settings)
    assert result.n_withdrawn == 0 and store.count_tasks(pid, statuses=("queued",)) == 20


# --------------------------------------------------------------------------- early next round


@pytest.mark.parametrize("overlap", [0, 2])
def test_round_overlap_starts_the_next_round_early(store, settings, digits_project, overlap):
    # batch of 10, no audit share: after 7 answers 3 tasks are open, after 8, 2 = the overlap
    # (withdrawal off: the new model would withdraw round 2's cold picks and start round 3)
    settings = settings.model_copy(
        update={"round_overlap": overlap, "random_fraction": 0.0, "withdraw_stale": False}
    )
    pid, truth = digits_project(batch_size=10)
    r1 = start_round(store, pid, settings=settings)
    (ann,) = _annotators(store, pid, 1)

    def answer():
        t = store.claim_next_task(pid, ann)
        submit_annotation(store, t.id, ann, truth[t.item_id], settings=settings)

    for _ in range(7):
        answer()
    assert store.list_jobs(pid) == []
    answer()  # 2 open tasks left
    jobs = [(j.kind, j.payload.get("reason")) for j in store.list_jobs(pid)]
    if overlap == 0:
        assert jobs == []
        return
    assert jobs == [("select", "round overlap: 2 open task(s) <= 2")]
    answer()  # 1 open: the select job is still waiting, no second one
    assert len(store.list_jobs(pid)) == 1
    Worker(store, settings).run_once()  # the select job: round 2 from the current state
    r1_, r2 = store.list_rounds(pid)
    assert (r1_.id, r1_.closed, r2.number) == (r1.id, None, 2)
    assert store.count_tasks(pid, round_id=r2.id) == 10
    assert store.queue_depth(pid) == 11  # the last task of round 1 plus 10 new ones
    # answering round 1's last task queues the retrain; it closes round 1 and, with 10 open
    # tasks > the overlap, starts no third round
    while (t := store.claim_next_task(pid, ann)).round_id != r1.id:
        store.release_task(t.id, ann)
        store.update_tasks([t.id], priorities=[-1.0])
    submit_annotation(store, t.id, ann, truth[t.item_id], settings=settings)
    job = Worker(store, settings).run_once()
    assert (job.kind, job.status) == ("retrain", "done")
    assert [r.closed is not None for r in store.list_rounds(pid)] == [True, False]


def test_an_overlap_job_starts_no_round_once_one_was_started_since(store, settings, digits_project):
    settings = settings.model_copy(
        update={"round_overlap": 2, "random_fraction": 0.0, "withdraw_stale": False}
    )
    pid, truth = digits_project(batch_size=10)
    start_round(store, pid, settings=settings)
    (ann,) = _annotators(store, pid, 1)
    for _ in range(8):  # 2 open tasks left: the early select job is queued
        t = store.claim_next_task(pid, ann)
        submit_annotation(store, t.id, ann, truth[t.item_id], settings=settings)
    (job,) = store.list_jobs(pid)
    assert job.kind == "select"
    start_round(store, pid, settings=settings)  # e.g. an admin's POST /rounds got there first
    assert len(store.list_rounds(pid)) == 2
    done = Worker(store, settings).run_once()
    assert (done.id, done.status) == (job.id, "done")
    assert len(store.list_rounds(pid)) == 2  # 12 open tasks > the overlap: no third round
    assert store.queue_depth(pid) == 12


# --------------------------------------------------------------------------- release


def test_release_gives_the_task_back_at_once(client, store):
    pid = client.post("/api/projects", json={"name": "p", "classes": ["a", "b"]}).json()["id"]
    items = [{"external_id": f"i{i}", "payload": {"text": f"t {i}"}} for i in range(3)]
    client.post(f"/api/projects/{pid}/items", json={"items": items}).raise_for_status()
    client.post(f"/api/projects/{pid}/rounds").raise_for_status()
    tokens = [
        client.post("/api/annotators", json={"name": n, "projects": [pid]}).json()["token"]
        for n in ("a", "b")
    ]
    t = client.post(f"/api/projects/{pid}/tasks/next", headers=auth(tokens[0])).json()["task"]
    # b cannot release a's task; a can, and the task is queued at once (no lease expiry)
    msg = detail(client.post(f"/api/tasks/{t['id']}/release", headers=auth(tokens[1])), 409)
    assert "not leased by" in msg
    r = client.post(f"/api/tasks/{t['id']}/release", headers=auth(tokens[0]))
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert r.json()["lease_owner"] is None
    again = client.post(f"/api/projects/{pid}/tasks/next", headers=auth(tokens[1])).json()
    assert again["task"]["id"] == t["id"]  # the same task, to the next annotator
    # a second release of a task no longer held is a 409 saying so
    detail(client.post(f"/api/tasks/{t['id']}/release", headers=auth(tokens[0])), 409)


# --------------------------------------------------------------------------- strategy health


def test_retrain_records_strategy_health(store, settings, digits_project, annotate):
    pid, truth = digits_project(strategy="adaptive")
    anns = _annotators(store, pid)
    for _ in range(3):  # cold round, then two rounds of the adaptive strategy
        if not store.list_rounds(pid):
            start_round(store, pid, settings=settings)
        annotate(pid, anns, truth, settings=settings)
        assert Worker(store, settings).run_once().status == "done"
    versions = store.list_model_versions(pid)
    rounds = store.list_rounds(pid)
    h1, h2, h3 = (v.metrics["health"] for v in versions)
    assert (h1["round"], h1["strategy"], h1["arm"]) == (1, "random", None)  # the cold start
    assert h1["agreement"] is None and h1["batch_accuracy"] is None  # no earlier model
    assert h2["strategy"] == "adaptive" and h2["arm"] == rounds[1].strategy.split(":")[1]
    assert h2["n_batch"] == 20

    # the signals, recomputed from the stored artifacts
    a1, a2 = (joblib.load(v.artifact_path) for v in versions[:2])
    assert h2["agreement"] == prediction_agreement(a1["stop_set_pred"], a2["stop_set_pred"])
    fm = project_features(store, pid, settings)
    batch = sorted(t.item_id for t in store.list_tasks(pid, round_id=rounds[1].id))
    y = np.array([truth[i] for i in batch])
    assert h2["batch_accuracy"] == batch_accuracy(a1["model"].predict(fm.X[fm.positions(batch)]), y)
    assert 0 <= h3["class_balance_tvd"] <= 1 and versions[-1].metrics["retrain_seconds"] > 0

    progress = project_progress(store, pid, settings=settings)
    assert [r["model_version_id"] for r in progress.strategy_health] == [v.id for v in versions]
    assert progress.strategy_health[1]["arm"] == h2["arm"]


def test_behind_random_note_needs_the_interval_below():
    ready = dict(ready=True, note="", n_random=40, n_points=3, accuracy=0.80, n_eval=200)
    below = RandomBaseline(ci_low=0.74, ci_high=0.85, active_accuracy=0.70, **ready)
    assert "behind random sampling beyond noise" in behind_random_note(below)
    assert "0.700" in behind_random_note(below) and "[0.740, 0.850]" in behind_random_note(below)
    inside = RandomBaseline(ci_low=0.74, ci_high=0.85, active_accuracy=0.76, **ready)
    assert behind_random_note(inside) is None  # worse than the point, within noise
    not_ready = RandomBaseline(ready=False, note="", active_accuracy=0.1, ci_low=0.9)
    assert behind_random_note(not_ready) is None


# --------------------------------------------------------------------------- batch advice


def test_batch_advice_covers_a_retrain():
    # 1,000 labels/h x 100 s / 3,600 s = 27.8 labels during a retrain -> 30 (steps of 5)
    a = advise_batch_size(1000.0, 100.0)
    assert (a.batch_size, round(a.labels_during_retrain, 1)) == (30, 27.8)
    assert advise_batch_size(1200.0, 90.0).batch_size == 30  # exactly 30, not rounded up to 35
    assert advise_batch_size(120.0, 90.0).batch_size == 5  # 3 labels: the minimum
    assert advise_batch_size(120.0, 90.0, minimum=1, step=1).batch_size == 3
    assert advise_batch_size(None, 90.0).batch_size is None
    assert advise_batch_size(500.0, None).note.startswith("no advice yet")


# --------------------------------------------------------------------------- adaptive, one loop


def test_adaptive_selects_and_chooses_the_same_arms_in_session_simulator_and_service(tmp_path):
    """Same seed: the service's rounds, ``iter_simulate`` and a ``Session`` pick the same items
    with the same bandit arm, round after round (the service records the arm on the round)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from labelwise.loop import Session
    from labelwise.settings import Settings
    from labelwise.simulate import iter_simulate
    from labelwise.storage import InMemoryStore, NewItem

    from .conftest import label_all

    seed, n_pool, batch, n_rounds = 5, 240, 10, 4
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(2).permutation(y.shape[0])
    X = (X[order] / 16.0).astype(np.float32)
    y = y[order].astype(str)
    X_pool, y_pool, X_test, y_test = X[:n_pool], y[:n_pool], X[n_pool:440], y[n_pool:440]

    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    np.save(tmp_path / "pool.npy", X_pool)
    pid = store.create_project(
        "adaptive", "multiclass", [str(c) for c in range(10)], strategy="adaptive",
        cold_start_strategy="random", batch_size=batch,
        strategy_params={"calibration": "none", "random_state": seed},
    )  # fmt: skip
    store.create_items(
        pid,
        [
            NewItem(external_id=f"r{i:05d}", payload={}, features_path=str(tmp_path / "pool.npy"),
                    features_row=i)
            for i in range(n_pool)
        ],
    )  # fmt: skip
    ids = np.array([it.id for it in store.list_items(pid)], dtype=np.int64)
    truth = {int(i): y_pool[k] for k, i in enumerate(ids)}
    ann = store.create_annotator("a")
    store.add_member(pid, ann)

    with threadpool_limits(1):  # bit-identical fits
        service_picks = []
        start_round(store, pid, settings=settings)
        for _ in range(n_rounds):
            rnd = store.list_rounds(pid)[-1]
            service_picks.append(sorted(t.item_id for t in store.list_tasks(pid, round_id=rnd.id)))
            label_all(store, pid, [ann], truth, settings)
            Worker(store, settings).run_once()
        service_arms = [r.strategy.partition(":")[2] for r in store.list_rounds(pid)][:n_rounds]

        session = Session(
            LogisticRegression(max_iter=1000), X_pool, strategy="adaptive", random_state=seed
        )
        session_picks, session_arms = [], []
        for _ in range(n_rounds):
            q = session.query(batch)
            session_picks.append(sorted(ids[q.idx].tolist()))
            session_arms.append(q.arm)
            session.teach(q, y_pool[q.idx])

        points = list(
            iter_simulate(
                (X_pool, y_pool, X_test, y_test), "adaptive", initial_size=batch,
                batch_size=batch, n_rounds=n_rounds - 1, random_state=seed,
            )
        )  # fmt: skip

    assert service_picks == session_picks
    assert [sorted(ids[p.selected].tolist()) for p in points] == session_picks
    assert service_arms == session_arms == [p.arm for p in points]
    assert service_arms[0] == "" and all(service_arms[1:])  # cold start, then the bandit's arms
