"""Plans of agent tasks: the feature-level fields (repo, base, agent, budgets, validator) in YAML and
in Markdown front matter, `@agent` task lines, errors naming the field, agent names checked against
a configuration, and export round trips of all of it through the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from architect.errors import PlanError
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import (
    check_agent_names,
    export_markdown,
    export_yaml,
    load_plan_file,
    parse_markdown,
    parse_plan_text,
    parse_yaml,
)
from architect.store.orchestrator import SQLiteMemoryTaskRepo

YAML = """
project: shop
title: Checkout
repo: /srv/shop
base: main
agent: aider
budget_usd: {attempt: 0.5, total: 5}
validator: pytest -q
phases:
  - title: Backend
    tasks:
      - {id: T1, title: Cart schema, agent: builtin, budget_usd: 0.25}
      - {id: T2, title: Pricing, executor: agent, after: T1, validator: "pytest -q tests/pricing", max_attempts: 5}
      - {id: T3, title: Smoke, command: make smoke, after: T2}
      - {id: T4, title: Review}
"""

MD = """---
repo: /srv/shop
base: main
agent: aider
budget_usd: 0.5
validator: pytest -q
acceptance: [carts persist]
tasks:
  T2: {budget_usd: 1.5, max_attempts: 5}
---
# Feature: Checkout
Let people pay.

## Phase 1: Backend
- [ ] T1 Cart schema `@builtin`
  Tables for carts.
- [ ] T2 Pricing (after T1) `@`
- [ ] T3 Smoke (after T2) `$ make smoke`
- [x] T4 Review
"""


def _tasks(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in plan["tasks"]}


def test_yaml_takes_the_feature_and_task_agent_fields() -> None:
    (plan,) = parse_yaml(YAML)
    assert (plan["repo"], plan["base"], plan["agent"], plan["validator"]) == (
        "/srv/shop",
        "main",
        "aider",
        "pytest -q",
    )
    assert (plan["attempt_budget_usd"], plan["total_budget_usd"]) == (0.5, 5.0)
    t = _tasks(plan)
    assert (t["T1"]["executor"], t["T1"]["agent"], t["T1"]["budget_usd"]) == ("agent", "builtin", 0.25)
    assert (t["T2"]["executor"], t["T2"]["agent"], t["T2"]["max_attempts"]) == (
        "agent",
        None,
        5,
    )  # the default
    assert (t["T3"]["executor"], t["T3"]["agent"]) == ("command", None)
    assert t["T4"]["executor"] == "manual"


def test_a_number_budget_is_per_attempt() -> None:
    (plan,) = parse_yaml(YAML.replace("budget_usd: {attempt: 0.5, total: 5}", "budget_usd: 0.75"))
    assert (plan["attempt_budget_usd"], plan["total_budget_usd"]) == (0.75, None)
    (plan,) = parse_yaml(YAML.replace("budget_usd: {attempt: 0.5, total: 5}", "budget_usd: {total: 9}"))
    assert (plan["attempt_budget_usd"], plan["total_budget_usd"]) == (None, 9.0)


def test_markdown_front_matter_and_agent_lines() -> None:
    (plan,) = parse_markdown(MD)
    assert (plan["repo"], plan["base"], plan["agent"], plan["validator"]) == (
        "/srv/shop",
        "main",
        "aider",
        "pytest -q",
    )
    assert (plan["attempt_budget_usd"], plan["total_budget_usd"], plan["acceptance"]) == (
        0.5,
        None,
        ["carts persist"],
    )
    assert plan["spec"] == "Let people pay." and plan["title"] == "Checkout"
    t = _tasks(plan)
    assert (t["T1"]["executor"], t["T1"]["agent"], t["T1"]["description"]) == (
        "agent",
        "builtin",
        "Tables for carts.",
    )
    assert (t["T2"]["executor"], t["T2"]["agent"], t["T2"]["deps"]) == ("agent", None, ["T1"])
    assert (t["T2"]["budget_usd"], t["T2"]["max_attempts"]) == (1.5, 5)
    assert t["T3"]["params"] == {"command": "make smoke"} and t["T4"]["done"] is True


def test_markdown_without_front_matter_is_unchanged() -> None:
    (plan,) = parse_markdown(MD.split("---\n", 2)[2].replace("`@builtin`", "").replace("`@`", ""))
    assert plan["repo"] is None and plan["agent"] is None
    assert {t["executor"] for t in plan["tasks"]} == {"manual", "command"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (YAML.replace("total: 5", "total: 0"), r"features\[0\]\.budget_usd\.total: must be > 0"),
        (YAML.replace("budget_usd: 0.25", "budget_usd: -1"), r"tasks\[0\]\.budget_usd: must be > 0"),
        (YAML.replace("budget_usd: {attempt: 0.5, total: 5}", "budget_usd: {}"), r"budget_usd: give attempt, total"),
        (YAML.replace("repo: /srv/shop\nbase: main\n", ""), r"repo: agent tasks \(T1, T2\) need the feature's repo"),
        (YAML.replace("repo: /srv/shop\n", "").replace("agent: builtin, ", "").replace("executor: agent, ", ""),
         r"base: a base needs the feature's repo"),
        (YAML.replace("base: main", "base: --output=x"), r"features\[0\]\.base: must be a branch"),
        (YAML.replace("agent: builtin", "agent: 'bad name'"), r"tasks\[0\]\.agent: String should match"),
        (YAML.replace("command: make smoke", "command: make smoke, agent: aider"),
         r"tasks\[2\]: command: an agent task runs its agent, not a command"),
        (YAML.replace("{id: T4, title: Review}", "{id: T4, title: Review, executor: command, agent: x}"),
         r"agent: only an agent task names an agent \(executor is 'command'\)"),
    ],
)  # fmt: skip
def test_bad_agent_fields_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_yaml(text)


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("---\nrepo: [1\n---\n", r"<markdown>:2: front matter: not valid YAML"),
        ("---\n- a\n---\n", r"front matter: expected a mapping of fields, got list"),
        ("---\nrepository: /x\n---\n", r"front matter: repository: unknown field"),
        ("---\nrepo: /x\n", r"front matter: no closing '---' line"),
        ("---\nrepo: /x\ntasks: {T9: {budget_usd: 1}}\n---\n", r"front matter: tasks\.T9: no such task"),
        (
            "---\nrepo: /x\ntasks: {T1: {title: x}}\n---\n",
            r"front matter: tasks\.T1\.title: not a per-task field",
        ),
        ("---\nrepo: /x\nbudget_usd: {total: -2}\n---\n", r"features\[0\]\.budget_usd\.total: must be > 0"),
    ],
)
def test_bad_front_matter_is_refused_naming_the_field(front: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_markdown(front + "# Feature: X\n## Phase 1: A\n- [ ] T1 a `@`\n")


def test_front_matter_applies_to_every_feature_of_the_file_but_a_slug_names_one() -> None:
    two = "---\nrepo: /srv/x\nagent: codex\n---\n# Feature: A\n## Phase 1\n- [ ] T1 a `@`\n# Feature: B\n## Phase 1\n- [ ] T1 b `@`\n"
    a, b = parse_markdown(two)
    assert (a["repo"], a["agent"], b["repo"], b["agent"]) == ("/srv/x", "codex", "/srv/x", "codex")
    with pytest.raises(PlanError, match="slug names one feature; this file has 2"):
        parse_markdown(two.replace("agent: codex", "slug: a"))


def test_a_relative_repo_resolves_against_the_plan_file(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    f = tmp_path / "plans" / "shop.md"
    f.write_text("---\nrepo: ../shop\n---\n# Feature: X\n## Phase 1: A\n- [ ] T1 a `@`\n")
    (plan,) = load_plan_file(f)
    assert plan["repo"] == str((tmp_path / "shop").resolve())
    y = tmp_path / "plans" / "shop.yaml"
    y.write_text("title: X\nrepo: shop\nphases: [{tasks: [{id: T1, title: a, agent: aider}]}]\n")
    assert load_plan_file(y)[0]["repo"] == str((tmp_path / "plans" / "shop").resolve())
    with pytest.raises(PlanError, match=r"repo: '\.\./shop' is relative; give an absolute path"):
        parse_plan_text(f.read_text(), "md", source="body.text")  # a plan sent to the API has no directory


def test_agent_names_are_checked_against_the_configuration() -> None:
    plans = parse_yaml(YAML)
    check_agent_names(plans, {"aider", "builtin"})
    with pytest.raises(
        PlanError, match=r"features\[0\] \(checkout\): tasks\[T1\]\.agent: unknown agent 'builtin'"
    ):
        check_agent_names(plans, {"aider"})
    with pytest.raises(
        PlanError, match=r"features\[0\] \(checkout\): agent: unknown agent 'aider' \(known: builtin\)"
    ):
        check_agent_names(plans, {"builtin"})


def _stored(text: str, fmt: str) -> tuple[SQLiteMemoryTaskRepo, int]:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo, check_repos=lambda plans: None)  # /srv/shop is not a repository here
    plans = parse_yaml(text) if fmt == "yaml" else parse_markdown(text)
    return repo, m.import_plans(plans)[0]["feature"]["id"]


_FEATURE = (
    "repo",
    "base",
    "agent",
    "attempt_budget_usd",
    "total_budget_usd",
    "validator",
    "acceptance",
    "spec",
)
_TASK = (
    "key",
    "executor",
    "agent",
    "budget_usd",
    "validator",
    "max_attempts",
    "deps",
    "params",
    "description",
)


def _view(plan: dict[str, Any]) -> tuple[Any, ...]:
    return (
        tuple(plan.get(k) for k in _FEATURE),
        [tuple(t.get(k) for k in _TASK) for t in plan["tasks"]],
    )


@pytest.mark.parametrize("source", ["yaml", "md"])
def test_the_store_keeps_them_and_both_exports_round_trip_them(source: str) -> None:
    text = YAML if source == "yaml" else MD
    repo, fid = _stored(text, source)
    f, ph, ts = repo.get_feature(fid), repo.phases(fid), repo.tasks(fid)
    original = (parse_yaml if source == "yaml" else parse_markdown)(text)[0]
    assert (f["repo"], f["agent"], f["attempt_budget_usd"], f["base_sha"]) == (
        "/srv/shop",
        "aider",
        0.5,
        None,
    )
    assert {t["key"]: t["agent"] for t in ts} == {"T1": "builtin", "T2": None, "T3": None, "T4": None}
    md, yml = export_markdown(f, ph, ts), export_yaml(f, ph, ts, repo.items(fid))
    assert (
        md.startswith("---\n")
        and "- [ ] T1 Cart schema `@builtin`" in md
        and "- [ ] T2 Pricing (after T1) `@`" in md
    )
    for back in (parse_markdown(md)[0], parse_yaml(yml)[0]):
        assert _view(back) == _view(original)


def test_export_without_agent_fields_has_no_front_matter() -> None:
    repo, fid = _stored("# Feature: Plain\n## Phase 1: A\n- [ ] T1 a `$ true`\n", "md")
    md = export_markdown(repo.get_feature(fid), repo.phases(fid), repo.tasks(fid))
    assert md.startswith("# Feature: Plain\n")


def test_reimporting_another_repo_or_base_forgets_the_recorded_base_sha() -> None:
    repo, fid = _stored(YAML, "yaml")
    assert repo.set_base_sha(fid, "a" * 40) == "a" * 40
    assert repo.set_base_sha(fid, "b" * 40) == "a" * 40  # the first recorded stays
    m = Manager(repo, check_repos=lambda plans: None)
    m.import_plans(parse_yaml(YAML.replace("pytest -q\n", "pytest\n")))  # same repo and base: kept
    assert repo.get_feature(fid)["base_sha"] == "a" * 40
    m.import_plans(parse_yaml(YAML.replace("base: main", "base: develop")))
    assert repo.get_feature(fid)["base_sha"] is None
    assert repo.set_base_sha(fid, "c" * 40) == "c" * 40
