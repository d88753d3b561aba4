"""TypiClust: typicality and cluster picks by hand, the strategy in the contract and the loop."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labelwise.errors import LabelwiseError
from labelwise.strategies import Candidates, get_strategy
from labelwise.strategies.typiclust import typicality, typiclust_select


def _blob(center, n, spread=1.0):
    # the centre plus n - 1 points on a unit circle, spaced more than 1 apart (n <= 6): the
    # centre, at distance 1 from all, is the most typical
    angles = np.linspace(0, 2 * np.pi, n - 1, endpoint=False)
    ring = np.c_[np.cos(angles), np.sin(angles)] * spread
    return np.vstack([[0.0, 0.0], ring]) + np.asarray(center, dtype=float)


def test_typicality_by_hand():
    # nearest distances 1, 1, 2 -> typicality 1, 1, 0.5
    np.testing.assert_allclose(typicality(np.array([[0.0], [1.0], [3.0]]), 1), [1, 1, 0.5])


def test_typicality_sparse_equals_dense():
    X = np.random.RandomState(0).rand(20, 5)
    np.testing.assert_allclose(typicality(sp.csr_matrix(X), 3), typicality(X, 3), rtol=1e-6)


def test_typiclust_takes_the_centre_of_the_largest_cluster_first():
    big, small = _blob((0, 0), 6), _blob((20, 20), 5)
    X = np.vstack([big, small])
    idx, typ = typiclust_select(X, 2, random_state=0)
    assert idx.tolist() == [0, 6]  # big blob's centre, then the small blob's
    assert typ[0] > 0 and typ[1] > 0


def test_typiclust_skips_a_covered_cluster():
    big, small = _blob((0, 0), 6), _blob((20, 20), 5)
    X = np.vstack([big, small])
    labeled = np.array([[0.1, 0.0]])  # covers the big blob
    idx, _ = typiclust_select(X, 1, labeled, random_state=0)
    assert idx.tolist() == [6]


def test_strategy_is_cold_start_and_samples_large_pools():
    X = np.random.RandomState(0).rand(3000, 4)
    s = get_strategy("typiclust", sample_size=500)
    assert s.cold_start
    q = s.select(Candidates(X=X), 10, random_state=0)
    assert len(set(q.idx.tolist())) == 10
    again = s.select(Candidates(X=X), 10, random_state=0)
    assert q.idx.tolist() == again.idx.tolist()


@pytest.mark.parametrize("bad", [{"sample_size": 0}, {"max_clusters": -1}, {"n_neighbors": True}])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(LabelwiseError):
        get_strategy("typiclust", **bad)
