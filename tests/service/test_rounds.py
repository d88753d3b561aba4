"""The production loop on memory, SQLite and PostgreSQL with real data (digits)."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.errors import LabelMismatchError
from labelwise.service import rounds
from labelwise.service.features import project_features
from labelwise.service.rounds import (
    audit_mask,
    run_retrain,
    start_round,
    submit_annotation,
    why_no_round,
)
from labelwise.service.worker import Worker

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
    settings = settings.model_copy(update={"retrain_every": 10})
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
    cached = list((settings.data_dir / "features" / f"project_{pid}").iterdir())
    assert [p.name for p in cached] == [f"text_{fm3.key}.npz"]  # the stale file is gone


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
