"""`llm` executor: a prompt template filled from the task, sent through the gateway's
OpenAI-compatible endpoint with the task's tags (`x-architect-tags: project=..,feature=..,task=..`)
so that its cost lands on the task in the ledger. Health: the gateway's `/readyz`. The client is the
gateway's own `HTTP1Transport` (TLS with the system's trusted CAs), one per call or health check.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import orjson

from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.transport import HTTPRequest, TransportError
from architect.orchestrator.executors.base import ExecResult, TaskContext, tail

__all__ = ["DEFAULT_MODEL", "LLMExecutor", "render_prompt"]

DEFAULT_MODEL = "default"  # asked for when a task sets no params.model


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
            status, _ = await _exchange(HTTPRequest("GET", self.readyz_url, self._headers(), timeout_s=5.0))
        except TransportError as exc:
            return f"gateway {self.readyz_url} unreachable: {exc.__class__.__name__}: {exc}"
        return None if status == 200 else f"gateway {self.readyz_url} answered {status}"

    async def run(self, ctx: TaskContext) -> ExecResult:
        p = ctx.params
        try:
            prompt = render_prompt(str(p.get("prompt", "")), ctx)
        except ValueError as exc:
            return ExecResult(False, None, str(exc))
        messages = ([{"role": "system", "content": p["system"]}] if p.get("system") else []) + [
            {"role": "user", "content": prompt}
        ]
        body: dict[str, Any] = {"model": p.get("model", DEFAULT_MODEL), "messages": messages}
        for k in ("max_tokens", "temperature"):
            if k in p:
                body[k] = p[k]
        request = HTTPRequest(
            "POST",
            f"{self.base_url}/chat/completions",
            self._headers(ctx.tags()),
            orjson.dumps(body),
            timeout_s=float(p.get("timeout", self.timeout_s)),
        )
        try:
            status, raw = await _exchange(request)
            data = orjson.loads(raw)
        except (TransportError, ValueError) as exc:
            return ExecResult(False, None, f"gateway call failed: {exc.__class__.__name__}: {exc}")
        if status != 200:
            msg = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            reason = f"gateway answered {status}: {msg or ''}".strip()
            if "model" not in p:
                reason += (
                    f" (the task sets no params.model, so model {DEFAULT_MODEL!r} was asked for; set "
                    "params.model in the plan to a model the gateway serves)"
                )
            return ExecResult(False, {"status": status}, reason)
        try:
            content = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return ExecResult(
                False, {"response": str(data)[:500]}, "gateway response has no choices[0].message"
            )
        return ExecResult(
            True, {"model": data.get("model"), "output": tail(content, 20_000), "usage": data.get("usage")}
        )


async def _exchange(request: HTTPRequest) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body). `request.timeout_s` bounds it whole."""
    client = HTTP1Transport(max_connections=1)
    try:
        resp = await client.send(request)
        return resp.status, await resp.read()
    finally:
        await client.aclose()
