"""Where the service keeps projects, items, queues, labels and jobs.

``open_store(url)`` gives an :class:`InMemoryStore` for ``"memory://"`` and a
:class:`SqlStore` for any SQLAlchemy URL (SQLite file or PostgreSQL).
"""

from __future__ import annotations

from labelwise.storage.base import (
    AlreadyExistsError,
    Annotation,
    Annotator,
    BaseStore,
    DatasetVersion,
    Item,
    Job,
    LeaseError,
    ModelVersion,
    NewItem,
    NotFound,
    Project,
    Round,
    Task,
    UndoError,
)
from labelwise.storage.memory import InMemoryStore

__all__ = [
    "AlreadyExistsError",
    "Annotation",
    "Annotator",
    "BaseStore",
    "DatasetVersion",
    "InMemoryStore",
    "Item",
    "Job",
    "LeaseError",
    "ModelVersion",
    "NewItem",
    "NotFound",
    "Project",
    "Round",
    "SqlStore",
    "Task",
    "UndoError",
    "open_store",
]


def __getattr__(name: str) -> object:  # SQLAlchemy is imported only when asked for
    if name == "SqlStore":
        from labelwise.storage.sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str, *, upgrade: bool = False, **kwargs: object) -> BaseStore:
    """A store for ``url``: ``"memory://"`` for :class:`InMemoryStore`, else :class:`SqlStore`."""
    if url.startswith("memory:"):
        return InMemoryStore()
    from labelwise.storage.sql import SqlStore

    return SqlStore(url, upgrade=upgrade, **kwargs)  # type: ignore[arg-type]
