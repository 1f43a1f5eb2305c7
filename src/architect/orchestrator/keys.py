"""What the orchestrator needs of virtual keys: a key per task attempt (with the task's route
settings), what it spent, and the attempt's outcome (which the `auto` route learns from: every call
made with the key is judged by it).

`access.attempt_keys.AttemptKeys` implements it; the CLI that builds a worker wires it (the
orchestrator never imports the access domain)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["KeyMinter", "MintedKey"]


@dataclass(frozen=True, slots=True)
class MintedKey:
    id: str
    secret: str


class KeyMinter(Protocol):
    def mint(
        self,
        *,
        name: str,
        tags: Mapping[str, str],
        budget_usd: float | None,
        route: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        """A temporary key with these tags, a total USD budget and the task's route settings (the
        `route` of the key): (key id, secret)."""

    def revoke(self, key_id: str) -> None: ...
    def feature_budget(self, feature: str, usd: float) -> None: ...
    def usage(self, key_id: str, since: float) -> dict[str, Any]:
        """calls, prompt_tokens, completion_tokens, cost_usd, unpriced, refused_budget, models."""

    def judge(self, key_id: str, outcome: float, source: str, *, replace: bool = True) -> None:
        """The outcome (0..1) of the attempt that used the key (`source`: "task" from its validator,
        "escalation" for an earlier attempt of a task that a later one did); without `replace` a key
        already judged keeps its outcome."""
