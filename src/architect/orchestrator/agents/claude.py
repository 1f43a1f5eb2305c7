"""`claude-code`: Claude Code in print mode (`claude -p PROMPT`) against the gateway's Messages API.

`ANTHROPIC_BASE_URL` is the gateway's root (Claude Code appends `/v1/messages`), `ANTHROPIC_API_KEY`
the attempt's key, and every model it may ask for (`ANTHROPIC_MODEL`, the small/fast one, the
default opus/sonnet/haiku aliases) is the job's model group, so all its calls land on that group.
Telemetry, error reporting and the auto-updater are off; HOME is the attempt's scratch directory.
The tools it may use without asking are Read, Edit, Write and Bash (as root,
`--dangerously-skip-permissions` is refused). With `--output-format json` its stdout ends with one
JSON result object: `is_error`, `result` (the final text), `num_turns`, `permission_denials` (the tool
calls it refused to run; print mode asks nobody). See tests/agents/CAPTURED.md.

Claude Code refuses to edit any file with a `.git` component in its path ("… which is a sensitive
file"), whatever `--allowedTools` says: that is why attempt worktrees live outside the repository's git
directory (`orchestrator.git`). Such refusals do not fail the run (exit 0, `is_error` false), so the
outcome's output names them: an attempt that changed nothing then says why.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from architect.orchestrator.agents.base import (
    OUTPUT_TAIL,
    AgentJob,
    AgentOutcome,
    Invocation,
    ProgramRunner,
    RunnerKind,
)
from architect.orchestrator.agents.sandbox import Isolation, Ran
from architect.orchestrator.executors.base import tail

__all__ = ["ClaudeCodeRunner", "denials", "read_result"]

ALLOWED_TOOLS = "Read,Edit,Write,Bash"


def denials(result: dict[str, Any], limit: int = 5) -> list[str]:
    """The tool calls Claude Code refused to run, as `Tool target` lines (the first `limit`)."""
    out: list[str] = []
    found = result.get("permission_denials")
    for d in found if isinstance(found, list) else []:
        if not isinstance(d, dict):
            continue
        raw = d.get("tool_input")
        args: dict[str, Any] = raw if isinstance(raw, dict) else {}
        target = next((str(args[k]) for k in ("file_path", "command", "path", "pattern") if args.get(k)), "")
        out.append(f"{d.get('tool_name') or 'a tool'} {target[:200]}".strip())
    return out[:limit] + ([f"… and {len(out) - limit} more"] if len(out) > limit else [])


def read_result(output: str) -> dict[str, Any] | None:
    """The last `{"type": "result", …}` JSON line of Claude Code's output, if any."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


class ClaudeCodeRunner(ProgramRunner):
    kind: ClassVar[RunnerKind] = "claude-code"
    default_program: ClassVar[str] = "claude"

    def invocation(self, job: AgentJob, isolation: Isolation) -> Invocation:
        model = self.model_for(job)
        own = {
            "ANTHROPIC_BASE_URL": job.root_url,
            "ANTHROPIC_API_KEY": job.api_key,
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_SMALL_FAST_MODEL": model,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }
        argv = [
            self.executable() or self.program or self.default_program,
            "-p", job.prompt, "--allowedTools", ALLOWED_TOOLS, "--output-format", "json",
            *self.args_for(job),
        ]  # fmt: skip
        return Invocation(argv, self.env_for(job, own))

    def outcome(self, ran: Ran, timeout_s: float) -> AgentOutcome:
        """As any program, then from its JSON result: an error result fails the attempt with its
        text; the output is the final text and the tool calls it refused; the number of turns is the
        step count."""
        base = super().outcome(ran, timeout_s)
        result = read_result(ran.output)
        if result is None:
            return base
        turns = result.get("num_turns")
        steps = turns if isinstance(turns, int) else None
        text = str(result.get("result") or "")
        refused = denials(result)
        shown = "\n".join(
            [text, "", "Claude Code refused (permissions):", *(f"- {d}" for d in refused)]
        ).strip()
        out = tail(shown if refused else text, OUTPUT_TAIL) if text or refused else base.output
        if base.ok and result.get("is_error"):
            why = text[:300] or str(result.get("subtype") or "error")
            return AgentOutcome(False, f"claude reported an error: {why}", out, steps=steps)
        return AgentOutcome(base.ok, base.reason, out, base.stop, steps=steps)
