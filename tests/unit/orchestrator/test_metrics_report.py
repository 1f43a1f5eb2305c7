from __future__ import annotations

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.metrics import DAY, feature_metrics
from architect.orchestrator.plans import parse_yaml
from architect.orchestrator.report import _cost, build_report, render_markdown
from architect.records import CallRecord
from architect.store import Store, open_store
from architect.store.orchestrator import ClaimOptions

PLAN = """
project: shop
title: Metrics
phases:
  - title: One
    tasks:
      - {id: T001, title: a, command: "true", estimate: 1h}
      - {id: T002, title: b, command: "true", estimate: 30m}
  - title: Two
    tasks:
      - {id: T003, title: c, command: "true", after: [T001]}
      - {id: T004, title: d, command: "true", after: [T002]}
decisions:
  - {title: Use SQLite by default, date: "2025-01-02", rationale: simpler}
bugs:
  - {title: Rounding, severity: high, task: T001}
"""


class Clock:
    t = 10 * DAY

    def __call__(self) -> float:
        return self.t


def test_metrics_come_from_events_and_the_ledger() -> None:
    store = Store.memory()
    repo = store.tasks
    clock = Clock()
    m = Manager(repo, clock=clock, backoff_base_s=0)
    m.import_plans(parse_yaml(PLAN))
    batch = m.claim("w", 2, 60, ClaimOptions(run_id="r1"))
    clock.t += 100
    t1, t2 = sorted(batch, key=lambda t: t["key"])
    m.complete(t1, "w", ok=True, duration_s=1800)
    m.complete(t2, "w", ok=False, reason="x", duration_s=5)
    t2 = m.claim("w", 5, 60, ClaimOptions(run_id="r1"))
    assert sorted(t["key"] for t in t2) == ["T002", "T003"]
    clock.t += 100
    for t in t2:
        m.complete(t, "w", ok=True, duration_s=900)
    met = feature_metrics(repo, "metrics", now=clock.t)
    assert met["tasks_done"] == 3 and met["tasks_total"] == 4 and met["progress"] == 0.75
    assert met["first_try_success_rate"] == round(2 / 3, 4)  # T002 failed first
    assert met["rework_rate"] == round(1 / 3, 4)
    assert met["batches"] == 2 and met["batch_success_rate"] == 0.5
    # 3 done by workers in the 200 s since the first claim: the rate of that window, not of 3 days
    assert met["velocity_window_s"] == 200 and met["velocity_tasks"] == 3
    assert met["velocity_tasks_per_day"] == 3 / 200 * DAY
    assert met["forecast"]["basis"] == "throughput"
    assert met["estimated_completion"] == pytest.approx(clock.t + 200 / 3)  # 1 task left
    assert met["forecast"]["eta_low"] < met["estimated_completion"] < met["forecast"]["eta_high"]
    assert met["duration_vs_estimate"] == round((1800 + 900) / (3600 + 1800), 4)
    assert met["bugs"] == 1 and met["bug_rate"] == round(1 / 3, 4)
    assert met["model_calls"] == 0 and met["cost_usd"] == 0
    assert met["runs"][0]["attempts"] == 4 and met["runs"][0]["succeeded"] == 3
    md = render_markdown(build_report(repo, "metrics", now=clock.t))
    assert "- Velocity: 3 tasks finished by workers in the last 3 min (0.9 per minute)" in md
    assert "- Estimated completion: 1970-01-11 00:04:26 UTC (90% interval 1970-01-11 00:03:" in md
    assert "if the throughput of the last 3 min continues" in md


def test_report_sections_say_when_they_have_no_data() -> None:
    repo = Store.memory().tasks
    Manager(repo).import_plans(parse_yaml(PLAN))
    r = build_report(repo, "metrics")
    assert r["summary"]["by_status"] == {"ready": 2, "pending": 2}
    assert r["decisions"][0]["title"] == "Use SQLite by default"
    assert [x["task"] for x in r["current"]["next_ready"]] == ["T001", "T002"]
    md = render_markdown(r)
    assert "## Batch log\n\n_No data recorded._" in md
    assert "## Blockers\n\n_No data recorded._" in md
    assert "- Velocity: no data (no task claimed by a worker yet)" in md
    assert "- Estimated completion: not enough history yet (0 tasks finished by workers in the window" in md
    assert "**decision** Use SQLite by default" in md and "**bug** Rounding (severity: high" in md


def test_report_costs_say_how_many_calls_of_unknown_price_they_leave_out(sqlite_url: str) -> None:
    store = open_store(sqlite_url)  # the costs come from the ledger's table in the same database
    Manager(store.tasks).import_plans(parse_yaml(PLAN))
    base = {"endpoint": "chat", "model": "m", "project": "shop", "feature": "metrics", "task": "T001"}
    store.ledger.record(
        [
            CallRecord(request_id="a", ts=1.0, cost_usd=0.25, cost_source="config", **base),
            CallRecord(request_id="b", ts=2.0, cost_usd=0.0, cost_source="unknown", **base),
        ]
    )
    met = feature_metrics(store.tasks, "metrics")
    assert (met["model_calls"], met["cost_usd"], met["unpriced_calls"]) == (2, 0.25, 1)
    assert met["unpriced_by_task"] == {"T001": 1} and met["unpriced_by_phase"] == {1: 1}
    md = render_markdown(build_report(store.tasks, "metrics"))
    assert "- Model calls: 2; cost: $0.2500 (leaves out 1 calls of unknown price)" in md
    store.close()
    assert _cost(0.0, 1, 1) == "unknown"  # never $0.0000 when no call's price is known
