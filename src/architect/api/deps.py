"""FastAPI dependencies: the runtime, the calling principal, admin-only guards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from architect.errors import PermissionDenied
from architect.principal import Principal

__all__ = ["AdminDep", "PrincipalDep", "RuntimeDep", "admin_only", "get_principal", "get_runtime"]


def get_runtime(request: Request) -> Any:
    return request.app.state.runtime


async def get_principal(request: Request) -> Principal:
    runtime = request.app.state.runtime
    principal: Principal = await runtime.auth.authenticate(
        request.headers.get("authorization"), request.cookies
    )
    return principal


async def admin_only(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("this endpoint needs the admin key", code="admin_required")
    return principal


RuntimeDep = Annotated[Any, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(admin_only)]
