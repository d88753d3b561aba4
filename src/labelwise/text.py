"""Keyword highlighting: which words of a text the model weighs for its prediction (compute band).

The labeling page marks the words that actually drive the current model's guess, not words that
are merely rare (rare topic words like "lemon" or "12" tell the annotator nothing about the
classes). For a linear model on TF-IDF features the logit of class ``c`` is
``b_c + sum_j coef[c, j] * x[j]``, so term ``j`` of the item moves it by ``coef[c, j] * x[j]``;
:func:`model_cues` returns the item's terms with the largest ``|coef × tfidf|`` toward the
predicted class, signed (positive: evidence for it, negative: against it). Models that are not
linear (naive Bayes, trees, pipelines) give no cues: the page then highlights nothing rather
than something misleading.

:func:`tfidf_vocabulary` recovers the column names of :func:`labelwise.features.tfidf` (the
same vocabulary rules), which stores only the matrix. :mod:`labelwise.service.pages` reads the
texts, the cached feature matrix and the model artifact, and calls these two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Cues", "model_cues", "plain_text", "tfidf_vocabulary"]

_TAG = re.compile(r"<[^>]{0,200}>")


def plain_text(text: str) -> str:
    """Lower-cased text without HTML tags: ``"Great<br />GUM" -> "great gum"``."""
    return _TAG.sub(" ", text).lower()


def tfidf_vocabulary(texts: Sequence[str]) -> list[str]:
    """Column names of :func:`labelwise.features.tfidf` for the same ``texts``.

    Parameters
    ----------
    texts : sequence of str, length n_items

    Returns
    -------
    list of str, length n_terms
        The vocabulary in column order (sorted), with the same ``min_df`` and ``max_features``
        rules; ``[]`` when the texts hold no term (``tfidf`` then has one all-zero column).
    """
    # scikit-learn is imported here, not at the top, so the module stays cheap to import.
    from sklearn.feature_extraction.text import CountVectorizer

    from labelwise.features import MAX_FEATURES

    # TfidfVectorizer chooses its vocabulary as CountVectorizer does; only the weights differ
    min_df = 2 if len(texts) >= 1000 else 1
    vec = CountVectorizer(min_df=min_df, max_features=MAX_FEATURES)
    try:
        vec.fit(texts)
    except ValueError:  # empty vocabulary
        return []
    return [str(t) for t in vec.get_feature_names_out()]


@dataclass(frozen=True)
class Cues:
    """What the model weighs in one item.

    Attributes
    ----------
    label : object or None
        The class the model predicts for the item (``None`` when there are no cues).
    terms : list of (str, float)
        Up to ``k`` terms with their contribution ``coef × tfidf`` to the predicted class's
        logit, largest ``|contribution|`` first; positive supports the class, negative opposes.
    """

    label: Any = None
    terms: list[tuple[str, float]] = field(default_factory=list)


def _linear_parts(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(coef (n_outputs, n_features), intercept (n_outputs,), classes)`` of a linear model,
    or ``None``. One-vs-rest models stack their members' rows (one per class)."""
    inner = getattr(model, "model", None)  # labelwise's CalibratedModel wraps the classifier
    if not hasattr(model, "coef_") and not hasattr(model, "estimators_") and inner is not None:
        model = inner
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    if hasattr(model, "coef_"):
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.asarray(getattr(model, "intercept_", 0.0), dtype=np.float64)
    elif type(model).__name__ == "OneVsRestClassifier":
        members = getattr(model, "estimators_", [])
        if not members or not all(hasattr(e, "coef_") for e in members):
            return None
        coef = np.vstack([np.asarray(e.coef_, dtype=np.float64).reshape(1, -1) for e in members])
        intercept = np.concatenate(
            [np.asarray(getattr(e, "intercept_", 0.0), dtype=np.float64).ravel() for e in members]
        )
    else:
        return None
    if coef.ndim != 2:
        return None
    return coef, np.broadcast_to(intercept.ravel(), (coef.shape[0],)), np.asarray(classes)


def model_cues(x: Any, feature_names: Sequence[str], model: Any, k: int = 5) -> Cues:
    """The item's terms that weigh most in a linear model's prediction.

    Parameters
    ----------
    x : ndarray of shape (n_features,) or sparse matrix of shape (1, n_features)
        The item's TF-IDF row.
    feature_names : sequence of str, length n_features
        The term of each column.
    model : fitted classifier
        Linear (``coef_``, ``intercept_``, ``classes_``: logistic regression, linear SVM, SGD),
        a one-vs-rest of linear models (multilabel), or anything else (no cues).
    k : int, default=5

    Returns
    -------
    Cues
        The predicted class and up to ``k`` ``(term, coef × tfidf)`` pairs with non-zero
        weight. Binary models (one row of ``coef_``) predict ``classes_[1]`` when the logit is
        positive; the contribution toward ``classes_[0]`` is then ``-coef × tfidf``.
        Multi-output models predict the row with the largest logit. ``Cues()`` (no label, no
        terms) for a model that is not linear or whose width differs from ``x``.
    """
    parts = _linear_parts(model)
    if parts is None:
        return Cues()
    coef, intercept, classes = parts
    if hasattr(x, "toarray"):
        x = x.toarray()
    row = np.asarray(x, dtype=np.float64).ravel()
    if coef.shape[1] != row.shape[0] or len(feature_names) != row.shape[0]:
        return Cues()
    logits = coef @ row + intercept
    if coef.shape[0] == 1 and len(classes) == 2:  # binary: one row, toward classes_[1]
        positive = bool(logits[0] > 0)
        label = classes[1] if positive else classes[0]
        weights = coef[0] * row * (1.0 if positive else -1.0)
    else:
        best = int(np.argmax(logits))
        if best >= len(classes):
            return Cues()
        label = classes[best]
        weights = coef[best] * row
    nonzero = np.flatnonzero(weights)
    # stable sort on -|w|: ties keep column (alphabetical) order
    order = nonzero[np.argsort(-np.abs(weights[nonzero]), kind="stable")][:k]
    label = label.item() if isinstance(label, np.generic) else label
    return Cues(label, [(str(feature_names[j]), float(weights[j])) for j in order])
