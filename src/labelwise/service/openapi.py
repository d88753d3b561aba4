"""The OpenAPI schema says what the API answers, errors included.

FastAPI documents a 422 body as pydantic's ``{"detail": [ ... ]}`` list and knows nothing of
the 401/403 its security dependencies answer. labelwise answers every error as
``{"detail": "<what to fix>"}`` (422s add pydantic's ``errors`` list), so a client generated
from the schema, or schemathesis checking responses against it, would be misled.
:func:`document_errors` rewrites the generated schema once: the validation-error schema becomes
that shape, every operation behind a token documents 401 and 403, one with a body 400 and 413,
one with a path parameter 404.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_SCHEMA", "document_errors"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What went wrong and what to fix."},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "422 for request validation only: the field errors, one object each.",
        },
    },
}
_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_AUTH = {
    "401": "No bearer token, or one the server does not know.",
    "403": "The token's annotator may not do this (wrong role, or not a member of the project).",
}
_TOO_LARGE = "The request body is over the server's limit for this route."
_BAD_BODY = "The body is not what the Content-Type says (JSON that does not parse, say)."
_NOT_FOUND = "No such resource (ids of projects you may not see are unknown too)."
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a generated OpenAPI schema (in place) so its errors match the answers.

    Parameters
    ----------
    schema : dict
        What :func:`fastapi.openapi.utils.get_openapi` returns.

    Returns
    -------
    schema : dict
        The same object.
    """
    _tuples_as_arrays(schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    if "HTTPValidationError" in components:  # keep the name: operations refer to it
        components["HTTPValidationError"] = {**ERROR_SCHEMA, "title": "HTTPValidationError"}
        components.pop("ValidationError", None)
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            responses = op.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith("4") and "content" not in response:
                    response["content"] = _REF
            if op.get("security"):
                for code, text in _AUTH.items():
                    responses.setdefault(code, {"description": text, "content": _REF})
            if "requestBody" in op:
                responses.setdefault("400", {"description": _BAD_BODY, "content": _REF})
                responses.setdefault("413", {"description": _TOO_LARGE, "content": _REF})
            if any(p.get("in") == "path" for p in op.get("parameters", ())):
                responses.setdefault("404", {"description": _NOT_FOUND, "content": _REF})
    return schema


def _tuples_as_arrays(node: Any) -> None:
    """Tuples (``prefixItems: [a, b]``, or ``items: [a, b]`` as older JSON Schema wrote them)
    trip up OpenAPI tools (schemathesis reads prefixItems back as an invalid ``items`` list);
    write a tuple as a fixed-length array whose items are any of its members' schemas."""
    if isinstance(node, dict):
        members = node.pop("prefixItems", None) or node.get("items")
        if isinstance(members, list):
            node["items"] = {"anyOf": members} if len(members) > 1 else members[0]
            node.setdefault("minItems", len(members))
            node.setdefault("maxItems", len(members))
        for value in node.values():
            _tuples_as_arrays(value)
    elif isinstance(node, list):
        for value in node:
            _tuples_as_arrays(value)
