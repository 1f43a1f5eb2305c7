"""The builtin agent against a scripted model (tests/stubs/scripted_chat.ScriptedChat as the gateway):
it reads, edits, validates and finishes; it is stopped by repeated failures, the gateway's
`budget_exceeded`, its timeout and its step limit; paths outside the worktree are refused."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from architect.orchestrator.agents import AgentJob, BuiltinRunner, Sandbox
from tests.stubs.scripted_chat import ScriptedChat, last_tool_result

NONCE = "nonce-7f3a"
_ids = itertools.count(1)


def call(name: str, **arguments: Any) -> dict[str, Any]:
    fn = {"name": name, "arguments": json.dumps(arguments)}
    return {"tool_calls": [{"id": f"call_{next(_ids)}", "type": "function", "function": fn}]}


def raw_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "tool_calls": [
            {
                "id": f"call_{next(_ids)}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        ]
    }


def tool_results(body: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in body["messages"] if m["role"] == "tool"]


def on(job: AgentJob, stub: ScriptedChat) -> AgentJob:
    return dataclasses.replace(job, gateway_url=stub.url.removesuffix("/v1"))


@pytest.fixture
def nonced(job: AgentJob) -> AgentJob:
    """The job's app.py holds a nonce: the script hands out its edit only after reading it."""
    (job.worktree / "app.py").write_text(f'# {NONCE}\ndef greet():\n    return "hello"\n')
    return dataclasses.replace(job, validator="grep -q 'hello world' app.py && echo '1 passed in 0.01s'")


def good_script(body: dict[str, Any]) -> dict[str, Any]:
    """read app.py → (its text holds the nonce) edit it → validate → (exit code 0) finish."""
    last = last_tool_result(body)
    if last is None:
        return call("read_file", path="app.py")
    if NONCE in last:
        return call(
            "edit", path="app.py", search='    return "hello"\n', replace='    return "hello world"\n'
        )
    if last == "edited app.py":
        return call("run_validator")
    if last.startswith("exit code 0"):
        return call("finish", summary="greet() says hello world")
    return {"content": f"unexpected: {last[:100]}"}


async def test_reads_edits_validates_and_finishes(nonced: AgentJob) -> None:
    with ScriptedChat(good_script) as stub:
        outcome = await BuiltinRunner().run(on(nonced, stub), Sandbox())
    assert outcome.ok and outcome.reason is None and outcome.stop is None, outcome
    assert (nonced.worktree / "app.py").read_text().endswith('return "hello world"\n')
    assert outcome.steps == 4 and outcome.models == ["coder"]
    assert "finished: greet() says hello world" in outcome.output
    first, last = stub.requests[0], stub.requests[-1]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-attempt-1"
    body = first["body"]
    assert body["model"] == "coder" and body["tool_choice"] == "auto" and "stream" not in body
    assert [t["function"]["name"] for t in body["tools"]] == [
        "list_files", "read_file", "search", "edit", "run_validator", "finish"
    ]  # fmt: skip
    assert "SEARCH/REPLACE" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": nonced.prompt}
    # the validator's result as the model saw it: exit code, then the end of its output
    assert tool_results(last["body"])[-1] == "exit code 0\n1 passed in 0.01s\n"


class RenamingChat(ScriptedChat):
    """Answers with another model name than asked for, as a gateway's deployment does."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        resp = await super()._chat(request)
        assert isinstance(resp, web.Response) and isinstance(resp.body, bytes)
        data = orjson.loads(resp.body)
        data["model"] = f"upstream-{len(self.requests) % 2}"
        return web.Response(body=orjson.dumps(data), content_type="application/json")


async def test_models_are_those_the_gateway_answered_with(nonced: AgentJob) -> None:
    with RenamingChat(good_script) as stub:
        outcome = await BuiltinRunner(model="ignored").run(on(nonced, stub), Sandbox())
    assert outcome.ok and outcome.models == ["upstream-1", "upstream-0"]


async def test_the_same_failing_edit_twice_ends_the_attempt(nonced: AgentJob) -> None:
    bad = {"path": "app.py", "search": "    return 'hello'\n", "replace": "    return 'bye'\n"}
    with ScriptedChat(lambda body: call("edit", **bad)) as stub:
        outcome = await BuiltinRunner().run(on(nonced, stub), Sandbox())
    assert not outcome.ok and outcome.stop == "repeated_failure"
    assert outcome.reason is not None and outcome.reason.startswith(
        "repeated_failure: error: app.py: the SEARCH text"
    )
    assert outcome.steps == 2 and len(stub.requests) == 2
    fed_back = tool_results(stub.requests[1]["body"])
    assert len(fed_back) == 1 and fed_back[0].startswith("error: app.py: the SEARCH text was not found")
    assert (nonced.worktree / "app.py").read_text() == f'# {NONCE}\ndef greet():\n    return "hello"\n'


async def test_bad_json_and_unknown_tools_are_errors_fed_back(job: AgentJob) -> None:
    answers = iter(
        [raw_call("delete_file", '{"path": "app.py"}'), raw_call("edit", "{oops"), raw_call("edit", "{oops")]
    )
    with ScriptedChat(lambda body: next(answers)) as stub:
        outcome = await BuiltinRunner().run(on(job, stub), Sandbox())
    assert outcome.stop == "repeated_failure" and outcome.steps == 3
    fed = tool_results(stub.requests[2]["body"])
    assert fed[0].startswith("error: unknown tool 'delete_file'; the tools are list_files, read_file")
    assert fed[1].startswith("error: the arguments of edit are not valid JSON")
    assert (job.worktree / "app.py").exists()


async def test_a_reply_without_a_tool_call_is_an_error_then_a_stop(job: AgentJob) -> None:
    with ScriptedChat(lambda body: {"content": "I think it is done."}) as stub:
        outcome = await BuiltinRunner().run(on(job, stub), Sandbox())
    assert outcome.stop == "repeated_failure" and outcome.steps == 2
    told = stub.requests[1]["body"]["messages"][-1]
    assert told["role"] == "user" and "called no tool" in told["content"]


class RefusingChat(ScriptedChat):
    """From its second request on, refuses as the gateway does when the key's budget is spent."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self.requests:
            return await super()._chat(request)
        self.requests.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.json()}
        )
        error = {"message": "budget exceeded: the key budget (limit $0.01) has $0.0000 left",
                 "type": "insufficient_quota", "param": "budget", "code": "budget_exceeded"}  # fmt: skip
        return web.json_response({"error": error}, status=429)


async def test_budget_exceeded_stops_the_attempt(nonced: AgentJob) -> None:
    with RefusingChat(good_script) as stub:
        outcome = await BuiltinRunner().run(on(nonced, stub), Sandbox())
    assert not outcome.ok and outcome.stop == "budget_exceeded"
    assert outcome.reason == "budget_exceeded: budget exceeded: the key budget (limit $0.01) has $0.0000 left"
    assert outcome.steps == 2 and outcome.models == ["coder"] and len(stub.requests) == 2


async def test_paths_outside_the_worktree_are_refused(job: AgentJob, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    escape = os.path.relpath(secret, job.worktree)
    (job.worktree / "out").symlink_to(tmp_path)

    def script(body: dict[str, Any]) -> dict[str, Any]:
        done = len(tool_results(body))
        steps: list[Callable[[], dict[str, Any]]] = [
            lambda: call("read_file", path=str(secret)),
            lambda: call("edit", path=escape, search="top secret", replace="leaked"),
            lambda: call("search", pattern="secret", path="."),
            lambda: call("finish", summary="tried"),
        ]
        return steps[done]()

    with ScriptedChat(script) as stub:
        outcome = await BuiltinRunner().run(on(job, stub), Sandbox())
    assert outcome.ok, outcome
    fed = tool_results(stub.requests[-1]["body"])
    assert fed[0] == f"error: {secret}: outside the worktree (paths are relative to the worktree's root)"
    assert fed[1] == f"error: {escape}: outside the worktree (paths are relative to the worktree's root)"
    assert fed[2] == "no match"  # the symlink out is not followed
    assert secret.read_text() == "top secret\n"


async def test_list_read_and_search(job: AgentJob) -> None:
    (job.worktree / "pkg").mkdir()
    (job.worktree / "pkg" / "util.py").write_text("def helper():\n    return 42\n")

    def script(body: dict[str, Any]) -> dict[str, Any]:
        asks = [call("list_files", path="."), call("search", pattern=r"return \d+"), call("read_file", path="pkg"),
                call("search", pattern="("), call("finish", summary="looked")]  # fmt: skip
        return asks[len(tool_results(body))]

    with ScriptedChat(script) as stub:
        outcome = await BuiltinRunner().run(on(job, stub), Sandbox())
    assert outcome.ok
    listing, found, not_file, bad_rx = tool_results(stub.requests[-1]["body"])
    assert listing.splitlines() == ["app.py", "pkg/util.py"]  # not the worktree's .git file
    assert found == "pkg/util.py:2:     return 42"
    assert not_file == "error: pkg: not a file"
    assert bad_rx.startswith("error: invalid regular expression '('")


async def test_the_step_limit_and_the_timeout_end_the_loop(job: AgentJob) -> None:
    with ScriptedChat(lambda body: call("list_files", path=".")) as stub:
        outcome = await BuiltinRunner(max_steps=3).run(on(job, stub), Sandbox())
    assert not outcome.ok and outcome.stop is None and outcome.reason == "step limit: 3 steps without finish"
    assert len(stub.requests) == 3

    slow = dataclasses.replace(job, validator="sleep 30", timeout_s=1.0)
    start = time.monotonic()
    with ScriptedChat(lambda body: call("run_validator")) as stub:
        outcome = await BuiltinRunner().run(on(slow, stub), Sandbox())
    assert outcome.stop == "timeout" and outcome.reason == "timed out after 1s"
    assert time.monotonic() - start < 5


def test_the_builtin_needs_nothing_installed() -> None:
    assert BuiltinRunner().missing() is None and BuiltinRunner().name == "builtin"


async def test_an_unreachable_gateway_fails_the_attempt(job: AgentJob) -> None:
    outcome = await BuiltinRunner().run(job, Sandbox())  # the job's gateway is 127.0.0.1:9, closed
    assert not outcome.ok and outcome.stop is None and outcome.steps == 1
    assert outcome.reason is not None and outcome.reason.startswith("gateway call failed: ConnectError")
