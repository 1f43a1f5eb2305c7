"""Real coding agents (Aider, Claude Code, Codex CLI) run headless against Architect.

Acceptance tests: each drives an unmodified third-party client as its user would, and checks what the
user sees (the client's answer, the edited file) and what the operator sees (the ledger). One gateway
serves the whole session: an in-process uvicorn server (`LiveServer`, ledger read directly) in front of
one scripted OpenAI-compatible stub that answers by request content. Every client gets its own virtual
key, a scratch HOME and an environment with nothing from the caller's: a proxy that goes nowhere
(`127.0.0.1:9`) with `NO_PROXY` for 127.0.0.1, and its telemetry and update checks turned off. What
each client sends was captured first (tests/agents/CAPTURED.md).

The clients are installed by `make agents` (a part of `make test`): npm into tests/agents/node_modules,
Aider into tests/agents/.aider-venv. Missing, a test skips with the reason, or fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import LiveServer, make_config
from tests.stubs.scripted_chat import ScriptedChat

ROOT = Path(__file__).resolve().parents[3]
AGENTS = ROOT / "tests" / "agents"
CLAUDE = AGENTS / "node_modules" / ".bin" / "claude"
CODEX = AGENTS / "node_modules" / ".bin" / "codex"
AIDER = AGENTS / ".aider-venv" / "bin" / "aider"
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN = "sk-admin-agents-0123456789"
RUN_TIMEOUT_S = 90.0

# per group: (upstream model at the stub, input $/Mtok, output $/Mtok)
PRICES = {
    "coder": ("stub-aider", 0.5, 1.5),
    "agent": ("stub-claude", 3.0, 15.0),
    "agent-fast": ("stub-claude-fast", 1.0, 5.0),
    "codex": ("stub-codex", 1.25, 10.0),
}
# what Claude Code asks for (ANTHROPIC_MODEL): its own default, whose requests have the newest shape
# (a `system` turn inside `messages`, adaptive thinking, output_config; see CAPTURED.md)
CLAUDE_MODEL = "claude-opus-5-5"
CODEX_MODEL = "gpt-5.5"  # a model Codex 0.171 has metadata for: it offers apply_patch as a custom tool

PATCH = "*** Begin Patch\n*** Update File: greet.txt\n@@\n-hello\n+hello world\n*** End Patch\n"


def need(binary: Path, what: str) -> None:
    """Skip (or fail under CI=true) when a client is not installed."""
    if binary.exists():
        return
    msg = f"{what} is not installed ({binary.relative_to(ROOT)}; `make agents` installs it)"
    if IN_CI:
        pytest.fail(msg + " and CI=true requires it", pytrace=False)
    pytest.skip(msg)


# -- the stub's script: answers chosen by what a request holds, never by its order ---------------------
Reply = dict[str, Any]  # the assistant message the stub sends: {"content": ...} or {"tool_calls": [...]}


def text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of parts)."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def tools_offered(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function tools a request offers: name -> its `function` object."""
    return {
        t["function"]["name"]: t["function"] for t in body.get("tools") or [] if t.get("type") == "function"
    }


def call(name: str, arguments: dict[str, Any]) -> Reply:
    fn = {"name": name, "arguments": json.dumps(arguments)}
    return {"content": None, "tool_calls": [{"id": f"call_{name}", "type": "function", "function": fn}]}


def after_tool_result(body: dict[str, Any]) -> Reply | None:
    """A request holding a tool's result gets the final text, made from that result."""
    results = [text_of(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool"]
    if not results:
        return None
    if m := re.search(r"secret word is (\w+)", results[-1]):
        return {"content": f"The secret word is {m.group(1)}."}
    if "Success. Updated the following files" in results[-1]:
        return {"content": "Patched greet.txt."}
    return None


def read_the_file(body: dict[str, Any]) -> Reply | None:
    """Offered a `Read` tool and asked about an absolute path: read it."""
    if "Read" not in tools_offered(body):
        return None
    asked = " ".join(text_of(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user")
    if m := re.search(r"(/\S+?secret\.txt)", asked):
        return call("Read", {"file_path": m.group(1)})
    return None


def apply_the_patch(body: dict[str, Any]) -> Reply | None:
    """Offered `apply_patch` (Codex's free-form tool, as a function of one string): patch greet.txt."""
    tool = tools_offered(body).get("apply_patch")
    if tool is None:
        return None
    props = list((tool.get("parameters") or {}).get("properties") or {"input": {}})
    if len(props) != 1:
        return {"content": f"apply_patch should be a function of one string, got {props}"}
    return call("apply_patch", {props[0]: PATCH})


def search_replace(body: dict[str, Any]) -> Reply | None:
    """Aider's diff edit format: one SEARCH/REPLACE block for greet.py."""
    msgs = body.get("messages") or [{}]
    everything = " ".join(text_of(m.get("content")) for m in msgs)
    if "SEARCH/REPLACE" not in text_of(msgs[-1].get("content")) or "greet.py" not in everything:
        return None
    edit = 'greet.py\n```python\n<<<<<<< SEARCH\n    return "hello"\n=======\n    return "hello world"\n>>>>>>> REPLACE\n```\n'
    return {"content": edit}


class Script:
    """The stub's reply: the first rule that takes the request answers it. Keeps every exchange with the
    usage the stub reports for it (`ScriptedChat.usage`), for checking the ledger against."""

    rules = (after_tool_result, read_the_file, apply_the_patch, search_replace)

    def __init__(self) -> None:
        self.exchanges: list[tuple[dict[str, Any], Reply, dict[str, int]]] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        reply = next((r for rule in self.rules if (r := rule(body)) is not None), None)
        if reply is None:  # the client shows this, and the test fails on its output
            last = (body.get("messages") or [{}])[-1]
            reply = {"content": f"no scripted answer for: {text_of(last.get('content'))[:200]!r}"}
        usage = ScriptedChat.usage(body, {"role": "assistant", "content": None, **reply})
        with self._lock:
            self.exchanges.append((body, reply, usage))
        return reply

    def for_model(self, upstream: str) -> list[tuple[dict[str, Any], Reply, dict[str, int]]]:
        with self._lock:
            return [e for e in self.exchanges if e[0].get("model") == upstream]


# -- the gateway --------------------------------------------------------------------------------------
def gateway_config(stub_url: str) -> dict[str, Any]:
    def group(name: str, aliases: list[str]) -> dict[str, Any]:
        upstream, price_in, price_out = PRICES[name]
        price = {"input_per_mtok": price_in, "output_per_mtok": price_out}
        return {
            "name": name,
            "aliases": aliases,
            "deployments": [{"provider": "stub", "model": upstream, "price": price}],
        }

    return {
        "auth": {"admin_key": ADMIN},
        "providers": [{"name": "stub", "kind": "openai", "base_url": stub_url, "api_key": "sk-upstream"}],
        "models": [
            group("coder", []),
            group("agent", ["claude-*"]),  # whatever Claude model id Claude Code asks for
            group("agent-fast", []),
            group("codex", [CODEX_MODEL]),
        ],
        "ledger": {"flush_interval_ms": 20},
    }


@dataclass
class Gateway:
    server: LiveServer
    script: Script

    @property
    def url(self) -> str:
        return self.server.url

    def mint(self, name: str) -> tuple[str, str]:
        """A new virtual key (secret, id) tagged with the agent's name as its project."""
        r = httpx.post(
            f"{self.url}/api/v1/keys",
            json={"name": name, "tags": {"project": name}},
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()["key"], r.json()["id"]

    def rows(self, key_id: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.server.calls() if r["key_id"] == key_id), key=lambda r: r["ts"])


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    db = tmp_path_factory.mktemp("agents") / "architect.db"
    script = Script()
    with (
        ScriptedChat(script) as stub,
        LiveServer(make_config(gateway_config(stub.url)), database_url=f"sqlite:///{db}") as server,
    ):
        yield Gateway(server, script)


def expected_cost(group: str, usage: dict[str, int]) -> float:
    _, price_in, price_out = PRICES[group]
    return (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6


# -- running a client ------------------------------------------------------------------------------------
def offline_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing inherited but PATH (node for the npm wrappers, git), a scratch
    HOME, and every proxy variable pointing at a closed local port, so only 127.0.0.1 is reachable."""
    home.mkdir(parents=True, exist_ok=True)
    dead = "http://127.0.0.1:9"
    node = shutil.which("node")  # the npm packages' `bin` entries are node scripts (codex) or natives
    dirs = [str(Path(node).parent)] if node else []
    path = os.pathsep.join(dict.fromkeys([*dirs, "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[var] = env[var.lower()] = dead
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return {**env, **extra}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT_S) -> Run:
    """Run a client to its end; on timeout its whole process group is killed and the test fails."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{Path(cmd[0]).name} did not finish within {timeout} s:\n{Run(-9, out, err)}")
    return Run(proc.returncode, out, err)
