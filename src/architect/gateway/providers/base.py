"""The adapter protocol: pure translation between the OpenAI wire format Architect speaks and a
provider's, with no I/O. Also the shared value types and the error mapping helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from architect.errors import ProviderError, UpstreamError, UpstreamRateLimited, UpstreamRefused

__all__ = [
    "UNSUPPORTED",
    "Adapter",
    "ChatResult",
    "StreamTranslator",
    "Usage",
    "parse_retry_after",
    "sse_error_event",
    "upstream_error",
]


# The code of a refusal of a request a deployment cannot take (a field or kind it has no equivalent for):
# the executor tries the group's other deployments and its fallbacks, and the client gets the 400 only
# when none can take the request.
UNSUPPORTED = "unsupported_for_deployment"


@dataclass(slots=True)
class Usage:
    """A call's token counts, the same on every inbound API and in the ledger: `prompt_tokens` is
    every input token, of which `cached_tokens` were read from and `cache_write_tokens` written to a
    provider's prompt cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(slots=True)
class ChatResult:
    """A complete (non-stream) answer: the OpenAI-format body to return, and its usage if known;
    `parsed`, when the adapter decoded the body as it is, is that object (read only), so that an
    inbound API translating the answer does not decode it again."""

    body: bytes
    usage: Usage | None
    finish_reason: str | None = None
    parsed: dict[str, Any] | None = None


class StreamTranslator(Protocol):
    """Turns a provider's streamed bytes into OpenAI SSE bytes, tracking usage and completion."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def done(self) -> bool:
        """Saw the provider's end-of-stream marker."""

    @property
    def error(self) -> ProviderError | None:
        """The provider reported an error inside the stream (or sent an event that is not JSON)."""

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send to the client for this chunk (may be empty)."""

    def completion_text(self) -> str:
        """The generated text so far (for counting tokens when the provider sent no usage)."""


class Adapter(Protocol):
    kind: str

    def chat_request(
        self, body: dict[str, Any], model: str, stream: bool
    ) -> tuple[str, bytes, dict[str, str]]:
        """(path, body bytes, extra headers) for a chat completion on `model`."""

    def chat_response(self, data: bytes) -> ChatResult: ...

    def stream_translator(self, include_usage: bool, model: str) -> StreamTranslator: ...

    def embeddings_request(self, body: dict[str, Any], model: str) -> tuple[str, bytes, dict[str, str]]: ...

    def embeddings_response(self, data: bytes) -> ChatResult: ...

    def error(self, status: int, headers: dict[str, str], data: bytes) -> ProviderError:
        """Map a non-2xx provider response to a ProviderError (kind, retryable, status)."""

    def auth_headers(self, api_key: str | None) -> dict[str, str]: ...


def parse_retry_after(headers: dict[str, str]) -> float | None:
    for name in ("retry-after-ms", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        return value / 1000.0 if name == "retry-after-ms" else value
    return None


def upstream_error(
    status: int, headers: dict[str, str], message: str, code: str | None = None, param: str | None = None
) -> ProviderError:
    """The common status → (kind, retryable, client status) mapping; a refusal of the request keeps the
    upstream's `code` and `param`."""
    retry_after = parse_retry_after(headers)
    if status == 429:
        return UpstreamRateLimited(
            message, kind="rate_limited", retryable=True, upstream_status=status, retry_after=retry_after
        )
    if status in (408, 409) or status >= 500:
        kind = "timeout" if status in (408, 504) else "server_error"
        return UpstreamError(
            message, kind=kind, retryable=True, upstream_status=status, retry_after=retry_after
        )
    if status in (401, 403):
        err = UpstreamError(
            f"the provider rejected Architect's credentials: {message}",
            kind="upstream_auth",
            retryable=False,
            upstream_status=status,
        )
        return err
    kind = (
        "context_window"
        if code == "context_length_exceeded" or "context length" in message.lower()
        else (
            "content_policy"
            if code == "content_filter" or "content policy" in message.lower()
            else "bad_request"
        )
    )
    return UpstreamRefused(
        message,
        kind=kind,
        upstream_status=status,
        code=code,
        param=param,
        status=404 if status == 404 else None,
    )


def error_message(data: bytes) -> tuple[str, str | None]:
    """Best-effort (message, code) from an error body in OpenAI's or Anthropic's format."""
    message, code, _ = error_details(data)
    return message, code


def error_details(data: bytes) -> tuple[str, str | None, str | None]:
    """Best-effort (message, code, param) from an error body in OpenAI's format (its `code` as given,
    null included) or Anthropic's (no `code`: its error `type`)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data[:300].decode("utf-8", "replace").strip()
        return (text or "no error body"), None, None
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        code = err.get("code") if "code" in err else err.get("type")
        param = err.get("param")
        return (
            str(err.get("message") or err),
            str(code) if code else None,
            param[:200] if isinstance(param, str) and param else None,
        )
    if isinstance(err, str):
        return err, None, None
    return str(obj)[:300], None, None


def sse_error_event(err: ProviderError | str) -> bytes:
    message = err if isinstance(err, str) else err.message
    kind = "stream_error" if isinstance(err, str) else err.kind
    payload = {"error": {"message": message, "type": "upstream_error", "param": None, "code": kind}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"
