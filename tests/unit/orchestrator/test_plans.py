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
