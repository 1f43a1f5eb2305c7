"""Readiness and blocking, computed from a feature's tasks (pure functions, no I/O).

A task is `ready` when every dependency succeeded, `blocked` when a dependency failed, was
cancelled or is itself blocked (the reason names the whole chain), and `pending` otherwise. A task a
worker blocked for a reason of its own (`trust.HOLD_REASONS`: untrusted executable fields, a command
outside the allow-list) stays blocked until a person acts (`plan approve`, `retry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from architect.trust import HOLD_REASONS

__all__ = ["blocked_reason", "compute_readiness"]

_OPEN = ("pending", "ready", "blocked")


def blocked_reason(dep_key: str, dep_status: str, dep_reason: str | None) -> str:
    """`blocked by T003 (failed)`; through a blocked task: `blocked by T005 ← T003 (failed)`."""
    if dep_status == "blocked" and dep_reason:
        return f"blocked by {dep_key} ← {dep_reason.removeprefix('blocked by ')}"
    return f"blocked by {dep_key} ({dep_status})"


def compute_readiness(
    rows: Sequence[dict[str, Any]], now: float
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (task, changed fields) pairs that bring open tasks to their correct state."""
    by_key = {t["key"]: t for t in rows}
    state: dict[str, tuple[str, str | None]] = {
        t["key"]: (t["status"], t.get("reason"))
        for t in rows
        if t["status"] not in _OPEN or (t["status"] == "blocked" and t.get("reason") in HOLD_REASONS)
    }
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    visiting: set[str] = set()

    def resolve(key: str) -> tuple[str, str | None]:
        if key in state:
            return state[key]
        t = by_key.get(key)
        if t is None or key in visiting:  # unknown or cyclic: never satisfied (plans refuse both)
            return ("pending", None)
        visiting.add(key)
        deps = list(t.get("deps") or [])
        resolved = [(d, *resolve(d)) for d in deps]
        visiting.discard(key)
        unmet = sum(1 for _, s, _ in resolved if s != "succeeded")
        bad = next(((d, s, r) for d, s, r in resolved if s in ("failed", "cancelled", "blocked")), None)
        changes: dict[str, Any] = {}
        if bad is not None:
            status, reason = "blocked", blocked_reason(*bad)
        elif unmet == 0:
            status, reason = "ready", None
            if t["status"] != "ready":
                changes.update(ready_at=now, run_after=now)
        else:
            status, reason = "pending", None
        if status != t["status"]:
            changes["status"] = status
        if reason != t.get("reason"):
            changes["reason"] = reason
        if unmet != t.get("pending_deps"):
            changes["pending_deps"] = unmet
        if changes:
            out.append((t, changes))
        state[key] = (status, reason)
        return state[key]

    for t in rows:
        resolve(t["key"])
    return out
