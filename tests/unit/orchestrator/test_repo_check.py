"""A plan's `repo` must be a git repository and its `base` must resolve there, or the plan is refused
before any of it is stored (real git on repositories made by the test; the CLI end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from architect.cli.main import app as cli
from architect.errors import PlanError
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_yaml
from architect.orchestrator.repo_check import check_plan_repos, check_repo
from architect.store.orchestrator import SQLiteMemoryTaskRepo
from tests.helpers import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "shop"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "a.txt").write_text("a\n")
    git(r, "add", "a.txt")
    git(r, "commit", "-q", "-m", "first")
    return r


def test_a_repository_and_a_base_that_resolve(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert check_repo(str(repo), "main") == head
    assert check_repo(str(repo), None) == head  # no base: HEAD
    assert check_repo(str(repo), head[:10]) == head
    git(repo, "tag", "v1")
    assert check_repo(str(repo), "v1") == head


def test_what_is_refused_names_the_field(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(
        PlanError, match=f"^repo: {tmp_path}/none is not a git repository \\(no such directory\\)$"
    ):
        check_repo(str(tmp_path / "none"), None)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(
        PlanError, match=f"^repo: {plain} is not a git repository \\(fatal: not a git repository"
    ):
        check_repo(str(plain), "main")
    with pytest.raises(PlanError, match=f"^base: 'nope' does not resolve in {repo}$"):
        check_repo(str(repo), "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(PlanError, match=r"^base: not given, and HEAD does not resolve to a commit"):
        check_repo(str(empty), None)


def test_the_callers_git_environment_does_not_redirect_the_check(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))  # as inside a git hook
    with pytest.raises(PlanError, match="is not a git repository"):
        check_repo(str(plain), None)


def _plan(slug: str, repo: Path, base: str = "main") -> str:
    return f"title: {slug}\nrepo: {repo}\nbase: {base}\nphases: [{{tasks: [{{id: T1, title: a, agent: builtin}}]}}]\n"


def test_the_manager_refuses_every_plan_before_storing_any(repo: Path) -> None:
    store = SQLiteMemoryTaskRepo()
    m = Manager(store)
    plans = [*parse_yaml(_plan("good", repo)), *parse_yaml(_plan("bad", repo, "nope"))]
    with pytest.raises(PlanError, match=r"^features\[1\] \(bad\): base: 'nope' does not resolve in "):
        m.import_plans(plans)
    assert store.list_features() == []  # not even the good one
    m.import_plans(plans[:1])
    assert [f["slug"] for f in store.list_features()] == ["good"]
    check_plan_repos(
        parse_yaml("title: no repo\nphases: [{tasks: [{id: T1, title: a}]}]\n")
    )  # nothing to check


def test_plan_import_resolves_the_repo_from_the_file_and_checks_agents(repo: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/a.db"
    plans = tmp_path / "plans"
    plans.mkdir()
    md = plans / "f.md"
    md.write_text("---\nrepo: ../shop\nbase: main\n---\n# Feature: F\n## Phase 1: A\n- [ ] T1 a `@aider`\n")
    config = tmp_path / "c.yaml"
    config.write_text("agents: [{name: codex, runner: codex}]\n")
    env = {"ARCHITECT_CONFIG": ""}
    res = CliRunner().invoke(
        cli, ["plan", "import", str(md), "--database-url", db, "--config", str(config)], env=env
    )
    assert res.exit_code != 0
    assert "tasks[T1].agent: unknown agent 'aider' (known: builtin, codex)" in str(res.exception)
    res = CliRunner().invoke(cli, ["plan", "import", str(md), "--database-url", db, "--json"], env=env)
    assert res.exit_code == 0, res.output  # without a configuration the worker checks the agent
    res = CliRunner().invoke(cli, ["plan", "export", "f", "--database-url", db, "--format", "yaml"], env=env)
    assert f"repo: {repo.resolve()}" in res.output and "agent: aider" in res.output
    md.write_text(md.read_text().replace("base: main", "base: gone"))
    res = CliRunner().invoke(cli, ["plan", "import", str(md), "--database-url", db], env=env)
    assert "base: 'gone' does not resolve in" in str(res.exception)
