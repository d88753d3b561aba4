"""labelwise.labelstudio: parsing and building Label Studio task lists (pure functions), with
hand-written fixtures shaped like Label Studio 1.23's exports (tests/data/labelstudio/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise import labelstudio as ls
from labelwise.errors import LabelwiseError
from labelwise.labelstudio import LabelStudioFormatError, LSAnnotation

DATA = Path(__file__).resolve().parent / "data" / "labelstudio"
SENTIMENT = ["positive", "negative", "neutral"]


def _load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())


def _choice(*choices: str, to_name: str = "text") -> list[dict]:
    return [
        {
            "from_name": "label",
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": list(choices)},
        }
    ]


# --------------------------------------------------------------------------- label config


def test_label_config_text_single():
    assert ls.label_config(["pos", "neg"]) == (
        "<View>\n"
        '  <Text name="text" value="$text"/>\n'
        '  <Choices name="label" toName="text" choice="single" showInline="true">\n'
        '    <Choice value="pos"/>\n'
        '    <Choice value="neg"/>\n'
        "  </Choices>\n"
        "</View>\n"
    )


def test_label_config_image_multilabel_and_quoting():
    xml = ls.label_config(['a "b" & c', "d"], "multilabel", "image")
    assert '<Image name="image" value="$image"/>' in xml
    assert 'toName="image" choice="multiple"' in xml
    assert "<Choice value='a \"b\" &amp; c'/>" in xml


def test_label_config_tabular():
    xml = ls.label_config(["x", "y"], "binary", "tabular", ["age", "income"])
    assert xml.splitlines()[1:5] == [
        '  <Header value="age"/>',
        '  <Text name="age" value="$age"/>',
        '  <Header value="income"/>',
        '  <Text name="income" value="$income"/>',
    ]
    assert 'toName="age"' in xml


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([],), "needs the project's classes"),
        ((["a"], "multiclass", "video"), "kind must be text, image or tabular"),
        ((["a"], "multiclass", "tabular"), "needs the items' columns"),
        ((["a"], "multiclass", "tabular", ["monthly income"]), "cannot be a Label Studio variable"),
    ],
)
def test_label_config_errors(args, message):
    with pytest.raises(LabelwiseError, match=message):
        ls.label_config(*args)


# --------------------------------------------------------------------------- annotators


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ({"id": 1, "email": "ana@example.org", "first_name": "Ana"}, "ana@example.org"),
        ({"id": 4, "email": ""}, "labelstudio-user-4"),
        (7, "labelstudio-user-7"),
        ("dora", "dora"),
        (None, None),
    ],
)
def test_annotator_name(value, name):
    assert ls.annotator_name(value) == name


@pytest.mark.parametrize("value", [[1], True, 2.5, "", {"first_name": "x"}, {"id": "7"}])
def test_annotator_name_refuses(value):
    with pytest.raises(ValueError, match="expected a user"):
        ls.annotator_name(value)


def test_completed_by_inverts_annotator_name():
    assert ls.completed_by("ana@example.org") == {"email": "ana@example.org"}
    assert ls.completed_by("labelstudio-user-7") == 7
    assert ls.completed_by("labelstudio-user-x") == {"email": "labelstudio-user-x"}
    assert ls.completed_by(None) is None
    for v in ({"email": "a@b.c"}, 12):
        assert ls.completed_by(ls.annotator_name(v)) == v


# --------------------------------------------------------------------------- resolve_label


def _a(label, who="a", t=None, cancelled=False, gt=False) -> LSAnnotation:
    created = None if t is None else datetime(2026, 11, 1, t, tzinfo=UTC)
    return LSAnnotation(who, label, cancelled, gt, created, {})


@pytest.mark.parametrize(
    ("answers", "label"),
    [
        ([], None),
        ([_a(None)], None),  # an empty result is no answer
        ([_a("pos", cancelled=True)], None),
        ([_a("pos", "a", 1), _a("neg", "b", 2), _a("pos", "c", 3)], "pos"),  # 2 against 1
        ([_a("pos", "a", 1), _a("neg", "b", 2)], "neg"),  # a tie: the newest
        ([_a("neg", "b", 2), _a("pos", "a", 1)], "neg"),  # by time, not position
        ([_a("pos", "a"), _a("neg", "b")], "neg"),  # no times: the later in the list
        # one annotator changed their mind: their newest answer is their one vote
        ([_a("pos", "a", 1), _a("pos", "a", 2), _a("neg", "b", 3), _a("neg", "a", 4)], "neg"),
        ([_a("pos", None, 1), _a("pos", None, 2), _a("neg", "b", 3)], "pos"),  # anonymous: each
        ([_a("pos", "a", 1, gt=True), _a("neg", "b", 2), _a("neg", "c", 3)], "pos"),
        ([_a("pos", "a", 1, gt=True, cancelled=True), _a("neg", "b", 2)], "neg"),
        ([_a(["x", "y"], "a", 1), _a(["y"], "b", 2), _a(["x", "y"], "c", 3)], ["x", "y"]),
    ],
)
def test_resolve_label(answers, label):
    assert ls.resolve_label(answers) == label


# --------------------------------------------------------------------------- parsing fixtures


def test_parse_snapshot_export():
    tasks = ls.parse_tasks(_load("snapshot_text.json"), SENTIMENT)
    assert [t.external_id for t in tasks] == ["r-0001", "r-0002", "r-0003", "r-0004"]
    assert [t.label for t in tasks] == ["positive", "negative", "neutral", None]
    assert [t.task_id for t in tasks] == [101, 102, 103, 104]
    first = tasks[0]
    assert first.payload == {"text": "Arrived in two days and works perfectly."}
    assert first.fields == {"stars": 5}
    assert first.annotators == ["ana@example.org", "ben@example.org"]
    assert tasks[2].annotators == ["ana@example.org", "ben@example.org", "chen@example.org"]
    assert tasks[1].annotations[0].cancelled and tasks[1].annotations[0].label is None
    rec = first.annotations[0].record
    assert rec["completed_by"] == "ana@example.org" and rec["lead_time"] == 4.218
    assert rec["created_at"] == "2026-11-28T09:12:01.512734Z" and rec["id"] == 31
    assert [len(t.predictions) for t in tasks] == [1, 1, 0, 1]
    assert tasks[3].predictions[0] == {
        "model_version": "labelwise-3",
        "score": 0.612,
        "result": _choice("negative")
        and [
            {
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["negative"]},
            }
        ],
    }
    assert tasks[3].metadata == {
        "fields": {"stars": 2},
        "labelstudio": {"predictions": [tasks[3].predictions[0]]},
    }


def test_parse_quick_export_multilabel():
    tasks = ls.parse_tasks(_load("quick_multilabel.json"), ["billing", "delivery", "quality"],
                           "multilabel")  # fmt: skip
    assert [t.external_id for t in tasks] == ["201", "202", "203"]  # no labelwise_id: task id
    assert [t.label for t in tasks] == [
        ["billing", "delivery"],
        ["delivery", "quality"],
        ["billing"],
    ]
    assert all(t.predictions == () for t in tasks)  # prediction ids only
    assert tasks[1].annotators == ["labelstudio-user-1", "labelstudio-user-4"]


def test_parse_import_shapes():
    tasks = ls.parse_tasks(
        [
            {"text": "no data wrapper", "id": 3},  # Label Studio reads the body as data
            {"data": {"image": "https://example.org/a.png", "labelwise_id": 12}},
            {"id": 5, "data": {"age": 41, "income": 52000.0}},
        ]
    )
    assert [t.external_id for t in tasks] == ["3", "12", "5"]
    assert tasks[0].payload == {"text": "no data wrapper"}
    assert tasks[1].payload == {"image": "https://example.org/a.png"}
    assert tasks[2].payload == {"age": 41, "income": 52000.0} and tasks[2].fields == {}
    assert ls.parse_tasks({"id": 1, "data": {"text": "one"}})[0].external_id == "1"


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ("[]", "the task list is empty"),
        ('{"a": ', "invalid JSON at line 1"),
        ('"text"', "expected a JSON array of tasks, got str"),
        (
            '[{"data": {"text": "x"}}]',
            "tasks[0]: data.labelwise_id: missing, and the task has no id",
        ),
        ('[{"id": 1, "data": {}}]', "tasks[0] (id 1): data: no fields"),
        ('[{"id": 1, "data": {"image": 4}}]', "tasks[0] (id 1): data.image: empty or not a string"),
        ('[{"id": 1, "data": {"text": "x", "labelwise_id": true}}]', "data.labelwise_id: expected"),
        (
            '[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [{"value": {}}]}]}]',
            "tasks[0] (id 1): annotations[0].result[0].type: missing",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [{"type": "choices",'
            ' "value": 3}]}]}]',
            "tasks[0] (id 1): annotations[0].result[0].value: expected an object",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": {}}]}]',
            "tasks[0] (id 1): annotations[0].result: expected a list of results",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [], "lead_time": -1}]}]',
            "tasks[0] (id 1): annotations[0].lead_time: expected seconds",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}, "predictions": [{"result": [], "score": NaN}]}]',
            "tasks[0] (id 1): predictions[0].score: expected a finite number",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}, "predictions": [{"score": 0.5}]}]',
            "tasks[0] (id 1): predictions[0].result: missing",
        ),
        (
            '[{"id": 1, "data": {"text": "x", "n": ' + "7" * 5000 + "}}]",
            "tasks[0] (id 1): data.n: an integer of 5000 digits (at most 20)",
        ),
        ('[{"id": ' + "7" * 25 + ', "data": {"text": "x"}}]', "tasks[0]: id: an integer of 25"),
        (
            '[{"text": "x", "id": 3, "label": "positive", "annotator": 1, "annotation_id": 7,'
            ' "created_at": "2026-11-30T09:00:00Z", "lead_time": 2.0}]',
            "tasks[0] (id 3): data: missing, and the task has annotation_id/annotator fields: "
            "this looks like Label Studio's JSON-MIN export",
        ),
        (
            '[{"id": 1, "data": {"text": "x"}}, {"id": 1, "data": {"text": "y"}}]',
            "tasks[1] (id 1): id: repeats the item id '1' of tasks[0]",
        ),
    ],
)
def test_loads_tasks_errors(tasks, message):
    with pytest.raises(LabelStudioFormatError) as e:
        ls.loads_tasks(tasks, SENTIMENT)
    assert message in str(e.value)
    assert str(e.value).endswith("Nothing was imported; fix the file and retry.")


def test_error_attributes():
    bad = _load("snapshot_text.json")
    bad[2]["annotations"][1]["result"][0]["value"]["choices"] = ["great"]
    with pytest.raises(LabelStudioFormatError) as e:
        ls.parse_tasks(bad, SENTIMENT)
    assert (e.value.task_idx, e.value.task_id) == (2, 103)
    assert e.value.field == "annotations[1].result[0].value.choices"
    assert str(e.value).startswith(
        "tasks[2] (id 103): annotations[1].result[0].value.choices: 'great' is not a class"
    )


def test_single_label_project_refuses_two_choices_multilabel_takes_them():
    tasks = [{"id": 1, "data": {"text": "x"}, "annotations": [{"result": _choice("b", "a")}]}]
    with pytest.raises(LabelStudioFormatError, match="single-label"):
        ls.parse_tasks(tasks, ["a", "b"])
    (t,) = ls.parse_tasks(tasks, ["a", "b"], "multilabel")
    assert t.label == ["a", "b"]


def test_other_result_types_are_kept_but_do_not_label():
    rating = {"from_name": "stars", "to_name": "text", "type": "rating", "value": {"rating": 4}}
    tasks = [{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [rating]}]}]
    (t,) = ls.parse_tasks(tasks, ["a"])
    assert t.label is None
    assert t.metadata["labelstudio"]["annotations"][0]["result"] == [rating]


# --------------------------------------------------------------------------- building


def test_predicted_labels():
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert ls.predicted_labels(proba, ["a", "b"]) == ["b", "a"]
    assert ls.predicted_labels(proba, ["a", "b"], "multilabel") == [["b"], ["a"]]


def test_build_task_writes_data_annotations_predictions():
    meta = {"source": "f.csv", "fields": {"lang": "en", "text": "ignored"}}
    native = ls.native_annotation(
        9, "dora", "neg", datetime(2026, 11, 2, 8, 30, tzinfo=UTC), lead_time=1.5
    )
    pred = ls.prediction("pos", 0.25, "labelwise-2")
    task = ls.build_task(
        4, "r4", {"text": "meh"}, meta, label="neg", annotations=[native], predictions=[pred]
    )
    assert task == {
        "id": 4,
        "data": {"text": "meh", "lang": "en", "labelwise_id": "r4"},
        "annotations": [
            {
                "id": 9,
                "completed_by": {"email": "dora"},
                "result": [
                    {
                        "id": "lw-9",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": ["neg"]},
                    }
                ],
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": "2026-11-02T08:30:00Z",
                "lead_time": 1.5,
            }
        ],
        "predictions": [{"model_version": "labelwise-2", "score": 0.25, "result": _choice("pos")}],
    }


def test_build_task_adds_the_label_when_answers_do_not_settle_on_it():
    # an imported label without answers, and a label a reviewer corrected
    (gt,) = ls.build_task(1, "a", {"text": "x"}, {}, label="pos")["annotations"]
    assert gt["ground_truth"] is True and "completed_by" not in gt
    assert "id" not in gt  # Label Studio stores an annotation's id as an integer import_id
    assert gt["result"][0]["value"] == {"choices": ["pos"]}
    native = ls.native_annotation(3, "dora", "neg", None)
    anns = ls.build_task(1, "a", {"text": "x"}, {}, label="pos", annotations=[native])
    assert [a["ground_truth"] for a in anns["annotations"]] == [False, True]
    # settled: nothing added; a native answer equal to a kept one is not written twice
    kept = {"labelstudio": {"annotations": [{**native, "id": 77}]}}
    anns = ls.build_task(1, "a", {"text": "x"}, kept, label="neg", annotations=[native])
    assert [a["id"] for a in anns["annotations"]] == [77]
    text_id = {"labelstudio": {"annotations": [{**native, "id": "a7"}]}}
    (one,) = ls.build_task(1, "a", {"text": "x"}, text_id)["annotations"]
    assert "id" not in one
    # multilabel labels are lists
    ml = ls.build_task(1, "a", {"text": "x"}, {}, label=["p", "q"], task_type="multilabel")
    assert ml["annotations"][0]["result"][0]["value"] == {"choices": ["p", "q"]}


def test_fixture_round_trip_is_exact():
    """Parse a Label Studio export, build the tasks again, parse them: the same items."""
    first = ls.parse_tasks(_load("snapshot_text.json"), SENTIMENT)
    rebuilt = [
        ls.build_task(t.task_id, t.external_id, t.payload, t.metadata, label=t.label) for t in first
    ]
    second = ls.parse_tasks(json.loads(json.dumps(rebuilt)), SENTIMENT)
    for a, b in zip(first, second, strict=True):
        assert (a.external_id, a.payload, a.fields, a.label) == (
            b.external_id, b.payload, b.fields, b.label,
        )  # fmt: skip
        assert a.metadata == b.metadata
        assert a.annotators == b.annotators


# --------------------------------------------------------------------------- property


CLASSES = ["a", "b", "c"]
_TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))  # as imports refuse
names = st.sampled_from(["ana@x.org", "ben@x.org", "labelstudio-user-3", "dora"])
times = st.one_of(
    st.none(), st.integers(0, 10_000).map(lambda s: f"2026-11-01T00:00:{s % 60:02d}Z")
)


@st.composite
def ls_tasks(draw, multilabel: bool):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        anns = []
        for j in range(draw(st.integers(0, 4))):
            if multilabel:
                choices = draw(st.lists(st.sampled_from(CLASSES), max_size=3, unique=True))
            else:
                choices = draw(st.lists(st.sampled_from(CLASSES), max_size=1))
            who = draw(names)
            anns.append(
                {
                    "id": 100 * i + j,
                    "completed_by": ls.completed_by(who),
                    "result": _choice(*choices) if choices else [],
                    "was_cancelled": draw(st.booleans()),
                    "ground_truth": draw(st.booleans()),
                    "created_at": draw(times),
                }
            )
        preds = [
            {
                "model_version": draw(st.sampled_from(["m1", "m2"])),
                "score": draw(st.floats(0, 1)),
                "result": _choice(draw(st.sampled_from(CLASSES))),
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        data = {
            "text": draw(st.text(_TEXT, min_size=1, max_size=20).filter(str.strip)),
            "labelwise_id": f"i{i}",
        }
        if draw(st.booleans()):
            data["extra"] = draw(st.integers(-5, 5))
        out.append({"id": i + 1, "data": data, "annotations": anns, "predictions": preds})
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_export_of_an_import_imports_back_the_same(data):
    """Labels, annotators and predictions survive build_task -> JSON -> parse_tasks."""
    multilabel = data.draw(st.booleans())
    task_type = "multilabel" if multilabel else "multiclass"
    raw = data.draw(ls_tasks(multilabel))
    first = ls.parse_tasks(raw, CLASSES, task_type)
    rebuilt = [
        ls.build_task(
            t.task_id, t.external_id, t.payload, t.metadata, label=t.label, task_type=task_type
        )
        for t in first
    ]
    second = ls.parse_tasks(json.loads(json.dumps(rebuilt)), CLASSES, task_type)
    for a, b in zip(first, second, strict=True):
        assert b.external_id == a.external_id and b.payload == a.payload
        assert b.label == a.label
        assert b.annotators == a.annotators
        assert b.predictions == a.predictions
        assert b.metadata == a.metadata


# --------------------------------------------------------------------------- label-studio-sdk

LS_PYTHON = Path(__file__).resolve().parents[1] / ".venv-ls" / "bin" / "python"
_SDK_CHECK = """
import json, sys
from label_studio_sdk.label_interface import LabelInterface

out = []
for job in json.load(open(sys.argv[1])):
    li = LabelInterface(job["config"])
    errors = []
    for i, task in enumerate(job["tasks"]):
        for obj in li.objects:
            if obj.value_is_variable and task["data"].get(obj.value_name) is None:
                errors.append(f"task {i}: data.{obj.value_name} missing")
        for j, a in enumerate(task["annotations"]):
            if not li.validate_annotation(a):
                errors.append(f"task {i}: annotation {j} invalid")
        for j, p in enumerate(task["predictions"]):
            found = li.validate_prediction(p, return_errors=True)
            errors += [f"task {i}: prediction {j}: {e}" for e in found]
    out.append(errors)
print(json.dumps(out))
"""


def _sdk_errors(tmp_path, jobs: list[tuple[str, list[dict]]]) -> list[list[str]]:
    """The SDK's complaints about each ``(config, tasks)``, in one run of .venv-ls's Python."""
    import subprocess

    if not LS_PYTHON.exists():
        pytest.fail(f"{LS_PYTHON} is missing: `make test` installs Label Studio's venv (.venv-ls)")
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps([{"config": c, "tasks": t} for c, t in jobs]))
    script = tmp_path / "check.py"
    script.write_text(_SDK_CHECK)
    out = subprocess.run(
        [str(LS_PYTHON), str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_label_studio_sdk_accepts_the_export(tmp_path):
    """label-studio-sdk's own validators (LabelInterface) accept labelwise's config, tasks,
    annotations and predictions, and catch a choice outside the config (the control)."""
    parsed = ls.parse_tasks(_load("snapshot_text.json"), SENTIMENT)
    model = ls.prediction("neutral", 0.42, "labelwise-9")
    tasks = [
        ls.build_task(
            t.task_id, t.external_id, t.payload, t.metadata, label=t.label, predictions=[model]
        )
        for t in parsed
    ]
    tasks.append(ls.build_task(9, "extra", {"text": "x"}, {}, label="positive"))
    ml_pred = ls.prediction(["billing"], 0.5, "v")
    ml = ls.build_task(
        10, "m", {"text": "y"}, {}, label=["billing", "quality"], task_type="multilabel",
        predictions=[ml_pred],
    )  # fmt: skip
    topics = ls.label_config(["billing", "delivery", "quality"], "multilabel")
    bad = json.loads(json.dumps(tasks[:1]))
    bad[0]["predictions"][0]["result"][0]["value"]["choices"] = ["maybe"]
    config = ls.label_config(SENTIMENT)
    ok, ok_ml, errors = _sdk_errors(tmp_path, [(config, tasks), (topics, [ml]), (config, bad)])
    assert ok == [] and ok_ml == []
    assert errors and all(e.startswith("task 0: prediction") for e in errors)
