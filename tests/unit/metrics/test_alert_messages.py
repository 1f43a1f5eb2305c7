"""The messages alert rules write: a budget's limit under a cent keeps its significant digits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from architect.config import parse_config
from architect.events import EventBus
from architect.metrics.alerts import Alerter
from architect.store import Store


async def test_a_budget_rule_names_a_limit_under_a_cent_by_its_digits() -> None:
    budget: dict[str, Any] = {
        "scope": "key",
        "target": "k1",
        "period": "day",
        "limit_usd": 0.002,
        "spent_usd": 0.0019,
    }
    cfg = parse_config({"alerts": [{"name": "b80", "kind": "budget", "threshold": 0.8}]}, env={})
    store = Store.memory()
    runtime = SimpleNamespace(
        config=cfg,
        store=SimpleNamespace(alerts=store.alerts, budgets=SimpleNamespace(list_budgets=lambda: [budget])),
        events=EventBus(),
    )
    try:
        await Alerter(runtime).evaluate()  # type: ignore[arg-type]
        (event,) = store.alerts.list_alert_events()
    finally:
        store.close()
    assert event["state"] == "firing"
    assert event["message"] == "key 'k1' day budget at 95.0% of $0.002 (threshold 80%)"
