"""Fixtures for the production-loop tests: ``store`` over memory, SQLite and PostgreSQL, and a
digits project whose items are rows of a ``.npy`` file (a labelled validation split included).

The SQL fixtures follow tests/storage/conftest.py: a migrated SQLite template copied per test,
and one PostgreSQL schema per session emptied between tests.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_digits

from labelwise.settings import Settings
from labelwise.storage import InMemoryStore, NewItem
from labelwise.storage.sql import SqlStore
from labelwise.storage.sql.models import metadata
from labelwise.testing.store import postgres_schema_store, sqlite_store

POSTGRES_URL = os.environ.get(
    "LABELWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
N_POOL = 400
N_VAL = 200


@pytest.fixture(scope="session")
def _service_sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("service-sqlite") / "template.db"
    with sqlite_store(path):
        pass
    return path


@pytest.fixture(scope="session")
def _service_postgres():
    with postgres_schema_store(POSTGRES_URL) as store:
        yield store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "memory":
        yield InMemoryStore()
    elif request.param == "sqlite":
        path = tmp_path / "labelwise.db"
        shutil.copy(request.getfixturevalue("_service_sqlite_template"), path)
        s = SqlStore(f"sqlite:///{path}")
        yield s
        s.close()
    else:
        s = request.getfixturevalue("_service_postgres")
        with s._engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(sa.delete(table))
        yield s


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", random_fraction=0.1, job_max_attempts=3)


@pytest.fixture(scope="session")
def digits():
    """Real data: 8x8 digit images, shuffled once; (X float32 (n, 64), y str)."""
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(X.shape[0])[: N_POOL + N_VAL]
    return (X[order] / 16.0).astype(np.float32), y[order].astype(str)


def make_digits_project(store, tmp_path, digits, **project_kw):
    """A project of N_POOL unlabeled digits plus N_VAL labelled validation digits.

    Features are rows of one .npy file; items carry a tag (``"g0"``..``"g2"``) for cold routing.
    Returns (project_id, truth) where truth maps item id -> true label.
    """
    X, y = digits
    path = tmp_path / "digits.npy"
    np.save(path, X)
    kw = {"strategy": "entropy", "cold_start_strategy": "random", "batch_size": 20}
    kw.update(project_kw)
    pid = store.create_project("digits", "multiclass", [str(c) for c in range(10)], **kw)
    items = []
    for i in range(X.shape[0]):
        val = i >= N_POOL
        items.append(
            NewItem(
                external_id=f"d{i:04d}",
                payload={},
                metadata={"split": "validation", "source": "digits"}
                if val
                else {"tags": [f"g{i % 3}"], "source": "digits"},
                features_path=str(path),
                features_row=i,
                label=y[i] if val else None,
            )
        )
    store.create_items(pid, items)
    truth = {it.id: y[int(it.external_id[1:])] for it in store.list_items(pid)}
    return pid, truth


def label_all(store, pid, annotators, truth, settings, now=None, limit=None):
    """Annotators claim and label tasks round-robin with the true labels; returns the count."""
    from labelwise.service.rounds import submit_annotation

    n = 0
    while limit is None or n < limit:
        task = store.claim_next_task(pid, annotators[n % len(annotators)], now=now)
        if task is None:
            return n
        submit_annotation(
            store, task.id, task.lease_owner, truth[task.item_id], settings=settings,
            duration_s=3.0, now=now,
        )  # fmt: skip
        n += 1
    return n


@pytest.fixture
def digits_project(store, tmp_path, digits):
    """``digits_project(**project_kw) -> (project_id, truth)``; see make_digits_project."""
    return lambda **kw: make_digits_project(store, tmp_path, digits, **kw)


@pytest.fixture
def annotate(store, settings):
    """``annotate(pid, annotators, truth, now=None, limit=None, settings=None) -> n``."""

    def run(pid, annotators, truth, settings=settings, **kw):
        return label_all(store, pid, annotators, truth, settings, **kw)

    return run


def seed_text_queue(base: str, admin_token: str, name: str, n_items: int, annotators: list[str]):
    """Through a running server's API: a project with one round of ``n_items`` queued text tasks
    and one member token per name in ``annotators``. Returns ``(project_id, tokens)``."""
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_token}"}) as c:
        body = {"name": name, "classes": ["neg", "pos"], "batch_size": n_items}
        pid = c.post("/api/projects", json=body).raise_for_status().json()["id"]
        words = ["good", "bad", "fine", "awful", "nice", "poor"]
        items = [
            {"external_id": f"i{i}", "payload": {"text": f"{words[i % 6]} {words[i % 5]} {i}"}}
            for i in range(n_items)
        ]
        c.post(f"/api/projects/{pid}/items", json={"items": items}).raise_for_status()
        c.post(f"/api/projects/{pid}/rounds", timeout=60).raise_for_status()
        tokens = [
            c.post("/api/annotators", json={"name": who, "projects": [pid]})
            .raise_for_status()
            .json()["token"]
            for who in annotators
        ]
    return pid, tokens


@pytest.fixture
def seed_queue():
    """:func:`seed_text_queue`, for tests that start their own server."""
    return seed_text_queue


# --------------------------------------------------------------------------- HTTP helpers

ADMIN = "admin-secret-token"


def auth(token: str) -> dict[str, str]:
    """The Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def detail(r, code: int) -> str:
    """The response is ``code`` with a JSON ``{"detail": "<message>"}`` body; the message."""
    assert r.status_code == code, r.text
    message = r.json()["detail"]
    assert isinstance(message, str) and message
    return message


@pytest.fixture
def client(store, tmp_path):
    """The API over ``store`` (every backend) as the admin; modules may define their own."""
    from fastapi.testclient import TestClient

    from labelwise.service.app import create_app

    settings = Settings(worker="external", data_dir=tmp_path / "data", lease_seconds=60)
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c
