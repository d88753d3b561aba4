"""Memory-mapped pools: open_pool, page release, select_from_files, ``labelwise select`` (local)."""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.errors import LabelwiseError
from labelwise.scale import PoolCandidates, open_pool, release_pages, select_from_files
from labelwise.strategies import Candidates, get_strategy

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=3000) > 0).astype(int) + (X[:, 1] > 1)
    labeled = rng.choice(3000, 150, replace=False)
    model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
    np.save(d / "pool.npy", X)
    np.save(d / "labeled.npy", labeled)
    joblib.dump(model, d / "model.joblib")
    return {"dir": d, "X": X, "model": model, "labeled": labeled}


def _rss_file_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return 0


def test_open_pool_leaves_the_labeled_rows_out(files):
    c = open_pool(files["dir"] / "pool.npy", model=files["model"], labeled=files["labeled"])
    assert isinstance(c, PoolCandidates) and isinstance(c.X, np.memmap)
    assert c.n == 3000 - 150
    assert not np.isin(c.row_idx, files["labeled"]).any()


@pytest.mark.parametrize("name", ["margin", "kmeans_uncertainty", "information_density"])
def test_pool_candidates_select_what_candidates_select(files, name):
    row_idx = np.setdiff1d(np.arange(3000), files["labeled"])
    plain = Candidates(X=files["X"], model=files["model"], row_idx=row_idx, chunk_size=256)
    pooled = open_pool(
        files["dir"] / "pool.npy", model=files["model"], labeled=files["labeled"], chunk_size=256
    )
    a = get_strategy(name).select(plain, 40, random_state=3)
    b = get_strategy(name).select(pooled, 40, random_state=3)
    np.testing.assert_array_equal(a.pool_idx, b.pool_idx)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_progress_reports_each_chunk(files):
    seen = []
    c = open_pool(
        files["dir"] / "pool.npy",
        model=files["model"],
        chunk_size=1000,
        progress=lambda d, t: seen.append((d, t)),
    )
    get_strategy("entropy").select(c, 5, random_state=0)
    assert seen == [(1000, 3000), (2000, 3000), (3000, 3000)]


def test_release_pages_hands_a_scanned_file_back(tmp_path):
    # 64 MB of float32: reading it maps every page into this process (RssFile grows); after
    # release_pages they are gone from RSS (the kernel's page cache keeps them).
    X = np.ones((16_384, 1024), dtype=np.float32)
    np.save(tmp_path / "big.npy", X)
    del X
    mm = np.load(tmp_path / "big.npy", mmap_mode="r")
    before = _rss_file_kb()
    assert float(mm[:, 0].sum()) == 16_384  # touches one float per row: every page
    grown = _rss_file_kb() - before
    release_pages(mm, 0, mm.shape[0])
    after = _rss_file_kb() - before
    assert grown > 48 * 1024, grown
    assert after < 8 * 1024, after
    release_pages(np.ones((3, 3)), 0, 3)  # not a memmap: nothing to do


def test_a_scan_keeps_resident_memory_to_a_chunk(tmp_path):
    X = np.random.default_rng(0).normal(size=(32_768, 512)).astype(np.float32)  # 64 MB
    np.save(tmp_path / "pool.npy", X)
    model = LogisticRegression(max_iter=100).fit(X[:500], (X[:500, 0] > 0).astype(int))
    del X
    c = open_pool(tmp_path / "pool.npy", model=model, chunk_size=2048)  # 4 MB chunks
    before = _rss_file_kb()
    get_strategy("margin").select(c, 10, random_state=0)
    assert _rss_file_kb() - before < 16 * 1024


def test_select_from_files_local(files):
    d = files["dir"]
    q = select_from_files(
        d / "pool.npy", d / "model.joblib", "margin", 25, labeled=d / "labeled.npy", random_state=1
    )
    row_idx = np.setdiff1d(np.arange(3000), files["labeled"])
    expected = get_strategy("margin").select(
        Candidates(X=files["X"], model=files["model"], row_idx=row_idx), 25, random_state=1
    )
    np.testing.assert_array_equal(q.pool_idx, expected.pool_idx)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pool": "missing.npy"}, "pool file"),
        ({"model": "missing.joblib"}, "model file"),
        ({"labeled": "missing.npy"}, "labeled file"),
        (
            {"labeled": np.array([0, 5000])},
            r"labeled must hold integer row positions in \[0, 3000\)",
        ),
        ({"backend": "spark"}, "backend must be one of local, ray"),
    ],
)
def test_select_from_files_errors(files, kwargs, match):
    d = files["dir"]
    args = {"pool": d / "pool.npy", "model": d / "model.joblib", **kwargs}
    pool, model = args.pop("pool"), args.pop("model")
    with pytest.raises(LabelwiseError, match=match):
        select_from_files(pool, model, "margin", 5, **args)


def test_open_pool_rejects_a_1d_array(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(5.0))
    with pytest.raises(LabelwiseError, match="2-D"):
        open_pool(tmp_path / "v.npy")


def test_cli_select_local(files):
    d = files["dir"]
    out = d / "picks.npy"
    args = ["select", "--pool", str(d / "pool.npy"), "--model", str(d / "model.joblib")]
    args += ["--labeled", str(d / "labeled.npy"), "--k", "25", "--seed", "1", "--out", str(out)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n"] == 25 and payload["backend"] == "local"
    picks = np.load(out)
    q = select_from_files(
        d / "pool.npy",
        d / "model.joblib",
        "diverse_margin",
        25,
        labeled=d / "labeled.npy",
        random_state=1,
    )  # fmt: skip (the default)
    np.testing.assert_array_equal(picks, q.pool_idx)
    assert payload["pool_idx"] == picks.tolist()
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "selected 25 rows with diverse_margin" in table.stdout


def test_cli_select_reports_a_bad_backend_in_one_line(files):
    d = files["dir"]
    result = runner.invoke(
        app,
        ["select", "--pool", str(d / "pool.npy"), "--model", str(d / "model.joblib"),
         "--backend", "spark", "--out", str(d / "x.npy")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "backend must be one of local, ray" in result.output


def test_cli_select_without_ray_installed_says_how_to_install(files, monkeypatch):
    import labelwise.scale.ray_backend as rb

    def no_ray():
        raise LabelwiseError("the ray backend needs Ray Data: pip install 'labelwise[ray]'")

    monkeypatch.setattr(rb, "_import_ray", no_ray)
    d = files["dir"]
    result = runner.invoke(
        app,
        ["select", "--pool", str(d / "pool.npy"), "--model", str(d / "model.joblib"),
         "--backend", "ray", "--out", str(d / "x.npy")],
    )  # fmt: skip
    assert result.exit_code == 2 and "labelwise[ray]" in result.output


def test_import_scale_loads_neither_ray_nor_sklearn():
    code = (
        "import sys, labelwise.scale; "
        "print(sum(m.split('.')[0] in ('ray', 'sklearn') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_gathering_scattered_rows_stays_out_of_resident_memory(tmp_path):
    from labelwise.scale.blocks import gather_rows

    X = np.random.default_rng(0).normal(size=(65_536, 256)).astype(np.float32)  # 64 MB
    np.save(tmp_path / "pool.npy", X)
    mm = np.load(tmp_path / "pool.npy", mmap_mode="r")
    pos = np.random.default_rng(1).choice(65_536, 3000, replace=False)
    before = _rss_file_kb()
    rows = gather_rows(mm, pos)
    assert _rss_file_kb() - before < 8 * 1024
    np.testing.assert_array_equal(rows, X[pos])
    np.testing.assert_array_equal(gather_rows(X, pos), X[pos])  # plain arrays: plain indexing
