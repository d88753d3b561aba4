"""The service with a 1,000,000-item project vs a 10,000-item one, in one run.

For each backend (``--backends``) and each size (``--sizes``, default 10,000 and 1,000,000), a
fresh project goes through what a team does on day one, each step timed and measured from the
outside:

1. **Import** a CSV with ``labelwise project import`` (its own process: wall seconds, rows/s
   and the peak RSS of that process, its own ``VmHWM``; see :func:`_peak_rss_mb`). Rows: 16
   numeric columns (every fourth pixel of the scikit-learn digits, tiled and jittered with
   N(0, 0.05) noise, seeded) and a label on 2,000 rows, so the first round already has a
   model; every other row unlabeled.
2. **First round** with ``labelwise project round`` (own process): the service computes the
   project's features (standardised tabular columns) for the first time, fits the model on the
   2,000 labels, selects 100 with ``margin`` over the whole pool and queues them.
3. **Claims and answers** against ``labelwise serve`` (one process, in-process worker): one
   annotator claims and answers the 100 tasks one after the other (latency of a claim with the
   server otherwise idle: the per-request cost, which must not grow with the pool).
4. **Retrain + reselect**: from the 201 of the batch's last answer to the first claim that
   returns a task of the next round (the worker retrained on 2,100 labels, validated, saved the
   model and selected the next 100 over the whole pool, now from cached features).
5. **Progress**: ten ``GET /api/projects/{id}/progress`` (what the dashboard polls) as the
   admin; the median.

The table gives each figure at both sizes and the ratio 1M / 10k. Results go to the
``## Service at 1M items`` section of ``benchmarks/RESULTS.md``.

    python benchmarks/service_scale.py                          # as make bench runs it
    python benchmarks/service_scale.py --sizes 2000,20000 --backends sqlite --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # benchmarks/ is on sys.path when run
from service_load import ADMIN, _free_port, _pct, _stop

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Service at 1M items"
N_LABELED = 2000
BATCH = 100
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLI = [sys.executable, "-m", "labelwise.cli"]
HWM = Path(__file__).resolve().parent / "_hwm.py"


def write_csv(path: Path, n: int, seed: int = 0) -> dict[str, str]:
    """``n`` rows ``id, f0..f15, label`` (label on the first 2,000 rows); returns id -> class."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from sklearn.datasets import load_digits

    X0, y0 = load_digits(return_X_y=True)
    X0 = (X0[:, ::4] / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    truth: dict[str, str] = {}
    step = 200_000
    with pacsv.CSVWriter(
        str(path),
        pa.schema(
            [("id", pa.string())]
            + [(f"f{j}", pa.float32()) for j in range(X0.shape[1])]
            + [("label", pa.string())]
        ),
    ) as writer:
        for start in range(0, n, step):
            idx = np.arange(start, min(n, start + step))
            src = idx % X0.shape[0]
            X = X0[src] + rng.normal(0, 0.05, (idx.shape[0], X0.shape[1])).astype(np.float32)
            ids = [f"r{i}" for i in idx]
            labels = [str(c) if i < N_LABELED else None for i, c in zip(idx, y0[src], strict=True)]
            truth.update(zip(ids, (str(c) for c in y0[src]), strict=True))
            cols = {"id": ids, **{f"f{j}": X[:, j] for j in range(X.shape[1])}, "label": labels}
            writer.write_table(pa.table(cols))
    return truth


def _peak_rss_mb(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd`` (a :data:`CLI` command): (wall seconds, peak RSS MB of that one process,
    stdout).

    The peak is the child's own ``VmHWM`` (``benchmarks/_hwm.py`` writes it at exit), not
    ``wait4``'s ``ru_maxrss``: Linux carries that over fork + exec, so a child of this process
    reported this process's size once it had written a 1M-row CSV (~480 MB for every step).
    """
    assert cmd[: len(CLI)] == CLI, cmd
    with tempfile.NamedTemporaryFile(suffix=".hwm") as hwm:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HWM), "labelwise.cli", *cmd[len(CLI) :]],
            env={**env, "LABELWISE_HWM_FILE": hwm.name},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd[3:])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return seconds, int(Path(hwm.name).read_text()) / 1024, proc.stdout


def _serve(url: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", url,
           "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start in 300 s")


def one_project(url: str, n: int, folder: Path, truth_cache: dict) -> dict:
    """Import, first round, 100 claims + answers, retrain + reselect; the figures."""
    csv = folder / f"items_{n}.csv"
    if n not in truth_cache:
        truth_cache[n] = write_csv(csv, n)
    truth = truth_cache[n]
    data_dir = folder / f"data_{n}_{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "LABELWISE_DATA_DIR": str(data_dir), "LABELWISE_ADMIN_TOKEN": ADMIN,
           "LABELWISE_WORKER_POLL_SECONDS": "0.05", "LABELWISE_RANDOM_FRACTION": "0"}  # fmt: skip
    name = f"scale{n}"
    _peak_rss_mb(
        [*CLI, "project", "create", name, "--classes", ",".join(map(str, range(10))),
         "--strategy", "margin", "--batch-size", str(BATCH), "--database-url", url],
        env,
    )  # fmt: skip
    imp_s, imp_rss, _ = _peak_rss_mb(
        [*CLI, "project", "import", name, str(csv), "--text-field", "", "--id-field", "id",
         "--label-field", "label", "--database-url", url, "--json"],
        env,
    )  # fmt: skip
    round_s, round_rss, _ = _peak_rss_mb(
        [*CLI, "project", "round", name, "--database-url", url], env
    )
    _, _, out = _peak_rss_mb(
        [*CLI, "token", "create", f"ann{n}", "--project", name, "--database-url", url, "--json"],
        env,
    )
    token = json.loads(out)["token"]
    proc, base = _serve(url, env)
    claims, answers = [], []
    try:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as c:
            pid = c.get("/api/me").json()["projects"][0]
            last = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                r = c.post(f"/api/projects/{pid}/tasks/next")
                claims.append(time.perf_counter() - t0)
                if r.status_code == 204:
                    claims.pop()
                    break
                claimed = r.raise_for_status().json()
                task, ext = claimed["task"], claimed["item"]["external_id"]
                t0 = time.perf_counter()
                c.post(
                    f"/api/tasks/{task['id']}/annotations", json={"label": truth[ext]}
                ).raise_for_status()
                answers.append(time.perf_counter() - t0)
                last = time.perf_counter()
            deadline = last + 1800
            while time.perf_counter() < deadline:
                r = c.post(f"/api/projects/{pid}/tasks/next")
                if r.status_code == 200:
                    reselect = time.perf_counter() - last
                    break
                time.sleep(0.02)
            else:
                raise SystemExit("no next round within 30 min")
        # what the dashboard polls: the owner's progress view (counts, curves, data quality)
        progress = []
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=600
        ) as owner:
            for _ in range(10):
                t0 = time.perf_counter()
                owner.get(f"/api/projects/{pid}/progress").raise_for_status()
                progress.append(time.perf_counter() - t0)
    finally:
        _stop([proc])
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "n": n,
        "import_s": imp_s,
        "import_rows_s": n / imp_s,
        "import_rss": imp_rss,
        "round_s": round_s,
        "round_rss": round_rss,
        "claim_p50": _pct(claims, 50),
        "claim_p99": _pct(claims, 99),
        "answer_p50": _pct(answers, 50),
        "n_claims": len(claims),
        "reselect_s": reselect,
        "progress_p50": _pct(progress, 50),
    }


ROWS = [
    ("import: seconds", "import_s", "{:,.1f}"),
    ("import: rows/s", "import_rows_s", "{:,.0f}"),
    ("import: peak RSS of the process, MB", "import_rss", "{:,.0f}"),
    ("first round (features + fit + select 100): seconds", "round_s", "{:,.1f}"),
    ("first round: peak RSS of the process, MB", "round_rss", "{:,.0f}"),
    ("claim p50, ms (one annotator, 100 claims)", "claim_p50", "{:,.1f}"),
    ("claim p99, ms", "claim_p99", "{:,.1f}"),
    ("answer p50, ms", "answer_p50", "{:,.1f}"),
    ("last answer -> next round claimable (retrain + select), s", "reselect_s", "{:,.1f}"),
    ("GET progress p50, ms (the dashboard's poll; 10 calls)", "progress_p50", "{:,.1f}"),
]


def render(results: dict[str, list[dict]], command: str, loads: tuple, sizes: list[int]) -> str:
    lines = [
        HEADING,
        "",
        f"Command: `{command}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, Python {platform.python_version()}. 1-minute load average "
        f"before / after: {loads[0]:.1f} / {loads[1]:.1f} (other sessions' work shares the "
        "cores). Protocol: see the docstring of `benchmarks/service_scale.py` (CSV import "
        "through the CLI, first round through the CLI, one annotator over HTTP against "
        "`labelwise serve` with its in-process worker; margin, batch 100, 2,000 labelled rows).",
        "",
    ]
    small, big = min(sizes), max(sizes)
    for backend, rows in results.items():
        by_n = {r["n"]: r for r in rows}
        lines += [
            f"### {backend}",
            "",
            f"| measure | {small:,} items | {big:,} items | ratio |",
            "|---|---:|---:|---:|",
        ]
        for label, key, fmt in ROWS:
            a, b = by_n[small][key], by_n[big][key]
            lines.append(
                f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {b / a:.2f}x |"
                if a
                else f"| {label} | {fmt.format(a)} | {fmt.format(b)} | – |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--database-url", default=PG_URL, help="PostgreSQL server for 'postgresql'.")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    command = "python benchmarks/service_scale.py " + " ".join(sys.argv[1:])
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="lw-svc-scale-"))
    results: dict[str, list[dict]] = {}
    truth: dict = {}
    try:
        for backend in args.backends.split(","):
            for n in sizes:
                schema = None
                if backend == "sqlite":
                    url = f"sqlite:///{folder}/{backend}_{n}.db"
                else:
                    import sqlalchemy as sa

                    schema = f"lw_scale_{uuid.uuid4().hex[:10]}"
                    engine = sa.create_engine(args.database_url)
                    with engine.begin() as conn:
                        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
                try:
                    t0 = time.perf_counter()
                    row = one_project(url, n, folder, truth)
                    print(f"{backend} {n:,}: {row} ({time.perf_counter() - t0:.0f} s)", flush=True)
                    results.setdefault(backend, []).append(row)
                finally:
                    if schema is not None:
                        with engine.begin() as conn:
                            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                        engine.dispose()
                    for f in folder.glob(f"{backend}_{n}.db*"):
                        f.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = render(results, command, (load_before, os.getloadavg()[0]), sizes)
    print(text)
    if not args.no_write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
