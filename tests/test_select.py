"""``top_k`` and ``RunningTopK``: hand-checked selections, ties, NaN, chunk merging."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.select import RunningTopK, top_k


def test_top_k_picks_highest_best_first():
    # scores 0.1 0.9 0.5 0.3 -> best two are positions 1 (0.9) and 2 (0.5)
    idx = top_k(np.array([0.1, 0.9, 0.5, 0.3]), 2)
    assert idx.tolist() == [1, 2]
    assert idx.dtype == np.int64


def test_top_k_whole_array_is_a_descending_sort():
    assert top_k(np.array([0.1, 0.9, 0.5, 0.3]), 4).tolist() == [1, 2, 3, 0]


def test_top_k_one():
    assert top_k([3.0, 7.0, 5.0], 1).tolist() == [1]


def test_top_k_accepts_lists_and_float32():
    assert top_k([0.2, 0.8], 1).tolist() == [1]
    assert top_k(np.array([0.2, 0.8, 0.5], dtype=np.float32), 2).tolist() == [1, 2]


def test_top_k_negative_scores():
    # margin-style scores: -0.5 beats -0.8
    assert top_k(np.array([-0.8, -0.5, -0.9]), 2).tolist() == [1, 0]


def test_nan_scores_come_last():
    assert top_k(np.array([np.nan, 0.2, 0.1]), 2).tolist() == [1, 2]
    assert top_k(np.array([np.nan, 0.2]), 2).tolist() == [1, 0]


def test_infinite_scores_are_ordered():
    assert top_k(np.array([-np.inf, 1.0, np.inf]), 3).tolist() == [2, 1, 0]


def test_ties_only_break_among_tied_items():
    # 3 > 2 = 2 = 2 = 2 > 1: position 0 first, then two of positions 1..4, never 5
    scores = np.array([3.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    for seed in range(20):
        idx = top_k(scores, 3, random_state=seed)
        assert idx[0] == 0
        assert set(idx[1:].tolist()) <= {1, 2, 3, 4}


def test_ties_are_seeded():
    scores = np.zeros(30)
    a = top_k(scores, 5, random_state=7)
    np.testing.assert_array_equal(a, top_k(scores, 5, random_state=7))
    picks = {tuple(top_k(scores, 5, random_state=s).tolist()) for s in range(10)}
    assert len(picks) > 1


def test_ties_accept_a_random_state_object():
    scores = np.zeros(10)
    a = top_k(scores, 3, random_state=np.random.RandomState(1))
    b = top_k(scores, 3, random_state=np.random.RandomState(1))
    np.testing.assert_array_equal(a, b)


def test_top_k_does_not_mutate_scores():
    scores = np.array([0.3, np.nan, 0.1])
    top_k(scores, 2)
    assert np.isnan(scores[1]) and scores[0] == 0.3


# --- RunningTopK -----------------------------------------------------------------------


def test_running_top_k_merges_chunks_with_offsets():
    best = RunningTopK(2, random_state=0)
    best.push(np.array([0.1, 0.9]), 0)  # positions 0, 1
    best.push(np.array([0.5, 0.95]), 2)  # positions 2, 3
    idx, scores = best.result()
    # overall best: 0.95 at 3, 0.9 at 1
    assert idx.tolist() == [3, 1]
    np.testing.assert_array_equal(scores, [0.95, 0.9])


def test_running_top_k_with_fewer_items_than_k():
    best = RunningTopK(5)
    best.push(np.array([0.2, 0.7, 0.4]), 10)
    idx, scores = best.result()
    assert idx.tolist() == [11, 12, 10]
    np.testing.assert_array_equal(scores, [0.7, 0.4, 0.2])


def test_running_top_k_empty_chunk_and_no_chunks():
    best = RunningTopK(3)
    idx, scores = best.result()
    assert idx.shape == (0,) and scores.shape == (0,)
    best.push(np.empty(0), 0)
    best.push(np.array([1.0]), 0)
    assert best.result()[0].tolist() == [0]


def test_running_top_k_nan_goes_last():
    best = RunningTopK(2)
    best.push(np.array([np.nan, 0.1]), 0)
    best.push(np.array([np.nan]), 2)
    idx, scores = best.result()
    assert idx[0] == 1 and scores[0] == 0.1
    assert scores[1] == -np.inf


def test_running_top_k_result_is_a_copy():
    best = RunningTopK(1)
    best.push(np.array([0.5]), 0)
    idx, scores = best.result()
    idx[0], scores[0] = 99, -1.0
    assert best.result()[0].tolist() == [0]
    assert best.result()[1].tolist() == [0.5]


@pytest.mark.parametrize("chunk", [1, 3, 4, 100])
def test_running_top_k_matches_top_k(chunk):
    scores = np.array([0.3, 0.8, 0.1, 0.95, 0.5, 0.7, 0.2, 0.6, 0.9, 0.4])
    best = RunningTopK(4, random_state=0)
    for start in range(0, scores.shape[0], chunk):
        best.push(scores[start : start + chunk], start)
    idx, got = best.result()
    # 0.95 (3), 0.9 (8), 0.8 (1), 0.7 (5)
    assert idx.tolist() == [3, 8, 1, 5] == top_k(scores, 4).tolist()
    np.testing.assert_array_equal(got, scores[idx])
