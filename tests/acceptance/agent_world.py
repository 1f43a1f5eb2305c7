"""What the agent acceptance tests share: a small git repository made by the test (one module and
one test file per task, each module holding a nonce), the gateway config with a scripted `coder`
model group, a plan of agent tasks, and the real CLI in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import git

__all__ = [
    "ARCHITECT",
    "PRICE_IN",
    "PRICE_OUT",
    "agent_plan",
    "call",
    "cli",
    "gateway_config",
    "git",
    "make_repo",
]

PRICE_IN, PRICE_OUT = 1.0, 2.0  # $/Mtok of the `coder` group
ARCHITECT = [sys.executable, "-m", "architect"]


def make_repo(root: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """A small package: calc/<key>.py with a nonce and a stub function, tests/test_<key>.py; -> nonces."""
    nonces = {}
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "conftest.py").write_text("")
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    for key in keys:
        n = int(key[1:])
        nonces[key] = uuid.uuid4().hex
        (root / "calc" / f"{key.lower()}.py").write_text(
            f"# nonce: {nonces[key]}\n\n\ndef f{n}(x):\n    raise NotImplementedError\n"
        )
        (root / "tests" / f"test_{key.lower()}.py").write_text(
            f"from calc.{key.lower()} import f{n}\n\n\ndef test_{key.lower()}():\n    assert f{n}(10) == {10 + n}\n"
        )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return nonces


def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """An assistant message calling the tool `name` with `args`."""
    fn = {"name": name, "arguments": orjson.dumps(args).decode()}
    return {
        "content": None,
        "tool_calls": [{"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function", "function": fn}],
    }


def gateway_config(stub_url: str, db: str, gateway_url: str | None) -> dict[str, Any]:
    """The gateway's config (a `coder` group on the stub, priced; a `dream` group on the simulated
    fleet, whose answers are nonsense) with the builtin agents `coder` and `dreamer`; with
    `gateway_url`, the orchestrator section that points workers at the running gateway."""
    cfg: dict[str, Any] = {
        "database_url": db,
        "providers": [{"name": "stub", "kind": "openai", "base_url": stub_url, "api_key": "sk-up"},
                      {"name": "sim", "kind": "simulated"}],
        "models": [{"name": "coder", "deployments": [{"provider": "stub", "model": "stub-coder",
                    "price": {"input_per_mtok": PRICE_IN, "output_per_mtok": PRICE_OUT}}]},
                   {"name": "dream", "deployments": [{"provider": "sim", "model": "sim-dream",
                    "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},
                    "simulate": {"ttft_ms": 1, "tokens_per_s": 5000, "seed": 7}}]}],
        "agents": [{"name": "coder", "runner": "builtin", "model": "coder", "max_steps": 12, "timeout_s": 120},
                   {"name": "dreamer", "runner": "builtin", "model": "dream", "max_steps": 6, "timeout_s": 60}],
        "ledger": {"flush_interval_ms": 20},
    }  # fmt: skip
    if gateway_url:
        cfg["orchestrator"] = {"gateway_url": gateway_url}
    return cfg


def agent_plan(
    repo: Path,
    slug: str,
    keys: tuple[str, ...],
    deps: dict[str, str],
    *,
    validator: str | None = None,
    **task_extra: Any,
) -> dict[str, Any]:
    """A feature of agent tasks (the feature's agent: `coder`), one per key: make f<n>(x) return
    x + n in calc/<key>.py, validated by its own test file (`validator`: a shell command with `{k}`
    for the key in lower case). Tasks with a dependency go into phase 2."""
    validator = validator or f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_{{k}}.py"

    def task(k: str) -> dict[str, Any]:
        return {"id": k, "title": f"Implement f{k[1:]}", "description": f"In calc/{k.lower()}.py make f{k[1:]}(x) "
                f"return x + {k[1:]}.", "executor": "agent", "validator": validator.format(k=k.lower()),
                **({"after": [deps[k]]} if k in deps else {}), **task_extra}  # fmt: skip

    phase1 = [task(k) for k in keys if k not in deps]
    phase2 = [task(k) for k in keys if k in deps]
    phases = [{"number": 1, "title": "First", "tasks": phase1}]
    if phase2:
        phases.append({"number": 2, "title": "Second", "tasks": phase2})
    return {"title": slug, "slug": slug, "project": "demo", "repo": str(repo), "base": "main", "agent": "coder",
            "phases": phases}  # fmt: skip


def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real `architect` CLI, run to its end."""
    return subprocess.run(
        [*ARCHITECT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
