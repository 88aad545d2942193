"""The OpenAPI 3.1 document, built from the declared endpoints and their msgspec types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from rest.routing import Endpoint
from typogram import __version__

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "details": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}

_STATUS_TEXT = {
    400: "Malformed or invalid request",
    401: "Missing, invalid or revoked credentials",
    402: "An active subscription is required (code subscription_required)",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with existing data",
    413: "Request body too large",
    422: "Unprocessable",
    429: "Rate limited (see Retry-After)",
    503: "Unavailable for now: retry (see Retry-After)",
}


def build(
    endpoints: Iterable[Endpoint], extra_paths: dict[str, Any] | None = None
) -> dict[str, Any]:
    endpoints = list(endpoints)
    types = {t for ep in endpoints for t in (ep.body, ep.response) if t is not None}
    ordered = sorted(types, key=lambda t: t.__name__)
    schemas, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(ordered, schemas, strict=True))
    components["Error"] = _ERROR_SCHEMA
    paths: dict[str, Any] = dict(extra_paths or {})
    for ep in endpoints:
        operation: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "responses": {
                str(ep.status): {
                    "description": "Success",
                    "content": {"application/json": {"schema": refs[ep.response]}}
                    if ep.response
                    else {},
                }
            },
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(ep.path)
        ]
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in ep.query.items()
        ]
        if parameters:
            operation["parameters"] = parameters
        if ep.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[ep.body]}},
            }
        if ep.auth is not None:
            operation["security"] = [{"bearer": []}]
        if ep.roles is not None:
            operation["x-roles"] = sorted(ep.roles)
        for status in sorted(
            set(ep.errors) | {429} if ep.path.startswith("/api/") else set(ep.errors)
        ):
            operation["responses"][str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        paths.setdefault(ep.path, {})[ep.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Typogram API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
