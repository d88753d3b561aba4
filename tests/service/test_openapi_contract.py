"""The OpenAPI schema tells the truth about errors, methods and types (hand-checked cases;
tests/service/test_schemathesis.py fuzzes the same promises over every operation)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelwise.service.app import create_app
from labelwise.service.openapi import document_errors
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore

TOKEN = "openapi-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(worker="external"), InMemoryStore(), admin_token=TOKEN)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def schema(client):
    return client.get("/openapi.json").json()


def test_a_422_body_is_what_the_schema_says(client, schema):
    err = schema["components"]["schemas"]["HTTPValidationError"]
    assert err["properties"]["detail"]["type"] == "string" and err["required"] == ["detail"]
    assert "ValidationError" not in schema["components"]["schemas"]
    r = client.post("/api/projects", headers=AUTH, json={"name": "x", "batch_size": -1})
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str) and "batch_size" in r.json()["detail"]


def test_operations_behind_a_token_document_401_and_403(client, schema):
    op = schema["paths"]["/api/projects"]["post"]
    assert {"401", "403", "400", "413", "422"} <= set(op["responses"])
    assert "404" in schema["paths"]["/api/projects/{project_id}"]["get"]["responses"]
    assert "401" not in schema["paths"]["/healthz"]["get"]["responses"]
    r = client.get("/api/projects")
    assert r.status_code == 401 and isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/projects", "GET, POST"),
        ("PUT", "/api/projects/1", "GET, PATCH"),
        ("PATCH", "/api/webhooks/1:rotate-secret", "POST"),
        ("GET", "/api/webhooks/1:rotate-secret", "POST"),
        ("POST", "/api/webhooks/1", "DELETE, GET, PATCH"),
    ],
)
def test_a_405_lists_every_method_of_the_path(client, method, path, allow):
    r = client.request(method, path, headers=AUTH, json={} if method != "GET" else None)
    assert (r.status_code, r.headers.get("allow")) == (405, allow)


def test_numbers_are_numbers_and_booleans_booleans(client):
    base = {"name": "strict", "task_type": "binary", "classes": ["a", "b"]}
    r = client.post("/api/projects", headers=AUTH, json={**base, "gold_min_accuracy": False})
    assert r.status_code == 422 and "gold_min_accuracy" in r.json()["detail"]
    r = client.post("/api/projects", headers=AUTH, json={**base, "batch_size": "10"})
    assert r.status_code == 422 and "batch_size" in r.json()["detail"]
    r = client.post("/api/projects", headers=AUTH, json={**base, "label_cost": 2})
    assert r.status_code == 201, r.text  # an integer is a number


def test_tuples_become_fixed_length_arrays():
    schema = {
        "paths": {},
        "components": {"schemas": {"P": {"properties": {"curve": {"type": "array", "items": {
            "type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}}}}}},
    }  # fmt: skip
    pair = document_errors(schema)["components"]["schemas"]["P"]["properties"]["curve"]["items"]
    assert pair == {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "number"}]},
        "minItems": 2,
        "maxItems": 2,
    }
