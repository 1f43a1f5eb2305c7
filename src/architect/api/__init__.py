"""The REST API under /api/v1 (FastAPI, OpenAPI spec at /api/v1/openapi.json).

One router per domain (`core`, `orchestrator`, `access`, `metrics`, `cache`, `routing`); `create_api` mounts them. Authentication is the
`principal`/`admin_only` dependencies in `architect.api.deps`; parameter types shared by every router
are in `architect.api.params`; errors are rendered by `architect.api.errors` and documented in the
spec by `architect.api.spec`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from architect.api import access, cache, core, metrics, orchestrator, routing
from architect.api.errors import install_handlers
from architect.api.guard import ParamGuard
from architect.api.spec import build_openapi
from architect.runtime import Runtime

__all__ = ["create_api"]

_ROUTERS = (core.router, orchestrator.router, access.router, metrics.router, cache.router, routing.router)


def create_api(runtime: Runtime) -> FastAPI:
    api = FastAPI(
        title="Architect API",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.runtime = runtime
    routes: list[APIRoute] = []
    for router in _ROUTERS:
        api.include_router(router)
        routes.extend(r for r in router.routes if isinstance(r, APIRoute))
    api.state.api_routes = routes  # for the Allow header of a 405
    install_handlers(api)
    api.add_middleware(ParamGuard)
    api.openapi = lambda: build_openapi(api, routes)  # type: ignore[method-assign]
    return api
