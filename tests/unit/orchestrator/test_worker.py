from __future__ import annotations

import asyncio
import itertools
import time

import orjson
import pytest

from architect.gateway.providers.transport import HTTPRequest
from architect.orchestrator.executors import CommandExecutor, PythonExecutor, parse_test_summary
from architect.orchestrator.executors import llm as llm_module
from architect.orchestrator.executors.base import ExecResult, TaskContext
from architect.orchestrator.manager import Manager
from architect.orchestrator.plans import parse_yaml
from architect.orchestrator.worker import Worker, WorkerOptions
from architect.store.orchestrator import ClaimOptions, SQLiteMemoryTaskRepo
from tests.helpers import wait_until_async

YAML = """
project: shop
title: Worker
phases:
  - title: A
    tasks:
      - {id: T001, title: py, executor: python, params: {callable: "tests.unit.orchestrator.test_worker:double", n: 21}}
      - {id: T002, title: cmd, command: "echo hello", validator: "echo '=== 3 passed, 1 skipped in 0.1s ==='"}
      - {id: T003, title: llm, executor: llm, params: {prompt: "Do {title}"}}
"""


def double(arg: dict[str, object]) -> dict[str, object]:
    params = arg["params"]
    assert isinstance(params, dict)
    return {"value": params["n"] * 2, "task": arg["task"]["key"]}  # type: ignore[index]


class FlakyGateway:
    """An llm executor whose health check fails until `healthy_after` seconds have passed."""

    name = "llm"

    def __init__(self, healthy_after: float) -> None:
        self.since = time.monotonic()
        self.healthy_after = healthy_after
        self.ran_at: float | None = None

    async def health(self) -> str | None:
        if time.monotonic() - self.since < self.healthy_after:
            return "gateway /readyz answered 503"
        return None

    async def run(self, ctx: TaskContext) -> ExecResult:
        self.ran_at = time.monotonic() - self.since
        return ExecResult(True, {"output": f"done {ctx.task['key']}", "tags": ctx.tags()})


async def test_worker_runs_executors_validates_and_waits_for_health() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(parse_yaml(YAML))
    llm = FlakyGateway(healthy_after=0.4)
    messages: list[str] = []
    w = Worker(m, {"command": CommandExecutor(), "python": PythonExecutor(), "llm": llm},
               WorkerOptions(slots=2, lease_s=5, poll_s=0.02, health_s=0.05, exit_when_idle=True),
               on_status=messages.append)  # fmt: skip
    stats = await asyncio.wait_for(w.run(), 20)
    assert stats["succeeded"] == 3
    t = {x["key"]: x for x in repo.tasks(1)}
    assert t["T001"]["result"] == {"value": 42, "task": "T001"}
    assert t["T002"]["result"]["output_tail"] == "hello\n"
    assert t["T002"]["validation"]["passed"] == 3 and t["T002"]["validation"]["skipped"] == 1
    assert t["T003"]["result"]["tags"] == {"project": "shop", "feature": "worker", "task": "T003"}
    assert llm.ran_at is not None and llm.ran_at >= 0.4  # dispatch waited for the health check
    assert any("waiting: llm tasks held back" in x and "503" in x for x in messages)


AFTER = """
title: After
phases:
  - tasks:
      - {id: T001, title: first, executor: python, params: {callable: "tests.unit.orchestrator.test_worker:double", n: 1}}
      - {id: T002, title: x, after: [T001], executor: llm, params: {prompt: "hi {title}"}}
"""


@pytest.mark.parametrize("healthy", [False, True])
async def test_a_task_that_becomes_ready_is_not_claimed_before_its_executor_is_checked(healthy: bool) -> None:
    # the set of executors with ready tasks is refreshed every health_s (long here): T002 becomes
    # ready inside that window, and its executor, never checked, must be checked before its claim
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(parse_yaml(AFTER))
    llm = FlakyGateway(healthy_after=0.0 if healthy else 1e9)
    w = Worker(m, {"python": PythonExecutor(), "llm": llm},
               WorkerOptions(slots=2, lease_s=30, poll_s=0.02, health_s=60))  # fmt: skip
    job = asyncio.create_task(w.run())
    await wait_until_async(lambda: repo.get_task(1, "T001")["status"] == "succeeded")
    if healthy:  # a healthy executor's task is claimed at once, not a health_s later
        await wait_until_async(lambda: repo.get_task(1, "T002")["status"] == "succeeded", timeout=5)
    else:
        await asyncio.sleep(0.3)  # many polls
        assert repo.get_task(1, "T002")["status"] == "ready" and llm.ran_at is None
    w.stop()
    await asyncio.wait_for(job, 5)


async def test_a_lost_lease_stops_the_attempt() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(
        parse_yaml("title: X\nphases:\n  - tasks:\n      - {id: T001, title: a, command: 'sleep 20'}\n")
    )
    # a lease long enough never to expire on a busy machine; frequent heartbeats to see the cancel
    opts = WorkerOptions(slots=1, lease_s=30, heartbeat_s=0.05, poll_s=0.05)
    w = Worker(m, {"command": CommandExecutor()}, opts)
    job = asyncio.create_task(w.run())
    await wait_until_async(lambda: w.running)  # the task is claimed and its command started
    m.cancel("x")
    await wait_until_async(lambda: w.stats["lost"] == 1 and not w.running)
    w.stop()
    await asyncio.wait_for(job, 5)
    assert repo.get_task(1, "T001")["status"] == "cancelled"


class SlowToStop:
    """A command executor whose attempt takes 0.3 s to stop once cancelled (a process group that
    is slow to die), many heartbeats long."""

    name = "command"

    async def health(self) -> str | None:
        return None

    async def run(self, ctx: TaskContext) -> ExecResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(0.3))
            raise
        return ExecResult(True)


async def test_a_lost_lease_is_counted_once_however_long_the_attempt_takes_to_stop() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    m.import_plans(parse_yaml("title: X\nphases:\n  - tasks:\n      - {id: T001, title: a, command: 'x'}\n"))
    w = Worker(
        m, {"command": SlowToStop()}, WorkerOptions(slots=1, lease_s=30, heartbeat_s=0.01, poll_s=0.05)
    )
    job = asyncio.create_task(w.run())
    await wait_until_async(lambda: w.running)
    m.cancel("x")
    await wait_until_async(lambda: w.stats["lost"] >= 1 and not w.running)
    w.stop()
    await asyncio.wait_for(job, 5)
    assert w.stats["lost"] == 1


def test_test_summary_parsing(tmp_path: object) -> None:
    assert parse_test_summary("...\n==== 12 passed, 2 failed, 1 error in 3.2s ====\n") == {
        "source": "pytest", "passed": 12, "failed": 2, "errors": 1, "skipped": 0}  # fmt: skip
    assert parse_test_summary("no tests here") == {}
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "junit.xml"
    p.write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="1"/></testsuites>')
    assert parse_test_summary("", str(p)) == {
        "source": "junit",
        "passed": 3,
        "failed": 1,
        "errors": 0,
        "skipped": 1,
    }


async def test_a_worker_held_back_by_the_rate_sleeps_until_the_next_start_not_its_next_poll() -> None:
    repo = SQLiteMemoryTaskRepo()
    m = Manager(repo)
    call = "executor: python, params: {callable: 'tests.unit.orchestrator.test_worker:double', n: 1}"
    tasks = ", ".join(f"{{id: T{i:03d}, title: t, {call}}}" for i in range(1, 11))
    m.import_plans(parse_yaml(f"title: R\nphases:\n  - tasks: [{tasks}]\n"))
    opts = WorkerOptions(slots=4, lease_s=5, poll_s=1.0, exit_when_idle=True,
                         claim=ClaimOptions(rate=20, rate_period=1.0))  # fmt: skip
    stats = await asyncio.wait_for(Worker(m, {"python": PythonExecutor()}, opts).run(), 20)
    assert stats["succeeded"] == 10
    starts = sorted(e["ts"] for e in repo.events(1) if e["kind"] == "claimed")
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.05 - 1e-6  # 20/s: 50 ms apart
    # 9 intervals of 50 ms; waiting for the 1 s poll after each held-back claim would take ~9 s
    assert starts[-1] - starts[0] < 1.5


def test_lint_summaries_of_ruff_and_mypy_are_counted_beside_the_tests() -> None:
    out = (
        "x.py:1:1: F401 unused import\nFound 3 errors.\n"
        "src/a.py:2: error: Incompatible types\nFound 2 errors in 1 file (checked 31 source files)\n"
        "==== 4 passed in 0.1s ====\n"
    )
    assert parse_test_summary(out) == {
        "source": "pytest", "passed": 4, "failed": 0, "errors": 0, "skipped": 0, "ruff_errors": 3, "mypy_errors": 2,
    }  # fmt: skip
    clean = "All checks passed!\nSuccess: no issues found in 181 source files\n"
    assert parse_test_summary(clean) == {"ruff_errors": 0, "mypy_errors": 0}


async def test_an_llm_task_without_a_model_is_told_which_model_was_asked_and_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, object]] = []

    async def exchange(request: HTTPRequest) -> tuple[int, bytes]:
        sent.append(orjson.loads(request.body or b"{}"))
        return 404, b'{"error": {"message": "unknown model"}}'

    monkeypatch.setattr(llm_module, "_exchange", exchange)
    ex = llm_module.LLMExecutor("http://127.0.0.1:9/v1", "sk")
    feature = {"title": "f", "project": "p", "slug": "f"}
    res = await ex.run(TaskContext({"key": "T1", "title": "t", "params": {"prompt": "Hi"}}, feature))
    assert sent[0]["model"] == "default"
    assert res.reason == (
        "gateway answered 404: unknown model (the task sets no params.model, so model 'default' was asked "
        "for; set params.model in the plan to a model the gateway serves)"
    )
    named = {"key": "T1", "title": "t", "params": {"prompt": "Hi", "model": "fast"}}
    assert (await ex.run(TaskContext(named, feature))).reason == "gateway answered 404: unknown model"
