"""The one definition of the task fields that run code, who may write them, and the allow-list."""

from __future__ import annotations

from architect.orchestrator.plans import parse_yaml
from architect.principal import ANONYMOUS, Principal
from architect.trust import (
    CommandPolicy,
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
