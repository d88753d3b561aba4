"""Invariants of selection, checked with hypothesis.

- permuting the pool permutes the selection (score strategies, distinct scores);
- the same seed gives the same result;
- ``top_k`` returns the highest scores, best first;
- ``RunningTopK`` over any chunking equals ``top_k`` on the whole array (distinct scores);
- ties are broken by the seed: deterministically for one seed, differently across seeds.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelwise.select import RunningTopK, top_k
from labelwise.strategies import ScoreStrategy, get_strategy, get_strategy_class, strategy_names
from labelwise.tasks import TaskType
from labelwise.testing import candidates_from_proba

# Score strategies that read nothing but the model's proba: selection is a function of the
# per-row scores alone, so it must commute with permutations of the pool.
PROBA_SCORE_STRATEGIES = [
    name
    for name in strategy_names()
    if issubclass(get_strategy_class(name), ScoreStrategy)
    and set(get_strategy_class(name).needs) <= {"model"}
]
CASES = [
    (name, task)
    for name in PROBA_SCORE_STRATEGIES
    for task in sorted(get_strategy_class(name).task_types)
]

SETTINGS = settings(max_examples=40, deadline=None)


def draw_proba(data, task_type: TaskType, max_n: int = 30) -> np.ndarray:
    """A valid ``proba (n, c)`` for the task, every element drawn on its own."""
    n = data.draw(st.integers(2, max_n))
    c = 2 if task_type == TaskType.BINARY else data.draw(st.integers(2, 5))
    lo = 0.0 if task_type == TaskType.MULTILABEL else 0.01
    proba = data.draw(arrays(np.float64, (n, c), elements=st.floats(lo, 1.0), fill=st.nothing()))
    if task_type != TaskType.MULTILABEL:
        proba = proba / proba.sum(axis=1, keepdims=True)
    return proba


def test_there_are_score_strategies_to_check():
    assert {"entropy", "margin", "least_confidence"} <= set(PROBA_SCORE_STRATEGIES)


@pytest.mark.parametrize(("name", "task_type"), CASES)
@SETTINGS
@given(data=st.data())
def test_permuting_the_pool_permutes_the_selection(name, task_type, data):
    strategy = get_strategy(name)
    proba = draw_proba(data, TaskType(task_type))
    # keep one row per distinct score, so the selection is unique whatever the seed
    scores = strategy.score_candidates(candidates_from_proba(proba, task_type=task_type))
    proba = proba[np.sort(np.unique(scores, return_index=True)[1])]
    n = proba.shape[0]
    assume(n >= 2)
    k = data.draw(st.integers(1, n))
    perm = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)
    q1 = strategy.select(candidates_from_proba(proba, task_type=task_type), k, random_state=0)
    # position j of the permuted pool holds original row perm[j]; another seed on purpose
    q2 = strategy.select(candidates_from_proba(proba[perm], task_type=task_type), k, random_state=1)
    np.testing.assert_array_equal(perm[q2.idx], q1.idx)
    np.testing.assert_array_equal(q2.scores, q1.scores)


@pytest.mark.parametrize(("name", "task_type"), [*CASES, ("random", "multiclass")])
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**31 - 1), chunk=st.integers(1, 40))
def test_same_seed_same_result(name, task_type, data, seed, chunk):
    proba = draw_proba(data, TaskType(task_type))
    k = data.draw(st.integers(1, proba.shape[0]))
    runs = [
        get_strategy(name).select(
            candidates_from_proba(proba, task_type=task_type, chunk_size=chunk),
            k,
            random_state=seed,
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].idx, runs[1].idx)
    np.testing.assert_array_equal(runs[0].scores, runs[1].scores)


# scores with many ties (a few distinct values) or arbitrary finite floats
scores_arrays = st.one_of(
    arrays(np.float64, st.integers(1, 60), elements=st.sampled_from([0.0, 0.5, 1.0, -2.0])),
    arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)),
)


@SETTINGS
@given(scores=scores_arrays, data=st.data(), seed=st.integers(0, 1000))
def test_top_k_picks_the_highest_scores_best_first(scores, data, seed):
    k = data.draw(st.integers(1, scores.shape[0]))
    idx = top_k(scores, k, random_state=seed)
    assert idx.shape == (k,) and idx.dtype == np.int64
    assert np.unique(idx).shape[0] == k
    picked = scores[idx]
    assert (np.diff(picked) <= 0).all()  # best first
    rest = np.delete(scores, idx)
    if rest.shape[0]:
        assert picked.min() >= rest.max()


@SETTINGS
@given(
    scores=arrays(
        np.float64, st.integers(1, 80), elements=st.floats(-1e3, 1e3, width=32), unique=True
    ),
    data=st.data(),
)
def test_running_top_k_over_any_chunking_equals_top_k(scores, data):
    n = scores.shape[0]
    k = data.draw(st.integers(1, n))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, n - 1)), max_size=10)))
    bounds = [0, *(c for c in cuts if c < n), n]
    best = RunningTopK(k, random_state=data.draw(st.integers(0, 100)))
    for start, stop in itertools.pairwise(bounds):
        best.push(scores[start:stop], start)
    idx, got = best.result()
    np.testing.assert_array_equal(idx, top_k(scores, k))
    np.testing.assert_array_equal(got, scores[idx])


@SETTINGS
@given(
    n=st.integers(20, 200),
    frac=st.floats(0.05, 0.5),
    seed=st.integers(0, 2**31 - 11),
    chunk=st.integers(1, 50),
)
def test_ties_are_broken_by_the_seed(n, frac, seed, chunk):
    k = max(1, int(n * frac))
    scores = np.zeros(n)  # every item tied
    # same seed: same picks, for top_k and for a chunked RunningTopK alike
    np.testing.assert_array_equal(top_k(scores, k, seed), top_k(scores, k, seed))

    def running(s):
        best = RunningTopK(k, random_state=s)
        for start in range(0, n, chunk):
            best.push(scores[start : start + chunk], start)
        return best.result()[0]

    np.testing.assert_array_equal(running(seed), running(seed))
    # other seeds: other picks (all ten equal has probability <= (1/20)**9)
    picks = {tuple(top_k(scores, k, seed + i).tolist()) for i in range(10)}
    assert len(picks) > 1
    picks = {tuple(running(seed + i).tolist()) for i in range(10)}
    assert len(picks) > 1


@SETTINGS
@given(
    n_top=st.integers(0, 5),
    n_tied=st.integers(1, 10),
    n_low=st.integers(0, 5),
    data=st.data(),
)
def test_ties_never_jump_the_order(n_top, n_tied, n_low, data):
    scores = np.concatenate([np.full(n_top, 2.0), np.full(n_tied, 1.0), np.full(n_low, 0.0)])
    perm = np.array(data.draw(st.permutations(range(scores.shape[0]))), dtype=np.int64)
    scores = scores[perm]
    k = data.draw(st.integers(1, scores.shape[0]))
    idx = top_k(scores, k, random_state=data.draw(st.integers(0, 1000)))
    expected = np.sort(scores)[::-1][:k]
    np.testing.assert_array_equal(scores[idx], expected)
