"""Data quality in the service: consensus on the hardest items, gold checks and the review queue.

Orchestration over a store; the arithmetic is the compute band's:
:func:`labelwise.annotators.vote_counts`, :func:`~labelwise.annotators.majority_vote` and
:func:`~labelwise.annotators.dawid_skene` (the same functions the simulator aggregates with), and
:mod:`labelwise.agreement` for annotator quality.

Consensus
---------
A project's ``consensus_share`` is the hardest share of each batch, by the strategy's score (the
task priority), that gets ``consensus_k`` tasks instead of one (:func:`consensus_copies`); the
store serves each of them to a different annotator. When an item's answers are in (or its other
tasks were skipped), :func:`after_answer` aggregates the project's *whole* annotation history,
so Dawid–Skene estimates each annotator's confusion matrix from everything they labelled, and
resolves the item: its label is the top class, unless the agreement (the top class's vote share
for ``"majority"``, its posterior for ``"dawid_skene"``) is below
``consensus_min_agreement``; then the item goes to review and stays out of the training set.

Gold
----
Gold items (imported with ``gold=true`` or marked by an admin) carry a known label. A claim
serves one (:func:`claim_task`) with probability ``gold_rate``, drawn from a generator seeded by
the project, the annotator and how many answers they gave, so a rerun serves the same. The
task looks like any other to the annotator; the answer never resolves the item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from labelwise.service import webhooks
from labelwise.storage.base import Annotation, BaseStore, Project, Task

__all__ = [
    "Resolution",
    "after_answer",
    "aggregate",
    "claim_task",
    "consensus_copies",
    "flag_label_issues",
    "gold_due",
    "quality_counts",
    "reaggregate",
]

#: Label-error checks run from this many training labels on (fewer make noisy folds).
LABEL_CHECK_MIN_LABELS = 50
#: At most this share of the training labels goes to review per retrain: a reviewer's queue
#: should hold the most suspect items, not a tenth of the project.
LABEL_CHECK_MAX_SHARE = 0.05

log = logging.getLogger(__name__)


def consensus_copies(
    store: BaseStore, project: Project, scores: Sequence[float], n_extra: int = 0
) -> list[int] | None:
    """Tasks per picked item: ``consensus_k`` for the hardest ``consensus_share`` of the
    strategy's picks (highest score first), one for the rest and for ``n_extra`` audit items.

    ``k`` is capped at the project's number of members: with fewer people than ``k`` the
    extra tasks could never be answered (an annotator never gets an item twice), and the batch
    would never complete. ``None`` (one task each) when consensus is off or fewer than two
    people label the project.
    """
    n = len(scores)
    if project.consensus_share <= 0 or n == 0:
        return None
    k = min(project.consensus_k, len(store.list_annotators(project.id)))
    if k < 2:
        return None
    n_hard = min(n, int(np.floor(project.consensus_share * n + 0.5)))
    copies = [1] * (n + n_extra)
    # stable: ties keep the strategy's order
    for i in np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:n_hard]:
        copies[int(i)] = k
    return copies


# --------------------------------------------------------------------------- aggregation


def _key(label: Any) -> str:
    return json.dumps(label, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Votes:
    """A project's annotation history as the vote matrix the compute band takes.

    Attributes
    ----------
    item_ids : list of int
        Row ``i`` is item ``item_ids[i]``.
    annotator_ids : list of int
        Column ``a`` is annotator ``annotator_ids[a]``.
    labels : list
        Class index ``j`` is label ``labels[j]`` (the project's classes first).
    votes : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not answer.
    """

    item_ids: list[int]
    annotator_ids: list[int]
    labels: list[Any]
    votes: np.ndarray

    def row(self, item_id: int) -> int:
        return self.item_ids.index(item_id)


def history_votes(project: Project, annotations: Sequence[Annotation]) -> Votes:
    """The vote matrix of ``annotations`` (a later answer of the same person wins)."""
    keys: dict[str, int] = {}
    labels: list[Any] = []
    for c in project.classes if project.task_type != "multilabel" else ():
        keys[_key(c)] = len(labels)
        labels.append(c)
    answers = [a for a in annotations if a.annotator_id is not None]
    for a in answers:
        if _key(a.label) not in keys:  # multilabel sets, or projects without classes
            keys[_key(a.label)] = len(labels)
            labels.append(a.label)
    item_ids = sorted({a.item_id for a in answers})
    annotator_ids = sorted({int(a.annotator_id) for a in answers})  # type: ignore[arg-type]
    rows = {iid: i for i, iid in enumerate(item_ids)}
    cols = {aid: j for j, aid in enumerate(annotator_ids)}
    votes = np.full((len(item_ids), len(annotator_ids)), -1, dtype=np.int64)
    for a in answers:
        votes[rows[a.item_id], cols[int(a.annotator_id)]] = keys[_key(a.label)]  # type: ignore[arg-type]
    return Votes(item_ids, annotator_ids, labels, votes)


@dataclass(frozen=True)
class Resolution:
    """The aggregate of one item's answers.

    Attributes
    ----------
    item_id : int
    label : Any
        The top class.
    agreement : float
        Its vote share (majority) or posterior (Dawid–Skene), in [0, 1].
    n_answers : int
    method : str
    """

    item_id: int
    label: Any
    agreement: float
    n_answers: int
    method: str


def aggregate(project: Project, annotations: Sequence[Annotation], method: str | None = None):
    """Resolve every answered item of the project from its whole annotation history.

    Parameters
    ----------
    project : Project
    annotations : sequence of Annotation
        The project's annotations (all of them, so Dawid–Skene sees each annotator's record).
    method : {"majority", "dawid_skene"}, optional
        Default the project's ``consensus_method``.

    Returns
    -------
    dict of int to Resolution
        Keyed by item id.
    """
    from labelwise.annotators import dawid_skene, majority_vote, vote_counts

    method = project.consensus_method if method is None else method
    v = history_votes(project, annotations)
    if not v.item_ids:
        return {}
    n_classes = len(v.labels)
    counts = vote_counts(v.votes, n_classes)
    n_answers = counts.sum(axis=1)
    if method == "dawid_skene":
        share = dawid_skene(v.votes, n_classes)[0]
        top = np.argmax(share, axis=1)
    else:
        share = counts / np.maximum(n_answers[:, None], 1.0)
        top = majority_vote(v.votes, n_classes, random_state=project.id)
    return {
        iid: Resolution(
            iid, v.labels[int(top[i])], float(share[i, top[i]]), int(n_answers[i]), method
        )
        for i, iid in enumerate(v.item_ids)
    }


def after_answer(store: BaseStore, item_id: int) -> str | None:
    """Resolve a consensus item once its answers are in; what happened, or ``None``.

    Called after every answer or skip (:func:`labelwise.service.rounds.submit_annotation`);
    items that need one answer are resolved by the store and return ``None`` at once. A
    consensus item is ready when it has ``consensus`` answers or none of its tasks is queued or
    leased any more (the others were skipped). It becomes ``labeled`` with the aggregate label
    when the agreement reaches ``consensus_min_agreement``, else it goes to review. Returns
    ``"labeled"``, ``"review"`` or ``None`` (not ready).
    """
    item = store.get_item(item_id)
    if item.consensus <= 1 or item.status not in ("queued", "skipped"):
        return None
    project = store.get_project(item.project_id)
    mine = store.list_annotations(project.id, item_id=item_id)
    open_tasks = [
        t for t in store.list_tasks(project.id, item_id=item_id) if t.status in ("queued", "leased")
    ]
    if not mine or (len(mine) < item.consensus and open_tasks):
        return None
    res = aggregate(project, store.list_annotations(project.id))[item_id]
    if res.agreement >= project.consensus_min_agreement:
        store.set_item_label(item_id, res.label)
        outcome = "labeled"
    else:
        store.send_to_review([item_id], "disagreement")
        outcome = "review"
    log.info(
        "item %d: %d answers, %s agreement %.2f -> %s",
        item_id, res.n_answers, res.method, res.agreement, outcome,
    )  # fmt: skip
    return outcome


def flag_label_issues(
    store: BaseStore, project: Project, train_ids: np.ndarray, X: Any, y: np.ndarray,
    template: Any, *, random_state: int = 0,
) -> int:  # fmt: skip
    """Send the labels confident learning finds suspect to review (``"label_issue"``).

    Runs when ``project.strategy_params["label_check"]`` is true, for single-label projects with
    at least :data:`LABEL_CHECK_MIN_LABELS` training labels; out-of-fold probabilities and
    cleanlab's ranking are :func:`labelwise.quality.find_label_issues`. Items a reviewer already
    resolved are never flagged again, and at most :data:`LABEL_CHECK_MAX_SHARE` of the labels
    (the most suspect) go per retrain. Returns how many items moved to review.

    Parameters
    ----------
    store : BaseStore
    project : Project
    train_ids : ndarray of shape (n_labeled,)
        Item ids of the training labels, aligned with ``X`` and ``y``.
    X : array-like or sparse matrix of shape (n_labeled, n_features)
    y : ndarray of shape (n_labeled,)
    template : classifier
        The project's model template (cloned per fold).
    random_state : int
        Seeds the folds.
    """
    from labelwise.errors import LabelwiseError
    from labelwise.quality import find_label_issues
    from labelwise.tasks import TaskType

    if not project.strategy_params.get("label_check") or project.task_type == TaskType.MULTILABEL:
        return 0
    if train_ids.shape[0] < LABEL_CHECK_MIN_LABELS:
        return 0
    try:
        issues = find_label_issues(template, X, y, random_state=random_state)
    except LabelwiseError as e:  # e.g. a class with too few labels yet: check next time
        log.info("project %d: label check skipped: %s", project.id, e)
        return 0
    reviewed = {it.id for it in store.list_items(project.id, status="labeled") if it.resolved_by}
    suspects = [int(i) for i in train_ids[issues.idx] if int(i) not in reviewed]
    cap = max(1, int(LABEL_CHECK_MAX_SHARE * train_ids.shape[0]))
    moved = store.send_to_review(suspects[:cap], "label_issue") if suspects else 0
    webhooks.label_errors_flagged(store, project.id, suspects[:cap] if moved else [])
    log.info("project %d: %d suspect labels sent to review", project.id, moved)
    return moved


def reaggregate(store: BaseStore, project_id: int) -> dict[str, int]:
    """Resolve every consensus item again from the whole history, as evidence accumulates.

    An item resolved early saw few answers of each annotator; Dawid–Skene learns who is
    reliable (or systematically wrong) from everything they labelled since. Items a reviewer
    resolved, gold items and items already in review are left alone. Returns how many items
    changed label (``"relabeled"``) and how many went to review (``"review"``).
    """
    project = store.get_project(project_id)
    out = {"relabeled": 0, "review": 0}
    items = [
        it
        for it in store.list_items(project_id, status="labeled")
        if it.consensus > 1 and it.resolved_by is None
    ]
    if not items:
        return out
    res = aggregate(project, store.list_annotations(project_id))
    low = []
    for it in items:
        r = res.get(it.id)
        if r is None:
            continue
        if r.agreement < project.consensus_min_agreement:
            low.append(it.id)
        elif r.label != it.label:
            store.set_item_label(it.id, r.label)
            out["relabeled"] += 1
    if low:
        out["review"] = store.send_to_review(low, "disagreement")
    return out


def quality_counts(store: BaseStore, project_id: int) -> dict[str, int]:
    """What data quality cost and found in a project (shown by progress and ``project status``).

    Keys: ``extra_annotations`` (answers beyond the first on non-gold items: what consensus
    added to the cost), ``consensus_items``, ``gold`` (gold items), ``gold_answers``,
    ``in_review``, and for each review reason (``disagreement``, ``label_issue``,
    ``annotator``, ``manual``) ``<reason>_flagged`` (sent to review), ``<reason>_confirmed``
    and ``<reason>_corrected`` (resolved by a reviewer keeping / changing the label).
    """
    from labelwise.storage.base import REVIEW_REASONS

    # counted by the store: a million-annotation project is never listed for its dashboard
    answered = store.count_annotations_by_gold(project_id)
    n_answers, n_items = answered.get(False, (0, 0))
    out = {
        "extra_annotations": n_answers - n_items,
        "consensus_items": 0,
        "gold": store.count_items(project_id, status="gold"),
        "gold_answers": answered.get(True, (0, 0))[0],
        "in_review": 0,
    }
    for reason in REVIEW_REASONS:
        for what in ("flagged", "confirmed", "corrected"):
            out[f"{reason}_{what}"] = 0
    # counted by the store: listing the items would read every one of a million-item project
    for (reason, outcome, in_review), n in store.count_review_items(project_id).items():
        if reason == "consensus":
            out["consensus_items"] = n
            continue
        out[f"{reason}_flagged"] += n
        if in_review:
            out["in_review"] += n
        elif outcome in ("confirmed", "corrected"):
            out[f"{reason}_{outcome}"] += n
    return out


# --------------------------------------------------------------------------- gold


def gold_due(project: Project, annotator_id: int, n_answers: int) -> bool:
    """Whether the annotator's next task is a gold one: a draw below ``gold_rate`` from a
    generator seeded by (project, annotator, answers so far), so the schedule is reproducible."""
    if project.gold_rate <= 0:
        return False
    rng = np.random.default_rng([project.id, annotator_id, n_answers])
    return bool(rng.random() < project.gold_rate)


def claim_task(
    store: BaseStore,
    project: Project,
    annotator_id: int,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    max_leases: int | None = None,
) -> Task | None:
    """The annotator's next task: a gold item when one is due and there is work in the queue
    (gold never keeps someone busy after the batch is done), else the queue's next task.
    ``max_leases``: :class:`~labelwise.storage.base.LeaseLimitError` when the annotator
    already holds that many leases in the project (checked in the claim's transaction)."""
    if project.gold_rate > 0 and store.queue_depth(project.id, now=now) > 0:
        n = store.count_annotations(project.id, annotator_id=annotator_id)
        if gold_due(project, annotator_id, n):
            task = store.lease_gold_task(
                project.id, annotator_id, lease_seconds=lease_seconds, now=now,
                max_leases=max_leases,
            )  # fmt: skip
            if task is not None:
                return task
    return store.claim_next_task(
        project.id, annotator_id, lease_seconds=lease_seconds, now=now, max_leases=max_leases
    )


# --------------------------------------------------------------------------- annotator quality


@dataclass(frozen=True)
class AnnotatorQuality:
    """One annotator's record in a project (:func:`annotator_quality`).

    Attributes
    ----------
    annotator_id : int
    name : str
    n_answers : int
    gold_accuracy : float or None
        Share of their gold answers equal to the gold label (``None`` without gold answers).
    n_gold : int
    consensus_agreement : float or None
        Share of their answers on resolved consensus items equal to the resolved label.
    n_consensus : int
    mean_kappa : float or None
        Mean Cohen's κ against the annotators they share at least two items with.
    labels_per_hour : float or None
        Throughput per hour of active labeling (:func:`labelwise.progress.active_labels_per_hour`).
    flagged : bool
        Gold accuracy below the project's ``gold_min_accuracy``.
    """

    annotator_id: int
    name: str
    n_answers: int
    gold_accuracy: float | None
    n_gold: int
    consensus_agreement: float | None
    n_consensus: int
    mean_kappa: float | None
    labels_per_hour: float | None
    flagged: bool


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def annotator_quality(store: BaseStore, project_id: int) -> dict[str, Any]:
    """Per-annotator gold accuracy, agreement with consensus, Cohen's κ and throughput, and the
    project's Fleiss' κ (over items answered by two people or more, gold excluded).

    Returns
    -------
    dict
        ``annotators`` (list of :class:`AnnotatorQuality`), ``fleiss_kappa`` (float or None),
        ``kappa_pairs`` (``[{"a": id, "b": id, "kappa": float, "n_shared": int}]``) and
        ``gold_min_accuracy``.
    """
    from labelwise.agreement import accuracy_against, fleiss_kappa, pairwise_cohen_kappa
    from labelwise.annotators import vote_counts
    from labelwise.progress import active_labels_per_hour

    project = store.get_project(project_id)
    annotations = store.list_annotations(project_id)
    v = history_votes(project, annotations)
    names = {a.id: a.name for a in store.list_annotators()}
    index = {_key(lab): j for j, lab in enumerate(v.labels)}
    gold_ref = np.full(len(v.item_ids), -1, dtype=np.int64)
    cons_ref = np.full(len(v.item_ids), -1, dtype=np.int64)
    for i, iid in enumerate(v.item_ids):
        it = store.get_item(iid)
        if it.status == "gold":
            gold_ref[i] = index.get(_key(it.gold_label), -2)  # -2: no one gave it; never equal
        elif it.consensus > 1 and it.status == "labeled":
            cons_ref[i] = index.get(_key(it.label), -2)
    # -2 rows count as asked-and-wrong: accuracy_against only skips -1
    gold_acc, n_gold = accuracy_against(v.votes, np.where(gold_ref == -2, 10**9, gold_ref))
    cons_acc, n_cons = accuracy_against(v.votes, np.where(cons_ref == -2, 10**9, cons_ref))
    not_gold = gold_ref == -1
    kappa = pairwise_cohen_kappa(v.votes[not_gold]) if v.votes.size else np.zeros((0, 0))
    times: dict[int, list[float]] = {}
    for a in annotations:
        if a.annotator_id is not None:
            times.setdefault(a.annotator_id, []).append(a.created.timestamp())
    rate = active_labels_per_hour(times)
    rows = []
    for j, aid in enumerate(v.annotator_ids):
        ks = kappa[j][np.isfinite(kappa[j])] if kappa.size else np.array([])
        g = _num(gold_acc[j])
        rows.append(
            AnnotatorQuality(
                annotator_id=aid,
                name=names.get(aid, f"#{aid}"),
                n_answers=int((v.votes[:, j] >= 0).sum()),
                gold_accuracy=g,
                n_gold=int(n_gold[j]),
                consensus_agreement=_num(cons_acc[j]),
                n_consensus=int(n_cons[j]),
                mean_kappa=float(ks.mean()) if ks.size else None,
                labels_per_hour=_num(rate.get(aid, float("nan"))),
                flagged=g is not None and g < project.gold_min_accuracy,
            )
        )
    pairs = []
    shared = (v.votes[not_gold] >= 0).astype(np.int64)
    overlap = shared.T @ shared
    for a in range(len(v.annotator_ids)):
        for b in range(a + 1, len(v.annotator_ids)):
            if np.isfinite(kappa[a, b]):
                pairs.append(
                    {
                        "a": v.annotator_ids[a],
                        "b": v.annotator_ids[b],
                        "kappa": float(kappa[a, b]),
                        "n_shared": int(overlap[a, b]),
                    }
                )
    fk = (
        fleiss_kappa(vote_counts(v.votes[not_gold], len(v.labels) or 1))
        if v.votes.size
        else float("nan")
    )
    return {
        "annotators": rows,
        "fleiss_kappa": _num(fk),
        "kappa_pairs": pairs,
        "gold_min_accuracy": project.gold_min_accuracy,
    }


def review_pending(store: BaseStore, project_id: int, annotator_id: int) -> int:
    """Send the items of an annotator's *pending* answers (their round is still open, so no
    model learned them yet) to review; returns how many items moved."""
    open_rounds = {r.id for r in store.list_rounds(project_id) if r.closed is None}
    items = []
    for a in store.list_annotations(project_id, annotator_id=annotator_id):
        if a.task_id is not None and store.get_task(a.task_id).round_id in open_rounds:
            items.append(a.item_id)
    return store.send_to_review(items, "annotator") if items else 0


def next_review(store: BaseStore, project_id: int, after: int = 0) -> dict[str, Any] | None:
    """The next item in review (lowest id above ``after``) with its annotations side by side
    (who, what, when) and the model's prediction, or ``None`` when the queue is empty."""
    items = [it for it in store.list_items(project_id, status="review") if it.id > after]
    if not items:
        return None
    item = items[0]
    names = {a.id: a.name for a in store.list_annotators()}
    answers = [
        {
            "annotation_id": a.id,
            "annotator_id": a.annotator_id,
            "annotator": names.get(a.annotator_id, "—") if a.annotator_id is not None else "—",
            "label": a.label,
            "created": a.created,
        }
        for a in store.list_annotations(project_id, item_id=item.id)
    ]
    prediction = None
    tasks = store.list_tasks(project_id, item_id=item.id)
    if tasks and store.find_latest_model_version(project_id) is not None:
        t = tasks[-1]
        if t.routing_tag is not None:
            prediction = {"label": t.routing_tag, "confidence": t.confidence}
    return {
        "item": item,
        "annotations": answers,
        "prediction": prediction,
        "remaining": len(items),
    }
