"""Imports: rows/s of a first large CSV import into an empty project, SQLite and PostgreSQL.

Each size gets a fresh store (a temporary SQLite file; a new PostgreSQL schema) and a fresh
project, then ``labelwise.importers.import_items`` reads a generated CSV (``id,text,label``, one
row in ten labelled) in 10,000-row batches. Reported per backend and size: total rows/s and the
rows/s of the first and of the second half of the rows (from the progress callback). The second
half is the one that shows a per-row cost growing with the table: with a duplicate check that
scans the rows imported so far it is several times slower than the first.

Then a re-import of the same file (every row a duplicate, ``on_duplicate="skip"``) is timed,
since it looks up every id.

Results go to the ``## Imports`` section of ``benchmarks/RESULTS.md`` (other sections kept).

    python benchmarks/imports.py                          # 10k and 100k, both backends
    python benchmarks/imports.py --sizes 10000 100000 1000000
    python benchmarks/imports.py --sizes 10000 --no-write
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is on sys.path when run

from labelwise.importers import import_items
from labelwise.testing.store import postgres_schema_store, sqlite_store

BATCH = 10_000
RESULTS = Path(__file__).with_name("RESULTS.md")
#: The same script on the store before issue 14 (commit a16e238, load ~13 on 2 CPUs), kept for
#: the comparison: the duplicate check then ran a SELECT per batch over the rows imported so far.
BEFORE = (
    "Before the fix (commit a16e238, same command and load): SQLite 11,077 / 8,740 rows/s at "
    "10k / 100k (first batch 12,532, last 5,276 at 100k); PostgreSQL 5,928 / **1,404** rows/s "
    "(100k in 71 s, growing with the table; the issue measured 211 s and no end at 200k on an "
    "idle machine). After: PostgreSQL inserts each batch as one "
    "`INSERT ... SELECT FROM unnest(...) "
    "ON CONFLICT DO NOTHING RETURNING` and reads nothing back unless ids repeat; the second "
    "half runs as fast as the first. Re-imports are slower than before (each repeated row is "
    "now read back and compared, to report or update changed content). SQLite's first "
    "import is slower in this run: load noise (the insert statements time the same in "
    "isolation) plus the importer's new per-row limit checks."
)


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        for i in range(n):
            w.writerow(
                [f"doc-{i}", f"review number {i} says the food was fine", "" if i % 10 else "pos"]
            )


def run_one(store, path: Path, n: int) -> dict:
    pid = store.create_project(f"bench-{n}", "multiclass", ["neg", "pos"])
    marks: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    marks.append((0, t0))
    res = import_items(
        store,
        pid,
        path,
        label_field="label",
        batch_size=BATCH,
        progress=lambda k: marks.append((k, time.perf_counter())),
    )
    t_end = time.perf_counter()
    total = t_end - t0
    assert res.n_created == n, res
    # the progress mark at n/2 fires when the half-way row is read; the store inserts each
    # batch after reading it, so both halves hold the same parse + insert work (one batch apart)
    t_half = next(t for k, t in marks if k >= n // 2)
    first, second = (n / 2) / (t_half - t0), (n / 2) / (t_end - t_half)
    t1 = time.perf_counter()
    again = import_items(store, pid, path, label_field="label", batch_size=BATCH)
    reimport = time.perf_counter() - t1
    assert again.n_created == 0 and again.n_skipped == n, again
    return {
        "rows_s": n / total,
        "first": first,
        "last": second,
        "seconds": total,
        "reimport_rows_s": n / reimport,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "LABELWISE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"items-{n}.csv"
            write_csv(path, n)
            for backend in ("sqlite", "postgresql"):
                if backend == "sqlite":
                    ctx = sqlite_store(Path(tmp) / f"lw-{n}.db")
                else:
                    ctx = postgres_schema_store(args.postgres)
                with ctx as store:
                    r = run_one(store, path, n)
                rows.append((backend, n, r))
                print(
                    f"{backend:10s} {n:>9,} rows: {r['rows_s']:>8,.0f} rows/s "
                    f"(first half {r['first']:,.0f}, second half {r['last']:,.0f}; "
                    f"{r['seconds']:.1f} s); re-import {r['reimport_rows_s']:,.0f} rows/s",
                    flush=True,
                )
            path.unlink()
    if not args.no_write:
        write_results(rows)


def write_results(rows: list) -> None:
    load = os.getloadavg()
    sizes = " ".join(str(n) for n in dict.fromkeys(n for _, n, _ in rows))
    lines = [
        "## Imports (`benchmarks/imports.py`)",
        "",
        "First import of a generated CSV (`id,text,label`, one row in ten labelled) into an empty "
        "project, 10,000-row batches, one transaction; then the same file again (every row a "
        "duplicate, skipped). The second half's rate is the check that the cost per row does not "
        "grow with the table.",
        "",
        f"Command: `python benchmarks/imports.py --sizes {sizes}`; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on "
        f"{os.cpu_count()} CPUs.",
        "",
        "| backend | rows | rows/s | first half rows/s | second half rows/s | seconds | "
        "re-import rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, n, r in rows:
        # below 4 batches the halves split unevenly around one insert: not a per-row cost
        halves = f"{r['first']:,.0f} | {r['last']:,.0f}" if n >= 4 * BATCH else "– | –"
        lines.append(
            f"| {backend} | {n:,} | {r['rows_s']:,.0f} | {halves} "
            f"| {r['seconds']:.1f} | {r['reimport_rows_s']:,.0f} |"
        )
    lines += ["", BEFORE]
    section = "\n".join(lines) + "\n"
    write_section(RESULTS, "## Imports", section)


if __name__ == "__main__":
    main()
