"""The merge queue: a finished task's changes land on its feature branch one task at a time, as one
commit, validated, and never break the branch.

`MergeQueue.merge` takes the feature's lock in the store (polling until it is free, renewing it while
the merge runs), then in the feature's own merge worktree (`<git-common-dir>/architect/merge/<feature>`,
detached HEAD) replays the task's changes `task_base..task_branch` onto the feature branch's tip with a
three-way merge whose base is `task_base` (`git merge-recursive`: a squash merge with the base given,
not guessed), commits the result with the caller's message, runs the validator in that worktree and
only then moves the feature branch, by compare-and-swap (`git update-ref <branch> <new> <old tip>`).
If the branch moved meanwhile (the swap fails) the merge is redone on the new tip. On every other
outcome - a conflict, nothing to merge, a red validation, an error, a cancellation - the merge worktree
is reset to the branch tip and cleaned, so the next merge starts from a clean tree, and the branch is
left where it was.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from architect.errors import GitError
from architect.orchestrator.git import Git, feature_branch, merge_worktree, settle

__all__ = ["MergeLock", "MergeQueue", "MergeResult", "Validate"]

Validate = Callable[[Path], Awaitable[dict[str, Any]]]
"""Runs the validator in the given worktree; the result has `ok` (bool) and an output tail under
`output_tail` (or `output`) - the shape `executors.command.run_validator` returns."""

OUTPUT_CHARS = 4000


class MergeLock(Protocol):
    """A lock per feature in the store; `key` is the feature slug, `holder` unique to one merge call.
    `acquire` is True when taken: free, expired, or already held by `holder` (then its expiry is
    pushed to `ttl_s` from now; the queue renews it so). A holder that dies keeps it until it expires.
    Called from a worker thread (`asyncio.to_thread`): the store's methods are synchronous."""

    def acquire(self, key: str, holder: str, ttl_s: float) -> bool: ...

    def release(self, key: str, holder: str) -> None: ...


@dataclass(frozen=True)
class MergeResult:
    """`ok` with the feature branch's new `sha`, or why not: `reason` is "conflict", "no_changes",
    "validation_failed" or "checked_out", and `output` what to feed back to the task's next attempt
    (the conflicting files and hunks, the validator's output tail)."""

    ok: bool
    sha: str | None
    reason: str | None
    output: str = ""
    validation: dict[str, Any] | None = None


def _head(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "\n… (truncated)"


def _tail(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-n:]


class MergeQueue:
    """Merges tasks onto feature branches of one repository, one merge per feature at a time."""

    def __init__(
        self,
        git: Git,
        lock: MergeLock,
        validate: Validate | None,
        *,
        ttl_s: float = 60.0,
        poll_s: float = 0.2,
        output_chars: int = OUTPUT_CHARS,
        tries: int = 3,
    ) -> None:
        self.git = git
        self.lock = lock
        self.validate = validate
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.output_chars = output_chars
        self.tries = tries

    async def merge(self, feature_slug: str, task_branch: str, task_base: str, message: str) -> MergeResult:
        """Land `task_base..task_branch` on `architect/<feature_slug>` as one commit with `message`.
        GitError if the feature branch, the task branch or the base does not exist, or git fails."""
        branch = feature_branch(feature_slug)
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        while not await asyncio.to_thread(self.lock.acquire, feature_slug, holder, self.ttl_s):
            await asyncio.sleep(self.poll_s)
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep(feature_slug, holder, lost))
        try:
            for _ in range(self.tries):
                result = await self._merge_once(feature_slug, branch, task_branch, task_base, message, lost)
                if result is not None:
                    return result
            raise GitError(
                f"{branch} kept moving while {task_branch} was merged; gave up after {self.tries} tries"
            )
        finally:
            keeper.cancel()
            await settle(self._release(keeper, feature_slug, holder))

    async def _keep(self, key: str, holder: str, lost: asyncio.Event) -> None:
        """Renew the lock every third of its ttl; set `lost` if it could not be renewed in time."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                ok: bool | None = await asyncio.to_thread(self.lock.acquire, key, holder, self.ttl_s)
            except Exception:  # a store hiccup: try again until the lock would have expired
                ok = None
            if ok:
                renewed = time.monotonic()
            elif ok is False or time.monotonic() - renewed >= self.ttl_s * 0.9:
                lost.set()
                return

    async def _release(self, keeper: asyncio.Task[None], key: str, holder: str) -> None:
        """Wait for the (cancelled) renewal task to stop, then release the lock."""
        try:
            await keeper
        except asyncio.CancelledError:
            pass
        await asyncio.to_thread(self.lock.release, key, holder)

    async def _merge_once(
        self, slug: str, branch: str, task_branch: str, task_base: str, message: str, lost: asyncio.Event
    ) -> MergeResult | None:
        """One try on the current tip; None if the branch moved before it could be swapped."""
        git = self.git
        tip = await git.branch_tip(branch)
        if tip is None:
            raise GitError(f"feature branch {branch} does not exist")
        where = await git.checked_out_elsewhere(branch)
        if where is not None:
            return MergeResult(
                False, None, "checked_out",
                f"{branch} is checked out in {where}; switch that worktree to another branch so the "
                "merge queue can move it",
            )  # fmt: skip
        theirs = await git.resolve(task_branch)
        base = await git.resolve(task_base)
        if (await git.run("merge-base", "--is-ancestor", base, theirs, check=False)).code != 0:
            raise GitError(f"{task_base} is not an ancestor of {task_branch}: not the task's base")
        wt = merge_worktree(await git.common_dir(), slug)
        await self._prepare(wt, tip)
        landed: str | None = None
        try:
            conflict = await self._apply(wt, base, tip, theirs, branch, task_branch)
            if conflict is not None:
                return MergeResult(False, None, "conflict", conflict)
            sha = await git.commit_all(wt, message)
            if sha is None:
                return MergeResult(False, None, "no_changes", f"{task_branch} changes nothing on {branch}")
            validation = None
            if self.validate is not None:
                validation = await self.validate(wt)
                if not validation.get("ok"):
                    out = str(validation.get("output_tail") or validation.get("output") or "")
                    return MergeResult(
                        False, None, "validation_failed", _tail(out, self.output_chars), validation
                    )
            if lost.is_set():
                raise GitError(f"lost the merge lock of {branch} while merging {task_branch}")
            if not await git.update_ref(branch, sha, tip):
                return None
            landed = sha
            return MergeResult(True, sha, None, "", validation)
        finally:
            await settle(self._restore(wt, landed or tip))

    async def _apply(
        self, wt: Path, base: str, tip: str, theirs: str, branch: str, task_branch: str
    ) -> str | None:
        """Three-way merge of `base..theirs` onto `tip` (checked out in `wt`) into the index and tree;
        None when clean, else the conflicting files, git's CONFLICT lines and the conflict hunks."""
        labels = {f"GITHEAD_{tip}": branch, f"GITHEAD_{theirs}": task_branch}
        ran = await self.git.run("merge-recursive", base, "--", tip, theirs, cwd=wt, env=labels, check=False)
        if ran.code == 0:
            return None
        unmerged = await self.git.run("diff", "--name-only", "-z", "--diff-filter=U", cwd=wt)
        files = [f for f in unmerged.out.split("\0") if f]
        if ran.code != 1 or not files:
            raise GitError(
                f"merging {task_branch} onto {branch} failed (exit {ran.code}): {ran.err.strip()[:600]}",
                command=("merge-recursive", base, "--", tip, theirs),
                stderr=ran.err.strip()[:600],
                code=ran.code,
            )
        hunks = await self.git.run("diff", "--no-ext-diff", cwd=wt, check=False)
        notes = [ln for ln in ran.out.splitlines() if ln.startswith("CONFLICT")]
        text = "\n".join(
            [
                f"merge conflict: {task_branch} onto {branch} ({tip[:12]})",
                "conflicting files:",
                *(f"  {f}" for f in files),
                *notes,
                "",
                hunks.out,
            ]
        )
        return _head(text.rstrip() + "\n", self.output_chars)

    async def _prepare(self, wt: Path, tip: str) -> None:
        """The merge worktree, clean with a detached HEAD at `tip`; (re)made if missing or broken."""
        if (wt / ".git").is_file():
            try:
                await self._reset(wt, tip)
                return
            except GitError:
                pass
        await self.git.add_detached_worktree(wt, tip)

    async def _restore(self, wt: Path, target: str) -> None:
        """Reset the merge worktree to `target`; if that fails, remove it (the next merge remakes it)."""
        try:
            await self._reset(wt, target)
        except GitError:
            await self.git.remove_worktree(wt)

    async def _reset(self, wt: Path, target: str) -> None:
        """Detach `wt` at `target`, drop staged, changed and untracked files (ignored ones stay: build
        caches) and any merge state. A stale index.lock (a git killed mid-merge) is removed first:
        the merge lock is held, so no other git works in this worktree."""
        link = (wt / ".git").read_text().strip() if (wt / ".git").is_file() else ""
        gitdir = wt / link.removeprefix("gitdir:").strip()  # absolute, or relative to the worktree
        if not link.startswith("gitdir:") or gitdir.parent.name != "worktrees":
            raise GitError(f"{wt} is not a linked worktree")
        (gitdir / "index.lock").unlink(missing_ok=True)
        await self.git.run("checkout", "-q", "--force", "--detach", target, cwd=wt)
        await self.git.run("reset", "-q", "--hard", cwd=wt)
        await self.git.run("clean", "-ffdq", cwd=wt)
