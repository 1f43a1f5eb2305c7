"""The HTTP application: the gateway's `/v1` handler in front of a Starlette app with health and
readiness, the REST API under `/api/v1`, the dashboard at `/ui` and Prometheus `/metrics`, all reading
one `Runtime`. Above the API and the dashboard in the layering (it mounts them); `architect serve`
runs what `create_app` returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from architect.errors import GatewayError
from architect.gateway.app import GatewayApp
from architect.metrics.prometheus import routes as metrics_routes
from architect.runtime import Runtime
from architect.web.routes import routes as dashboard_routes

__all__ = ["create_app"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when the store answers, else 503. The admin (and open mode) also get the ledger's queue,
    written, dropped and quarantined counts and every model group's breaker states; anyone else only
    the status, since deployments and traffic are fleet-wide facts."""
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, Any] = {}
    ok = True
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(runtime.store.ledger.calls_between, 0, 0, limit=1)
        checks["store"] = {
            "ok": True,
            "ms": round((time.perf_counter() - t0) * 1000, 2),
            "dialect": runtime.store.dialect,
        }
    except Exception as exc:
        ok = False
        checks["store"] = {"ok": False, "error": type(exc).__name__}
    status = {"status": "ok" if ok else "unavailable"}
    if not await _sees_fleet(runtime, request):  # for a load balancer: up or not, nothing about the fleet
        return JSONResponse({**status, "checks": {"store": {"ok": ok}}}, status_code=200 if ok else 503)
    checks["ledger"] = {
        "queue_depth": runtime.ledger.depth,
        "dropped": runtime.ledger.dropped,
        "written": runtime.ledger.written,
        "quarantined": runtime.ledger.quarantined,
    }
    groups = {}
    for name, g in runtime.router.groups.items():
        states = {d.name: d.breaker.state for d in g.deployments}
        available = any(s != "open" for s in states.values())
        groups[name] = {"available": available, "deployments": states}
    for name, g in runtime.router.groups.items():  # an auto group: available when a candidate is
        if g.config.strategy == "auto":
            cands = [c for c in g.config.candidates if c in groups]
            groups[name] = {"available": any(groups[c]["available"] for c in cands), "candidates": cands}
    checks["models"] = groups
    return JSONResponse({**status, "checks": checks}, status_code=200 if ok else 503)


async def _sees_fleet(runtime: Runtime, request: Request) -> bool:
    """Whether the caller may see fleet-wide state (deployments, breakers, the ledger queue): the admin
    key, or open mode's local operator. Anyone else, authenticated or not, gets only up or down."""
    try:
        principal = await runtime.auth.authenticate(request.headers.get("authorization"))
    except GatewayError:
        return False
    return principal.is_admin


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 (and other HTTP errors) outside /v1 in the API's error format, with the Allow header."""
    assert isinstance(exc, HTTPException)
    body = {
        "error": {
            "message": f"no such path: {request.url.path}" if exc.status_code == 404 else str(exc.detail),
            "type": "not_found" if exc.status_code == 404 else "invalid_request_error",
            "param": None,
            "code": "unknown_url" if exc.status_code == 404 else None,
        }
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class _BuiltOnFirstUse:
    """An ASGI app built on its first request, in a worker thread (the event loop keeps serving /v1
    meanwhile). For the /api/v1 app: FastAPI and every domain's router take ~10 MiB, which a gateway
    that never serves the API or the dashboard does not need."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            async with self._lock:
                if self._app is None:
                    self._app = await asyncio.to_thread(self._build)
        await self._app(scope, receive, send)


def _api(runtime: Runtime) -> ASGIApp:
    from architect.api import create_api  # FastAPI and the routers: on the first /api/v1 request

    return create_api(runtime)


def create_app(runtime: Runtime) -> GatewayApp:
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/api/v1", app=_BuiltOnFirstUse(lambda: _api(runtime))),
        *dashboard_routes(runtime),
        *metrics_routes(runtime.auth, runtime.prometheus),
    ]
    starlette = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    starlette.state.runtime = runtime
    return GatewayApp(runtime, starlette)
