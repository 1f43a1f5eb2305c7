"""`build_runner`: the runner for one configured agent (a typed match over its runner kind).

It takes anything shaped like the config's `AgentConfig` (`AgentSpec`), so the orchestrator does not
depend on how the config is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, assert_never

from architect.orchestrator.agents.aider import AiderRunner
from architect.orchestrator.agents.base import Runner, RunnerKind
from architect.orchestrator.agents.builtin import BuiltinRunner
from architect.orchestrator.agents.claude import ClaudeCodeRunner
from architect.orchestrator.agents.codex import CodexRunner
from architect.orchestrator.agents.script import ScriptRunner

__all__ = ["AgentSpec", "build_runner"]


class AgentSpec(Protocol):
    """The fields of a configured agent a runner needs (`config.AgentConfig` has them)."""

    @property
    def name(self) -> str: ...
    @property
    def runner(self) -> RunnerKind: ...
    @property
    def model(self) -> str | None: ...
    @property
    def command(self) -> str | None: ...
    @property
    def args(self) -> Sequence[str]: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def timeout_s(self) -> float: ...


def build_runner(cfg: AgentSpec, *, validator_timeout_s: float = 600.0) -> Runner:
    """The runner of `cfg`. `command` is the program's path for aider, claude-code and codex (else
    their usual name on PATH) and the shell command of `script` (required: a `ValueError` without)."""
    name, model, args, env, timeout = cfg.name, cfg.model, tuple(cfg.args), dict(cfg.env), cfg.timeout_s
    match cfg.runner:
        case "builtin":
            return BuiltinRunner(
                name, model=model, max_steps=cfg.max_steps, timeout_s=timeout, env=env,
                validator_timeout_s=validator_timeout_s,
            )  # fmt: skip
        case "aider":
            return AiderRunner(name, model=model, program=cfg.command, args=args, env=env, timeout_s=timeout)
        case "claude-code":
            return ClaudeCodeRunner(
                name, model=model, program=cfg.command, args=args, env=env, timeout_s=timeout
            )
        case "codex":
            return CodexRunner(name, model=model, program=cfg.command, args=args, env=env, timeout_s=timeout)
        case "script":
            if not cfg.command:
                raise ValueError(f"agent {name}: a script agent needs a command")
            return ScriptRunner(name, command=cfg.command, model=model, args=args, env=env, timeout_s=timeout)
        case _:
            assert_never(cfg.runner)
