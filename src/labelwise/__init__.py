"""labelwise: active learning for production.

The library picks what to label from large pools, runs the query/teach loop, knows when to stop
and calibrates probabilities; the service (``labelwise.service``) queues the picks for people.

The public names below are imported on first use (PEP 562), so ``import labelwise`` stays cheap
for every CLI call and worker start: scikit-learn is loaded only by code that fits or asks a
model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelwise.errors import (
        BatchSizeError,
        EmptyPoolError,
        InvalidProbaError,
        LabelMismatchError,
        LabelwiseError,
        MissingInputError,
        ModelInterfaceError,
        NotFittedError,
        QueryMismatchError,
        UnknownStrategyError,
        UnsupportedTaskError,
    )
    from labelwise.select import top_k
    from labelwise.strategies import Candidates, Query, Strategy, get_strategy, list_strategies
    from labelwise.tasks import TaskType

__version__ = "0.1.0"

# public name -> the module it is imported from
_LAZY: dict[str, str] = {
    "BatchSizeError": "labelwise.errors",
    "EmptyPoolError": "labelwise.errors",
    "InvalidProbaError": "labelwise.errors",
    "LabelMismatchError": "labelwise.errors",
    "LabelwiseError": "labelwise.errors",
    "MissingInputError": "labelwise.errors",
    "ModelInterfaceError": "labelwise.errors",
    "NotFittedError": "labelwise.errors",
    "QueryMismatchError": "labelwise.errors",
    "UnknownStrategyError": "labelwise.errors",
    "UnsupportedTaskError": "labelwise.errors",
    "top_k": "labelwise.select",
    "Candidates": "labelwise.strategies",
    "Query": "labelwise.strategies",
    "Strategy": "labelwise.strategies",
    "get_strategy": "labelwise.strategies",
    "list_strategies": "labelwise.strategies",
    "TaskType": "labelwise.tasks",
}

__all__ = [
    "BatchSizeError",
    "Candidates",
    "EmptyPoolError",
    "InvalidProbaError",
    "LabelMismatchError",
    "LabelwiseError",
    "MissingInputError",
    "ModelInterfaceError",
    "NotFittedError",
    "Query",
    "QueryMismatchError",
    "Strategy",
    "TaskType",
    "UnknownStrategyError",
    "UnsupportedTaskError",
    "__version__",
    "get_strategy",
    "list_strategies",
    "top_k",
]


def __getattr__(name: str) -> Any:
    # Only public names resolve here; anything else raises AttributeError, which is also how
    # `from labelwise import datasets` falls through to importing the submodule.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
