"""Property-based API testing with schemathesis: every operation of the OpenAPI schema, called
with generated (valid and invalid) input and the admin token, never answers 5xx.

The schema is loaded from an app built at collection time over an empty in-memory store (no
files, no connections); before the tests run, a module fixture swaps in a real SQLite store
seeded with a project (id 1), items, an annotator, a round with tasks, a job and a dataset
version, so generated ids sometimes hit existing rows. Examples per operation are few (the
schema has ~25 operations) to keep the run well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from labelwise.service.app import create_app
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore
from labelwise.storage.base import NewItem
from labelwise.testing.store import sqlite_store

ADMIN = "schemathesis-admin-token"

app = create_app(Settings(worker="external"), InMemoryStore(), admin_token=ADMIN)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _seeded_sqlite(tmp_path_factory):
    from labelwise.service.app import _ensure_admin

    tmp = tmp_path_factory.mktemp("schemathesis")
    with sqlite_store(tmp / "api.db") as store:
        _ensure_admin(store, ADMIN)
        pid = store.create_project("seed", "multiclass", ["neg", "pos"], batch_size=3)
        store.create_items(
            pid,
            [NewItem(f"x{i}", {"text": f"t{i}"}, label="pos" if i < 2 else None) for i in range(8)],
        )
        store.add_member(pid, store.create_annotator("ana", role="annotator"))
        rid = store.create_round(pid, "random")
        store.create_tasks(rid, store.list_unlabeled_item_ids(pid)[:3])
        store.create_dataset_version(pid)
        store.create_job("retrain", pid)
        memory = app.state.store
        app.state.store = store
        app.state.settings = Settings(worker="external", data_dir=tmp / "data")
        yield store
        app.state.store = memory


def test_every_operation_is_in_the_schema():
    ops = {(r.ok().method.upper(), r.ok().path) for r in schema.get_all_operations()}
    assert len(ops) >= 25
    assert ("POST", "/api/projects/{project_id}/items:import") in ops
    assert ("GET", "/api/dataset-versions/{dataset_version_id}/export") in ops


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_server_errors(case):
    response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
    case.validate_response(response, checks=[not_a_server_error])
    if 400 <= response.status_code < 500 and response.status_code not in (404, 405):
        body = response.json()
        assert isinstance(body.get("detail"), str) and body["detail"], response.text
