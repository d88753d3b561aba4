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
from labelwise.storage.base import NewItem

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _label(store, pid, annotator, when):
    task = store.claim_next_task(pid, annotator, now=when)
    store.create_annotation(task.id, annotator, "a", now=when)


def _validation(store, pid, labels):
    store.create_items(
        pid,
        [
            NewItem(f"v{i}", {"v": -1.0}, metadata={"split": "validation"}, label=lab)
            for i, lab in enumerate(labels)
        ],
    )


def test_progress_hand_checked(store, settings):
    rule = {"any": [{"target": 0.97}, {"plateau": None}]}
    pid = store.create_project("p", "binary", ["a", "b"], label_cost=2.5, stopping=rule)
    ids = [store.create_item(pid, f"x{i}", {"v": float(i)}) for i in range(8)]
    _validation(store, pid, ["a", "a", "a", "b"])  # majority "a", 3 of 4
    rid = store.create_round(pid, "random", now=NOW)
    store.create_tasks(rid, ids[:7], priorities=[7, 6, 5, 4, 3, 2, 1], now=NOW)
    ann_a, ann_b = store.create_annotator("A"), store.create_annotator("B")
    hour = NOW - timedelta(hours=1)
    _label(store, pid, ann_a, NOW - timedelta(hours=25))  # outside the 24 h window
    for s in (0, 30, 60):  # two gaps of 30 s: 2 labels in 60 s
        _label(store, pid, ann_a, hour + timedelta(seconds=s))
    for s in (0, 20, 620):  # 20 s, then a 10-minute break (not labeling time)
        _label(store, pid, ann_b, hour + timedelta(seconds=s))
    # active curve on acc(n) = 0.98 - 1/n; random-only curve on acc(n) = 0.98 - 2/n
    for n, acc, n_rand, acc_rand in [
        (10, 0.88, 20, 0.88),
        (20, 0.93, 25, 0.90),
        (40, 0.955, 40, 0.93),
    ]:
        store.create_model_version(
            pid,
            metrics={
                "n_labels": n, "accuracy": acc, "macro_f1": acc - 0.1, "n_validation": 200,
                "n_random": n_rand, "random_accuracy": acc_rand, "ece": 0.05, "stop": False,
                "stop_reason": "target: validation accuracy 0.955 is below the target 0.97",
            },
            now=NOW,
        )  # fmt: skip

    p = project_progress(store, pid, settings=settings, now=NOW)
    assert (p.n_items, p.n_labeled, p.n_unlabeled, p.n_annotations) == (12, 11, 1, 7)
    assert (p.n_validation, p.n_to_label) == (4, 8)  # validation items are not to label
    assert (p.rounds, p.open_rounds, p.queue_depth) == (1, 1, 0)  # 7 tasks, 7 done
    assert p.cost == 17.5  # 7 labels x 2.5
    # A: 2 labels in 60 s = 120/h; B: 1 label in 20 s = 180/h (the label after the break and
    # the one 25 h ago are not timed); the old rule (labels in 24 h / 24) said 0.125 and 0.125
    assert p.throughput == {ann_a: pytest.approx(120.0), ann_b: pytest.approx(180.0)}
    assert p.learning_curve == [(10, 0.88), (20, 0.93), (40, 0.955)]
    assert p.macro_f1_curve == [(10, pytest.approx(0.78)), (20, pytest.approx(0.83)),
                                (40, pytest.approx(0.855))]  # fmt: skip
    assert p.random_curve == [(20, 0.88), (25, 0.90), (40, 0.93)]
    assert (p.accuracy, p.macro_f1, p.ece) == (0.955, pytest.approx(0.855), 0.05)
    assert (p.target, p.target_metric) == (0.97, "accuracy")
    assert p.headline_metric == "accuracy"  # the target is on accuracy
    # majority "a" (3 of 4): accuracy 0.75, macro-F1 (2 x 0.75 / 1.75) / 2, balanced 1/2
    mb = p.majority_baseline
    assert (mb["label"], mb["accuracy"], mb["balanced_accuracy"], mb["n"]) == ("a", 0.75, 0.5, 4)
    assert mb["macro_f1"] == pytest.approx(0.428571, abs=1e-6)
    # the baseline is ready: 40 random labels over 3 retrains; 0.93 of 200 = 186 correct.
    # Wilson: centre (0.93 + z²/400) / (1 + z²/200) = 0.92190, half-width
    # z * sqrt(0.93 * 0.07 / 200 + z² / 160000) / (1 + z²/200) = 0.03595
    rb = p.random_baseline
    assert rb["ready"] and (rb["n_random"], rb["n_points"], rb["n_eval"]) == (40, 3, 200)
    assert (rb["ci_low"], rb["ci_high"]) == pytest.approx((0.88595, 0.95785), abs=1e-4)
    assert rb["active_accuracy"] == pytest.approx(0.955)  # the active curve at 40 labels
    assert "At 40 labels: active learning 95.5%, random sampling 93.0%" in rb["note"]
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
    assert p.reference is None


def test_too_few_random_labels_show_no_baseline_and_no_savings(store, settings):
    # the case: six random points at 2-7 labels, all 0.342
    pid = store.create_project("p", "binary", ["a", "b"])
    store.create_item(pid, "x", {"v": 1.0})
    for i, n_rand in enumerate(range(2, 8)):
        store.create_model_version(
            pid,
            metrics={"n_labels": 10 * (i + 1), "accuracy": 0.5 + 0.05 * i, "n_validation": 1000,
                     "n_random": n_rand, "random_accuracy": 0.342},
            now=NOW,
        )  # fmt: skip
    p = project_progress(store, pid, settings=settings, now=NOW)
    assert not p.random_baseline["ready"]
    assert p.random_baseline["note"] == (
        "Random-sampling baseline not shown yet: it needs 20 random labels and 3 measured "
        "points (now 7 random labels, 6 points)."
    )
    assert (p.random_accuracy_estimate, p.labels_saved, p.money_saved) == (None, None, None)


def test_macro_f1_target_and_imbalanced_labels_make_macro_f1_the_headline(store, settings):
    rule = {"any": [{"target": {"metric": "macro_f1", "target": 0.9}}, {"max_labels": 100}]}
    pid = store.create_project("p", "binary", ["a", "b"], stopping=rule)
    store.create_item(pid, "x", {"v": 1.0})
    for n, f1 in [(10, 0.88), (20, 0.93), (40, 0.955)]:  # on 0.98 - 1/n
        store.create_model_version(pid, metrics={"n_labels": n, "accuracy": 0.5, "macro_f1": f1})
    p = project_progress(store, pid, settings=settings, now=NOW)
    assert (p.target, p.target_metric, p.headline_metric) == (0.9, "macro_f1", "macro_f1")
    assert p.projected_labels_to_target == 0  # macro-F1 0.955 >= 0.9 (accuracy 0.5 is not)
    # no target: macro-F1 leads when the majority holds >= 60 % of the evaluation labels
    pid2 = store.create_project("q", "binary", ["a", "b"])
    _validation(store, pid2, ["a", "a", "b"])  # 2 of 3 = 0.667
    assert project_progress(store, pid2, settings=settings).headline_metric == "macro_f1"
    pid3 = store.create_project("r", "binary", ["a", "b"])
    _validation(store, pid3, ["a", "b"])
    assert project_progress(store, pid3, settings=settings).headline_metric == "accuracy"


def test_reference_curves_are_read_from_the_data_dir(store, settings):
    import json

    from labelwise.service.progress import reference_path

    pid = store.create_project("p", "binary", ["a", "b"])
    ref = {
        "title": "t",
        "protocol": "p",
        "metric": "macro_f1",
        "curves": {"random": [[20, 0.4, 0.3, 0.5]]},
    }
    path = reference_path(settings.data_dir, pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ref))
    assert project_progress(store, pid, settings=settings).reference == ref
    path.write_text("not json")
    assert project_progress(store, pid, settings=settings).reference is None


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
