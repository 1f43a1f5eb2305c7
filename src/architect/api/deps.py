"""FastAPI dependencies: the runtime, the calling principal, admin-only guards."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from architect.errors import PermissionDenied
from architect.principal import Principal
from architect.runtime import Runtime

__all__ = ["AdminDep", "PrincipalDep", "RuntimeDep", "admin_only", "get_principal", "get_runtime"]


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_principal(request: Request) -> Principal:
    return await get_runtime(request).auth.authenticate(request.headers.get("authorization"), request.cookies)


async def admin_only(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("this endpoint needs the admin key", code="admin_required")
    return principal


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(admin_only)]
