"""What the orchestrator needs of virtual keys: a key per task attempt and what it spent.

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
    def mint(self, *, name: str, tags: Mapping[str, str], budget_usd: float | None) -> tuple[str, str]:
        """A temporary key with these tags and a total USD budget: (key id, secret)."""

    def revoke(self, key_id: str) -> None: ...
    def feature_budget(self, feature: str, usd: float) -> None: ...
    def usage(self, key_id: str, since: float) -> dict[str, Any]:
        """calls, prompt_tokens, completion_tokens, cost_usd, unpriced, refused_budget, models."""
