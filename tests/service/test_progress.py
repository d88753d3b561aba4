"""project_progress: hand-checked numbers on a small project, and the loop's stop message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labelwise.service.progress import (
    fit_power_law,
    labels_for_accuracy,
    project_progress,
    stopping_target,
)
from labelwise.service.rounds import start_round
from labelwise.service.worker import Worker

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _label(store, pid, annotator, when):
    task = store.claim_next_task(pid, annotator, now=when)
    store.create_annotation(task.id, annotator, "a", now=when)


def test_progress_hand_checked(store, settings):
    rule = {"any": [{"target": 0.97}, {"plateau": None}]}
    pid = store.create_project("p", "binary", ["a", "b"], label_cost=2.5, stopping=rule)
    ids = [store.create_item(pid, f"x{i}", {"v": float(i)}) for i in range(8)]
    rid = store.create_round(pid, "random", now=NOW)
    store.create_tasks(rid, ids[:7], priorities=[7, 6, 5, 4, 3, 2, 1], now=NOW)
    ann_a, ann_b = store.create_annotator("A"), store.create_annotator("B")
    _label(store, pid, ann_a, NOW - timedelta(hours=25))  # outside the 24 h window
    _label(store, pid, ann_a, NOW - timedelta(hours=1))
    _label(store, pid, ann_a, NOW - timedelta(hours=1))
    for _ in range(3):
        _label(store, pid, ann_b, NOW - timedelta(hours=2))
    # active curve on acc(n) = 0.98 - 1/n; random-only curve on acc(n) = 0.98 - 2/n
    for n, acc, n_rand, acc_rand in [
        (10, 0.88, 4, 0.48),
        (20, 0.93, 5, 0.58),
        (40, 0.955, 10, 0.78),
    ]:
        store.create_model_version(
            pid,
            metrics={
                "n_labels": n, "accuracy": acc, "n_random": n_rand, "random_accuracy": acc_rand,
                "ece": 0.05, "stop": False,
                "stop_reason": "target: validation accuracy 0.955 is below the target 0.97",
            },
            now=NOW,
        )  # fmt: skip

    p = project_progress(store, pid, settings=settings, now=NOW)
    assert (p.n_items, p.n_labeled, p.n_unlabeled, p.n_annotations) == (8, 6, 1, 6)
    assert (p.rounds, p.open_rounds, p.queue_depth) == (1, 1, 1)  # 7 tasks, 6 done
    assert p.cost == 15.0  # 6 labels x 2.5
    assert p.throughput == {ann_a: 2 / 24, ann_b: 3 / 24}  # labels per hour over 24 h
    assert p.learning_curve == [(10, 0.88), (20, 0.93), (40, 0.955)]
    assert p.random_curve == [(4, 0.48), (5, 0.58), (10, 0.78)]
    assert (p.accuracy, p.ece, p.target) == (0.955, 0.05, 0.97)
    # random at 40 labels: 0.98 - 2/40 = 0.93
    assert p.random_accuracy_estimate == pytest.approx(0.93, abs=1e-4)
    # random needs 2 / (0.98 - 0.955) = 80 labels for 0.955: 40 saved, 40 x 2.5 = 100 saved
    assert p.labels_saved == pytest.approx(40, rel=1e-3)
    assert p.money_saved == pytest.approx(100, rel=1e-3)
    # active reaches 0.97 at 1 / (0.98 - 0.97) = 100 labels: 60 more
    assert p.projected_labels_to_target == pytest.approx(60, abs=1)
    assert p.stopping_status == (
        "continue: target: validation accuracy 0.955 is below the target 0.97"
    )


def test_progress_of_an_empty_project(store, settings):
    pid = store.create_project("empty", "binary", ["a", "b"])
    store.create_item(pid, "x", {"v": 1.0})
    p = project_progress(store, pid, settings=settings, now=NOW)
    assert (p.n_items, p.cost, p.learning_curve, p.labels_saved) == (1, 0.0, [], None)
    assert p.stopping_status == "continue: no model yet; label the first batch"


def test_progress_says_why_the_loop_stopped(store, settings, digits_project, annotate):
    pid, truth = digits_project(stopping={"max_labels": 20}, label_cost=0.5)
    start_round(store, pid, settings=settings)
    annotate(pid, [store.create_annotator("a")], truth)
    Worker(store, settings).run_once()
    p = project_progress(store, pid, settings=settings)
    assert p.stopping_status == "stop now: budget: 20 of 20 labels used"
    assert p.cost == 10.0  # 20 labels x 0.5
    (point,) = p.learning_curve
    assert point[0] == 20 and point[1] > 0.3


def test_compute_functions_are_still_importable_from_the_service():
    # the arithmetic moved to labelwise.progress (tested in tests/test_progress.py)
    import labelwise.progress as compute

    assert fit_power_law is compute.fit_power_law
    assert labels_for_accuracy is compute.labels_for_accuracy
    assert stopping_target is compute.stopping_target
