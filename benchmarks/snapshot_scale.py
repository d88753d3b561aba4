"""A round's snapshot of a 1M-item service project: ``read_snapshot`` + ``build_session``.

The numbers in docs/scaling.md (*The service at 1M items*). Three steps, each its own process:

1. ``build DIR N``: ``DIR/pool.npy`` (N x 16 float32, seeded) and a SQLite project ``DIR/lw.db``
   of N items reading row ``i`` of it, the first 2,000 labelled.
2. ``measure DIR``: a fresh process calls ``read_snapshot`` + ``build_session`` twice and prints
   seconds, the RSS now and the peak RSS (``ru_maxrss``). The first call ever builds the
   project's feature version under ``DIR/data``; later processes read it.
3. ``extend DIR``: adds 10,000 items from another file (a new version: the items no longer read
   one file in order), then 10,000 more (appended in place), timing ``project_features``.

    python benchmarks/snapshot_scale.py build /tmp/p1m 1000000
    python benchmarks/snapshot_scale.py measure /tmp/p1m     # twice: build, then read
    python benchmarks/snapshot_scale.py extend /tmp/p1m

For the *before* figures, run ``measure`` with ``PYTHONPATH`` pointing at an older tree
(``git archive b545ff9 src | tar -x -C /tmp/before``).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

N_LABELED = 2000


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(d: Path, n: int) -> None:
    from labelwise.storage import NewItem
    from labelwise.storage.sql import SqlStore

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(d / "pool.npy", mode="w+", dtype=np.float32, shape=(n, 16))
    for s in range(0, n, 65536):
        X[s : s + 65536] = rng.standard_normal((min(65536, n - s), 16), dtype=np.float32)
    X.flush()
    labels = np.where(X[:N_LABELED, 0] > 0, "b", "a")
    store = SqlStore(f"sqlite:///{d}/lw.db", upgrade=True)
    pid = store.create_project("p", "multiclass", ["a", "b"], strategy="margin")
    path = str(d / "pool.npy")
    items = (
        NewItem(f"x{i}", {}, features_path=path, features_row=i,
                label=str(labels[i]) if i < N_LABELED else None)
        for i in range(n)
    )  # fmt: skip
    t = time.perf_counter()
    store.create_items(pid, items, batch_size=20000)
    print(f"built {n} items in {time.perf_counter() - t:.1f}s", flush=True)
    store.close()


def measure(d: Path) -> None:
    from labelwise.service.rounds import build_session, read_snapshot
    from labelwise.settings import Settings
    from labelwise.storage.sql import SqlStore

    store = SqlStore(f"sqlite:///{d}/lw.db", upgrade=True)
    settings = Settings(data_dir=d / "data", database_url=f"sqlite:///{d}/lw.db")
    project = store.list_projects()[0]
    print(f"start rss {rss_mb():.0f} MB", flush=True)
    for attempt in ("first", "second"):
        t0 = time.perf_counter()
        snap = read_snapshot(store, project, settings)
        t1 = time.perf_counter()
        build_session(project, snap, None, round=0, random_fraction=0.1)
        t2 = time.perf_counter()
        print(
            f"{attempt}: read_snapshot {t1 - t0:.2f}s build_session {t2 - t1:.2f}s "
            f"rss now {rss_mb():.0f} MB peak {peak_mb():.0f} MB n={snap.features.n} "
            f"unlabeled={snap.unlabeled_ids.shape[0]} train={snap.train_ids.shape[0]}",
            flush=True,
        )
        del snap
    print(os.popen("uptime").read().strip())


def extend(d: Path) -> None:
    from labelwise.service.features import project_features, read_manifest
    from labelwise.settings import Settings
    from labelwise.storage import NewItem
    from labelwise.storage.sql import SqlStore

    more = d / "more.npy"
    np.save(more, np.random.default_rng(1).standard_normal((20000, 16), dtype=np.float32))
    store = SqlStore(f"sqlite:///{d}/lw.db")
    settings = Settings(data_dir=d / "data", database_url=f"sqlite:///{d}/lw.db")
    pid = store.list_projects()[0].id
    for step in range(2):
        store.create_items(
            pid,
            (NewItem(f"m{step}-{i}", {}, features_path=str(more), features_row=step * 10000 + i)
             for i in range(10000)),
        )  # fmt: skip
        t = time.perf_counter()
        fm = project_features(store, pid, settings)
        current = read_manifest(d / "data" / "features" / f"project_{pid}")["current"]
        print(
            f"+10k items ({'new version' if step == 0 else 'appended'}): "
            f"{time.perf_counter() - t:.2f}s n={fm.n} version={current['version']} "
            f"rss {rss_mb():.0f} MB peak {peak_mb():.0f} MB",
            flush=True,
        )
    print(os.popen("uptime").read().strip())


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    if step == "build":
        build(folder, int(sys.argv[3]))
    elif step == "extend":
        extend(folder)
    else:
        measure(folder)
