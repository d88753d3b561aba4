"""Boundary checks: ``check_proba`` and ``check_batch_size`` (one test per bad input)."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.errors import BatchSizeError, EmptyPoolError, InvalidProbaError
from labelwise.validation import PROBA_ATOL, check_batch_size, check_proba

# --- check_proba: valid input --------------------------------------------------------------


def test_valid_proba_is_returned_unchanged():
    proba = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]], dtype=np.float32)
    out = check_proba(proba)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, proba)


def test_integer_proba_becomes_float():
    out = check_proba(np.array([[1, 0], [0, 1]]))
    assert np.issubdtype(out.dtype, np.floating)


def test_nested_lists_are_accepted():
    assert check_proba([[0.5, 0.5]]).shape == (1, 2)


def test_no_rows_is_valid():
    assert check_proba(np.empty((0, 3))).shape == (0, 3)


def test_rows_within_tolerance_pass():
    # 0.6 + 0.4 + 0.0009 = 1.0009, within PROBA_ATOL = 1e-3
    check_proba(np.array([[0.6, 0.4, PROBA_ATOL * 0.9]]))


def test_multilabel_rows_need_not_sum_to_one():
    check_proba(np.array([[0.9, 0.9, 0.1]]), "multilabel")


def test_multilabel_allows_one_column():
    check_proba(np.array([[0.3], [0.8]]), "multilabel")


# --- check_proba: one test per bad input ---------------------------------------------------


def test_one_dimensional_proba():
    with pytest.raises(InvalidProbaError, match="2-D"):
        check_proba(np.array([0.5, 0.5]))


def test_three_dimensional_proba():
    with pytest.raises(InvalidProbaError, match="2-D"):
        check_proba(np.full((2, 2, 2), 0.5))


def test_nan_in_proba_names_the_row():
    with pytest.raises(InvalidProbaError, match="row 1"):
        check_proba(np.array([[0.5, 0.5], [np.nan, 0.5]]))


def test_inf_in_proba():
    with pytest.raises(InvalidProbaError, match="NaN or inf"):
        check_proba(np.array([[np.inf, 0.0]]), "multilabel")


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_huge_values_that_overflow_the_row_sum():
    # 1e308 + 1e308 overflows to inf, but each value is finite: still an InvalidProbaError
    with pytest.raises(InvalidProbaError, match=r"\[0, 1\]"):
        check_proba(np.array([[1e308, 1e308]]))


def test_negative_proba():
    with pytest.raises(InvalidProbaError, match="logits"):
        check_proba(np.array([[-0.5, 1.5]]))


def test_proba_above_one():
    with pytest.raises(InvalidProbaError, match=r"\[0, 1\]"):
        check_proba(np.array([[1.2, 0.3]]), "multilabel")


def test_rows_not_summing_to_one_names_the_row():
    # row 1 sums to 0.5 + 0.4 = 0.9
    with pytest.raises(InvalidProbaError, match=r"row 1 sums to 0\.9"):
        check_proba(np.array([[0.5, 0.5], [0.5, 0.4]]))


def test_rows_not_summing_to_one_suggest_multilabel():
    with pytest.raises(InvalidProbaError, match="multilabel"):
        check_proba(np.array([[0.9, 0.9]]), "binary")


def test_single_column_single_label():
    with pytest.raises(InvalidProbaError, match="at least 2 columns"):
        check_proba(np.array([[1.0], [1.0]]))


# --- check_batch_size ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 10, np.int64(3), np.int32(10)])
def test_valid_batch_sizes(k):
    out = check_batch_size(k, 10)
    assert out == int(k) and type(out) is int


def test_empty_pool():
    with pytest.raises(EmptyPoolError, match="no unlabeled items"):
        check_batch_size(1, 0)


def test_batch_larger_than_pool_says_the_limit():
    with pytest.raises(BatchSizeError, match="at most 3"):
        check_batch_size(4, 3)


def test_zero_batch():
    with pytest.raises(BatchSizeError, match="positive integer"):
        check_batch_size(0, 3)


def test_negative_batch():
    with pytest.raises(BatchSizeError, match="positive integer"):
        check_batch_size(-2, 3)


def test_float_batch():
    with pytest.raises(BatchSizeError, match="positive integer"):
        check_batch_size(2.0, 3)


def test_bool_batch():
    with pytest.raises(BatchSizeError, match="positive integer"):
        check_batch_size(True, 3)


def test_string_batch():
    with pytest.raises(BatchSizeError, match="positive integer"):
        check_batch_size("2", 3)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        check_batch_size(0, 3)
