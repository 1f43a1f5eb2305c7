"""A task's `route` (the route settings of its attempts' keys) and the outcomes attempts record for the
auto route: the plan field in YAML and Markdown front matter, refused naming the field, kept by the
store and round-tripped by both exports, executable (written only by who may); the agent executor
mints the attempt's key with it and judges the key by the validator's verdict, and a success judges
the task's earlier attempts without a verdict as 0 (escalation)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from architect.config_agents import BUILTIN
from architect.errors import PlanError
from architect.orchestrator.executors.agent import AgentExecutor
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import export_markdown, export_yaml, parse_markdown, parse_yaml
from architect.store.orchestrator import SQLiteMemoryTaskRepo
from architect.trust import plan_task_fields, task_patch_fields

ROUTE = {"quality_target": 0.9, "privacy": "local-only"}
YAML = """
project: shop
title: Checkout
repo: /srv/shop
phases:
  - tasks:
      - {id: T1, title: Cart, agent: builtin, route: {quality_target: 0.9, privacy: local-only}}
      - {id: T2, title: Price, agent: builtin, route: {cost_weight: 0.3}}
      - {id: T3, title: Plain, agent: builtin}
"""
MD = """---
repo: /srv/shop
tasks:
  T1: {route: {quality_target: 0.9, privacy: local-only}}
---
# Feature: Checkout
## Phase 1: Backend
- [ ] T1 Cart `@`
- [ ] T2 Price `@`
"""


def _routes(plan: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["route"] for t in plan["tasks"]}


def test_yaml_and_front_matter_take_a_tasks_route() -> None:
    assert _routes(parse_yaml(YAML)[0]) == {"T1": ROUTE, "T2": {"cost_weight": 0.3}, "T3": None}
    assert _routes(parse_markdown(MD)[0]) == {"T1": ROUTE, "T2": None}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "quality_target: 0.9, privacy",
            "quality_target: 1.5, privacy",
            r"tasks\[0\]\.route\.quality_target: must be < 1",
        ),
        ("{cost_weight: 0.3}", "{cost_weight: -1}", r"tasks\[1\]\.route\.cost_weight: must be >= 0"),
        ("privacy: local-only", "privacy: cloud", r"tasks\[0\]\.route\.privacy"),
        ("{cost_weight: 0.3}", "{}", r"tasks\[1\]\.route: give quality_target, cost_weight or privacy"),
        ("{cost_weight: 0.3}", "{quality: 0.3}", r"tasks\[1\]\.route\.quality"),
    ],
)
def test_a_bad_route_is_refused_naming_the_field(old: str, new: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_yaml(YAML.replace(old, new))


@pytest.mark.parametrize("source", ["yaml", "md"])
def test_the_store_keeps_it_and_both_exports_round_trip_it(source: str) -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo, check_repos=lambda plans: None)
    plan = (parse_yaml(YAML) if source == "yaml" else parse_markdown(MD))[0]
    fid = m.import_plans([plan])[0]["feature"]["id"]
    f, ph, ts = repo.get_feature(fid), repo.phases(fid), repo.tasks(fid)
    assert {t["key"]: t["route"] for t in ts} == _routes(plan)
    assert _routes(parse_yaml(export_yaml(f, ph, ts))[0]) == _routes(plan)
    assert _routes(parse_markdown(export_markdown(f, ph, ts))[0]) == _routes(plan)


def test_route_is_an_executable_field() -> None:
    (plan,) = parse_yaml(YAML)
    assert "route" in plan_task_fields(plan["tasks"][0])
    assert task_patch_fields("command", ["route"], None) == ["route"]


class _Minter:
    def __init__(self, fail: bool = False) -> None:
        self.judged: list[tuple[str, float, str, bool]] = []
        self.minted: list[dict[str, Any]] = []
        self.fail = fail

    def mint(self, **kw: Any) -> tuple[str, str]:
        self.minted.append(kw)
        return "key-new", "secret"

    def revoke(self, key_id: str) -> None: ...
    def feature_budget(self, feature: str, usd: float) -> None: ...
    def usage(self, key_id: str, since: float) -> dict[str, Any]:
        return {}

    def judge(self, key_id: str, outcome: float, source: str, *, replace: bool = True) -> None:
        if self.fail:
            raise RuntimeError("store down")
        self.judged.append((key_id, outcome, source, replace))


class _Attempts(SQLiteMemoryTaskRepo):
    def attempts(self, task_id: int | None = None, *, feature_id: int | None = None) -> list[dict[str, Any]]:
        return [
            {"attempt": 1, "key_id": "key-1"},
            {"attempt": 2, "key_id": None},
            {"attempt": 3, "key_id": "key-3"},
        ]


def _executor(minter: _Minter) -> AgentExecutor:
    return AgentExecutor(_Attempts(), {}, minter, "http://127.0.0.1:9")


def test_the_attempts_key_carries_the_tasks_route() -> None:
    minter = _Minter()
    ex = _executor(minter)
    feature = {"project": "shop", "slug": "checkout", "attempt_budget_usd": None}
    ex._mint({"key": "T1", "route": ROUTE}, feature, BUILTIN, 1)
    ex._mint({"key": "T2", "route": None}, feature, BUILTIN, 1)
    assert [m["route"] for m in minter.minted] == [ROUTE, None]


def test_the_validator_judges_the_key_and_a_success_judges_earlier_attempts() -> None:
    minter = _Minter()
    ex = _executor(minter)
    t = {"id": 1, "key": "T1"}
    asyncio.run(ex._judge(t, 3, "key-3", {"outcome": "validation_failed", "validation": {"ok": False}}))
    assert minter.judged == [("key-3", 0.0, "task", True)]
    minter.judged.clear()
    asyncio.run(ex._judge(t, 4, "key-4", {"outcome": "succeeded", "validation": {"ok": True}}))
    assert minter.judged == [
        ("key-4", 1.0, "task", True), ("key-1", 0.0, "escalation", False), ("key-3", 0.0, "escalation", False)
    ]  # fmt: skip
    minter.judged.clear()
    asyncio.run(ex._judge(t, 1, "key-1", {"outcome": "no_changes"}))  # no verdict, no success: nothing
    assert minter.judged == []
    failing = _Minter(fail=True)
    asyncio.run(_executor(failing)._judge(t, 4, "k", {"outcome": "succeeded", "validation": {"ok": True}}))


async def test_a_command_tasks_key_carries_its_route_and_its_validator_judges_it() -> None:
    from architect.orchestrator.executors import CommandExecutor
    from architect.orchestrator.worker import TaskKeys, Worker, WorkerOptions

    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(parse_yaml("""
title: Cmd
phases:
  - tasks:
      - {id: T1, title: ok, command: "true", validator: "true", route: {privacy: local-only}}
      - {id: T2, title: red, command: "true", validator: "false", max_attempts: 1}
      - {id: T3, title: none, command: "true"}
"""))  # fmt: skip
    minter = _Minter()
    keys = iter(["k1", "k2", "k3"])
    minter.mint = lambda **kw: (minter.minted.append(kw), (next(keys), "s"))[1]  # type: ignore[method-assign]
    w = Worker(m, {"command": CommandExecutor()}, WorkerOptions(slots=1, poll_s=0.02, exit_when_idle=True),
               keys=TaskKeys("http://127.0.0.1:9", minter))  # fmt: skip
    await asyncio.wait_for(w.run(), 20)
    routes = {kw["tags"]["task"]: kw["route"] for kw in minter.minted}
    assert routes == {"T1": {"privacy": "local-only"}, "T2": None, "T3": None}
    by_task = {kw["tags"]["task"]: k for kw, k in zip(minter.minted, ["k1", "k2", "k3"], strict=True)}
    assert sorted(minter.judged) == sorted(
        [(by_task["T1"], 1.0, "task", True), (by_task["T2"], 0.0, "task", True)]
    )
