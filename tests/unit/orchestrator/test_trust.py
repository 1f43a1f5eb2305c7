"""The one definition of the task fields that run code, who may write them, and the allow-list."""

from __future__ import annotations

from architect.orchestrator.plans import parse_yaml
from architect.principal import ANONYMOUS, Principal
from architect.trust import (
    CommandPolicy,
    changed_feature_exec_fields,
    changed_prompt_fields,
    feature_patch_fields,
    may_execute,
    plan_task_fields,
    task_patch_fields,
    writer_for,
)

PLAN = """
title: F
phases:
  - tasks:
      - {id: T001, title: notes}
      - {id: T002, title: cmd, command: "make test", validator: "pytest -q"}
      - {id: T003, title: ask, description: d, executor: llm, params: {prompt: "Do {title}", model: m}}
      - {id: T004, title: note, params: {ticket: 7}}
"""


def test_the_fields_a_plan_writes() -> None:
    (plan,) = parse_yaml(PLAN)
    fields = {t["key"]: plan_task_fields(t) for t in plan["tasks"]}
    assert fields == {
        "T001": [],  # a manual task with nothing to run: any key of the project may write it
        "T002": ["params.command", "validator", "executor"],
        "T003": ["params.prompt", "params.model", "executor", "title", "description"],
        "T004": ["params.ticket"],  # every key of params counts, whatever the executor
    }


def test_the_fields_a_patch_writes() -> None:
    assert task_patch_fields("command", ["priority", "title", "estimate_h"], None) == []
    assert task_patch_fields("command", ["params"], {"command": "id"}) == ["params.command"]
    assert task_patch_fields("command", ["params"], {}) == ["params"]  # clearing them is writing them
    assert task_patch_fields("manual", ["validator"], None) == ["validator"]
    assert task_patch_fields("llm", ["title", "role", "priority"], None) == ["title", "role"]
    assert feature_patch_fields(["spec", "title"], {"command", "llm"}) == ["title", "spec"]
    assert feature_patch_fields(["spec"], {"command", "manual"}) == []
    old = {"title": "F", "spec": None, "acceptance": []}
    assert changed_prompt_fields(old, {"title": "F", "spec": None, "acceptance": []}) == []
    assert changed_prompt_fields(old, {"title": "F", "spec": "new", "acceptance": ["a"]}) == [
        "spec",
        "acceptance",
    ]


def test_who_may_write_them() -> None:
    key = Principal(kind="key", key_id="k1", name="ci")
    scoped = Principal(kind="key", key_id="k2", scopes=frozenset({"tasks:execute"}))
    assert may_execute(ANONYMOUS) and not may_execute(key) and may_execute(scoped)
    assert writer_for(key).actor == "key:k1 (ci)" and not writer_for(key).trusted


def test_the_allow_list_matches_whole_commands() -> None:
    policy = CommandPolicy.of([r"make \w+", r"pytest( -q)?"])
    task = {"executor": "command", "params": {"command": "make test"}, "validator": "pytest -q"}
    assert policy.refused(task) is None
    assert policy.refused({**task, "params": {"command": "make test; rm -rf ~"}}) == "make test; rm -rf ~"
    assert policy.refused({**task, "validator": "pytest -q && curl x"}) == "pytest -q && curl x"
    assert (
        policy.refused({"executor": "python", "params": {"callable": "m:f"}, "validator": "sh x"}) == "sh x"
    )
    assert CommandPolicy().refused({**task, "params": {"command": "anything"}}) is None


AGENT_PLAN = """
title: F
repo: /srv/x
phases:
  - tasks:
      - {id: T001, title: edit, description: d, agent: aider, budget_usd: 0.5}
      - {id: T002, title: default agent, executor: agent}
      - {id: T003, title: cmd, command: make, budget_usd: 0.1}
"""


def test_every_field_of_an_agent_task_runs_code() -> None:
    (plan,) = parse_yaml(AGENT_PLAN)
    fields = {t["key"]: plan_task_fields(t) for t in plan["tasks"]}
    assert fields == {
        "T001": ["executor", "agent", "budget_usd", "title", "description"],
        "T002": ["executor", "title"],
        "T003": ["params.command", "executor", "budget_usd"],  # a budget is spending: the scope too
    }
    # a patch of an agent task: every field it writes (priority and max_attempts included)
    assert task_patch_fields("agent", ["priority", "max_attempts", "title"], None) == [
        "title",
        "priority",
        "max_attempts",
    ]
    assert task_patch_fields("agent", ["params"], {"x": 1}) == ["params.x"]
    assert task_patch_fields("command", ["budget_usd", "priority"], None) == ["budget_usd"]
    assert task_patch_fields("manual", ["agent"], None) == ["agent"]


def test_a_features_agent_fields_run_code_whatever_its_tasks() -> None:
    assert feature_patch_fields(["validator", "total_budget_usd", "spec"], {"command"}) == [
        "total_budget_usd",
        "validator",
    ]
    assert feature_patch_fields(["repo", "spec"], {"agent"}) == ["repo", "spec"]
    (plan,) = parse_yaml(AGENT_PLAN)
    assert changed_feature_exec_fields(None, plan) == ["repo"]  # a new feature: what it sets
    stored = {"repo": "/srv/x", "base": None, "agent": None, "attempt_budget_usd": None, "base_sha": "ab"}
    assert changed_feature_exec_fields(stored, plan) == []
    assert changed_feature_exec_fields(stored, {**plan, "base": "dev", "validator": "pytest"}) == [
        "base",
        "validator",
    ]


def test_the_allow_list_checks_an_agent_tasks_validator_or_its_features() -> None:
    policy = CommandPolicy.of([r"pytest( -q)?"])
    agent = {"executor": "agent", "params": {}, "validator": None}
    assert policy.refused(agent) is None
    assert policy.refused(agent, {"validator": "pytest -q"}) is None
    assert policy.refused(agent, {"validator": "make check"}) == "make check"
    assert (
        policy.refused({**agent, "validator": "pytest"}, {"validator": "make check"}) is None
    )  # its own wins
    assert policy.refused({"executor": "manual", "validator": None}, {"validator": "make check"}) is None
