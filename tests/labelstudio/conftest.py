"""Fixtures for the tests against a real Label Studio 1.23.2 server.

- ``label_studio`` (session): Label Studio started once from ``.venv-ls`` on a free port, its
  data in a temporary folder (see :mod:`ls_server`); stopped with its process group at the end.
  Without ``.venv-ls`` the tests fail (never skip) with a message saying ``make test`` installs it.
- ``ls``: an httpx client of Label Studio's API (``Authorization: Token ...``).
- ``labelwise`` (session): labelwise under uvicorn in its own process, over a SQLite file, with
  a trained text project (:func:`seed_project`); the test reads the same SQLite file through a
  :class:`~labelwise.storage.sql.SqlStore` to check what the API calls stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.labelstudio import ls_server

from labelwise.settings import Settings
from labelwise.storage import NewItem
from labelwise.storage.sql import SqlStore

ADMIN = "labelwise-admin-token-for-label-studio"
CLASSES = ["neg", "pos"]
_POS = ["great", "lovely", "excellent", "friendly", "fast", "tasty", "helpful", "clean"]
_NEG = ["awful", "rude", "slow", "dirty", "cold", "broken", "late", "noisy"]
_NOUN = ["service", "staff", "food", "room", "delivery", "support", "coffee", "app"]


def review_texts(n: int) -> list[tuple[str, str]]:
    """``n`` short reviews with their sentiment: two words of one side, one of the other for a
    third of them (so the model is unsure of some), deterministic."""
    out = []
    for i in range(n):
        pos = i % 2 == 0
        own, other = (_POS, _NEG) if pos else (_NEG, _POS)
        words = [own[i % 8], _NOUN[(i // 2) % 8], own[(i * 3 + 1) % 8]]
        if i % 3 == 0:
            words.append(other[(i * 5) % 8])
        out.append((" ".join(["the", *words]), "pos" if pos else "neg"))
    return out


N_ITEMS = 60
N_LABELED = 24


def seed_project(store: SqlStore, settings: Settings) -> int:
    """A binary text project: ``N_ITEMS`` reviews, the first ``N_LABELED`` labeled on import,
    retrained once (so there is a model and a round of queued tasks). Returns its id."""
    from labelwise.service.worker import Worker

    pid = store.create_project("reviews", "binary", CLASSES, strategy="entropy", batch_size=10)
    items = [
        NewItem(
            external_id=f"r{i:03d}",
            payload={"text": text},
            metadata={"source": "reviews"},
            label=label if i < N_LABELED else None,
        )
        for i, (text, label) in enumerate(review_texts(N_ITEMS))
    ]
    store.create_items(pid, items)
    store.create_job("retrain", pid, {"reason": "seed"})
    job = Worker(store, settings).run_once()
    assert job is not None and job.status == "done", job
    return pid


@dataclass
class Labelwise:
    url: str
    db: Path
    data_dir: Path
    project_id: int
    proc: subprocess.Popen
    log: Path

    def store(self) -> SqlStore:
        return SqlStore(f"sqlite:///{self.db}")

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=f"sqlite:///{self.db}")

    def client(self, token: str = ADMIN) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )


def require_label_studio() -> None:
    """Fail (never skip) when ``.venv-ls`` is missing, saying that ``make test`` installs it."""
    if not ls_server.LS_BIN.exists():
        pytest.fail(ls_server.MISSING)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    require_label_studio()
    server = ls_server.start(tmp_path_factory.mktemp("label-studio"))
    yield server
    server.stop()


@pytest.fixture
def ls(label_studio):
    with httpx.Client(
        base_url=label_studio.url,
        headers={"Authorization": f"Token {label_studio.token}"},
        timeout=120.0,
    ) as c:
        yield c


@pytest.fixture(scope="session")
def labelwise(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelwise")
    db, data_dir = root / "labelwise.db", root / "data"
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{db}", random_fraction=0.1)
    store = SqlStore(f"sqlite:///{db}", upgrade=True)
    try:
        pid = seed_project(store, settings)
    finally:
        store.close()
    port = ls_server.free_port()
    env = {
        **os.environ,
        "LABELWISE_DATABASE_URL": f"sqlite:///{db}",
        "LABELWISE_DATA_DIR": str(data_dir),
        "LABELWISE_ADMIN_TOKEN": ADMIN,
        "LABELWISE_WORKER": "inline",
        "LABELWISE_WORKER_POLL_SECONDS": "0.2",
        "LABELWISE_RANDOM_FRACTION": "0.1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    log = root / "labelwise.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--factory", "labelwise.service.app:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            ],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Labelwise(f"http://127.0.0.1:{port}", db, data_dir, pid, proc, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"labelwise exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"labelwise did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
