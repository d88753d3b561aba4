"""labelwise: active learning for production.

The library picks what to label from large pools, runs the query/teach loop, knows when to stop
and calibrates probabilities; the service (``labelwise.service``) queues the picks for people.
"""

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
