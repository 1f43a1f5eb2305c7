"""The builtin agent's tools: what the model may call, their JSON schemas, and running one call.

Every path is relative to the worktree and confined to it (`edits.confine`). A call that cannot be
done (bad JSON arguments, an unknown tool, a path outside, an edit that does not apply) is an error
result the model is told; the agent's loop counts errors for its repeated-failure guard.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from architect.orchestrator.agents.base import AgentJob, prepare_scratch, writable_paths
from architect.orchestrator.agents.edits import EditError, SearchReplace, apply_edits, confine
from architect.orchestrator.agents.sandbox import OnProcess, Sandbox, run_confined
from architect.orchestrator.executors.base import tail

__all__ = ["TOOL_SPECS", "ToolResult", "Toolbox"]

MAX_LIST = 500
MAX_READ = 100_000
MAX_MATCHES = 100
MAX_SEARCH_FILE = 1 << 20
VALIDATOR_TAIL = 3000


def _fn(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    params = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": params}}


_PATH = {"type": "string", "description": "a path relative to the worktree's root"}
TOOL_SPECS: list[dict[str, Any]] = [
    _fn("list_files", "List the files under a directory of the worktree (recursively; '.' is the root).",
        {"path": {**_PATH, "default": "."}}, []),
    _fn("read_file", "Read a text file of the worktree; the result is its exact content.", {"path": _PATH},
        ["path"]),
    _fn("search", "Search the worktree's files for a regular expression (Python syntax); the result is "
        "one `path:line: text` per matching line.",
        {"pattern": {"type": "string"}, "path": {**_PATH, "default": "."}}, ["pattern"]),
    _fn("edit", "Replace the one occurrence of `search` in the file with `replace`. `search` must be an "
        "exact copy of the file's current text (whitespace, indentation and line breaks included) and "
        "must occur exactly once. An empty `search` creates a new file whose content is `replace`.",
        {"path": _PATH, "search": {"type": "string"}, "replace": {"type": "string"}},
        ["path", "search", "replace"]),
    _fn("run_validator", "Run the task's validator (its tests) in the worktree; the result is its exit "
        "code and the end of its output.", {}, []),
    _fn("finish", "End the task: the work is done. Give a short summary of what you changed.",
        {"summary": {"type": "string"}}, ["summary"]),
]  # fmt: skip
TOOL_NAMES = tuple(spec["function"]["name"] for spec in TOOL_SPECS)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model is told; `error` when the call failed; `finished` holds finish's summary."""

    text: str
    error: bool = False
    finished: str | None = None


def _err(text: str) -> ToolResult:
    return ToolResult(f"error: {text}", error=True)


def _str_arg(args: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str):
        raise EditError(
            f"argument {key!r} must be a string" if key in args else f"argument {key!r} is missing"
        )
    return value


class Toolbox:
    """Runs the tool calls of one attempt in `job.worktree`; the validator confined by `sandbox`."""

    def __init__(
        self,
        job: AgentJob,
        sandbox: Sandbox,
        *,
        on_process: OnProcess | None = None,
        validator_timeout_s: float = 600.0,
        env: Mapping[str, str] | None = None,
        remaining: Callable[[], float] | None = None,
    ) -> None:
        self.job = job
        self.root = job.worktree.resolve()
        self.sandbox = sandbox
        self.on_process = on_process
        self.validator_timeout_s = validator_timeout_s
        self.env = dict(env or {})
        self.remaining = remaining

    async def call(self, name: str, arguments: str) -> ToolResult:
        """Run one call; its arguments are a JSON object as the model sent them."""
        if name not in TOOL_NAMES:
            return _err(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
        try:
            args = orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError as exc:
            return _err(f"the arguments of {name} are not valid JSON ({exc})")
        if not isinstance(args, dict):
            return _err(f"the arguments of {name} must be a JSON object")
        try:
            if name == "list_files":
                return self.list_files(_str_arg(args, "path", "."))
            if name == "read_file":
                return self.read_file(_str_arg(args, "path"))
            if name == "search":
                return self.search(_str_arg(args, "pattern"), _str_arg(args, "path", "."))
            if name == "edit":
                path = _str_arg(args, "path")
                block = SearchReplace(_str_arg(args, "search"), _str_arg(args, "replace"))
                apply_edits(self.root, path, [block])
                return ToolResult(f"edited {path}" if block.search else f"created {path}")
            if name == "run_validator":
                return await self.run_validator()
            return ToolResult("finished", finished=_str_arg(args, "summary", ""))
        except EditError as exc:
            return _err(str(exc))
        except OSError as exc:
            return _err(f"{exc.strerror or exc} ({exc.filename or name})")

    def _files(self, top: Path) -> list[str]:
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for f in sorted(filenames):
                if f == ".git":  # a worktree's link to its git directory
                    continue
                out.append(os.path.relpath(os.path.join(dirpath, f), self.root))
        return out

    def list_files(self, path: str) -> ToolResult:
        top = confine(self.root, path)
        if not top.is_dir():
            return _err(f"{path}: not a directory")
        files = self._files(top)
        more = f"\n… and {len(files) - MAX_LIST} more" if len(files) > MAX_LIST else ""
        return ToolResult("\n".join(files[:MAX_LIST]) + more if files else "(no files)")

    def read_file(self, path: str) -> ToolResult:
        target = confine(self.root, path)
        if not target.is_file():
            return _err(f"{path}: no such file" if not target.exists() else f"{path}: not a file")
        try:
            text = target.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return _err(f"{path}: not a UTF-8 text file")
        if len(text) > MAX_READ:
            return ToolResult(text[:MAX_READ] + f"\n… (cut: the file has {len(text)} characters)")
        return ToolResult(text if text else "(the file is empty)")

    def search(self, pattern: str, path: str) -> ToolResult:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            return _err(f"invalid regular expression {pattern!r}: {exc}")
        top = confine(self.root, path)
        files = self._files(top) if top.is_dir() else [os.path.relpath(top, self.root)]
        hits: list[str] = []
        for rel in files:
            try:
                p = confine(self.root, rel)  # a symlink out is skipped
                if p.stat().st_size > MAX_SEARCH_FILE:
                    continue
                text = p.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError, EditError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if rx.search(line):
                    hits.append(f"{rel}:{n}: {line[:300]}")
                    if len(hits) >= MAX_MATCHES:
                        return ToolResult("\n".join(hits) + f"\n… (stopped at {MAX_MATCHES} matches)")
        return ToolResult("\n".join(hits) if hits else "no match")

    async def run_validator(self) -> ToolResult:
        command = self.job.validator
        if not command:
            return _err("this task has no validator")
        timeout = self.validator_timeout_s
        if self.remaining is not None:
            timeout = max(1.0, min(timeout, self.remaining()))
        env = {**prepare_scratch(self.job), **self.env, **self.job.env}
        ran = await run_confined(
            ["/bin/sh", "-c", command], cwd=self.job.worktree, env=env, timeout_s=timeout,
            sandbox=self.sandbox, writable=writable_paths(self.job), on_process=self.on_process,
        )  # fmt: skip
        head = f"timed out after {timeout:g}s" if ran.code is None else f"exit code {ran.code}"
        return ToolResult(f"{head}\n{tail(ran.output, VALIDATOR_TAIL)}")
