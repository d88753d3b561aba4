"""Named exceptions raised at labelwise's public boundary.

Every error message says what was wrong *and* what to do about it. All errors derive from
:class:`LabelwiseError`, which is a :class:`ValueError`, so callers that already catch
``ValueError`` keep working.
"""

from __future__ import annotations


class LabelwiseError(ValueError):
    """Base class of every error labelwise raises on bad input."""


class EmptyPoolError(LabelwiseError):
    """The pool (or the set of unlabeled candidates) has no items to select from."""


class BatchSizeError(LabelwiseError):
    """The requested batch size is not a positive integer or is larger than the pool."""


class InvalidProbaError(LabelwiseError):
    """Predicted probabilities have the wrong shape, contain NaN/inf, or rows do not sum to 1."""


class LabelMismatchError(LabelwiseError):
    """Labels do not match the query they answer, or are not among the model's classes."""


class QueryMismatchError(LabelMismatchError):
    """``teach()`` was called with a query that is not the session's pending query."""


class NotFittedError(LabelwiseError):
    """A model is needed but has not been fitted yet (no labels, or fit was never called)."""


class ModelInterfaceError(LabelwiseError):
    """The model lacks a method a strategy needs (``predict_proba``, ``embed``, ``coef_``)."""


class UnknownStrategyError(LabelwiseError, KeyError):
    """No strategy is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnsupportedTaskError(LabelwiseError):
    """The strategy does not support the requested task type."""


class MissingInputError(LabelwiseError):
    """A strategy needs an input (embeddings, metadata, a committee) that was not given."""


class UnknownDatasetError(LabelwiseError, KeyError):
    """No data set is known under the requested name (``labelwise.datasets``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnreachableTargetError(LabelwiseError):
    """An evaluation target is above what the model trained on all the data reaches."""
