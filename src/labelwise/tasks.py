"""Task types: how ``proba`` is laid out for each kind of classification problem.

- ``multiclass``: ``proba (n_samples, n_classes)``, rows sum to 1.
- ``binary``: the two-class case of ``multiclass`` (``n_classes == 2``); strategies that care
  about rare positives (cost weighting, class balance) read column 1 as the positive class.
- ``multilabel``: ``proba (n_samples, n_labels)``, one independent positive probability per
  label, rows need not sum to 1.
"""

from __future__ import annotations

from enum import StrEnum


class TaskType(StrEnum):
    MULTICLASS = "multiclass"
    BINARY = "binary"
    MULTILABEL = "multilabel"


ALL_TASKS: frozenset[TaskType] = frozenset(TaskType)
SINGLE_LABEL: frozenset[TaskType] = frozenset({TaskType.MULTICLASS, TaskType.BINARY})


def parse_task_type(value: str | TaskType) -> TaskType:
    """Return ``value`` as a :class:`TaskType`, with a clear error for unknown names."""
    from labelwise.errors import UnsupportedTaskError

    try:
        return TaskType(value)
    except ValueError:
        valid = ", ".join(t.value for t in TaskType)
        raise UnsupportedTaskError(f"unknown task type {value!r}; use one of: {valid}") from None
