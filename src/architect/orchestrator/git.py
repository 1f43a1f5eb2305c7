"""Async git for the agent executor: repositories, branches, worktrees, diffs and commits.

Every command runs as `git -C <dir> ...` through `asyncio.create_subprocess_exec` (never a shell) with
LC_ALL=C, no pager, no terminal prompt, hooks switched off (`core.hooksPath=/dev/null`: the user's
hooks are not Architect's checks, its validator is) and no commit signing. Variables that would point
git at another repository or give commits another identity (`GIT_DIR`, `GIT_AUTHOR_NAME`, ...) are
dropped from the environment; commits are made as "Architect <architect@localhost>". A failed command
raises `GitError` with the command and its stderr. A command whose caller is cancelled is terminated
(git removes its lock files on SIGTERM) and waited for before the cancellation goes on.

Naming (one place for it): the feature branch `architect/<feature>`, an attempt's branch
`architect-task/<feature>/<task>-a<attempt>` and its worktree under `<home>/worktrees/<repo>-<hash>/`
(`repo_worktrees`: Architect's own directory, outside both the user's working tree and the git
directory), the merge worktree `<git-common-dir>/architect/merge/<feature>`. Either way the user's own
working tree and `git status` are untouched. An attempt's worktree is not inside the git directory
because coding agents guard it: Claude Code refuses to edit any file whose path has a `.git`
component ("… which is a sensitive file"), so an agent working there could read but never edit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from architect.errors import GitError

__all__ = [
    "Commit",
    "Completed",
    "DiffStat",
    "Git",
    "Worktree",
    "attempt_branch",
    "attempt_worktree",
    "feature_branch",
    "merge_worktree",
    "repo_worktrees",
    "settle",
]

T = TypeVar("T")

IDENTITY = ("-c", "user.name=Architect", "-c", "user.email=architect@localhost")
_SETTINGS = (
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.pager=cat",
    "-c", "color.ui=false", "-c", "commit.gpgSign=false", "-c", "log.showSignature=false",
    "-c", "advice.detachedHead=false",
)  # fmt: skip
_KEEP_GIT_VARS = {"GIT_EXEC_PATH"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
STDERR_CHARS = 600


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_GIT_VARS}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", GIT_EDITOR=":", GIT_OPTIONAL_LOCKS="0")
    return env


def _short(stderr: str) -> str:
    """The error lines of git's stderr without its hints, at most STDERR_CHARS characters."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("hint:")]
    text = "\n".join(lines)
    return text if len(text) <= STDERR_CHARS else text[:STDERR_CHARS] + "…"


def _name(value: str, what: str) -> str:
    """`value` if it is safe as one branch or directory component, else GitError naming `what`."""
    if not _NAME.match(value) or ".." in value or value.endswith(".lock"):
        raise GitError(f"{what} {value!r} is not usable in a branch or directory name")
    return value


def _rev(value: str) -> str:
    """Refuse a revision that git would read as an option."""
    if not value or value.startswith("-"):
        raise GitError(f"{value!r} is not a revision")
    return value


def feature_branch(feature: str) -> str:
    """The branch a feature's tasks are merged onto."""
    return f"architect/{_name(feature, 'feature slug')}"


def attempt_branch(feature: str, task: str, attempt: int) -> str:
    """Not under `architect/<feature>/`: git cannot have both a ref and a ref directory of one name."""
    return f"architect-task/{_name(feature, 'feature slug')}/{_name(task, 'task id')}-a{attempt}"


def repo_worktrees(home: Path, common_dir: Path) -> Path:
    """The directory of one repository's attempt worktrees under Architect's `home`: named after the
    repository and a hash of its git directory's path, so two repositories never share it."""
    common = common_dir.absolute()
    name = common.parent.name if common.name == ".git" else common.name.removesuffix(".git")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:40] or "repo"
    digest = hashlib.sha256(str(common).encode()).hexdigest()[:10]
    return home / "worktrees" / f"{safe}-{digest}"


def attempt_worktree(root: Path, feature: str, task: str, attempt: int) -> Path:
    """Where an attempt's worktree is checked out, under its repository's `repo_worktrees` root."""
    feature, task = _name(feature, "feature slug"), _name(task, "task id")
    return root / feature / f"{task}-a{attempt}"


def merge_worktree(common_dir: Path, feature: str) -> Path:
    """The merge queue's worktree of a feature (detached HEAD)."""
    return common_dir / "architect" / "merge" / _name(feature, "feature slug")


async def settle(aw: Awaitable[T]) -> T:
    """Await `aw` to its end even if the caller is cancelled meanwhile (clean-up that must finish:
    a reset, a lock release); a cancellation that arrived is raised once it has ended."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        except BaseException as exc:
            if cancelled:
                raise asyncio.CancelledError from exc
            raise
        if cancelled:
            raise asyncio.CancelledError
        return result


@dataclass(frozen=True)
class Completed:
    """A finished git command: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


@dataclass(frozen=True)
class DiffStat:
    files: list[str]
    added: int
    removed: int


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class Worktree:
    """One entry of `git worktree list`: its path, HEAD and branch (None when detached or bare)."""

    path: Path
    head: str | None
    branch: str | None


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Terminate a git process and reap it (killed if it has not exited after 5 seconds)."""
    if proc.returncode is not None:
        return
    try:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)
    except ProcessLookupError:
        pass
    except TimeoutError:
        proc.kill()
        await proc.wait()


class Git:
    """One repository. Methods taking `cwd` run in that worktree; the others in `repo`."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    @staticmethod
    async def open(path: Path | str) -> Git:
        """A Git for the top level of a work tree (or a bare repository); GitError if `path` is none."""
        where = Path(path).expanduser().resolve()
        if not where.is_dir():
            raise GitError(f"{path} is not a git repository (no such directory)")
        git = Git(where)
        ran = await git.run("rev-parse", "--is-bare-repository", "--absolute-git-dir", check=False)
        if ran.code != 0:
            raise GitError(f"{path} is not a git repository", command=("rev-parse",), stderr=_short(ran.err))
        bare, git_dir = ran.out.split("\n")[:2]
        if bare == "true":
            top = Path(git_dir)
        else:
            ran = await git.run("rev-parse", "--show-toplevel", check=False)
            top = Path(ran.out.strip()) if ran.code == 0 else Path(git_dir)
        if top.resolve() != where:
            raise GitError(f"{path} is not a git repository (it lies inside the repository at {top})")
        return git

    async def run(
        self,
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed:
        """Run `git -C <cwd or repo> <args>`; GitError on a non-zero exit when `check`."""
        environ = _environment()
        if env:
            environ.update(env)
        try:
            proc = await asyncio.create_subprocess_exec(
                "git",
                "-C",
                str(cwd or self.repo),
                *_SETTINGS,
                *args,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environ,
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed (not found on PATH)", command=args) from exc
        try:
            out, err = await proc.communicate(None if stdin is None else stdin.encode())
        except BaseException:
            await settle(_stop(proc))
            raise
        code = proc.returncode
        assert code is not None
        ran = Completed(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and code != 0:
            shown = args[len(IDENTITY) :] if args[: len(IDENTITY)] == IDENTITY else args
            raise GitError(
                f"git {' '.join(shown)} failed (exit {code}): {_short(ran.err) or _short(ran.out)}",
                command=shown,
                stderr=_short(ran.err),
                code=code,
            )
        return ran

    async def resolve(self, rev: str) -> str:
        """The full SHA of the commit `rev` names; GitError naming `rev` if it names none."""
        ran = await self.run("rev-parse", "--verify", "--quiet", f"{_rev(rev)}^{{commit}}", check=False)
        if ran.code != 0:
            raise GitError(f"{rev!r} does not resolve to a commit in {self.repo}", command=("rev-parse", rev))
        return ran.out.strip()

    async def branch_tip(self, name: str) -> str | None:
        """The SHA of branch `name`, None if there is no such branch."""
        ran = await self.run("rev-parse", "--verify", "--quiet", f"refs/heads/{_rev(name)}", check=False)
        return ran.out.strip() if ran.code == 0 else None

    async def common_dir(self) -> Path:
        """The git directory shared by all worktrees (`.git` of the main worktree)."""
        ran = await self.run("rev-parse", "--git-common-dir")
        return (self.repo / ran.out.strip()).resolve()

    async def ensure_branch(self, name: str, start_sha: str) -> str:
        """Create branch `name` at `start_sha` unless it exists; its tip either way."""
        tip = await self.branch_tip(name)
        if tip is not None:
            return tip
        sha = await self.resolve(start_sha)
        ran = await self.run("update-ref", f"refs/heads/{name}", sha, "0" * len(sha), check=False)
        tip = await self.branch_tip(name)  # created here, or by a concurrent caller
        if tip is None:
            raise GitError(f"cannot create branch {name}: {_short(ran.err)}", command=("update-ref", name))
        return tip

    async def update_ref(self, branch: str, new: str, old: str) -> bool:
        """Move `branch` from `old` to `new` (compare-and-swap); False if it was not at `old`."""
        ran = await self.run(
            "update-ref", "-m", "architect: merge", f"refs/heads/{_rev(branch)}", new, old, check=False
        )
        if ran.code == 0:
            return True
        if await self.branch_tip(branch) != old:
            return False
        raise GitError(f"cannot move {branch} to {new}: {_short(ran.err)}", command=("update-ref", branch))

    async def delete_branch(self, name: str) -> None:
        """Delete branch `name` if it exists (merged or not)."""
        if await self.branch_tip(name) is not None:
            await self.run("update-ref", "-d", f"refs/heads/{name}")

    async def worktrees(self) -> list[Worktree]:
        """The repository's worktrees (`git worktree list --porcelain`), the main one first."""
        ran = await self.run("worktree", "list", "--porcelain")
        found: list[Worktree] = []
        for block in ran.out.split("\n\n"):
            fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
            if "worktree" in fields:
                branch = fields.get("branch")
                found.append(
                    Worktree(
                        Path(fields["worktree"]),
                        fields.get("HEAD"),
                        branch.removeprefix("refs/heads/") if branch else None,
                    )
                )
        return found

    async def _registered(self, path: Path) -> bool:
        where = path.resolve()
        return any(w.path.resolve() == where for w in await self.worktrees())

    async def checked_out_elsewhere(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, or None."""
        for w in await self.worktrees():
            if w.branch == branch:
                return w.path
        return None

    async def remove_worktree(self, path: Path, *, delete_branch: str | None = None) -> None:
        """Remove the worktree at `path` (changes in it are lost) and optionally a branch; a worktree
        or branch that is already gone is no error. A left-over directory that is not registered is
        removed only if it looks like a worktree (a `.git` file) or is empty. Other worktrees are left
        alone (no `git worktree prune`: the user's may sit on a drive that is not mounted)."""
        if await self._registered(path):
            await self.run("worktree", "remove", "--force", "--force", str(path))
        elif path.is_dir():
            if (path / ".git").is_file():
                await asyncio.to_thread(shutil.rmtree, path)
            elif not any(path.iterdir()):
                path.rmdir()
            else:
                raise GitError(f"{path} exists and is not a worktree; not removing it")
        if delete_branch is not None:
            await self.delete_branch(delete_branch)

    async def add_worktree(self, path: Path, branch: str, start: str) -> None:
        """Check out a new branch `branch` at `start` in a new worktree at `path` (parent directories
        made). A worktree left at `path` and a branch `branch` left by an earlier run (a killed worker)
        are removed first; GitError if `branch` is checked out in another worktree."""
        sha = await self.resolve(start)
        await self.remove_worktree(path)
        where = await self.checked_out_elsewhere(branch)
        if where is not None:
            raise GitError(f"branch {branch} is checked out in {where}")
        await self.delete_branch(branch)
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.run("worktree", "add", "-q", "-b", _rev(branch), str(path), sha)

    async def add_detached_worktree(self, path: Path, start: str) -> None:
        """A worktree at `path` with a detached HEAD at `start` (a left-over one removed first)."""
        sha = await self.resolve(start)
        await self.remove_worktree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.run("worktree", "add", "-q", "--detach", str(path), sha)

    async def diff_stat(self, base: str, head: str) -> DiffStat:
        """Files changed and lines added/removed from `base` to `head` (binary files count 0 lines)."""
        ran = await self.run(
            "diff", "--numstat", "-z", "--no-renames", "--no-ext-diff", _rev(base), _rev(head)
        )
        files: list[str] = []
        added = removed = 0
        for record in ran.out.split("\0"):
            if not record:
                continue
            plus, minus, name = record.split("\t", 2)
            files.append(name)
            added += int(plus) if plus.isdigit() else 0
            removed += int(minus) if minus.isdigit() else 0
        return DiffStat(files, added, removed)

    async def commits(self, base: str, head: str) -> list[Commit]:
        """The commits in `base..head`, oldest first."""
        ran = await self.run(
            "log", "-z", "--reverse", "--format=%H%x1f%s", f"{_rev(base)}..{_rev(head)}", "--"
        )
        return [Commit(*r.split("\x1f", 1)) for r in ran.out.split("\0") if r]

    async def messages(self, base: str, head: str, grep: str) -> list[tuple[str, str]]:
        """(SHA, whole message) of the commits in `base..head` whose message has a line holding `grep`
        (a fixed string), newest first."""
        ran = await self.run(
            "log", "-z", "--fixed-strings", f"--grep={grep}", "--format=%H%x1f%B",
            f"{_rev(base)}..{_rev(head)}", "--",
        )  # fmt: skip
        return [(sha, msg) for sha, _, msg in (r.partition("\x1f") for r in ran.out.split("\0") if r)]

    async def commit_all(self, cwd: Path, message: str) -> str | None:
        """Stage everything in the worktree `cwd` (`add -A`, .gitignore respected) and commit it as
        Architect with `message` (kept verbatim, `#` lines too); the new SHA, None if nothing changed."""
        await self.run("add", "-A", cwd=cwd)
        staged = await self.run("diff", "--cached", "--quiet", cwd=cwd, check=False)
        if staged.code == 0:
            return None
        if staged.code != 1:
            raise GitError(f"git diff --cached failed in {cwd}: {_short(staged.err)}", stderr=staged.err)
        await self.run(*IDENTITY, "commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", "-",
                       cwd=cwd, stdin=message)  # fmt: skip
        return await self.head(cwd)

    async def head(self, cwd: Path) -> str:
        """The SHA of HEAD in the worktree `cwd`."""
        ran = await self.run("rev-parse", "--verify", "HEAD^{commit}", cwd=cwd)
        return ran.out.strip()
