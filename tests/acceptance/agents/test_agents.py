"""Aider, Claude Code and Codex CLI do one real task each through Architect (see conftest.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.agents.conftest import (
    AIDER,
    CLAUDE,
    CLAUDE_MODEL,
    CODEX,
    CODEX_MODEL,
    PRICES,
    Gateway,
    expected_cost,
    need,
    offline_env,
    run,
    text_of,
)

pytestmark = pytest.mark.timeout(180)


def check_ledger(gateway: Gateway, key_id: str, *, endpoint: str, asked: str, group: str) -> None:
    """One ledger row per upstream exchange: the endpoint the client called, the model it asked for and
    the group that served it, the upstream's own token counts and the cost at the configured price."""
    usages = [usage for _, _, usage in gateway.script.for_model(PRICES[group][0])]
    rows = gateway.rows(key_id)
    assert len(rows) == len(usages), (rows, usages)
    for row, usage in zip(rows, usages, strict=True):
        assert row["status"] == "ok" and row["http_status"] == 200, row
        assert (row["endpoint"], row["model"], row["model_group"]) == (endpoint, asked, group)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert not row["tokens_estimated"]
        assert row["cost_usd"] == pytest.approx(expected_cost(group, usage)) and row["cost_usd"] > 0
        assert row["cost_source"] == "config"


def test_aider_applies_one_edit_through_chat_completions(gateway: Gateway, tmp_path: Path) -> None:
    need(AIDER, "Aider")
    key, key_id = gateway.mint("aider")
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "greet.py"
    source.write_text('def greet():\n    return "hello"\n')
    for args in (
        ["init", "-q"],
        ["config", "user.name", "Agent Test"],
        ["config", "user.email", "agent@example.invalid"],
        ["add", "greet.py"],
        ["commit", "-qm", "start"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, timeout=30)
    # the model's metadata given locally: without it aider fetches litellm's price list from the internet
    meta = tmp_path / "models.json"
    meta.write_text(
        json.dumps(
            {"openai/coder": {"max_input_tokens": 32000, "litellm_provider": "openai", "mode": "chat"}}
        )
    )
    env = offline_env(tmp_path / "home", OPENAI_API_KEY=key, LITELLM_LOCAL_MODEL_COST_MAP="True")

    result = run(
        [
            str(AIDER), "--model", "openai/coder", "--openai-api-base", f"{gateway.url}/v1",
            "--model-metadata-file", str(meta),
            "--no-check-update", "--analytics-disable", "--no-show-model-warnings", "--map-tokens", "0",
            "--edit-format", "diff", "--yes-always", "--no-gitignore", "--no-auto-commits", "--no-auto-lint",
            "--no-pretty", "--no-show-release-notes",
            "--message", "Make greet() return hello world.", "greet.py",
        ],
        cwd=repo,
        env=env,
    )  # fmt: skip

    assert result.returncode == 0, result
    assert "Applied edit to greet.py" in result.stdout, result
    assert source.read_text() == 'def greet():\n    return "hello world"\n'
    check_ledger(gateway, key_id, endpoint="chat", asked="coder", group="coder")
    assert len(gateway.rows(key_id)) == 1


def test_claude_code_reads_a_file_through_messages(gateway: Gateway, tmp_path: Path) -> None:
    need(CLAUDE, "Claude Code")
    key, key_id = gateway.mint("claude-code")
    work = tmp_path / "work"
    work.mkdir()
    secret = work / "secret.txt"
    secret.write_text("the secret word is PELICAN\n")
    env = offline_env(
        tmp_path / "home",
        ANTHROPIC_BASE_URL=gateway.url,
        ANTHROPIC_API_KEY=key,
        ANTHROPIC_MODEL=CLAUDE_MODEL,
        ANTHROPIC_SMALL_FAST_MODEL="agent-fast",  # a group's own name
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
    )

    result = run(
        [str(CLAUDE), "-p", f"Read {secret} and tell me the secret word.", "--allowedTools", "Read"],
        cwd=work,
        env=env,
    )

    assert result.returncode == 0, result
    assert "The secret word is PELICAN." in result.stdout, result
    # the stub saw the Read tool offered, then the file's text coming back as the tool's result
    bodies = [body for body, _, _ in gateway.script.for_model(PRICES["agent"][0])]
    assert len(bodies) == 2
    assert not any(m["role"] == "tool" for m in bodies[0]["messages"])
    tool_results = [text_of(m["content"]) for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 1 and "the secret word is PELICAN" in tool_results[0]
    check_ledger(gateway, key_id, endpoint="messages", asked=CLAUDE_MODEL, group="agent")
    # what an OpenAI-compatible deployment cannot take is dropped and recorded, never refused
    for row in gateway.rows(key_id):
        assert row["stream"] and {"cache_control", "thinking", "output_config", "metadata.user_id"} <= set(
            row["dropped"].split(",")
        )


def test_codex_applies_a_patch_through_responses(gateway: Gateway, tmp_path: Path) -> None:
    need(CODEX, "Codex CLI")
    key, key_id = gateway.mint("codex")
    work = tmp_path / "work"
    work.mkdir()
    target = work / "greet.txt"
    target.write_text("hello\n")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    # everything that would reach outside (plugins, apps, analytics, update check) off; see CAPTURED.md
    (codex_home / "config.toml").write_text(
        f"""model = "{CODEX_MODEL}"
model_provider = "architect"
check_for_update_on_startup = false

[analytics]
enabled = false

[agents]
enabled = false

[features]
apps = false
plugins = false
remote_plugin = false
plugin_sharing = false
image_generation = false
goals = false
daemon_auto_start = false
api_key_model_discovery = false
tool_suggest = false
browser_use = false
computer_use = false

[model_providers.architect]
name = "Architect"
base_url = "{gateway.url}/v1"
env_key = "ARCHITECT_API_KEY"
wire_api = "responses"
"""
    )
    env = offline_env(tmp_path / "home", CODEX_HOME=str(codex_home), ARCHITECT_API_KEY=key)

    # the sandbox cannot confine a root process in this container (a workspace-write patch fails with
    # "Failed to write file"), so it runs unsandboxed: the test's own folder is all it touches
    result = run(
        [
            str(CODEX), "exec", "--skip-git-repo-check", "-s", "danger-full-access",
            "Change hello to hello world in greet.txt",
        ],
        cwd=work,
        env=env,
    )  # fmt: skip

    assert result.returncode == 0, result
    assert "Patched greet.txt." in result.stdout, result
    assert target.read_text() == "hello world\n"
    # the stub saw apply_patch offered as a function, then the patch's outcome as the tool's result
    bodies = [body for body, _, _ in gateway.script.for_model(PRICES["codex"][0])]
    assert len(bodies) == 2
    assert "apply_patch" in [t["function"]["name"] for t in bodies[0]["tools"]]
    outputs = [text_of(m["content"]) for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert len(outputs) == 1 and "Updated the following files" in outputs[0]
    check_ledger(gateway, key_id, endpoint="responses", asked=CODEX_MODEL, group="codex")
    # the built-in web_search tool a chat deployment cannot run is dropped and recorded, never refused
    assert all("web_search" in (row["dropped"] or "") for row in gateway.rows(key_id))
