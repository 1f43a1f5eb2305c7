"""What a runner gets for one attempt (`AgentJob`), what it reports (`AgentOutcome`), the `Runner`
interface, and `ProgramRunner`, the shared body of the runners that start an installed agent CLI.

A runner's constructor takes the agent's configured values (name, model, program, args, env,
timeout); the job carries the attempt's own (the escalation ladder may change the model). Where both
give one: the job's model wins over the configured one, the job's args replace the configured args
when it has any, the job's env is laid over the configured env, and the shorter timeout applies.
"""

from __future__ import annotations

import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from architect.orchestrator.agents.sandbox import Isolation, OnProcess, Ran, Sandbox, run_confined
from architect.orchestrator.executors.base import tail

__all__ = [
    "AgentJob",
    "AgentOutcome",
    "Invocation",
    "ProgramRunner",
    "Runner",
    "RunnerKind",
    "Stop",
    "git_common_dir",
    "writable_paths",
]

RunnerKind = Literal["builtin", "aider", "claude-code", "codex", "script"]
Stop = Literal["budget_exceeded", "timeout", "repeated_failure"]
OUTPUT_TAIL = 8000
# the gateway's budget refusal as clients print it (access.budgets): "budget exceeded: the … (limit $…"
_BUDGET_MESSAGE = re.compile(r"budget exceeded: the [^\n]{0,200}?\(limit \$[0-9.,]+\)")

_GITCONFIG = """[user]
\tname = Architect agent
\temail = agent@architect.invalid
[safe]
\tdirectory = *
"""


@dataclass(frozen=True, slots=True)
class AgentJob:
    """Everything a runner gets for one attempt. `scratch` is the attempt's own directory (the
    agent's HOME and TMPDIR); `gateway_url` is the gateway's root (no `/v1`); `model` a model group."""

    worktree: Path
    prompt: str
    prompt_file: Path
    scratch: Path
    gateway_url: str
    api_key: str
    model: str
    timeout_s: float
    validator: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The gateway's OpenAI-compatible base URL (`…/v1`)."""
        return self.gateway_url.rstrip("/").removesuffix("/v1") + "/v1"

    @property
    def root_url(self) -> str:
        """The gateway's root URL (no `/v1`), as Anthropic clients want it."""
        return self.gateway_url.rstrip("/").removesuffix("/v1")


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """How an attempt's agent ended. `ok`: it finished (its work is still to be validated).
    `stop`: why it was stopped, when it was; `models`: the models that answered, when known;
    `steps`: model turns, when known; `output`: the tail of its output or transcript."""

    ok: bool
    reason: str | None = None
    output: str = ""
    stop: Stop | None = None
    models: list[str] = field(default_factory=list)
    steps: int | None = None


class Runner(Protocol):
    """One configured agent: `name` is the agent's name in the config, `kind` its runner."""

    name: str

    @property
    def kind(self) -> RunnerKind: ...

    def missing(self) -> str | None:
        """What is not installed for this runner (names the program and where it was looked for),
        or None when it can run."""

    async def run(self, job: AgentJob, sandbox: Sandbox, on_process: OnProcess | None = None) -> AgentOutcome:
        """Do one attempt in `job.worktree`; never raises for the agent's own failures."""
        ...


def git_common_dir(worktree: Path) -> Path | None:
    """The git directory shared by all worktrees of `worktree`'s repository, read from its `.git`
    file (`gitdir: …` then that directory's `commondir`), without running git."""
    dot = worktree / ".git"
    if dot.is_dir():
        return dot
    try:
        first = dot.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    if not first.startswith("gitdir:"):
        return None
    gitdir = (worktree / first.removeprefix("gitdir:").strip()).resolve()
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return gitdir
    return (gitdir / common).resolve()


def writable_paths(job: AgentJob) -> list[Path]:
    """What an agent may write in the sandbox: its worktree, the repository's git directory (its
    commits and index live there) and the attempt's scratch directory."""
    out = [job.worktree, job.scratch]
    common = git_common_dir(job.worktree)
    if common is not None and common.exists():
        out.append(common)
    return list(dict.fromkeys(p.absolute() for p in out))


def prepare_scratch(job: AgentJob) -> dict[str, str]:
    """Make the attempt's HOME (with a git identity for the agent's commits) and TMPDIR; the
    environment variables that point at them."""
    tmp = job.scratch / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    gitconfig = job.scratch / ".gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text(_GITCONFIG, encoding="utf-8")
    return {"HOME": str(job.scratch), "TMPDIR": str(tmp)}


@dataclass(frozen=True, slots=True)
class Invocation:
    """How a program is started: its argv, the environment over `base_env`, and its stdin."""

    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None = None


class ProgramRunner(ABC):
    """A runner that starts an installed agent CLI headless, confined, in the worktree. Subclasses
    say how (`invocation`) and, when they can, read more from its output (`outcome`)."""

    kind: ClassVar[RunnerKind]
    default_program: ClassVar[str]

    def __init__(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        program: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.name = name or self.kind
        self.model = model
        self.program = program
        self.args = tuple(args)
        self.env = dict(env or {})
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------ what subclasses give
    @abstractmethod
    def invocation(self, job: AgentJob, isolation: Isolation) -> Invocation:
        """argv, environment and stdin for this job (may write files into `job.scratch`)."""

    def outcome(self, ran: Ran, timeout_s: float) -> AgentOutcome:
        """The outcome from how the program ended: timed out, stopped by the gateway's refusal for
        the key's budget (its message in the output, or the `budget_exceeded` code after a failure),
        a non-zero exit, or success."""
        out = tail(ran.output, OUTPUT_TAIL)
        if ran.code is None:
            return AgentOutcome(False, f"timed out after {timeout_s:g}s", out, stop="timeout")
        refused = _BUDGET_MESSAGE.search(ran.output)
        if refused or (ran.code != 0 and "budget_exceeded" in ran.output):
            what = refused.group(0) if refused else "the gateway refused a call (budget_exceeded)"
            return AgentOutcome(False, f"budget_exceeded: {what}", out, "budget_exceeded")
        if ran.code != 0:
            return AgentOutcome(False, f"exit code {ran.code}", out)
        return AgentOutcome(True, None, out)

    # ------------------------------------------------------------------ shared
    def executable(self) -> str | None:
        """The program's path: the configured one (a path or a name looked up on PATH), else the
        default name on PATH; None when not found."""
        wanted = self.program or self.default_program
        if "/" in wanted:
            p = Path(wanted).expanduser()
            return str(p) if p.is_file() and shutil.which(str(p)) else None
        return shutil.which(wanted)

    def missing(self) -> str | None:
        if self.executable() is not None:
            return None
        wanted = self.program or self.default_program
        where = wanted if "/" in wanted else f"{wanted} on PATH"
        return f"{self.kind} is not installed (looked for {where})"

    def model_for(self, job: AgentJob) -> str:
        return job.model or self.model or "default"

    def args_for(self, job: AgentJob) -> list[str]:
        return list(job.args or self.args)

    def env_for(self, job: AgentJob, own: Mapping[str, str]) -> dict[str, str]:
        """HOME/TMPDIR in scratch, then the runner's own variables, the configured env, the job's."""
        return {**prepare_scratch(job), **own, **self.env, **job.env}

    def timeout_for(self, job: AgentJob) -> float:
        return min(job.timeout_s, self.timeout_s) if self.timeout_s else job.timeout_s

    async def run(self, job: AgentJob, sandbox: Sandbox, on_process: OnProcess | None = None) -> AgentOutcome:
        """Start the program confined in the worktree and read how it ended."""
        problem = self.missing()
        if problem is not None:
            return AgentOutcome(False, f"not installed: {self.kind}", problem)
        isolation = await sandbox.probe()
        inv = self.invocation(job, isolation)
        timeout = self.timeout_for(job)
        ran = await run_confined(
            inv.argv, cwd=job.worktree, env=inv.env, timeout_s=timeout, sandbox=sandbox,
            writable=writable_paths(job), on_process=on_process, stdin=inv.stdin,
        )  # fmt: skip
        return self.outcome(ran, timeout)
