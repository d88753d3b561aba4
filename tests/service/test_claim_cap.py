"""The open-lease cap holds under concurrent claims with one token (issue 14).

The cap used to be checked by the route before the claim, in a transaction of its own: claims
from many tabs of one annotator could all pass the check before any of them leased. The store
now counts and leases in the claim's transaction, behind the lock on the annotator's row.
"""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.settings import Settings

ADMIN = "cap-admin-token"


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_concurrent_claims_with_one_token_end_at_the_cap(store, tmp_path):
    n_threads, cap = 24, 3
    settings = Settings(data_dir=tmp_path / "data", worker="external", max_open_leases=cap)
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        pid = client.post(
            "/api/projects", json={"name": "p", "classes": ["neg", "pos"], "batch_size": 40},
            headers=admin,
        ).json()["id"]  # fmt: skip
        items = [{"external_id": f"x{i}", "payload": {"text": f"t{i}"}} for i in range(40)]
        client.post(f"/api/projects/{pid}/items", json={"items": items}, headers=admin)
        assert client.post(f"/api/projects/{pid}/rounds", headers=admin).status_code == 201
        ana = client.post(
            "/api/annotators", json={"name": "ana", "projects": [pid]}, headers=admin
        ).json()
        h = {"Authorization": f"Bearer {ana['token']}"}
        barrier = threading.Barrier(n_threads)
        answers: list = []

        def claim() -> None:
            barrier.wait()
            r = client.post(f"/api/projects/{pid}/tasks/next", headers=h)
            answers.append((r.status_code, r.json()))

        threads = [threading.Thread(target=claim) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    codes = sorted(code for code, _ in answers)
    assert codes == [200] * cap + [409] * (n_threads - cap), codes
    refused = [body["detail"] for code, body in answers if code == 409]
    assert all(f"you hold {cap} open leases" in d for d in refused), refused[0]
    assert all(f"LABELWISE_MAX_OPEN_LEASES={cap}" in d for d in refused)
    held = store.list_tasks(pid, status="leased", lease_owner=ana["id"])
    assert sorted(t.id for t in held) == sorted(b["task"]["id"] for c, b in answers if c == 200)
