"""Who is calling, as every layer sees it: the `Principal` (the admin, a virtual key, or the anonymous
local operator of open mode), the scopes a key may be granted, and the name the audit log records
for a principal. A leaf module: the gateway's per-call state, the access domain that resolves keys
and the orchestrator's trust rules all read it without importing one another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["ADMIN", "ANONYMOUS", "SCOPES", "TASKS_EXECUTE", "Principal", "Scope", "actor_of"]

# Scopes a virtual key may be granted on top of its ordinary rights.
Scope = Literal["tasks:execute"]
TASKS_EXECUTE: Final[Scope] = "tasks:execute"  # may write the fields of a task that run code
SCOPES: Final[tuple[Scope, ...]] = (TASKS_EXECUTE,)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "admin" | "key" | "anonymous"
    key_id: str | None = None
    name: str | None = None
    models: frozenset[str] | None = None  # allowed model groups; None = all
    tags: Mapping[str, str] = field(default_factory=dict)  # default tags added to every call
    projects: frozenset[str] | None = None  # projects it is granted (may tag and see); None = all
    scopes: frozenset[str] = frozenset()  # granted scopes (SCOPES); the admin needs none
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.kind in ("admin", "anonymous")


ANONYMOUS = Principal(kind="anonymous")
ADMIN = Principal(kind="admin", key_id="admin", name="admin")


def actor_of(principal: Principal) -> str:
    """The name the audit log records for an action of `principal`."""
    if principal.kind == "admin":
        return "admin-key"
    if principal.kind == "anonymous":
        return "anonymous (loopback, no admin key configured)"
    return f"key:{principal.key_id}" + (f" ({principal.name})" if principal.name else "")
