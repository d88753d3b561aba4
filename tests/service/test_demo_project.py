"""The demo project shows active learning working: config, replay, banner, project status.

The replay tests run the service loop on the full demo (4,000 reviews, 1,000 validation) with the
true labels, seed 0 (one of the seeds behind ``DEMO_REFERENCE``), so they also check that the
numbers the dashboard and ``make run`` print are reproducible.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from labelwise.service.demo_project import (
    DEMO_BATCH_SIZE,
    DEMO_REFERENCE,
    DEMO_TARGET,
    DemoProject,
    demo_truth,
    expectation,
    replay,
    setup_demo_project,
)
from labelwise.service.progress import project_progress, reference_path
from labelwise.settings import Settings
from labelwise.storage import open_store
from labelwise.storage.memory import InMemoryStore

MAJORITY_F1 = 0.3969  # always "great": 658 of the 1,000 validation reviews -> (2p / (1+p)) / 2


def test_demo_project_learns_with_balanced_classes_and_a_macro_f1_target(tmp_path):
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "d")
    demo = setup_demo_project(store, settings, limit=60)
    project = store.get_project(demo.project_id)
    assert project.strategy_params["model"] == "logreg_balanced"
    assert project.batch_size == DEMO_BATCH_SIZE == 20
    assert {"target": {"metric": "macro_f1", "target": DEMO_TARGET}} in project.stopping["any"]
    # a cut-down demo gets no reference: the replayed numbers describe the full data set
    assert not reference_path(settings.data_dir, demo.project_id).exists()
    p = project_progress(store, demo.project_id, settings=settings)
    assert (p.n_to_label, p.n_validation, p.headline_metric) == (60, 60, "macro_f1")
    truth = demo_truth(store, demo.project_id)
    assert set(truth.values()) == {"great", "other"} and len(truth) == 120


def test_full_demo_writes_its_reference_and_leads_with_macro_f1(tmp_path):
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "d")
    demo = setup_demo_project(store, settings)
    assert (demo.n_items, demo.n_validation) == (5000, 1000)
    saved = json.loads(reference_path(settings.data_dir, demo.project_id).read_text())
    assert saved == DEMO_REFERENCE
    p = project_progress(store, demo.project_id, settings=settings)
    assert p.reference == DEMO_REFERENCE
    assert (p.n_to_label, p.target, p.target_metric) == (4000, DEMO_TARGET, "macro_f1")
    mb = p.majority_baseline
    assert (mb["label"], mb["accuracy"]) == ("great", 0.658)
    assert mb["macro_f1"] == pytest.approx(MAJORITY_F1, abs=1e-4)


def _within(curve, points):
    band = {row[0]: (row[2], row[3]) for row in DEMO_REFERENCE["curves"][curve]}
    for m in points:
        lo, hi = band[m["n_labels"]]
        assert lo - 1e-3 <= m["macro_f1"] <= hi + 1e-3, (curve, m["n_labels"], m["macro_f1"])


def test_replay_with_true_labels_rises_above_the_majority_and_matches_the_reference():
    margin = replay("margin", seed=0, rounds=6)
    assert [m["n_labels"] for m in margin] == [20, 40, 60, 80, 100, 120]
    _within("margin (replay)", margin)
    # five rounds of 20 (the five minutes the demo promises): well above always "great"
    assert margin[4]["macro_f1"] >= MAJORITY_F1 + 0.15
    random = replay("random", seed=0, rounds=6)
    _within("random (replay)", random)
    # the reference: margin above random at 40-120 labels by a margin the page can show
    act = {r[0]: r[1] for r in DEMO_REFERENCE["curves"]["margin (replay)"]}
    rnd = {r[0]: r[1] for r in DEMO_REFERENCE["curves"]["random (replay)"]}
    assert all(act[n] - rnd[n] >= 0.05 for n in (40, 60, 80, 100, 120))


def test_serving_banner_says_what_to_expect():
    from labelwise.cli import _format_serving

    text = _format_serving(
        "http://127.0.0.1:8000", DemoProject(3, True, "A", "B", 5000, 1000)
    ).plain
    assert "4,000 fine-food reviews to label" in text and "1,000 labelled validation" in text
    assert expectation() in text
    assert "0.42 -> 0.59 -> 0.65" in text and "0.40 -> 0.48 -> 0.56" in text
    assert "seeds (0-7)" in text and "benchmarks/demo_learning.py" in text


def test_project_status_shows_macro_f1_majority_and_one_baseline_sentence(tmp_path, monkeypatch):
    from labelwise.cli import app
    from labelwise.service.rounds import submit_annotation
    from labelwise.service.worker import Worker

    url = f"sqlite:///{tmp_path / 'd.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "d"))
    settings = Settings(database_url=url, data_dir=tmp_path / "d")
    with open_store(url, upgrade=True) as store:
        demo = setup_demo_project(store, settings, limit=200)
        pid, truth = demo.project_id, demo_truth(store, demo.project_id)
        ann = store.find_annotator("demo-annotator").id
        while (task := store.claim_next_task(pid, ann)) is not None:
            submit_annotation(store, task.id, ann, truth[task.item_id], settings=settings)
        Worker(store, settings).run_once()
    out = CliRunner().invoke(app, ["project", "status", str(pid)], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    # one round of 20 labelled, the next 20 queued: 160 left; the 200 validation items apart
    assert "items to label" in out.output and "200 (160 unlabeled)" in out.output
    assert "200 (labelled, never queued)" in out.output and "20 (20 from annotators)" in out.output
    assert "always 'great'" in out.output and "macro-F1" in out.output
    assert "Random-sampling baseline not shown yet: it needs 20 random labels" in out.output
    assert "random-sampling baseline (measured)" not in out.output  # no table of 2 labels
    assert "macro_f1 0.62" in out.output
