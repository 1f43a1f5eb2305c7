"""Agent plans through the REST API (a real server and store, real git): the agent fields shown on
features and tasks, an agent task's attempts, plans refused before anything is written (an agent the
server's configuration does not define, a repository or base that does not resolve, a relative
repository), and the scope a key needs to write a feature's agent fields."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from architect.store import open_store
from tests.helpers import LiveServer, make_config, stub_config

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
    r = tmp_path / "shop"
    r.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", str(r), *args], check=True, env=env, capture_output=True)
    return r


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
