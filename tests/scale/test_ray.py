"""The Ray backend on a real two-node cluster: same selection as local, survives a killed worker.

The pool is a memory-mapped ``.npy`` of 40 distinct rows repeated, so scores tie massively and
the selection depends on the tie-break keys: equality with ``Strategy.select`` checks that
every block drew exactly the keys the local stream gives its candidates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from labelwise.strategies import Candidates, get_strategy

pytestmark = pytest.mark.timeout(300)

N, D, CHUNK, K = 6000, 16, 500, 20


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(40, D)).astype(np.float32)
    X = distinct[rng.integers(0, 40, N)]
    path = tmp_path_factory.mktemp("pool") / "pool.npy"
    np.save(path, X)
    labeled = np.sort(rng.choice(N, 300, replace=False))
    y = rng.integers(0, 3, labeled.shape[0])
    model = LogisticRegression(max_iter=300).fit(X[labeled], y)
    committee = [
        LogisticRegression(C=c, max_iter=300).fit(X[labeled][b], y[b])
        for c, b in [(0.05, slice(0, 200)), (1.0, slice(100, 300)), (20.0, slice(None))]
    ]
    return {"path": path, "model": model, "committee": committee, "labeled": labeled}


def _candidates(pool, model=None) -> Candidates:
    X = np.load(pool["path"], mmap_mode="r")
    return Candidates(
        X=X,
        model=pool["model"] if model is None else model,
        committee=pool["committee"],
        row_idx=np.setdiff1d(np.arange(N), pool["labeled"]),  # sorted with gaps: keep masks
        chunk_size=CHUNK,
    )


@pytest.mark.parametrize(
    "name",
    ["margin", "entropy", "qbc_vote_entropy", "kmeans_uncertainty", "kcenter", "diverse_margin"],
)
def test_ray_selects_what_local_selects(ray_cluster, pool, name):
    from labelwise.scale import select_distributed

    local = get_strategy(name).select(_candidates(pool), K, random_state=7)
    stats: dict = {}
    remote = select_distributed(name, _candidates(pool), K, random_state=7, stats=stats)
    np.testing.assert_array_equal(remote.idx, local.idx)
    np.testing.assert_array_equal(remote.pool_idx, local.pool_idx)
    np.testing.assert_array_equal(remote.scores, local.scores)
    assert stats["blocks"] == -(-(N - 300) // CHUNK) == sum(stats["nodes"].values())


def test_ties_decide_the_selection(pool):
    # guards the test above: with fewer distinct scores than K, keys pick the batch
    from labelwise.strategies import get_strategy

    scores = get_strategy("margin").score_candidates(_candidates(pool))
    assert np.unique(scores).shape[0] <= 40
    picks = {
        tuple(get_strategy("margin").select(_candidates(pool), K, random_state=s).pool_idx)
        for s in range(3)
    }
    assert len(picks) == 3


def test_blocks_run_on_both_nodes(ray_cluster, pool):
    from labelwise.scale import select_distributed

    stats: dict = {}
    select_distributed("margin", _candidates(pool), K, random_state=0, stats=stats)
    assert set(stats["nodes"]) <= set(ray_cluster.node_ids)
    assert len(stats["nodes"]) == 2, stats["nodes"]


def test_in_memory_pool_goes_through_the_object_store(ray_cluster, pool):
    from labelwise.scale import select_distributed

    cands = _candidates(pool)
    cands.X = np.array(cands.X)  # not a memmap: shipped once with ray.put
    local = get_strategy("entropy").select(cands, K, random_state=3)
    remote = select_distributed("entropy", cands, K, random_state=3)
    np.testing.assert_array_equal(remote.pool_idx, local.pool_idx)


def _kill_once_model(model, marker: Path, trigger: np.ndarray, always: bool = False):
    """A model whose worker process SIGKILLs itself the first time it scores ``trigger``
    (every time with ``always``), leaving its pid in ``marker``."""

    # Defined in a function so that Ray pickles it by value: the workers cannot import tests.
    class KillOnce:
        def __init__(self):
            self.model, self.marker, self.trigger = model, str(marker), trigger
            self.classes_ = model.classes_

        def fit(self, X, y):
            return self

        def __sklearn_is_fitted__(self):
            return True

        def predict_proba(self, X):
            first = always or not os.path.exists(self.marker)
            if first and np.array_equal(np.asarray(X[0]), self.trigger):
                with open(self.marker, "w") as fh:
                    fh.write(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return self.model.predict_proba(X)

    return KillOnce()


def test_a_worker_killed_mid_round_is_survived(ray_cluster, pool, tmp_path):
    from labelwise.scale import select_distributed

    local = get_strategy("margin").select(_candidates(pool), K, random_state=11)
    X = np.load(pool["path"], mmap_mode="r")
    # the first row of the 5th block: its worker dies there, after 4 blocks have been scored
    block4_first = np.setdiff1d(np.arange(N), pool["labeled"])[4 * CHUNK]
    marker = tmp_path / "killed"
    model = _kill_once_model(pool["model"], marker, np.asarray(X[block4_first]))
    remote = select_distributed("margin", _candidates(pool, model), K, random_state=11)
    assert marker.exists(), "no worker was killed: the test proves nothing"
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # that worker process is gone
    np.testing.assert_array_equal(remote.pool_idx, local.pool_idx)
    np.testing.assert_array_equal(remote.scores, local.scores)


def test_cli_select_on_the_cluster(ray_cluster, pool, tmp_path):
    # a fresh process: `labelwise select` connects to the cluster itself, then disconnects
    model_path, labeled_path = tmp_path / "model.joblib", tmp_path / "labeled.npy"
    joblib.dump(pool["model"], model_path)
    np.save(labeled_path, pool["labeled"])
    out = {b: tmp_path / f"{b}.npy" for b in ("local", "ray")}
    for backend in ("local", "ray"):
        result = subprocess.run(
            [
                sys.executable, "-m", "labelwise.cli", "select", "--pool", str(pool["path"]),
                "--model", str(model_path), "--labeled", str(labeled_path), "--k", str(K),
                "--strategy", "margin", "--backend", backend, "--address", ray_cluster.address,
                "--chunk-size", str(CHUNK), "--seed", "5", "--out", str(out[backend]), "--json",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout)["backend"] == backend
    np.testing.assert_array_equal(np.load(out["ray"]), np.load(out["local"]))
    expected = get_strategy("margin").select(_candidates(pool), K, random_state=5).pool_idx
    np.testing.assert_array_equal(np.load(out["local"]), expected)


def test_a_block_that_always_kills_its_worker_fails_the_round(ray_cluster, pool, tmp_path):
    from labelwise.errors import LabelwiseError
    from labelwise.scale import select_distributed

    X = np.load(pool["path"], mmap_mode="r")
    block2_first = np.setdiff1d(np.arange(N), pool["labeled"])[2 * CHUNK]
    marker = tmp_path / "pid"
    model = _kill_once_model(pool["model"], marker, np.asarray(X[block2_first]), always=True)
    with pytest.raises(LabelwiseError, match=r"died 2 times \(max_retries=1\)"):
        select_distributed("margin", _candidates(pool, model), K, random_state=0, max_retries=1)
    assert marker.exists()


def test_a_labelwise_error_in_a_block_comes_back_as_itself(ray_cluster, pool):
    from labelwise.errors import InvalidProbaError
    from labelwise.scale import select_distributed

    class NaNModel:  # local class: Ray pickles it by value
        classes_ = pool["model"].classes_

        def fit(self, X, y):
            return self

        def __sklearn_is_fitted__(self):
            return True

        def predict_proba(self, X):
            return np.full((X.shape[0], 3), np.nan)

    with pytest.raises(InvalidProbaError, match="proba contains NaN"):
        select_distributed("margin", _candidates(pool, NaNModel()), K, random_state=0)
