"""Agent tasks held back by agent: a claim leaves out the agent tasks whose agent - the task's own, else
its feature's, else the worker's default - is excluded (its program is missing on that worker), and
claims everything else. The same on the unit-test double, SQLite and PostgreSQL, through each claim
path: the plain claim (PostgreSQL's one-statement fast path), a claim under shared limits (the general
path) and a claim made with a completion (`complete_and_claim`); `active_count` and `ready_agents` see
tasks the same way."""

from __future__ import annotations

import time
from typing import Any

import pytest

from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.store import Store
from architect.store.orchestrator import ClaimOptions, Outcome, TaskRepo

# feature `aid` names aider as its agent; feature `plain` names none (the default agent does its tasks)
AIDED = (
    "---\nrepo: /srv/shop\nagent: aider\n---\n# Feature: Aid\n## Phase 1: A\n"
    "- [ ] A1 The feature's agent `@`\n- [ ] A2 Another agent `@claude`\n- [ ] A3 A command `$ true`\n"
)
PLAIN = "---\nrepo: /srv/shop\n---\n# Feature: Plain\n## Phase 1: A\n- [ ] B1 The default agent `@`\n- [ ] B2 Aider `@aider`\n"
ALL = {"A1", "A2", "A3", "B1", "B2"}


def _import(repo: TaskRepo) -> dict[str, Any]:
    m = Manager(repo, check_repos=lambda plans: None)
    for text in (AIDED, PLAIN):
        m.import_plans(parse_markdown(text))
    return {t["key"]: t for f in repo.list_features() for t in repo.tasks(f["id"])}


def _claim(repo: TaskRepo, path: str, opts: ClaimOptions) -> set[str]:
    """Claim all that `opts` allow through `path`: `fast` (no shared limits), `limited` (a global
    concurrency limit: the general path), `with_completion` (a finished task recorded in the same call)."""
    now = time.time()
    if path == "limited":
        opts = ClaimOptions(**{**_fields(opts), "max_running": 100})
    if path == "with_completion":
        (done,) = repo.claim("w0", 1, now, 30.0, ClaimOptions(task_ids=(_key_id(repo, "A3"),)))
        _, got = repo.complete_and_claim(
            [(done["id"], done["attempt"], Outcome("succeeded"))], "w1", 10, now, 30.0, opts
        )
        return {t["key"] for t in got} | {"A3"}
    return {t["key"] for t in repo.claim("w1", 10, now, 30.0, opts)}


def _fields(opts: ClaimOptions) -> dict[str, Any]:
    return {k: getattr(opts, k) for k in ClaimOptions.__slots__}


def _key_id(repo: TaskRepo, key: str) -> int:
    return next(int(t["id"]) for f in repo.list_features() for t in repo.tasks(f["id"]) if t["key"] == key)


@pytest.mark.parametrize("path", ["fast", "limited", "with_completion"])
@pytest.mark.parametrize(
    ("exclude", "default", "held"),
    [
        ((), "builtin", set()),
        (("aider",), "builtin", {"A1", "B2"}),  # the feature's agent and a task's own
        (("claude",), "builtin", {"A2"}),
        (("builtin",), "builtin", {"B1"}),  # the default agent, for a feature that names none
        (("coder",), "coder", {"B1"}),  # the worker's own default
        (("builtin",), "coder", set()),
        (("aider", "claude", "coder"), "coder", {"A1", "A2", "B1", "B2"}),  # command tasks still run
    ],
)
def test_a_claim_leaves_out_the_tasks_of_excluded_agents(
    store: Store, path: str, exclude: tuple[str, ...], default: str, held: set[str]
) -> None:
    repo = store.tasks
    _import(repo)
    opts = ClaimOptions(exclude_agents=exclude, default_agent=default)
    assert _claim(repo, path, opts) == ALL - held
    # what was held back is still ready, not failed, and nothing else is
    left = {t["key"]: t for f in repo.list_features() for t in repo.tasks(f["id"]) if t["status"] == "ready"}
    assert set(left) == held
    assert all(t["attempt"] == 0 and t["failures"] == 0 for t in left.values())


def test_active_count_and_ready_agents_see_the_same_agents(store: Store) -> None:
    repo = store.tasks
    _import(repo)
    assert repo.ready_agents(None) == {"aider", "claude", "builtin"}
    assert repo.ready_agents(None, "coder") == {"aider", "claude", "coder"}
    plain = repo.get_feature("plain")["id"]
    assert repo.ready_agents([plain], "coder") == {"aider", "coder"}
    assert repo.active_count(None, None)["counts"] == {"ready": 5}
    held = repo.active_count(None, None, ("manual",), ("aider", "builtin"), "builtin")
    assert held["counts"] == {"ready": 2}  # A2 (claude) and A3 (a command)
    assert repo.active_count([plain], None, (), ("aider",), "coder")["counts"] == {"ready": 1}
    assert repo.active_count(None, None, ("command",), ("aider", "claude", "coder"))["counts"] == {
        "ready": 1  # B1: the default agent is builtin
    }


def test_waiting_reasons_are_written_on_the_agents_ready_tasks_and_a_claim_clears_them(store: Store) -> None:
    repo = store.tasks
    _import(repo)
    n = repo.note_waiting({"aider": "aider is not installed"}, None, "builtin", time.time())
    reasons = {t["key"]: t["reason"] for f in repo.list_features() for t in repo.tasks(f["id"])}
    assert n == 2  # A1 (its feature's agent) and B2 (its own); not A2 (claude), B1 (builtin), A3 (a command)
    assert reasons["A1"] == reasons["B2"] == "waiting: agent aider: aider is not installed"
    assert reasons["A2"] is None and reasons["B1"] is None and reasons["A3"] is None
    assert (
        repo.note_waiting({"aider": "aider is not installed"}, None, "builtin", time.time()) == 0
    )  # unchanged
    (claimed,) = repo.claim("w1", 1, time.time(), 30.0, ClaimOptions(task_ids=(_key_id(repo, "B2"),)))
    assert claimed["reason"] is None
