"""`builtin`: Architect's own small coding agent, for when no other is installed.

A bounded loop (`max_steps` chat completions) through the gateway's OpenAI-compatible endpoint
(`{gateway_url}/v1/chat/completions`, the attempt's key as the bearer token, the job's model group,
non-streaming) with the tools of `tools.py`: list, read and search files, edit them with strict
SEARCH/REPLACE (an edit that does not apply is an error result, never a partial apply), run the
validator (confined by the sandbox) and finish. The loop itself runs in the worker's process; only
what it reads and writes is confined to the worktree.

It ends when the model calls `finish` (ok), or is stopped: the same failing call or the same error a
second time (`repeated_failure`), a 429 whose body says `budget_exceeded` (`budget_exceeded`), the
job's timeout (`timeout`), the step limit, or a gateway failure. `models` lists the `model` of each
response, as the gateway answered it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.transport import HTTPRequest, TransportError
from architect.orchestrator.agents.base import OUTPUT_TAIL, AgentJob, AgentOutcome, RunnerKind, Stop
from architect.orchestrator.agents.sandbox import OnProcess, Sandbox
from architect.orchestrator.agents.tools import TOOL_SPECS, Toolbox
from architect.orchestrator.executors.base import tail

__all__ = ["SYSTEM_PROMPT", "BuiltinRunner"]

SYSTEM_PROMPT = """You are a careful software engineer working alone on one task in a git worktree of a \
project. You act only through the tools; every path is relative to the worktree's root.

Tools:
- list_files(path): the files under a directory ("." is the root).
- read_file(path): a file's exact content. Read a file before you edit it.
- search(pattern, path): lines matching a regular expression, as `path:line: text`.
- edit(path, search, replace): one SEARCH/REPLACE edit of one file (see below).
- run_validator(): run the task's tests; you get the exit code (0 = success) and the end of the output.
- finish(summary): say that the task is done, with a short summary of what you changed.

SEARCH/REPLACE edits are applied strictly:
- `search` must be an exact copy of a contiguous part of the file as it is now: the same characters, \
the same indentation and whitespace, the same line breaks. Copy it from read_file's result; never \
retype it from memory, never abbreviate it with "..." .
- `search` must occur exactly once in the file. If it occurs more than once, include more of the \
surrounding lines until it is unique.
- The one occurrence is replaced by `replace`, character for character: write `replace` complete and \
correctly indented. An empty `replace` deletes the text.
- To create a new file, give an empty `search` and the whole file as `replace`; this works only when \
the file does not exist yet.
- One call edits one place. To change several places, call edit several times; each later edit must \
match the file as the earlier ones left it.
- An edit that does not apply changes nothing and returns an error that says why. Read the file again \
and correct the edit; do not send a failed edit again unchanged.

Work in small steps: explore, read, edit, then run_validator when there is one, fix what fails, and \
call finish. The same failing call or the same error twice ends the task as failed."""

NO_TOOL_CALL = "the reply called no tool: act through the tools, and call finish when the task is done"


class BuiltinRunner:
    """Architect's own agent. Nothing to install: `missing()` is always None."""

    kind: ClassVar[RunnerKind] = "builtin"

    def __init__(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        max_steps: int = 30,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        validator_timeout_s: float = 600.0,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.name = name or self.kind
        self.model = model
        self.max_steps = max_steps
        self.timeout_s = timeout_s
        self.env = dict(env or {})
        self.validator_timeout_s = validator_timeout_s
        self.system_prompt = system_prompt

    def missing(self) -> str | None:
        return None

    async def run(self, job: AgentJob, sandbox: Sandbox, on_process: OnProcess | None = None) -> AgentOutcome:
        """The loop, bounded by the job's timeout (the shorter of it and the configured one)."""
        timeout = min(job.timeout_s, self.timeout_s) if self.timeout_s else job.timeout_s
        deadline = time.monotonic() + timeout
        loop = _Loop(self, job, deadline)
        toolbox = Toolbox(
            job, sandbox, on_process=on_process, validator_timeout_s=self.validator_timeout_s, env=self.env,
            remaining=lambda: deadline - time.monotonic(),
        )  # fmt: skip
        try:
            async with asyncio.timeout(timeout) as cm:
                return await loop.run(toolbox)
        except TimeoutError:
            if not cm.expired():
                raise
            return loop.outcome(False, f"timed out after {timeout:g}s", stop="timeout")
        finally:
            await loop.client.aclose()


class _Stopped(Exception):
    def __init__(self, outcome: AgentOutcome) -> None:
        self.outcome = outcome


class _Loop:
    """One attempt's conversation: messages, transcript, models seen, failures seen."""

    def __init__(self, runner: BuiltinRunner, job: AgentJob, deadline: float) -> None:
        self.runner = runner
        self.job = job
        self.deadline = deadline
        self.model = job.model or runner.model or "default"
        self.client = HTTP1Transport(max_connections=1)
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": runner.system_prompt},
            {"role": "user", "content": job.prompt},
        ]
        self.log: list[str] = []
        self.models: list[str] = []
        self.steps = 0
        self.failed_calls: set[str] = set()
        self.errors: set[str] = set()

    def outcome(self, ok: bool, reason: str | None, *, stop: Stop | None = None) -> AgentOutcome:
        return AgentOutcome(
            ok, reason, tail("\n".join(self.log), OUTPUT_TAIL), stop, list(self.models), self.steps
        )

    async def run(self, toolbox: Toolbox) -> AgentOutcome:
        try:
            for _ in range(self.runner.max_steps):
                self.steps += 1
                message = await self.complete()
                calls = message.get("tool_calls") or []
                if not isinstance(calls, list) or not calls:
                    text = str(message.get("content") or "").strip()
                    self.log.append(f"step {self.steps}: text {text[:200]!r}")
                    self.messages.append({"role": "assistant", "content": text or "(no text)"})
                    error = self.failure("reply", NO_TOOL_CALL)
                    self.messages.append({"role": "user", "content": error})
                    continue
                self.messages.append(
                    {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
                )
                done = await self.do_calls(toolbox, calls)
                if done is not None:
                    return done
        except _Stopped as stopped:
            return stopped.outcome
        return self.outcome(False, f"step limit: {self.runner.max_steps} steps without finish")

    async def do_calls(self, toolbox: Toolbox, calls: Sequence[Any]) -> AgentOutcome | None:
        """Run each call and answer it; the outcome when one is `finish`."""
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict):
                raise _Stopped(self.outcome(False, "the model sent a malformed tool call"))
            name, arguments = str(fn.get("name") or ""), fn.get("arguments")
            arguments = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
            result = await toolbox.call(name, arguments)
            brief = arguments if len(arguments) <= 160 else arguments[:160] + "…"
            self.log.append(f"step {self.steps}: {name} {brief} -> {result.text[:300]}")
            if result.finished is not None:
                self.log.append(f"finished: {result.finished}")
                return self.outcome(True, None)
            content = (
                self.failure(f"{name} {_canonical(arguments)}", result.text) if result.error else result.text
            )
            self.messages.append(
                {"role": "tool", "tool_call_id": str(call.get("id") or name), "content": content}
            )
        return None

    def failure(self, call: str, error: str) -> str:
        """Record a failed call; stop the attempt when this call or this error was seen before."""
        if call in self.failed_calls or error in self.errors:
            self.log.append(f"stopped: the same failure twice: {error}")
            raise _Stopped(self.outcome(False, f"repeated_failure: {error}", stop="repeated_failure"))
        self.failed_calls.add(call)
        self.errors.add(error)
        return error

    async def complete(self) -> dict[str, Any]:
        """One chat completion: the assistant message (raises `_Stopped` on a refusal or failure)."""
        body = {"model": self.model, "messages": self.messages, "tools": TOOL_SPECS, "tool_choice": "auto"}
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.job.api_key}"}
        request = HTTPRequest(
            "POST", f"{self.job.base_url}/chat/completions", headers, orjson.dumps(body),
            timeout_s=max(1.0, self.deadline - time.monotonic()),
        )  # fmt: skip
        try:
            resp = await self.client.send(request)
            raw = await resp.read()
        except TransportError as exc:
            raise _Stopped(
                self.outcome(False, f"gateway call failed: {exc.__class__.__name__}: {exc}")
            ) from None
        data = _json(raw)
        if resp.status != 200:
            message = _error_message(data) or raw[:300].decode(errors="replace")
            if resp.status == 429 and b"budget_exceeded" in raw:
                self.log.append(f"stopped: {message}")
                raise _Stopped(self.outcome(False, f"budget_exceeded: {message}", stop="budget_exceeded"))
            raise _Stopped(self.outcome(False, f"gateway answered {resp.status}: {message}"))
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, str) and model not in self.models:
            self.models.append(model)
        try:
            message = data["choices"][0]["message"]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            raise _Stopped(self.outcome(False, "the gateway's response has no choices[0].message")) from None
        if not isinstance(message, dict):
            raise _Stopped(self.outcome(False, "the gateway's response has no choices[0].message"))
        return message


def _json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _error_message(data: object) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        msg = data["error"].get("message")
        return str(msg) if msg else None
    return None


def _canonical(arguments: str) -> str:
    """The arguments as compact JSON with sorted keys (so one call sent twice is recognised)."""
    try:
        return orjson.dumps(orjson.loads(arguments), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return arguments
