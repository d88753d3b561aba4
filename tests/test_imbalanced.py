"""labelwise.imbalanced: PR-AUC and recall at a precision, hand-computed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.errors import LabelwiseError
from labelwise.imbalanced import pr_auc, recall_at_precision

Y = [1, 0, 1, 0]
S = [0.9, 0.8, 0.7, 0.1]
# Ranked by score: P N P N.
# threshold 0.9: precision 1/1, recall 1/2; 0.8: 1/2, 1/2; 0.7: 2/3, 2/2; 0.1: 2/4, 2/2.


def test_pr_auc_hand_computed():
    # AP = sum (R_n - R_{n-1}) P_n = 0.5 * 1 + 0.5 * 2/3 = 0.8333
    assert pr_auc(Y, S) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_pr_auc_perfect_and_worst_ranking():
    assert pr_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    # positives last: threshold 0.2 -> P 1/3, R 1/2; 0.1 -> P 2/4, R 1; AP = 0.5/3 + 0.5*0.5
    assert pr_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.5 / 3 + 0.25)


def test_pr_auc_ties_count_as_one_threshold():
    # one threshold takes both rows: P 1/2 at R 1 -> AP 0.5
    assert pr_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_pr_auc_string_labels_with_pos_label():
    y = ["Yes", "No", "Yes", "No"]
    assert pr_auc(y, S, pos_label="Yes") == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_recall_at_precision_hand_computed():
    # precision >= 0.9 only at threshold 0.9: recall 1/2
    assert recall_at_precision(Y, S, precision=0.9) == pytest.approx(0.5)
    # precision >= 0.6 at threshold 0.7 (2/3): recall 1
    assert recall_at_precision(Y, S, precision=0.6) == pytest.approx(1.0)
    # precision 1.0 is reached at threshold 0.9 only
    assert recall_at_precision(Y, S, precision=1.0) == pytest.approx(0.5)
    # 0.5 is reached at every threshold, the last one recalls everything
    assert recall_at_precision(Y, S, precision=0.5) == pytest.approx(1.0)


def test_recall_at_precision_unreachable_is_zero():
    # threshold 0.9: P 0/1; threshold 0.5 takes all three rows: P 1/3. 0.9 is never reached
    assert recall_at_precision([0, 1, 0], [0.9, 0.5, 0.5], precision=0.9) == 0.0


def test_recall_at_precision_default_is_point_nine():
    assert recall_at_precision(Y, S) == recall_at_precision(Y, S, precision=0.9)


# --- bad input, one test each -------------------------------------------------------------------


def test_length_mismatch():
    with pytest.raises(LabelwiseError, match="one score per"):
        pr_auc([1, 0, 1], [0.1, 0.2])


def test_two_dimensional_scores():
    with pytest.raises(LabelwiseError, match="positive column"):
        pr_auc([1, 0], [[0.3, 0.7], [0.6, 0.4]])


def test_non_finite_scores():
    with pytest.raises(LabelwiseError, match="NaN or inf"):
        recall_at_precision([1, 0], [np.nan, 0.2])


def test_non_numeric_scores():
    with pytest.raises(LabelwiseError, match="real numbers"):
        pr_auc([1, 0], ["a", "b"])


def test_no_positive_rows():
    with pytest.raises(LabelwiseError, match="no positive rows"):
        pr_auc(["No", "No"], [0.1, 0.2], pos_label="Yes")


@pytest.mark.parametrize("precision", [0.0, 1.5, -0.2])
def test_precision_outside_range(precision):
    with pytest.raises(LabelwiseError, match=r"\(0, 1\]"):
        recall_at_precision(Y, S, precision=precision)


def test_precision_not_a_number():
    with pytest.raises(LabelwiseError, match="number"):
        recall_at_precision(Y, S, precision="high")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

labelled = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 1 in y),
        st.lists(st.floats(-5, 5, allow_nan=False, allow_infinity=False), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(labelled, st.randoms(use_true_random=False))
def test_metrics_are_permutation_invariant_and_bounded(data, rnd):
    y, s = np.array(data[0]), np.array(data[1])
    perm = np.array(rnd.sample(range(y.size), y.size))
    ap = pr_auc(y, s)
    assert 0.0 <= ap <= 1.0 + 1e-12
    assert pr_auc(y[perm], s[perm]) == pytest.approx(ap)
    r = recall_at_precision(y, s, precision=0.8)
    assert 0.0 <= r <= 1.0
    assert recall_at_precision(y[perm], s[perm], precision=0.8) == pytest.approx(r)


@settings(max_examples=60, deadline=None)
@given(labelled)
def test_recall_falls_as_required_precision_rises(data):
    y, s = data
    recalls = [recall_at_precision(y, s, precision=p) for p in (0.1, 0.5, 0.8, 0.95, 1.0)]
    assert all(a >= b for a, b in itertools.pairwise(recalls))


@settings(max_examples=60, deadline=None)
@given(labelled)
def test_scores_that_sort_positives_first_are_perfect(data):
    y = np.array(data[0])
    s = y + 0.1 * np.abs(np.array(data[1])) / 6  # positives in (1, 1.09), negatives in [0, .09)
    assert pr_auc(y, s) == pytest.approx(1.0)
    assert recall_at_precision(y, s, precision=1.0) == pytest.approx(1.0)
