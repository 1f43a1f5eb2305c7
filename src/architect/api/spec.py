"""The OpenAPI spec of /api/v1, completed from the routes so that every operation documents every status
code it can return, each error with the API's error body (`ErrorResponse`), without each endpoint
having to list them:

    every operation         400 (a parameter or field is invalid, or a rule the schema cannot express
                            is broken; `param` names it), 503 (the store is unavailable)
    authenticated           401 (no valid key or session), 403 (the key may not do this)
    with a path parameter   404 (no such resource, or not one this key may see)
    with a body             413 (larger than `server.max_api_body_bytes`)
    declared on the route   e.g. 409 (`responses={409: {...}}`): the error body is filled in

Operations that need the admin key carry `x-admin-only: true`. Query and path strings without a
pattern of their own get the identifier pattern (no control characters), which `ParamGuard` enforces
for every request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from architect.api.deps import admin_only, get_principal
from architect.api.errors import ErrorResponse
from architect.api.params import IDENTIFIER_PATTERN

__all__ = [
    "ERROR_DESCRIPTIONS",
    "CsvStream",
    "EventStream",
    "admin_only_route",
    "build_openapi",
    "error_statuses",
    "text_content",
]


class EventStream(StreamingResponse):
    """Server-sent events (the media type the spec shows for the stream endpoints)."""

    media_type = "text/event-stream"


class CsvStream(StreamingResponse):
    media_type = "text/csv"


def text_content(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """`responses` for a 200 answered as text in one of `media_types` (besides the route's own)."""
    return {
        200: {
            "content": {
                m: {"schema": {"type": "string"}} if m.startswith("text/") else {} for m in media_types
            }
        }
    }


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "A parameter or body field is invalid (`param` names it), or a rule the schema cannot express "
    "was broken (the message says which)",
    401: "No valid key or dashboard session",
    403: "The key may not do this (admin only, or another project's data)",
    404: "No such resource, or none this key may see",
    409: "The resource's current state does not allow this",
    413: "The request body is larger than `server.max_api_body_bytes`",
    503: "The store (or a service it needs) failed; the details are in the server's log",
}
_REF = "#/components/schemas/ErrorResponse"
_SECURITY = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin key or a virtual key. The dashboard sends its session cookie with "
        "`Authorization: Session <csrf token>` instead.",
    }
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _flat_params(dependant: Dependant) -> tuple[bool, bool]:
    """(has path params, has a body) over the route and its dependencies."""
    path, body = bool(dependant.path_params), bool(dependant.body_params)
    for dep in dependant.dependencies:
        p, b = _flat_params(dep)
        path, body = path or p, body or b
    return path, body


def admin_only_route(route: APIRoute) -> bool:
    """Whether the operation needs the admin key (the spec marks it `x-admin-only`)."""
    return admin_only in set(_calls(route.dependant))


def error_statuses(route: APIRoute) -> set[int]:
    """The error statuses an operation can return, derived from its dependencies and parameters."""
    out = {400, 503}  # 400: `ParamGuard` checks every path and query string
    if get_principal in set(_calls(route.dependant)):
        out |= {401, 403}
    path, body = _flat_params(route.dependant)
    if path:
        out.add(404)
    if body:
        out.add(413)
    out.update(int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400)
    return out


def _constrain_strings(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and not ({"pattern", "enum", "const", "format"} & schema.keys()):
        schema["pattern"] = IDENTIFIER_PATTERN
    for sub in schema.get("anyOf", ()):
        _constrain_strings(sub)


def build_openapi(api: FastAPI, routes: Sequence[APIRoute]) -> dict[str, Any]:
    """The spec of `api` (whose operations are `routes`), with every error status documented; cached
    on the app like FastAPI's own."""
    if api.openapi_schema:
        return api.openapi_schema
    spec = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    components["securitySchemes"] = _SECURITY
    for route in routes:
        if not route.include_in_schema:
            continue
        statuses = error_statuses(route)
        for method in route.methods or ():
            op = spec["paths"][route.path_format][method.lower()]
            if 401 in statuses:
                op["security"] = [{"bearer": []}]
            if admin_only_route(route):
                op["x-admin-only"] = True
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's own validation answer; ours is a 400 (ErrorResponse)
            for status in statuses:
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", ERROR_DESCRIPTIONS.get(status, "Error"))
                entry["content"] = {"application/json": {"schema": {"$ref": _REF}}}
            op["responses"] = dict(sorted(responses.items()))
            for param in op.get("parameters", ()):
                if param.get("in") in ("path", "query"):
                    _constrain_strings(param.get("schema", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    api.openapi_schema = spec
    return spec
