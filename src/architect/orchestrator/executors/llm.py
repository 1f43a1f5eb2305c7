"""`llm` executor: a prompt template filled from the task, sent through the gateway's
OpenAI-compatible endpoint with the task's tags (`x-architect-tags: project=..,feature=..,task=..`)
so that its cost lands on the task in the ledger. Health: the gateway's `/readyz`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import aiohttp

from architect.orchestrator.executors.base import ExecResult, TaskContext, tail

__all__ = ["LLMExecutor", "render_prompt"]


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def render_prompt(template: str, ctx: TaskContext) -> str:
    t, f = ctx.task, ctx.feature
    values = _Missing(
        key=t["key"], title=t["title"], description=t.get("description") or "", role=t.get("role") or "",
        feature=f["title"], spec=f.get("spec") or "", project=f["project"],
        acceptance="\n".join(f"- {a}" for a in f.get("acceptance") or []),
        **{k: v for k, v in (ctx.params.get("vars") or {}).items()},
    )  # fmt: skip
    try:
        return string.Formatter().vformat(template, (), values)
    except KeyError as exc:
        raise ValueError(f"params.prompt: unknown placeholder {{{exc.args[0]}}}") from None
    except (ValueError, IndexError) as exc:
        raise ValueError(f"params.prompt: {exc}") from None


class LLMExecutor:
    name = "llm"

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    @property
    def readyz_url(self) -> str:
        root = self.base_url.removesuffix("/v1")
        return f"{root}/readyz"

    def _headers(self, tags: Mapping[str, str] | None = None) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        if tags:
            h["x-architect-tags"] = ",".join(f"{k}={v}" for k, v in tags.items())
        return h

    async def health(self) -> str | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
                s.get(self.readyz_url, headers=self._headers()) as r,
            ):
                if r.status == 200:
                    return None
                return f"gateway {self.readyz_url} answered {r.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"gateway {self.readyz_url} unreachable: {exc.__class__.__name__}: {exc}"

    async def run(self, ctx: TaskContext) -> ExecResult:
        p = ctx.params
        try:
            prompt = render_prompt(str(p.get("prompt", "")), ctx)
        except ValueError as exc:
            return ExecResult(False, None, str(exc))
        messages = ([{"role": "system", "content": p["system"]}] if p.get("system") else []) + [
            {"role": "user", "content": prompt}
        ]
        body: dict[str, Any] = {"model": p.get("model", "default"), "messages": messages}
        for k in ("max_tokens", "temperature"):
            if k in p:
                body[k] = p[k]
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=float(p.get("timeout", self.timeout_s)))
                ) as s,
                s.post(
                    f"{self.base_url}/chat/completions", json=body, headers=self._headers(ctx.tags())
                ) as r,
            ):
                data = await r.json(content_type=None)
                if r.status != 200:
                    msg = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
                    return ExecResult(
                        False, {"status": r.status}, f"gateway answered {r.status}: {msg or ''}".strip()
                    )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return ExecResult(False, None, f"gateway call failed: {exc.__class__.__name__}: {exc}")
        try:
            content = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return ExecResult(
                False, {"response": str(data)[:500]}, "gateway response has no choices[0].message"
            )
        return ExecResult(
            True, {"model": data.get("model"), "output": tail(content, 20_000), "usage": data.get("usage")}
        )
