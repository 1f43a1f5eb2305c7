"""orchestrator.merge: the merge queue against real repositories made in tmp_path."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from architect.errors import GitError
from architect.orchestrator.git import (
    Git,
    attempt_branch,
    attempt_worktree,
    feature_branch,
    merge_worktree,
    repo_worktrees,
)
from architect.orchestrator.merge import MergeQueue
from tests.unit.orchestrator.test_git import commit, make_repo, sh

FEATURE = "feat"
BRANCH = feature_branch(FEATURE)


class MemoryLock:
    """The store's merge lock in memory: free, expired or same holder takes it."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[str, float]] = {}
        self.mutex = threading.Lock()

    def acquire(self, key: str, holder: str, ttl_s: float) -> bool:
        with self.mutex:
            now = time.monotonic()
            current = self.held.get(key)
            if current is None or current[1] <= now or current[0] == holder:
                self.held[key] = (holder, now + ttl_s)
                return True
            return False

    def release(self, key: str, holder: str) -> None:
        with self.mutex:
            if self.held.get(key, ("", 0.0))[0] == holder:
                del self.held[key]


class Validator:
    """Records where it ran and what HEAD was there; red when app.py holds `broken`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[Path, str]] = []
        self.delay = delay
        self.running = 0
        self.most = 0

    async def __call__(self, worktree: Path) -> dict[str, Any]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            self.calls.append((worktree, sh(worktree, "rev-parse", "HEAD")))
            (worktree / ".pytest_out").write_text("left by the validator\n")
            await asyncio.sleep(self.delay)
            red = "broken" in (worktree / "app.py").read_text()
            tail = "FAILED tests/test_app.py::test_f - assert 0 == 1\n1 failed in 0.1s" if red else "1 passed"
            return {"ok": not red, "exit_code": int(red), "output_tail": tail}
        finally:
            self.running -= 1


@pytest.fixture
async def git(tmp_path: Path) -> Git:
    repo = make_repo(tmp_path)
    g = await Git.open(repo)
    await g.ensure_branch(BRANCH, await g.resolve("main"))
    return g


async def task(git: Git, key: str, files: dict[str, str], attempt: int = 1) -> tuple[str, str]:
    """A task attempt branched from the feature tip that changes `files`; (branch, its base)."""
    branch = attempt_branch(FEATURE, key, attempt)
    base = await git.resolve(BRANCH)
    common = await git.common_dir()
    path = attempt_worktree(repo_worktrees(common.parent.parent / "home", common), FEATURE, key, attempt)
    await git.add_worktree(path, branch, base)
    for name, text in files.items():
        (path / name).write_text(text)
    await git.commit_all(path, f"{key}: agent work")
    await git.commit_all(path, "unused")  # nothing left: no commit
    return branch, base


async def assert_clean(git: Git, at: str) -> None:
    wt = merge_worktree(await git.common_dir(), FEATURE)
    assert sh(wt, "status", "--porcelain", "--untracked-files=all") == ""
    assert sh(wt, "rev-parse", "HEAD") == at


async def test_two_tasks_give_two_commits_on_base_with_their_messages(git: Git) -> None:
    base = await git.resolve(BRANCH)
    validate = Validator()
    queue = MergeQueue(git, MemoryLock(), validate)
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    b2, s2 = await task(git, "T2", {"b.txt": "two\n"})  # both from the same tip
    r1 = await queue.merge(FEATURE, b1, s1, "T1: add a\n\nagent builtin, 1 attempt")
    r2 = await queue.merge(FEATURE, b2, s2, "T2: add b")
    assert (
        r1.ok
        and r2.ok
        and r1.reason is None
        and r1.validation == {"ok": True, "exit_code": 0, "output_tail": "1 passed"}
    )
    assert r2.sha == await git.resolve(BRANCH)
    commits = await git.commits(base, BRANCH)
    assert [(c.sha, c.subject) for c in commits] == [(r1.sha, "T1: add a"), (r2.sha, "T2: add b")]
    assert sh(git.repo, "log", "-1", "--format=%B", str(r1.sha)) == "T1: add a\n\nagent builtin, 1 attempt"
    assert sh(git.repo, "rev-list", "--merges", "--count", BRANCH) == "0"
    assert sh(git.repo, "show", "--name-only", "--format=", str(r2.sha)) == "b.txt"
    wt = merge_worktree(await git.common_dir(), FEATURE)
    assert validate.calls == [(wt, str(r1.sha)), (wt, str(r2.sha))]  # the commit, in the merge worktree
    await assert_clean(git, str(r2.sha))
    assert sh(git.repo, "status", "--porcelain") == ""


async def test_conflict_leaves_tip_and_names_the_file(git: Git) -> None:
    queue = MergeQueue(git, MemoryLock(), Validator())
    b1, s1 = await task(git, "T1", {"app.py": "def f():\n    return 10\n"})
    b2, s2 = await task(git, "T2", {"app.py": "def f():\n    return 20\n", "b.txt": "two\n"})
    assert (await queue.merge(FEATURE, b1, s1, "T1")).ok
    tip = await git.resolve(BRANCH)
    result = await queue.merge(FEATURE, b2, s2, "T2")
    assert (result.ok, result.sha, result.reason) == (False, None, "conflict")
    assert "conflicting files:\n  app.py\n" in result.output
    assert "CONFLICT (content): Merge conflict in app.py" in result.output
    hunk = "++<<<<<<< architect/feat\n +    return 10\n++=======\n+     return 20\n++>>>>>>> architect-task/feat/T2-a1"
    assert hunk in result.output
    assert await git.resolve(BRANCH) == tip
    await assert_clean(git, tip)
    b3, s3 = await task(git, "T2", {"app.py": "def f():\n    return 30\n"}, attempt=2)  # rework from the tip
    again = await queue.merge(FEATURE, b3, s3, "T2")
    assert again.ok and [c.subject for c in await git.commits(tip, BRANCH)] == ["T2"]
    assert sh(git.repo, "show", f"{BRANCH}:app.py") == "def f():\n    return 30"


async def test_red_validation_leaves_tip_and_returns_its_output(git: Git) -> None:
    queue = MergeQueue(git, MemoryLock(), Validator(), output_chars=30)
    tip = await git.resolve(BRANCH)
    b1, s1 = await task(git, "T1", {"app.py": "broken\n"})
    result = await queue.merge(FEATURE, b1, s1, "T1")
    assert (result.ok, result.sha, result.reason) == (False, None, "validation_failed")
    assert result.output == "…" + "assert 0 == 1\n1 failed in 0.1s"[-30:]  # the tail, 30 characters
    assert result.validation is not None and result.validation["exit_code"] == 1
    assert await git.resolve(BRANCH) == tip
    await assert_clean(git, tip)  # the validator's file and the candidate commit are gone


async def test_refuses_when_feature_branch_is_checked_out(git: Git) -> None:
    lock = MemoryLock()
    queue = MergeQueue(git, lock, Validator())
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    tip = await git.resolve(BRANCH)
    sh(git.repo, "checkout", "-q", BRANCH)
    result = await queue.merge(FEATURE, b1, s1, "T1")
    assert (result.ok, result.reason) == (False, "checked_out")
    assert f"is checked out in {git.repo}" in result.output
    assert await git.resolve(BRANCH) == tip and lock.held == {}


async def test_no_changes_is_not_a_commit(git: Git) -> None:
    queue = MergeQueue(git, MemoryLock(), Validator())
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    assert (await queue.merge(FEATURE, b1, s1, "T1")).ok
    tip = await git.resolve(BRANCH)
    again = await queue.merge(FEATURE, b1, s1, "T1 twice")  # the same change is already there
    assert (again.ok, again.reason) == (False, "no_changes")
    assert await git.resolve(BRANCH) == tip


async def test_concurrent_merges_are_serialised_by_the_lock(git: Git) -> None:
    base = await git.resolve(BRANCH)
    lock = MemoryLock()
    validate = Validator(delay=0.2)
    # ttl shorter than a validation: only renewal keeps the lock held
    queues = [MergeQueue(git, lock, validate, ttl_s=0.1, poll_s=0.02) for _ in range(2)]
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    b2, s2 = await task(git, "T2", {"b.txt": "two\n"})
    r1, r2 = await asyncio.gather(
        queues[0].merge(FEATURE, b1, s1, "T1"), queues[1].merge(FEATURE, b2, s2, "T2")
    )
    assert r1.ok and r2.ok and validate.most == 1
    assert sorted(c.subject for c in await git.commits(base, BRANCH)) == ["T1", "T2"]
    assert lock.held == {}


async def test_cancelled_merge_resets_worktree_and_releases_lock(git: Git) -> None:
    lock = MemoryLock()
    validate = Validator(delay=5)
    queue = MergeQueue(git, lock, validate)
    tip = await git.resolve(BRANCH)
    b1, s1 = await task(git, "T1", {"a.txt": "one\n", "app.py": "changed\n"})
    running = asyncio.create_task(queue.merge(FEATURE, b1, s1, "T1"))
    while not validate.calls:  # cancelled in the middle of the validation
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await git.resolve(BRANCH) == tip and lock.held == {}
    await assert_clean(git, tip)


async def test_branch_moved_during_merge_is_redone_on_the_new_tip(git: Git) -> None:
    base = await git.resolve(BRANCH)
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    # someone else lands a commit while T1 is being validated: the swap fails, the merge is redone
    other = commit(git.repo, {"z.txt": "elsewhere\n"}, "outside")
    sh(git.repo, "checkout", "-q", "main")
    inner = Validator()

    async def validate(worktree: Path) -> dict[str, Any]:
        if not inner.calls:
            assert await git.update_ref(BRANCH, other, base)
        return await inner(worktree)

    result = await MergeQueue(git, MemoryLock(), validate).merge(FEATURE, b1, s1, "T1")
    assert result.ok and len(inner.calls) == 2
    assert [c.subject for c in await git.commits(base, BRANCH)] == ["outside", "T1"]
    assert sh(git.repo, "rev-parse", f"{BRANCH}~1") == other


async def test_broken_merge_worktree_is_recovered(git: Git) -> None:
    queue = MergeQueue(git, MemoryLock(), Validator())
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    b2, s2 = await task(git, "T2", {"b.txt": "two\n"})
    assert (await queue.merge(FEATURE, b1, s1, "T1")).ok
    wt = merge_worktree(await git.common_dir(), FEATURE)
    gitdir = Path((wt / ".git").read_text().split(":", 1)[1].strip())
    (gitdir / "index.lock").write_text("")  # a git killed mid-merge
    (wt / "a.txt").write_text("scribbled\n")
    (wt / "stray.txt").write_text("x\n")
    assert (await queue.merge(FEATURE, b2, s2, "T2")).ok
    sh(git.repo, "worktree", "remove", "--force", str(wt))  # and once the worktree is gone entirely
    b3, s3 = await task(git, "T3", {"c.txt": "three\n"})
    r3 = await queue.merge(FEATURE, b3, s3, "T3")
    assert r3.ok
    assert sh(git.repo, "show", f"{r3.sha}:a.txt") == "one"
    await assert_clean(git, str(r3.sha))


async def test_lock_lost_during_the_merge_moves_nothing(git: Git) -> None:
    class Stolen(MemoryLock):
        def acquire(self, key: str, holder: str, ttl_s: float) -> bool:
            return key not in self.held and super().acquire(key, holder, ttl_s)  # no renewal

    tip = await git.resolve(BRANCH)
    b1, s1 = await task(git, "T1", {"a.txt": "one\n"})
    queue = MergeQueue(git, Stolen(), Validator(delay=0.1), ttl_s=0.03)
    with pytest.raises(GitError, match="lost the merge lock of architect/feat"):
        await queue.merge(FEATURE, b1, s1, "T1")
    assert await git.resolve(BRANCH) == tip
    await assert_clean(git, tip)


async def test_a_base_that_is_not_the_tasks_is_refused(git: Git) -> None:
    b1, _ = await task(git, "T1", {"a.txt": "one\n"})
    b2, _ = await task(git, "T2", {"b.txt": "two\n"})
    with pytest.raises(GitError, match="is not an ancestor of architect-task/feat/T1-a1"):
        await MergeQueue(git, MemoryLock(), None).merge(FEATURE, b1, b2, "T1")
