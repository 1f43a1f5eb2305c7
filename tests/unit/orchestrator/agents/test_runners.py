"""The CLI runners' command lines and environments, the script runner really run, `build_runner`."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from architect.orchestrator.agents import (
    AgentJob,
    AiderRunner,
    BuiltinRunner,
    ClaudeCodeRunner,
    CodexRunner,
    Isolation,
    Ran,
    RunnerKind,
    Sandbox,
    ScriptRunner,
    build_runner,
    writable_paths,
)
from tests.helpers import git

BWRAP = Isolation("bwrap", "test")
RLIMITS = Isolation("rlimits", "test")


def executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_writable_paths_are_the_worktree_its_git_directory_and_scratch(job: AgentJob, tmp_path: Path) -> None:
    assert writable_paths(job) == [job.worktree, job.scratch, tmp_path / "repo" / ".git"]


def test_aider_command_line_and_environment(job: AgentJob, tmp_path: Path) -> None:
    program = executable(tmp_path / "venv" / "bin" / "aider", "exit 0\n")
    runner = AiderRunner("fixer", model="cfg-model", program=str(program), args=["--cfg-arg"], env={"A": "1"})
    inv = runner.invocation(dataclasses.replace(job, env={"B": "2"}), RLIMITS)
    meta = job.scratch / "aider-models.json"
    assert inv.argv == [
        str(program), "--message-file", str(job.prompt_file), "--model", "openai/coder",
        "--openai-api-base", "http://127.0.0.1:9/v1", "--model-metadata-file", str(meta),
        "--yes-always", "--no-check-update", "--analytics-disable", "--no-show-model-warnings",
        "--no-show-release-notes", "--map-tokens", "0", "--edit-format", "diff", "--no-stream", "--no-pretty",
        "--no-auto-lint", "--no-gitignore", "--no-suggest-shell-commands", "--no-detect-urls",
        "--input-history-file", str(job.scratch / "aider.input.history"),
        "--chat-history-file", str(job.scratch / "aider.chat.history.md"), "--cfg-arg",
    ]  # fmt: skip
    assert "sk-attempt-1" not in " ".join(inv.argv)  # the key is in the environment only
    assert inv.env["OPENAI_API_KEY"] == "sk-attempt-1" and inv.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert inv.env["HOME"] == str(job.scratch) and (inv.env["A"], inv.env["B"]) == ("1", "2")
    assert json.loads(meta.read_text())["openai/coder"]["litellm_provider"] == "openai"
    assert "name = Architect agent" in (job.scratch / ".gitconfig").read_text()
    # the job's args replace the configured ones; with no model in the job, the configured one
    inv = runner.invocation(dataclasses.replace(job, args=("--job-arg",), model=""), RLIMITS)
    assert inv.argv[-1] == "--job-arg" and "--cfg-arg" not in inv.argv and "openai/cfg-model" in inv.argv


def test_a_missing_program_is_named_and_the_attempt_fails(
    job: AgentJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert AiderRunner().missing() == "aider is not installed (looked for aider on PATH)"
    assert ClaudeCodeRunner().missing() == "claude-code is not installed (looked for claude on PATH)"
    assert (
        CodexRunner(program="/opt/none/codex").missing()
        == "codex is not installed (looked for /opt/none/codex)"
    )
    executable(tmp_path / "empty" / "codex", "exit 0\n")
    assert CodexRunner().missing() is None


async def test_running_a_missing_program_fails_without_starting_anything(job: AgentJob) -> None:
    outcome = await AiderRunner(program="/opt/none/aider").run(job, Sandbox(use_bwrap=False))
    assert (outcome.ok, outcome.reason) == (False, "not installed: aider")
    assert outcome.output == "aider is not installed (looked for /opt/none/aider)"


def test_claude_code_command_line_and_environment(job: AgentJob) -> None:
    inv = ClaudeCodeRunner(args=["--verbose"]).invocation(job, BWRAP)
    assert inv.argv[1:] == ["-p", job.prompt, "--allowedTools", "Read,Edit,Write,Bash", "--output-format", "json",
                            "--verbose"]  # fmt: skip
    env = inv.env
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9" and env["ANTHROPIC_API_KEY"] == "sk-attempt-1"
    for var in ("ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL"):
        assert env[var] == "coder"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["HOME"] == str(job.scratch)


FAKE_CLAUDE = """pwd > "$HOME/cwd"; printf '%s\\n' "$@" > "$HOME/argv"; env > "$HOME/env"
echo 'Claude Code does not recognize the model "coder"' >&2
echo '{"type":"result","subtype":"success","is_error":RESULT_ERROR,"num_turns":3,"result":"Done: edited app.py"}'
"""


async def test_claude_code_result_is_read_from_its_json(job: AgentJob) -> None:
    # in scratch: under bwrap the rest of /tmp is the sandbox's own, empty
    fake = executable(job.scratch / "bin" / "claude", FAKE_CLAUDE.replace("RESULT_ERROR", "false"))
    outcome = await ClaudeCodeRunner(program=str(fake)).run(job, Sandbox())
    assert outcome.ok and outcome.steps == 3 and outcome.output == "Done: edited app.py", outcome
    assert (job.scratch / "cwd").read_text().strip() == str(job.worktree)
    assert (job.scratch / "argv").read_text().splitlines()[:2] == ["-p", job.prompt.strip()]
    env = dict(line.split("=", 1) for line in (job.scratch / "env").read_text().splitlines() if "=" in line)
    assert env["ANTHROPIC_API_KEY"] == "sk-attempt-1" and env["TMPDIR"] == str(job.scratch / "tmp")

    fake = executable(job.scratch / "bin" / "claude", FAKE_CLAUDE.replace("RESULT_ERROR", "true"))
    outcome = await ClaudeCodeRunner(program=str(fake)).run(job, Sandbox())
    assert not outcome.ok and outcome.reason == "claude reported an error: Done: edited app.py"


def test_claude_code_refusals_are_named_in_the_output() -> None:
    # what Claude Code 2.1 prints when it will not edit a file under a `.git` path (tests/acceptance/agents)
    denied = {"tool_name": "Edit", "tool_use_id": "t1", "tool_input": {"file_path": "/r/.git/w/app.py",
              "old_string": "a", "new_string": "b"}}  # fmt: skip
    result = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 3, "result": "I could not edit it.",
              "permission_denials": [denied, {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}}]}  # fmt: skip
    outcome = ClaudeCodeRunner().outcome(Ran(0, "warning\n" + json.dumps(result) + "\n", 1.0), 30)
    assert outcome.ok and outcome.steps == 3  # the run itself succeeded; the executor sees no change
    assert outcome.output == (
        "I could not edit it.\n\nClaude Code refused (permissions):\n- Edit /r/.git/w/app.py\n- Bash rm -rf /"
    )
    many = {**result, "result": "", "permission_denials": [denied] * 7}
    lines = ClaudeCodeRunner().outcome(Ran(0, json.dumps(many), 1.0), 30).output.splitlines()
    assert (
        lines[0] == "Claude Code refused (permissions):" and len(lines) == 7 and lines[-1] == "- … and 2 more"
    )
    plain = {**result, "permission_denials": []}
    assert ClaudeCodeRunner().outcome(Ran(0, json.dumps(plain), 1.0), 30).output == "I could not edit it."


def test_codex_command_line_config_and_sandbox_mode(job: AgentJob) -> None:
    runner = CodexRunner(model="ignored")
    inv = runner.invocation(job, BWRAP)
    home = job.scratch / "codex"
    assert inv.argv[1:] == ["exec", "--skip-git-repo-check", "--sandbox", "danger-full-access", "-m", "coder",
                            "--", job.prompt]  # fmt: skip
    assert inv.env["CODEX_HOME"] == str(home) and inv.env["ARCHITECT_API_KEY"] == "sk-attempt-1"
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["model"] == "coder" and config["model_provider"] == "architect"
    assert config["model_providers"]["architect"] == {
        "name": "Architect", "base_url": "http://127.0.0.1:9/v1", "env_key": "ARCHITECT_API_KEY",
        "wire_api": "responses",
    }  # fmt: skip
    assert config["check_for_update_on_startup"] is False and not any(config["features"].values())
    assert (
        "--sandbox" in (argv := runner.invocation(job, RLIMITS).argv)
        and argv[argv.index("--sandbox") + 1] == "workspace-write"
    )
    forced = CodexRunner(sandbox_mode="read-only").invocation(job, BWRAP).argv
    assert forced[forced.index("--sandbox") + 1] == "read-only"


SCRIPT = """set -e
test "$(cat "$ARCHITECT_PROMPT_FILE")" = "Make greet() return hello world."
echo "$1" > from-script.txt
echo "url=$ARCHITECT_GATEWAY_URL openai=$OPENAI_BASE_URL key=$ARCHITECT_API_KEY/$OPENAI_API_KEY model=$ARCHITECT_MODEL wt=$ARCHITECT_WORKTREE home=$HOME"
"""


async def test_script_runner_really_runs_with_its_environment(job: AgentJob) -> None:
    runner = ScriptRunner("mine", command=SCRIPT, args=["first-arg"])
    outcome = await runner.run(job, Sandbox())
    assert outcome.ok, outcome.output
    assert (job.worktree / "from-script.txt").read_text() == "first-arg\n"
    assert outcome.output.strip() == (
        f"url=http://127.0.0.1:9 openai=http://127.0.0.1:9/v1 key=sk-attempt-1/sk-attempt-1 model=coder "
        f"wt={job.worktree} home={job.scratch}"
    )


async def test_script_runner_exit_codes_budget_and_timeout(job: AgentJob) -> None:
    sandbox = Sandbox()
    failed = await ScriptRunner(command="echo broken; exit 3").run(job, sandbox)
    assert (failed.ok, failed.reason, failed.stop) == (
        False,
        "exit code 3",
        None,
    ) and "broken" in failed.output
    refused = (
        "echo 'Error 429: budget exceeded: the key attempt budget (limit $0.05) has $0.0000 left'; exit 0"
    )
    out = await ScriptRunner(command=refused).run(job, sandbox)
    assert out.stop == "budget_exceeded" and not out.ok
    assert out.reason == "budget_exceeded: budget exceeded: the key attempt budget (limit $0.05)"
    coded = await ScriptRunner(command='echo \'{"error": {"code": "budget_exceeded"}}\'; exit 1').run(
        job, sandbox
    )
    assert coded.stop == "budget_exceeded"
    slow = await ScriptRunner(command="echo waiting; sleep 30", timeout_s=0.5).run(job, sandbox)
    assert (slow.stop, slow.reason) == ("timeout", "timed out after 0.5s") and "waiting" in slow.output


async def test_under_bwrap_an_agent_commits_in_its_worktree_but_writes_nothing_outside(
    job: AgentJob, bwrap: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "repo" / "outside.txt"  # the user's own working tree
    command = (f"echo new > new.txt && git add new.txt && git commit -qm 'agent work' && echo committed; "
               f"echo x > {outside}; true")  # fmt: skip
    outcome = await ScriptRunner(command=command).run(job, bwrap)
    assert outcome.ok and "committed" in outcome.output, outcome.output
    assert not outside.exists()  # under /tmp: it went to the sandbox's own /tmp, never to the host
    log = git(job.worktree, "log", "--format=%an|%s", "-1")
    assert log.strip() == "Architect agent|agent work"


def test_script_missing_looks_at_the_first_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert ScriptRunner(command="  ").missing() == "script has no command"
    assert ScriptRunner(command="no-such-agent --go").missing() == (
        "script: no-such-agent is not installed (looked for no-such-agent on PATH)"
    )
    assert ScriptRunner(command="/opt/none/agent").missing() == (
        "script: /opt/none/agent is not installed (not an executable file)"
    )
    for fine in ("FOO=1 sh -c true", "./in-the-worktree.sh", "cd sub && make", "echo $((1+1))"):
        assert ScriptRunner(command=fine).missing() is None, fine


@dataclass
class Spec:
    name: str
    runner: RunnerKind
    model: str | None = None
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    max_steps: int = 30
    timeout_s: float = 1800.0


def test_build_runner_takes_each_kind() -> None:
    builtin = build_runner(Spec("small", "builtin", model="m", max_steps=5, timeout_s=60))
    assert isinstance(builtin, BuiltinRunner) and (builtin.name, builtin.max_steps, builtin.timeout_s) == (
        "small",
        5,
        60,
    )
    aider = build_runner(Spec("ai", "aider", command="/opt/aider/bin/aider", args=["--x"], env={"K": "V"}))
    assert isinstance(aider, AiderRunner) and (aider.program, aider.args, aider.env) == (
        "/opt/aider/bin/aider",
        ("--x",),
        {"K": "V"},
    )
    assert isinstance(build_runner(Spec("cc", "claude-code")), ClaudeCodeRunner)
    assert isinstance(build_runner(Spec("cx", "codex")), CodexRunner)
    script = build_runner(Spec("s", "script", command="./agent.sh"))
    assert isinstance(script, ScriptRunner) and script.command == "./agent.sh" and script.kind == "script"
    with pytest.raises(ValueError, match="a script agent needs a command"):
        build_runner(Spec("s", "script"))
