"""The ML-backend service functions over every store (memory, SQLite, PostgreSQL), no server.

What Label Studio's webhook and predict calls do to a project, checked in the store: answers
become annotations on the item's queued task (or a task added to the open round), updates
revise them, a completed batch queues the retrain, a closed round's answer is relabeled, and
bad events store nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from tests.labelstudio.conftest import N_LABELED, seed_project

from labelwise.errors import LabelMismatchError
from labelwise.labelstudio import ID_FIELD
from labelwise.service.labelstudio_backend import (
    LabelStudioBackendError,
    handle_webhook,
    predict_tasks,
    setup_backend,
)
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore, NewItem
from labelwise.testing.store import postgres_schema_store, sqlite_store

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def _pg():
    with postgres_schema_store(POSTGRES_URL) as store:
        yield store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "memory":
        yield InMemoryStore()
    elif request.param == "sqlite":
        with sqlite_store(tmp_path / "lw.db") as s:
            yield s
    else:
        from labelwise.storage.sql.models import metadata

        s = request.getfixturevalue("_pg")
        with s._engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(sa.delete(table))
        yield s


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", random_fraction=0.1)


def _event(ext: str, label, action: str = "ANNOTATION_CREATED", user=5, **annotation):
    choices = label if isinstance(label, list) else [label]
    result = [{"from_name": "label", "to_name": "text", "type": "choices",
               "value": {"choices": choices}}]  # fmt: skip
    return {
        "action": action,
        "task": {"id": 99, "data": {"text": "...", ID_FIELD: ext}},
        "annotation": {"id": 1, "completed_by": user, "result": result, **annotation},
        "project": {"id": 3},
    }


def test_answer_uses_the_queued_task_and_updates_revise_it(store, settings):
    pid = seed_project(store, settings)
    (task, *_) = store.list_tasks(pid, status="queued")
    item = store.get_item(task.item_id)
    out = handle_webhook(store, pid, _event(item.external_id, "neg", lead_time=3.5),
                         settings=settings)  # fmt: skip
    assert out["status"] == "created" and out["label"] == "neg"
    assert store.get_annotator(out["annotator_id"]).name == "labelstudio-user-5"
    assert pid in store.get_annotator(out["annotator_id"]).projects
    (ann,) = store.list_annotations(pid, item_id=item.id)
    assert (ann.task_id, ann.label, ann.duration_s) == (task.id, "neg", 3.5)
    assert store.get_task(task.id).status == "done"
    assert len(store.list_tasks(pid, item_id=item.id)) == 1  # no second task
    assert store.get_item(item.id).label == "neg"

    again = _event(item.external_id, "pos", action="ANNOTATION_UPDATED")
    assert handle_webhook(store, pid, again, settings=settings)["status"] == "revised"
    (ann,) = store.list_annotations(pid, item_id=item.id)
    assert ann.label == "pos" and store.get_item(item.id).label == "pos"
    assert handle_webhook(store, pid, again, settings=settings)["status"] == "unchanged"
    # another Label Studio user on the same item: a second annotation, the item takes it
    other = handle_webhook(store, pid, _event(item.external_id, "neg", user=6), settings=settings)
    assert other["status"] == "created"
    names = {store.get_annotator(a.annotator_id).name
             for a in store.list_annotations(pid, item_id=item.id)}  # fmt: skip
    assert names == {"labelstudio-user-5", "labelstudio-user-6"}


def test_item_without_task_joins_the_open_round(store, settings):
    pid = seed_project(store, settings)
    item = store.find_item(pid, "r000")  # labeled on import, never queued
    assert item.label == "pos" and not store.list_tasks(pid, item_id=item.id)
    (open_round,) = [r for r in store.list_rounds(pid) if r.closed is None]
    out = handle_webhook(store, pid, _event("r000", "neg"), settings=settings)
    assert out["status"] == "created"
    (task,) = store.list_tasks(pid, item_id=item.id)
    assert task.round_id == open_round.id and task.status == "done"
    assert store.get_item(item.id).label == "neg"


def test_a_batch_answered_in_label_studio_retrains_and_a_later_change_relabels(store, settings):
    pid = seed_project(store, settings)
    queued = store.list_tasks(pid, status="queued")
    n_jobs = len(store.list_jobs(pid))
    probe = [{"data": {ID_FIELD: "r059"}}]
    (before,) = predict_tasks(store, pid, probe, settings=settings)
    for t in queued:
        ext = store.get_item(t.item_id).external_id
        handle_webhook(store, pid, _event(ext, "pos"), settings=settings)
    jobs = store.list_jobs(pid)[n_jobs:]
    assert [j.payload["reason"] for j in jobs] == ["batch complete"]
    assert Worker(store, settings).run_once().status == "done"
    versions = store.list_model_versions(pid)
    assert len(versions) == 2
    # the new model answers at once (the kept features and model are keyed by its version)
    (after,) = predict_tasks(store, pid, probe, settings=settings)
    assert before["model_version"] == f"labelwise-{versions[0].id}"
    assert after["model_version"] == f"labelwise-{versions[1].id}"
    assert after["score"] != before["score"]
    ext = store.get_item(queued[0].item_id).external_id
    changed = _event(ext, "neg", action="ANNOTATION_UPDATED")
    out = handle_webhook(store, pid, changed, settings=settings)  # its round is closed now
    assert out["status"] == "relabeled" and out["retrain_job_id"] is not None
    assert store.get_item(queued[0].item_id).label == "neg"


def test_bad_events_store_nothing(store, settings):
    pid = seed_project(store, settings)
    ext = store.get_item(store.list_tasks(pid, status="queued")[0].item_id).external_id
    n = store.count_annotations(pid)
    with pytest.raises(LabelStudioBackendError, match=r"task.data.labelwise_id: 'nope' is no"):
        handle_webhook(store, pid, _event("nope", "neg"), settings=settings)
    with pytest.raises(LabelMismatchError):
        handle_webhook(store, pid, _event(ext, "maybe"), settings=settings)
    with pytest.raises(LabelStudioBackendError, match="takes one class per item"):
        handle_webhook(store, pid, _event(ext, ["neg", "pos"]), settings=settings)
    with pytest.raises(LabelStudioBackendError, match="completed_by"):
        handle_webhook(store, pid, _event(ext, "neg", user=None), settings=settings)
    with pytest.raises(LabelStudioBackendError, match="action"):
        handle_webhook(store, pid, {"task": {}}, settings=settings)
    item = store.find_item(pid, "r001")
    store.mark_gold(item.id, "neg")
    with pytest.raises(LabelStudioBackendError, match="gold in labelwise"):
        handle_webhook(store, pid, _event("r001", "neg"), settings=settings)
    skipped = handle_webhook(store, pid, _event(ext, "neg", was_cancelled=True), settings=settings)
    assert skipped["status"] == "ignored"
    assert store.count_annotations(pid) == n


def test_predictions_in_task_order_scored_minus_entropy(store, settings):
    pid = seed_project(store, settings)
    exts = ["r050", "unknown", f"r{N_LABELED:03d}"]
    tasks = [{"id": i, "data": {ID_FIELD: e, "text": "x"}} for i, e in enumerate(exts)]
    tasks.append({"id": 9, "data": {"text": "no id"}})
    config = (
        '<View><Text name="review" value="$text"/><Choices name="sentiment" toName="review">'
        '<Choice value="neg"/><Choice value="pos"/></Choices></View>'
    )
    out = predict_tasks(store, pid, tasks, config, settings=settings)
    assert [o["result"] == [] for o in out] == [False, True, False, True]
    version = setup_backend(store, pid, config)["model_version"]
    assert {o["model_version"] for o in out} == {version}
    from labelwise.service.labelstudio_backend import score_items

    ids = [store.find_item(pid, e).id for e in ("r050", f"r{N_LABELED:03d}")]
    proba, scores, _, _ = score_items(store, pid, ids, settings=settings)
    entropy = -(proba * np.log(proba)).sum(axis=1)
    np.testing.assert_allclose([out[0]["score"], out[2]["score"]], -entropy, rtol=1e-6)
    np.testing.assert_allclose(scores, entropy, rtol=1e-6)
    r = out[0]["result"][0]
    assert (r["from_name"], r["to_name"]) == ("sentiment", "review")
    assert r["value"]["choices"] == [["neg", "pos"][int(proba[0, 1] > proba[0, 0])]]


def test_predictions_name_the_model_columns_when_classes_are_listed_unsorted(store, settings):
    """scikit-learn sorts a model's classes; a project listing ``pos, neg`` must still predict
    ``pos`` for a plainly positive review (columns are read by the model's ``classes_``)."""
    from tests.labelstudio.conftest import review_texts

    from labelwise.service.labelstudio_backend import score_items

    pid = store.create_project("unsorted", "binary", ["pos", "neg"], strategy="entropy")
    texts = review_texts(60)
    store.create_items(pid, [NewItem(f"u{i}", {"text": t}, label=lab if i < 40 else None)
                             for i, (t, lab) in enumerate(texts)])  # fmt: skip
    store.create_job("retrain", pid, {"reason": "seed"})
    assert Worker(store, settings).run_once().status == "done"
    store.create_items(pid, [NewItem("clear", {"text": "great lovely excellent friendly"})])
    store.create_job("retrain", pid, {"reason": "new item"})
    assert Worker(store, settings).run_once().status == "done"
    out = predict_tasks(store, pid, [{"id": 1, "data": {ID_FIELD: "clear"}}], settings=settings)
    assert out[0]["result"][0]["value"]["choices"] == ["pos"]
    _, _, _, columns = score_items(store, pid, [store.find_item(pid, "clear").id],
                                   settings=settings)  # fmt: skip
    assert columns == ["neg", "pos"]


def test_no_model_yet_gives_empty_predictions(store, settings):
    pid = store.create_project("cold", "multilabel", ["a", "b", "c"])
    store.create_items(pid, [NewItem(f"c{i}", {"text": f"text {i}"}) for i in range(5)])
    tasks = [{"data": {ID_FIELD: "c1"}}, {"data": {ID_FIELD: "c2"}}]
    out = predict_tasks(store, pid, tasks, settings=settings)
    assert out == [{"result": [], "score": None, "model_version": "labelwise-untrained"}] * 2
    # a multilabel answer is the sorted set of its choices
    done = handle_webhook(store, pid, _event("c1", ["c", "a", "c"]), settings=settings)
    assert done["label"] == ["a", "c"] and store.find_item(pid, "c1").label == ["a", "c"]


def test_answer_lands_on_its_item_past_skills_and_expired_leases(store, settings):
    """The annotator's skill-routed tasks and a task whose lease expired would come first in
    their queue; the Label Studio answer still lands on its own item."""
    from datetime import timedelta

    from labelwise.storage.base import utcnow

    pid = seed_project(store, settings)
    other = store.create_annotator("someone", role="annotator")
    store.add_member(pid, other)
    expired = store.claim_next_task(pid, other, lease_seconds=1, now=utcnow() - timedelta(hours=1))
    queued = store.list_tasks(pid, status="queued")
    skill = queued[0].routing_tag
    target = next(t for t in queued if t.routing_tag != skill)
    aid = store.create_annotator("labelstudio-user-8", role="annotator", skills=[skill])
    ext = store.get_item(target.item_id).external_id
    out = handle_webhook(store, pid, _event(ext, "neg", user=8), settings=settings)
    assert out["status"] == "created" and out["annotator_id"] == aid
    assert store.get_task(target.id).status == "done"
    assert store.get_task(expired.id).status == "leased"  # untouched
    assert all(store.get_task(t.id).status == "queued" for t in queued if t.id != target.id)


def test_an_answer_that_is_no_class_creates_no_round_task_or_annotator(store, settings):
    """The label is checked before anything is made for it: an item with no task in a project
    with no open round would get a 'labelstudio' round, a leased task and a new annotator."""
    pid = store.create_project("ls", "multiclass", ["neg", "pos"])
    store.create_items(pid, [NewItem(external_id="r1", payload={"text": "fine"})])
    with pytest.raises(LabelMismatchError, match="'maybe' is not a class"):
        handle_webhook(store, pid, _event("r1", "maybe", user={"email": "new@ls"}),
                       settings=settings)  # fmt: skip
    assert store.list_rounds(pid) == []
    assert store.list_tasks(pid) == []
    assert store.find_annotator("new@ls") is None
    assert store.count_annotations(pid) == 0


def test_predictions_of_an_uploaded_predictions_project_use_those_predictions(
    store, settings, tmp_path
):
    """A project ranked by uploaded predictions is scored by them in Label Studio too (it has
    no built-in model): least confidence 1 - max p, so score = max p - 1; the label is the
    most probable class; an item the upload left out gets no prediction. The file export
    writes the same."""
    from labelwise.service import model_sources
    from labelwise.service.labelstudio_export import project_tasks

    pid = store.create_project("byom", "multiclass", ["neg", "pos"], strategy="least_confidence")
    store.create_items(
        pid, [NewItem(external_id=f"x{i}", payload={"u": float(i), "v": 1.0}) for i in range(4)]
    )
    path = tmp_path / "preds.csv"
    path.write_text("id,pos,neg\nx0,0.9,0.1\nx1,0.3,0.7\nx2,0.55,0.45\n")  # x3 left out
    model_sources.upload_predictions(store, pid, path, settings=settings)
    tasks = [{"id": i, "data": {ID_FIELD: f"x{i}"}} for i in (2, 0, 3, 1)]

    out = predict_tasks(store, pid, tasks, None, settings=settings)
    assert [o["result"][0]["value"]["choices"] if o["result"] else None for o in out] == [
        ["pos"],
        ["pos"],
        None,
        ["neg"],
    ]
    np.testing.assert_allclose([out[i]["score"] for i in (0, 1, 3)], [-0.45, -0.1, -0.3], atol=1e-6)
    assert out[2]["score"] is None
    assert {o["model_version"] for o in out} == {"labelwise-upload-v1"}
    assert setup_backend(store, pid, None)["model_version"] == "labelwise-upload-v1"

    exported = {t["data"][ID_FIELD]: t["predictions"] for t in project_tasks(store, pid, settings)}
    assert exported["x3"] == []
    assert [p["score"] for p in exported["x2"]] == pytest.approx([-0.45], abs=1e-6)
    assert exported["x1"][0]["result"][0]["value"]["choices"] == ["neg"]


def test_a_user_name_over_200_characters_is_refused_on_every_backend(store, settings):
    """As in the file import: a name the annotators table cannot hold is a 422 naming the
    field (SQLite stored it, PostgreSQL refused it), and nothing is made."""
    pid = store.create_project("ls", "multiclass", ["neg", "pos"])
    store.create_items(pid, [NewItem(external_id="r1", payload={"text": "fine"})])
    email = "a" * 195 + "@x.org"  # 201 characters
    with pytest.raises(LabelStudioBackendError, match="a name of 201 characters"):
        handle_webhook(store, pid, _event("r1", "neg", user={"email": email}), settings=settings)
    assert store.find_annotator(email) is None
    assert store.list_tasks(pid) == [] and store.count_annotations(pid) == 0
    ok = handle_webhook(store, pid, _event("r1", "neg", user={"email": email[1:]}),
                        settings=settings)  # fmt: skip
    assert ok["status"] == "created"


def test_a_change_after_the_round_closed_leaves_an_item_in_review_to_its_reviewer(store, settings):
    """An item the label check (or an admin) sent to review is not relabeled from Label
    Studio behind the reviewer's back: a 422, as for a new answer on it; it stays in review."""
    pid = store.create_project("ls", "multiclass", ["neg", "pos"])
    store.create_items(pid, [NewItem(external_id="r1", payload={"text": "fine"})])
    first = handle_webhook(store, pid, _event("r1", "neg"), settings=settings)
    assert first["status"] == "created"
    (rnd,) = store.list_rounds(pid)
    store.close_round(rnd.id)
    item = store.find_item(pid, "r1")
    assert store.send_to_review([item.id], "manual") == 1
    with pytest.raises(LabelStudioBackendError, match="'r1' is review in labelwise"):
        handle_webhook(store, pid, _event("r1", "pos", action="ANNOTATION_UPDATED"),
                       settings=settings)  # fmt: skip
    assert store.find_item(pid, "r1").status == "review"
