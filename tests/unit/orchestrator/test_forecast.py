"""The completion forecast: velocity over the window actually observed, an estimate with an interval
from the observed throughput, or a plain "not enough history yet". Times are injected."""

from __future__ import annotations

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.metrics import (
    CONFIDENCE,
    DAY,
    MIN_COMPLETIONS,
    WINDOW_S,
    compute_metrics,
    feature_metrics,
    forecast,
)
from architect.orchestrator.plans import parse_markdown, parse_yaml
from architect.orchestrator.report import build_report, render_markdown
from architect.store import Store
from architect.store.orchestrator import ClaimOptions

NOW = 100 * DAY


def _feature(n_tasks: int, finished: list[float], first_claim: float) -> dict[str, object]:
    """compute_metrics over a one-phase feature whose first tasks were finished at the given times."""
    tasks = [
        {"key": f"T{i}", "phase": 1, "status": "succeeded" if i < len(finished) else "ready"}
        for i in range(n_tasks)
    ]
    events = [{"task_key": "T0", "kind": "claimed", "attempt": 1, "ts": first_claim, "data": {"batch": "b"}}]
    events += [
        {"task_key": f"T{i}", "kind": "succeeded", "attempt": 1, "ts": ts, "data": {"duration_s": 1.0}}
        for i, ts in enumerate(finished)
    ]
    return compute_metrics({"slug": "f"}, [{"number": 1, "title": "P"}], tasks, events, now=NOW)


def test_a_feature_ten_seconds_old_with_one_task_done_has_no_estimate_yet() -> None:
    m = _feature(10, [NOW - 9], first_claim=NOW - 10)
    assert m["velocity_window_s"] == 10 and m["velocity_tasks"] == 1  # the window it was measured over
    assert m["velocity_tasks_per_day"] == DAY / 10
    assert m["estimated_completion"] is None
    assert m["forecast"]["basis"] == "not_enough_history" and m["forecast"]["remaining"] == 9


def test_a_young_feature_of_one_second_tasks_is_estimated_in_seconds_not_days() -> None:
    # 3 tasks of about a second each, the feature 10 s old, 1 task left
    m = _feature(4, [NOW - 8, NOW - 6, NOW - 4], first_claim=NOW - 10)
    f = m["forecast"]
    assert f["basis"] == "throughput" and f["completed"] == 3 and f["window_s"] == 10
    assert m["estimated_completion"] == pytest.approx(NOW + 10 / 3)
    assert NOW < f["eta_low"] < m["estimated_completion"] < f["eta_high"] < NOW + 60


def test_an_old_feature_is_estimated_from_the_last_three_days_with_an_interval() -> None:
    # one task every 12 hours for 20 days: 6 in the last 3 days (2/day), 10 left
    finished = [NOW - i * DAY / 2 for i in range(40, 0, -1)]
    f = forecast(finished, first_claim=NOW - 21 * DAY, remaining=10, total=50, now=NOW)
    assert f.window_s == WINDOW_S and f.completed == 6 and f.tasks_per_day == 2.0
    assert f.basis == "throughput" and f.eta == pytest.approx(NOW + 5 * DAY)
    # Garwood's 90% bounds for 6 events: rate in [chi2(0.05, 12), chi2(0.95, 14)] / 2 / window
    low_rate, high_rate = 5.226 / 2 / WINDOW_S, 23.685 / 2 / WINDOW_S
    assert CONFIDENCE == 0.9
    assert f.eta_low == pytest.approx(NOW + 10 / high_rate, rel=0.01)
    assert f.eta_high == pytest.approx(NOW + 10 / low_rate, rel=0.01)


def test_an_old_feature_with_no_recent_completions_says_so() -> None:
    f = forecast([NOW - 10 * DAY] * 5, first_claim=NOW - 20 * DAY, remaining=3, total=8, now=NOW)
    assert f.completed == 0 and f.tasks_per_day == 0.0 and f.window_s == WINDOW_S
    assert f.basis == "not_enough_history" and f.eta is None


def test_before_any_claim_and_when_done() -> None:
    f = forecast([], first_claim=None, remaining=4, total=4, now=NOW)
    assert (f.basis, f.window_s, f.tasks_per_day, f.eta) == ("not_enough_history", None, None, None)
    done = forecast([NOW - 5, NOW - 3, NOW - 1], NOW - 10, remaining=0, total=3, now=NOW, last_done=NOW - 1)
    assert done.basis == "done" and done.eta == NOW - 1
    assert forecast([], None, 0, 0, NOW).basis == "no_tasks"
    assert MIN_COMPLETIONS == 3


HAND = "# Feature: Hand\n## Phase 1: A\n" + "".join(f"- [ ] T00{i} t{i}\n" for i in range(1, 6))


def _manager(clock: list[float]) -> Manager:
    return Manager(Store.memory().tasks, clock=lambda: clock[0], backoff_base_s=0)


def test_tasks_ticked_by_hand_are_not_worker_throughput_and_give_no_estimate() -> None:
    clock = [NOW]
    m = _manager(clock)
    m.import_plans(parse_markdown(HAND))
    for key in ("T001", "T002", "T003"):
        clock[0] += 1
        m.finish_manual("hand", key)
    met = feature_metrics(m.repo, "hand", now=clock[0] + 1)
    assert met["tasks_done"] == 3  # progress counts them
    assert met["velocity_window_s"] is None and met["velocity_tasks"] == 0  # no worker ever claimed
    f = met["forecast"]
    assert f["basis"] == "needs_attention" and f["remaining"] == 0 and f["eta"] is None
    assert f["attention"] == {"manual": 2}
    md = render_markdown(build_report(m.repo, "hand", now=clock[0] + 1))
    assert "- Velocity: no data (no task claimed by a worker yet)" in md
    assert (
        "- Estimated completion: none: no task left that workers can run; "
        "2 tasks need attention: 2 manual (waiting for a person)" in md
    )


STUCK = """
title: Stuck
phases:
  - title: A
    tasks:
      - {id: T001, title: a, command: "true"}
      - {id: T002, title: b, command: "true"}
      - {id: T003, title: c, command: "true"}
      - {id: T004, title: d, command: "false", max_attempts: 1}
      - {id: T005, title: e, command: "true", after: [T004]}
      - {id: T006, title: f, command: "true"}
      - {id: T007, title: g}
      - {id: T008, title: h, command: "true", after: [T007]}
"""


def test_the_estimate_counts_only_work_workers_can_do_and_says_what_needs_attention() -> None:
    clock = [NOW]
    m = _manager(clock)
    m.import_plans(parse_yaml(STUCK))
    for t in m.claim("w", 4, 60, ClaimOptions()):  # T001..T004; T004 fails for good
        clock[0] += 10
        m.complete(t, "w", ok=t["key"] != "T004", duration_s=10)
    met = feature_metrics(m.repo, "stuck", now=clock[0])
    f = met["forecast"]
    # T006 is left for workers; T004 failed, T005 blocked, T007 manual, T008 waits on T007
    assert f["remaining"] == 1 and f["basis"] == "throughput" and f["completed"] == 3
    assert f["attention"] == {"failed": 1, "blocked": 1, "manual": 1, "waiting_on_them": 1}
    md = render_markdown(build_report(m.repo, "stuck", now=clock[0]))
    assert "for the 1 task workers can run if the throughput of the last 40 s continues; " in md
    assert (
        "4 tasks need attention: 1 failed, 1 blocked, 1 manual (waiting for a person), 1 waiting on those"
        in md
    )
    # once T006 is done nothing is left that workers can run: no estimate, and why
    [t6] = m.claim("w", 4, 60, ClaimOptions(exclude_executors=("manual",)))
    m.complete(t6, "w", ok=True)
    f = feature_metrics(m.repo, "stuck", now=clock[0])["forecast"]
    assert (f["basis"], f["remaining"], f["eta"]) == ("needs_attention", 0, None)


def test_forecast_without_work_for_workers_is_not_done_while_tasks_need_attention() -> None:
    f = forecast([NOW - 3, NOW - 2, NOW - 1], NOW - 10, remaining=0, total=5, now=NOW,
                 attention={"failed": 1, "blocked": 1})  # fmt: skip
    assert f.basis == "needs_attention" and f.eta is None and f.attention == {"failed": 1, "blocked": 1}
