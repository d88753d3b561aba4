"""Label Studio JSON through the API on every backend: import (labels, annotators,
predictions), the dataset-version and project exports, the round trip, malformed files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.service.conftest import detail
from tests.test_labelstudio_format import CLASSES, ls_tasks

DATA = Path(__file__).resolve().parents[1] / "data" / "labelstudio"
SENTIMENT = ["positive", "negative", "neutral"]
TOPICS = ["billing", "delivery", "quality"]


def _project(client, name="reviews", classes=SENTIMENT, task_type="multiclass") -> int:
    body = {"name": name, "classes": classes, "task_type": task_type}
    r = client.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload(client, pid, content: bytes, name="export.json", **params):
    files = {"file": (name, content, "application/json")}
    return client.post(f"/api/projects/{pid}/items:import", files=files, params=params)


def _post_json(client, pid, tasks, **params):
    return client.post(
        f"/api/projects/{pid}/items:import",
        params={"format": "labelstudio", **params},
        content=json.dumps(tasks),
        headers={"Content-Type": "application/json"},
    )


def _labels(store, pid) -> dict[str, object]:
    return {it.external_id: it.label for it in store.list_items(pid)}


def _export(client, pid, **params) -> list[dict]:
    r = client.get(f"/api/projects/{pid}/export", params={"format": "labelstudio", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _answers(task) -> list[tuple[object, tuple[str, ...], bool, bool]]:
    """(completed_by, choices, cancelled, ground truth) of each annotation."""
    out = []
    for a in task["annotations"]:
        choices = tuple(c for r in a["result"] for c in r["value"].get("choices", []))
        who = a.get("completed_by")
        out.append((json.dumps(who), choices, a["was_cancelled"], a["ground_truth"]))
    return out


def _comparable(tasks) -> dict[str, dict]:
    """Tasks by external id, without the ids labelwise gives (task ids, item ids)."""
    out = {}
    for t in tasks:
        out[t["data"]["labelwise_id"]] = {
            "data": t["data"],
            "answers": _answers(t),
            "predictions": t["predictions"],
        }
    return out


# --------------------------------------------------------------------------- import


def test_import_snapshot_export(client, store):
    pid = _project(client)
    r = _upload(client, pid, (DATA / "snapshot_text.json").read_bytes())
    assert r.status_code == 201, r.text
    assert r.json() == {
        "n_read": 4,
        "n_created": 4,
        "n_skipped": 0,
        "n_annotations": 7,
        "n_predictions": 3,
        "n_annotators_created": 3,
    }
    # r-0001 two votes positive; r-0002 the cancelled answer does not count; r-0003 neutral
    # 2 against 1 (the newest answer, negative, loses); r-0004 has none
    assert _labels(store, pid) == {
        "r-0001": "positive",
        "r-0002": "negative",
        "r-0003": "neutral",
        "r-0004": None,
    }
    members = {a.name: a for a in store.list_annotators(pid)}
    assert set(members) == {"ana@example.org", "ben@example.org", "chen@example.org"}
    assert all(a.token_hash is None and a.role == "annotator" for a in members.values())
    item = store.find_item(pid, "r-0004")
    assert item.status == "unlabeled"
    assert item.metadata["fields"] == {"stars": 2}
    (pred,) = item.metadata["labelstudio"]["predictions"]
    assert pred["model_version"] == "labelwise-3" and pred["score"] == 0.612
    assert pred["result"][0]["value"] == {"choices": ["negative"]}
    # the same file again: nothing changes, no annotator is created twice
    again = _upload(client, pid, (DATA / "snapshot_text.json").read_bytes()).json()
    assert again["n_created"] == 0 and again["n_skipped"] == 4
    assert "n_annotators_created" not in again and "n_changed" not in again  # zeros left out


def test_import_quick_export_multilabel(client, store):
    pid = _project(client, "tickets", TOPICS, "multilabel")
    r = _upload(client, pid, (DATA / "quick_multilabel.json").read_bytes(), "tickets.json")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["n_created"] == 3 and body["n_annotations"] == 5
    assert "n_predictions" not in body  # the quick export lists prediction ids only
    assert _labels(store, pid) == {
        "201": ["billing", "delivery"],  # several choices in one result
        "202": ["delivery", "quality"],  # one vote each: the newest wins
        "203": ["billing"],  # the ground-truth annotation wins over a newer one
    }
    names = {a.name for a in store.list_annotators(pid)}
    assert names == {"labelstudio-user-1", "labelstudio-user-4"}
    # exported back, a bare Label Studio user id stays that id
    (t,) = [t for t in _export(client, pid) if t["data"]["labelwise_id"] == "201"]
    assert t["annotations"][0]["completed_by"] == 1


def test_import_files_written_by_label_studio_1_23_2(client, store):
    """ls-1.23.2-*.json were written by a real Label Studio 1.23.2: labelwise's export of
    snapshot_text.json imported there (users ana, ben, chen created first), one more answer
    added through its API by admin@example.com on r-0004, then its snapshot export (users and
    predictions expanded) and its quick export (user ids, prediction ids)."""
    pid = _project(client)
    _upload(client, pid, (DATA / "snapshot_text.json").read_bytes())
    snapshot = (DATA / "ls-1.23.2-snapshot.json").read_bytes()
    r = _upload(client, pid, snapshot, on_duplicate="update")
    assert r.status_code == 201, r.text
    body = r.json()
    # Label Studio gave the annotations new ids: every item with annotations reads as changed
    assert body["n_updated"] == 4 and body["n_annotations"] == 8 and body["n_predictions"] == 3
    assert body["n_annotators_created"] == 1  # admin@example.com; ana, ben, chen exist
    assert _labels(store, pid) == {
        "r-0001": "positive",
        "r-0002": "negative",
        "r-0003": "neutral",
        "r-0004": "negative",  # the answer given in Label Studio
    }
    preds = store.find_item(pid, "r-0004").metadata["labelstudio"]["predictions"]
    assert [(p["model_version"], p["score"]) for p in preds] == [("labelwise-3", 0.612)]

    quick = _project(client, "quick")
    r = _upload(client, quick, (DATA / "ls-1.23.2-quick.json").read_bytes())
    assert r.status_code == 201, r.text
    assert "n_predictions" not in r.json()  # ids only: passed over
    assert _labels(store, quick) == _labels(store, pid)
    names = {a.name for a in store.list_annotators(quick)}
    assert names == {f"labelstudio-user-{n}" for n in (1, 2, 3, 4)}


# --------------------------------------------------------------------------- round trip


def test_round_trip_project_export(client, store):
    a = _project(client, "a")
    assert _upload(client, a, (DATA / "snapshot_text.json").read_bytes()).status_code == 201
    exported = _export(client, a)
    assert len(exported) == 4 and all(t["data"]["labelwise_id"] for t in exported)
    by_id = {t["data"]["labelwise_id"]: t for t in exported}
    assert by_id["r-0001"]["data"] == {
        "text": "Arrived in two days and works perfectly.",
        "stars": 5,
        "labelwise_id": "r-0001",
    }
    assert by_id["r-0001"]["annotations"][0]["completed_by"] == {"email": "ana@example.org"}
    assert by_id["r-0004"]["annotations"] == []
    assert by_id["r-0004"]["predictions"] == [
        {
            "model_version": "labelwise-3",
            "score": 0.612,
            "result": [
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["negative"]},
                }
            ],
        }
    ]

    b = _project(client, "b")
    r = _post_json(client, b, exported)
    assert r.status_code == 201, r.text
    assert "n_annotators_created" not in r.json()  # they exist (in a); b gets them as members
    assert _labels(store, b) == _labels(store, a)
    assert {x.name for x in store.list_annotators(b)} == {x.name for x in store.list_annotators(a)}
    assert _comparable(_export(client, b)) == _comparable(exported)


def test_round_trip_labels_given_in_labelwise(client, store):
    """Answers made on labelwise's own page are exported with their annotator."""
    a = _project(client, "own")
    items = [{"external_id": f"t{i}", "payload": {"text": f"text number {i}"}} for i in range(3)]
    assert client.post(f"/api/projects/{a}/items", json={"items": items}).status_code == 201
    ann = store.create_annotator("dora")
    store.add_member(a, ann)
    rnd = store.create_round(a, "random")
    ids = [store.find_item(a, f"t{i}").id for i in range(2)]
    store.create_tasks(rnd, ids)
    for label in ("negative", "neutral"):
        task = store.claim_next_task(a, ann)
        store.create_annotation(task.id, ann, label, duration_s=2.5)
    labels = _labels(store, a)
    assert sorted(v for v in labels.values() if v) == ["negative", "neutral"]

    exported = _export(client, a)
    by_id = {t["data"]["labelwise_id"]: t for t in exported}
    for ext in ("t0", "t1"):
        (one,) = by_id[ext]["annotations"]
        assert one["completed_by"] == {"email": "dora"}
        assert one["result"][0]["value"]["choices"] == [labels[ext]]
        assert one["lead_time"] == 2.5 and one["ground_truth"] is False
    assert by_id["t2"]["annotations"] == []

    b = _project(client, "own-copy")
    assert _post_json(client, b, exported).status_code == 201
    assert _labels(store, b) == labels
    assert _comparable(_export(client, b)) == _comparable(exported)


def test_dataset_version_export(client, store):
    pid = _project(client)
    _upload(client, pid, (DATA / "snapshot_text.json").read_bytes())
    # a label set by an import without annotations is exported as a ground-truth answer
    extra = {"external_id": "r-0005", "payload": {"text": "fine"}, "label": "neutral"}
    assert client.post(f"/api/projects/{pid}/items", json={"items": [extra]}).status_code == 201
    dv = client.post(f"/api/projects/{pid}/dataset-versions").json()
    r = client.get(f"/api/dataset-versions/{dv['id']}/export", params={"format": "labelstudio"})
    assert r.status_code == 200, r.text
    assert "labelstudio.json" in r.headers["content-disposition"]
    tasks = r.json()
    assert [t["data"]["labelwise_id"] for t in tasks] == ["r-0001", "r-0002", "r-0003", "r-0005"]
    (gt,) = next(t for t in tasks if t["data"]["labelwise_id"] == "r-0005")["annotations"]
    assert gt["ground_truth"] is True and "completed_by" not in gt
    assert gt["result"][0]["value"] == {"choices": ["neutral"]}

    copy_pid = _project(client, "copy")
    assert _post_json(client, copy_pid, tasks).status_code == 201
    want = {k: v for k, v in _labels(store, pid).items() if v is not None}
    assert _labels(store, copy_pid) == want


def test_update_takes_new_answers_from_label_studio(client, store):
    """Export, a new answer in Label Studio, import back with on_duplicate=update."""
    pid = _project(client)
    _upload(client, pid, (DATA / "snapshot_text.json").read_bytes())
    tasks = _export(client, pid)
    (t4,) = [t for t in tasks if t["data"]["labelwise_id"] == "r-0004"]
    t4["annotations"].append(
        {
            "id": 90,
            "completed_by": {"id": 5, "email": "eve@example.org"},
            "result": [
                {
                    "id": "n3w",
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["negative"]},
                }
            ],
            "was_cancelled": False,
            "ground_truth": False,
            "created_at": "2026-11-30T08:00:00Z",
        }
    )
    skipped = _post_json(client, pid, tasks).json()
    assert skipped["n_changed"] == 1 and skipped["changed_ids"] == ["r-0004"]
    assert store.find_item(pid, "r-0004").label is None  # skip keeps the stored item
    r = _post_json(client, pid, tasks, on_duplicate="update")
    assert r.status_code == 201, r.text
    assert r.json()["n_updated"] == 1
    assert store.find_item(pid, "r-0004").label == "negative"
    assert "eve@example.org" in {a.name for a in store.list_annotators(pid)}


def test_label_config(client):
    pid = _project(client, "topics", TOPICS, "multilabel")
    items = [{"external_id": "x", "payload": {"text": "hello"}}]
    client.post(f"/api/projects/{pid}/items", json={"items": items})
    r = client.get(f"/api/projects/{pid}/labelstudio-config")
    assert r.status_code == 200
    assert r.text == (
        "<View>\n"
        '  <Text name="text" value="$text"/>\n'
        '  <Choices name="label" toName="text" choice="multiple" showInline="true">\n'
        '    <Choice value="billing"/>\n'
        '    <Choice value="delivery"/>\n'
        '    <Choice value="quality"/>\n'
        "  </Choices>\n"
        "</View>\n"
    )


# --------------------------------------------------------------------------- malformed files


def _snapshot() -> list[dict]:
    return json.loads((DATA / "snapshot_text.json").read_text())


def _set(path: list, value):
    def change(tasks):
        obj = tasks
        for key in path[:-1]:
            obj = obj[key]
        if value is _DELETE:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
        return tasks

    return change


_DELETE = object()
BAD = [
    (
        _set([2, "annotations", 1, "result", 0, "value", "choices"], ["maybe"]),
        "tasks[2] (id 103): annotations[1].result[0].value.choices: 'maybe' is not a class",
    ),
    (
        _set([2, "annotations", 1, "result", 0, "value", "choices"], "negative"),
        "tasks[2] (id 103): annotations[1].result[0].value.choices: expected a list",
    ),
    (
        _set([0, "annotations", 0, "result", 0, "value", "choices"], ["positive", "negative"]),
        "tasks[0] (id 101): annotations[0].result: 2 choices",
    ),
    (_set([1, "data", "text"], ""), "tasks[1] (id 102): data.text: empty or not a string"),
    (_set([1, "data"], "text"), "tasks[1] (id 102): data: expected an object"),
    (_set([3, "predictions", 0, "score"], "high"), "tasks[3] (id 104): predictions[0].score"),
    (
        _set([3, "predictions", 0, "model_version"], 3),
        "tasks[3] (id 104): predictions[0].model_version: expected a string",
    ),
    (
        _set([0, "annotations", 1, "completed_by"], [2]),
        "tasks[0] (id 101): annotations[1].completed_by: expected a user",
    ),
    (
        _set([0, "annotations", 1, "created_at"], "yesterday"),
        "tasks[0] (id 101): annotations[1].created_at: 'yesterday' is not an ISO 8601 time",
    ),
    (
        _set([0, "annotations", 1, "was_cancelled"], "no"),
        "tasks[0] (id 101): annotations[1].was_cancelled: expected true or false",
    ),
    (_set([0, "annotations", 0, "result"], _DELETE), "tasks[0] (id 101): annotations[0].result"),
    (_set([2, "annotations"], {"id": 1}), "tasks[2] (id 103): annotations: expected a list"),
    (_set([1, "id"], "x"), "tasks[1] (id x): id: expected an integer task id"),
    (
        _set([3, "data", "labelwise_id"], "r-0001"),
        "tasks[3] (id 104): data.labelwise_id: repeats the item id 'r-0001' of tasks[0]",
    ),
    (_set([1, "data", "text"], "a\x00b"), "tasks[1] (id 102): data: a NUL character"),
    (lambda tasks: [*tasks[:2], 7, *tasks[2:]], "tasks[2]: expected a task object, got int"),
    (lambda tasks: [], "the task list is empty"),
    (lambda tasks: {"tasks": tasks}, "tasks[0]: data.labelwise_id: missing"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD, ids=[m for _, m in BAD])
def test_malformed_file_imports_nothing(client, store, mutate, message):
    pid = _project(client)
    tasks = mutate(copy.deepcopy(_snapshot()))
    r = _upload(client, pid, json.dumps(tasks).encode())
    text = detail(r, 422)
    assert message in text, text
    assert "Nothing was imported" in text
    assert store.count_items(pid) == 0
    assert store.list_annotators(pid) == []


def test_not_json_is_a_422(client, store):
    pid = _project(client)
    text = detail(_upload(client, pid, b'[{"id": 1, "data": {"text": "a"}}'), 422)
    assert "invalid JSON at line 1" in text
    assert store.count_items(pid) == 0


def test_wrong_project_is_a_404(client):
    r = _post_json(client, 9999, _snapshot())
    assert r.status_code == 404


# --------------------------------------------------------------------------- predictions


def test_project_export_predicts_with_the_latest_model(
    client, store, settings, digits_project, annotate
):
    """Every item gets the latest model's prediction: its class, and minus the strategy's
    score (entropy here: sum p log p), as the ML backend's /predict answers."""
    from labelwise.service.features import project_features
    from labelwise.service.rounds import load_model, run_retrain, start_round

    pid, truth = digits_project(batch_size=20)
    start_round(store, pid, settings=settings)
    ann = store.create_annotator("fay")
    store.add_member(pid, ann)
    annotate(pid, [ann], truth, settings=settings)
    run_retrain(store, store.claim_next_job("w"), settings=settings)
    (mv,) = store.list_model_versions(pid)

    tasks = _export(client, pid)
    assert len(tasks) == store.count_items(pid)
    fm = project_features(store, pid, settings)
    loaded = load_model(store, store.get_project(pid), fm)
    proba = loaded.transform(np.asarray(loaded.model.predict_proba(fm.X), dtype=np.float64))
    names = [str(c) for c in loaded.model.classes_]
    row = {int(i): k for k, i in enumerate(fm.item_ids)}
    for t in tasks[::7]:
        (p,) = t["predictions"]
        assert p["model_version"] == f"labelwise-{mv.id}"
        q = proba[row[t["id"]]]
        plogp = float(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)))
        assert p["score"] == pytest.approx(plogp, abs=1e-6)  # minus the entropy
        assert p["result"][0]["value"]["choices"] == [names[int(np.argmax(q))]]
    # the lowest score is the item the model is least sure of
    lowest = min(tasks, key=lambda t: t["predictions"][0]["score"])
    q = proba[row[lowest["id"]]]
    assert q.max() < np.median(proba.max(axis=1))
    # without predictions
    assert all(t["predictions"] == [] for t in _export(client, pid, predictions="false"))


def test_predicted_class_is_the_models_not_a_column_position(client, store, settings):
    """The project lists its classes unsorted (pos, neg); scikit-learn sorts a model's
    classes_ (neg, pos): each column is read by its class, so "good" texts predict pos."""
    from labelwise.service.worker import Worker

    pid = store.create_project("sorted", "binary", ["pos", "neg"], strategy="margin")
    words = {"pos": ["good", "great", "lovely"], "neg": ["bad", "awful", "rude"]}
    items = []
    for i in range(40):
        label = "pos" if i % 2 == 0 else "neg"
        text = f"{words[label][i % 3]} service {words[label][(i + 1) % 3]} number {i}"
        items.append({"external_id": f"s{i}", "payload": {"text": text}, "label": label})
    items += [
        {"external_id": "u-good", "payload": {"text": "good lovely great"}},
        {"external_id": "u-bad", "payload": {"text": "awful rude bad"}},
    ]
    assert client.post(f"/api/projects/{pid}/items", json={"items": items}).status_code == 201
    store.create_job("retrain", pid, {"reason": "test"})
    job = Worker(store, settings).run_once()
    assert job is not None and job.status == "done", job
    by_id = {t["data"]["labelwise_id"]: t for t in _export(client, pid)}
    good, bad = (by_id[k]["predictions"][0] for k in ("u-good", "u-bad"))
    assert good["result"][0]["value"]["choices"] == ["pos"]
    assert bad["result"][0]["value"]["choices"] == ["neg"]
    # minus margin's score (which is minus the gap between the two probabilities): the gap
    assert 0 <= good["score"] <= 1 and 0 <= bad["score"] <= 1


# --------------------------------------------------------------------------- CLI


def test_cli_import_then_export_round_trip(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from labelwise.cli import app
    from labelwise.storage import open_store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def ok(*args):
        res = runner.invoke(app, list(args), env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        return res.output

    classes = ",".join(SENTIMENT)
    ok("project", "create", "reviews", "--classes", classes)
    ok("project", "create", "copy", "--classes", classes)
    src = str(DATA / "snapshot_text.json")
    out = json.loads(ok("project", "import", "reviews", src, "--json"))  # .json: labelstudio
    assert out == {
        "n_read": 4,
        "n_created": 4,
        "n_skipped": 0,
        "n_annotations": 7,
        "n_predictions": 3,
        "n_annotators_created": 3,
    }
    text = ok("project", "import", "reviews", src, "--format", "labelstudio")
    assert "imported 0 items" in text and "kept 7 Label Studio annotations" in text
    path = tmp_path / "ls.json"
    ok("project", "export", "reviews", "--format", "labelstudio", "--out", str(path))
    tasks = json.loads(path.read_text())
    assert len(tasks) == 4
    ok("project", "import", "copy", str(path))
    stdout = ok("project", "export", "copy", "--format", "labelstudio", "--no-predictions")
    assert _comparable(json.loads(stdout[stdout.index("[") :])) == _comparable(tasks)
    with open_store(url) as store:
        a, b = (store.find_project(n).id for n in ("reviews", "copy"))
        assert _labels(store, a) == _labels(store, b)
        assert len(_labels(store, b)) == 4
        version = store.create_dataset_version(a)
    labeled = tmp_path / "v.json"
    ok("project", "export", "reviews", "--format", "labelstudio", "--version", str(version),
       "--out", str(labeled))  # fmt: skip
    assert [t["data"]["labelwise_id"] for t in json.loads(labeled.read_text())] == [
        "r-0001", "r-0002", "r-0003",
    ]  # fmt: skip
    res = runner.invoke(
        app, ["project", "export", "copy", "--format", "labelstudio", "--version", str(version)]
    )
    assert res.exit_code == 2 and f"belongs to project {a}" in res.output
    res = runner.invoke(app, ["project", "import", "copy", str(tmp_path / "nope.json")])
    # rich wraps the message at the terminal width, so where the break falls depends on the path
    assert res.exit_code == 2 and "is not a file" in " ".join(res.output.split())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": 3, "data": {"text": 5}}]))
    res = runner.invoke(app, ["project", "import", "copy", str(bad)], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert "tasks[0] (id 3): data.text: empty or not a string" in res.output


# --------------------------------------------------------------------------- property


_RUN = iter(range(10**9))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_store_round_trip_keeps_labels_annotators_predictions(store, tmp_path, data):
    """Any valid task list: imported, exported (every item) and imported into a second project,
    gives the same labels, annotators (per item) and predictions, on every backend."""
    from labelwise.importers import import_labelstudio
    from labelwise.service.labelstudio_export import project_tasks
    from labelwise.settings import Settings

    multilabel = data.draw(st.booleans())
    task_type = "multilabel" if multilabel else "multiclass"
    tasks = data.draw(ls_tasks(multilabel))
    run = next(_RUN)
    a = store.create_project(f"a{run}", task_type, CLASSES)
    b = store.create_project(f"b{run}", task_type, CLASSES)
    settings = Settings(data_dir=tmp_path / "data")
    import_labelstudio(store, a, json.dumps(tasks))
    exported = project_tasks(store, a, settings)
    import_labelstudio(store, b, json.dumps(exported))

    def state(pid):
        out = {}
        for it in store.list_items(pid):
            kept = it.metadata.get("labelstudio", {})
            who = sorted({x["completed_by"] or "" for x in kept.get("annotations", [])})
            out[it.external_id] = (it.payload, it.label, who, kept.get("predictions"))
        return out

    assert state(b) == state(a)
    assert {x.name for x in store.list_annotators(b)} == {x.name for x in store.list_annotators(a)}
