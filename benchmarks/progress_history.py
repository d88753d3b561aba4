"""Progress of a project with a long labelling history: time and memory of ``/progress``.

Run: ``python benchmarks/progress_history.py [--items 300000]`` (about a minute on 2 cores).
Writes the section "Progress with a long history" of ``benchmarks/RESULTS.md``.

A SQLite project of ``--items`` items, every item answered once and every tenth twice, and
every item labelled, as such a project would be (answers and labels are bulk-written with
SQLAlchemy core, one answer per second from a fixed start: the store API would take minutes).
``project_progress`` is timed three times (median) at two moments: *quiet*, a month after the
last answer (nothing in the 24-hour throughput window), and *busy*, one day after the first
answer (86,400 answers in the window). The baseline in the same run is one of the two reads
progress used to make: every annotation of the project as an object (``list_annotations``);
the other was every labelled item (for its class counts). Each measurement runs in a fresh
child process, so its peak RSS (``VmHWM``) is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, write_section  # benchmarks/ is on sys.path when run

START = datetime(2026, 11, 1, tzinfo=UTC)


def build(path: Path, n_items: int) -> int:
    import sqlalchemy as sa

    from labelwise.storage.base import NewItem
    from labelwise.storage.sql import SqlStore
    from labelwise.storage.sql import models as m

    store = SqlStore(f"sqlite:///{path}", upgrade=True)
    pid = store.create_project("history", "multiclass", ["neg", "pos"])
    for s in range(0, n_items, 50_000):
        stop = min(n_items, s + 50_000)
        store.create_items(pid, [NewItem(f"x{i}", {"text": f"t{i}"}) for i in range(s, stop)])
    ann = store.create_annotator("a")
    ids = store.list_item_ids(pid).tolist()
    answers = [(iid, "pos") for iid in ids] + [(iid, "neg") for iid in ids[::10]]
    rows = [
        {
            "item_id": iid,
            "annotator_id": ann,
            "label": label,
            "created": START + timedelta(seconds=i),
        }
        for i, (iid, label) in enumerate(answers)
    ]
    with store._engine.begin() as conn:
        for s in range(0, len(rows), 50_000):
            conn.execute(sa.insert(m.annotations), rows[s : s + 50_000])
        labelled = sa.update(m.items).where(m.items.c.project_id == pid)
        conn.execute(labelled.values(status="labeled", label="pos"))
    store.close()
    return pid, len(rows)


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _measure(path: str, pid: int, what: str, now: datetime, out: mp.Queue) -> None:
    from labelwise.service.progress import project_progress
    from labelwise.storage.sql import SqlStore

    store = SqlStore(f"sqlite:///{path}")
    if what == "progress":
        run = lambda: project_progress(store, pid, now=now)  # noqa: E731
    else:
        run = lambda: store.list_annotations(pid)  # noqa: E731
    run()  # warm the page cache
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    out.put((sorted(times)[1], _vm_hwm_mb()))


def measure(path: Path, pid: int, what: str, now: datetime) -> tuple[float, float]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: its VmHWM is its own, not the builder's
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(str(path), pid, what, now, out))
    proc.start()
    try:
        return out.get(timeout=600)
    finally:
        proc.join(timeout=10)
        if proc.exitcode != 0:
            raise SystemExit(f"the {what} measurement failed (exit code {proc.exitcode})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=300_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.db"
        pid, n_answers = build(db, args.items)
        last = START + timedelta(seconds=n_answers)
        cases = [
            ("every annotation listed (one read progress made before)", "list", last),
            ("progress, quiet (no answer in the last 24 h)", "progress", last + timedelta(days=30)),
            (
                "progress, busy (86,400 answers in the last 24 h)",
                "progress",
                START + timedelta(days=1),
            ),
        ]
        rows = []
        for label, what, now in cases:
            seconds, rss = measure(db, pid, what, now)
            rows.append((label, seconds, rss))
            print(f"{label}: {seconds * 1000:.0f} ms, peak RSS {rss:.0f} MB", flush=True)
    lines = [
        "## Progress with a long history (`benchmarks/progress_history.py`)",
        "",
        f"Command: `python benchmarks/progress_history.py --items {args.items}` (SQLite; "
        f"{args.items:,} items, {n_answers:,} answers; median of 3, each case in its own child "
        "process). The first row is a baseline in the same run: listing every annotation, one of "
        "the two reads progress made before (the other listed every labelled item).",
        "",
        "| case | time, ms | peak RSS of the process, MB |",
        "|---|---|---|",
        *(f"| {label} | {s * 1000:.0f} | {rss:.0f} |" for label, s, rss in rows),
    ]
    write_section(RESULTS, "## Progress with a long history", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
