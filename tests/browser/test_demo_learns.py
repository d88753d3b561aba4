"""The demo visibly learns: label the demo project in the browser with its true labels.

A cut-down demo (500 reviews to label, 500 validation reviews; ``setup_demo_project(limit=500)``)
is labelled for 4 rounds of 20 with the keyboard, each review with its true label. The dashboard
then leads with macro-F1 (the classes are 62 % / 38 % here) and shows it above the majority-class
baseline (always "great": macro-F1 0.383) by at least 0.10. Replayed outside the browser with
the same seed (the project id, 1), the demo reaches 0.531 at 80 labels; seeds 2 and 3 give 0.623
and 0.627 (``labelwise.service.demo_project.replay(limit=500, rounds=4)`` with a random
fraction of 0.2, as this server runs).
"""

from __future__ import annotations

from playwright.sync_api import expect

from labelwise.service.demo_project import _write_reference, demo_truth, setup_demo_project
from labelwise.settings import Settings
from labelwise.storage import open_store

ROUNDS, BATCH, LIMIT = 4, 20, 500
MARGIN = 0.10  # over the majority-class macro-F1, after ROUNDS rounds
KEYS = {"great": "1", "other": "2"}


def test_labeling_the_demo_with_true_labels_beats_the_majority_baseline(
    tmp_path, new_page, helpers
):
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'labelwise.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path / "data")
    with open_store(url, upgrade=True) as store:
        demo = setup_demo_project(store, settings, limit=LIMIT)
        truth = {
            store.get_item(i).external_id: lab
            for i, lab in demo_truth(store, demo.project_id).items()
        }
    pid = demo.project_id
    # the full demo's replayed curves (a cut-down demo gets none): the page draws them as bands
    _write_reference(settings, pid)
    server = helpers.make_server(tmp_path)
    try:
        page, console = new_page()
        helpers.login(page, server, demo.annotator_token, f"/projects/{pid}/label")
        task = page.locator("#task")
        for _ in range(ROUNDS * BATCH):
            # the next task, or the next round once the worker has retrained
            expect(task).to_be_visible(timeout=60_000)
            ext = task.get_attribute("data-external-id")
            task_id = task.get_attribute("data-task-id")
            page.keyboard.press(KEYS[truth[ext]])
            expect(page.locator(f'#task[data-task-id="{task_id}"]:not([hidden])')).to_have_count(0)

        owner, owner_console = new_page()
        helpers.login(owner, server, demo.admin_token, f"/projects/{pid}/dashboard")
        curve = owner.locator("#curve")
        expect(curve).to_have_attribute("data-points", str(ROUNDS), timeout=60_000)
        expect(curve).to_have_attribute("data-metric", "macro_f1")
        latest = float(curve.get_attribute("data-latest"))
        majority = float(curve.get_attribute("data-majority"))
        assert abs(majority - 0.3835) < 1e-3  # 311 of 500 "great": (2 x 0.622 / 1.622) / 2
        assert latest >= majority + MARGIN, (latest, majority)
        expect(owner.locator("#t-f1")).to_have_text(f"{latest:.3f}")
        expect(owner.locator("#t-f1-note")).to_have_text("always “great”: 0.383")
        expect(owner.locator("#t-labels")).to_have_text(f"{ROUNDS * BATCH} / {LIMIT}")
        # 4 random labels a round: not enough for a random baseline, and the page says so once
        expect(owner.locator("#curve-note")).to_contain_text("not shown yet")
        expect(owner.locator("#curve svg circle.pt-random")).to_have_count(0)
        expect(owner.locator("#roi")).to_contain_text("no random baseline yet")
        expect(owner.locator("#throughput tbody tr")).to_have_count(1)
        expect(owner.locator("#curve svg g[data-reference]")).to_have_count(2)
        expect(owner.locator("#reference-note")).to_contain_text("seeds 0-7")
        console.assert_clean()
        owner_console.assert_clean()
    finally:
        server.stop()
