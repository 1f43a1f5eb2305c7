"""`command` executor: a shell command in its own process group, with a timeout; also validators.

The process group id is reported through `ctx.on_process` so a lost worker's orphaned group can be
killed before the task is dispatched again. Validator output is parsed for pytest or JUnit counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import os
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from architect.orchestrator.executors.base import ExecResult, TaskContext, tail

__all__ = ["CommandExecutor", "kill_group", "parse_test_summary", "run_shell", "run_validator"]

_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_RUFF = re.compile(r"^(?:Found (\d+) errors?\.[ \t]*$|(All checks passed!))", re.M)
_MYPY = re.compile(
    r"^(?:Found (\d+) errors? in \d+ files? \(checked (\d+) source files?\)|Success: no issues found in (\d+) source files?)",
    re.M,
)


# The command runs under a small shell that kills its whole process group when it is told the
# worker died (SIGTERM through PR_SET_PDEATHSIG on Linux) or hung up.
_WRAPPER = 'trap "kill -KILL 0" TERM HUP; /bin/sh -c "$1" & wait $!'


@functools.cache
def _death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook so the wrapper shell hears of the worker's death (any remaining
    group is also killed by the next worker on this host before the task runs again). Built once:
    finding libc runs `ldconfig`, which would otherwise block the event loop at every launch."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def hook() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return hook


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Kill a process group; False when it no longer exists. Never our own group."""
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def run_shell(
    command: str,
    *,
    cwd: str | None,
    timeout: float | None,
    env: Mapping[str, str],
    ctx: TaskContext | None = None,
) -> tuple[int | None, str, float]:
    """Run a shell command in a new session; (exit code or None on timeout, output, seconds)."""
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        _WRAPPER,
        "architect-task",
        command,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_death_signal(),
        env={**os.environ, **env},
    )
    if ctx is not None and ctx.on_process is not None:
        await ctx.on_process(proc.pid)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        code: int | None = proc.returncode
    except TimeoutError:
        kill_group(proc.pid)
        out = await _reap(proc)
        code = None
    except BaseException:  # cancelled (claim lost, shutdown): take the whole group down
        kill_group(proc.pid)
        await asyncio.shield(_reap(proc))
        raise
    return code, out.decode(errors="replace"), time.monotonic() - start


async def _reap(proc: asyncio.subprocess.Process) -> bytes:
    """After its group was killed: the output left in the pipe, the process reaped and its pipe
    closed (a process that escaped the group may hold the pipe open: given up after 5 s, then the
    transport is closed so no pipe outlives the run)."""
    out = b""
    with contextlib.suppress(Exception):
        out, _ = await asyncio.wait_for(proc.communicate(), 5)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    transport = getattr(proc, "_transport", None)  # asyncio keeps it private; closing it closes the pipes
    if transport is not None:
        transport.close()
    return out


def parse_test_summary(output: str, junit: str | None = None) -> dict[str, Any]:
    """Test counts from a JUnit XML file if given, else from a pytest summary line, plus the error
    counts of ruff's and mypy's summaries (`ruff_errors`, `mypy_errors`) found in the output; {} if
    none of them."""
    lint: dict[str, int] = {}
    for m in _RUFF.finditer(output):
        lint["ruff_errors"] = int(m.group(1)) if m.group(1) else 0
    for m in _MYPY.finditer(output):
        lint["mypy_errors"] = int(m.group(1)) if m.group(1) else 0
    return {**_tests_summary(output, junit), **lint}


def _tests_summary(output: str, junit: str | None) -> dict[str, Any]:
    """Counts from a JUnit XML file if given, else from a pytest summary line; {} if neither."""
    if junit:
        try:
            root = ET.parse(junit).getroot()
        except (OSError, ET.ParseError):
            root = None
        if root is not None:
            suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
            n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
            passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
            return {"source": "junit", "passed": passed, "failed": n["failures"], "errors": n["errors"],
                    "skipped": n["skipped"]}  # fmt: skip
    for line in reversed(output.splitlines()):
        found = _PYTEST_COUNT.findall(line)
        if found and (" in " in line or "=" in line):
            counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
            for num, word in found:
                key = "errors" if word.startswith("error") else word
                if key in counts:
                    counts[key] += int(num)
            return {"source": "pytest", **counts}
    return {}


async def run_validator(ctx: TaskContext, command: str) -> dict[str, Any]:
    p = ctx.params
    code, out, secs = await run_shell(
        command, cwd=p.get("cwd"), timeout=float(p.get("validator_timeout", 600)), env=ctx.env, ctx=ctx
    )
    summary = parse_test_summary(out, p.get("junit"))
    return {
        "ok": code == 0,
        "exit_code": code,
        "duration_s": round(secs, 3),
        **summary,
        "output_tail": tail(out, 2000),
    }


class CommandExecutor:
    name = "command"

    async def health(self) -> str | None:
        return None

    async def run(self, ctx: TaskContext) -> ExecResult:
        p = ctx.params
        cwd = p.get("cwd")
        if cwd and not Path(cwd).is_dir():
            return ExecResult(False, None, f"params.cwd: {cwd} is not a directory")
        timeout = float(p["timeout"]) if p.get("timeout") else None
        env = {**ctx.env, **{str(k): str(v) for k, v in (p.get("env") or {}).items()}}
        code, out, secs = await run_shell(str(p["command"]), cwd=cwd, timeout=timeout, env=env, ctx=ctx)
        result = {"exit_code": code, "output_tail": tail(out), "duration_s": round(secs, 3)}
        if code is None:
            return ExecResult(False, result, f"timed out after {timeout:g}s")
        if code != 0:
            return ExecResult(False, result, f"exit code {code}")
        return ExecResult(True, result)
