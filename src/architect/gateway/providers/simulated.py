"""The `simulated` provider kind: an in-process transport that behaves like an OpenAI-compatible
server with configurable latency (log-normal time to first token, tokens per second), failures
(429 with Retry-After, 500, timeout, connection reset, truncated stream), token counts and prices. It
answers `n` choices, each cut at `max_tokens` (`finish_reason: "length"`, streamed or not).
Deterministic for a given seed. Everything it returns is labelled simulated
(`system_fingerprint: architect-simulated`, header `x-architect-simulated: true`).

It is spoken to through the OpenAI adapter, so the gateway exercises the same code path as for a
real server."""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from architect.config import SimulationConfig
from architect.gateway.estimate import chat_prompt_size
from architect.gateway.providers.transport import (
    ConnectError,
    HTTPRequest,
    HTTPResponse,
    ReadError,
    TransportTimeout,
)

__all__ = ["SimulatedTransport"]

_WORDS = [
    "the",
    "plan",
    "is",
    "sound",
    ";",
    "first",
    "refactor",
    "the",
    "module",
    ",",
    "then",
    "add",
    "tests",
    "for",
    "each",
    "edge",
    "case",
    "and",
    "measure",
    "again",
    "before",
    "merging",
    ".",
    "keep",
    "the",
    "interface",
    "narrow",
    "and",
    "the",
    "errors",
    "explicit",
    ".",
]
_FINGERPRINT = "architect-simulated"


class SimulatedTransport:
    """One per simulated provider; `models` maps a deployment's model name to its behaviour."""

    def __init__(self, models: dict[str, SimulationConfig], seed: int | None = None) -> None:
        self.models = models
        self._rngs: dict[str, random.Random] = {}
        self._seed = seed
        self.calls = 0

    def _rng(self, model: str, cfg: SimulationConfig) -> random.Random:
        rng = self._rngs.get(model)
        if rng is None:
            seed = cfg.seed if cfg.seed is not None else self._seed
            rng = self._rngs[model] = random.Random(f"{seed}:{model}" if seed is not None else None)
        return rng

    async def aclose(self) -> None:
        return None

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.calls += 1
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        model = str(body.get("model", ""))
        cfg = self.models.get(model)
        if cfg is None:
            return _json(
                404, {"error": {"message": f"model {model!r} not found", "type": "invalid_request_error"}}
            )
        rng = self._rng(model, cfg)
        if request.url.endswith("/embeddings"):
            return await self._embeddings(body, cfg, rng)
        return await self._chat(request, body, cfg, rng)

    async def _failure(
        self, request: HTTPRequest, cfg: SimulationConfig, rng: random.Random
    ) -> HTTPResponse | None:
        r = rng.random()
        kind: str | None = None
        for rate, name in (
            (cfg.fail_429, "429"),
            (cfg.fail_500, "500"),
            (cfg.fail_timeout, "timeout"),
            (cfg.fail_reset, "reset"),
        ):
            if r < rate:
                kind = name
                break
            r -= rate
        if kind is None:
            return None
        if kind == "429":
            return _json(
                429,
                {"error": {"message": "simulated rate limit", "type": "rate_limit_error"}},
                {"retry-after": f"{cfg.retry_after_s:g}"},
            )
        if kind == "500":
            await asyncio.sleep(self._ttft(cfg, rng) / 4)
            return _json(500, {"error": {"message": "simulated server error", "type": "server_error"}})
        if kind == "timeout":
            await asyncio.sleep(request.timeout_s)
            raise TransportTimeout("simulated timeout")
        await asyncio.sleep(self._ttft(cfg, rng) / 4)
        raise ConnectError("simulated connection reset")

    @staticmethod
    def _ttft(cfg: SimulationConfig, rng: random.Random) -> float:
        if cfg.ttft_ms <= 0:
            return 0.0
        return rng.lognormvariate(math.log(cfg.ttft_ms), cfg.ttft_sigma) / 1000.0

    async def _chat(
        self, request: HTTPRequest, body: dict[str, Any], cfg: SimulationConfig, rng: random.Random
    ) -> HTTPResponse:
        failed = await self._failure(request, cfg, rng)
        if failed is not None:
            return failed
        raw_messages = body.get("messages")
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        prompt_tokens = chat_prompt_size(messages, body).estimate  # a simulation: no tokenizer needed
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or cfg.completion_tokens
        n = max(1, min(int(max_tokens), cfg.completion_tokens))  # tokens of each choice
        finish = "length" if n < cfg.completion_tokens else "stop"
        count = body.get("n")
        choices = count if isinstance(count, int) and not isinstance(count, bool) and count > 1 else 1
        answers = [[_WORDS[(i + prompt_tokens + c) % len(_WORDS)] for i in range(n)] for c in range(choices)]
        ttft = self._ttft(cfg, rng)
        truncate = body.get("stream") and rng.random() < cfg.fail_truncate
        rid = "chatcmpl-sim-" + hashlib.sha1(f"{time.time_ns()}{rng.random()}".encode()).hexdigest()[:16]
        completion_tokens = n * choices
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": rid,
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": _FINGERPRINT,
        }
        headers = {"content-type": "application/json", "x-architect-simulated": "true"}
        if not body.get("stream"):
            delay = ttft + n / cfg.tokens_per_s
            if delay > request.timeout_s:  # a real transport would give up here too
                await asyncio.sleep(request.timeout_s)
                raise TransportTimeout("simulated call outlasted timeout_s")
            await asyncio.sleep(delay)
            obj = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": c,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": finish,
                    }
                    for c, words in enumerate(answers)
                ],
                "usage": usage,
            }
            return _json(200, obj, headers)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            await asyncio.sleep(ttft)
            chunk = {**base, "object": "chat.completion.chunk"}

            def event(c: int, delta: dict[str, str], reason: str | None = None) -> bytes:
                return _sse({**chunk, "choices": [{"index": c, "delta": delta, "finish_reason": reason}]})

            for c in range(choices):
                yield event(c, {"role": "assistant", "content": ""})
            step = max(1, n // 8)
            for i in range(0, n, step):
                if truncate and i >= n // 2:
                    raise ReadError("simulated truncated stream")
                await asyncio.sleep(step / cfg.tokens_per_s)
                for c, words in enumerate(answers):
                    yield event(c, {"content": (" " if i else "") + " ".join(words[i : i + step])})
            for c in range(choices):
                yield event(c, {}, finish)
            if include_usage:
                yield _sse({**chunk, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return HTTPResponse(
            200, {"content-type": "text/event-stream", "x-architect-simulated": "true"}, events()
        )

    async def _embeddings(
        self, body: dict[str, Any], cfg: SimulationConfig, rng: random.Random
    ) -> HTTPResponse:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        await asyncio.sleep(self._ttft(cfg, rng) / 4)
        data = []
        tokens = 0
        for i, item in enumerate(items):
            text = item if isinstance(item, str) else str(item)
            tokens += max(1, len(text) // 4)
            digest = hashlib.sha256(text.encode()).digest()
            local = random.Random(digest)
            vec = [local.gauss(0, 1) for _ in range(cfg.embedding_dim)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        obj = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _json(200, obj, {"x-architect-simulated": "true"})


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _json(status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> HTTPResponse:
    body = orjson.dumps(obj)

    async def one() -> AsyncIterator[bytes]:
        yield body

    return HTTPResponse(status, {"content-type": "application/json", **(headers or {})}, one())
