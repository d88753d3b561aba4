"""Selection as independent blocks (no Ray): equal to ``Strategy.select``, whatever the layout.

The serial executor runs the very per-block step the Ray backend runs, so these cases cover the
equality logic cheaply; ``test_ray.py`` repeats the main ones on a real cluster.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelwise.errors import BatchSizeError, MissingInputError, NotFittedError
from labelwise.scale.blocks import (
    MemmapSource,
    UnsupportedBackendError,
    merge_blocks,
    plan_blocks,
    select_blocks,
    serial_map,
)
from labelwise.select import RunningTopK, top_k
from labelwise.strategies import Candidates, get_strategy, get_strategy_class
from labelwise.testing import make_candidates

DISTRIBUTED = [
    "entropy",
    "margin",
    "least_confidence",
    "qbc_vote_entropy",
    "qbc_kl",
    "diverse_margin",
    "kmeans_uncertainty",
    "kcenter",
    "tfidf_diverse",
]


def _layout(cands: Candidates, layout: str) -> Candidates:
    """The same candidates, or a different subset of the pool, read in another way."""
    n_pool = cands.X.shape[0]
    if layout == "all_rows":  # row_idx None: plain slices
        cands.row_idx = None
    elif layout == "sparse":  # every 3rd row: blocks are gathered, not sliced
        cands.row_idx = np.arange(0, n_pool, 3)
    elif layout == "unsorted":
        cands.row_idx = np.random.default_rng(0).permutation(cands.row_idx)
    cands.__post_init__()
    return cands


def _assert_same(a, b) -> None:
    np.testing.assert_array_equal(a.idx, b.idx)
    np.testing.assert_array_equal(a.pool_idx, b.pool_idx)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.strategy == b.strategy


def test_every_two_stage_strategy_is_in_the_equality_cases():
    # a diversity strategy gets a block plan from its base class; this keeps it tested too
    from labelwise.strategies.diversity import _Diversity
    from labelwise.strategies.registry import strategy_names

    two_stage = {n for n in strategy_names() if issubclass(get_strategy_class(n), _Diversity)}
    assert {"diverse_margin", "kcenter"} <= two_stage <= set(DISTRIBUTED)


CASES = [
    (name, task)
    for name in DISTRIBUTED
    for task in sorted(t.value for t in get_strategy_class(name).task_types)
]


@pytest.mark.parametrize(("name", "task"), CASES)
@pytest.mark.parametrize("layout", ["labeled_gaps", "all_rows", "sparse", "unsorted"])
@pytest.mark.parametrize("chunk", [7, 50, 65_536])
def test_blocks_select_what_select_selects(name, task, layout, chunk):
    def cands():
        return _layout(make_candidates(task, n=200, chunk_size=chunk), layout)

    k = 9
    local = get_strategy(name).select(cands(), k, random_state=4)
    _assert_same(select_blocks(name, cands(), k, random_state=4), local)


def _tied_pool(n: int = 900, distinct: int = 12, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(distinct, 5)).astype(np.float32)[rng.integers(0, distinct, n)]
    model = LogisticRegression(max_iter=200).fit(X[:100], rng.integers(0, 3, 100))
    return X, model


@pytest.mark.parametrize("name", ["margin", "entropy", "kmeans_uncertainty"])
def test_ties_are_broken_as_locally(name):
    X, model = _tied_pool()
    row_idx = np.setdiff1d(np.arange(X.shape[0]), np.arange(0, X.shape[0], 11))
    for chunk in (13, 100):
        for seed in range(3):
            c = Candidates(X=X, model=model, row_idx=row_idx, chunk_size=chunk)
            local = get_strategy(name).select(c, 30, random_state=seed)
            _assert_same(select_blocks(name, c, 30, random_state=seed), local)


def test_generators_advance_as_locally():
    # a Generator passed in moves on by the same draws: what the caller draws next agrees
    X, model = _tied_pool()
    g_local, g_blocks = np.random.default_rng(5), np.random.default_rng(5)
    c = Candidates(X=X, model=model, chunk_size=64)
    get_strategy("kmeans_uncertainty").select(c, 10, random_state=g_local)
    select_blocks("kmeans_uncertainty", c, 10, random_state=g_blocks)
    assert g_local.random() == g_blocks.random()


@settings(max_examples=60, deadline=None)
@given(
    scores=arrays(np.float64, st.integers(1, 80), elements=st.sampled_from([0.0, 0.5, 1.0])),
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
)
def test_tie_keys_do_not_depend_on_the_chunking(scores, data, seed):
    # Why select.py needs no change: RunningTopK draws one key per item in stream order, and
    # random_sample(a) + random_sample(b) == random_sample(a + b), so even with ties any chunking
    # gives top_k's selection; blocks only need the generator state at their first item.
    k = data.draw(st.integers(1, scores.shape[0]))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, scores.shape[0] - 1)), max_size=6)))
    best = RunningTopK(k, random_state=seed)
    for lo, hi in zip([0, *cuts], [*cuts, scores.shape[0]], strict=True):
        best.push(scores[lo:hi], lo)
    np.testing.assert_array_equal(best.result()[0], top_k(scores, k, random_state=seed))


def test_merge_does_not_depend_on_arrival_order():
    X, model = _tied_pool()
    c = Candidates(X=X, model=model, chunk_size=50)

    def shuffled(specs, context, n_blocks):
        results = list(serial_map(specs, context, n_blocks))
        random.Random(3).shuffle(results)
        return results

    local = get_strategy("margin").select(c, 40, random_state=1)
    _assert_same(select_blocks("margin", c, 40, random_state=1, map_blocks=shuffled), local)


def test_merge_blocks_keeps_the_best_by_score_then_key():
    parts = [
        (np.array([0, 1]), np.array([0.9, 0.5]), np.array([0.3, 0.1])),
        (np.array([7, 8]), np.array([0.9, 0.5]), np.array([0.2, 0.9])),
    ]
    idx, scores = merge_blocks(parts, 3)
    assert idx.tolist() == [7, 0, 1]  # 0.9 (key .2), 0.9 (key .3), 0.5 (key .1)
    assert scores.tolist() == [0.9, 0.9, 0.5]


def test_plan_blocks_cuts_where_iter_blocks_cuts():
    c = make_candidates("multiclass", n=200, chunk_size=30)
    rng = np.random.RandomState(0)
    specs = list(plan_blocks(c, rng))
    starts = [start for start, _, _ in c.iter_blocks()]
    assert [s.start for s in specs] == starts
    assert sum(s.n for s in specs) == c.n
    # the generator ends where one draw per candidate leaves it
    assert rng.random_sample() == np.random.RandomState(0).random_sample(c.n + 1)[-1]


def test_stats_account_for_the_round():
    stats: dict = {}
    select_blocks("margin", make_candidates(n=200, chunk_size=50), 5, random_state=0, stats=stats)
    assert stats["blocks"] == 4
    for key in ("plan_s", "blocks_s", "merge_s", "finish_s", "read_s", "score_s", "reduce_s"):
        assert stats[key] >= 0


def test_progress_counts_candidates():
    seen = []
    c = make_candidates(n=200, chunk_size=60)
    select_blocks("entropy", c, 5, random_state=0, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(60, 200), (120, 200), (180, 200), (200, 200)]


@pytest.mark.parametrize(
    "name", ["random", "badge", "information_density", "class_balanced", "uncertainty_mix"]
)
def test_strategies_without_a_block_plan_say_so(name):
    with pytest.raises(UnsupportedBackendError, match="backend='local'"):
        select_blocks(name, make_candidates(n=100), 5, random_state=0)


def test_kcenter_without_a_model_is_local_only():
    c = make_candidates(n=100)
    c.model = None
    with pytest.raises(UnsupportedBackendError):
        select_blocks("kcenter", c, 5, random_state=0)


def test_validation_matches_select():
    c = make_candidates(n=100)
    with pytest.raises(BatchSizeError):
        select_blocks("margin", c, 101)
    c.model = None
    with pytest.raises(NotFittedError):
        select_blocks("margin", c, 5)
    c = make_candidates(n=100)
    c.committee = None
    with pytest.raises(MissingInputError):
        select_blocks("qbc_kl", c, 5)


def test_memmap_source_reopens_views_at_their_own_offset(tmp_path):
    X = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    for view in (mm, mm[17:250]):
        src = MemmapSource.of(view)
        np.testing.assert_array_equal(src.open(), view)
    assert MemmapSource.of(np.asarray(X)) is None
    assert MemmapSource.of(mm[:, 1:]) is None  # not row-contiguous: goes to the object store


def test_blocks_on_a_memmap_equal_select(tmp_path):
    X, model = _tied_pool()
    np.save(tmp_path / "pool.npy", X)
    c = Candidates(X=np.load(tmp_path / "pool.npy", mmap_mode="r"), model=model, chunk_size=64)
    local = get_strategy("margin").select(c, 25, random_state=2)
    _assert_same(select_blocks("margin", c, 25, random_state=2), local)
