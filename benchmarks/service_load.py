"""Service load: 50 annotators against one server on PostgreSQL, and retrain + reselect at 100k.

Run: ``python benchmarks/service_load.py`` (``make bench``). Needs the PostgreSQL server at
127.0.0.1:5432 (``--database-url``); the benchmark works in a schema of its own and drops it.

1. Claim latency and throughput. ``labelwise serve`` runs in its own process on PostgreSQL:
   ``--server-workers 1`` is one uvicorn process with the in-process worker; ``N > 1`` is
   ``serve --workers N --no-worker`` plus one ``labelwise worker`` process. For each server
   setting and each ``--think-time`` T (comma-separated, default ``0,2``), a project of
   ``--tasks`` items (rows of a ``.npy`` of digits features) gets one round with every item
   queued, and ``--annotators`` threads, each with its own token and HTTP client, start together
   and claim (``POST /api/projects/{id}/tasks/next``) and label (``POST
   /api/tasks/{id}/annotations``) for ``--duration`` seconds. T = 0 is a closed loop with no
   pause: it measures the server's saturation (latency = requests in flight / throughput). T > 0
   paces each annotator like a person: after each answer (and once before the first claim) it
   waits a time drawn from an exponential distribution with mean T (seeded per annotator), so
   the offered load is about ``annotators / T`` claims per second. Reported per row: offered and
   achieved claims per second, client-side latency of the claim (p50, p99) and of the answer,
   and the 1-minute load average before and after.
2. Retrain + reselect. A project of ``--pool`` unlabeled items (100,000 by default) whose
   features are rows of one ``.npy`` matrix of 64 float32 columns: the 1,797 scikit-learn digits
   (8x8 pixels / 16) tiled and jittered with Gaussian noise (sigma 0.05, seeded), labels from
   the source digit; plus 1,000 labelled validation items (``metadata.split = "validation"``).
   A round of ``--batch-size`` items is labelled through the API with the true labels; the
   clock starts at the 201 of the last answer of the batch and stops when an annotator's claim
   returns a task of the next round (the worker has retrained, validated, saved the model, and
   selected and queued the next batch). Two cycles: cold start -> first model, first -> second.

``--compare REV`` measures claim latency only, old code against new in one run: REV is checked
out with ``git worktree add`` (removed afterwards), each side gets its own schema, migrated and
seeded by its own code, and its own ``labelwise serve`` (jobs left to an external worker, so
the idle server takes no CPU); for each think time the two are loaded one after the other
(before, after; then after, before for the next think time), so both see the same machine.
It writes the subsection "Claim latency before and after" of the Service load section and
leaves the rest of the section as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # benchmarks/ is on sys.path when run

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ADMIN = "bench-admin-token"
HEADING = "## Service load"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(
    url: str, data_dir: Path, workers: int = 1, src: Path | None = None, jobs: bool = True
) -> tuple[list[subprocess.Popen], str]:
    """``serve`` (and, for ``workers > 1``, a separate ``labelwise worker``); waits for /healthz.

    ``src``: run the labelwise package found there (an older checkout's ``src``); ``jobs``
    false: the server runs no jobs (``LABELWISE_WORKER=external``, no worker started).
    """
    port = _free_port()
    env = {
        **os.environ,
        "LABELWISE_ADMIN_TOKEN": ADMIN,
        "LABELWISE_DATA_DIR": str(data_dir),
        "LABELWISE_WORKER_POLL_SECONDS": "0.05",
    }
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    if not jobs:
        env["LABELWISE_WORKER"] = "external"
    cli = [sys.executable, "-m", "labelwise.cli"]
    cmd = [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", url,
           "--log-level", "warning"]  # fmt: skip
    if workers > 1:
        cmd += ["--workers", str(workers), "--no-worker"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if procs[0].poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        procs[0].kill()
        raise SystemExit("the server did not start in 120 s")
    if workers > 1 and jobs:
        wcmd = [*cli, "worker", "--database-url", url, "--poll", "0.05"]
        procs.append(subprocess.Popen(wcmd, env=env, stdout=subprocess.DEVNULL))
    return procs, base


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _digits_features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: the digits tiled, with N(0, 0.05) jitter; float32 (n, 64), labels str."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(np.resize(np.arange(X.shape[0]), n))
    Xn = (X[idx] / 16.0).astype(np.float32)
    Xn += rng.normal(0.0, 0.05, size=Xn.shape).astype(np.float32)
    return Xn, y[idx].astype(str)


def _npy_project(store, name, X, y, n_validation, batch_size, folder: Path) -> tuple[int, dict]:
    """A project whose items are rows of one .npy; the last ``n_validation`` rows labelled."""
    from labelwise.storage import NewItem

    path = folder / f"{name}.npy"
    np.save(path, X)
    pid = store.create_project(
        name, "multiclass", [str(c) for c in range(10)], strategy="entropy",
        cold_start_strategy="random", batch_size=batch_size,
    )  # fmt: skip
    n_pool = X.shape[0] - n_validation

    def items():
        for i in range(X.shape[0]):
            val = i >= n_pool
            yield NewItem(
                external_id=f"r{i:07d}",
                payload={},
                metadata={"split": "validation"} if val else {},
                features_path=str(path),
                features_row=i,
                label=y[i] if val else None,
            )

    store.create_items(pid, items(), batch_size=10_000)
    truth = {}
    offset = 0
    while page := store.list_items(pid, limit=50_000, offset=offset):
        truth.update({it.id: y[it.features_row] for it in page})
        offset += len(page)
    return pid, truth


def _tokens(store, pid: int, n: int, prefix: str) -> list[str]:
    from labelwise.service.admin import create_token

    return [create_token(store, f"{prefix}{i}", projects=[pid]).token for i in range(n)]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000.0


def load_phase(
    base: str, pid: int, tokens: list[str], truth: dict, duration: float, think: float = 0.0
) -> dict:
    """``len(tokens)`` annotators claim and answer for ``duration`` s; ``think``: mean pause."""
    claims: list[float] = []
    submits: list[float] = []
    errors: list[str] = []
    n_done = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(tokens) + 1)
    stop_at = [0.0]

    def annotator(i: int, token: str) -> None:
        h = {"Authorization": f"Bearer {token}"}
        rng = np.random.default_rng([7, i])
        my_claims, my_submits = [], []

        def pause() -> None:
            # exponential think time (memoryless: the first draw also staggers the starts)
            if think > 0:
                time.sleep(min(rng.exponential(think), max(0.0, stop_at[0] - time.perf_counter())))

        try:
            # uvicorn closes a connection idle for 5 s; a client that keeps it longer (a long
            # think time) can send its next claim as the server closes it: connection reset
            limits = httpx.Limits(keepalive_expiry=4.0)
            with httpx.Client(base_url=base, headers=h, timeout=60, limits=limits) as c:
                c.get("/healthz")  # open the connection before the clock starts
                barrier.wait()
                pause()
                while time.perf_counter() < stop_at[0]:
                    t0 = time.perf_counter()
                    r = c.post(f"/api/projects/{pid}/tasks/next")
                    my_claims.append(time.perf_counter() - t0)
                    if r.status_code == 204:
                        break
                    r.raise_for_status()
                    task = r.json()["task"]
                    t0 = time.perf_counter()
                    a = c.post(
                        f"/api/tasks/{task['id']}/annotations",
                        json={"label": truth[task["item_id"]]},
                    )
                    my_submits.append(time.perf_counter() - t0)
                    a.raise_for_status()
                    pause()
        except Exception as e:  # reported below
            errors.append(repr(e))
        with lock:
            claims.extend(my_claims)
            submits.extend(my_submits)
            n_done[0] += len(my_submits)

    threads = [threading.Thread(target=annotator, args=(i, t)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + duration + 5  # generous until everyone is ready
    load_before = os.getloadavg()
    barrier.wait()
    start = time.perf_counter()
    stop_at[0] = start + duration
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} annotators failed, e.g. {errors[0]}")
    return {
        "annotators": len(tokens),
        "think_s": think,
        "offered_claims_per_s": len(tokens) / think if think > 0 else None,
        "seconds": elapsed,
        "claims": len(claims),
        "annotations": n_done[0],
        "claims_per_s": len(claims) / elapsed,
        "requests_per_s": (len(claims) + len(submits)) / elapsed,
        "claim_p50_ms": _pct(claims, 50),
        "claim_p95_ms": _pct(claims, 95),
        "claim_p99_ms": _pct(claims, 99),
        "submit_p50_ms": _pct(submits, 50),
        "submit_p99_ms": _pct(submits, 99),
        "annotations_per_s": n_done[0] / elapsed,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def _label_batch(c: httpx.Client, pid: int, truth: dict, round_id: int | None) -> tuple[int, float]:
    """Claim and label until the queue is empty; returns (round id, time of the last 201)."""
    last = time.perf_counter()
    rid = round_id
    while True:
        r = c.post(f"/api/projects/{pid}/tasks/next")
        if r.status_code == 204:
            return rid, last
        task = r.raise_for_status().json()["task"]
        rid = task["round_id"]
        c.post(
            f"/api/tasks/{task['id']}/annotations", json={"label": truth[task["item_id"]]}
        ).raise_for_status()
        last = time.perf_counter()


def retrain_phase(base: str, pid: int, token: str, truth: dict, cycles: int) -> list[dict]:
    out = []
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=base, headers=admin, timeout=300) as c:
        c.post(f"/api/projects/{pid}/rounds").raise_for_status()
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300
    ) as c:
        for _ in range(cycles):
            rid, last = _label_batch(c, pid, truth, None)
            deadline = time.perf_counter() + 600
            while time.perf_counter() < deadline:
                r = c.post(f"/api/projects/{pid}/tasks/next")
                if r.status_code == 200:
                    task = r.json()["task"]
                    waited = time.perf_counter() - last
                    c.post(
                        f"/api/tasks/{task['id']}/annotations",
                        json={"label": truth[task["item_id"]]},
                    ).raise_for_status()
                    break
                time.sleep(0.01)
            else:
                raise SystemExit("no next round within 600 s")
            with httpx.Client(base_url=base, headers=admin, timeout=60) as a:
                mv = a.get(f"/api/projects/{pid}/model-versions").json()[-1]
                number = {r["id"]: r["number"] for r in a.get(f"/api/projects/{pid}/rounds").json()}
            out.append(
                {
                    "from_round": number[rid],
                    "to_round": number[task["round_id"]],
                    "seconds": waited,
                    "n_labels": mv["metrics"].get("n_labels"),
                    "accuracy": mv["metrics"].get("accuracy"),
                }
            )
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


# a full run rewrites these; hand-written notes and the --compare subsection are kept
GENERATED = ("### Claim latency and throughput", "### Retrain + reselect")


def _kept_subsections(path: Path) -> str:
    """The hand-written ``###`` subsections of the current Service load section (kept as is)."""
    if not path.exists():
        return ""
    text = path.read_text()
    start = text.find(HEADING)
    if start == -1:
        return ""
    end = text.find("\n## ", start + len(HEADING))
    section = text[start : None if end == -1 else end]
    parts = section.split("\n### ")[1:]
    kept = ["### " + part.strip("\n") for part in parts]
    kept = [part for part in kept if not part.startswith(GENERATED)]
    return "\n\n".join(kept)


def _row_label(r: dict) -> str:
    if r["think_s"] == 0:
        return "saturation (no think time)"
    return (
        f"paced (mean think time {r['think_s']:g} s, i.e. ~{r['offered_claims_per_s']:.0f} "
        "claims/s offered)"
    )


def _load_row(r: dict) -> str:
    offered = "closed loop" if r["offered_claims_per_s"] is None else (
        f"{r['offered_claims_per_s']:.0f}"
    )  # fmt: skip
    servers = r["server_workers"]
    setup = "1 process, in-process worker" if servers == 1 else (
        f"{servers} processes + 1 `labelwise worker`"
    )  # fmt: skip
    return (
        f"| {setup} | {_row_label(r)} | {offered} | {r['claims_per_s']:.1f} | "
        f"{r['requests_per_s']:.1f} | {r['claims']:,} | {r['claim_p50_ms']:.1f} ms | "
        f"{r['claim_p99_ms']:.1f} ms | {r['submit_p50_ms']:.1f} ms | {r['submit_p99_ms']:.1f} ms | "
        f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |"
    )


# --------------------------------------------------------------------------- --compare REV

COMPARE_TITLE = "### Claim latency before and after"


def _seed_to_file(spec_path: str) -> None:
    """``--seed-only``: seed one load project with the labelwise on ``sys.path`` (this
    checkout's or an older one's, by ``PYTHONPATH``) and write its ids and tokens as JSON."""
    from labelwise.storage import open_store

    spec = json.loads(Path(spec_path).read_text())
    X, y = _digits_features(spec["tasks"] + 200, seed=spec["seed"])
    with open_store(spec["url"], upgrade=True) as store:
        pid, truth = _npy_project(
            store, spec["name"], X, y, 200, spec["tasks"], Path(spec["folder"])
        )
        tokens = _tokens(store, pid, spec["annotators"], spec["name"] + "-")
    out = {"pid": pid, "truth": {str(k): str(v) for k, v in truth.items()}, "tokens": tokens}
    Path(spec["out"]).write_text(json.dumps(out))


def _seed_with(src: Path | None, spec: dict, folder: Path) -> tuple[int, dict, list[str]]:
    """Seed in a subprocess that imports labelwise from ``src`` (this checkout when None)."""
    spec = {**spec, "folder": str(folder), "out": str(folder / f"{spec['name']}.json")}
    path = folder / f"{spec['name']}.spec.json"
    path.write_text(json.dumps(spec))
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    subprocess.run([sys.executable, __file__, "--seed-only", str(path)], env=env, check=True)
    got = json.loads(Path(spec["out"]).read_text())
    return got["pid"], {int(k): v for k, v in got["truth"].items()}, got["tokens"]


def _write_subsection(path: Path, title: str, text: str) -> None:
    """Replace the ``###`` subsection starting with ``title`` inside the Service load section
    (or append it at the section's end); the rest of the file is left as it is."""
    whole = path.read_text()
    start = whole.find(HEADING)
    if start == -1:
        write_section(path, HEADING, f"{HEADING}\n\n{text}")
        return
    end = whole.find("\n## ", start + len(HEADING))
    end = len(whole) if end == -1 else end + 1
    section = whole[start:end]
    at = section.find(title)
    if at == -1:
        section = section.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n\n"
    else:
        stop = section.find("\n### ", at + len(title))
        tail = "" if stop == -1 else section[stop + 1 :]
        section = section[:at] + text.rstrip("\n") + "\n\n" + tail
    path.write_text(whole[:start] + section + whole[end:])


def _git(*args: str) -> str:
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def compare_main(args: argparse.Namespace) -> int:
    """Claim latency of REV's code and this checkout's, alternating, in one run."""
    import sqlalchemy as sa

    rev = _git("rev-parse", "--short", args.compare)
    here = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    after_name = f"{here}{' + working tree' if dirty else ''}"
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    schemas = {side: f"lw_bench_{side}_{uuid.uuid4().hex[:8]}" for side in ("before", "after")}
    with admin.connect() as conn:
        for schema in schemas.values():
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        pg_version = conn.exec_driver_sql("SHOW server_version").scalar()
    urls = {k: f"{args.database_url}?options=-csearch_path%3D{v}" for k, v in schemas.items()}
    tmp = Path(tempfile.mkdtemp(prefix="lw-compare-"))
    worktree = tmp / "before"
    _git("worktree", "add", "--detach", str(worktree), rev)
    srcs: dict[str, Path | None] = {"before": worktree / "src", "after": None}
    servers: dict[str, list[subprocess.Popen]] = {}
    rows: list[dict] = []
    load_start = os.getloadavg()
    try:
        projects = {}
        for n, think in enumerate(args.think_time):
            for side in ("before", "after"):
                print(f"seeding: {side}, think {think:g} s ({args.tasks} tasks)", flush=True)
                spec = {"url": urls[side], "name": f"{side}{n}", "tasks": args.tasks,
                        "annotators": args.annotators, "seed": 1 + n}  # fmt: skip
                projects[side, think] = _seed_with(srcs[side], spec, tmp)
        bases = {}
        for side in ("before", "after"):
            servers[side], bases[side] = _start_server(
                urls[side], tmp / f"data-{side}", 1, src=srcs[side], jobs=False
            )
            with httpx.Client(
                base_url=bases[side], headers={"Authorization": f"Bearer {ADMIN}"}, timeout=300
            ) as c:
                for think in args.think_time:
                    c.post(f"/api/projects/{projects[side, think][0]}/rounds").raise_for_status()
        for n, think in enumerate(args.think_time):
            order = ("before", "after") if n % 2 == 0 else ("after", "before")
            for side in order:
                pid, truth, tokens = projects[side, think]
                print(f"load: {side}, think {think:g} s, {args.duration:g} s", flush=True)
                row = load_phase(bases[side], pid, tokens, truth, args.duration, think)
                row["side"] = side
                print(row, flush=True)
                rows.append(row)
    finally:
        for procs in servers.values():
            _stop(procs)
        with admin.connect() as conn:
            for schema in schemas.values():
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
        _git("worktree", "remove", "--force", str(worktree))
    load_end = os.getloadavg()

    def avg(x: tuple) -> str:
        return ", ".join(f"{v:.2f}" for v in x)

    think = ",".join(f"{t:g}" for t in args.think_time)
    command = (
        f"python benchmarks/service_load.py --compare {args.compare} --annotators "
        f"{args.annotators} --duration {args.duration:g} --tasks {args.tasks} --think-time {think}"
    )
    names = {"before": f"before (`{rev}`)", "after": f"after (`{after_name}`)"}
    by = {(r["side"], r["think_s"]): r for r in rows}
    lines = [
        f"{COMPARE_TITLE} (`--compare`, {time.strftime('%Y-%m-%d', time.gmtime())})",
        "",
        f"Command: `{command}`. Old and new code each serve their own schema from their own "
        f"`labelwise serve` process (one uvicorn process, jobs left to an external worker that "
        f"is not started); the load phases alternate between them. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores shared with PostgreSQL "
        f"{pg_version}, the {args.annotators} client threads and other work; `uptime` load "
        f"averages (1, 5, 15 min) at the start: {avg(load_start)}; at the end: "
        f"{avg(load_end)}.",
        "",
        "| load | code | offered claims/s | achieved claims/s | claims | claim p50 | claim p95 | "
        "claim p99 | answer p50 | answer p99 | 1-min load avg (before -> after) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        offered = "closed loop" if r["offered_claims_per_s"] is None else (
            f"{r['offered_claims_per_s']:.0f}"
        )  # fmt: skip
        lines.append(
            f"| {_row_label(r)} | {names[r['side']]} | {offered} | {r['claims_per_s']:.1f} | "
            f"{r['claims']:,} | {r['claim_p50_ms']:.1f} ms | {r['claim_p95_ms']:.1f} ms | "
            f"{r['claim_p99_ms']:.1f} ms | {r['submit_p50_ms']:.1f} ms | "
            f"{r['submit_p99_ms']:.1f} ms | {r['load_before'][0]:.1f} -> "
            f"{r['load_after'][0]:.1f} |"
        )
    ratios = []
    for t in args.think_time:
        b, a = by["before", t], by["after", t]
        ratios.append(
            f"{_row_label(a)}: claim p50 {b['claim_p50_ms'] / a['claim_p50_ms']:.2f}x, p99 "
            f"{b['claim_p99_ms'] / a['claim_p99_ms']:.2f}x faster, claims/s "
            f"{a['claims_per_s'] / b['claims_per_s']:.2f}x"
        )
    aims = "; ".join(
        f"{_row_label(r)}, {r['side']}: {r['claim_p99_ms']:.1f} ms "
        f"({'meets' if r['claim_p99_ms'] <= 25 else 'misses'})"
        for r in rows
        if r["think_s"] > 0
    )
    lines += ["", "Before / after: " + "; ".join(ratios) + ".", "",
              f"Aim: paced claim p99 <= 25 ms. {aims}.", ""]  # fmt: skip
    _write_subsection(Path(args.out), COMPARE_TITLE, "\n".join(lines))
    print(f"wrote {args.out}")
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-only":
        _seed_to_file(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of each load phase")
    ap.add_argument("--tasks", type=int, default=5000, help="tasks queued for each load phase")
    ap.add_argument(
        "--think-time",
        type=_floats,
        default=[0.0, 2.0],
        help="mean think time(s) in seconds, comma-separated; 0 = closed loop (default: 0,2)",
    )
    ap.add_argument(
        "--server-workers",
        type=_ints,
        default=[1],
        help="uvicorn server processes, comma-separated (default: 1); N > 1 runs "
        "`serve --workers N --no-worker` plus one `labelwise worker`",
    )
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--compare",
        metavar="REV",
        help="claim latency only: REV's code against this checkout's, alternating in one run",
    )
    args = ap.parse_args()
    if args.compare:
        return compare_main(args)

    import sqlalchemy as sa

    from labelwise.storage import open_store

    schema = f"lw_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        pg_version = conn.exec_driver_sql("SHOW server_version").scalar()
    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    procs: list[subprocess.Popen] = []
    runs = [(w, t) for w in args.server_workers for t in args.think_time]
    rows: list[dict] = []
    load_avg_start = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            load_projects = {}
            with open_store(url, upgrade=True) as store:
                for n, (w, t) in enumerate(runs):
                    print(f"seeding: load project {n} ({args.tasks} items)", flush=True)
                    Xl, yl = _digits_features(args.tasks + 200, seed=1 + n)
                    pid, truth = _npy_project(store, f"load{n}", Xl, yl, 200, args.tasks, folder)
                    tokens = _tokens(store, pid, args.annotators, f"l{n}-")
                    load_projects[w, t] = (pid, truth, tokens)
                print(f"seeding: pool project ({args.pool} + 1000 items)", flush=True)
                t0 = time.perf_counter()
                Xp, yp = _digits_features(args.pool + 1000, seed=0)
                pool_pid, pool_truth = _npy_project(
                    store, "pool", Xp, yp, 1000, args.batch_size, folder
                )
                seed_s = time.perf_counter() - t0
                pool_token = _tokens(store, pool_pid, 1, "pool")[0]
            for w in args.server_workers:
                procs, base = _start_server(url, folder / "data", w)
                with httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=300
                ) as c:
                    for t in args.think_time:
                        c.post(f"/api/projects/{load_projects[w, t][0]}/rounds").raise_for_status()
                for t in args.think_time:
                    pid, truth, tokens = load_projects[w, t]
                    print(f"load: {w} server process(es), {args.annotators} annotators, think "
                          f"{t:g} s, {args.duration:g} s", flush=True)  # fmt: skip
                    row = load_phase(base, pid, tokens, truth, args.duration, t)
                    row["server_workers"] = w
                    print(row, flush=True)
                    rows.append(row)
                if w == args.server_workers[0]:
                    print(f"retrain + reselect: pool of {args.pool}", flush=True)
                    retrain_load = [os.getloadavg()]
                    cycles = retrain_phase(base, pool_pid, pool_token, pool_truth, args.cycles)
                    retrain_load.append(os.getloadavg())
                    retrain_workers = w
                    print(cycles, flush=True)
                _stop(procs)
                procs = []
    finally:
        _stop(procs)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
    load_avg_end = os.getloadavg()

    cpu = os.cpu_count()
    worst = max(c["seconds"] for c in cycles)
    ok10 = "meets" if worst <= 10 else "misses"
    think = ",".join(f"{t:g}" for t in args.think_time)
    servers = ",".join(str(w) for w in args.server_workers)
    command = (
        f"python benchmarks/service_load.py --annotators {args.annotators} "
        f"--duration {args.duration:g} --tasks {args.tasks} --pool {args.pool} "
        f"--batch-size {args.batch_size} --cycles {args.cycles} --think-time {think}"
        + ("" if servers == "1" else f" --server-workers {servers}")
    )

    default_cmd = (
        "python benchmarks/service_load.py --annotators 50 --duration 20 --tasks 5000 "
        "--pool 100000 --batch-size 100 --cycles 2 --think-time 0,2"
    )

    def avg(x: tuple) -> str:
        return ", ".join(f"{v:.2f}" for v in x)

    aims = "; ".join(
        f"{_row_label(r)}, {r['server_workers']} server process(es): "
        f"{r['claim_p99_ms']:.1f} ms ({'meets' if r['claim_p99_ms'] <= 25 else 'misses'})"
        for r in rows
    )
    retrain_setup = (
        "one `labelwise serve` process with its in-process worker"
        if retrain_workers == 1
        else f"`serve --workers {retrain_workers}` plus one `labelwise worker`"
    )
    lines = [
        HEADING,
        "",
        f"Command: `{command}`" + (" (`make bench`)." if command == default_cmd else "."),
        "",
        f"Machine: {platform.machine()}, {cpu} CPU cores shared by the server, PostgreSQL "
        f"{pg_version} and the {args.annotators} client threads; Python "
        f"{platform.python_version()}. `labelwise serve` (uvicorn) on PostgreSQL at 127.0.0.1. "
        "Latencies are measured by the clients (HTTP round trip included). `uptime` load "
        f"averages (1, 5, 15 min) at the start of the run: {avg(load_avg_start)}; at the end: "
        f"{avg(load_avg_end)} (anything above {cpu} means processes were competing for the "
        "cores).",
        "",
        f"### Claim latency and throughput ({args.annotators} concurrent annotators, one project)",
        "",
        f"Each row: a fresh project of {args.tasks:,} queued tasks (items: rows of a .npy of "
        f"jittered digits features), {args.annotators} annotators with their own tokens and "
        f"connections, {args.duration:g} s. Saturation: each annotator claims and answers in a "
        "closed loop with no pause, so the server is always busy and latency = requests in "
        "flight / throughput; it measures the server's capacity, not what a person waits. "
        "Paced: after each answer an annotator waits an exponentially distributed think time "
        "(seeded), so about annotators / think time claims per second are offered (each claim "
        "is followed by an answer: twice that many HTTP requests). Offered and achieved rates "
        "are claims per second; requests/s counts claims and answers.",
        "",
        "| server | load | offered claims/s | achieved claims/s | requests/s | claims | "
        "claim p50 | claim p99 | answer p50 | answer p99 | 1-min load avg (before -> after) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[_load_row(r) for r in rows],
        "",
        f"Aim: claim p99 <= 25 ms with {args.annotators} annotators. {aims}.",
        "",
        f"### Retrain + reselect on a {args.pool:,}-item pool",
        "",
        f"Pool: {args.pool:,} items, features = the 1,797 scikit-learn digits (64 pixels / 16) "
        "tiled and jittered with N(0, 0.05) noise, float32, one `.npy` memory-mapped by the "
        f"worker; plus 1,000 labelled validation items (seeded in {seed_s:.0f} s). Batch of "
        f"{args.batch_size}, logistic regression, entropy sampling (random cold start); "
        f"{retrain_setup}. Time from the 201 of a batch's last answer to the first successful "
        "claim of the next round (retrain, validate, calibrate, save, select the next batch over "
        "the whole pool, queue it, re-score older queued tasks). 1-min load average before and "
        f"after: {retrain_load[0][0]:.1f}, {retrain_load[1][0]:.1f}.",
        "",
        "| cycle | labels (train) | validation accuracy | last answer -> next round |",
        "|---|---:|---:|---:|",
        *[
            f"| round {c['from_round']} -> {c['to_round']} | {c['n_labels']} | "
            f"{'-' if c['accuracy'] is None else format(c['accuracy'], '.3f')} | "
            f"{c['seconds']:.2f} s |"
            for c in cycles
        ],
        "",
        f"Aim: <= 10 s. This run {ok10} it (worst {worst:.2f} s).",
        "",
    ]
    out = Path(args.out)
    if kept := _kept_subsections(out):  # hand-written notes (e.g. before/after a change)
        lines += [kept, ""]
    write_section(out, HEADING, "\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
