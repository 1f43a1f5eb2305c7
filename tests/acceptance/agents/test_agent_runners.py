"""A plan's task done by a real coding agent (Aider, Claude Code, Codex CLI), end to end, as a user runs
it: `architect plan import` and `architect run FEATURE --config` (the real CLI) with that agent's runner,
behind a gateway (in-process uvicorn on the CLI's SQLite database) in front of a scripted model. The
flow of tests/acceptance/test_agent_feature.py with the `builtin` agent swapped for each installed
client (issue 18's second bar).

The repository is made by the test: `calc/ops.py`, holding a nonce, whose `add` subtracts, and
`tests/test_ops.py`, which fails on it. The scripted model answers by request content, never by order,
and hands out the edit only once a request holds the nonce, i.e. after the agent showed it the file
(Aider: the file it added to the chat; Claude Code: its `Read` tool's result; Codex: the output of
`cat` through `exec_command`), in the agent's own way of editing: Aider a SEARCH/REPLACE block in its
`diff` format (then the commit message it asks for), Claude Code its `Edit` tool through `/v1/messages`
translated to chat completions, Codex `apply_patch` through `/v1/responses`. Each test checks the task
succeeded, the feature branch has one commit holding the edit and the validator passes on it, the
attempt row (agent, runner, outcome, isolation, files, validation), the ledger rows of the attempt's key
against the stub's own exchanges, and that no agent tried to reach anything but the gateway: the CLI
runs in conftest's offline environment with every proxy variable pointing at a recorder (NO_PROXY
127.0.0.1), and what the CLI starts inherits them.
"""

from __future__ import annotations

import asyncio
import os
import re
import socketserver
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from architect.orchestrator.agents import Sandbox
from tests.acceptance.agents.conftest import (
    AIDER,
    CLAUDE,
    CODEX,
    CODEX_MODEL,
    PRICES,
    ROOT,
    Reply,
    Script,
    call,
    expected_cost,
    gateway_config,
    need,
    offline_env,
    text_of,
    tools_offered,
)
from tests.helpers import LiveServer, git, make_config
from tests.stubs.scripted_chat import ScriptedChat

pytestmark = pytest.mark.timeout(180)

ARCHITECT = [sys.executable, "-m", "architect"]
SOURCE = "calc/ops.py"
WRONG, RIGHT = "    return a - b\n", "    return a + b\n"
COMMIT_MESSAGE = "fix: make add return the sum"  # the model's answer to Aider's commit-message request
DONE = "Fixed add() in calc/ops.py."  # the model's last word to Claude Code and Codex
LEFTOVER = "T1: work left uncommitted by the agent"  # the executor's commit of what an agent left
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def make_repo(root: Path, nonce: str) -> None:
    """calc/ops.py (the nonce, and an `add` that subtracts) and tests/test_ops.py, which fails."""
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "conftest.py").write_text("")
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    (root / SOURCE).write_text(f"# nonce: {nonce}\n\n\ndef add(a, b):\n{WRONG}")
    (root / "tests" / "test_ops.py").write_text(
        "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")


# -- the model's script: by request content ---------------------------------------------------------
def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("messages") or [])


def _all_text(body: dict[str, Any]) -> str:
    return "\n".join(text_of(m.get("content")) for m in _messages(body))


def _tool_results(body: dict[str, Any]) -> list[str]:
    return [text_of(m.get("content")) for m in _messages(body) if m.get("role") == "tool"]


def _is_task(body: dict[str, Any]) -> bool:
    """The request is about the plan's task: the briefing's heading is in a user message."""
    return any(
        "# Task T1: Fix add" in text_of(m.get("content")) for m in _messages(body) if m["role"] == "user"
    )


def _called(body: dict[str, Any]) -> list[str]:
    """The names of the tools the assistant messages a request carries back had called."""
    return [
        tc["function"]["name"]
        for m in _messages(body)
        if m.get("role") == "assistant"
        for tc in m.get("tool_calls") or ()
    ]


class FeatureScript(Script):
    """The agents' model: each rule knows one agent by what its request holds. `steps` names each
    answer in order (`agent:what`); `problems` is what no rule expected (the test fails on it)."""

    def __init__(self, nonce: str) -> None:
        super().__init__()
        self.nonce = nonce
        self.steps: list[str] = []
        self.problems: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        for rule in (self.aider_commit_message, self.aider, self.claude_code, self.codex):
            if (answer := rule(body)) is not None:
                step, reply = answer
                break
        else:
            last = (_messages(body) or [{}])[-1]
            step, reply = "unexpected", {"content": "I cannot help with that."}
            self.problems.append(f"no scripted answer for: {text_of(last.get('content'))[:300]!r}")
        usage = ScriptedChat.usage(body, {"role": "assistant", "content": None, **reply})
        with self._lock:
            self.exchanges.append((body, reply, usage))
            self.steps.append(step)
        return reply

    def _problem(self, what: str) -> tuple[str, Reply]:
        self.problems.append(what)
        return "problem", {"content": f"I cannot go on: {what}"}

    # Aider: no tools; its system prompt holds the SEARCH/REPLACE rules, and the chat holds the files the
    # prompt names (it adds them itself); then it asks for a commit message for the diff it applied
    def aider_commit_message(self, body: dict[str, Any]) -> tuple[str, Reply] | None:
        if "one-line Git commit messages" not in text_of((_messages(body) or [{}])[0].get("content")):
            return None
        if "+    return a + b" not in _all_text(body):
            return self._problem("aider asked for a commit message without the diff")
        return "aider:commit-message", {"content": COMMIT_MESSAGE}

    def aider(self, body: dict[str, Any]) -> tuple[str, Reply] | None:
        if body.get("tools") or "SEARCH/REPLACE" not in _all_text(body) or not _is_task(body):
            return None
        if self.nonce not in _all_text(body):
            return self._problem(f"aider did not show the model {SOURCE}")
        block = f"{SOURCE}\n```python\n<<<<<<< SEARCH\n{WRONG}=======\n{RIGHT}>>>>>>> REPLACE\n```\n"
        return "aider:edit", {"content": block}

    # Claude Code: Read, then Edit (absolute paths, in the working directory its environment text names)
    def claude_code(self, body: dict[str, Any]) -> tuple[str, Reply] | None:
        if not {"Read", "Edit"} <= set(tools_offered(body)) or not _is_task(body):
            return None
        cwd = re.search(r"Primary working directory: (\S+)", _all_text(body))
        if cwd is None:
            return self._problem("claude-code: no working directory in the request")
        results = _tool_results(body)
        if results and results[-1].startswith("[tool error]"):
            return self._problem(f"claude-code: {results[-1][:300]}")
        if results and "has been updated" in results[-1]:
            return "claude:done", {"content": DONE}
        path = f"{cwd.group(1)}/{SOURCE}"
        if self.nonce in "\n".join(results):
            edit = {"file_path": path, "old_string": WRONG.strip(), "new_string": RIGHT.strip()}
            return "claude:Edit", call("Edit", edit)
        return "claude:Read", call("Read", {"file_path": path})

    # Codex: `cat` through exec_command, then apply_patch (a custom tool: a function of one string)
    def codex(self, body: dict[str, Any]) -> tuple[str, Reply] | None:
        tools = tools_offered(body)
        if "exec_command" not in tools or not _is_task(body):
            return None
        results = _tool_results(body)
        if results and "Success. Updated the following files" in results[-1]:
            return "codex:done", {"content": DONE}
        if self.nonce not in "\n".join(results):
            return "codex:cat", call("exec_command", {"cmd": f"cat {SOURCE}"})
        if "apply_patch" not in tools:
            return self._problem("codex: apply_patch was not offered")
        (arg,) = (tools["apply_patch"].get("parameters") or {}).get("properties") or {"input": {}}
        patch = f"*** Begin Patch\n*** Update File: {SOURCE}\n@@\n def add(a, b):\n-{WRONG}+{RIGHT}*** End Patch\n"
        return "codex:apply_patch", call("apply_patch", {arg: patch})


# -- anything an agent tries to reach but the gateway ---------------------------------------------------
class ProxyRecorder:
    """An HTTP proxy on 127.0.0.1 that refuses everything and records each request line
    (`CONNECT host:443 …` for HTTPS): what a client tried to reach outside."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                seen.append(self.rfile.readline(2000).decode(errors="replace").strip())
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="proxy-recorder", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the world: a repository, the stub, a gateway, the CLI's config and environment --------------------
@dataclass
class World:
    repo: Path
    script: FeatureScript
    server: LiveServer
    proxy: ProxyRecorder
    tmp: Path
    db: str
    stub_url: str

    def env(self) -> dict[str, str]:
        """The CLI's environment (its agents inherit its PATH, locale and proxy variables): conftest's
        offline one with the proxies at the recorder, this checkout's code, the database, a home."""
        return offline_env(
            self.tmp / "cli-home", PYTHONPATH=str(ROOT / "src"), ARCHITECT_DATABASE_URL=self.db,
            ARCHITECT_HOME=str(self.tmp / "architect-home"), PYTHONDONTWRITEBYTECODE="1", COLUMNS="200",
        ) | dict.fromkeys(PROXY_VARS, self.proxy.url)  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ARCHITECT, *args], capture_output=True, text=True, env=self.env(), cwd=self.tmp, timeout=150
        )

    def config(self, agent: dict[str, Any]) -> Path:
        cfg = {
            **gateway_config(self.stub_url),
            "database_url": self.db,
            "agents": [{"timeout_s": 90, **agent}],
            "orchestrator": {"gateway_url": self.server.url, "validator_timeout_s": 60},
        }
        path = self.tmp / f"architect-{agent['name']}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def plan(self, slug: str, agent: str) -> Path:
        validator = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_ops.py"
        task = {
            "id": "T1", "title": "Fix add", "executor": "agent", "max_attempts": 1,
            "description": f"`add(a, b)` in {SOURCE} subtracts; make it return the sum. tests/test_ops.py checks it.",
        }  # fmt: skip
        plan = {"title": slug, "slug": slug, "project": "demo", "repo": str(self.repo), "base": "main",
                "agent": agent, "validator": validator, "phases": [{"number": 1, "title": "Fix", "tasks": [task]}]}  # fmt: skip
        path = self.tmp / f"{slug}.yaml"
        path.write_text(yaml.safe_dump(plan))
        return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    nonce = uuid.uuid4().hex
    repo = tmp_path / "repo"
    make_repo(repo, nonce)
    script = FeatureScript(nonce)
    db = f"sqlite:///{tmp_path / 'architect.db'}"
    proxy = ProxyRecorder()
    try:
        with ScriptedChat(script) as stub:
            config = make_config({**gateway_config(stub.url), "database_url": db})
            with LiveServer(config, database_url=db) as server:
                yield World(repo, script, server, proxy, tmp_path, db, stub.url)
    finally:
        proxy.close()


def expected_isolation() -> str:
    """What the executor's sandbox finds here: `bwrap` where bubblewrap works, else `rlimits`."""
    return asyncio.run(Sandbox().probe()).kind


def run_feature(world: World, slug: str, agent: dict[str, Any]) -> dict[str, Any]:
    """Import the one-task plan and run it with `agent`; check the task, the attempt and the feature
    branch. The attempt (with its usage) as `architect task show --json` gives it."""
    imported = world.cli("plan", "import", str(world.plan(slug, agent["name"])))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    ran = world.cli("run", slug, "--no-progress", "--config", str(world.config(agent)))
    shown = world.cli("task", "show", slug, "T1", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    (attempt,) = orjson.loads(shown.stdout)["attempts"]
    assert ran.returncode == 0, (
        f"{ran.stdout}\n{ran.stderr}\n--- attempt\n{attempt}\n--- {world.script.steps}"
    )
    assert not world.script.problems, world.script.problems
    assert world.proxy.seen == [], f"the agent tried to reach outside: {world.proxy.seen}"
    assert attempt["outcome"] == "succeeded", attempt
    assert (attempt["agent"], attempt["runner"]) == (agent["name"], agent["runner"])
    assert attempt["isolation"] == expected_isolation()
    assert attempt["files"] == [SOURCE] and (attempt["lines_added"], attempt["lines_removed"]) == (1, 1)
    assert attempt["validation"]["ok"] and attempt["validation"]["passed"] == 1, attempt["validation"]

    # the feature branch: one commit on base holding the edit, and the validator passes on it
    base = git(world.repo, "rev-parse", "main")
    (commit,) = git(world.repo, "log", "--format=%H|%s", f"{base}..architect/{slug}").splitlines()
    sha, subject = commit.split("|", 1)
    assert sha == attempt["merged_sha"] and subject == "T1: Fix add"
    assert git(world.repo, "diff", "--name-only", base, sha) == SOURCE
    assert git(world.repo, "show", f"{sha}:{SOURCE}").endswith(f"def add(a, b):\n{RIGHT.rstrip()}")
    check = world.tmp / "check"
    git(world.repo, "worktree", "add", "-q", "--detach", str(check), sha)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_ops.py"],
                           cwd=check, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout
    # the user's own tree is untouched; the merged attempt's worktree (out of the git directory) is gone
    assert git(world.repo, "status", "--porcelain") == ""
    assert git(world.repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert ".git" not in Path(attempt["worktree"]).parts and not Path(attempt["worktree"]).exists()
    return attempt


def check_ledger(
    world: World, attempt: dict[str, Any], slug: str, *, endpoint: str, asked: str, group: str
) -> None:
    """The ledger rows of the attempt's key: one per exchange the stub had for the group, on the endpoint
    the agent called, with the attempt's tags, the upstream's token counts and the configured price; the
    attempt's usage (`task show`) is their sum."""
    usages = [usage for _, _, usage in world.script.for_model(PRICES[group][0])]
    rows = sorted(
        (r for r in world.server.calls() if r["key_id"] == attempt["key_id"]), key=lambda r: r["ts"]
    )
    assert rows and len(rows) == len(usages), (rows, usages)
    tags = {"project": "demo", "feature": slug, "task": "T1", "attempt": "1", "agent": attempt["agent"]}
    for row, usage in zip(rows, usages, strict=True):
        assert row["status"] == "ok" and row["http_status"] == 200, row
        assert (row["endpoint"], row["model"], row["model_group"]) == (endpoint, asked, group)
        assert row["prompt_tokens"] == usage["prompt_tokens"], row
        assert row["completion_tokens"] == usage["completion_tokens"], row
        assert row["cost_usd"] == pytest.approx(expected_cost(group, usage)) and row["cost_usd"] > 0
        assert orjson.loads(row["tags"]).items() >= tags.items(), row["tags"]
    assert attempt["usage"]["calls"] == len(rows)
    assert attempt["usage"]["cost_usd"] == pytest.approx(sum(expected_cost(group, u) for u in usages))


# -- the runners -----------------------------------------------------------------------------------------
def test_aider_edits_commits_and_the_task_is_merged(world: World) -> None:
    need(AIDER, "Aider")
    agent = {"name": "aider", "runner": "aider", "command": str(AIDER), "model": "coder"}
    attempt = run_feature(world, "ops-aider", agent)
    # one request for the edit (the file already in the chat), one for the commit message of its own commit
    assert world.script.steps == ["aider:edit", "aider:commit-message"]
    assert [c["subject"] for c in attempt["commits"]] == [COMMIT_MESSAGE]
    check_ledger(world, attempt, "ops-aider", endpoint="chat", asked="coder", group="coder")


def test_claude_code_edits_with_its_edit_tool_and_the_task_is_merged(world: World) -> None:
    need(CLAUDE, "Claude Code")
    agent = {"name": "claude", "runner": "claude-code", "command": str(CLAUDE), "model": "agent"}
    attempt = run_feature(world, "ops-claude", agent)
    assert world.script.steps == ["claude:Read", "claude:Edit", "claude:done"]
    assert _called(world.script.exchanges[-1][0]) == ["Read", "Edit"]  # both ran and came back as results
    assert [c["subject"] for c in attempt["commits"]] == [LEFTOVER]  # Claude Code does not commit
    check_ledger(world, attempt, "ops-claude", endpoint="messages", asked="agent", group="agent")


def test_codex_patches_with_apply_patch_and_the_task_is_merged(world: World) -> None:
    need(CODEX, "Codex CLI")
    agent = {"name": "codex", "runner": "codex", "command": str(CODEX), "model": CODEX_MODEL}
    attempt = run_feature(world, "ops-codex", agent)
    assert world.script.steps == ["codex:cat", "codex:apply_patch", "codex:done"]
    assert [c["subject"] for c in attempt["commits"]] == [LEFTOVER]  # Codex does not commit
    check_ledger(world, attempt, "ops-codex", endpoint="responses", asked=CODEX_MODEL, group="codex")
