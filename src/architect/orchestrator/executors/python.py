"""`python` executor: a callable by import path (`package.module:function`), sync or async.

It receives a dict with the task, its feature and params; its return value (JSON-able) is stored.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

from architect.orchestrator.executors.base import ExecResult, TaskContext

__all__ = ["PythonExecutor", "resolve_callable"]


def resolve_callable(path: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"params.callable: expected 'package.module:function', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"params.callable: {path} is not callable")
    return obj


class PythonExecutor:
    name = "python"

    async def health(self) -> str | None:
        return None

    async def run(self, ctx: TaskContext) -> ExecResult:
        try:
            fn = resolve_callable(str(ctx.params.get("callable", "")))
        except (ImportError, AttributeError, ValueError) as exc:
            return ExecResult(False, None, f"params.callable: {exc}")
        arg = {"task": dict(ctx.task), "feature": dict(ctx.feature), "params": dict(ctx.params)}
        try:
            if inspect.iscoroutinefunction(fn):
                value = await fn(arg)
            else:
                value = await asyncio.to_thread(fn, arg)
        except Exception as exc:
            return ExecResult(False, {"error": repr(exc)}, f"{exc.__class__.__name__}: {exc}")
        if value is False:
            return ExecResult(False, value, "the callable returned False")
        return ExecResult(True, value if _jsonable(value) else repr(value))


def _jsonable(v: Any) -> bool:
    if v is None or isinstance(v, str | int | float | bool):
        return True
    if isinstance(v, list | tuple):
        return all(_jsonable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    return False
