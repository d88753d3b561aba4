"""Label Studio JSON: read and write the task lists Label Studio imports and exports.

Pure functions (no store, no service): the importer (:mod:`labelwise.importers`) and the export
routes call them. A Label Studio task list is a JSON array of tasks::

    {"id": 17,
     "data": {"text": "great service", "labelwise_id": "r-17", "lang": "en"},
     "annotations": [{"id": 3, "completed_by": {"email": "ann@example.org"},
                      "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                  "value": {"choices": ["positive"]}}],
                      "was_cancelled": false, "ground_truth": false,
                      "created_at": "2026-11-30T09:12:01.512Z", "lead_time": 4.2}],
     "predictions": [{"model_version": "labelwise-7", "score": 0.41,
                      "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                  "value": {"choices": ["positive"]}}]}]}

Mapping to labelwise items
--------------------------
- **Id.** ``data["labelwise_id"]`` (:data:`ID_FIELD`) holds the item's external id; Label
  Studio keeps ``data`` as it is, so the id survives a trip through Label Studio, whose own task
  ids change on every import. A task without it is keyed by its Label Studio ``id``.
- **Payload.** ``data["text"]`` makes a text item, ``data["image"]`` an image item; the other
  ``data`` fields go to ``metadata["fields"]`` (as the CSV importer does). Without either, the
  task is a tabular item whose payload is ``data`` (less the id field). A task without
  ``data`` is read as Label Studio reads it: the whole task body is the data.
- **Annotations and label.** Every ``choices`` result of an annotation is its answer (several
  choices in one result are a multilabel answer). The item's label (:func:`resolve_label`):
  the newest non-cancelled *ground-truth* annotation when there is one, otherwise the answer
  most annotators gave (each annotator's newest answer counts once), ties going to the newest.
  Annotations are kept as they were (``metadata["labelstudio"]["annotations"]``, with the
  annotator's name in ``completed_by``), so an export writes them back.
- **Annotators.** ``completed_by`` is a Label Studio user: an object with ``email`` (the
  annotator's name in labelwise is the email), or a bare user id ``n`` (named
  ``labelstudio-user-n``: a user id means nothing outside its Label Studio instance).
- **Predictions** are kept as they were (``metadata["labelstudio"]["predictions"]``:
  ``model_version``, ``score``, ``result``) and written back by every export. Label Studio's
  quick export (``GET /api/projects/{id}/export``) lists only prediction *ids*, which are
  passed over; its snapshot export with ``serialization_options`` ``{"predictions":
  {"only_id": false}, "annotations__completed_by": {"only_id": false}}`` writes predictions
  whole and annotators with their email.

Errors name the task and the field, e.g. ``tasks[3] (id 17): annotations[0].result[0].value.
choices: 'maybe' is not a class of the project ...``; nothing is imported then.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from labelwise.errors import LabelwiseError
from labelwise.tasks import TaskType

__all__ = [
    "CONTROL_NAME",
    "ID_FIELD",
    "LSAnnotation",
    "LSTask",
    "LabelStudioFormatError",
    "annotator_name",
    "build_task",
    "choices_result",
    "completed_by",
    "iso_time",
    "label_config",
    "loads_tasks",
    "native_annotation",
    "object_name",
    "parse_tasks",
    "predicted_labels",
    "prediction",
    "resolve_label",
    "task_metadata",
]

#: The ``data`` key holding labelwise's external id of the item.
ID_FIELD = "labelwise_id"
#: ``name`` of the ``<Choices>`` control of :func:`label_config` (``from_name`` of results).
CONTROL_NAME = "label"
#: Prefix of annotator names made from a bare Label Studio user id.
USER_PREFIX = "labelstudio-user-"
#: Longest annotator name (the ``annotators.name`` column).
MAX_NAME_CHARS = 200
#: Longest external id (the ``items.external_id`` column).
MAX_ID_CHARS = 500
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TASK_KEYS = frozenset(
    {"id", "data", "annotations", "predictions", "meta", "drafts", "created_at", "updated_at",
     "project", "inner_id", "file_upload", "total_annotations", "cancelled_annotations",
     "total_predictions", "comment_count", "unresolved_comment_count",
     "last_comment_updated_at", "updated_by", "comment_authors", "allow_skip", "state"}
)  # fmt: skip


class LabelStudioFormatError(LabelwiseError):
    """A Label Studio task list is malformed; nothing was imported.

    ``task_idx`` (0-based position in the list), ``task_id`` (the task's ``id``) and ``field``
    (a path such as ``annotations[0].result[0].value.choices``) locate the problem; each is
    ``None`` when it does not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        task_idx: int | None = None,
        task_id: Any = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if task_idx is not None:
            where = f"tasks[{task_idx}]"
            if task_id is not None:
                where += f" (id {task_id})"
            where += ": "
        if field:
            where += f"{field}: "
        super().__init__(where + message + " Nothing was imported; fix the file and retry.")
        self.task_idx = task_idx
        self.task_id = task_id
        self.field = field


@dataclass(frozen=True, slots=True)
class LSAnnotation:
    """One Label Studio annotation as labelwise keeps it.

    ``label`` is the answer (a class name, a sorted list for multilabel, ``None`` without any
    choice); ``record`` the JSON object stored in the item's metadata and exported again.
    """

    annotator: str | None
    label: Any
    cancelled: bool
    ground_truth: bool
    created_at: datetime | None
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LSTask:
    """One parsed task: the item it becomes and what it carries."""

    index: int
    task_id: int | None
    external_id: str
    payload: dict[str, Any]
    fields: dict[str, Any]
    annotations: tuple[LSAnnotation, ...] = ()
    predictions: tuple[dict[str, Any], ...] = ()
    label: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def annotators(self) -> list[str]:
        """Names of the task's annotators, in order of appearance, without repeats."""
        return list(dict.fromkeys(a.annotator for a in self.annotations if a.annotator))


# --------------------------------------------------------------------------- label config


def label_config(
    classes: Sequence[str],
    task_type: str = "multiclass",
    kind: str = "text",
    columns: Sequence[str] = (),
) -> str:
    """The labeling configuration (XML) of a Label Studio project matching a labelwise one.

    Parameters
    ----------
    classes : sequence of str
        The project's classes, in order.
    task_type : {"multiclass", "binary", "multilabel"}
        ``multilabel`` lets an annotator pick several choices (``choice="multiple"``).
    kind : {"text", "image", "tabular"}
        The items' kind: a ``<Text>`` of ``$text``, an ``<Image>`` of ``$image``, or (tabular)
        one ``<Text>`` per column of ``columns``.
    columns : sequence of str
        Tabular items' columns (their payload keys, in order); the choices refer to the first.

    Returns
    -------
    str
        ``<View>`` with the object tag(s) and ``<Choices name="label" ...>``; paste it into
        Label Studio's *Settings -> Labeling Interface -> Code*.
    """
    if not classes:
        raise LabelwiseError("a Label Studio labeling config needs the project's classes.")
    if kind in ("text", "image"):
        tag = "Text" if kind == "text" else "Image"
        objects = [f'  <{tag} name="{kind}" value="${kind}"/>']
        to = kind
    elif kind == "tabular":
        if not columns:
            raise LabelwiseError("a tabular labeling config needs the items' columns.")
        objects = []
        for c in columns:
            if not _IDENT.fullmatch(c):
                raise LabelwiseError(
                    f"column {c!r} cannot be a Label Studio variable; use letters, digits, _."
                )
            objects += [f"  <Header value={quoteattr(c)}/>", f'  <Text name="{c}" value="${c}"/>']
        to = columns[0]
    else:
        raise LabelwiseError(f"kind must be text, image or tabular; got {kind!r}.")
    choice = "multiple" if task_type == TaskType.MULTILABEL else "single"
    lines = [
        "<View>",
        *objects,
        f'  <Choices name="{CONTROL_NAME}" toName="{to}" choice="{choice}" showInline="true">',
        *(f"    <Choice value={quoteattr(str(c))}/>" for c in classes),
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def object_name(payload: Mapping[str, Any]) -> str:
    """``to_name`` of an item's results: ``text``, ``image`` or a tabular item's first column."""
    for kind in ("text", "image"):
        if isinstance(payload.get(kind), str):
            return kind
    return next(iter(payload), "data")


# --------------------------------------------------------------------------- annotators


def annotator_name(value: Any) -> str | None:
    """The labelwise annotator name of a ``completed_by`` value (``None``: nobody).

    An object's ``email`` (else its ``id``), a string as it is, an integer user id ``n`` as
    ``labelstudio-user-n``. Raises :class:`ValueError` for anything else.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        email = value.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip()
        if _is_int(value.get("id")):
            return f"{USER_PREFIX}{value['id']}"
        raise ValueError(f"expected a user object with an email or an id; got {value!r}.")
    if isinstance(value, bool):
        raise ValueError(f"expected a user (an object with email, or a user id); got {value!r}.")
    if isinstance(value, int):
        return f"{USER_PREFIX}{value}"
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"expected a user (an object with email, or a user id); got {value!r}.")


def completed_by(name: str | None) -> Any:
    """The ``completed_by`` value written for a labelwise annotator (inverse of
    :func:`annotator_name`): ``{"email": name}``; ``labelstudio-user-n`` gives back ``n``.

    Label Studio matches ``{"email": ...}`` to its users when it imports the file; a name that
    is no user of that Label Studio is refused there unless
    ``LABEL_STUDIO_ALLOW_IMPORT_TASKS_WITH_UNKNOWN_EMAILS`` is set.
    """
    if name is None:
        return None
    rest = name[len(USER_PREFIX) :] if name.startswith(USER_PREFIX) else ""
    if rest.isdigit():
        return int(rest)
    return {"email": name}


# --------------------------------------------------------------------------- parsing


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _parse_time(v: Any, where: str) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _Bad(where, f"expected an ISO 8601 time string, got {type(v).__name__}.")
    try:
        t = datetime.fromisoformat(v.strip())
    except ValueError:
        raise _Bad(where, f"{v!r} is not an ISO 8601 time (2026-11-30T09:12:01Z).") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _answer(
    result: Any, where: str, classes: Sequence[str], task_type: str
) -> tuple[list[dict[str, Any]], Any]:
    """Check a ``result`` list; return it (copied) and its answer (label or ``None``)."""
    if result is None:
        return [], None
    if not isinstance(result, list):
        raise _Bad(where, f"expected a list of results, got {type(result).__name__}.")
    chosen: list[str] = []
    out = []
    for j, r in enumerate(result):
        at = f"{where}[{j}]"
        if not isinstance(r, dict):
            raise _Bad(at, f"expected an object, got {type(r).__name__}.")
        rtype = r.get("type")
        if not isinstance(rtype, str):
            raise _Bad(f"{at}.type", 'missing or not a string (e.g. "choices").')
        if rtype == "choices":
            value = r.get("value")
            if not isinstance(value, dict):
                raise _Bad(f"{at}.value", 'expected an object {"choices": [...]}.')
            choices = value.get("choices")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise _Bad(f"{at}.value.choices", f"expected a list of class names, got "
                           f"{json.dumps(choices)[:80]}.")  # fmt: skip
            bad = [c for c in choices if classes and c not in classes]
            if bad:
                raise _Bad(
                    f"{at}.value.choices",
                    f"{bad[0]!r} is not a class of the project; use some of {list(classes)!r}.",
                )
            for name in ("from_name", "to_name"):
                if name in r and not isinstance(r[name], str):
                    raise _Bad(f"{at}.{name}", "expected a string.")
            chosen += choices
        out.append(dict(r))
    if not chosen:
        return out, None
    if task_type == TaskType.MULTILABEL:
        return out, sorted(set(chosen))
    if len(set(chosen)) > 1:
        raise _Bad(
            f"{where}",
            f"{len(set(chosen))} choices {sorted(set(chosen))!r} but the project is single-label "
            "(one choice per annotation); make it multilabel or keep one choice.",
        )
    return out, chosen[0]


def _annotation(a: Any, where: str, classes: Sequence[str], task_type: str) -> LSAnnotation:
    if not isinstance(a, dict):
        raise _Bad(where, f"expected an object, got {type(a).__name__}.")
    try:
        who = annotator_name(a.get("completed_by"))
    except ValueError as e:
        raise _Bad(f"{where}.completed_by", str(e)) from None
    if who is not None and len(who) > MAX_NAME_CHARS:
        raise _Bad(f"{where}.completed_by", f"a name of {len(who)} characters (at most "
                   f"{MAX_NAME_CHARS}).")  # fmt: skip
    if "result" not in a:
        raise _Bad(f"{where}.result", "missing; an annotation needs its result list.")
    result, label = _answer(a.get("result"), f"{where}.result", classes, task_type)
    flags = {}
    for name in ("was_cancelled", "ground_truth"):
        v = a.get(name, False)
        if v is None:
            v = False
        if not isinstance(v, bool):
            raise _Bad(f"{where}.{name}", f"expected true or false, got {v!r}.")
        flags[name] = v
    created = _parse_time(a.get("created_at"), f"{where}.created_at")
    lead = a.get("lead_time")
    if lead is not None and (not _is_number(lead) or not math.isfinite(lead) or lead < 0):
        raise _Bad(f"{where}.lead_time", f"expected seconds (a number >= 0), got {lead!r}.")
    aid = a.get("id")
    if aid is not None and not (_is_int(aid) or isinstance(aid, str)):
        raise _Bad(f"{where}.id", f"expected an integer or a string, got {aid!r}.")
    record: dict[str, Any] = {
        "id": aid,
        "completed_by": who,
        "result": result,
        "was_cancelled": flags["was_cancelled"],
        "ground_truth": flags["ground_truth"],
        "created_at": a.get("created_at"),
        "lead_time": lead,
    }
    return LSAnnotation(who, label, flags["was_cancelled"], flags["ground_truth"], created, record)


def _prediction(p: Any, where: str, classes: Sequence[str], task_type: str) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise _Bad(where, f"expected an object, got {type(p).__name__}.")
    if "result" not in p:
        raise _Bad(f"{where}.result", "missing; a prediction needs its result list.")
    result, _ = _answer(p.get("result"), f"{where}.result", classes, task_type)
    score = p.get("score")
    if score is not None and (not _is_number(score) or not math.isfinite(score)):
        raise _Bad(f"{where}.score", f"expected a finite number, got {score!r}.")
    version = p.get("model_version")
    if version is not None and not isinstance(version, str):
        raise _Bad(f"{where}.model_version", f"expected a string, got {version!r}.")
    out: dict[str, Any] = {"model_version": version, "score": score, "result": result}
    return out


def _task(t: Any, i: int, classes: Sequence[str], task_type: str) -> LSTask:
    if not isinstance(t, dict):
        raise LabelStudioFormatError(f"expected a task object, got {type(t).__name__}.",
                                     task_idx=i)  # fmt: skip
    tid = t.get("id")
    shown = tid if _is_int(tid) or (isinstance(tid, str) and len(tid) <= MAX_ID_CHARS) else None
    if isinstance(tid, _BigInt):
        shown = None
    try:
        for key in ("id", "data", "annotations", "predictions"):
            _find_big(t.get(key), key)
        if tid is not None and not _is_int(tid):
            raise _Bad("id", f"expected an integer task id, got {tid!r}.")
        if "data" not in t and {"annotation_id", "annotator"} & t.keys():
            raise _Bad(
                "data",
                "missing, and the task has annotation_id/annotator fields: this looks like "
                "Label Studio's JSON-MIN export, which keeps one answer per task without its "
                "result. Export as JSON (Export -> JSON, or the snapshot API) instead.",
            )
        data = t["data"] if "data" in t else {k: v for k, v in t.items() if k not in _TASK_KEYS}
        if not isinstance(data, dict):
            raise _Bad("data", f"expected an object of fields, got {type(data).__name__}.")
        for k in data:
            if not isinstance(k, str) or not k:
                raise _Bad("data", f"field names must be non-empty strings; got {k!r}.")
        fields = dict(data)
        raw_id = fields.pop(ID_FIELD, None)
        if raw_id is None:
            if tid is None:
                raise _Bad(
                    f"data.{ID_FIELD}",
                    f"missing, and the task has no id; give every task an id or a data.{ID_FIELD}.",
                )
            external_id = str(tid)
        else:
            if not (isinstance(raw_id, str) or _is_int(raw_id)) or not str(raw_id).strip():
                raise _Bad(f"data.{ID_FIELD}", f"expected a non-empty string, got {raw_id!r}.")
            external_id = str(raw_id)
        if len(external_id) > MAX_ID_CHARS:
            raise _Bad(f"data.{ID_FIELD}", f"an id of {len(external_id):,} characters (at most "
                       f"{MAX_ID_CHARS}).")  # fmt: skip
        payload: dict[str, Any]
        if "text" in fields:
            text = fields.pop("text")
            if not isinstance(text, str) or not text.strip():
                raise _Bad("data.text", "empty or not a string; a text task needs its text.")
            payload = {"text": text}
        elif "image" in fields:
            image = fields.pop("image")
            if not isinstance(image, str) or not image.strip():
                raise _Bad("data.image", "empty or not a string; give the image's URL or path.")
            payload = {"image": image}
        else:
            if not fields:
                raise _Bad("data", "no fields; a task needs data.text, data.image or columns.")
            payload, fields = fields, {}
        raw_ann = t.get("annotations")
        if raw_ann is None:
            raw_ann = []
        if not isinstance(raw_ann, list):
            raise _Bad("annotations", f"expected a list, got {type(raw_ann).__name__}.")
        anns = tuple(
            _annotation(a, f"annotations[{j}]", classes, task_type) for j, a in enumerate(raw_ann)
        )
        raw_pred = t.get("predictions")
        if raw_pred is None:
            raw_pred = []
        if not isinstance(raw_pred, list):
            raise _Bad("predictions", f"expected a list, got {type(raw_pred).__name__}.")
        # Label Studio's quick export lists prediction ids only (its snapshot export, with
        # serialization_options.predictions.only_id false, writes them whole): ids say nothing
        # outside that Label Studio, so they are passed over
        preds = tuple(
            _prediction(p, f"predictions[{j}]", classes, task_type)
            for j, p in enumerate(raw_pred)
            if not _is_int(p)
        )
    except _Bad as e:
        raise LabelStudioFormatError(e.message, task_idx=i, task_id=shown, field=e.field) from None
    label = resolve_label(anns)
    return LSTask(
        index=i,
        task_id=tid,
        external_id=external_id,
        payload=payload,
        fields=fields,
        annotations=anns,
        predictions=preds,
        label=label,
        metadata=task_metadata(fields, [a.record for a in anns], preds),
    )


def task_metadata(
    fields: Mapping[str, Any],
    annotations: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The item metadata that keeps a task's extra fields, annotations and predictions."""
    meta: dict[str, Any] = {}
    if fields:
        meta["fields"] = dict(fields)
    ls: dict[str, Any] = {}
    if annotations:
        ls["annotations"] = [dict(a) for a in annotations]
    if predictions:
        ls["predictions"] = [dict(p) for p in predictions]
    if ls:
        meta["labelstudio"] = ls
    return meta


def parse_tasks(
    tasks: Any, classes: Sequence[str] = (), task_type: str = "multiclass"
) -> list[LSTask]:
    """Validate a Label Studio task list (already decoded from JSON) for a project.

    Parameters
    ----------
    tasks : list of dict
        Label Studio tasks (one object is read as a list of one).
    classes : sequence of str
        The project's classes; every choice must be one of them (any, when empty).
    task_type : {"multiclass", "binary", "multilabel"}
        Single-label projects allow one choice per annotation.

    Returns
    -------
    list of LSTask
        In file order, each with its resolved ``label``.

    Raises
    ------
    LabelStudioFormatError
        At the first bad task, naming its position, id and field.
    """
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise LabelStudioFormatError(f"expected a JSON array of tasks, got {type(tasks).__name__}.")
    if not tasks:
        raise LabelStudioFormatError("the task list is empty; nothing to import.")
    out = [_task(t, i, classes, task_type) for i, t in enumerate(tasks)]
    seen: dict[str, int] = {}
    for t in out:
        j = seen.setdefault(t.external_id, t.index)
        if j != t.index:
            raise LabelStudioFormatError(
                f"repeats the item id {t.external_id!r} of tasks[{j}]; each item once.",
                task_idx=t.index,
                task_id=t.task_id,
                field=f"data.{ID_FIELD}" if t.external_id != str(t.task_id) else "id",
            )
    return out


def loads_tasks(
    text: str | bytes, classes: Sequence[str] = (), task_type: str = "multiclass"
) -> list[LSTask]:
    """:func:`parse_tasks` of a JSON document (a Label Studio export file's content)."""
    try:
        obj = json.loads(text, parse_int=_parse_int)
    except UnicodeDecodeError as e:
        raise LabelStudioFormatError(f"the file is not UTF-8 text ({e.reason}).") from None
    except json.JSONDecodeError as e:
        raise LabelStudioFormatError(
            f"invalid JSON at line {e.lineno}, column {e.colno} ({e.msg}); a Label Studio "
            "export is one JSON array."
        ) from None
    except RecursionError:
        raise LabelStudioFormatError("JSON nested too deep.") from None
    return parse_tasks(obj, classes, task_type)


class _BigInt(str):
    """A JSON integer of more than :data:`MAX_INT_DIGITS` digits, kept as text until the task
    check names where it is (``int()`` of 4,300+ digits raises, and nothing stores it)."""


#: Most digits of a JSON integer (64-bit ids fit); longer ones are refused, naming the field.
MAX_INT_DIGITS = 20


def _parse_int(text: str) -> int | _BigInt:
    return _BigInt(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def _find_big(value: Any, where: str) -> None:
    if isinstance(value, _BigInt):
        raise _Bad(
            where,
            f"an integer of {len(value.lstrip('-'))} digits (at most {MAX_INT_DIGITS}); write "
            "long ids as strings.",
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _find_big(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for j, v in enumerate(value):
            _find_big(v, f"{where}[{j}]")


# --------------------------------------------------------------------------- labels


def _vote_key(label: Any) -> Any:
    return tuple(label) if isinstance(label, list) else label


def resolve_label(annotations: Iterable[LSAnnotation]) -> Any:
    """The item label an annotation history settles on (``None``: no answer).

    Only non-cancelled annotations with a choice count. The newest ground-truth annotation
    wins; otherwise each annotator's newest answer is one vote (annotations without an
    annotator count once each) and the most frequent answer wins, ties going to the newest.
    "Newest" is by ``created_at``, then by position in the list.
    """
    answers = [
        (a.created_at or datetime.min.replace(tzinfo=UTC), i, a)
        for i, a in enumerate(annotations)
        if not a.cancelled and a.label is not None
    ]
    if not answers:
        return None
    answers.sort(key=lambda x: (x[0], x[1]))
    truth = [a for _, _, a in answers if a.ground_truth]
    if truth:
        return truth[-1].label
    latest: dict[Any, tuple[int, LSAnnotation]] = {}
    for rank, (_, i, a) in enumerate(answers):
        who = a.annotator if a.annotator is not None else ("#", i)
        latest[who] = (rank, a)
    votes: dict[Any, list[int]] = {}
    for rank, a in latest.values():
        votes.setdefault(_vote_key(a.label), []).append(rank)
    best = max(votes.items(), key=lambda kv: (len(kv[1]), max(kv[1])))[0]
    return list(best) if isinstance(best, tuple) else best


# --------------------------------------------------------------------------- building


def choices_result(
    label: Any, to_name: str = "text", result_id: str | None = None
) -> list[dict[str, Any]]:
    """The ``result`` list of one answer: a ``choices`` result of :data:`CONTROL_NAME`
    (empty for ``label=None``); ``to_name`` is :func:`object_name` of the item."""
    if label is None:
        return []
    choices = [str(c) for c in label] if isinstance(label, list | tuple) else [str(label)]
    r: dict[str, Any] = {}
    if result_id is not None:
        r["id"] = result_id
    r.update(
        {
            "from_name": CONTROL_NAME,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": choices},
        }
    )
    return [r]


def iso_time(t: datetime | None) -> str | None:
    """``t`` as Label Studio writes times (ISO 8601, UTC, ``Z``)."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def native_annotation(
    annotation_id: int,
    annotator: str | None,
    label: Any,
    created: datetime | None,
    *,
    to_name: str = "text",
    lead_time: float | None = None,
) -> dict[str, Any]:
    """The kept-record form (see :func:`build_task`) of an answer given in labelwise."""
    return {
        "id": annotation_id,
        "completed_by": annotator,
        "result": choices_result(label, to_name, f"lw-{annotation_id}"),
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": iso_time(created),
        "lead_time": lead_time,
    }


def prediction(
    label: Any, score: float | None, model_version: str, to_name: str = "text"
) -> dict[str, Any]:
    """A Label Studio prediction of ``label`` with ``score`` (higher: more informative)."""
    return {
        "model_version": model_version,
        "score": None if score is None else float(score),
        "result": choices_result(label, to_name),
    }


def predicted_labels(
    proba: np.ndarray, classes: Sequence[str], task_type: str = "multiclass"
) -> list[Any]:
    """The label of each row of ``proba (n_samples, n_classes)``: the argmax class, or for
    multilabel the classes at probability >= 0.5 (sorted)."""
    p = np.asarray(proba, dtype=np.float64)
    if task_type == TaskType.MULTILABEL:
        return [sorted(classes[j] for j in np.flatnonzero(row >= 0.5)) for row in p]
    return [classes[j] for j in np.argmax(p, axis=1)]


def _export_annotation(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if _is_int(record.get("id")):  # Label Studio keeps it as the annotation's import_id
        out["id"] = record["id"]
    who = completed_by(record.get("completed_by"))
    if who is not None:
        out["completed_by"] = who
    out["result"] = [dict(r) for r in record.get("result") or []]
    out["was_cancelled"] = bool(record.get("was_cancelled", False))
    out["ground_truth"] = bool(record.get("ground_truth", False))
    if record.get("created_at") is not None:
        out["created_at"] = record["created_at"]
    if record.get("lead_time") is not None:
        out["lead_time"] = record["lead_time"]
    return out


def _export_prediction(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model_version": p.get("model_version") or "undefined"}
    if p.get("score") is not None:
        out["score"] = p["score"]
    out["result"] = [dict(r) for r in p.get("result") or []]
    return out


def _choices(record: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for r in record.get("result") or []:
        if isinstance(r, Mapping) and r.get("type") == "choices":
            out += [str(c) for c in (r.get("value") or {}).get("choices") or []]
    return out


def _answer_key(record: Mapping[str, Any]) -> tuple[Any, Any]:
    return record.get("completed_by"), tuple(sorted(set(_choices(record))))


def _record_answer(record: Mapping[str, Any], multilabel: bool) -> LSAnnotation:
    """A kept record back as an :class:`LSAnnotation` (its choices were checked on import)."""
    choices = _choices(record)
    label: Any = None
    if choices:
        label = sorted(set(choices)) if multilabel else choices[0]
    try:
        created = _parse_time(record.get("created_at"), "created_at")
    except _Bad:
        created = None
    return LSAnnotation(
        record.get("completed_by"),
        label,
        bool(record.get("was_cancelled")),
        bool(record.get("ground_truth")),
        created,
        dict(record),
    )


def build_task(
    task_id: int,
    external_id: str,
    payload: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    label: Any = None,
    annotations: Sequence[Mapping[str, Any]] = (),
    predictions: Sequence[Mapping[str, Any]] = (),
    task_type: str = "multiclass",
) -> dict[str, Any]:
    """One Label Studio task for a labelwise item.

    Parameters
    ----------
    task_id : int
        The task's ``id`` (labelwise writes the item id; Label Studio gives imported tasks
        ids of its own).
    external_id : str
        Written as ``data["labelwise_id"]``.
    payload, metadata : mapping
        The item's; ``metadata["fields"]`` join ``data``, ``metadata["labelstudio"]`` holds
        the annotations and predictions a Label Studio import brought.
    label : optional
        The item's label. When the annotations (kept ones, then ``annotations``) do not
        settle on it (:func:`resolve_label`), or there are none, an annotation of ``label``
        without annotator and marked ``ground_truth`` is added, so that importing the task
        back gives the same label.
    annotations : sequence of dict
        Answers given in labelwise (:func:`native_annotation`); one whose annotator and
        choices equal a kept annotation's is not written twice.
    predictions : sequence of dict
        Extra predictions (:func:`prediction`), after the kept ones.
    task_type : str
        The project's; multilabel answers are lists.

    Returns
    -------
    dict
        ``{"id", "data", "annotations", "predictions"}``.
    """
    data: dict[str, Any] = dict(payload)
    fields = metadata.get("fields")
    if isinstance(fields, Mapping):
        data.update({k: v for k, v in fields.items() if k not in data})
    data[ID_FIELD] = external_id
    kept = metadata.get("labelstudio") or {}
    records = [dict(a) for a in kept.get("annotations") or []]
    seen = {_answer_key(r) for r in records}
    for a in annotations:
        if _answer_key(a) not in seen:
            records.append(dict(a))
            seen.add(_answer_key(a))
    if label is not None:
        multi = task_type == TaskType.MULTILABEL
        settled = resolve_label([_record_answer(r, multi) for r in records])
        if settled != label:
            rid = f"lw-label-{task_id}"
            records.append(
                {
                    "id": None,
                    "completed_by": None,
                    "result": choices_result(label, object_name(payload), rid),
                    "was_cancelled": False,
                    "ground_truth": True,
                    "created_at": None,
                    "lead_time": None,
                }
            )
    preds = [*(kept.get("predictions") or []), *predictions]
    return {
        "id": int(task_id),
        "data": data,
        "annotations": [_export_annotation(r) for r in records],
        "predictions": [_export_prediction(p) for p in preds],
    }
