"""Plan names that are stored and filtered on (projects, titles, task ids and references) refuse
control characters with a PlanError that names the field."""

from __future__ import annotations

import pytest

from architect.errors import PlanError
from architect.orchestrator.plans import parse_markdown, parse_yaml

YAML = """
project: {project}
features:
  - title: "{title}"
    phases:
      - title: Build
        tasks:
          - {{id: T1, title: "{task}"}}
          - {{id: T2, title: two, after: ["{dep}"], role: "{role}"}}
    bugs:
      - {{title: b, task: "{ref}"}}
"""
OK = {"project": "shop", "title": "Checkout", "task": "one", "dep": "T1", "role": "dev", "ref": "T1"}


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("project", '"sh\\0op"', "project"),
        ("title", "Check\\x1bout", "features[0].title"),
        ("task", "on\\u202ee", "features[0].phases[0].tasks[0].title"),
        ("dep", "T1\\0", "features[0].phases[0].tasks[1].after[0]"),
        ("role", "de\\tv", "features[0].phases[0].tasks[1].role"),
        ("ref", "T\\x851", "features[0].bugs[0].task"),
    ],
)
def test_control_characters_in_plan_names_are_refused_naming_the_field(
    field: str, value: str, where: str
) -> None:
    with pytest.raises(PlanError) as exc:
        parse_yaml(YAML.format(**{**OK, field: value}), source="plan.yaml")
    assert f"{where}: must not contain control characters" in str(exc.value)


def test_markdown_titles_and_a_project_given_on_import_are_checked_too() -> None:
    with pytest.raises(PlanError, match=r"features\[0\]\.phases\[0\]\.tasks\[0\]\.title: must not contain"):
        parse_markdown("# Feature: F\n## Phase 1: P\n- [ ] T1 a\x00b\n")
    with pytest.raises(PlanError, match=r"features\[0\]\.title: must not contain"):
        parse_markdown("# Feature: F\x7f\n## Phase 1: P\n- [ ] T1 ab\n")
    with pytest.raises(PlanError, match="project: must not contain control characters"):
        parse_yaml(YAML.format(**OK), project="sh\x00op")
    with pytest.raises(PlanError, match="project: must not contain control characters"):
        parse_markdown("# Feature: F\n## Phase 1: P\n- [ ] T1 ab\n", project="sh\x00op")
    (plan,) = parse_yaml(YAML.format(**OK), project="Überprüfung 模型")  # any other text is a name
    assert plan["project"] == "Überprüfung 模型" and plan["slug"] == "checkout"
