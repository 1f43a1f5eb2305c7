"""The REST API under /api/v1 (FastAPI, OpenAPI spec at /api/v1/openapi.json).

Each domain contributes an `APIRouter`; `create_api` mounts them. Authentication is the
`principal`/`admin_only` dependencies in `architect.api.deps`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from architect._optional import optional_module
from architect.errors import ArchitectError, GatewayError, NotFoundInStore, PlanError

__all__ = ["create_api"]

# Routers mounted when their module exists: (module, attribute).
_ROUTERS = (
    ("architect.api.core", "router"),
    ("architect.orchestrator.api", "router"),
    ("architect.access.api", "router"),
    ("architect.metrics.api", "router"),
    ("architect.cache.api", "router"),
)


def _error(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": None}}, status_code=status
    )


def create_api(runtime: Any) -> FastAPI:
    api = FastAPI(
        title="Architect API",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.runtime = runtime
    for module, attr in _ROUTERS:
        mod = optional_module(module)
        if mod is not None:
            api.include_router(getattr(mod, attr))

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
        return _error(422, f"{loc or 'request'}: {first['msg']}", "invalid_request_error", loc or None)

    @api.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @api.exception_handler(NotFoundInStore)
    async def _missing(_: Request, exc: NotFoundInStore) -> JSONResponse:
        return _error(404, str(exc), "not_found")

    @api.exception_handler(PlanError)
    async def _plan(_: Request, exc: PlanError) -> JSONResponse:
        return _error(400, str(exc), "invalid_request_error")

    @api.exception_handler(ArchitectError)
    async def _other(_: Request, exc: ArchitectError) -> JSONResponse:
        return _error(400, str(exc), "invalid_request_error")

    return api
