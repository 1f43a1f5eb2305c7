"""An agent whose program is not installed, through the real CLI: `architect run --config` runs the
tasks of the agents that can run (a `script` agent here, with the real agent executor: worktree, key,
validation, merge) and leaves the missing agent's task waiting - not claimed, not failed - then stops,
naming the task, the agent and what is missing (exit code 1: the feature is not done)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import yaml

from tests.acceptance.agent_world import cli, git, make_repo


def test_run_leaves_a_missing_agents_task_waiting_and_says_why(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, ("T1", "T2"))
    db = f"sqlite:///{tmp_path / 'architect.db'}"
    write_f2 = "printf 'def f2(x):\\n    return x + 2\\n' > calc/t2.py"
    cfg = {
        "database_url": db,
        "agents": [
            {"name": "aider", "runner": "aider", "command": "/nonexistent/aider"},
            {"name": "mine", "runner": "script", "command": write_f2},
        ],
        "orchestrator": {"gateway_url": "http://127.0.0.1:9"},
    }
    cfg_file = tmp_path / "architect.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    validator = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_{{}}.py"
    tasks = [{"id": k, "title": f"Implement f{k[1]}", "executor": "agent", "agent": agent,
              "validator": validator.format(k.lower())} for k, agent in (("T1", "aider"), ("T2", "mine"))]  # fmt: skip
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"title": "Calc", "slug": "calc", "project": "demo", "repo": str(repo),
                                    "base": "main", "phases": [{"title": "One", "tasks": tasks}]}))  # fmt: skip
    env = {**os.environ, "ARCHITECT_DATABASE_URL": db, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    assert cli("plan", "import", str(plan), env=env, cwd=tmp_path).returncode == 0

    ran = cli("run", "calc", "--no-progress", "--config", str(cfg_file), env=env, cwd=tmp_path, timeout=120)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1, out
    assert "waiting: tasks of agent aider held back (not claimed)" in out
    assert "stopping: 1 ready task(s) wait" in out
    (line,) = [x for x in ran.stdout.splitlines() if x.strip().startswith("T1 ")]
    assert line.strip().startswith("T1 waiting: agent aider: ") and "/nonexistent/aider" in line
    # T2 ran, was validated and merged; T1 waits: ready, never attempted, nothing of it merged
    t1 = orjson.loads(cli("task", "show", "calc", "T1", "--json", env=env, cwd=tmp_path).stdout)
    t2 = orjson.loads(cli("task", "show", "calc", "T2", "--json", env=env, cwd=tmp_path).stdout)
    assert (t1["task"]["status"], t1["task"]["attempt"], t1["attempts"]) == ("ready", 0, [])
    # the reason is on the task for the board and the API: it waits, and why
    assert (
        t1["task"]["reason"].startswith("waiting: agent aider: ")
        and "/nonexistent/aider" in t1["task"]["reason"]
    )
    assert t2["task"]["status"] == "succeeded" and [a["outcome"] for a in t2["attempts"]] == ["succeeded"]
    base = git(repo, "rev-parse", "main")
    assert git(repo, "log", "--format=%s", f"{base}..architect/calc").splitlines() == ["T2: Implement f2"]
