"""Selection speed and memory on large pools: every registered strategy against a plain-numpy floor.

The floor is what a careful user would write by hand: ``predict_proba`` on the whole pool,
entropy, ``argpartition``, with scikit-learn's finite-value check switched off exactly as
labelwise switches it off (like with like: the check is 20-32% of ``predict_proba`` at 1M rows).
Every strategy is timed on the same memory-mapped float32 pool and fitted logistic regression.

Timings are *paired*: one child process per strategy alternates floor and strategy runs
(floor, strategy, floor, strategy, ...) ``--repeats`` times, and the reported ratio is the median
of the per-pair ratios, with their range, so load bursts on a shared machine hit both sides of a
pair alike (committee strategies are compared with ``n_members`` floors). Peak extra anonymous
memory is the peak of a first, untimed strategy run above the child's start (before the floor
has allocated anything); each strategy runs in its own child, so one strategy's peak does not
hide another's. Speed data are synthetic Gaussian clusters: speed does not depend on what the
features mean, and label-efficiency claims are measured on real data in ``evaluate``.

    python benchmarks/select_speed.py --repeats 3        # N = 10k, 100k, 1M -> RESULTS.md
    python benchmarks/select_speed.py --sizes 10000      # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _results import write_section  # benchmarks/ is on sys.path when run

D = 384
N_CLASSES = 10
K = 500
N_MEMBERS = 5
CHUNK = 65_536
RESULTS = Path(__file__).with_name("RESULTS.md")
TARGETS = {"uncertainty": 1.2, "committee": 1.2}
UNCERTAINTY = {"entropy", "margin", "least_confidence"}


# --------------------------------------------------------------------------- memory sampling
def _rss_anon_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class PeakAnon:
    """Samples RssAnon every few ms in a thread; file-backed memmap pages are not counted."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.base = _rss_anon_kb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_anon_kb())
            time.sleep(self.interval)

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon_kb())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 1024


# --------------------------------------------------------------------------- data
def make_pool(path: Path, n: int, random_state: int = 0) -> None:
    """Write a float32 (n, D) pool of Gaussian clusters to ``path`` chunk by chunk."""
    rng = np.random.default_rng(random_state)
    centers = rng.normal(0, 1.0, size=(N_CLASSES * 3, D)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        c = rng.integers(0, len(centers), stop - start)
        X[start:stop] = centers[c] + rng.normal(0, 1.5, size=(stop - start, D)).astype(np.float32)
    X.flush()
    np.save(path.with_suffix(".labels.npy"), rng.integers(0, len(centers), 0))
    del X


def fit_models(path: Path, out: Path, random_state: int = 0) -> None:
    """Fit the model and a bootstrap committee on 2,000 labelled rows; pickle them."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression

    X = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(random_state)
    lab = rng.choice(X.shape[0], 2000, replace=False)
    X_lab = np.asarray(X[lab])
    # Labels from cluster structure so the model has something real to separate.
    y = KMeans(N_CLASSES, n_init=1, random_state=random_state).fit_predict(X_lab)
    model = LogisticRegression(max_iter=300).fit(X_lab, y)
    committee = []
    for m in range(N_MEMBERS):
        b = rng.choice(len(lab), len(lab), replace=True)
        committee.append(LogisticRegression(max_iter=300, random_state=m).fit(X_lab[b], y[b]))
    with open(out, "wb") as fh:
        pickle.dump({"model": model, "committee": committee, "labeled_idx": lab, "y": y}, fh)


# --------------------------------------------------------------------------- child: one run
def floor(X, model) -> np.ndarray:
    from sklearn import config_context

    with config_context(assume_finite=True):  # labelwise skips this check too
        proba = model.predict_proba(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(proba > 0, proba * np.log(proba), 0.0).sum(axis=1)
    return np.argpartition(-ent, K - 1)[:K]


def run_one(name: str, pool: Path, models: Path, repeats: int) -> dict:
    """Alternate floor and ``name`` ``repeats`` times in this process; seconds of each run."""
    from labelwise.strategies import Candidates, get_strategy

    with open(models, "rb") as fh:
        m = pickle.load(fh)
    X = np.load(pool, mmap_mode="r")
    n = X.shape[0]
    # Touch the file once so every run starts with the page cache equally warm.
    for start in range(0, n, CHUNK):
        float(X[start : start + CHUNK, 0].sum())
    unlabeled = np.setdiff1d(np.arange(n), m["labeled_idx"])
    meta_rng = np.random.default_rng(1)
    candidates = Candidates(
        X=X,
        model=m["model"],
        row_idx=unlabeled,
        X_labeled=np.asarray(X[m["labeled_idx"]]),
        y_labeled=m["y"],
        committee=m["committee"],
        metadata={
            "source": meta_rng.integers(0, 4, n).astype(str),
            "length": meta_rng.gamma(2.0, 50.0, n).astype(np.float32),
        },
        chunk_size=CHUNK,
    )
    strategy = get_strategy(name)
    # Untimed first run, before anything else allocates: its peak is the strategy's memory
    # (a later run would reuse what the allocator kept from the floor), and it pays the lazy
    # imports. Then one untimed floor, then the timed pairs.
    with PeakAnon() as mem:
        query = strategy.select(candidates, K, random_state=0)
    assert len(np.unique(query.pool_idx)) == K
    extra = mem.extra_mb
    floor(X[:CHUNK], m["model"])
    floors, times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        floor(X, m["model"])
        floors.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        strategy.select(candidates, K, random_state=0)
        times.append(time.perf_counter() - t0)
    return {"strategy": name, "n": n, "floor": floors, "seconds": times, "extra_mb": extra}


def child(name: str, pool: Path, models: Path, repeats: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", name, str(pool), str(models), str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"strategy": name, "error": f"timeout after {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"strategy": name, "error": last[:160]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report
def kind_of(name: str, info) -> str:
    if name in UNCERTAINTY:
        return "uncertainty"
    if "committee" in info.needs:
        return "committee"
    return "other"


def target_text(kind: str, diversity_like: bool) -> str:
    if kind == "uncertainty":
        return "≤ 1.2× floor"
    if kind == "committee":
        return f"≤ 1.2× {N_MEMBERS} floors"
    return "≤ 30 s, ≤ 2 GB at 1M" if diversity_like else "—"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--strategies", default="", help="comma list; default every registered one")
    ap.add_argument(
        "--repeats", type=int, default=3, help="floor/strategy pairs per cell (median reported)"
    )
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        name, pool, models, repeats = args.child
        print(json.dumps(run_one(name, Path(pool), Path(models), int(repeats))))
        return 0

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from labelwise.strategies import list_strategies

    infos = {i.name: i for i in list_strategies()}
    names = [s for s in args.strategies.split(",") if s] or list(infos)
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console()
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="labelwise-bench-") as tmp,
        Progress(console=console) as progress,
    ):
        task = progress.add_task("benchmark", total=len(sizes) * len(names))
        for n in sizes:
            pool = Path(tmp) / f"pool_{n}.npy"
            models = Path(tmp) / f"models_{n}.pkl"
            progress.update(task, description=f"N={n:,}: writing pool")
            make_pool(pool, n)
            fit_models(pool, models)
            for name in names:
                progress.update(task, description=f"N={n:,}: {name} vs floor x{args.repeats}")
                r = child(name, pool, models, args.repeats, args.timeout)
                r["n"] = n
                rows.append(r)
                progress.advance(task)
            pool.unlink()

    table = Table(title=f"select k={K}, d={D}, {N_CLASSES} classes, float32 memmap pool")
    for col in (
        "N",
        "strategy",
        "seconds",
        "floor s",
        "× floor [range]",
        "peak extra MB",
        "target",
    ):
        table.add_column(col, justify="right" if col not in ("strategy", "target") else "left")
    md = [
        "| N | strategy | seconds (median) | floor seconds (median) | ratio to floor, median "
        "[min, max] of pairs | peak extra MB | target | met |",
        "|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        name, n = r["strategy"], r["n"]
        info = infos.get(name)
        kind = kind_of(name, info)
        if "error" in r:
            md.append(f"| {n:,} | {name} | error: {r['error']} | | | | | no |")
            table.add_row(f"{n:,}", name, "error", "", "", "", r["error"])
            continue
        members = N_MEMBERS if kind == "committee" else 1
        pairs = np.asarray(r["seconds"]) / (members * np.asarray(r["floor"]))
        ratio, low, high = float(np.median(pairs)), float(pairs.min()), float(pairs.max())
        sec, fl = float(np.median(r["seconds"])), float(np.median(r["floor"]))
        batchy = kind == "other" and info is not None and not info.cold_start
        tgt = target_text(kind, batchy)
        if kind in TARGETS:
            met = "yes" if ratio <= TARGETS[kind] else "no"
        elif batchy and n >= 1_000_000:
            met = "yes" if sec <= 30 and r["extra_mb"] <= 2048 else "no"
        else:
            met = ""
        md.append(
            f"| {n:,} | {name} | {sec:.3f} | {fl:.3f} | {ratio:.2f} [{low:.2f}, {high:.2f}] "
            f"| {r['extra_mb']:.0f} | {tgt} | {met} |"
        )
        table.add_row(
            f"{n:,}", name, f"{sec:.3f}", f"{fl:.3f}", f"{ratio:.2f} [{low:.2f}, {high:.2f}]",
            f"{r['extra_mb']:.0f}", tgt,
        )  # fmt: skip
    console.print(table)

    cmd = "python benchmarks/select_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    section = "\n".join(
        [
            "## Selection speed (`benchmarks/select_speed.py`)",
            "",
            f"Command: `{cmd.strip()}` (run by `make bench`) on {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d')}. Pool: float32 memmap, d={D}, {N_CLASSES} classes, "
            f"batch k={K}, fitted LogisticRegression; committee strategies use {N_MEMBERS} "
            "bootstrap members and are compared with that many floors. Floor = plain numpy "
            "`predict_proba` (scikit-learn's finite check off, as in labelwise) + entropy + "
            "`argpartition` on the whole pool. Paired timing: each strategy's child process "
            f"alternates floor and strategy {args.repeats} times; the ratio is the median of "
            "the per-pair ratios [min, max]. Peak extra MB = peak anonymous RSS of a first, "
            "untimed strategy run above the child's start (memmap pages excluded). Load "
            f"average at the end: {os.getloadavg()[0]:.1f}.",
            "",
            *md,
            "",
        ]
    )
    write_section(Path(args.out), "## Selection speed", section)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
