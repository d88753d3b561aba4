"""Annotator idle time: the early next round (``round_overlap``) and the closed-tab release.

Run: ``python benchmarks/annotator_idle.py`` (about 3 minutes on 2 cores). Writes the section
"Annotator idle time" of ``benchmarks/RESULTS.md``.

A ``labelwise serve`` process (in-process worker, SQLite) serves a project of 3,000 digits
(64 float32 features per item, rows of one ``.npy``; 300 labelled validation items), batch size
10, strategy entropy. Five annotators work at a person's pace, each with its own token and HTTP
client: four think a time drawn from an exponential distribution with mean 1 s per item, one
(the slow one) 8 s. One of the fast annotators also *leaves* every 12th task it claims: it stays
away 4 s without answering and then comes back, as someone closing a tab. With
``release`` the page's ``pagehide`` handler gives that task back (``POST /api/tasks/{id}/release``,
what ``label.js`` sends); with ``expiry`` it waits for the lease (``LABELWISE_LEASE_SECONDS``,
15 s here instead of the default 300 s, so the run stays short).

Idle time is what an annotator loses waiting: from a claim that returns 204 (no task) until
its next claim returns a task (claims are retried every 0.25 s). Four runs of ``--duration``
seconds each, on fresh databases, in one process: overlap 0 / ``--overlap`` crossed with
expiry / release. Reported: idle seconds per annotator-minute (ratio to the overlap-0 +
expiry run), labels per minute, the share of claims answered 204, the 1-minute load average
before and after each run and the server's peak RSS (``VmHWM``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # benchmarks/ is on sys.path when run
from service_load import ADMIN, _digits_features, _npy_project, _start_server, _stop, _tokens

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Annotator idle time"
N_ITEMS, N_VAL, BATCH = 3000, 300, 10
FAST_THINK, SLOW_THINK = 1.0, 8.0
LEAVE_EVERY, AWAY_S, LEASE_S, RETRY_S = 12, 4.0, 15, 0.25


def _load() -> float:
    return os.getloadavg()[0]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _annotator(base, pid, token, truth, think, leaves, release, stop, seed, out) -> None:
    """One annotator's loop; appends (idle seconds, labels, claims, empty claims) to ``out``."""
    rng = np.random.default_rng(seed)
    idle = 0.0
    labels = claims = empty = n_claimed = 0
    waiting_since = None
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        while not stop.is_set():
            r = c.post(f"/api/projects/{pid}/tasks/next", timeout=60)
            claims += 1
            if r.status_code != 200:  # 204: nothing to label (or 409 at the lease cap)
                empty += 1
                waiting_since = waiting_since or time.monotonic()
                stop.wait(RETRY_S)
                continue
            if waiting_since is not None:
                idle += time.monotonic() - waiting_since
                waiting_since = None
            task = r.json()
            n_claimed += 1
            tid = task["task"]["id"]
            if leaves and n_claimed % LEAVE_EVERY == 0:  # closes the tab
                if release:
                    c.post(f"/api/tasks/{tid}/release", timeout=60)
                stop.wait(AWAY_S)
                continue
            if stop.wait(float(rng.exponential(think))):
                break
            label = truth[task["item"]["id"]]
            r = c.post(f"/api/tasks/{tid}/annotations", json={"label": label}, timeout=60)
            labels += r.status_code == 201
    if waiting_since is not None:
        idle += time.monotonic() - waiting_since
    out.append((idle, labels, claims, empty))


def run_once(overlap: int, release: bool, duration: float, folder: Path) -> dict:
    from labelwise.storage.sql import SqlStore

    url = f"sqlite:///{folder / 'idle.db'}"
    store = SqlStore(url, upgrade=True)
    X, y = _digits_features(N_ITEMS, seed=0)
    pid, truth = _npy_project(store, "idle", X, y, N_VAL, BATCH, folder)
    tokens = _tokens(store, pid, 5, "ann")
    store.close()
    os.environ["LABELWISE_ROUND_OVERLAP"] = str(overlap)
    os.environ["LABELWISE_LEASE_SECONDS"] = str(LEASE_S)
    procs, base = _start_server(url, folder / "data")
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as a:
            a.post(f"/api/projects/{pid}/rounds", timeout=120).raise_for_status()
        load_before = _load()
        stop, out = threading.Event(), []
        thinks = [FAST_THINK] * 4 + [SLOW_THINK]
        threads = [
            threading.Thread(
                target=_annotator,
                args=(base, pid, tokens[i], truth, thinks[i], i == 0, release, stop, i, out),
            )
            for i in range(5)
        ]
        for t in threads:
            t.start()
        time.sleep(duration)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        rss = _peak_rss_mb(procs[0].pid)
        load_after = _load()
    finally:
        _stop(procs)
    idle = sum(o[0] for o in out)
    return {
        "overlap": overlap,
        "release": "release (pagehide)" if release else f"lease expiry ({LEASE_S} s)",
        "idle_per_min": idle / (5 * duration / 60.0),
        "labels_per_min": sum(o[1] for o in out) / (duration / 60.0),
        "empty_share": sum(o[3] for o in out) / max(1, sum(o[2] for o in out)),
        "load": (load_before, load_after),
        "rss": rss,
    }


def _write(rows: list[dict], command: str, duration: float) -> None:
    base = rows[0]["idle_per_min"]
    lines = [
        HEADING,
        "",
        f"Command: `{command}` (5 annotators: 4 think ~{FAST_THINK:g} s per item, one "
        f"~{SLOW_THINK:g} s; one fast annotator leaves every {LEAVE_EVERY}th task for "
        f"{AWAY_S:g} s; batch {BATCH}, {N_ITEMS:,} digits, SQLite, in-process worker; "
        f"{duration:g} s per run). Idle: seconds from a 204 claim to the next task.",
        "",
        "| round overlap | abandoned task | idle s / annotator-minute | vs first row | "
        "labels / min | claims answered 204 | load avg before -> after | server peak RSS |",
        "|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        ratio = r["idle_per_min"] / base if base > 0 else float("nan")
        lines.append(
            f"| {r['overlap']} | {r['release']} | {r['idle_per_min']:.1f} | {ratio:.2f}x | "
            f"{r['labels_per_min']:.0f} | {100 * r['empty_share']:.0f} % | "
            f"{r['load'][0]:.2f} -> {r['load'][1]:.2f} | {r['rss']:.0f} MB |"
        )
    by = {(r["overlap"], r["release"].startswith("release")): r["idle_per_min"] for r in rows}
    on = max(o for o, _ in by)
    lines += [
        "",
        f"Overlap {on} alone: idle x{by[(on, False)] / by[(0, False)]:.2f} of the overlap-0 run; "
        f"with the closed-tab release too: x{by[(on, True)] / by[(0, False)]:.2f}. Without "
        f"overlap the release changes little (x{by[(0, True)] / by[(0, False)]:.2f}): everyone "
        "waits for the slow annotator's last task and the retrain at each batch's end anyway. "
        "Single runs on a shared 2-core machine (see the load averages): the ratios, not the "
        "seconds, are the result.",
    ]
    section = "\n".join(lines) + "\n"
    write_section(RESULTS, HEADING, section)
    print(section)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=35.0, help="Seconds per run.")
    p.add_argument("--overlap", type=int, default=3, help="round_overlap of the 'on' runs.")
    p.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md.")
    args = p.parse_args()
    rows = []
    for overlap in (0, args.overlap):
        for release in (False, True):
            with tempfile.TemporaryDirectory() as d:
                rows.append(run_once(overlap, release, args.duration, Path(d)))
            print(rows[-1], flush=True)
    command = "python benchmarks/annotator_idle.py" + (
        f" --duration {args.duration:g}" if args.duration != 35.0 else ""
    )
    if args.no_write:
        print(rows)
    else:
        _write(rows, command, args.duration)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
