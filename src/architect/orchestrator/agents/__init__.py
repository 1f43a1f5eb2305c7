"""Coding agents: the runners that do an agent task's attempt in its worktree, and the sandbox that
confines them and the validators they run.

`build_runner(agent config)` gives a `Runner` (builtin, aider, claude-code, codex, script); its
`run(AgentJob, Sandbox, on_process)` returns an `AgentOutcome`. `run_confined` runs any program
the same way (limits, bwrap where usable, process group killed on timeout or cancellation).
"""

from architect.orchestrator.agents.aider import AiderRunner
from architect.orchestrator.agents.base import (
    AgentJob,
    AgentOutcome,
    Invocation,
    ProgramRunner,
    Runner,
    RunnerKind,
    Stop,
    writable_paths,
)
from architect.orchestrator.agents.builtin import BuiltinRunner
from architect.orchestrator.agents.claude import ClaudeCodeRunner
from architect.orchestrator.agents.codex import CodexRunner
from architect.orchestrator.agents.edits import EditError, SearchReplace, apply_edits
from architect.orchestrator.agents.registry import AgentSpec, build_runner
from architect.orchestrator.agents.sandbox import (
    Isolation,
    Limits,
    OnProcess,
    Ran,
    Sandbox,
    SandboxUnavailable,
    base_env,
    run_confined,
)
from architect.orchestrator.agents.script import ScriptRunner

__all__ = [
    "AgentJob",
    "AgentOutcome",
    "AgentSpec",
    "AiderRunner",
    "BuiltinRunner",
    "ClaudeCodeRunner",
    "CodexRunner",
    "EditError",
    "Invocation",
    "Isolation",
    "Limits",
    "OnProcess",
    "ProgramRunner",
    "Ran",
    "Runner",
    "RunnerKind",
    "Sandbox",
    "SandboxUnavailable",
    "ScriptRunner",
    "SearchReplace",
    "Stop",
    "apply_edits",
    "base_env",
    "build_runner",
    "run_confined",
    "writable_paths",
]
