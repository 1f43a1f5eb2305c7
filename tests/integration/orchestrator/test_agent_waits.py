"""A worker on SQLite and PostgreSQL where one agent's program is missing: that agent's tasks wait
(not claimed, not failed) while another agent's tasks and command tasks run; `waiting` and the status
lines name the agent and why; `exit_when_idle` still exits (saying what waits); and once the program
is there, a worker runs the waiting tasks and what depends on them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import pytest

from architect.orchestrator.executors import CommandExecutor
from architect.orchestrator.executors.base import ExecResult, TaskContext
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_markdown
from architect.orchestrator.worker import Worker, WorkerOptions
from architect.store import Store, open_store
from tests.helpers import wait_until_async

PLAN = (
    "---\nrepo: /srv/shop\n---\n# Feature: Shop\n## Phase 1: A\n"
    "- [ ] T1 Aider's task `@aider`\n- [ ] T2 The default agent's task `@`\n- [ ] T3 A command `$ true`\n"
    "## Phase 2: B\n- [ ] T4 After aider's (after T1) `@`\n"
)
NOT_INSTALLED = "aider: aider is not installed (looked for aider on PATH)"


class Agents:
    """An agent executor double: agents `builtin` and `aider`, of which `missing` says which cannot run."""

    name = "agent"
    default_agent = "builtin"

    def __init__(self, missing: Mapping[str, str]) -> None:
        self.absent = dict(missing)
        self.ran: list[str] = []

    def missing(self) -> dict[str, str]:
        return dict(self.absent)

    async def health(self) -> str | None:
        return None

    async def run(self, ctx: TaskContext) -> ExecResult:
        self.ran.append(ctx.task["key"])
        return ExecResult(True, {"agent": ctx.task.get("agent") or "builtin"})


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, migrate="upgrade")
    yield s
    s.close()


def _worker(m: Manager, agents: Agents, messages: list[str], *, idle: bool) -> Worker:
    opts = WorkerOptions(slots=2, lease_s=10, poll_s=0.02, health_s=0.05, exit_when_idle=idle)
    return Worker(m, {"agent": agents, "command": CommandExecutor()}, opts, on_status=messages.append)


def test_a_missing_agents_tasks_wait_while_the_others_run(store: Store) -> None:
    m = Manager(store.tasks, check_repos=lambda plans: None)
    fid = m.import_plans(parse_markdown(PLAN))[0]["feature"]["id"]
    agents = Agents({"aider": NOT_INSTALLED})
    messages: list[str] = []
    w = _worker(m, agents, messages, idle=True)
    stats = asyncio.run(asyncio.wait_for(w.run(), 30))  # exits: the waiting task does not keep it alive

    assert agents.ran == ["T2"] and stats["succeeded"] == 2 and stats["failed"] == 0
    t = {x["key"]: x for x in store.tasks.tasks(fid)}
    assert (t["T1"]["status"], t["T1"]["attempt"], t["T1"]["failures"]) == ("ready", 0, 0)  # waits
    assert t["T4"]["status"] == "pending"  # its dependent waits too, not blocked
    assert (t["T2"]["status"], t["T3"]["status"]) == ("succeeded", "succeeded")
    assert w.missing_agents == {"aider": NOT_INSTALLED} and w.held_back == 1
    assert w.waiting == f"agent aider: {NOT_INSTALLED}"
    assert f"waiting: tasks of agent aider held back (not claimed): {NOT_INSTALLED}" in messages
    assert any(x.startswith("stopping: 1 ready task(s) wait") and "agent aider" in x for x in messages)

    # the program is installed: a long-running worker notices and runs T1, then T4
    again = _worker(m, agents, messages, idle=False)

    async def install_then_finish() -> None:
        job = asyncio.create_task(again.run())
        await wait_until_async(lambda: again.missing_agents)  # it checked: still missing
        assert again.stats["claimed"] == 0
        agents.absent = {}
        await wait_until_async(lambda: agents.ran == ["T2", "T1", "T4"], timeout=20)
        again.stop()
        await asyncio.wait_for(job, 10)

    asyncio.run(install_then_finish())
    assert "agent aider can run again: its tasks are claimed" in messages
    assert {x["status"] for x in store.tasks.tasks(fid)} == {"succeeded"}
    assert again.waiting is None


def test_a_missing_agent_with_no_ready_task_is_not_waited_for(store: Store) -> None:
    m = Manager(store.tasks, check_repos=lambda plans: None)
    m.import_plans(
        parse_markdown("---\nrepo: /srv/shop\n---\n# Feature: Own\n## Phase 1: A\n- [ ] T1 Mine `@`\n")
    )
    agents = Agents({"aider": NOT_INSTALLED})
    messages: list[str] = []
    w = _worker(m, agents, messages, idle=True)
    stats = asyncio.run(asyncio.wait_for(w.run(), 30))
    assert stats["succeeded"] == 1 and agents.ran == ["T1"]
    assert w.waiting is None and w.held_back == 0
    assert messages == []  # no word of aider: none of its tasks is ready
