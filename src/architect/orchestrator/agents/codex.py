"""`codex`: Codex CLI (`codex exec`) against the gateway's Responses API.

`CODEX_HOME` is a directory in the attempt's scratch holding a `config.toml` whose model provider is
the gateway (`{gateway_url}/v1`, `wire_api = "responses"`, the key read from `ARCHITECT_API_KEY`),
with the update check, analytics and every feature that would reach the internet turned off (see
tests/agents/CAPTURED.md). Its own sandbox: `danger-full-access` when Architect's bwrap sandbox
confines it already (Codex's sandbox cannot run inside another, nor as root in a container), else
`workspace-write`; `sandbox_mode` overrides both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import ClassVar

from architect.orchestrator.agents.base import AgentJob, Invocation, ProgramRunner, RunnerKind
from architect.orchestrator.agents.sandbox import Isolation

__all__ = ["CodexRunner", "codex_config"]

_FEATURES_OFF = (
    "apps", "plugins", "remote_plugin", "plugin_sharing", "image_generation", "goals", "daemon_auto_start",
    "api_key_model_discovery", "tool_suggest", "browser_use", "computer_use",
)  # fmt: skip


def codex_config(model: str, base_url: str) -> str:
    """`config.toml` for one attempt: the gateway as the only model provider, nothing else online."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        f"model = {q(model)}",
        'model_provider = "architect"',
        "check_for_update_on_startup = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[agents]",
        "enabled = false",
        "",
        "[features]",
        *(f"{name} = false" for name in _FEATURES_OFF),
        "",
        "[model_providers.architect]",
        'name = "Architect"',
        f"base_url = {q(base_url)}",
        'env_key = "ARCHITECT_API_KEY"',
        'wire_api = "responses"',
    ]
    return "\n".join(lines) + "\n"


class CodexRunner(ProgramRunner):
    kind: ClassVar[RunnerKind] = "codex"
    default_program: ClassVar[str] = "codex"

    def __init__(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        program: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        sandbox_mode: str | None = None,
    ) -> None:
        super().__init__(name, model=model, program=program, args=args, env=env, timeout_s=timeout_s)
        self.sandbox_mode = sandbox_mode

    def invocation(self, job: AgentJob, isolation: Isolation) -> Invocation:
        model = self.model_for(job)
        home = job.scratch / "codex"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(codex_config(model, job.base_url), encoding="utf-8")
        mode = self.sandbox_mode or ("danger-full-access" if isolation.kind == "bwrap" else "workspace-write")
        env = self.env_for(job, {"CODEX_HOME": str(home), "ARCHITECT_API_KEY": job.api_key})
        argv = [
            self.executable() or self.program or self.default_program,
            "exec", "--skip-git-repo-check", "--sandbox", mode, "-m", model, *self.args_for(job),
            "--", job.prompt,
        ]  # fmt: skip
        return Invocation(argv, env)
