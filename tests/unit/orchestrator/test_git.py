"""orchestrator.git against real repositories made in tmp_path."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from architect.errors import GitError
from architect.orchestrator.git import (
    Commit,
    Git,
    attempt_branch,
    attempt_worktree,
    feature_branch,
    merge_worktree,
    repo_worktrees,
    settle,
)

_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {"GIT_CONFIG_NOSYSTEM": "1"}


def sh(cwd: Path, *args: str) -> str:
    """Run git synchronously (test set-up and checks) as a fixed test identity."""
    return subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com", *args],
        cwd=cwd, env=_ENV, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    """Write (None: delete) files in `repo` and commit them; the new SHA."""
    for name, text in files.items():
        if text is None:
            (repo / name).unlink()
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
    sh(repo, "add", "-A")
    sh(repo, "commit", "-q", "-m", message)
    return sh(repo, "rev-parse", "HEAD")


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    sh(repo, "init", "-q", "-b", "main")
    commit(repo, {"app.py": "def f():\n    return 1\n", "README": "hello\n"}, "base")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


async def test_open_refuses_what_is_not_a_repository_top_level(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="is not a git repository"):
        await Git.open(tmp_path / "plain")
    with pytest.raises(GitError, match="no such directory"):
        await Git.open(tmp_path / "missing")
    (repo / "sub").mkdir()
    with pytest.raises(GitError, match="lies inside the repository at"):
        await Git.open(repo / "sub")
    git = await Git.open(repo)
    assert git.repo == repo.resolve()
    assert await git.common_dir() == (repo / ".git").resolve()


async def test_resolve_gives_full_sha_or_names_the_rev(repo: Path) -> None:
    git = await Git.open(repo)
    assert await git.resolve("main") == sh(repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match="'nope' does not resolve to a commit"):
        await git.resolve("nope")
    with pytest.raises(GitError, match="not a revision"):
        await git.resolve("--all")


async def test_failed_command_carries_command_and_stderr(repo: Path) -> None:
    git = await Git.open(repo)
    with pytest.raises(GitError) as err:
        await git.run("checkout", "no-such-branch")
    assert err.value.command == ("checkout", "no-such-branch")
    assert "no-such-branch" in err.value.stderr
    assert err.value.code == 1
    assert "git checkout no-such-branch failed" in str(err.value)


async def test_ensure_branch_creates_once_then_keeps_the_tip(repo: Path) -> None:
    git = await Git.open(repo)
    base = sh(repo, "rev-parse", "HEAD")
    assert await git.ensure_branch("architect/feat", base) == base
    newer = commit(repo, {"x": "1\n"}, "newer")
    assert await git.ensure_branch("architect/feat", newer) == base
    assert sh(repo, "rev-parse", "architect/feat") == base


async def test_update_ref_is_compare_and_swap(repo: Path) -> None:
    git = await Git.open(repo)
    base = sh(repo, "rev-parse", "HEAD")
    await git.ensure_branch("f", base)
    newer = commit(repo, {"x": "1\n"}, "newer")
    assert not await git.update_ref("f", newer, newer)  # not at `old`: refused
    assert sh(repo, "rev-parse", "f") == base
    assert await git.update_ref("f", newer, base)
    assert sh(repo, "rev-parse", "f") == newer


async def test_worktree_lives_out_of_the_repository_and_leaves_user_tree_alone(
    tmp_path: Path, repo: Path
) -> None:
    git = await Git.open(repo)
    base = sh(repo, "rev-parse", "HEAD")
    path = attempt_worktree(repo_worktrees(tmp_path / "home", await git.common_dir()), "feat", "T1", 1)
    assert ".git" not in path.parts and not path.is_relative_to(repo)
    branch = attempt_branch("feat", "T1", 1)
    assert branch == "architect-task/feat/T1-a1"
    await git.add_worktree(path, branch, "main")
    assert (path / "app.py").read_text() == "def f():\n    return 1\n"
    assert await git.head(path) == base
    assert await git.checked_out_elsewhere(branch) == path.resolve()
    (path / "new.txt").write_text("agent output\n")
    assert sh(repo, "status", "--porcelain") == ""  # the user's tree sees nothing
    await git.remove_worktree(path, delete_branch=branch)
    assert not path.exists()
    assert sh(repo, "branch", "--list", branch) == ""
    await git.remove_worktree(path, delete_branch=branch)  # already gone: no error


async def test_add_worktree_after_a_crash_replaces_stale_worktree_and_branch(
    tmp_path: Path, repo: Path
) -> None:
    git = await Git.open(repo)
    path = attempt_worktree(repo_worktrees(tmp_path / "home", await git.common_dir()), "feat", "T1", 1)
    branch = attempt_branch("feat", "T1", 1)
    await git.add_worktree(path, branch, "main")
    (path / "half.txt").write_text("half done\n")
    assert await git.commit_all(path, "half") is not None
    (path / "dirty.txt").write_text("uncommitted\n")
    # killed: directory, registration and branch left behind
    start = commit(repo, {"app.py": "def f():\n    return 2\n"}, "moved on")
    await git.add_worktree(path, branch, start)
    assert await git.head(path) == start == sh(repo, "rev-parse", branch)
    assert not (path / "half.txt").exists() and not (path / "dirty.txt").exists()
    # the directory was deleted by hand: the registration and the branch are left
    shutil.rmtree(path)
    await git.add_worktree(path, branch, start)
    assert (path / "app.py").read_text() == "def f():\n    return 2\n"
    # killed between directory and registration: the directory is there, git knows nothing of it
    sh(repo, "worktree", "remove", "--force", str(path))
    path.mkdir()
    (path / ".git").write_text("gitdir: /nowhere\n")
    (path / "junk").write_text("x")
    await git.add_worktree(path, branch, "main")
    assert sh(path, "status", "--porcelain") == ""
    assert len(await git.worktrees()) == 2


async def test_remove_worktree_never_deletes_a_directory_that_is_not_one(tmp_path: Path, repo: Path) -> None:
    git = await Git.open(repo)
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "data").write_text("mine\n")
    with pytest.raises(GitError, match="is not a worktree"):
        await git.remove_worktree(keep)
    assert (keep / "data").read_text() == "mine\n"


async def test_add_worktree_refuses_a_branch_checked_out_elsewhere(repo: Path) -> None:
    git = await Git.open(repo)
    with pytest.raises(GitError, match="checked out in"):
        await git.add_worktree(repo.parent / "wt", "main", "main")


async def test_diff_stat_and_commits(repo: Path) -> None:
    git = await Git.open(repo)
    base = sh(repo, "rev-parse", "HEAD")
    commit(repo, {"app.py": "def f():\n    return 2\n\n\ndef g():\n    return 3\n"}, "change f, add g")
    (repo / "logo.bin").write_bytes(b"\0\1\2")
    head = commit(repo, {"README": None, "docs/new.md": "a\nb\n", "logo.bin": None}, "docs: new\n\nbody")
    (repo / "logo.bin").write_bytes(b"\0\1\2")
    head = commit(repo, {}, "binary")
    stat = await git.diff_stat(base, head)
    assert sorted(stat.files) == ["README", "app.py", "docs/new.md", "logo.bin"]
    assert (stat.added, stat.removed) == (1 + 4 + 2, 1 + 1)  # binary: 0 lines
    shas = sh(repo, "rev-list", "--reverse", f"{base}..{head}").split()
    assert await git.commits(base, head) == [
        Commit(shas[0], "change f, add g"),
        Commit(shas[1], "docs: new"),
        Commit(shas[2], "binary"),
    ]
    assert await git.commits(head, head) == []


async def test_messages_finds_commits_by_a_line_of_their_message(repo: Path) -> None:
    git = await Git.open(repo)
    base = sh(repo, "rev-parse", "HEAD")
    one = commit(repo, {"a.py": "a\n"}, "T1: a\n\nCost: $0\n\nArchitect-Task: f/T1\nArchitect-Attempt: 2")
    commit(repo, {"b.py": "b\n"}, "T2: b\n\nArchitect-Task: f/T2\nArchitect-Attempt: 1")
    three = commit(repo, {"c.py": "c\n"}, "T10: c\n\nArchitect-Task: f/T1 again")
    assert await git.messages(base, "HEAD", "Architect-Task: f/T1") == [
        (three, "T10: c\n\nArchitect-Task: f/T1 again\n"),  # a fixed string: the caller checks whole lines
        (one, "T1: a\n\nCost: $0\n\nArchitect-Task: f/T1\nArchitect-Attempt: 2\n"),
    ]
    assert await git.messages(base, "HEAD", "[T") == []  # not a regular expression


async def test_commit_all_as_architect_whatever_the_environment(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git = await Git.open(repo)
    path = attempt_worktree(repo_worktrees(tmp_path / "home", await git.common_dir()), "feat", "T2", 1)
    await git.add_worktree(path, "architect-task/feat/T2-a1", "main")
    assert await git.commit_all(path, "nothing") is None
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Somebody Else")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    (path / "out.txt").write_text("done\n")
    (path / ".gitignore").write_text("*.log\n")
    (path / "debug.log").write_text("ignored\n")
    sha = await git.commit_all(path, "T2: write out\n\n#18 stays")
    assert sha is not None and sha == sh(repo, "rev-parse", "architect-task/feat/T2-a1")
    assert (
        sh(repo, "log", "-1", "--format=%an <%ae>|%cn|%B", sha)
        == "Architect <architect@localhost>|Architect|T2: write out\n\n#18 stays"
    )
    assert sh(repo, "show", "--name-only", "--format=", sha).split() == [".gitignore", "out.txt"]


async def test_settle_finishes_clean_up_despite_cancellation() -> None:
    finished: list[str] = []

    async def clean_up() -> None:
        await asyncio.sleep(0.05)
        finished.append("done")

    async def caller() -> None:
        await settle(clean_up())

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["done"]


def test_names() -> None:
    common = Path("/r/.git")
    assert feature_branch("login-page") == "architect/login-page"
    assert merge_worktree(common, "login-page") == Path("/r/.git/architect/merge/login-page")
    root = repo_worktrees(Path("/home/u/.architect"), common)
    assert root.parent == Path("/home/u/.architect/worktrees") and root.name.startswith("r-")
    assert root != repo_worktrees(Path("/home/u/.architect"), Path("/other/r/.git"))  # same name, own root
    assert repo_worktrees(Path("/h"), Path("/srv/calc.git")).name.startswith("calc-")  # a bare repository
    assert attempt_worktree(root, "f", "T003", 2) == root / "f" / "T003-a2"
    for bad in ("../x", "a/b", "-x", "x.lock", ""):
        with pytest.raises(GitError, match="not usable"):
            feature_branch(bad)
