"""`script`: any command, run with `sh -c` in the worktree (the configured args follow as `$1`…).

Its environment says where everything is: `ARCHITECT_PROMPT_FILE` (the prompt, Markdown),
`ARCHITECT_WORKTREE`, `ARCHITECT_GATEWAY_URL` (the gateway's root), `ARCHITECT_API_KEY` (the
attempt's key), `ARCHITECT_MODEL` (the model group), and the same for the OpenAI SDK
(`OPENAI_BASE_URL` = `{gateway}/v1`, `OPENAI_API_KEY`). Exit code 0 is success.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from architect.orchestrator.agents.base import AgentJob, Invocation, ProgramRunner, RunnerKind
from architect.orchestrator.agents.sandbox import Isolation

__all__ = ["ScriptRunner"]

# words a command may start with that are not a program to look for
_SHELL_WORDS = frozenset(
    {"cd", "exec", "set", "export", "if", "for", "while", "case", "{", "(", "!", "true", "false", ":", ".",
     "eval", "exit", "test", "[", "command", "env", "time", "nice", "umask", "ulimit"}
)  # fmt: skip


class ScriptRunner(ProgramRunner):
    kind: ClassVar[RunnerKind] = "script"
    default_program: ClassVar[str] = "sh"

    def __init__(
        self,
        name: str | None = None,
        *,
        command: str,
        model: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(name, model=model, program=None, args=args, env=env, timeout_s=timeout_s)
        self.command = command

    def program_word(self) -> str | None:
        """The program the command starts with (after `VAR=value` assignments), when it can be
        told without running a shell; None for a shell word or syntax this does not follow."""
        try:
            words = shlex.split(self.command)
        except ValueError:
            return None
        for word in words:
            if "=" in word and not word.startswith(("=", "/", ".")) and word.split("=", 1)[0].isidentifier():
                continue
            return None if word in _SHELL_WORDS else word
        return None

    def missing(self) -> str | None:
        if not self.command.strip():
            return "script has no command"
        word = self.program_word()
        if word is None:
            return None
        if "/" in word:  # a relative path is the worktree's, not known before the attempt
            p = Path(word).expanduser()
            if not p.is_absolute() or (p.is_file() and shutil.which(str(p))):
                return None
            return f"script: {word} is not installed (not an executable file)"
        return None if shutil.which(word) else f"script: {word} is not installed (looked for {word} on PATH)"

    def invocation(self, job: AgentJob, isolation: Isolation) -> Invocation:
        own = {
            "ARCHITECT_PROMPT_FILE": str(job.prompt_file),
            "ARCHITECT_WORKTREE": str(job.worktree),
            "ARCHITECT_GATEWAY_URL": job.root_url,
            "ARCHITECT_API_KEY": job.api_key,
            "ARCHITECT_MODEL": self.model_for(job),
            "OPENAI_BASE_URL": job.base_url,
            "OPENAI_API_KEY": job.api_key,
        }
        argv = ["/bin/sh", "-c", self.command, self.name, *self.args_for(job)]
        return Invocation(argv, self.env_for(job, own))
