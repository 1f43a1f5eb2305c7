"""`aider`: Aider (`aider-chat`, in a virtualenv of its own) headless against the gateway.

The prompt goes in through `--message-file`; `--yes-always` answers its questions; it talks to the
gateway as an OpenAI-compatible provider (`openai/<model group>`, the key in `OPENAI_API_KEY`, not on
the command line); its commits are kept (auto-commits stay on). Everything that would reach the
internet is off: the update check, analytics, URL detection, and litellm's price list (the model's
metadata is given in a local file, `LITELLM_LOCAL_MODEL_COST_MAP=True`). Its history files go to the
attempt's scratch directory, so the worktree holds only the task's changes. Shell commands the model
suggests are not run. See tests/agents/CAPTURED.md for what it sends.
"""

from __future__ import annotations

import json
from typing import ClassVar

from architect.orchestrator.agents.base import AgentJob, Invocation, ProgramRunner, RunnerKind
from architect.orchestrator.agents.sandbox import Isolation

__all__ = ["AiderRunner"]

CONTEXT_TOKENS = 128_000


class AiderRunner(ProgramRunner):
    kind: ClassVar[RunnerKind] = "aider"
    default_program: ClassVar[str] = "aider"

    def invocation(self, job: AgentJob, isolation: Isolation) -> Invocation:
        model = self.model_for(job)
        env = self.env_for(job, {"OPENAI_API_KEY": job.api_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        meta = job.scratch / "aider-models.json"
        meta.write_text(
            json.dumps(
                {
                    f"openai/{model}": {
                        "max_input_tokens": CONTEXT_TOKENS,
                        "litellm_provider": "openai",
                        "mode": "chat",
                    }
                }
            ),
            encoding="utf-8",
        )
        argv = [
            self.executable() or self.program or self.default_program,
            "--message-file", str(job.prompt_file),
            "--model", f"openai/{model}", "--openai-api-base", job.base_url,
            "--model-metadata-file", str(meta),
            "--yes-always", "--no-check-update", "--analytics-disable", "--no-show-model-warnings",
            "--no-show-release-notes", "--map-tokens", "0", "--edit-format", "diff", "--no-stream",
            "--no-pretty", "--no-auto-lint", "--no-gitignore", "--no-suggest-shell-commands", "--no-detect-urls",
            "--input-history-file", str(job.scratch / "aider.input.history"),
            "--chat-history-file", str(job.scratch / "aider.chat.history.md"),
            *self.args_for(job),
        ]  # fmt: skip
        return Invocation(argv, env)
