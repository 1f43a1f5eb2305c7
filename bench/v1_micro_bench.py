"""Microbenchmarks of the /v1 hot path's pure functions (no I/O): request validation and the stream
translators.

    python bench/v1_micro_bench.py [--repeat 7]

1. `validate_chat` on a typical body: 3 messages (system, user, assistant) with two function tools and
   a few sampling fields; and on a tool round trip (5 messages: an assistant `tool_calls` and a `tool`
   answer). `validate_embeddings` on a batch of 16 strings.
2. `OpenAIStream.feed` on the benchmark upstream's stream (bench/gateway/upstream.py: 8 content chunks,
   a finish chunk, a usage chunk and `[DONE]`, ~1.7 KB), fed whole and fed one event per read.
3. `AnthropicStream.feed` on a comparable Anthropic stream (message_start, 8 text deltas, message_delta,
   message_stop, with `event:` lines), fed whole.
4. The inbound APIs' stream translators on the stream of 2., fed whole, each around an `OpenAIStream`
   (usage asked for): `/v1/messages` (`messages_stream.FromChatStream`) and `/v1/responses`
   (`responses_stream.FromChatStream`, text only), against the stream passed through as chat
   completions pass it (`OpenAIStream` alone, usage kept).

Each figure is the best of `--repeat` timeit runs of CPU time (so other processes on a shared machine
skew it less), in microseconds per call (per stream for feed).
"""

from __future__ import annotations

import argparse
import copy
import time
import timeit
from collections.abc import Callable

import orjson

from architect.gateway.apis import messages_stream, responses_stream
from architect.gateway.apis.responses_translate import Turn
from architect.gateway.call import validate_chat, validate_embeddings
from architect.gateway.providers.anthropic import AnthropicStream
from architect.gateway.providers.openai import OpenAIStream

_WORDS = ["Hello", " from", " the", " benchmark", " upstream", ",", " friend", "."]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Full-text search over the project's documents.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    },
]

CHAT_3 = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "Let me check that for you."},
    ],
    "tools": TOOLS,
    "tool_choice": "auto",
    "temperature": 0.2,
    "max_tokens": 256,
    "stream": False,
}

CHAT_TOOL_ROUND = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": TOOLS,
    "temperature": 0.2,
    "max_completion_tokens": 256,
    "stream": True,
    "stream_options": {"include_usage": True},
}

EMBED = {"model": "e", "input": [f"document number {i}" for i in range(16)], "encoding_format": "float"}


def openai_stream() -> list[bytes]:
    """The benchmark upstream's stream, one bytes object per event (usage asked for)."""
    base = {"id": "chatcmpl-bench", "created": 1_700_000_000, "model": "mock-model"}
    usage = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    parts = []
    for i, w in enumerate(_WORDS):
        delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        parts.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    parts.append(
        b"data: " + orjson.dumps({**base, "object": "chat.completion.chunk", "choices": [finish]}) + b"\n\n"
    )
    parts.append(
        b"data: "
        + orjson.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        + b"\n\n"
    )
    parts.append(b"data: [DONE]\n\n")
    return parts


def anthropic_stream() -> bytes:
    events: list[tuple[str, dict[str, object]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-bench",
                    "usage": {"input_tokens": 12, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for w in _WORDS:
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 8}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(
        f"event: {name}\n".encode() + b"data: " + orjson.dumps(obj) + b"\n\n" for name, obj in events
    )


def best_us(fn: Callable[[], object], repeat: int) -> float:
    timer = timeit.Timer(fn, timer=time.process_time)  # CPU time: other processes' load does not count
    number, _ = timer.autorange()
    number = max(number, 2000)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    r = args.repeat

    body3, body5 = copy.deepcopy(CHAT_3), copy.deepcopy(CHAT_TOOL_ROUND)
    print(f"validate_chat, 3 messages + 2 tools      {best_us(lambda: validate_chat(body3), r):7.2f} us")
    print(f"validate_chat, 5 messages, tool round     {best_us(lambda: validate_chat(body5), r):7.2f} us")
    print(
        f"validate_embeddings, 16 strings          {best_us(lambda: validate_embeddings(EMBED), r):7.2f} us"
    )

    parts = openai_stream()
    whole = b"".join(parts)

    def feed_whole() -> None:
        OpenAIStream(include_usage=False).feed(whole)

    def feed_events() -> None:
        s = OpenAIStream(include_usage=False)
        for p in parts:
            s.feed(p)

    print(f"OpenAIStream.feed, {len(whole)} B stream whole   {best_us(feed_whole, r):7.2f} us")
    print(f"OpenAIStream.feed, {len(parts)} reads of 1 event  {best_us(feed_events, r):7.2f} us")

    astream = anthropic_stream()

    def afeed() -> None:
        AnthropicStream(include_usage=False, model="m").feed(astream)

    print(f"AnthropicStream.feed, {len(astream)} B stream     {best_us(afeed, r):7.2f} us")

    def chat_passthrough() -> None:
        OpenAIStream(include_usage=True).feed(whole)

    def messages_feed() -> None:
        messages_stream.FromChatStream(OpenAIStream(True), "msg_bench", "mock-model", 12).feed(whole)

    body = {"model": "mock-model", "input": "Write one sentence about benchmarks.", "stream": True}

    def responses_feed() -> None:
        turn = Turn("resp_0123456789ab0000000001", body)
        responses_stream.FromChatStream(OpenAIStream(True), turn, body, "mock-model", 1_700_000_000).feed(
            whole
        )

    print(f"chat (OpenAIStream, usage kept), whole     {best_us(chat_passthrough, r):7.2f} us")
    print(f"/v1/messages FromChatStream, whole         {best_us(messages_feed, r):7.2f} us")
    print(f"/v1/responses FromChatStream, whole        {best_us(responses_feed, r):7.2f} us")


if __name__ == "__main__":
    main()
