"""The import-time check of a plan's repository: `repo` must be a git repository and `base` must
resolve to a commit there, or the plan is refused (PlanError naming the field) before any of it is
stored, so no task of it ever starts.

Git is run directly (`git -C REPO rev-parse ...`, no shell, no pager, no prompt, `LC_ALL=C`, the
caller's `GIT_*` variables removed so that a hook's `GIT_DIR` cannot redirect it), with a timeout.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from architect.errors import PlanError

__all__ = ["check_plan_repos", "check_repo"]

_TIMEOUT_S = 15.0


def _git(repo: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", GIT_OPTIONAL_LOCKS="0")
    try:
        return subprocess.run(
            ["git", "-C", repo, *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise PlanError(
            "repo: git is not installed (no `git` on PATH): cannot check the repository"
        ) from None
    except subprocess.TimeoutExpired:
        raise PlanError(f"repo: git did not answer within {_TIMEOUT_S:.0f}s in {repo}") from None


def _why(res: subprocess.CompletedProcess[str]) -> str:
    line = next((ln.strip() for ln in res.stderr.splitlines() if ln.strip()), "")
    return f" ({line[:300]})" if line else ""


def check_repo(repo: str, base: str | None) -> str:
    """Refuse a `repo` that is not a git repository and a `base` (default `HEAD`) that does not
    resolve to a commit in it; returns the commit's SHA."""
    if not os.path.isdir(repo):
        raise PlanError(f"repo: {repo} is not a git repository (no such directory)")
    res = _git(repo, "rev-parse", "--git-dir")
    if res.returncode != 0:
        raise PlanError(f"repo: {repo} is not a git repository{_why(res)}")
    rev = base or "HEAD"
    res = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    sha = res.stdout.strip()
    if res.returncode != 0 or not sha:
        if base is None:
            raise PlanError(
                f"base: not given, and HEAD does not resolve to a commit in {repo} (no commit yet?)"
            )
        raise PlanError(f"base: {base!r} does not resolve in {repo}")
    return sha


def check_plan_repos(plans: Sequence[Mapping[str, Any]]) -> None:
    """`check_repo` for every plan that names a repository (PlanError naming the feature and field)."""
    for i, plan in enumerate(plans):
        if not plan.get("repo"):
            continue
        try:
            check_repo(str(plan["repo"]), plan.get("base"))
        except PlanError as exc:
            raise PlanError(f"features[{i}] ({plan.get('slug')}): {exc}") from None
