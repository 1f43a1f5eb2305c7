"""Keys minted for task attempts, and what they spent.

Each attempt of an agent task gets a virtual key of its own: temporary (hidden from `keys list`
unless asked), never granted a scope (so never `tasks:execute`), tagged with the attempt's project,
feature, task, attempt and agent, with a `total` budget of the attempt's USD when it has one. The
feature's total budget is a budget of scope `feature` (calls tagged with the feature). Usage is read
back from the ledger by key id: that is how an attempt's models, tokens and cost are known. The key
carries the task's `route` settings (the task level of an `auto` route's settings), and the attempt's
outcome is recorded by key (`store.routing`): every call made with the key is judged by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from architect.access.keys import KeyService
from architect.store.ledger import LedgerRepo
from architect.store.routing import RoutingRepo

__all__ = ["AttemptKeys", "usage_of"]

ACTOR = "orchestrator"


def usage_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls, tokens, cost (priced calls), unpriced calls and models of a set of ledger rows."""
    models: list[str] = []
    for r in rows:
        m = r.get("model_group") or r.get("model")
        if m and m not in models:
            models.append(str(m))
    return {
        "calls": len(rows),
        "prompt_tokens": sum(int(r.get("prompt_tokens") or 0) for r in rows),
        "completion_tokens": sum(int(r.get("completion_tokens") or 0) for r in rows),
        "cost_usd": round(sum(float(r.get("cost_usd") or 0.0) for r in rows), 8),
        "unpriced": sum(1 for r in rows if r.get("cost_source") == "unknown"),
        "refused_budget": sum(1 for r in rows if r.get("error_kind") == "budget_exceeded"),
        "models": models,
    }


class AttemptKeys:
    """The orchestrator's `KeyMinter` over the access domain."""

    def __init__(
        self,
        keys: KeyService,
        ledger: LedgerRepo,
        *,
        routing: RoutingRepo | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`routing`: where attempts' outcomes go (None: they are not recorded)."""
        self.keys = keys
        self.ledger = ledger
        self.routing = routing
        self.clock = clock

    def mint(
        self,
        *,
        name: str,
        tags: Mapping[str, str],
        budget_usd: float | None,
        route: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        secret, view = self.keys.create(
            name=name, actor=ACTOR, tags=dict(tags), budget_usd=budget_usd, budget_period="total",
            temporary=True,
        )  # fmt: skip
        key_id = str(view["id"])
        if route:  # before the secret is handed out, so no call of the key goes without it
            self.keys.keys.update_key(key_id, {"route": dict(route)})
        return key_id, secret

    def judge(self, key_id: str, outcome: float, source: str, *, replace: bool = True) -> None:
        if self.routing is not None:
            self.routing.set_key_outcome(key_id, outcome, source, replace=replace)

    def revoke(self, key_id: str) -> None:
        self.keys.revoke(key_id, actor=ACTOR)

    def feature_budget(self, feature: str, usd: float) -> None:
        """The feature's total budget (scope `feature`, period `total`), set or changed."""
        self.keys.budgets.upsert_budget("feature", feature, "total", usd)

    def usage(self, key_id: str, since: float) -> dict[str, Any]:
        cols = [
            "model",
            "model_group",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "cost_source",
            "error_kind",
        ]
        rows = self.ledger.calls_between(
            since - 1.0, self.clock() + 60.0, columns=cols, where={"key_id": key_id}
        )
        return usage_of(rows)
