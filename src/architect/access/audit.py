"""Who did an admin action: the name recorded in the audit log for a principal or a local CLI user."""

from __future__ import annotations

import getpass

from architect.access.auth import Principal

__all__ = ["actor_of", "local_actor"]


def actor_of(principal: Principal) -> str:
    if principal.kind == "admin":
        return "admin-key"
    if principal.kind == "anonymous":
        return "anonymous (loopback, no admin key configured)"
    return f"key:{principal.key_id}" + (f" ({principal.name})" if principal.name else "")


def local_actor() -> str:
    """The OS user running a CLI command against the store directly."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"cli:{user}"
