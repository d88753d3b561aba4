"""Keyword highlighting: which words of a text to mark on the labeling page (compute band).

:func:`term_idf` learns inverse document frequencies from a sample of a project's texts and
:func:`top_terms` ranks one text's terms by TF-IDF with them; :mod:`labelwise.service.pages`
reads the texts from the store, caches the idf per project and serves the terms. Both use
scikit-learn's English analyser (lower-cased, English stop words dropped, tokens of two or more
word characters) after stripping HTML tags, so ``<br />`` in scraped reviews is not a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["plain_text", "term_idf", "top_terms"]

_TAG = re.compile(r"<[^>]{0,200}>")


def plain_text(text: str) -> str:
    """Lower-cased text without HTML tags: ``"Great<br />GUM" -> "great gum"``."""
    return _TAG.sub(" ", text).lower()


def _vectorizer() -> Any:
    # scikit-learn is imported here, not at the top, so the module stays cheap to import.
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words="english", preprocessor=plain_text)


def term_idf(texts: Sequence[str]) -> dict[str, float]:
    """Inverse document frequency of every term of ``texts`` (smooth idf).

    Parameters
    ----------
    texts : sequence of str, length n_texts

    Returns
    -------
    dict of str to float
        ``idf(t) = 1 + ln((1 + n_texts) / (1 + df(t)))``; empty if ``texts`` is empty or holds
        only stop words. ``["sugar gum", "sugar"]`` -> ``{"gum": 1 + ln 1.5, "sugar": 1.0}``.
    """
    if not texts:
        return {}
    vec = _vectorizer()
    try:
        vec.fit(texts)
    except ValueError:  # only stop words
        return {}
    return dict(zip(vec.get_feature_names_out(), vec.idf_.tolist(), strict=True))


def top_terms(text: str, idf: dict[str, float], k: int = 5) -> list[str]:
    """The ``k`` terms of ``text`` with the highest TF-IDF weight, best first.

    Parameters
    ----------
    text : str
    idf : dict of str to float
        Inverse document frequency of each known term; unknown terms are ignored.
    k : int, default=5

    Returns
    -------
    list of str
        At most ``k`` terms; ties broken by first occurrence.
    """
    analyzer = _vectorizer().build_analyzer()
    tf: dict[str, int] = {}
    for term in analyzer(text):
        if term in idf:
            tf[term] = tf.get(term, 0) + 1
    order = sorted(tf, key=lambda t: -tf[t] * idf[t])  # stable: first occurrence wins ties
    return order[:k]
