"""Every error of /api/v1 in one format, `{"error": {"message", "type", "param", "code"}}`, from one set
of exception handlers. A store failure is never echoed (its text may hold a driver's message): the
client gets a generic 503 and the details go to the log."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException

from architect.errors import (
    ArchitectError,
    GatewayError,
    NotFoundInStore,
    PlanError,
    StateConflict,
    StoreError,
)

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "allowed_methods",
    "error_response",
    "install_handlers",
    "json_path",
]

log = logging.getLogger("architect.api")

_HTTP_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    503: "service_unavailable",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response of /api/v1 (the OpenAI error format)."""

    error: ErrorDetail


def error_response(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


_WHERE = frozenset({"body", "query", "path", "header", "cookie"})


def _union_tag(part: str) -> bool:
    return (part.endswith("]") and "[" in part) or part.startswith("function-")


def json_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as the JSON path a client reads: `models[1]`, `tags.project`. The
    tags pydantic adds for a union's alternatives (`list[...]`, `literal['*']`) are left out, and an
    invalid dict key (`[key]`) is named by its dict."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            if parts:
                parts[-1] += f"[{part}]"
            continue
        if part == "[key]":  # the dict key itself is invalid: name the dict
            parts = parts[:-1]
        elif not (part in _WHERE and not parts) and not _union_tag(part):
            parts.append(part)
    out = ".".join(parts)
    return out


def allowed_methods(request: Request) -> list[str]:
    """Every method an operation of this API serves at the request's path (a 405's Allow header), from
    the routes `create_api` recorded in `app.state.api_routes`."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        if route.path_regex.match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def install_handlers(api: FastAPI) -> None:
    """Register the handlers that turn every exception into the API's error format."""

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # of a union's alternatives, the error that went deepest is about the one the client meant
        first = max(errors, key=lambda e: len(e["loc"])) if errors else {"loc": (), "msg": "invalid request"}
        loc = json_path(first["loc"])
        return error_response(
            400, f"{loc or 'request'}: {first['msg']}", "invalid_request_error", loc or None
        )

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
        if exc.status_code == 405:
            allow = allowed_methods(request)
            headers["allow"] = ", ".join(allow)
            return error_response(
                405, f"method not allowed; use {' or '.join(allow)}", "invalid_request_error",
                code="method_not_allowed", headers=headers,
            )  # fmt: skip
        if exc.status_code == 404:
            return error_response(404, f"no such path: {request.url.path}", "not_found", code="unknown_url")
        type_ = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return error_response(exc.status_code, str(exc.detail), type_, headers=headers)

    @api.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @api.exception_handler(NotFoundInStore)
    async def _missing(_: Request, exc: NotFoundInStore) -> JSONResponse:
        return error_response(404, str(exc), "not_found")

    @api.exception_handler(StateConflict)
    async def _conflict(_: Request, exc: StateConflict) -> JSONResponse:
        return error_response(409, str(exc), "conflict")

    @api.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return error_response(503, "the store could not serve this request; try again", "service_unavailable")

    @api.exception_handler(PlanError)
    async def _plan(_: Request, exc: PlanError) -> JSONResponse:
        return error_response(400, str(exc), "invalid_request_error")

    @api.exception_handler(ArchitectError)
    async def _other(_: Request, exc: ArchitectError) -> JSONResponse:
        return error_response(400, str(exc), "invalid_request_error")

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error", "server_error")
