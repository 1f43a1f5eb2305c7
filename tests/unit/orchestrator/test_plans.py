from __future__ import annotations

import pytest

from architect.errors import PlanError
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import export_markdown, export_yaml, parse_markdown, parse_yaml
from architect.store.orchestrator import SQLiteMemoryTaskRepo

MD = """# Feature: Checkout flow
Let people pay.

## Phase 1: Backend
- [ ] T001 Add cart schema
- [ ] T002 Pricing service (after T001) `$ make test-pricing`
  Prices with taxes.
## Phase 2: Frontend
- [x] T003 Design review
- [ ] T004 Cart page (after T002, T003)
"""


def test_markdown_parses_phases_deps_commands_and_done() -> None:
    (plan,) = parse_markdown(MD)
    assert plan["slug"] == "checkout-flow" and plan["spec"] == "Let people pay."
    assert [p["title"] for p in plan["phases"]] == ["Backend", "Frontend"]
    t = {x["key"]: x for x in plan["tasks"]}
    assert t["T002"]["executor"] == "command" and t["T002"]["params"] == {"command": "make test-pricing"}
    assert t["T002"]["description"] == "Prices with taxes." and t["T002"]["deps"] == ["T001"]
    assert t["T001"]["executor"] == "manual" and t["T003"]["done"] is True
    assert t["T004"]["deps"] == ["T002", "T003"] and t["T004"]["phase"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- [ ] T001 a (after T002)\n- [ ] T002 b (after T003)\n- [ ] T003 c (after T001)",
         "dependency cycle: T001 → T002 → T003 → T001"),
        ("- [ ] T001 a (after T007)", "task T001 depends on unknown task T007"),
        ("- [ ] T001 a\n- [ ] T001 b", "task T001 is defined twice"),
        ("- [ ] T001 a (after T001)", "task T001 depends on itself"),
    ],
)  # fmt: skip
def test_invalid_plans_are_refused_naming_the_tasks(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_markdown("# Feature: X\n## Phase 1: A\n" + text)


def test_yaml_errors_name_the_field() -> None:
    bad = "title: X\nphases:\n  - title: A\n    tasks:\n      - {id: T001, title: a, priority: 11}\n"
    with pytest.raises(PlanError, match=r"features\[0\]\.phases\[0\]\.tasks\[0\]\.priority"):
        parse_yaml(bad)
    with pytest.raises(PlanError, match=r"executor 'python' needs params\.callable"):
        parse_yaml("title: X\nphases:\n  - tasks:\n      - {id: T001, title: a, executor: python}\n")


def test_reimport_updates_by_id_and_keeps_finished_state() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    first = m.import_plans(parse_markdown(MD))[0]
    assert first["created"] == 4
    fid = first["feature"]["id"]
    assert repo.get_task(fid, "T003")["status"] == "succeeded"
    changed = MD.replace("Add cart schema", "Add the cart schema").replace("- [x] T003", "- [ ] T003")
    again = m.import_plans(parse_markdown(changed))[0]
    assert (again["created"], again["updated"], again["kept_finished"]) == (0, 1, 1)
    assert len(repo.tasks(fid)) == 4
    assert repo.get_task(fid, "T001")["title"] == "Add the cart schema"
    assert repo.get_task(fid, "T003")["status"] == "succeeded"  # finished state kept


def test_markdown_and_yaml_round_trip() -> None:
    repo = SQLiteMemoryTaskRepo()
    fid = Manager(repo).import_plans(parse_markdown(MD))[0]["feature"]["id"]
    f, ph, ts = repo.get_feature(fid), repo.phases(fid), repo.tasks(fid)
    md = export_markdown(f, ph, ts)
    assert "- [x] T003 Design review" in md and "- [ ] T004 Cart page (after T002, T003)" in md
    assert parse_markdown(md)[0]["tasks"] == parse_markdown(MD)[0]["tasks"]
    (back,) = parse_yaml(export_yaml(f, ph, ts))
    assert [(t["key"], t["deps"], t["executor"]) for t in back["tasks"]] == [
        (t["key"], t["deps"], t["executor"]) for t in parse_markdown(MD)[0]["tasks"]
    ]


def _export(repo: SQLiteMemoryTaskRepo, fid: int) -> tuple[str, str]:
    f, ph, ts = repo.get_feature(fid), repo.phases(fid), repo.tasks(fid)
    return export_markdown(f, ph, ts), export_yaml(f, ph, ts)


def test_a_cancelled_task_is_exported_as_cancelled_and_a_reimport_keeps_it_so() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    r1 = "# Feature: Reimp\n## Phase 1: A\n- [ ] T001 a\n- [ ] T002 b (after T001)\n- [ ] T003 c\n"
    fid = m.import_plans(parse_markdown(r1))[0]["feature"]["id"]
    m.finish_manual("reimp", "T001")
    m.import_plans(parse_markdown(r1.replace("- [ ] T002 b (after T001)\n", "")))
    assert repo.get_task(fid, "T002")["reason"] == "removed from the plan"
    md, yml = _export(repo, fid)
    assert "- [-] T002 b (after T001)" in md and "- [x] T001 a" in md and "- [ ] T003 c" in md
    assert [t["cancelled"] for t in parse_yaml(yml)[0]["tasks"]] == [False, True, False]
    # into another store: the cancelled task is created cancelled, never run
    for text, parse in ((md, parse_markdown), (yml, parse_yaml)):
        other = SQLiteMemoryTaskRepo()
        ofid = Manager(other).import_plans(parse(text))[0]["feature"]["id"]
        status = {t["key"]: (t["status"], t["reason"]) for t in other.tasks(ofid)}
        assert status == {"T001": ("succeeded", None), "T002": ("cancelled", "cancelled in the plan"),
                          "T003": ("ready", None)}  # fmt: skip
    # `[-]` on an open task cancels it; its dependents are blocked
    m.import_plans(parse_markdown(r1.replace("- [ ] T003 c", "- [-] T003 c\n- [ ] T004 d (after T003)")))
    assert repo.get_task(fid, "T003")["status"] == "cancelled"
    assert repo.get_task(fid, "T004")["reason"] == "blocked by T003 (cancelled)"
    with pytest.raises(PlanError, match="done or cancelled, not both"):
        parse_yaml(
            "title: X\nphases:\n  - tasks:\n      - {id: T001, title: a, done: true, cancelled: true}\n"
        )


SUMMARIES = """
project: shop
features:
  - title: Summaries
    phases:
      - tasks:
          - {id: T001, title: schema, command: "echo hi", params: {cwd: /tmp, timeout: 5}}
          - id: T002
            title: Summarise
            after: [T001]
            executor: llm
            params: {model: fast, prompt: "Write the API for {title}.", max_tokens: 100}
          - {id: T003, title: seed, executor: python, params: {callable: "m:run"}}
          - {id: T004, title: check by hand}
"""


def test_a_markdown_export_keeps_the_project_executors_and_params_through_a_reimport() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    fid = m.import_plans(parse_yaml(SUMMARIES))[0]["feature"]["id"]
    md, _ = _export(repo, fid)
    assert md.startswith("---\nproject: shop\n")
    assert "- [ ] T001 schema `$ echo hi`" in md and "- [ ] T004 check by hand\n" in md
    (plan,) = parse_markdown(md)  # no --project: the front matter names it
    assert plan["project"] == "shop"
    was = {t["key"]: (t["executor"], t["params"]) for t in repo.tasks(fid)}
    assert {t["key"]: (t["executor"], t["params"]) for t in plan["tasks"]} == was
    again = m.import_plans([plan])[0]
    assert (again["updated"], again["unchanged"]) == (0, 4)
    assert repo.get_task(fid, "T002")["executor"] == "llm"


def test_plan_export_help_shows_the_checkbox_marks() -> None:
    from typer.testing import CliRunner

    from architect.cli.main import app as cli

    res = CliRunner().invoke(cli, ["plan", "export", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert res.exit_code == 0 and "Markdown with [x] for finished and [-] for cancelled tasks" in res.output
