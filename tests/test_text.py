"""labelwise.text: what the model weighs in an item, with hand-computed expected values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labelwise.text import Cues, model_cues, plain_text, tfidf_vocabulary

NAMES = ["awful", "good", "movie"]


def _logreg(coef, intercept, classes):
    """A LogisticRegression with hand-set weights (no fitting)."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression()
    m.coef_ = np.asarray(coef, dtype=np.float64)
    m.intercept_ = np.asarray(intercept, dtype=np.float64)
    m.classes_ = np.asarray(classes)
    return m


def _same(got, expected):
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_plain_text():
    assert plain_text("Great<br />GUM") == "great gum"
    assert plain_text("x < y") == "x < y"  # no closing bracket: not a tag


def test_binary_cues_toward_the_positive_class():
    model = _logreg([[-2.0, 1.5, 0.1]], [0.0], ["neg", "pos"])
    # logit = 1.5 * 0.8 + 0.1 * 0.6 = 1.26 > 0: "pos"; good 1.5 * 0.8 = 1.2, movie 0.1 * 0.6
    cues = model_cues(np.array([0.0, 0.8, 0.6]), NAMES, model)
    assert cues.label == "pos"
    _same(cues.terms, [("good", 1.2), ("movie", 0.06)])


def test_binary_cues_toward_the_negative_class_are_sign_flipped():
    model = _logreg([[-2.0, 1.5, 0.1]], [0.0], ["neg", "pos"])
    # logit = -2 * 0.9 + 1.5 * 0.3 + 0.1 * 0.3 = -1.32 < 0: "neg"; toward neg the weights flip:
    # awful +1.8 (for neg), good -0.45 (against), movie -0.03
    cues = model_cues(sp.csr_matrix([[0.9, 0.3, 0.3]]), NAMES, model, k=2)
    assert cues.label == "neg"
    _same(cues.terms, [("awful", 1.8), ("good", -0.45)])


def test_multiclass_cues_use_the_predicted_rows_weights():
    coef = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 3.0]]
    model = _logreg(coef, [0.0, 0.0, -1.0], ["a", "b", "c"])
    # logits: a 0.2, b 2 * 0.5 + 0.5 * 0.5 = 1.25, c 3 * 0.5 - 1 = 0.5: "b"
    cues = model_cues(np.array([0.2, 0.5, 0.5]), NAMES, model)
    assert cues.label == "b"
    _same(cues.terms, [("good", 1.0), ("movie", 0.25)])  # awful: weight 0


def test_one_vs_rest_cues():
    from sklearn.multiclass import OneVsRestClassifier

    ovr = OneVsRestClassifier(_logreg([[1.0]], [0.0], [0, 1]))
    ovr.estimators_ = [
        _logreg([[1.0, 0.0, 0.0]], [0.0], [0, 1]),
        _logreg([[0.0, -1.0, 4.0]], [0.0], [0, 1]),
    ]
    ovr.classes_ = np.array([0, 1])
    ovr.label_binarizer_ = None
    # logits: class 0: 1 * 0.4 = 0.4; class 1: -1 * 0.5 + 4 * 0.25 = 0.5 -> class 1;
    # its weights: movie 4 * 0.25 = +1.0, good -1 * 0.5 = -0.5
    cues = model_cues(np.array([0.4, 0.5, 0.25]), NAMES, ovr)
    assert cues.label == 1
    _same(cues.terms, [("movie", 1.0), ("good", -0.5)])


def test_no_cues_for_models_that_are_not_linear_or_do_not_fit():
    from sklearn.naive_bayes import MultinomialNB

    nb = MultinomialNB().fit(np.array([[1.0, 0, 0], [0, 1.0, 0]]), ["a", "b"])
    assert model_cues(np.array([1.0, 0.0, 0.0]), NAMES, nb) == Cues()
    model = _logreg([[1.0, 2.0]], [0.0], ["neg", "pos"])  # two features, three names
    assert model_cues(np.array([1.0, 0.0, 0.0]), NAMES, model) == Cues()
    assert model_cues(np.array([1.0, 0.0, 0.0]), NAMES, object()) == Cues()


def test_calibrated_model_is_unwrapped():
    from labelwise.models.calibrated import CalibratedModel

    inner = _logreg([[-2.0, 1.5, 0.1]], [0.0], ["neg", "pos"])
    cues = model_cues(np.array([0.0, 0.8, 0.6]), NAMES, CalibratedModel(inner))
    assert (cues.label, [t for t, _ in cues.terms]) == ("pos", ["good", "movie"])


@pytest.mark.parametrize("n", [3, 1200])
def test_tfidf_vocabulary_names_the_columns_of_features_tfidf(n):
    from labelwise.features import tfidf

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)] + ["good", "bad"]
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(n)]
    names = tfidf_vocabulary(texts)
    X = tfidf(texts)
    assert len(names) == X.shape[1]
    # the columns of text 0's terms are its words
    row = X[0].toarray().ravel()
    assert {names[j] for j in np.flatnonzero(row)} <= set(texts[0].split())


def test_tfidf_vocabulary_of_nothing():
    assert tfidf_vocabulary([]) == [] and tfidf_vocabulary(["!!", "?"]) == []
