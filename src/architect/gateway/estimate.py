"""A prompt's size in tokens without a tokenizer: an upper bound and two estimates, from its UTF-8
byte length.

Every token of tiktoken's byte-level BPE encodings (cl100k_base, o200k_base; special tokens are
encoded as ordinary text) stands for at least one byte of the text, so a text's UTF-8 byte count is
never below its token count. The chat structure around the text is counted exactly as tiktoken's
accounting does (`tokens.count_messages`: 3 tokens to prime the reply, 3 per message, 1 for a role).

Which figure each use takes (measured on real prompts, `bench/token_estimate.py`, figures in
bench/RESULTS.md):
- `bound`, for a budget's worst-case reservation: must never be below the truth, and is not.
- `estimate` (`TOKENS_PER_BYTE` = the median tokens/byte of the calibration prompts), for the
  tokens-per-minute charges of keys and deployments and the lowest-cost ranking: a charge that the
  upstream's reported usage corrects when the call ends, so it should be right on average.
- `low` (`TOKENS_PER_BYTE_LOW` = the 2nd percentile), for skipping deployments whose context window is
  too small: there an overestimate would wrongly skip a deployment (or refuse the call), while an
  underestimate only lets the upstream answer with its context-length error, which the executor handles
  like any other (the `context_window_fallbacks`).

Image parts are not counted (an upstream reports their tokens in its usage, which settles the call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TOKENS_PER_BYTE", "TOKENS_PER_BYTE_LOW", "PromptSize", "chat_prompt_size", "text_prompt_size"]

TOKENS_PER_BYTE = 0.23
TOKENS_PER_BYTE_LOW = 0.18
# What tiktoken's chat accounting adds around the text: 3 to prime the reply, 3 per message, 1 per role.
_REPLY_TOKENS = 3
_MESSAGE_TOKENS = 3
_TOOLS_FIELDS = ("tools", "functions")


@dataclass(frozen=True, slots=True)
class PromptSize:
    """`text_bytes`: UTF-8 bytes of the text an upstream tokenizes; `overhead`: the tokens of the chat
    structure around it, counted exactly."""

    text_bytes: int
    overhead: int = 0

    @property
    def bound(self) -> int:
        """Never fewer than the prompt's tokens."""
        return self.text_bytes + self.overhead

    @property
    def estimate(self) -> int:
        """The expected token count (about as often above the truth as below)."""
        return self.overhead + round(self.text_bytes * TOKENS_PER_BYTE)

    @property
    def low(self) -> int:
        """An estimate that is rarely above the truth."""
        return self.overhead + int(self.text_bytes * TOKENS_PER_BYTE_LOW)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _content_bytes(content: Any) -> int:
    if isinstance(content, str):
        return _utf8_len(content)
    n = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    n += _utf8_len(text)
    return n


def chat_prompt_size(messages: Iterable[Any], body: Mapping[str, Any] | None = None) -> PromptSize:
    """The size of a chat request's prompt: its messages' text (content, name, tool calls) and, from
    `body`, its tool definitions."""
    text = 0
    overhead = _REPLY_TOKENS
    for msg in messages:
        if not isinstance(msg, Mapping):
            continue
        overhead += _MESSAGE_TOKENS
        text += _content_bytes(msg.get("content"))
        if isinstance(msg.get("role"), str):
            overhead += 1
        name = msg.get("name")
        if isinstance(name, str):
            text += _utf8_len(name)
        calls = msg.get("tool_calls")
        if calls:
            text += _utf8_len(str(calls))  # the form `tokens.count_messages` counts
    if body is not None:
        for field in _TOOLS_FIELDS:
            tools = body.get(field)
            if tools:
                text += _utf8_len(str(tools))
    return PromptSize(text, overhead)


def text_prompt_size(raw: bytes) -> PromptSize:
    """The size of a request whose prompt is its whole body (embeddings): the body's bytes hold every
    input text (and a token-id input takes at least two bytes per token)."""
    return PromptSize(len(raw))
