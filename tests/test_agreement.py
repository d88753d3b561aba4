"""labelwise.agreement: every number computed by hand (or from a published worked example)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelwise.agreement import (
    accuracy_against,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_votes,
    pairwise_cohen_kappa,
)
from labelwise.errors import LabelwiseError

# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 items, 14 raters, 5 classes;
# P-bar = 0.378, P_e = 0.213, kappa = 0.210.
WORKED = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_worked_example():
    assert fleiss_kappa(WORKED) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_by_hand_with_varying_raters():
    # item 1: 2 raters agree (P=1); item 2: 3 raters split 2/1 (P=(4+1-3)/6=1/3);
    # item 3: one rater (dropped). p = (2+2, 0+1)/5 = (0.8, 0.2); P_e = 0.68; P-bar = 2/3
    k = fleiss_kappa([[2, 0], [2, 1], [1, 0]])
    assert k == pytest.approx((2 / 3 - 0.68) / (1 - 0.68))
    assert fleiss_kappa([[2, 0], [0, 2]]) == 1.0
    assert fleiss_kappa([[3, 0], [3, 0]]) == 1.0  # one class throughout
    assert math.isnan(fleiss_kappa([[1, 0]]))
    votes = np.array([[0, 0, -1], [0, 0, 1], [0, -1, -1]])
    assert fleiss_kappa_votes(votes, 2) == pytest.approx(k)
    with pytest.raises(LabelwiseError):
        fleiss_kappa([1, 2])


def test_cohen_kappa_by_hand():
    # 10 shared items: agree on 7 (p_o = 0.7); a says 0 six times, b five times:
    # p_e = 0.6*0.5 + 0.4*0.5 = 0.5 -> kappa = (0.7 - 0.5) / 0.5 = 0.4
    a = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, -1]
    b = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1]
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([0, 0], [0, 0]) == 1.0
    assert math.isnan(cohen_kappa([0, -1], [0, 1]))
    with pytest.raises(LabelwiseError):
        cohen_kappa([0, 1], [0])


def test_pairwise_cohen_kappa_is_symmetric_on_shared_items():
    votes = np.array([[0, 0, 1], [1, 1, 0], [0, 1, -1], [1, 1, 0]])
    k = pairwise_cohen_kappa(votes)
    assert np.isnan(np.diag(k)).all()
    assert k[0, 1] == k[1, 0] == pytest.approx(cohen_kappa(votes[:, 0], votes[:, 1]))
    # annotator 2 always says the opposite of annotator 0 on their 3 shared items:
    # a0 = (0, 1, 1), a2 = (1, 0, 0): p_o = 0, p_e = 1/3*2/3 + 2/3*1/3 = 4/9 -> -0.8
    assert k[0, 2] == pytest.approx(-0.8)
    assert np.isnan(pairwise_cohen_kappa(votes, min_shared=4)[0, 2])


def test_accuracy_against_a_reference_by_hand():
    votes = np.array([[0, 1], [1, 1], [0, -1], [1, 0]])
    ref = np.array([0, 1, -1, 1])  # item 3 has no reference
    acc, n = accuracy_against(votes, ref)
    # annotator 0: items 0, 1, 3 -> all right; annotator 1: items 0, 1, 3 -> 1 of 3 right
    assert n.tolist() == [3, 3]
    assert acc.tolist() == pytest.approx([1.0, 1 / 3])
    acc, n = accuracy_against(np.array([[-1]]), np.array([0]))
    assert np.isnan(acc[0]) and n[0] == 0
    with pytest.raises(LabelwiseError):
        accuracy_against(votes, ref[:2])
