"""Budgets per key and per project, per day/month/total, in USD.

Before a call the pipeline reserves its worst-case cost on every budget that applies (the key's and
the project's); the store does it atomically (see `architect.store.budgets`), so gateways sharing a
store cannot reserve past a limit. The real cost is settled after the call in the background (a held
reservation is always at least the real cost, so settling late is safe). Crossing 50/80/100% of a
budget raises an alert once per budget window, across all processes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from architect.errors import BudgetExceeded
from architect.gateway.call import Call
from architect.money import usd
from architect.store.budgets import BudgetItem, BudgetRepo, period_start

__all__ = ["BudgetGuard", "Reservation", "describe_budget"]

log = logging.getLogger("architect.access")

THRESHOLDS = (50, 80, 100)
Notify = Callable[[dict[str, Any]], Awaitable[object]]  # the alerter's `emit`


@dataclass(frozen=True, slots=True)
class Reservation:
    items: tuple[BudgetItem, ...]
    amount: float
    ts: float


def describe_budget(b: dict[str, Any], key_names: dict[str, str] | None = None) -> str:
    target = b["target"]
    if b["scope"] == "key" and key_names and target in key_names:
        target = f"{key_names[target]} ({target})"
    per = "in total" if b["period"] == "total" else f"per {b['period']}"
    return f"{b['scope']} '{target}' budget of {usd(b['limit_usd'])} {per}"


class BudgetGuard:
    """The `Budgets` hook of the pipeline."""

    def __init__(self, repo: BudgetRepo, *, notify: Notify | None = None, refresh_s: float = 1.0) -> None:
        self.repo = repo
        self.notify = notify
        self.refresh_s = refresh_s
        self._budgets: list[dict[str, Any]] = []
        self._by_id: dict[int, dict[str, Any]] = {}
        self._loaded = 0.0
        self._loaded_at = 0.0  # wall-clock time of the last load, to compare with keys' creation
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        return bool(self._budgets)

    async def refresh(self) -> None:
        rows = await asyncio.to_thread(self.repo.list_budgets)
        self._budgets = rows
        self._by_id = {b["id"]: b for b in rows}
        self._loaded = time.monotonic()
        self._loaded_at = time.time()

    def applicable(self, call: Call) -> list[dict[str, Any]]:
        """The call's key budget, the budget of the project it is tagged with (the pipeline has
        checked that the key is granted that project, so a refusal names only budgets it may see) and
        the budget of the feature it is tagged with (a feature's total across its task attempts)."""
        p = call.principal
        project = call.tags.get("project")
        feature = call.tags.get("feature")
        return [
            b
            for b in self._budgets
            if (b["scope"] == "key" and p.key_id is not None and b["target"] == p.key_id)
            or (b["scope"] == "project" and project is not None and b["target"] == project)
            or (b["scope"] == "feature" and feature is not None and b["target"] == feature)
        ]

    def may_apply(self, call: Call) -> bool:
        created = call.principal.extra.get("created_at")
        return isinstance(created, float) and created >= self._loaded_at

    async def reserve(self, call: Call, worst_case_usd: float) -> None:
        if time.monotonic() - self._loaded > self.refresh_s or self.may_apply(call):
            await self.refresh()
        found = self.applicable(call)
        if not found:
            return
        now = time.time()
        items = tuple((b["id"], period_start(b["period"], now), float(b["limit_usd"])) for b in found)
        amount = max(0.0, worst_case_usd)
        refused = await asyncio.to_thread(self.repo.reserve, items, amount, now)
        if refused is not None:
            b = self._by_id[refused["budget_id"]]
            p = call.principal
            names = {p.key_id: p.name} if p.key_id and p.name else None
            left = max(0.0, refused["limit_usd"] - refused["spent_usd"] - refused["reserved_usd"])
            raise BudgetExceeded(
                f"budget exceeded: the {describe_budget(b, names)} (limit {usd(refused['limit_usd'])}) has "
                f"{usd(left)} left (spent {usd(refused['spent_usd'])}, held for calls in flight "
                f"{usd(refused['reserved_usd'])}); this call may cost up to {usd(amount)}",
                param="budget",
            )
        call.budget_reservation = Reservation(items, amount, now)

    async def settle(self, call: Call, actual_usd: float) -> None:
        r = call.budget_reservation
        if not isinstance(r, Reservation):
            return
        call.budget_reservation = None
        task = asyncio.get_running_loop().create_task(self._settle(r, max(0.0, actual_usd)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, r: Reservation, actual: float) -> None:
        try:
            states = await asyncio.to_thread(self.repo.settle, r.items, r.amount, actual, time.time())
            for st in states:
                await self._thresholds(st)
        except Exception:
            log.exception("budget settlement failed (the reservation stays held until it goes stale)")

    async def _thresholds(self, st: dict[str, Any]) -> None:
        limit = st["limit_usd"]
        if limit <= 0:
            return
        pct = 100.0 * st["spent_usd"] / limit
        crossed = [t for t in THRESHOLDS if pct >= t]
        if not crossed or crossed[-1] <= st["alerted_pct"]:
            return
        level = crossed[-1]
        if not await asyncio.to_thread(self.repo.mark_alerted, st["budget_id"], st["window_start"], level):
            return  # another process raised it
        b = self._by_id.get(st["budget_id"]) or {
            "scope": "budget",
            "target": str(st["budget_id"]),
            "period": "?",
            "limit_usd": limit,
        }
        event = {
            "rule": f"budget-{level}pct",
            "kind": "budget",
            "state": "firing",
            "target": f"{b['scope']}:{b['target']}:{b['period']}",
            "value": round(pct, 2),
            "message": f"{describe_budget(b)} reached {level}% (spent {usd(st['spent_usd'])})",
        }
        if self.notify is not None:
            await self.notify(event)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
