from __future__ import annotations

import orjson
import pytest

from architect.gateway.providers.openai import OpenAIAdapter, OpenAIStream

CONTENT = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_request_asks_for_usage_and_keeps_extra_fields() -> None:
    body = {
        "model": "public",
        "messages": [],
        "stream": True,
        "tools": [{"type": "function"}],
        "response_format": {"type": "json_object"},
        "vendor_extra": {"a": 1},
        "stream_options": {"foo": True},
    }
    path, payload, _ = OpenAIAdapter().chat_request(body, "upstream-model", stream=True)
    sent = orjson.loads(payload)
    assert path == "/chat/completions"
    assert sent["model"] == "upstream-model"
    assert sent["stream_options"] == {"foo": True, "include_usage": True}
    assert sent["tools"] == [{"type": "function"}] and sent["vendor_extra"] == {"a": 1}
    assert sent["response_format"] == {"type": "json_object"}


def test_usage_chunk_dropped_when_client_did_not_ask() -> None:
    s = OpenAIStream(include_usage=False)
    out = s.feed(CONTENT + USAGE + DONE)
    assert out == CONTENT + DONE
    assert s.usage is not None and s.usage.prompt_tokens == 3 and s.usage.cached_tokens == 2
    assert s.done


def test_usage_chunk_kept_when_asked() -> None:
    s = OpenAIStream(include_usage=True)
    assert s.feed(CONTENT + USAGE + DONE) == CONTENT + USAGE + DONE


def test_usage_on_a_content_chunk_is_stripped_not_dropped() -> None:
    ev = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n'
    out = OpenAIStream(include_usage=False).feed(ev)
    assert b'"usage"' not in out and b'"content":"x"' in out


def test_events_split_across_chunks_and_crlf() -> None:
    s = OpenAIStream(include_usage=False)
    whole = (CONTENT + DONE).replace(b"\n", b"\r\n")
    out = b"".join(s.feed(whole[i : i + 7]) for i in range(0, len(whole), 7))
    assert out == CONTENT + DONE
    assert s.completion_text() == "hi"


def test_missing_done_is_not_done_and_error_event_is_seen() -> None:
    s = OpenAIStream(include_usage=False)
    s.feed(CONTENT)
    assert not s.done
    s.feed(b'data: {"error":{"message":"boom","type":"server_error"}}\n\n')
    assert s.error is not None and "boom" in s.error.message


def test_error_mapping() -> None:
    a = OpenAIAdapter()
    e429 = a.error(429, {"retry-after": "3"}, b'{"error":{"message":"slow","code":"rate_limit"}}')
    assert e429.retryable and e429.retry_after == 3.0 and e429.status == 429
    e500 = a.error(500, {}, b"oops")
    assert e500.retryable and e500.status == 502 and "oops" in e500.message
    e400 = a.error(400, {}, b'{"error":{"message":"bad temperature","code":"invalid_value"}}')
    assert not e400.retryable and e400.status == 400 and e400.kind == "bad_request"
    ctx = a.error(400, {}, b'{"error":{"message":"too long","code":"context_length_exceeded"}}')
    assert ctx.kind == "context_window"
    auth = a.error(401, {}, b'{"error":{"message":"bad key"}}')
    assert not auth.retryable and auth.status == 502 and auth.kind == "upstream_auth"


def test_a_refusal_keeps_the_upstreams_param_and_code() -> None:
    body = b'{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}}'
    err = OpenAIAdapter().error(400, {}, body).body()["error"]
    assert (err["param"], err["code"], err["type"]) == ("messages", None, "invalid_request_error")
    coded = (
        b'{"error":{"message":"bad","type":"invalid_request_error","param":"n","code":"integer_above_max"}}'
    )
    assert OpenAIAdapter().error(400, {}, coded).body()["error"]["code"] == "integer_above_max"


def test_whole_plain_chunks_pass_unchanged_and_text_is_still_recovered() -> None:
    def ev(content: str) -> bytes:
        obj = {"choices": [{"index": 0, "delta": {"content": content}}], "usage": None}
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    tail = b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\ndata: [DONE]\n\n"
    s = OpenAIStream(include_usage=False)
    first = ev("Hel") + ev("lo")
    assert s.feed(first) == first  # nothing to rewrite: the same bytes go out
    half = ev(" there")
    assert s.feed(half[:10]) == b""  # a partial event waits for the rest
    assert s.feed(half[10:]) == half
    assert s.feed(tail) == b"data: [DONE]\n\n"  # the usage chunk the client did not ask for is dropped
    assert s.done and s.usage is not None and s.usage.completion_tokens == 2
    assert s.completion_text() == "Hello there"


def test_done_inside_content_is_not_the_end_and_comments_pass_through() -> None:
    s = OpenAIStream(include_usage=False)
    said = b'data: {"choices":[{"index":0,"delta":{"content":"print(\\"[DONE]\\")"}}]}\n\n'
    assert s.feed(b": keep-alive\n\n" + said) == b": keep-alive\n\n" + said
    assert not s.done
    assert s.feed(USAGE + DONE) == DONE
    assert s.done and s.usage is not None and s.completion_text() == 'print("[DONE]")'


def test_done_is_found_wherever_it_sits_and_however_it_is_spaced() -> None:
    said = b'data: {"choices":[{"index":0,"delta":{"content":"[DONE]"}}]}\n\n'
    for events, done in [
        (said + b"data:[DONE]\n\n", True),
        (b"data: [DONE]\n\n", True),
        (said + said, False),
        (said + b": [DONE] is a comment\n\n", False),
    ]:
        s = OpenAIStream(include_usage=False)
        assert s.feed(events) == events
        assert s.done is done, events


def test_only_events_with_a_usage_or_error_key_are_parsed_and_the_rest_pass_byte_for_byte() -> None:
    def ev(content: str) -> bytes:
        return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": content}}]}) + b"\n\n"

    tricky = ev('say "usage": {"x": 1} and "error": "no"')  # keys only as text: quotes are escaped
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    s = OpenAIStream(include_usage=False)
    out = s.feed(tricky + ev("a") + usage + ev("b") + DONE)
    assert out == tricky + ev("a") + ev("b") + DONE  # the usage event alone is removed
    assert s.usage is not None and s.usage.prompt_tokens == 4 and s.error is None
    s = OpenAIStream(include_usage=True)
    err = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    assert s.feed(ev("a") + err) == ev("a") + err
    assert s.error is not None and "overloaded" in s.error.message


BAD = b'data: {"choices":[{"index":0,"delta":{"content":nope}}]}\n\n'  # balanced braces, not JSON


def _error_of(out: bytes) -> dict[str, object]:
    last = [e for e in out.split(b"\n\n") if e][-1]
    error = orjson.loads(last.removeprefix(b"data: "))["error"]
    assert isinstance(error, dict)
    return error


def test_an_event_that_is_not_json_breaks_the_stream_read_by_read() -> None:
    s = OpenAIStream(include_usage=False)
    assert s.feed(CONTENT) == CONTENT
    out = s.feed(BAD)
    assert _error_of(out)["code"] == "invalid_stream_event" and b"nope" not in out
    assert s.broken and s.error is not None and s.error.kind == "invalid_stream_event"
    assert s.feed(CONTENT + USAGE + DONE) == b""  # nothing after the broken event reaches the client
    assert not s.done and s.usage is None


@pytest.mark.parametrize(
    "bad",
    [
        BAD,
        b"data: {not json}\n\n",
        b'data: {"choices":[{"index":0,"delta":{"content":"cut\n\n',  # cut short, then a blank line
        b"data: <html>502 Bad Gateway</html>\n\n",
        b"data: [1, 2]\n\n",  # JSON, but not an object
        b'data: "text"\n\n',
        b'data: {"a": 1}{"b": 2}\n\n',
    ],
)
@pytest.mark.parametrize("size", [1, 7, 100_000])  # arbitrary network chunking
def test_a_bad_event_among_good_ones_in_one_read_keeps_what_came_before(bad: bytes, size: int) -> None:
    whole = CONTENT + CONTENT + bad + CONTENT + USAGE + DONE
    s = OpenAIStream(include_usage=True)
    out = b"".join(s.feed(whole[i : i + size]) for i in range(0, len(whole), size))
    assert out.startswith(CONTENT + CONTENT) and out.count(b"data: ") == 3
    assert _error_of(out)["code"] == "invalid_stream_event"
    assert s.broken and not s.done and s.usage is None and b"[DONE]" not in out


def test_a_bad_event_among_comments_and_event_lines_is_found_too() -> None:
    s = OpenAIStream(include_usage=False)
    named = b"event: chunk\n" + CONTENT
    out = s.feed(b": keep-alive\n\n" + named + b"event: chunk\ndata: {oops\n\n" + CONTENT + DONE)
    assert out.startswith(b": keep-alive\n\n" + named) and _error_of(out)["code"] == "invalid_stream_event"
    assert s.broken and not s.done


def test_two_bad_events_that_join_into_valid_json_are_still_refused() -> None:
    # One decode checks a read's events as a JSON array; halves that complete each other are caught.
    s = OpenAIStream(include_usage=False)
    out = s.feed(b'data: {"choices": [1\n\ndata: 2]}\n\n' + DONE)
    assert out.count(b"data: ") == 1 and s.broken and not s.done


def test_events_after_done_are_not_checked_and_multiline_data_is_one_event() -> None:
    s = OpenAIStream(include_usage=False)
    multiline = b'data: {"choices":\ndata: [{"index":0,"delta":{"content":"hi"}}]}\n\n'
    assert s.feed(multiline + DONE) == multiline + DONE
    assert s.done and not s.broken
    assert s.feed(b"data: trailing junk\n\n") == b"data: trailing junk\n\n"  # after [DONE]: not read
