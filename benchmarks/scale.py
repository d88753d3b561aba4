"""Scale: a 5M-item memory-mapped round on one machine, and Ray with 1 vs 2 nodes on 1M items.

1. **5M local round.** A 5,000,000 x 384 float32 pool (7.7 GB ``.npy``, synthetic Gaussian
   clusters: speed does not depend on what the features mean) and a LogisticRegression fitted on
   2,000 labelled rows. One child process opens the pool with :func:`labelwise.scale.open_pool`
   (memory-mapped, the 2,000 labelled rows left out) and selects 500 with
   ``kmeans_uncertainty`` (entropy prefilter to 5,000, k-means into 500 clusters), once with the
   file evicted from the page cache first (cold: the disk is read) and once warm; a ``margin``
   round (the scoring pass alone) shows how the time splits. Reported per run: wall seconds,
   peak RSS (``VmHWM``: anonymous *and* file-backed pages mapped into the process, so a scan
   that kept the file mapped would show it) and peak anonymous RSS (sampled every 5 ms).
2. **Ray, 1 vs 2 nodes, 1M items.** The first 1M rows of the same file (a memmap view: only its
   path and offset travel), ``margin``, k = 500, 65,536-row blocks (16 tasks). A real cluster
   is started with ``ray start --head`` (1 CPU) and, for 2 nodes, a second ``ray start
   --address`` (1 CPU) on this machine; each cluster gets an untimed warm-up round (worker
   processes start and import), then ``--repeats`` timed rounds. Sizes alternate on fresh
   clusters (1, 2, 1, 2 nodes: ``--cycles``) so that drifting load from other processes hits
   both alike; the median round of each size is reported. The Ray selection is checked equal
   to the local one. Throughput = candidates / wall second; the ratio is 2-node /
   1-node. Where the time goes: the driver's plan (key replay), the workers' summed read /
   score / reduce seconds, and the rest of the wall time (scheduling, task start, transfer).

Results go to the ``## Scale`` section of ``benchmarks/RESULTS.md`` (other sections are kept);
the pool files are deleted at the end.

    python benchmarks/scale.py                                  # as make bench runs it
    python benchmarks/scale.py --n 300000 --ray-n 200000 --no-write   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _results import write_section  # benchmarks/ is on sys.path when run

D = 384
N_CLUSTERS = 30
N_CLASSES = 10
N_LABELED = 2000
K = 500
CHUNK = 65_536
RESULTS = Path(__file__).with_name("RESULTS.md")
HANG_GUARD_S = 300


# --------------------------------------------------------------------------- data
def make_pool(path: Path, n: int, seed: int = 0) -> None:
    """Write a float32 (n, D) pool of Gaussian clusters to ``path``, one chunk at a time."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.0, size=(N_CLUSTERS, D)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        noise = rng.standard_normal((stop - start, D), dtype=np.float32)
        noise *= 1.5
        noise += centers[rng.integers(0, N_CLUSTERS, stop - start)]
        X[start:stop] = noise
    X.flush()
    del X


def fit_model(path: Path, out: Path, seed: int = 0) -> np.ndarray:
    """Fit LogisticRegression on ``N_LABELED`` rows (labels from k-means); save it; their rows."""
    import joblib
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression

    X = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(seed)
    labeled = np.sort(rng.choice(X.shape[0], N_LABELED, replace=False))
    X_lab = np.asarray(X[labeled])
    y = KMeans(N_CLASSES, n_init=1, random_state=seed).fit_predict(X_lab)
    joblib.dump(LogisticRegression(max_iter=300).fit(X_lab, y), out)
    return labeled


def evict(path: Path) -> None:
    """Drop ``path`` from the kernel's page cache, so the next read goes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakAnon:
    """Samples RssAnon every 5 ms in a thread (VmHWM covers all pages, this the heap only)."""

    def __init__(self) -> None:
        self.peak = _status_kb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kb("RssAnon"))
            time.sleep(0.005)

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kb("RssAnon"))


# --------------------------------------------------------------------------- child: one round
def child_round(pool: Path, model: Path, labeled: Path, strategy: str, split: bool) -> dict:
    """One local round in this (fresh) process: seconds and peak memory.

    Loading the model (and with it scikit-learn) is set-up, timed apart from the round.
    """
    import joblib

    from labelwise.scale import select_from_files
    from labelwise.strategies import Candidates, get_strategy

    t0 = time.perf_counter()
    fitted = joblib.load(model)
    head = Candidates(X=np.asarray(np.load(pool, mmap_mode="r")[:2000]), model=fitted)
    get_strategy(strategy).select(head, 10, random_state=0)  # loads what the round imports
    setup = time.perf_counter() - t0
    with PeakAnon() as anon:
        t0 = time.perf_counter()
        q = select_from_files(pool, fitted, strategy, K, labeled=labeled, random_state=0)
        seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "setup_s": setup,
        # /proc's VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork + exec, so
        # the child would report the parent's peak (it wrote the 7.7 GB file through a mapping)
        "vmhwm_mb": _status_kb("VmHWM") / 1024,
        "peak_anon_mb": anon.peak / 1024,
        "n_selected": len(q),
    }
    if split:
        # The same round once more through the serial block executor (same selection), whose
        # stats split it: scoring pass (blocks_s) vs merge and second stage (finish_s).
        from labelwise.scale import open_pool, select_blocks

        stats: dict = {}
        cands = open_pool(pool, model=fitted, labeled=np.load(labeled))
        again = select_blocks(strategy, cands, K, random_state=0, stats=stats)
        out["split"] = stats
        out["split_equal"] = bool(np.array_equal(again.pool_idx, q.pool_idx))
    return out


def run_child(args: list[str], timeout: float = 1800) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- ray cluster
def _free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class Cluster:
    """``ray start --block`` processes on this machine, each its own process group.

    Stopped by process-group id (never ``ray stop``, which kills every Ray process on the
    machine). ``RAY_AUTH_MODE=disabled``: loopback only, for the length of the benchmark.
    """

    def __init__(self, n_nodes: int, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        port, dash = _free_ports(2)
        self.address = f"127.0.0.1:{port}"
        self._start(["--head", "--port", str(port), "--include-dashboard", "false",
                     "--dashboard-port", str(dash), "--temp-dir", str(root)], "head")  # fmt: skip
        self._wait(lambda: self._port_open(port), "head")
        for i in range(1, n_nodes):
            self._start(["--address", self.address], f"node{i}")

    def _start(self, args: list[str], name: str) -> None:
        ports = _free_ports(6)
        cmd = [
            str(Path(sys.executable).with_name("ray")), "start", "--block", *args,
            "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--object-store-memory", str(300 * 1024**2), "--disable-usage-stats",
            "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
            "--dashboard-agent-listen-port", str(ports[2]),
            "--dashboard-agent-grpc-port", str(ports[3]),
            "--metrics-export-port", str(ports[4]), "--runtime-env-agent-port", str(ports[5]),
        ]  # fmt: skip
        with open(self.root / f"{name}.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        self.procs.append(proc)

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(1.0)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while not ready():
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"ray {what}: a `ray start` exited; logs in {self.root}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray {what}: not ready after {HANG_GUARD_S} s")
            time.sleep(0.2)

    def wait_nodes(self, ray, n: int) -> None:
        self._wait(
            lambda: sum(1 for x in ray.nodes() if x["Alive"] and x["Resources"].get("CPU")) >= n,
            f"{n} nodes",
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=3)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def ray_rounds(pool: Path, model_path: Path, n: int, n_nodes: int, repeats: int) -> dict:
    """A fresh ``n_nodes`` cluster: a warm-up round, then ``repeats`` timed rounds on ``n`` rows."""
    os.environ["RAY_AUTH_MODE"] = "disabled"  # before `import ray`: the driver reads it then
    import joblib
    import ray

    from labelwise.scale import select_distributed
    from labelwise.strategies import Candidates, get_strategy

    model = joblib.load(model_path)
    X = np.load(pool, mmap_mode="r")[:n]
    root = Path(tempfile.mkdtemp(prefix="lwbench", dir="/tmp"))
    cluster = Cluster(n_nodes, root)
    try:
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        cluster.wait_nodes(ray, n_nodes)
        warm = Candidates(X=X[: 2 * CHUNK * n_nodes], model=model)
        select_distributed("margin", warm, K, random_state=0)  # workers start and import
        runs = []
        for _ in range(repeats):
            stats: dict = {"load": os.getloadavg()[0]}
            t0 = time.perf_counter()
            q = select_distributed("margin", Candidates(X=X, model=model), K, random_state=0,
                                   stats=stats)  # fmt: skip
            stats["wall_s"] = time.perf_counter() - t0
            runs.append(stats)
        local = get_strategy("margin").select(Candidates(X=X, model=model), K, random_state=0)
        equal = bool(np.array_equal(q.pool_idx, local.pool_idx))
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"n_nodes": n_nodes, "runs": runs, "equal_to_local": equal}


def summarise_ray(configs: list[dict]) -> list[dict]:
    """Per cluster size: all its timed runs pooled; the median run by wall time."""
    out = []
    for n_nodes in sorted({c["n_nodes"] for c in configs}):
        runs = [r for c in configs if c["n_nodes"] == n_nodes for r in c["runs"]]
        median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        equal = all(c["equal_to_local"] for c in configs if c["n_nodes"] == n_nodes)
        out.append({"n_nodes": n_nodes, "n_runs": len(runs), "median": median,
                    "equal_to_local": equal})  # fmt: skip
    return out


def local_scoring(pool: Path, model_path: Path, n: int, threads: int) -> float:
    """Seconds of a local ``margin`` round on the first ``n`` rows with ``threads`` BLAS threads."""
    import joblib
    from threadpoolctl import threadpool_limits

    from labelwise.strategies import Candidates, get_strategy

    model = joblib.load(model_path)
    X = np.load(pool, mmap_mode="r")[:n]
    with threadpool_limits(threads):
        get_strategy("margin").select(Candidates(X=X[:CHUNK], model=model), K, random_state=0)
        t0 = time.perf_counter()
        get_strategy("margin").select(Candidates(X=X, model=model), K, random_state=0)
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- report
def format_section(res: dict, command: str) -> str:
    n, rn = res["n"], res["ray_n"]
    gb = n * D * 4 / 1e9
    lines = [
        "## Scale (`benchmarks/scale.py`)",
        "",
        f"Command: `{command}` (run by `make bench`) on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM. Pool: "
        f"{n:,} x {D} float32 memory-mapped `.npy` ({gb:.1f} GB), Gaussian clusters, "
        f"LogisticRegression on {N_LABELED:,} labelled rows (left out of the candidates), "
        f"k = {K}, chunks of {CHUNK:,} rows. Peak RSS = `VmHWM` of the child process that ran "
        "the round (anonymous and file-backed pages); peak anonymous = sampled `RssAnon`.",
        "",
        f"### One machine: {n:,} items",
        "",
        "| round | page cache | seconds | peak RSS MB | peak anonymous MB | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name, cache, r in res["local"]:
        target = "≤ 120 s, ≤ 4 GB" if name == "kmeans_uncertainty" else "—"
        met = (
            ("yes" if r["seconds"] <= 120 and r["vmhwm_mb"] <= 4096 else "**no**")
            if name == "kmeans_uncertainty"
            else ""
        )
        lines.append(
            f"| {name} | {cache} | {r['seconds']:.1f} | {r['vmhwm_mb']:.0f} | "
            f"{r['peak_anon_mb']:.0f} | {target} | {met} |"
        )
    warm = {name: r for name, cache, r in res["local"] if cache == "warm"}
    cold = {name: r for name, cache, r in res["local"] if cache == "cold"}
    km, mg = warm["kmeans_uncertainty"], warm["margin"]
    sp = km["split"]
    lb, la = res["load_before"], res["load_after"]
    lines += [
        "",
        f"Load average of the machine (other sessions' benchmarks and tests share it): "
        f"{lb[0]:.1f} before, {la[0]:.1f} after; every number here is on 2 shared cores.",
        "",
        f"Where the time goes (warm `kmeans_uncertainty`, split by rerunning it through the "
        f"serial block executor, same selection: {'yes' if km['split_equal'] else '**no**'}): "
        f"the scoring pass over {n:,} candidates (read, `predict_proba`, entropy, per-chunk "
        f"top-{10 * K:,}) {sp['blocks_s']:.1f} s, i.e. {n / sp['blocks_s'] / 1e6:.2f} M items/s "
        f"({gb / sp['blocks_s']:.2f} GB/s of features); key replay {sp['plan_s']:.2f} s; merge "
        f"{sp['merge_s']:.3f} s; the second stage, k-means of the {10 * K:,} prefiltered rows "
        f"into {K} clusters (scikit-learn's KMeans), "
        f"{sp['finish_s']:.1f} s. A separate `margin` round (the scoring pass with a top-{K}, no "
        f"second stage) took {mg['seconds']:.1f} s"
        + (
            ": under this load, timings of the same work vary by tens of percent from run to run"
            if lb[0] >= 3
            else ""
        )
        + ". Cold (file evicted from the page "
        "cache first), the round "
        f"reads the {gb:.1f} GB from disk: {cold['kmeans_uncertainty']['seconds']:.1f} s. "
        f"Loading the model and scikit-learn, outside the timed round, took "
        f"{km['setup_s']:.1f} s. Memory does not "
        "grow with N: each chunk's pages are handed back after it is scored "
        "(`madvise(MADV_DONTNEED)`; the page cache keeps them), so the peak is a chunk "
        "(100 MB of float32 rows, 200 MB once scikit-learn upcasts it to float64 against the "
        "float64 coefficients) plus O(N) vectors of 4–8 bytes per candidate (row positions, "
        "float32 scores, float64 tie-break keys: ~100 MB at 5M).",
        "",
        f"### Ray Data: 1 vs 2 nodes, {rn:,} items (`margin`)",
        "",
        "| nodes | CPUs | rounds | median wall s | items/s | driver plan s | workers read s | "
        "workers score s | workers reduce s | other s | blocks per node | load | same as local |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    thr = {}
    for r in res["ray"]:
        m = r["median"]
        work = m["read_s"] + m["score_s"] + m["reduce_s"]
        other = m["wall_s"] - m["plan_s"] - m["merge_s"] - work / r["n_nodes"]
        thr[r["n_nodes"]] = rn / m["wall_s"]
        per_node = "/".join(str(v) for v in sorted(m["nodes"].values(), reverse=True))
        lines.append(
            f"| {r['n_nodes']} | {r['n_nodes']} | {r['n_runs']} | {m['wall_s']:.2f} | "
            f"{thr[r['n_nodes']]:,.0f} | {m['plan_s']:.2f} | {m['read_s']:.2f} | "
            f"{m['score_s']:.2f} | {m['reduce_s']:.2f} | {other:.2f} | {per_node} | "
            f"{m['load']:.1f} | {'yes' if r['equal_to_local'] else '**no**'} |"
        )
    ratio = thr[2] / thr[1]
    l1, l2 = res["local_1m"]
    one, two = (r["median"] for r in res["ray"])
    per_block = [m["score_s"] / m["blocks"] * 1000 for m in (one, two)]
    other = [m["wall_s"] - m["plan_s"] - m["merge_s"] - (m["read_s"] + m["score_s"] + m["reduce_s"])
             / r["n_nodes"] for m, r in zip((one, two), res["ray"], strict=True)]  # fmt: skip
    lines += [
        "",
        f"Throughput ratio, 2 nodes / 1 node: **{ratio:.2f}x** (median rounds; load average "
        f'{one["load"]:.1f} and {two["load"]:.1f} during them). "other" is the wall time '
        "minus the driver's plan and merge and the workers' busy time per node: task "
        "scheduling and start, block specs and results moving through the object store, Ray "
        "Data's executor. The same round in one local process took "
        f"{l1:.2f} s with one BLAS thread and {l2:.2f} s with two.",
        "",
        'What 2 shared cores allow: both nodes run on this one 2-core machine, so "2 nodes" '
        "is 2 single-threaded workers (Ray gives a 1-CPU task one BLAS thread) sharing the "
        "same 2 cores with the driver, two raylets, the GCS and every other process on the "
        "machine: 2x is the ceiling, reachable only if the work dwarfs the overhead. "
        f"Here scoring a 65,536-row block took {per_block[0]:.0f} ms of worker time with one "
        f"worker and {per_block[1]:.0f} ms with two ("
        + (
            "the two workers did not slow each other down"
            if per_block[1] / per_block[0] < 1.15
            else f"{per_block[1] / per_block[0]:.2f}x: they contend for the cores and memory "
            "bandwidth"
        )
        + "), so each node's share of the compute fell to about half, from "
        f"{one['score_s'] + one['read_s']:.2f} s to "
        f"{(two['score_s'] + two['read_s']) / 2:.2f} s; but the rest of the wall time went from "
        f"{other[0]:.2f} s to {other[1]:.2f} s: the second node's blocks are scheduled on "
        "another raylet, and their inputs and results move between the two object stores. "
        f"With this cheap model, {rn:,} items are only {one['score_s']:.2f} s of compute "
        f"against {other[0]:.2f}–{other[1]:.2f} s of overhead, so the second node "
        + ("pays for itself" if ratio >= 1.1 else "does not pay for itself")
        + " on one shared machine. The merge took "
        f"{two['merge_s'] * 1000:.1f} ms and the driver's plan (key replay) "
        f"{two['plan_s'] * 1000:.0f} ms: nothing but the cores is shared between blocks, so "
        "with nodes that have cores of their own and more work per round (a bigger pool, a "
        "committee, a neural model) the blocks divide across nodes; docs/scaling.md works out "
        "100M items on 16 nodes.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_000_000, help="pool size for the local round")
    ap.add_argument("--ray-n", type=int, default=1_000_000, help="items for Ray 1 vs 2 nodes")
    ap.add_argument("--repeats", type=int, default=3, help="timed Ray rounds per cluster start")
    ap.add_argument("--cycles", type=int, default=2, help="cluster starts per size (alternating)")
    ap.add_argument("--dir", default=None, help="where the pool is written (default: /tmp)")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--raw", default=None, help="also save the raw results (JSON) here")
    ap.add_argument("--render", default=None, help="rewrite the section from saved raw results")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        pool, model, labeled, strategy, split = args.child
        result = child_round(Path(pool), Path(model), Path(labeled), strategy, split == "split")
        print(json.dumps(result))
        return 0

    if args.render:
        saved = json.loads(Path(args.render).read_text())
        section = format_section(saved["res"], saved["command"])
        print(section)
        if not args.no_write:
            write_section(Path(args.out), "## Scale", section)
        return 0
    base = Path(args.dir or tempfile.gettempdir())
    need = args.n * D * 4
    free = shutil.disk_usage(base).free
    if free < need * 1.2 + 2**30:
        print(f"need {need / 1e9:.1f} GB free in {base}, have {free / 1e9:.1f} GB", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="labelwise-scale-", dir=base))
    res: dict = {"n": args.n, "ray_n": min(args.ray_n, args.n), "local": [], "ray": []}
    try:
        pool, model, labeled = work / "pool.npy", work / "model.joblib", work / "labeled.npy"
        t0 = time.perf_counter()
        make_pool(pool, args.n)
        print(f"pool {args.n:,} x {D}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        np.save(labeled, fit_model(pool, model))
        child = [str(pool), str(model), str(labeled)]
        evict(pool)
        res["load_before"] = os.getloadavg()
        for name, cache, split in [
            ("kmeans_uncertainty", "cold", "-"),  # straight after the eviction above
            ("kmeans_uncertainty", "warm", "split"),
            ("margin", "warm", "-"),
        ]:
            res["local"].append((name, cache, run_child([*child, name, split])))
        for name, cache, r in res["local"]:
            print(f"{name} {cache}: {r}", file=sys.stderr)
        rn = res["ray_n"]
        res["local_1m"] = (local_scoring(pool, model, rn, 1), local_scoring(pool, model, rn, 2))
        configs = []
        for _ in range(args.cycles):  # 1, 2, 1, 2 ...: load drift hits both sizes alike
            for n_nodes in (1, 2):
                configs.append(ray_rounds(pool, model, rn, n_nodes, args.repeats))
                print(f"ray {n_nodes} node(s): {configs[-1]}", file=sys.stderr)
        res["ray"] = summarise_ray(configs)
        res["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)  # 7.7 GB: never left behind
    command = "python benchmarks/scale.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:])
    )
    raw = json.dumps({"res": res, "command": command})
    print(f"raw results (for --render): {raw}", file=sys.stderr)
    if args.raw:
        Path(args.raw).write_text(raw)
    section = format_section(res, command)
    print(section)
    if not args.no_write:
        write_section(Path(args.out), "## Scale", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
