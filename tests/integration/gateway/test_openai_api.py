"""The OpenAI-compatible API through the official `openai` SDK against a real stub upstream."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from tests.helpers import LiveServer, make_config, stub_config, wait_until
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "Say hello."}]


_CLIENTS: list[openai.OpenAI] = []


def _client(server: LiveServer, key: str = "anything") -> openai.OpenAI:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=20)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def test_plain_and_streaming_completions_are_recorded(stub: StubServer) -> None:
    with LiveServer(make_config({**stub_config(stub.url), "baseline": "m"})) as srv:
        c = _client(srv)
        raw = c.chat.completions.with_raw_response.create(
            model="m", messages=MSG, max_tokens=16, extra_headers={"x-request-id": "req-plain-1"}
        )
        r = raw.parse()
        assert r.choices[0].message.content == stub.content
        assert raw.headers["x-request-id"] == "req-plain-1"
        assert raw.headers["x-architect-deployment"] == "m/stub/stub-model"
        assert raw.headers["x-architect-attempts"] == "1"
        chunks = list(c.chat.completions.create(model="m", messages=MSG, stream=True))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == stub.content
        assert all(ch.usage is None for ch in chunks)  # not asked for: not passed on
        calls = {row["request_id"]: row for row in srv.calls()}
    plain = calls["req-plain-1"]
    assert plain["status"] == "ok" and plain["model_group"] == "m" and plain["provider"] == "stub"
    assert plain["prompt_tokens"] > 0 and plain["completion_tokens"] == 7
    assert plain["cost_usd"] == pytest.approx((plain["prompt_tokens"] * 1.0 + 7 * 2.0) / 1e6)
    assert plain["baseline_cost_usd"] == pytest.approx(plain["cost_usd"])
    streamed = next(row for rid, row in calls.items() if rid != "req-plain-1")
    assert streamed["stream"] and streamed["ttft_ms"] is not None and not streamed["truncated"]
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (9, 7)  # from the upstream's usage
    # the upstream was asked for usage even though the client was not
    assert stub.requests[1]["body"]["stream_options"] == {"include_usage": True}


def test_usage_chunk_reaches_the_client_only_when_asked(stub: StubServer) -> None:
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        chunks = list(
            _client(srv).chat.completions.create(
                model="m", messages=MSG, stream=True, stream_options={"include_usage": True}
            )
        )
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 16


def test_tools_response_format_images_and_unknown_params_pass_through(stub: StubServer) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    image_msg = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            ],
        }
    ]
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        _client(srv).chat.completions.create(
            model="m",
            messages=image_msg,
            tools=tools,
            response_format={"type": "json_object"},  # type: ignore[arg-type]
            extra_body={"top_k": 5, "metadata": {"project": "shop", "feature": "checkout"}},
            extra_headers={"x-architect-tags": "task=T004"},
        )
        row = srv.calls()[0]
    sent = stub.requests[0]["body"]
    assert sent["tools"] == tools and sent["response_format"] == {"type": "json_object"}
    assert sent["top_k"] == 5 and sent["messages"] == image_msg
    assert sent["model"] == "stub-model"
    assert "metadata" not in sent  # removed before the request goes upstream
    assert (row["project"], row["feature"], row["task"]) == ("shop", "checkout", "T004")
    assert orjson.loads(row["tags"]) == {"task": "T004", "project": "shop", "feature": "checkout"}
    assert stub.requests[0]["headers"]["authorization"] == "Bearer sk-upstream-secret"


def test_upstream_requests_name_architect_and_never_carry_an_upstream_cookie(stub: StubServer) -> None:
    # One pooled client serves every tenant: a cookie one answer sets must not ride on the next call.
    stub.set_cookie = "session=tenant-a-secret; Path=/"
    by_name = stub.url.replace("127.0.0.1", "localhost")  # cookie jars ignore cookies of IP hosts
    with LiveServer(make_config(stub_config(by_name))) as srv:
        c = _client(srv)
        for _ in range(2):
            c.chat.completions.create(model="m", messages=MSG)
    assert len(stub.requests) == 2
    for sent in stub.requests:
        assert sent["headers"]["user-agent"].startswith("architect/")
        assert "cookie" not in sent["headers"]


def test_embeddings_and_models(stub: StubServer) -> None:
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        c = _client(srv)
        e = c.embeddings.create(model="m", input=["a", "b"])
        assert len(e.data) == 2
        assert [m.id for m in c.models.list()] == ["m"]
        one = c.models.retrieve("m")
        assert (one.id, one.object, one.owned_by) == ("m", "model", "architect")
        assert one.created == c.models.list().data[0].created
        with pytest.raises(openai.NotFoundError) as missing:
            c.models.retrieve("ghost")
        err = missing.value.response.json()["error"]
        assert (err["code"], err["param"], err["type"]) == (
            "model_not_found",
            "model",
            "invalid_request_error",
        )
        assert "'ghost'" in err["message"]
        assert httpx.post(srv.url + "/v1/models/m", content=b"{}").status_code == 405
        row = srv.calls()[0]
    assert row["endpoint"] == "embeddings" and row["prompt_tokens"] == 6


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "m"}', 400, "messages"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
            400,
            "max_tokens",
        ),
        (b'{"model": "ghost", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
    ],
)
def test_client_mistakes_get_4xx_in_openai_format(
    stub: StubServer, body: bytes, status: int, param: str | None
) -> None:
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        r = httpx.post(
            srv.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == param and err["message"] and "Traceback" not in r.text
    assert stub.requests == []  # nothing went upstream


def test_a_body_that_is_not_plain_utf8_json_is_refused_saying_so(stub: StubServer) -> None:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "caf\u00e9"}]})
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        url = srv.url + "/v1/chat/completions"
        latin1 = httpx.post(url, content=body.decode().encode("latin-1"))
        gzipped = httpx.post(url, content=gzip.compress(body), headers={"content-encoding": "gzip"})
        plain = httpx.post(url, content=body, headers={"content-encoding": "identity"})
    assert latin1.status_code == 400
    assert "UTF-8" in latin1.json()["error"]["message"] and "surrogates" not in latin1.text
    assert gzipped.status_code == 415
    err = gzipped.json()["error"]
    assert err["param"] == "content-encoding" and "gzip" in err["message"]
    assert plain.status_code == 200
    assert len(stub.requests) == 1  # only the plain body went upstream


def test_body_too_large_wrong_method_and_unknown_path(stub: StubServer) -> None:
    cfg = make_config({**stub_config(stub.url), "server": {"max_body_bytes": 2048}})
    with LiveServer(cfg) as srv:
        big = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]})
        r = httpx.post(srv.url + "/v1/chat/completions", content=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert httpx.get(srv.url + "/v1/chat/completions").status_code == 405
        assert httpx.post(srv.url + "/v1/nothing", content=b"{}").status_code == 404


def test_upstream_failure_is_502_saying_what_was_tried(stub: StubServer) -> None:
    stub.script.extend(["500", "500", "500"])
    with LiveServer(
        make_config(stub_config(stub.url, retry={"max_attempts": 3, "backoff_base_s": 0.01}))
    ) as srv:
        with pytest.raises(openai.APIStatusError) as exc:
            _client(srv).chat.completions.create(model="m", messages=MSG)
        row = srv.calls()[0]
        attempts = srv.store.ledger.attempts_for(row["request_id"])
    assert exc.value.status_code == 502
    assert "m/stub/stub-model (server_error)" in exc.value.message
    assert row["status"] == "error" and row["attempts"] == 3 and row["error_kind"] == "server_error"
    assert [a["status"] for a in attempts] == ["error"] * 3


def test_auth_required_when_admin_key_is_set(stub: StubServer) -> None:
    cfg = make_config(stub_config(stub.url), env={"ARCHITECT_ADMIN_KEY": "admin-secret-1"})
    with LiveServer(cfg) as srv:
        with pytest.raises(openai.AuthenticationError):
            _client(srv, "wrong").chat.completions.create(model="m", messages=MSG)
        assert httpx.post(srv.url + "/v1/chat/completions", json={}).status_code == 401
        ok = _client(srv, "admin-secret-1").chat.completions.create(model="m", messages=MSG)
        assert ok.choices[0].message.content
        assert httpx.get(srv.url + "/healthz").status_code == 200
        assert httpx.get(srv.url + "/readyz").status_code == 200
        assert httpx.get(srv.url + "/api/v1/calls").status_code == 401


def test_client_disconnect_cancels_the_upstream_call_and_is_recorded(stub: StubServer) -> None:
    stub.delay_s = 3.0
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + "/v1/chat/completions", json={"model": "m", "messages": MSG}, timeout=0.5)
        wait_until(lambda: stub.cancelled)
        rows = wait_until(srv.calls)  # recorded once the cancelled call is settled
    assert stub.cancelled == 1  # the upstream request was aborted, not left running
    assert rows[0]["status"] == "cancelled" and rows[0]["http_status"] == 499
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["tokens_estimated"]  # the partial usage: the prompt sent


def test_stream_disconnect_records_partial_usage(stub: StubServer) -> None:
    stub.content = " ".join(f"w{i}" for i in range(40))
    stub.chunks = 40
    stub.chunk_delay_s = 0.1
    with LiveServer(make_config(stub_config(stub.url))) as srv:
        with httpx.stream(
            "POST", srv.url + "/v1/chat/completions", json={"model": "m", "messages": MSG, "stream": True}
        ) as r:
            it = r.iter_lines()
            for _ in range(6):
                next(it)
        rows = wait_until(srv.calls)
    assert rows[0]["status"] == "cancelled" and rows[0]["stream"]
    assert 0 < int(rows[0]["completion_tokens"]) < 40  # type: ignore[call-overload]
