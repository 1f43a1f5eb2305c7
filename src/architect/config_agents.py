"""The configuration of coding agents (`agents:`) and of the orchestrator's worker (`orchestrator:`).

`architect.config` imports these models into `Config` and re-exports them; this module holds only
the value objects and `check_agents`, the cross-checks `Config` runs against its model groups (an
agent's model and every escalation step must name something the config defines). The implicit
`builtin` agent (`BUILTIN`) exists whenever no configured agent takes that name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AGENT_NAME",
    "BUILTIN",
    "RUNNERS",
    "AgentConfig",
    "EscalateStep",
    "OrchestratorConfig",
    "RunnerKind",
    "check_agents",
]

RunnerKind = Literal["builtin", "aider", "claude-code", "codex", "script"]
RUNNERS: tuple[RunnerKind, ...] = ("builtin", "aider", "claude-code", "codex", "script")
# An agent's name as plans write it (`@name` in Markdown, `agent:` in YAML) and tasks store it.
AGENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalateStep(_Model):
    """From attempt `attempt` on (until a later step), a task's attempts use this model group and/or
    agent instead of the configured ones."""

    attempt: int = Field(
        ge=2, le=100, description="the first attempt this step applies to (2 = the first retry)"
    )
    model: str | None = Field(
        default=None, min_length=1, description="the model group attempts use from here"
    )
    agent: str | None = Field(
        default=None, pattern=AGENT_NAME, description="another configured agent that takes over from here"
    )

    @model_validator(mode="after")
    def _changes_something(self) -> EscalateStep:
        if self.model is None and self.agent is None:
            raise ValueError("an escalation step needs model, agent or both")
        return self


class AgentConfig(_Model):
    """A coding agent plan tasks can name (`agent: NAME`, or `` `@NAME` `` on a Markdown task line): how
    it is started (its runner), the model group it calls through the gateway, and its limits."""

    name: str = Field(pattern=AGENT_NAME, description="the name plans use (`@name`); unique")
    runner: RunnerKind = Field(
        description="`builtin` (Architect's own small agent), `aider`, `claude-code`, `codex`, or `script` "
        "(any command, given the prompt file, worktree, gateway URL and key in its environment)"
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        description="the model group the agent calls (checked against `models` when the config has any)",
    )
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="USD budget of each attempt (the attempt's key); a plan's budget_usd wins",
    )
    timeout_s: float = Field(default=1800.0, gt=0, le=7 * 86400, description="longest an attempt may run")
    args: list[str] = Field(
        default_factory=list, description="extra arguments appended to the agent's command"
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        description="the program to run (a path; default: the runner's program on PATH); "
        "for `script`, the command, run with `sh -c` (required)",
    )
    max_steps: int = Field(default=30, ge=1, le=1000, description="model calls per attempt (`builtin` only)")
    env: dict[str, str] = Field(
        default_factory=dict, repr=False, description="extra environment variables of the agent's process"
    )
    escalate: list[EscalateStep] = Field(
        default_factory=list,
        description="later attempts' stronger model group or other agent, by attempt number (increasing)",
    )

    @field_validator("escalate")
    @classmethod
    def _increasing(cls, v: list[EscalateStep]) -> list[EscalateStep]:
        for i in range(1, len(v)):
            if v[i].attempt <= v[i - 1].attempt:
                raise ValueError(
                    f"steps must be in increasing attempt order (step {i}: attempt {v[i].attempt} after "
                    f"{v[i - 1].attempt})"
                )
        return v

    @model_validator(mode="after")
    def _script_needs_command(self) -> AgentConfig:
        if self.runner == "script" and not self.command:
            raise ValueError("a 'script' agent needs command (the command it runs)")
        return self


BUILTIN = AgentConfig(name="builtin", runner="builtin")


class OrchestratorConfig(_Model):
    """What `architect worker` and `architect run` need beyond the plan: where the gateway is (agents and
    command tasks get its URL and a key of their own) and how long validation may run."""

    gateway_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="the gateway's base URL (without /v1) agents call; default http://{server.host}:{server.port} "
        "(a wildcard host becomes the loopback address)",
    )
    validator_timeout_s: float = Field(
        default=600.0, gt=0, le=86400, description="longest a task's validator may run"
    )
    default_agent: str = Field(
        default="builtin",
        pattern=AGENT_NAME,
        description="the agent of agent tasks whose task and feature name none",
    )


def _known_model(name: str, groups: Sequence[tuple[str, Sequence[str]]]) -> bool:
    """`name` is a model group's name, an exact alias or matches an alias pattern."""
    for group, aliases in groups:
        if name == group or name in aliases:
            return True
        if any(("*" in a or "?" in a) and fnmatch.fnmatchcase(name, a) for a in aliases):
            return True
    return False


def check_agents(
    agents: Sequence[AgentConfig],
    groups: Sequence[tuple[str, Sequence[str]]],
    orchestrator: OrchestratorConfig,
) -> None:
    """Refuse (ValueError naming the field) duplicate agent names, an escalation to an unknown agent, a
    default agent that does not exist, and, when `groups` (name, aliases) is not empty, a model that
    names no model group."""
    names: set[str] = set()
    for i, a in enumerate(agents):
        if a.name in names:
            raise ValueError(f"agents[{i}].name: agent {a.name!r} is defined twice")
        names.add(a.name)
    known = names | {BUILTIN.name}
    for i, a in enumerate(agents):
        if groups and a.model is not None and not _known_model(a.model, groups):
            raise ValueError(f"agents[{i}].model: unknown model group {a.model!r}")
        for j, step in enumerate(a.escalate):
            if step.agent is not None and step.agent not in known:
                raise ValueError(
                    f"agents[{i}].escalate[{j}].agent: unknown agent {step.agent!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
            if groups and step.model is not None and not _known_model(step.model, groups):
                raise ValueError(f"agents[{i}].escalate[{j}].model: unknown model group {step.model!r}")
    if orchestrator.default_agent not in known:
        raise ValueError(
            f"orchestrator.default_agent: unknown agent {orchestrator.default_agent!r} "
            f"(known: {', '.join(sorted(known))})"
        )
