"""The production loop on memory, SQLite and PostgreSQL with real data (digits)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from labelwise.errors import LabelMismatchError
from labelwise.service import rounds
from labelwise.service.features import project_features, read_manifest
from labelwise.service.rounds import (
    audit_mask,
    load_model,
    run_retrain,
    start_round,
    submit_annotation,
    undo_annotation,
    why_no_round,
)
from labelwise.service.worker import Worker
from labelwise.storage.base import UndoError

CLASSES = [str(c) for c in range(10)]


def _annotators(store, pid, n=2):
    ids = [store.create_annotator(f"ann{i}") for i in range(n)]
    for a in ids:
        store.add_member(pid, a)
    return ids


def test_full_loop(store, settings, digits_project, annotate):
    pid, truth = digits_project()
    rnd = start_round(store, pid, settings=settings)
    assert (rnd.number, rnd.strategy) == (1, "random")  # cold start: no model yet
    tasks = store.list_tasks(pid, round_id=rnd.id)
    assert len(tasks) == 20
    # cold routing: the item's first tag
    assert {t.routing_tag for t in tasks} <= {"g0", "g1", "g2"}
    # round(0.1 * 20) = 2 picks come from the random audit subset, 18 from outside it
    assert audit_mask([t.item_id for t in tasks], 0.1).sum() == 2

    assert annotate(pid, _annotators(store, pid), truth) == 20
    jobs = store.list_jobs(pid)
    assert [(j.kind, j.status) for j in jobs] == [("retrain", "queued")]  # exactly once
    assert jobs[0].payload["round_id"] == rnd.id

    job = Worker(store, settings, worker_id="w1").run_once()
    assert (job.id, job.status, job.error) == (jobs[0].id, "done", None)
    assert Worker(store, settings).run_once() is None

    (mv,) = store.list_model_versions(pid)
    m = mv.metrics
    assert m["eval"] == "validation_split" and m["n_validation"] == 200 and m["n_labels"] == 20
    assert m["accuracy"] > 0.3  # chance is 0.1
    assert 0 <= m["macro_f1"] <= 1 and m["stop"] is False
    assert mv.calibration["temperature"] > 0 and 0 <= mv.calibration["ece"] <= 1
    (dv,) = store.list_dataset_versions(pid)
    assert dv.n_labels == 220  # 20 annotated + 200 imported validation labels

    r1, r2 = store.list_rounds(pid)
    assert r1.closed is not None and r2.closed is None and r2.strategy == "entropy"
    t2 = store.list_tasks(pid, round_id=r2.id)
    assert len(t2) == 20 and {t.routing_tag for t in t2} <= set(CLASSES)
    assert not {t.item_id for t in t2} & {t.item_id for t in tasks}
    # model-based priorities: the entropy picks are the most uncertain of the pool
    assert max(t.priority for t in t2) > 0


def test_rescoring_unclaimed_tasks(store, settings, digits_project, annotate):
    # re-scoring alone: withdrawing what falls out of the top is tested in test_latency.py
    settings = settings.model_copy(update={"retrain_every": 10, "withdraw_stale": False})
    pid, truth = digits_project(batch_size=30)
    rnd = start_round(store, pid, settings=settings)
    annotate(pid, _annotators(store, pid), truth, limit=10, settings=settings)
    (job,) = store.list_jobs(pid)
    assert job.payload["reason"] == "10 new labels"
    before = {t.id: (t.priority, t.routing_tag) for t in store.list_tasks(pid, status="queued")}
    assert len(before) == 20
    result = run_retrain(store, store.claim_next_job("w"), settings=settings)
    assert result.next_round_id is None  # round 1 still has queued tasks: re-score instead
    assert result.n_rescored == 20 and result.closed_round_ids == []
    after = {t.id: (t.priority, t.routing_tag) for t in store.list_tasks(pid, status="queued")}
    assert after.keys() == before.keys()
    assert all(tag in CLASSES for _, tag in after.values())  # now the predicted class
    assert [p for p, _ in after.values()] != [p for p, _ in before.values()]
    assert len(store.list_rounds(pid)) == 1 and store.get_round(rnd.id).closed is None


def test_bad_label_stores_nothing(store, settings, digits_project):
    pid, _ = digits_project()
    start_round(store, pid, settings=settings)
    (ann,) = _annotators(store, pid, 1)
    task = store.claim_next_task(pid, ann)
    with pytest.raises(LabelMismatchError, match="use one of"):
        submit_annotation(store, task.id, ann, "eleven", settings=settings)
    assert store.list_annotations(pid) == []
    assert store.get_task(task.id).status == "leased" and store.list_jobs(pid) == []


def test_stopping_rule_met_starts_no_round(store, settings, digits_project, annotate):
    pid, truth = digits_project(stopping={"max_labels": 20})
    start_round(store, pid, settings=settings)
    annotate(pid, _annotators(store, pid), truth)
    job = Worker(store, settings).run_once()
    assert job.status == "done"
    (mv,) = store.list_model_versions(pid)
    assert mv.metrics["stop"] is True
    assert mv.metrics["stop_reason"] == "budget: 20 of 20 labels used"
    assert [r.closed is not None for r in store.list_rounds(pid)] == [True]
    assert why_no_round(store, pid) == "stop now: budget: 20 of 20 labels used"
    assert start_round(store, pid, settings=settings) is None


def test_crashed_retrain_reruns_without_duplicates(
    store, settings, digits_project, annotate, monkeypatch
):
    pid, truth = digits_project()
    start_round(store, pid, settings=settings)
    annotate(pid, _annotators(store, pid), truth)
    job = store.claim_next_job("w1")

    def crash(*args, **kwargs):
        raise RuntimeError("killed after the model version was written")

    monkeypatch.setattr(rounds, "start_round", crash)
    with pytest.raises(RuntimeError):
        run_retrain(store, job, settings=settings)
    monkeypatch.undo()
    result = run_retrain(store, job, settings=settings)
    assert len(store.list_model_versions(pid)) == 1  # reused, not refitted
    assert len(store.list_dataset_versions(pid)) == 1
    assert len(store.list_rounds(pid)) == 2 and result.next_round_id is not None
    again = run_retrain(store, job, settings=settings)  # a third run changes nothing
    assert again.next_round_id is None and len(store.list_rounds(pid)) == 2


def test_empty_round_left_by_a_crash_is_filled(store, settings, digits_project):
    pid, _ = digits_project()
    rid = store.create_round(pid, "random")  # crash before create_tasks
    rnd = start_round(store, pid, settings=settings)
    assert rnd.id == rid and len(store.list_tasks(pid, round_id=rid)) == 20


def test_pool_exhausted(store, settings, tmp_path):
    pid = store.create_project("tiny", "multiclass", ["a", "b"], batch_size=5)
    store.create_item(pid, "x1", {"v": 1.0, "w": 0.0})
    store.create_item(pid, "x2", {"v": 2.0, "w": 1.0})
    rnd = start_round(store, pid, settings=settings)
    assert len(store.list_tasks(pid, round_id=rnd.id)) == 2  # k = min(batch, pool)
    assert why_no_round(store, pid) == "the pool is exhausted: no unlabeled items left"
    assert start_round(store, pid, settings=settings) is None


def test_features_text_cache_invalidates_when_items_are_added(store, settings):
    pid = store.create_project("text", "binary", ["neg", "pos"])
    store.create_item(pid, "a", {"text": "good movie"}, metadata={"source": "f.csv"})
    store.create_item(pid, "b", {"text": "bad movie, really bad"}, metadata={"source": "f.csv"})
    fm = project_features(store, pid, settings)
    assert fm.kind == "text" and fm.X.dtype == np.float32 and fm.X.format == "csr"
    assert fm.metadata["length"].tolist() == [10, 21]
    again = project_features(store, pid, settings)
    assert again.key == fm.key and (again.X != fm.X).nnz == 0
    store.create_item(pid, "c", {"text": "great"})
    fm3 = project_features(store, pid, settings)
    assert fm3.key != fm.key and fm3.X.shape[0] == 3
    folder = settings.data_dir / "features" / f"project_{pid}"
    assert read_manifest(folder)["current"]["key"] == fm3.key  # TF-IDF refits: a new version
    assert sorted(p.name for p in folder.glob("*.npz")) == ["v2.npz"]  # the stale file is gone


def test_features_tabular_standardised_in_sorted_column_order(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    # columns sorted: a, b; b missing on the 2nd row -> mean 4 -> standardised 0
    store.create_item(pid, "1", {"b": 2, "a": 1.0, "name": "x"})
    store.create_item(pid, "2", {"a": 3.0})
    store.create_item(pid, "3", {"a": 5.0, "b": 6})
    X = np.asarray(project_features(store, pid, settings).X)
    # a = [1, 3, 5]: mean 3, std sqrt(8/3) -> [-1.2247, 0, 1.2247]
    # b = [2, 4, 6] after imputation: same standardisation
    z = np.sqrt(1.5)
    np.testing.assert_allclose(X, [[-z, -z], [0, 0], [z, z]], rtol=1e-6)


def test_tasks_store_the_models_confidence(store, settings, digits_project, annotate):
    pid, truth = digits_project()
    rnd = start_round(store, pid, settings=settings)
    assert {t.confidence for t in store.list_tasks(pid, round_id=rnd.id)} == {None}  # cold
    annotate(pid, _annotators(store, pid), truth)
    Worker(store, settings).run_once()
    r2 = store.list_rounds(pid)[-1]
    tasks = store.list_tasks(pid, round_id=r2.id)
    project = store.get_project(pid)
    fm = project_features(store, pid, settings)
    loaded = load_model(store, project, fm)
    X = fm.X[fm.positions([t.item_id for t in tasks])]
    proba = loaded.transform(loaded.model.predict_proba(X))
    # the confidence is the calibrated probability of the routing tag (the predicted class)
    classes = [str(c) for c in loaded.model.classes_]
    expected = [float(proba[i, classes.index(t.routing_tag)]) for i, t in enumerate(tasks)]
    np.testing.assert_allclose([t.confidence for t in tasks], expected, rtol=1e-6)
    assert np.allclose(expected, proba.max(axis=1))
    assert all(0.1 <= t.confidence <= 1 for t in tasks)  # at least 1/10 for 10 classes


def test_rescoring_refreshes_confidence(store, settings, digits_project, annotate):
    # re-scoring alone: withdrawing what falls out of the top is tested in test_latency.py
    settings = settings.model_copy(update={"retrain_every": 10, "withdraw_stale": False})
    pid, truth = digits_project(batch_size=30)
    start_round(store, pid, settings=settings)
    annotate(pid, _annotators(store, pid), truth, limit=10, settings=settings)
    assert {t.confidence for t in store.list_tasks(pid, status="queued")} == {None}
    result = run_retrain(store, store.claim_next_job("w"), settings=settings)
    assert result.n_rescored == 20
    confidences = [t.confidence for t in store.list_tasks(pid, status="queued")]
    assert len(confidences) == 20 and all(0.1 <= c <= 1 for c in confidences)


class _RacingStore:
    """Delegates to a store; ``list_jobs`` waits until ``n`` callers are inside it, so they all
    pass the "is a retrain already queued?" check before any of them queues one."""

    def __init__(self, store, n):
        self._store = store
        self._barrier = threading.Barrier(n, timeout=10)

    def __getattr__(self, name):
        return getattr(self._store, name)

    def list_jobs(self, *args, **kwargs):
        jobs = self._store.list_jobs(*args, **kwargs)
        self._barrier.wait()
        return jobs


def test_two_answers_completing_a_batch_queue_one_retrain(store, settings, digits_project):
    pid, truth = digits_project(batch_size=2)
    settings = settings.model_copy(update={"random_fraction": 0.0})
    start_round(store, pid, settings=settings)
    a, b = _annotators(store, pid)
    ta, tb = store.claim_next_task(pid, a), store.claim_next_task(pid, b)
    racing = _RacingStore(store, 2)
    errors = []

    def answer(task):
        try:
            submit_annotation(racing, task.id, task.lease_owner, truth[task.item_id],
                              settings=settings)  # fmt: skip
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=answer, args=(t,)) for t in (ta, tb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    # both answers saw the batch complete and no job queued; only one job was created
    assert [(j.kind, j.status) for j in store.list_jobs(pid)] == [("retrain", "queued")]


def test_undo_reopens_the_batch_and_a_retrain_follows_the_new_answer(
    store, settings, digits_project, annotate
):
    pid, truth = digits_project()
    rnd = start_round(store, pid, settings=settings)
    anns = _annotators(store, pid)
    annotate(pid, anns, truth)
    (job,) = store.list_jobs(pid)  # the batch is complete: a retrain is queued
    last = store.list_annotations(pid)[-1]
    task = undo_annotation(store, last.id, last.annotator_id, settings=settings)
    assert (task.status, task.lease_owner) == ("leased", last.annotator_id)
    assert store.get_item(last.item_id).status == "queued"
    # the queued job is left as it is: it retrains on the 19 labels and keeps the round open
    done = Worker(store, settings).run_once()
    assert (done.id, done.status) == (job.id, "done")
    assert store.list_model_versions(pid)[-1].metrics["n_labels"] == 19
    assert [r.id for r in store.list_rounds(pid)] == [rnd.id]
    assert store.get_round(rnd.id).closed is None
    # the annotator answers again: the batch completes again and another retrain is queued
    submit_annotation(store, task.id, last.annotator_id, truth[last.item_id], settings=settings)
    assert [j.status for j in store.list_jobs(pid)] == ["done", "queued"]
    Worker(store, settings).run_once()
    assert store.get_round(rnd.id).closed is not None and len(store.list_rounds(pid)) == 2
    # the round is closed: its labels are in a model and cannot be undone any more
    newest = store.list_annotations(pid)[-1]
    with pytest.raises(UndoError, match="closed"):
        undo_annotation(store, newest.id, newest.annotator_id, settings=settings)
