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

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from architect.config import ModelGroupConfig
from tests.helpers import LiveServer, make_config
from tests.stubs.scripted_chat import Answer, ScriptedChatStub, last_message, text_of, tool_names

ROOT = Path(__file__).resolve().parents[3]
AGENTS = ROOT / "tests" / "agents"
CLAUDE = AGENTS / "node_modules" / ".bin" / "claude"
CODEX = AGENTS / "node_modules" / ".bin" / "codex"
AIDER = AGENTS / ".aider-venv" / "bin" / "aider"
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN = "sk-admin-agents-0123456789"
RUN_TIMEOUT_S = 90.0

# Model groups may get aliases (`aliases: ["claude-*"]`); until the config has them, a group is named
# after the model id the client asks for.
HAS_ALIASES = "aliases" in ModelGroupConfig.model_fields

# per group: (upstream model at the stub, input $/Mtok, output $/Mtok)
PRICES = {
    "coder": ("stub-aider", 0.5, 1.5),
    "agent": ("stub-claude", 3.0, 15.0),
    "agent-fast": ("stub-claude-fast", 1.0, 5.0),
    "codex": ("stub-codex", 1.25, 10.0),
}
CLAUDE_MODEL = "claude-sonnet-4-5"  # what Claude Code asks for (ANTHROPIC_MODEL)
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
def after_tool_result(body: dict[str, Any]) -> Answer | None:
    """A request holding a tool's result gets the final text, made from that result."""
    results = [text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]
    if not results:
        return None
    if m := re.search(r"secret word is (\w+)", results[-1]):
        return Answer(text=f"The secret word is {m.group(1)}.", prompt_tokens=1500, completion_tokens=12)
    if "Success. Updated the following files" in results[-1]:
        return Answer(text="Patched greet.txt.", prompt_tokens=1400, completion_tokens=8)
    return None


def read_the_file(body: dict[str, Any]) -> Answer | None:
    """Offered a `Read` tool and asked about an absolute path: read it."""
    if "Read" not in tool_names(body):
        return None
    asked = " ".join(text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user")
    if m := re.search(r"(/\S+?secret\.txt)", asked):
        return Answer(
            tool_calls=[("Read", {"file_path": m.group(1)})], prompt_tokens=1200, completion_tokens=30
        )
    return None


def apply_the_patch(body: dict[str, Any]) -> Answer | None:
    """Offered `apply_patch` (Codex's free-form tool, as a function of one string): patch greet.txt."""
    tool = tool_names(body).get("apply_patch")
    if tool is None:
        return None
    props = list((tool.get("parameters") or {}).get("properties") or {"input": {}})
    assert len(props) == 1, f"apply_patch should be a function of one string, got {props}"
    return Answer(tool_calls=[("apply_patch", {props[0]: PATCH})], prompt_tokens=1300, completion_tokens=40)


def search_replace(body: dict[str, Any]) -> Answer | None:
    """Aider's diff edit format: one SEARCH/REPLACE block for greet.py."""
    everything = " ".join(text_of(m.get("content")) for m in body.get("messages", []))
    if "SEARCH/REPLACE" not in text_of(last_message(body).get("content")) or "greet.py" not in everything:
        return None
    edit = (
        'greet.py\n```python\n<<<<<<< SEARCH\n    return "hello"\n=======\n'
        '    return "hello world"\n>>>>>>> REPLACE\n```\n'
    )
    return Answer(text=edit, prompt_tokens=900, completion_tokens=25)


RULES = [after_tool_result, read_the_file, apply_the_patch, search_replace]


# -- the gateway --------------------------------------------------------------------------------------
def gateway_config(stub_url: str) -> dict[str, Any]:
    def group(name: str, asked: str | None = None) -> dict[str, Any]:
        upstream, price_in, price_out = PRICES[name]
        out: dict[str, Any] = {
            "name": name,
            "deployments": [
                {
                    "provider": "stub",
                    "model": upstream,
                    "price": {"input_per_mtok": price_in, "output_per_mtok": price_out},
                }
            ],
        }
        if asked:
            if HAS_ALIASES:
                out["aliases"] = [asked]
            else:
                out["name"] = asked
        return out

    return {
        "auth": {"admin_key": ADMIN},
        "providers": [{"name": "stub", "kind": "openai", "base_url": stub_url, "api_key": "sk-upstream"}],
        "models": [
            group("coder"),
            group("agent", "claude-*" if HAS_ALIASES else CLAUDE_MODEL),
            group("agent-fast"),
            group("codex", CODEX_MODEL),
        ],
        "ledger": {"flush_interval_ms": 20},
    }


def group_for(name: str) -> str:
    """The name a group serves under (see HAS_ALIASES)."""
    if HAS_ALIASES:
        return name
    return {"agent": CLAUDE_MODEL, "codex": CODEX_MODEL}.get(name, name)


@dataclass
class Gateway:
    server: LiveServer
    stub: ScriptedChatStub

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

    def serves(self, path: str) -> bool:
        """Whether the gateway has a route (an unknown /v1 path is a 404 `unknown_url` before auth)."""
        r = httpx.post(self.url + path, json={}, timeout=10)
        return not (r.status_code == 404 and "unknown_url" in r.text)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    db = tmp_path_factory.mktemp("agents") / "architect.db"
    with (
        ScriptedChatStub(RULES) as stub,
        LiveServer(make_config(gateway_config(stub.url)), database_url=f"sqlite:///{db}") as server,
    ):
        yield Gateway(server, stub)


def expected_cost(group: str, answers: list[Answer]) -> float:
    _, price_in, price_out = PRICES[group]
    return sum(a.prompt_tokens * price_in + a.completion_tokens * price_out for a in answers) / 1e6


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
