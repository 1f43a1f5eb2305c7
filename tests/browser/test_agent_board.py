"""The task board and the report of a feature done by coding agents: per agent task its agent, model(s),
attempts, cost ("unknown" when no call of it has a known price, never $0.00) and files changed, from
attempt rows and the ledger's calls of each attempt's key; a task's detail with its attempts
(outcome, reason, isolation, what became of the worktree); the board following a task that finishes
(the event stream); the report's per-agent and per-model tables and commit list."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from architect.orchestrator.manager import Manager
from architect.store.orchestrator import ClaimOptions
from tests.browser.conftest import ADMIN_KEY, check_axe, implemented, login, shoot
from tests.browser.test_more_pages import bus_publisher
from tests.helpers import LiveServer, git_repo, record_rows

SHA = "3f9c2a1b7d4e" + "0" * 28


def _plan(repo: Path) -> str:
    return (
        f"---\nrepo: {repo}\nbase: main\nbudget_usd: {{attempt: 1, total: 10}}\nvalidator: pytest -q\n---\n"
        "# Feature: Calc\n## Phase 1: Core\n- [ ] T1 Add operation `@builtin`\n"
        "- [ ] T2 Parse a|b input `@builtin`\n- [ ] T3 Tidy up `@builtin`\n- [ ] T4 Write the notes\n"
    )


def _calls(server: LiveServer, rows: list[tuple[str, str, float, str]]) -> None:
    """Ledger rows of attempt keys ("k-t1-a1": T1's first attempt), tagged as the gateway tags a call
    made with a key minted for an attempt."""
    now = time.time()
    record_rows(server.store.ledger, [
        {"request_id": f"board-{k}-{now}-{i}", "ts": now, "endpoint": "chat", "model": f"sim-{g}", "model_group": g,
         "key_id": k, "project": "maths", "feature": "calc", "task": k.split("-")[1].upper(),
         "tags": {"project": "maths", "feature": "calc", "task": k.split("-")[1].upper(), "agent": "builtin"},
         "cost_usd": c, "cost_source": src, "prompt_tokens": 100, "completion_tokens": 10,
         "status": "ok", "http_status": 200}
        for i, (k, g, c, src) in enumerate(rows)
    ])  # fmt: skip


def test_the_board_shows_each_agent_tasks_agent_models_attempts_cost_and_files(
    page: Any, server: LiveServer, axe_source: str, api_paths: list[re.Pattern[str]], tmp_path: Path
) -> None:
    if not implemented(api_paths, "/api/v1/features/x/agents"):
        pytest.skip("/api/v1/features/{ref}/agents is not implemented on this server yet")
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    plan = {"format": "md", "text": _plan(git_repo(tmp_path / "calc")), "project": "maths"}
    r = httpx.post(f"{server.url}/api/v1/plans", headers=auth, json=plan)
    assert r.status_code == 201, r.text
    fid = r.json()[0]["feature"]["id"]
    repo = server.store.tasks
    t = {x["key"]: x for x in repo.tasks(fid)}
    m = Manager(repo, publish=bus_publisher(server))
    # T1 ran twice (a red first attempt kept for inspection, then merged) and succeeded; T2 is running
    # with only calls of unknown price so far; T3 ran out of budget before any model call
    for key in ("T1", "T2"):
        [claimed] = m.claim("worker-1", 1, 60.0, ClaimOptions(task_ids=(t[key]["id"],)))
        t[key] = claimed
    base = {"feature_id": fid, "agent": "builtin", "runner": "builtin"}

    def attempt(key: str, n: int, model: str, key_id: str, **end: Any) -> int:
        aid = repo.start_attempt({**base, "task_id": t[key]["id"], "attempt": n, "started_at": 100.0 * n,
                                  "model": model, "key_id": key_id, "worktree": f"/srv/wt/{key}-a{n}"})  # fmt: skip
        if end:
            assert repo.finish_attempt(aid, {"finished_at": 100.0 * n + 12.5, **end})
        return aid

    attempt("T1", 1, "fast", "k-t1-a1", outcome="validation_failed", reason="2 tests failed", files_changed=1,
            lines_added=4, lines_removed=0, isolation="rlimits")  # fmt: skip
    attempt("T1", 2, "strong", "k-t1-a2", outcome="succeeded", files_changed=2, lines_added=10, lines_removed=3,
            merged_sha=SHA, isolation="bwrap")  # fmt: skip
    t2 = attempt("T2", 1, "fast", "k-t2-a1")
    attempt("T3", 1, "fast", "k-t3-a1", outcome="budget_exceeded", reason="budget_exceeded: attempt budget spent",
            isolation="bwrap")  # fmt: skip
    _calls(server, [("k-t1-a1", "fast", 0.01, "config"), ("k-t1-a1", "fast", 0.02, "config"),
                    ("k-t1-a2", "strong", 0.5, "config"), ("k-t1-a2", "strong", 0.0, "unknown"),
                    ("k-t2-a1", "fast", 0.0, "unknown"), ("k-t2-a1", "fast", 0.0, "unknown")])  # fmt: skip
    assert m.complete(t["T1"], "worker-1", ok=True, duration_s=12.5)

    login(page, next_path="/ui/projects?feature=calc")
    expect(page.locator("#live")).to_have_text("live")
    t1 = page.locator("#col-succeeded #task-T1 dl.facts")
    expect(t1.locator(".agent dd")).to_have_text("builtin")
    expect(t1.locator(".models dd")).to_have_text("fast, strong")
    expect(t1.locator(".attempts dd")).to_have_text("2")
    expect(t1.locator(".cost dd")).to_have_text("$0.53, leaves out 1 call of unknown price")
    expect(t1.locator(".files dd")).to_have_text("2 files (+10/-3)")
    t2_facts = page.locator("#col-running #task-T2 dl.facts")
    expect(t2_facts.locator(".cost dd")).to_have_text("unknown")  # every call unpriced: never $0.00
    expect(t2_facts.locator(".files dd")).to_have_text("running")
    expect(t2_facts.locator(".models dd")).to_have_text("fast")
    t3 = page.locator("#task-T3 dl.facts")
    expect(t3.locator(".cost dd")).to_have_text("no model calls")
    expect(t3.locator(".files dd")).to_have_text("none merged")
    expect(page.locator("#task-T4")).to_be_visible()
    expect(page.locator("#task-T4 dl.facts")).to_have_count(0)  # not an agent task
    assert "$0.00" not in page.locator(".board").inner_text()
    expect(page.locator("#board-h + .board")).to_be_visible()  # nothing between (no error)
    expect(page.locator("#m-cost")).to_contain_text("$0.53")  # the feature's calls, by their tags
    check_axe(page, axe_source)
    shoot(page, "agent-board")

    # a task's detail: its attempts with outcome, reason, spend, isolation and worktree
    page.get_by_role("button", name="Details of T1").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="T1 Add operation")).to_be_visible()
    rows = dialog.locator("table tbody tr")
    expect(rows).to_have_count(2)
    for text in ("validation_failed", "2 tests failed", "rlimits", "kept: /srv/wt/T1-a1", "$0.03", "fast"):
        expect(rows.nth(0)).to_contain_text(text)
    for text in ("succeeded", "bwrap", "removed after merge", "strong", "2 files (+10/-3)"):
        expect(rows.nth(1)).to_contain_text(text)
    expect(dialog).to_contain_text(SHA[:12])
    expect(page).to_have_url(re.compile(r"task=T1"))
    check_axe(page, axe_source)
    shoot(page, "agent-task-detail")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Details of T1")).to_be_focused()

    # T2's attempt ends with a priced call and a merge: the board follows the task's event
    _calls(server, [("k-t2-a1", "fast", 0.25, "config")])
    assert repo.finish_attempt(t2, {"outcome": "succeeded", "files_changed": 1, "lines_added": 2,
                                    "lines_removed": 0, "merged_sha": "7" * 40, "finished_at": time.time()})  # fmt: skip
    assert m.complete(t["T2"], "worker-1", ok=True, duration_s=3.0)
    done = page.locator("#col-succeeded #task-T2 dl.facts")
    expect(done.locator(".files dd")).to_have_text("1 file (+2/-0)", timeout=3000)  # live, not the 10 s poll
    expect(done.locator(".cost dd")).to_have_text("$0.25, leaves out 2 calls of unknown price")

    # a detail view opened from its address
    page.goto("/ui/projects?feature=calc&task=T3")
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("table tbody tr")).to_contain_text("budget_exceeded: attempt budget spent")
    expect(dialog.locator("table tbody tr")).to_contain_text("kept: /srv/wt/T3-a1")
    page.get_by_role("button", name="Close").click()

    # the report: the agent section's tables and the commit list, titles and outcomes intact
    page.goto("/ui/report?feature=calc")
    report = page.locator("#report")
    expect(report.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
    per_task = report.get_by_role("region", name=re.compile(r"^Task, Agent, Model"))
    expect(per_task.locator("tbody tr")).to_have_count(3)
    expect(per_task.locator("tbody tr", has_text="T2 Parse a|b input")).to_contain_text("$0.2500")
    t3_row = per_task.locator("tbody tr", has_text="T3 Tidy up")
    expect(t3_row).to_contain_text("budget_exceeded (budget_exceeded: attempt budget spent)")
    expect(t3_row.locator("em")).to_have_count(0)  # underscores inside words are not emphasis
    expect(report.get_by_role("heading", name="Per agent")).to_be_visible()
    by_agent = report.get_by_role("region", name=re.compile(r"^Agent, Tasks, First-try success"))
    # 3 tasks, T2 right first time, 2 succeeded, 4 attempts, $0.78 priced over 2 succeeded tasks
    cells = ["builtin", "3", "33%", "2", "4", "$0.7800 (+3 unpriced calls)", "$0.3900 (+3 unpriced calls)"]
    expect(by_agent.locator("tbody tr td")).to_have_text(cells)
    expect(report.get_by_role("heading", name="Per model")).to_be_visible()
    by_model = report.get_by_role("region", name=re.compile(r"^Model, Tasks, First-try success"))
    expect(by_model.locator("tbody tr td")).to_have_text(["fast", *cells[1:]])  # by the first attempt's model
    expect(report.get_by_role("heading", name="Commits on the feature branch")).to_be_visible()
    commits = report.locator("ul", has_text="(builtin, attempt")
    expect(commits.locator("li")).to_have_count(2)
    expect(commits.locator("li").nth(0)).to_contain_text(f"{SHA[:12]} T1 Add operation (builtin, attempt 2)")
    expect(commits.locator("li").nth(1)).to_contain_text("7777777777 T2 Parse a|b input (builtin, attempt 1)")
    check_axe(page, axe_source)
    shoot(page, "agent-report")
