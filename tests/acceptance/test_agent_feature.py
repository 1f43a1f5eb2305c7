"""A feature done by coding agents, end to end, as a user runs it: `architect plan import` and
`architect run FEATURE --config` (the real CLI) with three `builtin` agents in parallel, behind a
gateway (in-process uvicorn on the same SQLite database) in front of a scripted model.

The scripted model answers by request content, never by order: it hands out a file's edit only after
a `read_file` result holding the nonce the test wrote into that file; T3's first edit does not apply
(its SEARCH text is not in the file); T5's first edit is wrong, so its tests fail, and its second
attempt's prompt must hold the failing pytest line. Every figure checked against the report (first-try
success, rework, attempts, cost per task, the commit list) is computed here from the script's own
exchanges, not read back from the store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.acceptance.agent_world import (
    PRICE_IN,
    PRICE_OUT,
    agent_plan,
    call,
    cli,
    gateway_config,
    git,
    make_repo,
)
from tests.helpers import LiveServer, make_config
from tests.stubs.scripted_chat import ScriptedChat

KEYS = ("T1", "T2", "T3", "T4", "T5", "T6")


class Script:
    """The model: per request, the task (from the prompt's `# Task Tn:` line), the attempt, and the
    step given by the last tool result. Keeps each exchange's usage per (task, attempt)."""

    def __init__(self, nonces: dict[str, str]) -> None:
        self.nonces = nonces
        self.usage: dict[tuple[str, int], list[dict[str, int]]] = {}
        self.failing_line_seen: dict[tuple[str, int], bool] = {}
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self._reply(body)
        usage = ScriptedChat.usage(body, {"role": "assistant", "content": None, **reply})
        prompt = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        m = re.search(r"^# Task (T\d+):", prompt, re.M)
        a = re.search(r"^## Attempt (\d+):", prompt, re.M)
        if m:
            with self._lock:
                self.usage.setdefault((m.group(1), int(a.group(1)) if a else 1), []).append(usage)
        return reply

    def _reply(self, body: dict[str, Any]) -> dict[str, Any]:
        msgs = body["messages"]
        prompt = next((m["content"] for m in msgs if m["role"] == "user"), "")
        m = re.search(r"^# Task (T\d+):", prompt, re.M)
        if not m:
            return {"content": "no task in the prompt"}
        key = m.group(1)
        n = int(key[1:])
        attempt = int(a.group(1)) if (a := re.search(r"^## Attempt (\d+):", prompt, re.M)) else 1
        path = f"calc/{key.lower()}.py"
        results = [str(x.get("content")) for x in msgs if x["role"] == "tool"]
        last = results[-1] if results else None
        if key == "T5" and attempt == 2:
            with self._lock:
                self.failing_line_seen[(key, attempt)] = "FAILED tests/test_t5.py::test_t5" in prompt
        if last is None:
            return call("read_file", {"path": path})
        if last.startswith("edited "):
            return call("finish", {"summary": f"implemented f{n}"})
        if self.nonces[key] not in "\n".join(results):
            with self._lock:
                self.problems.append(f"{key}: asked for an edit without having read the nonce")
            return {"content": "I have not read the file"}
        if key == "T3" and not any(r.startswith("error:") for r in results):
            return call("edit", {"path": path, "search": "    pass\n", "replace": f"    return x + {n}\n"})
        body_line = f"    return x - {n}\n" if key == "T5" and attempt == 1 else f"    return x + {n}\n"
        return call("edit", {"path": path, "search": "    raise NotImplementedError\n", "replace": body_line})

    def cost(self, key: str) -> float:
        return sum(
            (u["prompt_tokens"] * PRICE_IN + u["completion_tokens"] * PRICE_OUT) / 1e6
            for (k, _), us in self.usage.items() if k == key for u in us
        )  # fmt: skip

    def attempts(self, key: str) -> int:
        return len({a for (k, a) in self.usage if k == key})


@pytest.fixture
def world(tmp_path: Path) -> Any:
    repo = tmp_path / "repo"
    nonces = make_repo(repo, KEYS)
    script = Script(nonces)
    db = f"sqlite:///{tmp_path / 'architect.db'}"
    with ScriptedChat(script) as stub:
        config = make_config(gateway_config(stub.url, db, None))
        with LiveServer(config, database_url=db) as server:
            cfg_file = tmp_path / "architect.yaml"
            cfg_file.write_text(yaml.safe_dump(gateway_config(stub.url, db, server.url)))
            env = {
                **os.environ,
                "ARCHITECT_DATABASE_URL": db,
                "ARCHITECT_HOME": str(tmp_path / "home"),  # attempt worktrees go under it
                "PYTHONDONTWRITEBYTECODE": "1",
                "COLUMNS": "200",
            }
            yield repo, script, server, cfg_file, env, tmp_path


def test_six_tasks_two_phases_three_builtin_agents(world: Any) -> None:
    repo, script, _server, cfg_file, env, tmp = world
    plan = tmp / "plan.yaml"
    plan.write_text(yaml.safe_dump(agent_plan(repo, "calc", KEYS, {"T4": "T1", "T5": "T2", "T6": "T3"})))
    imported = cli("plan", "import", str(plan), env=env, cwd=tmp)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    ran = cli(
        "run", "calc", "--concurrency", "3", "--no-progress", "--config", str(cfg_file), env=env, cwd=tmp
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert not script.problems
    assert script.failing_line_seen == {("T5", 2): True}

    # the feature branch: one commit per task on top of base, linear, and its tests pass
    base = git(repo, "rev-parse", "main")
    log = git(repo, "log", "--format=%H %P|%s", f"{base}..architect/calc").splitlines()
    assert len(log) == 6
    assert all(len(line.split("|")[0].split()) == 2 for line in log)  # one parent each: no merges
    assert sorted(line.split("|")[1].split(":")[0] for line in log) == sorted(KEYS)
    check = tmp / "check"
    git(repo, "worktree", "add", "-q", "--detach", str(check), "architect/calc")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=check,
                           capture_output=True, text=True, env={**env, "PYTHONPATH": ""})  # fmt: skip
    assert tests.returncode == 0, tests.stdout
    assert "6 passed" in tests.stdout
    # the user's own tree is untouched
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"

    shown = cli("report", "calc", "--format", "json", env=env, cwd=tmp)
    assert shown.returncode == 0, shown.stderr
    report = orjson.loads(shown.stdout)
    agents = report["agents"]
    per_task = {t["task"]: t for t in agents["tasks"]}
    for key in KEYS:
        assert per_task[key]["attempts"] == script.attempts(key), key
        assert per_task[key]["cost_usd"] == pytest.approx(script.cost(key), rel=1e-6), key
        assert per_task[key]["files_changed"] == 1
    first_try = sum(1 for k in KEYS if script.attempts(k) == 1)
    assert first_try == 5  # T5 needed a second attempt; T3's failed edit was within its first
    coder = next(g for g in agents["by_agent"] if g["agent"] == "coder")
    assert coder["first_try_success_rate"] == pytest.approx(first_try / 6)
    assert coder["attempts"] == sum(script.attempts(k) for k in KEYS) == 7
    assert coder["cost_per_succeeded_usd"] == pytest.approx(sum(script.cost(k) for k in KEYS) / 6, rel=1e-6)
    assert [c["sha"] for c in agents["commits"]] == [line.split()[0] for line in reversed(log)]
    # `task show`: T5's failed attempt keeps its worktree for inspection; the merged one is removed
    t5 = orjson.loads(cli("task", "show", "calc", "T5", "--json", env=env, cwd=tmp).stdout)
    first, second = t5["attempts"]
    assert (first["outcome"], second["outcome"]) == ("validation_failed", "succeeded")
    assert "FAILED tests/test_t5.py::test_t5" in first["output"]
    assert Path(first["worktree"]).is_dir() and not Path(second["worktree"]).exists()
    assert first["usage"]["cost_usd"] + second["usage"]["cost_usd"] == pytest.approx(
        script.cost("T5"), rel=1e-6
    )
    assert {a["isolation"] for a in t5["attempts"]} <= {"bwrap", "rlimits"}
    shown_md = cli("task", "show", "calc", "T5", env=env, cwd=tmp).stdout
    assert "validation_failed" in shown_md and "worktree (kept)" in shown_md
    # every attempt's key is revoked
    keys = orjson.loads(cli("keys", "list", "--all", "--json", env=env, cwd=tmp).stdout)["keys"]
    minted = [k for k in keys if (k.get("tags") or {}).get("feature") == "calc"]
    assert len(minted) == 7 and all(k["revoked"] for k in minted)


def test_a_task_over_its_budget_stops_and_nothing_is_merged(world: Any) -> None:
    repo, script, _server, cfg_file, env, tmp = world
    plan = tmp / "tight.yaml"
    plan.write_text(
        yaml.safe_dump(agent_plan(repo, "tight", ("T1",), {}, budget_usd=0.000001, max_attempts=1))
    )
    assert cli("plan", "import", str(plan), env=env, cwd=tmp).returncode == 0
    ran = cli("run", "tight", "--no-progress", "--config", str(cfg_file), env=env, cwd=tmp)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "budget_exceeded" in ran.stdout
    base = git(repo, "rev-parse", "main")
    assert git(repo, "rev-parse", "architect/tight") == base
    report = orjson.loads(cli("report", "tight", "--format", "json", env=env, cwd=tmp).stdout)
    (task,) = report["agents"]["tasks"]
    assert task["outcome"] == "budget_exceeded"
    assert task["merged_sha"] is None
    assert script.usage == {}  # refused by the gateway before any model call


def test_the_merge_refuses_a_feature_branch_checked_out_by_the_user(world: Any) -> None:
    repo, _script, _server, cfg_file, env, tmp = world
    git(repo, "checkout", "-q", "-b", "architect/mine")  # the user works on the feature branch
    plan = tmp / "mine.yaml"
    plan.write_text(yaml.safe_dump(agent_plan(repo, "mine", ("T1",), {}, max_attempts=1)))
    assert cli("plan", "import", str(plan), env=env, cwd=tmp).returncode == 0
    ran = cli("run", "mine", "--no-progress", "--config", str(cfg_file), env=env, cwd=tmp)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    shown = orjson.loads(cli("task", "show", "mine", "T1", "--json", env=env, cwd=tmp).stdout)
    (attempt,) = shown["attempts"]
    assert attempt["outcome"] == "failed"
    assert "checked_out" in attempt["reason"] and str(repo) in attempt["reason"]
    assert git(repo, "rev-parse", "architect/mine") == git(repo, "rev-parse", "main")  # not moved
    assert git(repo, "status", "--porcelain") == ""


def test_a_model_that_answers_nonsense_gets_nothing_merged(world: Any) -> None:
    """The simulated fleet answers text, never a tool call: each attempt stops as a repeated failure,
    the task fails after its attempts, the feature branch does not move, every key is revoked."""
    repo, _script, _server, cfg_file, env, tmp = world
    plan = tmp / "dream.yaml"
    data = agent_plan(repo, "dream", ("T1",), {}, max_attempts=2)
    data["agent"] = "dreamer"
    plan.write_text(yaml.safe_dump(data))
    assert cli("plan", "import", str(plan), env=env, cwd=tmp).returncode == 0
    ran = cli("run", "dream", "--no-progress", "--config", str(cfg_file), env=env, cwd=tmp)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    shown = orjson.loads(cli("task", "show", "dream", "T1", "--json", env=env, cwd=tmp).stdout)
    assert shown["task"]["status"] == "failed"
    assert [a["outcome"] for a in shown["attempts"]] == ["repeated_failure", "repeated_failure"]
    assert all(a["usage"]["calls"] >= 2 and a["merged_sha"] is None for a in shown["attempts"])
    assert git(repo, "rev-parse", "architect/dream") == git(repo, "rev-parse", "main")
    keys = orjson.loads(cli("keys", "list", "--all", "--json", env=env, cwd=tmp).stdout)["keys"]
    minted = [k for k in keys if (k.get("tags") or {}).get("feature") == "dream"]
    assert len(minted) == 2 and all(k["revoked"] and k["temporary"] for k in minted)


def test_a_command_task_gets_a_key_of_its_own_and_its_calls_land_on_it(world: Any) -> None:
    """A plain `command` task's script calls the gateway with the key in its environment
    (OPENAI_BASE_URL / OPENAI_API_KEY, as the openai SDK reads them); the call is on the task's
    ledger row, and the key is revoked when the task ends."""
    _repo, _script, server, cfg_file, env, tmp = world
    probe = tmp / "probe.py"
    probe.write_text(
        "import os, openai\n"
        "c = openai.OpenAI(max_retries=0)\n"
        "r = c.chat.completions.create(model='coder', messages=[{'role': 'user', 'content': '# Task T1: probe'}])\n"
        "print('key', os.environ['ARCHITECT_API_KEY'][:12], os.environ['ARCHITECT_GATEWAY_URL'])\n"
    )
    plan = tmp / "cmd.yaml"
    plan.write_text(yaml.safe_dump({"title": "cmd", "slug": "cmd", "project": "demo", "phases": [
        {"tasks": [{"id": "C1", "title": "probe", "command": f"{sys.executable} {probe}"}]}]}))  # fmt: skip
    assert cli("plan", "import", str(plan), env=env, cwd=tmp).returncode == 0
    clean = {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "ARCHITECT_API_KEY"))}
    ran = cli("run", "cmd", "--no-progress", "--config", str(cfg_file), env=clean, cwd=tmp)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = [r for r in server.calls() if r["feature"] == "cmd"]
    assert len(rows) == 1 and rows[0]["task"] == "C1" and rows[0]["key_id"]
    keys = orjson.loads(cli("keys", "list", "--all", "--json", env=env, cwd=tmp).stdout)["keys"]
    (key,) = [k for k in keys if k["id"] == rows[0]["key_id"]]
    assert key["revoked"] and key["temporary"] and (key["tags"] or {}).get("task") == "C1"
