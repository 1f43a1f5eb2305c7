"""Fixtures of the agent tests: sandboxes, and a job in a real git worktree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from architect.orchestrator.agents import AgentJob, Limits, Sandbox
from tests.helpers import git

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
async def bwrap() -> Sandbox:
    """A sandbox whose probe found bwrap usable; skipped (failed under CI=true) when it is not."""
    sandbox = Sandbox()
    isolation = await sandbox.probe()
    if isolation.kind != "bwrap":
        msg = f"bwrap is unusable here: {isolation.detail}"
        if IN_CI:
            pytest.fail(msg + " and CI=true requires it", pytrace=False)
        pytest.skip(msg)
    return sandbox


@pytest.fixture
def limits_only() -> Sandbox:
    return Sandbox(Limits(), use_bwrap=False)


@pytest.fixture
def job(tmp_path: Path) -> AgentJob:
    """A job in a worktree of a fresh repository (as the agent executor makes them: in Architect's home,
    out of the repository and its git directory), with `app.py` committed and a scratch directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text('def greet():\n    return "hello"\n')
    git(repo, "add", "app.py")
    git(repo, "commit", "-qm", "start")
    worktree = tmp_path / "home" / "worktrees" / "repo-0123456789" / "feat" / "T1-a1"
    git(repo, "worktree", "add", "-q", "-b", "architect-task/feat/T1-a1", str(worktree), "main")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prompt = "Make greet() return hello world.\n"
    prompt_file = scratch / "prompt.md"
    prompt_file.write_text(prompt)
    return AgentJob(
        worktree=worktree, prompt=prompt, prompt_file=prompt_file, scratch=scratch,
        gateway_url="http://127.0.0.1:9", api_key="sk-attempt-1", model="coder", timeout_s=30,
    )  # fmt: skip
