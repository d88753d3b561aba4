"""Contiguous-block scoring (views of the pool, labelled rows dropped) equals gathering rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from labelwise.strategies import Candidates, get_strategy


@pytest.fixture(scope="module")
def pool():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    labelled = np.arange(0, 600, 7)  # every 7th row labelled: gaps inside every block
    model = LogisticRegression(max_iter=300).fit(X[labelled], y[labelled])
    committee = [
        LogisticRegression(C=c, max_iter=300).fit(X[labelled], y[labelled]) for c in (0.1, 1, 10)
    ]
    row_idx = np.setdiff1d(np.arange(X.shape[0]), labelled)
    return X, row_idx, model, committee


@pytest.mark.parametrize(
    "name", ["entropy", "margin", "qbc_kl", "qbc_vote_entropy", "egl", "badge"]
)
def test_block_path_equals_gathered_rows(pool, name):
    X, row_idx, model, committee = pool
    common = {"model": model, "committee": committee, "chunk_size": 100}
    blocks = Candidates(X=X, row_idx=row_idx, **common)
    gathered = Candidates(X=np.ascontiguousarray(X[row_idx]), **common)
    a = get_strategy(name).select(blocks, 25, random_state=3)
    b = get_strategy(name).select(gathered, 25, random_state=3)
    assert a.idx.tolist() == b.idx.tolist()
    # float32 scores: BLAS may sum a contiguous block and gathered rows in another order
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_blocks_cover_every_candidate_once(pool):
    X, row_idx, model, _ = pool
    cands = Candidates(X=X, row_idx=row_idx, model=model, chunk_size=64)
    seen = []
    for start, block, keep in cands.iter_blocks():
        n = block.shape[0] if keep is None else keep.shape[0]
        assert start == len(seen)
        seen.extend(range(start, start + n))
    assert seen == list(range(cands.n))
