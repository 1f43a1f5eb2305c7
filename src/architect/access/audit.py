"""Who did an admin action from the command line: the name recorded in the audit log for a local CLI
user (a principal's is `architect.principal.actor_of`)."""

from __future__ import annotations

import getpass

__all__ = ["local_actor"]


def local_actor() -> str:
    """The OS user running a CLI command against the store directly."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"cli:{user}"
