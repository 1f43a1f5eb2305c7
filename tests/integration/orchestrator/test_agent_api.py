"""Agent plans through the REST API (a real server and store, real git): the agent fields shown on
features and tasks, an agent task's attempts (with their keys' spend and what became of their
worktrees), the per-feature agent figures the task board shows (`/features/{ref}/agents`, the
report's agent section), plans refused before anything is written (an agent the server's
configuration does not define, a repository or base that does not resolve, a relative repository),
and the scope a key needs to write a feature's agent fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from architect.store import open_store
from tests.helpers import LiveServer, git_repo, make_config, record_rows, stub_config

ADMIN = "admin-secret-key-0123456789"


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    cfg = stub_config("http://127.0.0.1:9")  # the gateway is not called here
    cfg["auth"] = {"admin_key": ADMIN}
    cfg["agents"] = [{"name": "aider", "runner": "aider", "model": "m"}]
    with LiveServer(make_config(cfg), store=open_store(db_url, migrate="upgrade")) as srv:
        yield srv


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_repo(tmp_path / "shop")


def _h(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def _plan(
    repo: Path | str, *, base: str = "main", line: str = "`@aider`", budget: str = "{attempt: 0.5, total: 4}"
) -> str:
    return (
        f"---\nrepo: {repo}\nbase: {base}\nbudget_usd: {budget}\nvalidator: pytest -q\n---\n"
        f"# Feature: Cart\n## Phase 1: A\n- [ ] T1 Cart model {line}\n- [ ] T2 Notes\n"
    )


def _import(c: httpx.Client, secret: str, text: str) -> httpx.Response:
    return c.post("/api/v1/plans", json={"format": "md", "text": text, "project": "shop"}, headers=_h(secret))


def test_agent_fields_and_attempts_are_shown(server: LiveServer, repo: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = _import(c, ADMIN, _plan(repo))
        assert r.status_code == 201, r.text
        f = c.get("/api/v1/features/cart", headers=_h(ADMIN)).json()
        assert (f["repo"], f["base"], f["base_sha"], f["agent"]) == (str(repo.resolve()), "main", None, None)
        assert (f["attempt_budget_usd"], f["total_budget_usd"], f["validator"]) == (0.5, 4.0, "pytest -q")
        t = c.get("/api/v1/features/cart/tasks/T1", headers=_h(ADMIN)).json()
        assert (t["executor"], t["agent"], t["budget_usd"]) == ("agent", "aider", None)
        assert c.get("/api/v1/features/cart/tasks/T1/attempts", headers=_h(ADMIN)).json() == []
        aid = server.store.tasks.start_attempt(
            {"task_id": t["id"], "feature_id": f["id"], "attempt": 1, "started_at": 5.0, "files": ["a.py"]}
        )
        (a,) = c.get("/api/v1/features/cart/tasks/T1/attempts", headers=_h(ADMIN)).json()
        assert (a["id"], a["outcome"], a["files"]) == (aid, "running", ["a.py"])
        assert c.get("/api/v1/features/cart/tasks/T9/attempts", headers=_h(ADMIN)).status_code == 404
        r = c.patch("/api/v1/features/cart", json={"total_budget_usd": 6}, headers=_h(ADMIN))
        assert r.status_code == 200 and r.json()["total_budget_usd"] == 6.0
        r = c.patch("/api/v1/features/cart/tasks/T1", json={"budget_usd": 0.25}, headers=_h(ADMIN))
        assert r.status_code == 200 and r.json()["budget_usd"] == 0.25
        md = c.get("/api/v1/features/cart/export", headers=_h(ADMIN)).text
        assert "total: 6.0" in md and "- [ ] T1 Cart model `@aider`" in md and "budget_usd: 0.25" in md


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"line": "`@codex`"},
            "features[0] (cart): tasks[T1].agent: unknown agent 'codex' (known: aider, builtin)",
        ),
        ({"base": "nope"}, "base: 'nope' does not resolve in "),
        ({"repo": "/nonexistent/repo"}, "repo: /nonexistent/repo is not a git repository"),
        ({"repo": "shop"}, "repo: 'shop' is relative; give an absolute path"),
        ({"budget": "{total: 0}"}, "features[0].budget_usd.total: must be > 0"),
    ],
)
def test_bad_agent_plans_are_refused_before_anything_is_written(
    server: LiveServer, repo: Path, change: dict[str, Any], message: str
) -> None:
    text = _plan(**{"repo": repo, **change})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = _import(c, ADMIN, text)
        assert r.status_code == 400, r.text
        assert message in r.json()["error"]["message"]
        assert c.get("/api/v1/features", headers=_h(ADMIN)).json() == []


def test_a_key_needs_the_scope_to_write_a_features_agent_fields(server: LiveServer, repo: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/api/v1/keys", json={"name": "plain", "tags": {"project": "shop"}}, headers=_h(ADMIN))
        plain = r.json()["key"]
        # an agent task: refused naming the task; a manual-only plan with a repo: refused naming the field
        r = _import(c, plain, _plan(repo))
        assert r.status_code == 403 and r.json()["error"]["param"] == "features[0].tasks.T1.executor"
        r = _import(c, plain, _plan(repo, line=""))
        assert r.status_code == 403, r.text
        assert r.json()["error"]["param"] == "features[0].repo"
        assert r.json()["error"]["message"].startswith("feature cart field repo:")
        assert c.get("/api/v1/features", headers=_h(ADMIN)).json() == []
        # the admin imports it; the key may not change its budget or validator, but may its notes
        assert _import(c, ADMIN, _plan(repo, line="")).status_code == 201
        r = c.patch("/api/v1/features/cart", json={"validator": "sh -c evil"}, headers=_h(plain))
        assert r.status_code == 403 and r.json()["error"]["param"] == "validator"
        r = _import(c, plain, _plan(repo, line="").replace("total: 4", "total: 400"))
        assert r.status_code == 403 and r.json()["error"]["param"] == "features[0].budget_usd"
        r = c.patch("/api/v1/features/cart/tasks/T2", json={"budget_usd": 9}, headers=_h(plain))
        assert r.status_code == 403 and r.json()["error"]["param"] == "budget_usd"
        r = c.patch("/api/v1/features/cart/tasks/T2", json={"priority": 1}, headers=_h(plain))
        assert r.status_code == 200


def _seed_attempts(server: LiveServer, feature: str) -> dict[str, int]:
    """T1: a failed attempt kept for inspection, then one merged; T2: running, every call unpriced.
    The ledger's calls of each attempt's key: T1 0.01 + 0.02, then 0.5 and one unpriced; T2 two unpriced."""
    repo = server.store.tasks
    f = repo.get_feature(feature)
    t = {x["key"]: x for x in repo.tasks(f["id"])}
    row = {"feature_id": f["id"], "agent": "aider", "runner": "aider"}
    a1 = repo.start_attempt(
        {
            **row,
            "task_id": t["T1"]["id"],
            "attempt": 1,
            "started_at": 10.0,
            "model": "fast",
            "key_id": "k-a1",
            "worktree": "/wt/T1-a1",
            "branch": "architect/cart/T1-a1",
        }
    )
    assert repo.finish_attempt(
        a1,
        {
            "outcome": "validation_failed",
            "reason": "2 tests failed",
            "files_changed": 1,
            "lines_added": 4,
            "lines_removed": 0,
            "isolation": "rlimits",
            "finished_at": 20.0,
        },
    )
    a2 = repo.start_attempt(
        {
            **row,
            "task_id": t["T1"]["id"],
            "attempt": 2,
            "started_at": 30.0,
            "model": "strong",
            "key_id": "k-a2",
            "worktree": "/wt/T1-a2",
        }
    )
    assert repo.finish_attempt(
        a2,
        {
            "outcome": "succeeded",
            "files_changed": 2,
            "lines_added": 10,
            "lines_removed": 3,
            "merged_sha": "ab" * 20,
            "isolation": "bwrap",
            "finished_at": 42.5,
        },
    )
    b1 = repo.start_attempt(
        {
            **row,
            "task_id": t["T2"]["id"],
            "attempt": 1,
            "started_at": 50.0,
            "model": "fast",
            "key_id": "k-b1",
            "worktree": "/wt/T2-a1",
        }
    )
    calls = [
        ("k-a1", "fast", 0.01, "config"),
        ("k-a1", "fast", 0.02, "config"),
        ("k-a2", "strong", 0.5, "config"),
        ("k-a2", "strong", 0.0, "unknown"),
        ("k-b1", "fast", 0.0, "unknown"),
        ("k-b1", "fast", 0.0, "unknown"),
    ]
    record_rows(server.store.ledger, [
        {"request_id": f"agent-call-{i}", "ts": 60.0 + i, "endpoint": "chat", "model": g, "model_group": g,
         "key_id": k, "cost_usd": c, "cost_source": src, "prompt_tokens": 100, "completion_tokens": 10}
        for i, (k, g, c, src) in enumerate(calls)
    ])  # fmt: skip
    return {"a1": a1, "a2": a2, "b1": b1}


def test_the_agents_section_and_attempts_give_the_board_its_figures(server: LiveServer, repo: Path) -> None:
    plan = _plan(repo).replace("- [ ] T2 Notes\n", "- [ ] T2 Notes | docs `@aider`\n- [ ] T3 Review\n")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert _import(c, ADMIN, plan).status_code == 201
        empty = c.get("/api/v1/features/cart/agents", headers=_h(ADMIN))
        assert empty.status_code == 200
        assert empty.json() == {"tasks": [], "by_agent": [], "by_model": [], "commits": []}
        ids = _seed_attempts(server, "cart")
        got = c.get("/api/v1/features/cart/agents", headers=_h(ADMIN)).json()
        t1, t2 = got["tasks"]
        assert (t1["task"], t1["agents"], t1["models"], t1["attempts"], t1["first_try"], t1["outcome"]) == (
            "T1",
            ["aider"],
            ["fast", "strong"],
            2,
            False,
            "succeeded",
        )
        assert (t1["cost_usd"], t1["calls"], t1["unpriced_calls"]) == (pytest.approx(0.53), 4, 1)
        assert (t1["files_changed"], t1["lines_added"], t1["lines_removed"], t1["merged_sha"]) == (
            2,
            10,
            3,
            "ab" * 20,
        )
        assert (t2["task"], t2["title"], t2["outcome"], t2["files_changed"]) == (
            "T2",
            "Notes | docs",
            "running",
            None,
        )
        assert (t2["cost_usd"], t2["calls"], t2["unpriced_calls"]) == (0.0, 2, 2)  # every call unpriced
        (aider,) = got["by_agent"]
        (fast,) = got["by_model"]  # grouped by the first attempt's model group
        for g in (aider, fast):
            assert (
                g["tasks"],
                g["first_try"],
                g["succeeded"],
                g["attempts"],
                g["calls"],
                g["unpriced_calls"],
            ) == (2, 0, 1, 3, 6, 3)
            assert g["first_try_success_rate"] == 0.0
            assert g["cost_usd"] == pytest.approx(0.53) and g["cost_per_succeeded_usd"] == pytest.approx(0.53)
        assert (aider["agent"], fast["model"]) == ("aider", "fast")
        assert got["commits"] == [
            {"sha": "ab" * 20, "task": "T1", "title": "Cart model", "agent": "aider", "attempt": 2}
        ]
        # a task's attempts: each with its key's spend and what became of its worktree
        first, second = c.get("/api/v1/features/cart/tasks/T1/attempts", headers=_h(ADMIN)).json()
        assert (first["id"], first["outcome"], first["reason"], first["isolation"]) == (
            ids["a1"],
            "validation_failed",
            "2 tests failed",
            "rlimits",
        )
        assert first["usage"] == {
            "calls": 2,
            "cost_usd": pytest.approx(0.03),
            "unpriced": 0,
            "models": ["fast"],
        }
        assert (first["worktree_state"], first["worktree"]) == ("kept", "/wt/T1-a1")
        assert second["usage"] == {
            "calls": 2,
            "cost_usd": pytest.approx(0.5),
            "unpriced": 1,
            "models": ["strong"],
        }
        assert second["worktree_state"] == "removed"
        (running,) = c.get("/api/v1/features/cart/tasks/T2/attempts", headers=_h(ADMIN)).json()
        assert (running["id"], running["worktree_state"], running["usage"]["unpriced"]) == (
            ids["b1"],
            "in_use",
            2,
        )
        assert c.get("/api/v1/features/cart/tasks/T3/attempts", headers=_h(ADMIN)).json() == []
        # the report's JSON section is the same; its Markdown never shows a price for unpriced calls
        assert c.get("/api/v1/features/cart/report", headers=_h(ADMIN)).json()["agents"] == got
        md = c.get("/api/v1/features/cart/report?format=md", headers=_h(ADMIN)).text
        assert "| T2 Notes \\| docs | aider | fast | 1 | running | unknown | — | — |" in md
        assert "| aider | 2 | 0% | 1 | 3 | $0.5300 (+3 unpriced calls) | $0.5300 (+3 unpriced calls) |" in md
        assert f"- `{'ab' * 6}` T1 Cart model (aider, attempt 2)" in md


def test_the_agents_endpoint_is_documented_and_hides_other_projects(server: LiveServer, repo: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert _import(c, ADMIN, _plan(repo)).status_code == 201
        _seed_attempts(server, "cart")
        op = c.get("/api/v1/openapi.json").json()["paths"]["/features/{ref}/agents"]["get"]
        assert {"200", "400", "401", "403", "404", "503"} <= set(op["responses"])
        assert op["security"] == [{"bearer": []}]
        assert "first_try_success_rate" in op["description"]
        assert c.get("/api/v1/features/cart/agents").status_code == 401
        r = c.post(
            "/api/v1/keys", json={"name": "other", "tags": {"project": "elsewhere"}}, headers=_h(ADMIN)
        )
        other = r.json()["key"]
        for path in ("/api/v1/features/cart/agents", "/api/v1/features/cart/tasks/T1/attempts"):
            r = c.get(path, headers=_h(other))
            assert r.status_code == 404, (path, r.text)
            assert r.json()["error"]["message"] == "feature 'cart' not found"
        assert c.get("/api/v1/features/nope/agents", headers=_h(ADMIN)).status_code == 404
