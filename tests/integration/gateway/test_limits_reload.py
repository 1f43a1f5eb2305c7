"""Per-deployment limits end to end (429 with Retry-After, or a bounded wait) and config reload keeping
breaker/limit state without dropping in-flight calls. Real app, real stub upstream, openai SDK."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from architect.gateway.limits import BUCKET_S
from tests.helpers import LiveServer, make_config, wait_until
from tests.stubs.openai_stub import StubServer

MSG = [{"role": "user", "content": "Say hello."}]


def _cfg(stub: StubServer, limits: dict[str, Any], **group: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "p", "kind": "openai", "base_url": stub.url}],
        "models": [
            {
                "name": "m",
                **group,
                "deployments": [{"provider": "p", "model": "stub-model", "name": "d", "limits": limits}],
            }
        ],
    }


def test_a_group_over_its_rpm_gets_429_with_retry_after(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    with LiveServer(make_config(_cfg(stub, {"rpm": 2}))) as srv:
        c = client_for(srv)
        c.chat.completions.create(model="m", messages=MSG)
        c.chat.completions.create(model="m", messages=MSG)
        with pytest.raises(openai.RateLimitError) as ei:
            c.chat.completions.create(model="m", messages=MSG)
        rows = srv.calls()
    retry_after = int(ei.value.response.headers["retry-after"])
    assert 55 <= retry_after <= 60 + BUCKET_S  # when the first request's bucket leaves the 60 s window
    assert "limit" in ei.value.message
    assert stub.counts["/v1/chat/completions"] == 2
    assert sorted(r["http_status"] for r in rows) == [200, 200, 429]


def test_over_a_limit_a_call_waits_up_to_limit_wait_s(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.script.append("slow:0.6")
    with LiveServer(make_config(_cfg(stub, {"max_concurrency": 1}, limit_wait_s=3))) as srv:
        c = client_for(srv)
        first = threading.Thread(target=lambda: c.chat.completions.create(model="m", messages=MSG))
        first.start()
        wait_until(lambda: stub.in_flight, interval=0.005)
        t0 = time.perf_counter()
        r = c.chat.completions.create(model="m", messages=MSG)  # waits for the slot, then succeeds
        waited = time.perf_counter() - t0
        first.join()
    assert r.choices[0].message.content == stub.content
    # it waited for the slot (never two upstream calls at once) and got it well before limit_wait_s
    assert waited < 2.5 and stub.max_in_flight == 1


def test_without_a_wait_a_call_over_concurrency_gets_429_at_once(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.script.append("slow:0.6")
    with LiveServer(make_config(_cfg(stub, {"max_concurrency": 1}))) as srv:
        c = client_for(srv)
        first = threading.Thread(target=lambda: c.chat.completions.create(model="m", messages=MSG))
        first.start()
        wait_until(lambda: stub.in_flight, interval=0.005)
        with pytest.raises(openai.RateLimitError) as ei:
            c.chat.completions.create(model="m", messages=MSG)
        first.join()
    assert ei.value.response.headers["retry-after"] == "1"


def test_a_stream_holds_its_concurrency_slot_until_it_ends(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer
) -> None:
    stub.chunk_delay_s = 0.15
    with LiveServer(make_config(_cfg(stub, {"max_concurrency": 1}))) as srv:
        c = client_for(srv)
        stream = c.chat.completions.create(model="m", messages=MSG, stream=True)
        next(iter(stream))  # the first chunk arrived; the stream is still going
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="m", messages=MSG)
        list(stream)
        deadline = time.monotonic() + 5  # the slot is released just after the last byte is sent
        while httpx.get(srv.url + "/api/v1/providers").json()["deployments"][0]["in_flight"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = c.chat.completions.create(model="m", messages=MSG)
        providers = httpx.get(srv.url + "/api/v1/providers").json()["deployments"]
    assert r.choices[0].message.content == stub.content
    assert providers[0]["in_flight"] == 0 and providers[0]["limits"]["in_flight"] == 0


def test_reload_keeps_breaker_and_limit_state_and_in_flight_calls(
    client_for: Callable[[LiveServer], openai.OpenAI], stub: StubServer, tmp_path: Path
) -> None:
    with StubServer(seed=3) as dead:
        dead.fail_rate = 1.0
        data: dict[str, Any] = {
            "providers": [
                {"name": "p", "kind": "openai", "base_url": stub.url},
                {"name": "q", "kind": "openai", "base_url": dead.url},
            ],
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {"provider": "p", "model": "stub-model", "name": "d", "limits": {"rpm": 100}}
                    ],
                },
                {
                    "name": "gone",
                    "retry": {"max_attempts": 1},
                    "deployments": [
                        {
                            "provider": "q",
                            "model": "x",
                            "name": "dead",
                            "breaker": {"consecutive_failures": 2, "cooldown_s": 60},
                        }
                    ],
                },
            ],
        }
        path = tmp_path / "architect.yaml"
        path.write_text(yaml.safe_dump(data))
        with LiveServer(make_config(data)) as srv:
            srv.runtime.config_path = str(path)
            c = client_for(srv)
            for _ in range(2):
                with pytest.raises(openai.APIStatusError):
                    c.chat.completions.create(model="gone", messages=MSG)
            c.chat.completions.create(model="m", messages=MSG)
            stub.script.append("slow:1.0")
            result: dict[str, Any] = {}

            def slow() -> None:
                result["r"] = c.chat.completions.create(model="m", messages=MSG)

            t = threading.Thread(target=slow)
            t.start()
            wait_until(lambda: stub.in_flight, interval=0.005)
            data["models"][0]["deployments"][0]["limits"] = {"rpm": 50}
            data["models"].append({"name": "new", "deployments": [{"provider": "p", "model": "stub-model"}]})
            path.write_text(yaml.safe_dump(data))
            resp = httpx.post(srv.url + "/api/v1/config/reload")
            assert resp.status_code == 200 and "new" in resp.json()["models"]
            t.join(10)
            assert result["r"].choices[0].message.content == stub.content  # not dropped by the reload
            assert c.chat.completions.create(model="new", messages=MSG).choices
            deps = {d["name"]: d for d in httpx.get(srv.url + "/api/v1/providers").json()["deployments"]}
            with pytest.raises(openai.APIStatusError) as ei:
                c.chat.completions.create(model="gone", messages=MSG)
    assert deps["dead"]["breaker"]["state"] == "open"  # kept across the reload
    assert ei.value.status_code == 503 and dead.counts["/v1/chat/completions"] == 2
    assert deps["d"]["limits"]["rpm"] == 50 and deps["d"]["limits"]["rpm_used"] == 2  # the window was kept
    assert deps["d"]["in_flight"] == 0 and deps["d"]["limits"]["in_flight"] == 0
