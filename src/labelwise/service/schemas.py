"""Pydantic v2 schemas of the HTTP API: ``XCreate`` / ``XUpdate`` for input, ``XPublic`` for output.

Inputs forbid unknown fields (``extra="forbid"``), so a typo is a 422 naming the field rather
than a silently ignored setting. Outputs are built from the store's frozen dataclasses with
``XPublic.model_validate(obj)`` (``from_attributes=True``); secrets (token hashes) never appear
in an output schema.

Strategy names and parameters and stopping rules are checked against the library here, at the
boundary, so a project that was accepted can always start a round.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from labelwise.errors import LabelwiseError
from labelwise.strategies.registry import DEFAULT_STRATEGY
from labelwise.tasks import TaskType

__all__ = [
    "MAX_ID",
    "AnnotationCreate",
    "AnnotationEdit",
    "AnnotationPublic",
    "AnnotatorCreate",
    "AnnotatorCreated",
    "AnnotatorPublic",
    "BatchProgress",
    "ClaimedTask",
    "ClassNote",
    "DatasetVersionPublic",
    "FlagCreate",
    "FlagPublic",
    "GuidelinesPublic",
    "GuidelinesUpdate",
    "Health",
    "ImportResultPublic",
    "ItemCreate",
    "ItemPublic",
    "ItemsImport",
    "JobPublic",
    "MemberAdd",
    "MemberPublic",
    "MemberRoleUpdate",
    "ModelVersionPublic",
    "Prediction",
    "ProgressPublic",
    "ProjectCreate",
    "ProjectPublic",
    "ProjectUpdate",
    "RecentAnnotation",
    "RoundPublic",
    "TaskPublic",
    "TokenCreate",
    "check_loop_params",
    "check_stopping",
    "check_strategy",
]

MAX_ID = 2**31 - 1  # ids are 32-bit integers on every backend
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Role = Literal["admin", "annotator", "reviewer"]
ProjectRole = Literal["annotator", "reviewer", "owner"]
#: a token's lifetime in days, at creation or rotation (ten years at most)
ExpiresInDays = Annotated[
    int | None,
    Field(ge=1, le=3650, description="Days until the token stops working; omitted: never."),
]
ConsensusMethod = Literal["majority", "dawid_skene"]
TaskTypeName = Literal["multiclass", "binary", "multilabel"]
# strategy_params keys read by the loop (model, calibration, seed, committee, cold start) rather
# than by the strategy itself; labelwise.service.rounds documents each
RESERVED_STRATEGY_PARAMS = frozenset(
    {
        "model",
        "calibration",
        "random_state",
        "committee_size",
        "keywords",
        "cold_start_params",
        "random_fraction",
        "positive_class",
        "label_check",
        "features",  # how items are featurised (issue 11)
    }
)


class _In(BaseModel):
    # strict: a JSON false is not 0.0, "3" is not 3 (the schema says number; so do we)
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --------------------------------------------------------------------------- validation helpers


def _no_nul(value: Any) -> Any:
    """Reject NUL characters anywhere in a JSON value (PostgreSQL cannot store them)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise ValueError("text may not contain NUL (\\u0000) characters")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return value


Json = Annotated[Any, AfterValidator(_no_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_no_nul)]


def check_strategy(
    name: str,
    params: Mapping[str, Any] | None = None,
    task_type: str | None = None,
    *,
    cold_start: bool = False,
) -> None:
    """Check that ``name`` is registered, accepts ``params`` and suits ``task_type``.

    Raises
    ------
    ValueError
        With a message that lists the valid strategy names or says what is wrong.
    """
    from labelwise.strategies import get_strategy
    from labelwise.strategies.registry import get_strategy_class

    try:
        cls = get_strategy_class(name)
    except LabelwiseError as e:
        raise ValueError(str(e)) from None
    if cold_start and not cls.cold_start:
        from labelwise.strategies.registry import list_strategies

        valid = ", ".join(s.name for s in list_strategies() if s.cold_start)
        raise ValueError(
            f"strategy {name!r} needs a fitted model and cannot start cold; use one of: {valid}"
        )
    if task_type is not None and TaskType(task_type) not in cls.task_types:
        supported = ", ".join(sorted(t.value for t in cls.task_types))
        raise ValueError(f"strategy {name!r} does not support {task_type!r} tasks; it supports: "
                         f"{supported}")  # fmt: skip
    kwargs = {k: v for k, v in (params or {}).items() if k not in RESERVED_STRATEGY_PARAMS}
    try:
        get_strategy(name, **kwargs)
    except (LabelwiseError, TypeError, OverflowError) as e:
        raise ValueError(f"bad strategy_params for {name!r}: {e}") from None


# How items are featurised, per kind (the first is the default): strategy_params["features"].
FEATURE_METHODS: dict[str, tuple[str, ...]] = {
    "text": ("tfidf", "embeddings"),
    "image": ("hog", "thumbnails"),  # hog: HOG + colour histograms; thumbnails: 16x16 pixels
}
FEATURE_METHODS_ALL = tuple(m for methods in FEATURE_METHODS.values() for m in methods)


def check_loop_params(params: Mapping[str, Any] | None) -> None:
    """Check the reserved ``strategy_params`` keys that configure the loop, not the strategy.

    Raises
    ------
    ValueError
        Naming the key and what it accepts.
    """
    from labelwise.models.training import CALIBRATIONS as _CALIBRATIONS
    from labelwise.models.training import MODELS as _MODELS

    params = params or {}
    if "model" in params and params["model"] not in _MODELS:
        raise ValueError(f"strategy_params.model must be one of {list(_MODELS)}; got "
                         f"{params['model']!r}")  # fmt: skip
    if "calibration" in params and params["calibration"] not in _CALIBRATIONS:
        raise ValueError(f"strategy_params.calibration must be one of {list(_CALIBRATIONS)}; "
                         f"got {params['calibration']!r}")  # fmt: skip
    seed = params.get("random_state", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"strategy_params.random_state must be an integer in [0, 2**32); got "
                         f"{seed!r}")  # fmt: skip
    size = params.get("committee_size", 5)
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= 50:
        raise ValueError(f"strategy_params.committee_size must be an integer in [2, 50]; got "
                         f"{size!r}")  # fmt: skip
    keywords = params.get("keywords", [])
    if (
        not isinstance(keywords, list)
        or len(keywords) > 100
        or not all(isinstance(k, str) and k.strip() and len(k) <= 200 for k in keywords)
    ):
        raise ValueError("strategy_params.keywords must be a list of at most 100 non-empty "
                         f"words or phrases; got {keywords!r}")  # fmt: skip
    share = params.get("random_fraction", 0.1)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 0.5:
        raise ValueError(f"strategy_params.random_fraction must be a number in [0, 0.5] (the "
                         f"share of each batch drawn at random); got {share!r}")  # fmt: skip
    if not isinstance(params.get("label_check", False), bool):
        raise ValueError(
            "strategy_params.label_check must be true or false (send the labels confident "
            "learning finds suspect to review after each retrain)"
        )
    method = params.get("features")
    if method is not None and method not in FEATURE_METHODS_ALL:
        raise ValueError(f"strategy_params.features must be one of {list(FEATURE_METHODS_ALL)} "
                         f"(text: tfidf or embeddings; images: thumbnails or hog); got "
                         f"{method!r}")  # fmt: skip
    if method == "embeddings":  # a 422 naming the install command now, not a 500 at round time
        from labelwise.embeddings import check_embeddings_available

        try:
            check_embeddings_available()
        except LabelwiseError as e:
            raise ValueError(f"strategy_params.features='embeddings': {e}") from None
    cold = params.get("cold_start_params", {})
    if not isinstance(cold, dict):
        raise ValueError(f"strategy_params.cold_start_params must be an object of the cold-start "
                         f"strategy's parameters; got {cold!r}")  # fmt: skip


def check_stopping(
    config: Mapping[str, Any] | None, task_type: str | None = None, n_classes: int | None = None
) -> None:
    """Check a stopping rule with :func:`labelwise.stopping.from_config` (empty = never stop).

    The metrics it reads must be ones the service records after every retrain: ``accuracy``,
    ``macro_f1`` and, for two-class projects, ``pr_auc``.
    """
    if not config:
        return
    from labelwise.stopping import from_config, metrics_read

    try:
        rule = from_config(config)
    except (LabelwiseError, TypeError, OverflowError) as e:
        raise ValueError(f"bad stopping rule: {e}") from None
    recorded = ["accuracy", "macro_f1"]
    two_classes = task_type == "binary" or (task_type != "multilabel" and n_classes == 2)
    if two_classes or task_type is None:
        recorded.append("pr_auc")
    unknown = sorted(metrics_read(rule) - set(recorded))
    if unknown:
        why = " (pr_auc needs a two-class project)" if "pr_auc" in unknown else ""
        raise ValueError(f"the stopping rule reads metric {unknown[0]!r}, which the service does "
                         f"not record{why}; use one of: {', '.join(recorded)}")  # fmt: skip


# --------------------------------------------------------------------------- projects

_PROJECT_EXAMPLE = {
    "name": "digits",
    "task_type": "multiclass",
    "classes": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    "strategy": DEFAULT_STRATEGY,
    "strategy_params": {},
    "cold_start_strategy": "random",
    "batch_size": 20,
    "stopping": {"any": [{"target": 0.95}, {"max_labels": 500}]},
    "label_cost": 0.08,
    "show_predictions": True,
}


class ProjectCreate(_In):
    """A new labeling project."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PROJECT_EXAMPLE]})

    name: Name
    task_type: TaskTypeName = "multiclass"
    classes: list[Tag] = Field(default_factory=list, max_length=10_000)
    strategy: str = Field(
        DEFAULT_STRATEGY, description="A registered strategy (GET /api/strategies)."
    )
    strategy_params: JsonObject = Field(default_factory=dict)
    cold_start_strategy: str = Field("random", description="Used until a model exists.")
    batch_size: int = Field(10, ge=1, le=100_000, description="Items per round.")
    stopping: JsonObject = Field(
        default_factory=dict, description="Stopping rule, e.g. {'max_labels': 500}; {} = never."
    )
    label_cost: float = Field(1.0, ge=0, allow_inf_nan=False, description="Cost of one label.")
    show_predictions: bool = Field(False, description="Show the model's guess to annotators.")
    consensus_share: float = Field(
        0.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Hardest share of each batch (by the strategy's score) answered by "
        "consensus_k different annotators; 0 = off.",
    )
    consensus_k: int = Field(3, ge=2, le=20, description="Annotators per consensus item.")
    consensus_method: ConsensusMethod = Field(
        "majority", description="How a consensus item's answers are aggregated."
    )
    consensus_min_agreement: float = Field(
        0.6,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Below this vote share (majority) or posterior (dawid_skene) the item goes "
        "to review instead of the training set.",
    )
    gold_rate: float = Field(
        0.0, ge=0, le=0.5, allow_inf_nan=False, description="Share of tasks that are gold items."
    )
    gold_min_accuracy: float = Field(
        0.7,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Annotators below this gold accuracy are flagged.",
    )

    @model_validator(mode="after")
    def _check(self) -> ProjectCreate:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique; got {self.classes!r}")
        if self.task_type == "binary" and self.classes and len(self.classes) != 2:
            raise ValueError(f"a binary project needs exactly 2 classes; got {self.classes!r}")
        check_strategy(self.strategy, self.strategy_params, self.task_type)
        check_loop_params(self.strategy_params)
        cold_params = self.strategy_params.get("cold_start_params")
        check_strategy(self.cold_start_strategy, cold_params, self.task_type, cold_start=True)
        check_stopping(self.stopping, self.task_type, len(self.classes) or None)
        positive = self.strategy_params.get("positive_class")
        if positive is not None and (len(self.classes) != 2 or positive not in self.classes):
            raise ValueError(
                f"strategy_params.positive_class must be one of the two classes of a two-class "
                f"project; got {positive!r} for classes {self.classes!r}"
            )
        return self


class ProjectUpdate(_In):
    """Fields of a project that can change (all optional; name and task type cannot)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"batch_size": 50, "strategy": "margin"}]}
    )

    classes: list[Tag] | None = Field(None, max_length=10_000)
    strategy: str | None = None
    strategy_params: JsonObject | None = None
    cold_start_strategy: str | None = None
    batch_size: int | None = Field(None, ge=1, le=100_000)
    stopping: JsonObject | None = None
    label_cost: float | None = Field(None, ge=0, allow_inf_nan=False)
    show_predictions: bool | None = None
    consensus_share: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    consensus_k: int | None = Field(None, ge=2, le=20)
    consensus_method: ConsensusMethod | None = None
    consensus_min_agreement: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    gold_rate: float | None = Field(None, ge=0, le=0.5, allow_inf_nan=False)
    gold_min_accuracy: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> ProjectUpdate:
        if self.classes is not None and not self.classes:
            # an empty list would make every label check accept anything
            raise ValueError("classes cannot be empty; list the project's classes")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique; got {self.classes!r}")
        if self.strategy is not None:
            check_strategy(self.strategy, self.strategy_params)
        if self.strategy_params is not None:
            check_loop_params(self.strategy_params)
        if self.cold_start_strategy is not None:
            cold_params = (self.strategy_params or {}).get("cold_start_params")
            check_strategy(self.cold_start_strategy, cold_params, cold_start=True)
        check_stopping(self.stopping)
        return self

    def changes(self) -> dict[str, Any]:
        """The fields that were set (``None`` means "leave as it is")."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class ProjectPublic(_Out):
    id: int
    name: str
    task_type: str
    classes: list[str]
    strategy: str
    strategy_params: dict[str, Any]
    cold_start_strategy: str
    batch_size: int
    stopping: dict[str, Any]
    label_cost: float
    show_predictions: bool
    created: datetime
    consensus_share: float = 0.0
    consensus_k: int = 3
    consensus_method: str = "majority"
    consensus_min_agreement: float = 0.6
    gold_rate: float = 0.0
    gold_min_accuracy: float = 0.7


# --------------------------------------------------------------------------- items


class ItemCreate(_In):
    """One item given inline (JSON import)."""

    # 500: the items.external_id column's width (a longer one was a database error)
    external_id: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
    payload: JsonObject = Field(
        description="What the annotator sees: {'text': ...}, {'image': ...} or tabular fields."
    )
    metadata: JsonObject = Field(default_factory=dict)
    label: Json = Field(None, description="A known label (validation split, seed labels).")
    gold: bool = Field(
        False, description="A gold item: its label is known and only measures annotators."
    )


class ItemsImport(_In):
    """Items given inline in a JSON body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"external_id": "a1", "payload": {"text": "great product"}},
                        {"external_id": "a2", "payload": {"text": "broke"}, "label": "neg"},
                    ]
                }
            ]
        },
    )

    items: list[ItemCreate] = Field(min_length=1, max_length=100_000)


class ItemPublic(_Out):
    id: int
    project_id: int
    external_id: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    status: str
    label: Any
    created: datetime


class ItemQualityPublic(ItemPublic):
    """An item with its data-quality fields (admins and reviewers only: a gold item's known
    label is never sent to annotators)."""

    consensus: int = Field(description="Answers the item needs (consensus_k on hard items).")
    gold_label: Any = None
    review_reason: str | None = None
    review_outcome: str | None = Field(None, description="'confirmed' or 'corrected'.")
    resolved_by: int | None = None
    resolved_at: datetime | None = None


class GoldMark(_In):
    """Make an item gold: its known label measures annotators and never trains."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "pos"}]})

    label: Json = Field(description="The item's known label (a class of the project).")


class ReviewResolve(_In):
    """A reviewer's decision on an item in review."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "pos"}]})

    label: Json = Field(description="The item's label (a class of the project).")


class ReviewSend(_In):
    """Items to send to the review queue by hand."""

    item_ids: list[Id] = Field(min_length=1, max_length=10_000)


class ReviewAnswer(BaseModel):
    annotation_id: int
    annotator_id: int | None
    annotator: str
    label: Any
    created: datetime


class ReviewItem(BaseModel):
    """The next item in review: its answers side by side and the model's guess."""

    item: ItemQualityPublic
    annotations: list[ReviewAnswer]
    prediction: dict[str, Any] | None
    classes: list[str]
    remaining: int = Field(description="Items in review from this one on.")


class AnnotatorQualityPublic(BaseModel):
    annotator_id: int
    name: str
    n_answers: int
    gold_accuracy: float | None
    n_gold: int
    consensus_agreement: float | None
    n_consensus: int
    mean_kappa: float | None = Field(description="Mean Cohen's kappa against co-annotators.")
    labels_per_hour: float | None
    flagged: bool = Field(description="Gold accuracy below the project's gold_min_accuracy.")


class QualityReport(BaseModel):
    """Annotator quality in a project."""

    annotators: list[AnnotatorQualityPublic]
    fleiss_kappa: float | None = Field(description="Over items answered by 2+ people.")
    kappa_pairs: list[dict[str, Any]]
    gold_min_accuracy: float


class ImportResultPublic(_Out):
    """What an import did: rows read, items created, rows skipped (existing external ids),
    items replaced (``on_duplicate=update``), and the repeated ids whose content differed.

    The last three are present only when not zero (empty): an ordinary import answers the
    three counts alone, as it always has."""

    n_read: int
    n_created: int
    n_skipped: int
    n_updated: int = 0
    n_changed: int = Field(
        0, description="Rows whose external id exists with different content (skip: kept)."
    )
    changed_ids: list[str] = Field(
        default_factory=list, description="The first (at most 10) of those ids."
    )
    n_annotations: int = Field(0, description="Label Studio: annotations kept.")
    n_predictions: int = Field(0, description="Label Studio: predictions kept.")
    n_annotators_created: int = Field(0, description="Label Studio: annotators created.")


# --------------------------------------------------------------------------- rounds, tasks


class RoundPublic(_Out):
    id: int
    project_id: int
    number: int
    strategy: str
    created: datetime
    closed: datetime | None


class TaskPublic(_Out):
    id: int
    project_id: int
    round_id: int
    item_id: int
    status: str
    lease_owner: int | None
    lease_expires: datetime | None
    priority: float
    routing_tag: str | None
    created: datetime
    confidence: float | None = None


class Prediction(BaseModel):
    """The current model's guess for an item (shown when the project says so)."""

    label: Any
    confidence: float | None = Field(
        None,
        description="The model's (calibrated) probability of the label when the task was "
        "queued or last re-scored; null for tasks queued before it was recorded.",
    )


class BatchProgress(BaseModel):
    """Where a task stands in its round's batch: "12 of 50 in this batch"."""

    round_number: int
    position: int = Field(description="This task's place: the batch's finished tasks + 1.")
    total: int = Field(description="Tasks in the round.")
    finished: int = Field(description="Tasks of the round labeled or skipped, by anyone.")


class ClaimedTask(BaseModel):
    """A task leased to the caller, with what to label and, optionally, the model's guess."""

    task: TaskPublic
    item: ItemPublic
    classes: list[str]
    prediction: Prediction | None = None
    hard_case: bool = Field(
        False,
        description="The model is unsure of this item (its confidence is below the midpoint "
        "between chance and certainty): the page shows the guidelines' hard-case "
        "instructions.",
    )
    batch: BatchProgress | None = None


class AnnotationCreate(_In):
    """A label for a leased task."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"label": "pos", "duration_s": 3.2}]}
    )

    label: Json = Field(description="A class name; for multilabel projects a list of them.")
    duration_s: float | None = Field(None, ge=0, le=1e7, allow_inf_nan=False)


class AnnotationPublic(_Out):
    id: int
    task_id: int | None
    item_id: int
    annotator_id: int | None
    label: Any
    created: datetime
    duration_s: float | None
    guideline_version: int | None = Field(
        None, description="The project's guidelines version when it was made (null: none)."
    )


class AnnotationEdit(_In):
    """A new answer for one of your earlier annotations."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"label": "neg", "duration_s": 2.0}]}
    )

    label: Json = Field(description="A class name; for multilabel projects a list of them.")
    duration_s: float | None = Field(None, ge=0, le=1e7, allow_inf_nan=False)


class RecentAnnotation(BaseModel):
    """One entry of an annotator's history: the answer, its item, whether it can change."""

    annotation: AnnotationPublic
    item: ItemPublic
    editable: bool = Field(description="Its round is open: POST .../edit can still change it.")


# --------------------------------------------------------------------------- guidelines, flags

GuideText = Annotated[str, Field(max_length=100_000), AfterValidator(_no_nul)]
NoteText = Annotated[str, Field(max_length=2_000), AfterValidator(_no_nul)]


class ClassNote(BaseModel):
    """What a class means, with examples (plain text; shown on the class button)."""

    model_config = ConfigDict(extra="forbid")

    definition: NoteText = ""
    examples: list[NoteText] = Field(default_factory=list, max_length=20)


class GuidelinesUpdate(_In):
    """A new version of a project's guidelines (nothing is overwritten)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "# Sentiment\nLabel the review as a whole.",
                    "classes": {"pos": {"definition": "Praise", "examples": ["Loved it"]}},
                    "hard_cases": "Sarcasm counts as *neg*.",
                }
            ]
        },
    )

    body: GuideText = Field("", description="Markdown; raw HTML is shown as text.")
    classes: Annotated[
        dict[Annotated[str, Field(max_length=200)], ClassNote], AfterValidator(_no_nul)
    ] = Field(default_factory=dict, max_length=1000, description="Notes per class name.")
    hard_cases: GuideText = Field(
        "", description="Markdown shown on items the model is unsure of (hard cases)."
    )


class GuidelinesPublic(BaseModel):
    """A version of the guidelines with its Markdown rendered to safe HTML."""

    project_id: int
    version: int | None = Field(description="null: the project has no guidelines yet.")
    body: str
    body_html: str
    classes: dict[str, ClassNote]
    hard_cases: str
    hard_cases_html: str
    author_id: int | None
    created: datetime | None


class FlagCreate(_In):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "The text is cut off."}]}
    )

    reason: Annotated[str, Field(min_length=1, max_length=2_000), AfterValidator(_no_nul)]


class FlagPublic(_Out):
    id: int
    project_id: int
    item_id: int
    task_id: int | None
    annotator_id: int | None
    reason: str
    created: datetime
    external_id: str | None = Field(None, description="The item's external id (in lists).")
    annotator: str | None = Field(None, description="The annotator's name (in lists).")


# --------------------------------------------------------------------------- annotators


class AnnotatorCreate(_In):
    """A new user; the response carries the API token, shown once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ana",
                    "role": "annotator",
                    "skills": ["de"],
                    "projects": [1],
                    "expires_in_days": 90,
                }
            ]
        },
    )

    name: Name
    role: Role = "annotator"
    skills: list[Tag] = Field(default_factory=list, max_length=1000)
    projects: list[Id] = Field(default_factory=list, max_length=10_000)
    expires_in_days: ExpiresInDays = None


class AnnotatorPublic(_Out):
    id: int
    name: str
    role: str
    skills: list[str]
    projects: list[int]
    project_roles: dict[int, str] = Field(
        default_factory=dict, description="Project id -> annotator, reviewer or owner."
    )
    created: datetime
    token_expires: datetime | None = Field(None, description="When the token stops working.")
    token_revoked: datetime | None = Field(None, description="When the token was revoked.")


class AnnotatorCreated(AnnotatorPublic):
    token: str = Field(description="The bearer token; it is stored hashed and shown only now.")


class MemberAdd(_In):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"annotator_id": 2, "role": "reviewer"}]}
    )

    annotator_id: Id
    role: ProjectRole | None = Field(
        None, description="Omitted: annotator for a new member; an existing one keeps theirs."
    )


class MemberRoleUpdate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "owner"}]})

    role: ProjectRole


class MemberPublic(BaseModel):
    """A member of one project: their role there, and nothing about other projects."""

    id: int
    name: str
    role: str = Field(description="The global role: admin, reviewer or annotator.")
    project_role: str = Field(description="The role on this project.")
    skills: list[str]
    created: datetime


class TokenCreate(_In):
    """A rotation: the new token, and how long it lives."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"expires_in_days": 30}]}
    )

    expires_in_days: ExpiresInDays = None


# --------------------------------------------------------------------------- versions, jobs


class ModelVersionPublic(_Out):
    id: int
    project_id: int
    round_id: int | None
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    created: datetime


class DatasetVersionPublic(_Out):
    id: int
    project_id: int
    content_hash: str
    n_labels: int
    created: datetime


class JobPublic(_Out):
    id: int
    kind: str
    project_id: int | None
    status: str
    payload: dict[str, Any]
    attempts: int
    worker_id: str | None
    leased_until: datetime | None
    error: str | None
    created: datetime
    updated: datetime
    not_before: datetime | None = Field(
        None, description="A queued retry is not run before this time (its backoff)."
    )
    progress: dict[str, Any] | None = Field(
        None,
        description="An import job: phase (checking, writing, done), rows_done and rows_total "
        "(null while checking).",
    )


# --------------------------------------------------------------------------- progress, health


class ProgressPublic(BaseModel):
    """Where a project stands (:func:`labelwise.service.progress.project_progress`)."""

    project_id: int
    n_items: int
    n_labeled: int
    n_unlabeled: int
    n_annotations: int = Field(description="Labels given by annotators (what was paid for).")
    rounds: int
    open_rounds: int
    queue_depth: int = Field(description="Tasks claimable now.")
    n_validation: int = Field(description="Validation items (imported with labels, never queued).")
    n_to_label: int = Field(description="Items labeling is about: n_items - n_validation.")
    learning_curve: list[tuple[int, float]] = Field(description="(n_labels, accuracy) per model.")
    random_curve: list[tuple[int, float]] = Field(
        description="(n_random_labels, accuracy) of the model fitted on random labels only, "
        "every measured point (the dashboard draws them once random_baseline.ready)."
    )
    random_accuracy_estimate: float | None = Field(
        description="Power-law estimate of random sampling at the current labels; null until "
        "random_baseline.ready."
    )
    random_baseline: dict[str, Any] = Field(
        description="ready (>= 20 random labels over >= 3 retrains), note (the one sentence to "
        "show), n_random, n_points, accuracy, ci_low, ci_high (95% Wilson), active_accuracy "
        "(the active curve at n_random labels), n_eval."
    )
    macro_f1: float | None
    macro_f1_curve: list[tuple[int, float]] = Field(description="(n_labels, macro-F1) per model.")
    majority_baseline: dict[str, Any] | None = Field(
        description="The constant most-frequent-class prediction on the evaluation labels: "
        "label, share, accuracy, macro_f1, balanced_accuracy, n."
    )
    headline_metric: Literal["accuracy", "macro_f1"] = Field(
        description="The target's metric, else macro_f1 when the majority class holds >= 60% "
        "of the evaluation labels, else accuracy."
    )
    reference: dict[str, Any] | None = Field(
        description="Learning curves replayed offline with known labels (title, protocol, "
        "metric, curves: name -> [[n_labels, mean, low, high], ...]), if the project has them."
    )
    throughput: dict[int, float] = Field(
        description="Labels per hour of active labeling time per annotator id (labels of the "
        "last 24 h; gaps over 5 minutes are breaks)."
    )
    cost: float = Field(description="n_annotations x label_cost.")
    accuracy: float | None
    ece: float | None
    target: float | None
    target_metric: str | None
    projected_labels_to_target: int | None
    labels_saved: float | None
    money_saved: float | None
    stopping_status: str = Field(description="'stop now: <reason>' or 'continue: <reason>'.")
    quality: dict[str, int] = Field(
        default_factory=dict,
        description="Data quality: extra_annotations (consensus answers beyond one per item, "
        "counted in cost), consensus_items, gold, gold_answers, in_review, and per review "
        "reason (disagreement, label_issue, annotator, manual) _flagged / _confirmed / "
        "_corrected.",
    )
    strategy_health: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per retrain: model_version_id, round, strategy, arm (the adaptive "
        "strategy's choice), agreement (with the previous model on the stop set), "
        "batch_accuracy (the batch under the model that chose it), class_balance_tvd (batch "
        "vs predicted pool), n_batch, n_labels, accuracy, random_accuracy, n_random.",
    )
    strategy_warning: str | None = Field(
        default=None,
        description="Set when the strategy is behind random sampling beyond noise (the "
        "measured random baseline's 95% interval).",
    )
    batch_advice: dict[str, Any] = Field(
        default_factory=dict,
        description="batch_size (None until measured), labels_during_retrain and a note: the "
        "smallest batch whose labeling covers a retrain at the team's throughput.",
    )

    @classmethod
    def from_progress(cls, progress: Any) -> ProgressPublic:
        from dataclasses import asdict

        return cls.model_validate(asdict(progress))


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


# ------------------------------------------------------------------------ model sources (issue 11)


class ModelSourceUpdate(BaseModel):
    """``PUT /api/projects/{id}/model``: where the project's probabilities come from."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["builtin", "predictions", "endpoint"] = Field(
        description="builtin: labelwise's own model; predictions: the newest uploaded "
        "predictions; endpoint: an external model over HTTP (give its URL)."
    )
    endpoint: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Base URL of the model endpoint (POST {endpoint}/predict and /train).",
    )


class ModelUploadPublic(_Out):
    """A version of predictions or embeddings (uploaded, or returned by the endpoint)."""

    id: int
    project_id: int
    kind: Literal["predictions", "embeddings"]
    version: int
    origin: Literal["upload", "endpoint"]
    n_rows: int
    n_cols: int
    classes: list[str]
    model_version: str | None
    created: datetime


class ModelSourcePublic(BaseModel):
    """A project's model source, its versions and the last model job error."""

    project_id: int
    source: str
    endpoint: str | None
    updated: datetime | None
    uploads: list[ModelUploadPublic]
    active: dict[str, int | None] = Field(
        description="Ids of the versions in use: {'predictions': id or null, 'embeddings': ...}."
    )
    last_error: str | None = Field(
        None, description="The error of the newest predict/retrain job, unless it is done."
    )
    last_error_job_id: int | None = None
    last_error_job_status: str | None = None
    next_attempt_at: datetime | None = Field(
        None, description="When that job is tried again (exponential backoff)."
    )
    job_id: int | None = Field(
        None, description="PUT with an endpoint: the queued job that fetches its predictions."
    )

    @classmethod
    def from_status(cls, st: Any, job_id: int | None = None) -> ModelSourcePublic:
        return cls(
            project_id=st.source.project_id,
            source=st.source.source,
            endpoint=st.source.endpoint,
            updated=st.source.updated,
            uploads=[ModelUploadPublic.model_validate(u) for u in st.uploads],
            active=st.active,
            last_error=st.last_error,
            last_error_job_id=st.last_error_job_id,
            last_error_job_status=st.last_error_job_status,
            next_attempt_at=st.next_attempt_at,
            job_id=job_id,
        )
