"""Score functions: hand-computed values, ranges, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelwise.strategies import scores as S
from labelwise.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling
from labelwise.testing import candidates_from_proba

LN2, LN4 = math.log(2), math.log(4)
# H(0.7, 0.2, 0.1) = -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1)
#                  = 0.7*0.3566749 + 0.2*1.6094379 + 0.1*2.3025851 = 0.8018186
H_721 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
# binary entropies: H(0.9) = 0.9*0.1053605 + 0.1*2.3025851 = 0.3250830
#                   H(0.2) = 0.2*1.6094379 + 0.8*0.2231436 = 0.5004024
H_09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
H_02 = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))

CASES = [
    # entropy, in nats
    (S.entropy, [0.5, 0.5], LN2),
    (S.entropy, [1.0, 0.0], 0.0),
    (S.entropy, [0.25, 0.25, 0.25, 0.25], LN4),
    (S.entropy, [0.7, 0.2, 0.1], H_721),
    (S.entropy, [0.0, 1.0, 0.0], 0.0),  # 0 log 0 = 0, no NaN
    # margin: -(p_(1) - p_(2))
    (S.margin, [0.7, 0.2, 0.1], -0.5),  # -(0.7 - 0.2)
    (S.margin, [0.1, 0.2, 0.7], -0.5),  # order of classes does not matter
    (S.margin, [0.9, 0.1], -0.8),  # binary: -|0.9 - 0.1|
    (S.margin, [0.5, 0.5], 0.0),
    (S.margin, [0.4, 0.4, 0.2], 0.0),  # tied top two: -(0.4 - 0.4)
    (S.margin, [1.0, 0.0, 0.0], -1.0),
    # least confidence: 1 - max p
    (S.least_confidence, [0.7, 0.2, 0.1], 0.3),  # 1 - 0.7
    (S.least_confidence, [0.5, 0.5], 0.5),
    (S.least_confidence, [1.0, 0.0], 0.0),
    (S.least_confidence, [0.25, 0.25, 0.25, 0.25], 0.75),  # 1 - 1/4
    # multilabel margin: -mean |2p - 1|
    (S.multilabel_margin, [0.5, 0.5, 0.5], 0.0),
    (S.multilabel_margin, [0.9, 0.2, 0.5], -(0.8 + 0.6 + 0.0) / 3),  # -0.4666667
    (S.multilabel_margin, [1.0, 0.0], -1.0),
    # multilabel entropy: max over labels of the binary entropy
    (S.multilabel_entropy, [0.5, 0.9], LN2),  # max(ln 2, 0.325)
    (S.multilabel_entropy, [0.9, 0.2], H_02),  # max(0.3250830, 0.5004024)
    (S.multilabel_entropy, [0.9], H_09),
    (S.multilabel_entropy, [0.0, 1.0], 0.0),
    # multilabel least confidence: mean of 1 - max(p, 1 - p)
    (S.multilabel_least_confidence, [0.9, 0.2], 0.15),  # (0.1 + 0.2) / 2
    (S.multilabel_least_confidence, [0.5], 0.5),
    (S.multilabel_least_confidence, [1.0, 0.0, 0.5], 0.5 / 3),  # (0 + 0 + 0.5) / 3
]


@pytest.mark.parametrize(
    ("fn", "row", "expected"), CASES, ids=[f"{f.__name__}-{r}" for f, r, _ in CASES]
)
def test_hand_computed(fn, row, expected):
    out = fn(np.array([row], dtype=np.float64))
    assert out.shape == (1,)
    assert out[0] == pytest.approx(expected, abs=1e-12)


def test_values_sanity():
    # the constants above, written out
    assert H_721 == pytest.approx(0.8018186, abs=1e-7)
    assert H_09 == pytest.approx(0.3250830, abs=1e-7)
    assert H_02 == pytest.approx(0.5004024, abs=1e-7)


@pytest.mark.parametrize("name", S.__all__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(name, dtype):
    fn = getattr(S, name)
    proba = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25], [1.0, 0.0, 0.0]], dtype=dtype)
    out = fn(proba)
    assert out.dtype == dtype
    assert out.shape == (3,)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", S.__all__)
def test_input_not_mutated(name):
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    before = proba.copy()
    getattr(S, name)(proba)
    np.testing.assert_array_equal(proba, before)


def test_rows_are_scored_independently():
    proba = np.array([[0.5, 0.5, 0.0], [0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])
    for name in S.__all__:
        fn = getattr(S, name)
        whole = fn(proba)
        rows = np.concatenate([fn(proba[i : i + 1]) for i in range(3)])
        np.testing.assert_allclose(whole, rows, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)), elements=st.floats(0, 1))
)
def test_single_label_ranges(raw):
    raw = raw + 1e-3
    proba = raw / raw.sum(axis=1, keepdims=True)
    c = proba.shape[1]
    eps = 1e-9
    h = S.entropy(proba)
    assert ((h >= -eps) & (h <= math.log(c) + eps)).all()
    m = S.margin(proba)
    assert ((m >= -1 - eps) & (m <= eps)).all()
    lc = S.least_confidence(proba)
    assert ((lc >= -eps) & (lc <= 1 - 1 / c + eps)).all()


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 6)), elements=st.floats(0, 1))
)
def test_multilabel_ranges(proba):
    eps = 1e-9
    h = S.multilabel_entropy(proba)
    assert ((h >= -eps) & (h <= LN2 + eps)).all()
    m = S.multilabel_margin(proba)
    assert ((m >= -1 - eps) & (m <= eps)).all()
    lc = S.multilabel_least_confidence(proba)
    assert ((lc >= -eps) & (lc <= 0.5 + eps)).all()


@pytest.mark.parametrize(
    ("strategy", "expected_first"),
    [(EntropySampling(), 1), (LeastConfidence(), 1), (MarginSampling(), 1)],
)
def test_strategies_pick_most_uncertain(strategy, expected_first):
    proba = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.6, 0.3, 0.1]])
    # entropy: 0.394 < 1.0986 > 0.898; lc: 0.1 < 0.66 > 0.4; margin: -0.85 < -0.01 > -0.3
    q = strategy.select(candidates_from_proba(proba), 2, random_state=0)
    assert q.idx.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("strategy", "fn"),
    [
        (EntropySampling(), S.multilabel_entropy),
        (LeastConfidence(), S.multilabel_least_confidence),
        (MarginSampling(), S.multilabel_margin),
    ],
)
def test_strategies_use_multilabel_variant(strategy, fn):
    # rows do not sum to 1: valid only as multi-label probabilities
    proba = np.array([[0.9, 0.9, 0.1], [0.5, 0.95, 0.95], [0.6, 0.4, 0.7]])
    q = strategy.select(candidates_from_proba(proba, task_type="multilabel"), 3, random_state=0)
    np.testing.assert_allclose(q.scores, np.sort(fn(proba))[::-1])
    np.testing.assert_array_equal(q.idx, np.argsort(-fn(proba), kind="stable"))
