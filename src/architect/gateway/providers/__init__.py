"""Provider adapters (pure translation) and transports (I/O behind one method).

`ADAPTERS` maps a provider kind to its adapter class; the simulated kind uses the OpenAI adapter
over an in-process transport."""

from __future__ import annotations

from typing import Any

from architect.gateway.providers.base import Adapter, ChatResult, StreamTranslator, Usage
from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.openai import OpenAIAdapter
from architect.gateway.providers.transport import (
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    Transport,
)

__all__ = [
    "Adapter",
    "ChatResult",
    "HTTP1Transport",
    "HTTPRequest",
    "HTTPResponse",
    "MockTransport",
    "StreamTranslator",
    "Transport",
    "Usage",
    "adapter_for",
]


def adapter_for(kind: str) -> Adapter:
    if kind in ("openai", "simulated"):
        return OpenAIAdapter()
    if kind == "anthropic":
        from architect.gateway.providers.anthropic import AnthropicAdapter

        adapter: Any = AnthropicAdapter()
        return adapter  # type: ignore[no-any-return]
    raise ValueError(f"unknown provider kind {kind!r}")
