"""The executor on its own: retries, backoff, Retry-After, fallbacks, breakers, context-window fallback,
limits and the final error. Deployments answer through their real adapter over a `MockTransport`;
the executor, breakers and limiters share a fake clock whose `sleep` advances it, so nothing waits."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from architect.errors import GatewayError, ProviderError, RateLimited, Unavailable, UpstreamTimeout
from architect.gateway.call import Call
from architect.gateway.executor import Executor
from architect.gateway.limits import BUCKET_S
from architect.gateway.pipeline import Pipeline
from architect.gateway.providers.transport import (
    ConnectError,
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    TransportTimeout,
    response_from_bytes,
)
from architect.gateway.resilience import CLOSED, HALF_OPEN, OPEN
from architect.gateway.routing import Deployment, Router
from architect.principal import ANONYMOUS
from tests.helpers import make_config

MSG = [{"role": "user", "content": "Say hello."}]
SEED = 1234


class Clock:
    """Fake monotonic time. `sleep` records what it was asked and moves the time on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _error(status: int, message: str, code: str | None = None, **headers: str) -> HTTPResponse:
    body = {"error": {"message": message, "type": "x", "code": code}}
    return response_from_bytes(status, orjson.dumps(body), headers)


@dataclass
class Upstreams:
    """One scripted provider per deployment. A script is a list of replies, used in order; once it is
    used up the provider answers `then`. Replies: "ok", "500", "429:<retry-after>", "400", "401",
    "content" (content policy), "context" (context window), "timeout", "connect"."""

    clock: Clock
    scripts: dict[str, list[str]] = field(default_factory=dict)
    then: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # the provider of every request, in order
    latency_s: float = 0.0  # fake time each request takes

    def transport(self, name: str) -> MockTransport:
        async def handle(request: HTTPRequest) -> HTTPResponse:
            assert request.url == f"http://{name}.invalid/v1/chat/completions"
            self.log.append(name)
            self.clock.now += self.latency_s
            script = self.scripts.get(name)
            reply = script.pop(0) if script else self.then.get(name, "ok")
            if reply == "ok":
                body = {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": f"from {name}"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                }
                return response_from_bytes(200, orjson.dumps(body))
            if reply == "timeout":
                raise TransportTimeout("read timed out")
            if reply == "connect":
                raise ConnectError("connection refused")
            if reply.startswith("429:"):
                return _error(429, f"{name} is busy", "rate_limit_exceeded", **{"retry-after": reply[4:]})
            if reply == "context":
                return _error(
                    400, "This model's maximum context length is 1000 tokens", "context_length_exceeded"
                )
            if reply == "content":
                return _error(400, "flagged by the content filter", "content_filter")
            return _error(int(reply), f"{name} says {reply}")

        return MockTransport(handle)


@dataclass
class Env:
    router: Router
    executor: Executor
    clock: Clock
    up: Upstreams

    def dep(self, name: str) -> Deployment:
        return next(d for d in self.router.deployments() if d.name == name)

    def call(self, model: str = "m", est_prompt_tokens: int | None = None) -> Call:
        body: dict[str, Any] = {"model": model, "messages": MSG}
        call = Call("chat", body, orjson.dumps(body), ANONYMOUS, {})
        call.group = self.router.group(model)
        call.est_prompt_tokens = est_prompt_tokens
        return call

    async def run(self, call: Call) -> str:
        """Run the call as the pipeline does a non-stream chat: the deployment's adapter builds the
        request, the transport sends it, the adapter maps the answer or the error."""

        async def send(d: Deployment) -> bytes:
            request = d.adapter.chat_request(dict(call.body), d.model, stream=False)
            result = d.adapter.chat_response(await Pipeline._post(d, request))
            call.deployment, call.usage = d, result.usage
            return result.body

        body = await self.executor.run(call, send)
        return str(orjson.loads(body)["choices"][0]["message"]["content"])

    async def fail(self, call: Call) -> GatewayError:
        with pytest.raises(GatewayError) as ei:
            await self.run(call)
        return ei.value


def dep(name: str, price: float = 1.0, **kw: Any) -> dict[str, Any]:
    """A deployment on its own provider `name`; under lowest-cost, the lower `price` goes first."""
    return {"provider": name, "model": f"model-{name}", "name": name,
            "price": {"input_per_mtok": price, "output_per_mtok": price}, **kw}  # fmt: skip


def group(name: str, *deployments: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": name, "strategy": "lowest-cost", "deployments": list(deployments), **kw}


def build(*groups: dict[str, Any], seed: int = SEED) -> Env:
    providers = sorted({d["provider"] for g in groups for d in g["deployments"]})
    cfg = make_config(
        {
            "providers": [
                {"name": p, "kind": "openai", "base_url": f"http://{p}.invalid/v1"} for p in providers
            ],
            "models": list(groups),
        }
    )
    clock = Clock()
    up = Upstreams(clock)
    router = Router.build(cfg, transports={p: up.transport(p) for p in providers})
    router.rng = random.Random(0)
    for d in router.deployments():
        d.breaker.clock = d.breaker.wall = d.limiter.clock = clock
    executor = Executor(router, rng=random.Random(seed), clock=clock, sleep=clock.sleep)
    return Env(router, executor, clock, up)


def attempts(call: Call) -> list[tuple[str, str, str | None]]:
    return [(r.deployment, r.status, r.error_kind) for r in call.attempts]


# -- retry order and backoff ------------------------------------------------------------------------


async def test_a_failure_moves_to_the_next_deployment_in_strategy_order_without_waiting() -> None:
    env = build(group("m", dep("p2", 3.0), dep("p0", 1.0), dep("p1", 2.0)))
    env.up.scripts = {"p0": ["500"], "p1": ["timeout"]}
    call = env.call()
    assert await env.run(call) == "from p2"
    assert env.up.log == ["p0", "p1", "p2"]  # cheapest first, as the group's strategy orders them
    assert env.clock.sleeps == []  # moving on to another deployment does not back off
    assert attempts(call) == [("p0", "error", "server_error"), ("p1", "error", "timeout"), ("p2", "ok", None)]
    assert call.deployment is env.dep("p2") and call.fallbacks == 0
    assert call.route_reason == "lowest-cost (next)"


async def test_trying_a_deployment_again_waits_a_full_jitter_backoff_from_the_seeded_rng() -> None:
    retry = {"max_attempts": 5, "backoff_base_s": 0.1, "backoff_max_s": 0.3}
    env = build(group("m", dep("p0"), retry=retry))
    env.up.then = {"p0": "500"}
    err = await env.fail(env.call())
    assert env.up.log == ["p0"] * 5
    rng = random.Random(SEED)  # retry n waits uniform(0, min(max, base * 2^(n-1)))
    assert env.clock.sleeps == [rng.uniform(0, cap) for cap in (0.1, 0.2, 0.3, 0.3)]
    assert (err.status, err.type, err.code) == (502, "upstream_error", "server_error")
    assert err.message == "model 'm': the upstream failed; tried: " + "; ".join(["p0 (server_error)"] * 5)


async def test_a_group_of_two_alternates_and_backs_off_only_when_it_comes_back_round() -> None:
    retry = {"max_attempts": 4, "backoff_base_s": 0.1, "backoff_max_s": 1.0}
    env = build(group("m", dep("p0", 1.0), dep("p1", 2.0), retry=retry))
    env.up.then = {"p0": "500", "p1": "connect"}
    err = await env.fail(env.call())
    assert env.up.log == ["p0", "p1", "p0", "p1"]
    rng = random.Random(SEED)  # the first retry is the 3rd attempt (2 made before it)
    assert env.clock.sleeps == [rng.uniform(0, 0.2), rng.uniform(0, 0.4)]
    assert err.status == 502 and err.code == "connection_error"
    assert err.message.endswith(
        "tried: p0 (server_error); p1 (connection_error); p0 (server_error); p1 (connection_error)"
    )


async def test_backoff_is_full_jitter_within_its_cap() -> None:
    retry = {"max_attempts": 2, "backoff_base_s": 0.5, "backoff_max_s": 4.0}
    never_open = {"consecutive_failures": 10_000, "min_calls": 10_000}
    env = build(group("m", dep("p0", breaker=never_open), retry=retry))
    env.up.then = {"p0": "500"}
    for _ in range(100):
        await env.fail(env.call())
    assert len(env.clock.sleeps) == 100
    assert all(0 <= s <= 0.5 for s in env.clock.sleeps)  # the first retry's cap is the base
    assert min(env.clock.sleeps) < 0.05 and max(env.clock.sleeps) > 0.45  # spread over all of it
    assert len(set(env.clock.sleeps)) == 100


# -- Retry-After ------------------------------------------------------------------------------------


async def test_a_retry_waits_at_least_the_retry_after_the_deployment_sent() -> None:
    env = build(group("m", dep("p0"), retry={"backoff_base_s": 0.01, "backoff_max_s": 0.01}))
    env.up.scripts = {"p0": ["429:2.5"]}
    call = env.call()
    assert await env.run(call) == "from p0"
    assert env.clock.sleeps == [2.5]
    assert attempts(call) == [("p0", "error", "rate_limited"), ("p0", "ok", None)]


async def test_a_backoff_longer_than_the_retry_after_is_kept() -> None:
    env = build(group("m", dep("p0"), retry={"backoff_base_s": 1.0, "backoff_max_s": 1.0}))
    env.up.scripts = {"p0": ["429:0.001"]}
    assert await env.run(env.call()) == "from p0"
    assert env.clock.sleeps == [max(0.001, random.Random(SEED).uniform(0, 1.0))]
    assert env.clock.sleeps[0] > 0.001


async def test_retry_after_is_honoured_when_the_group_comes_back_round() -> None:
    env = build(
        group("m", dep("p0", 1.0), dep("p1", 2.0), retry={"backoff_base_s": 0.01, "backoff_max_s": 0.02})
    )
    env.up.scripts = {"p0": ["429:2"], "p1": ["500"]}
    assert await env.run(env.call()) == "from p0"
    assert env.up.log == ["p0", "p1", "p0"]
    assert env.clock.sleeps == [2.0]


async def test_a_retry_after_of_exactly_max_retry_after_is_waited() -> None:
    env = build(group("m", dep("p0"), retry={"max_retry_after_s": 3.0}))
    env.up.scripts = {"p0": ["429:3"]}
    assert await env.run(env.call()) == "from p0"
    assert env.clock.sleeps == [3.0]


async def test_a_retry_after_beyond_max_retry_after_rules_the_deployment_out() -> None:
    env = build(group("m", dep("p0"), retry={"max_retry_after_s": 3.0}))
    env.up.scripts = {"p0": ["429:3.5"]}
    err = await env.fail(env.call())
    assert env.up.log == ["p0"] and env.clock.sleeps == []
    assert isinstance(err, ProviderError) and err.retry_after == 3.5
    assert (err.status, err.type, err.code) == (429, "rate_limit_error", "rate_limit_exceeded")
    assert err.headers["retry-after"] == "4"
    assert err.message == "model 'm': upstream rate limited; tried: p0 (rate_limited)"


async def test_a_retry_after_beyond_the_time_left_rules_the_deployment_out_but_not_the_others() -> None:
    retry = {"max_time_s": 2.0, "max_retry_after_s": 10.0, "backoff_base_s": 0.01, "backoff_max_s": 0.01}
    env = build(group("m", dep("p0", 1.0), dep("p1", 2.0), retry=retry))
    env.up.scripts = {"p0": ["429:3"], "p1": ["500"]}
    assert await env.run(env.call()) == "from p1"
    assert env.up.log == ["p0", "p1", "p1"]  # p0 is not waited for; p1 is retried after its backoff
    assert len(env.clock.sleeps) == 1 and env.clock.sleeps[0] <= 0.01


async def test_every_deployment_rate_limited_upstream_gives_429_with_the_last_retry_after() -> None:
    env = build(group("m", dep("p0", 1.0), dep("p1", 2.0), retry={"max_attempts": 2}))
    env.up.scripts = {"p0": ["429:1"], "p1": ["429:2"]}
    err = await env.fail(env.call())
    assert env.up.log == ["p0", "p1"] and env.clock.sleeps == []
    assert (err.status, err.type, err.headers["retry-after"]) == (429, "rate_limit_error", "2")
    assert err.message == "model 'm': upstream rate limited; tried: p0 (rate_limited); p1 (rate_limited)"


# -- the fallback chain -----------------------------------------------------------------------------


async def test_fallbacks_are_tried_in_their_order_after_the_group_s_own_attempts() -> None:
    env = build(
        group("m", dep("p0"), fallbacks=["b", "c"], retry={"max_attempts": 2}),
        group("b", dep("p1"), retry={"max_attempts": 1}),
        group("c", dep("p2")),
    )
    env.up.then = {"p0": "500", "p1": "500"}
    call = env.call()
    assert await env.run(call) == "from p2"
    assert env.up.log == ["p0", "p0", "p1", "p2"]
    assert call.fallbacks == 2 and call.deployment is env.dep("p2")
    assert [r.model_group for r in call.attempts] == ["m", "m", "b", "c"]


async def test_a_chain_that_fails_everywhere_names_every_attempt_in_order() -> None:
    env = build(group("m", dep("p0"), fallbacks=["b"], retry={"max_attempts": 1}), group("b", dep("p1")))
    env.up.then = {"p0": "500", "p1": "timeout"}
    err = await env.fail(env.call())
    assert env.up.log == ["p0", "p1", "p1", "p1"]  # the fallback group's own max_attempts (3)
    assert isinstance(err, UpstreamTimeout)  # the last failure was a timeout
    assert (err.status, err.type, err.code) == (504, "timeout", "timeout")
    assert (
        err.message
        == "model 'm': the upstream failed; tried: p0 (server_error); p1 (timeout); p1 (timeout); p1 (timeout)"
    )


async def test_max_time_bounds_the_whole_chain() -> None:
    retry = {"max_attempts": 3, "max_time_s": 1.0, "backoff_base_s": 0.01, "backoff_max_s": 0.01}
    env = build(
        group("m", dep("p0", 1.0), dep("p1", 2.0), fallbacks=["b"], retry=retry), group("b", dep("p2"))
    )
    env.up.then = {"p0": "500", "p1": "500"}
    env.up.latency_s = 0.4  # each attempt takes 0.4 s of the call's 1 s
    err = await env.fail(env.call())
    assert env.up.log == ["p0", "p1", "p0"]  # the fallback is never reached
    assert err.status == 502 and err.message.endswith("p0 (server_error); gave up after 1s")


# -- breakers, seen through the executor -------------------------------------------------------------


async def test_a_failing_deployment_opens_is_skipped_then_a_half_open_probe_closes_it() -> None:
    breaker = {"consecutive_failures": 2, "cooldown_s": 10.0}
    env = build(group("m", dep("p0", 1.0, breaker=breaker), dep("p1", 2.0)))
    env.up.scripts = {"p0": ["500", "500"]}
    p0 = env.dep("p0").breaker
    for _ in range(2):
        assert await env.run(env.call()) == "from p1"
    assert p0.state == OPEN and env.up.log == ["p0", "p1", "p0", "p1"]

    env.clock.now += 9.9
    call = env.call()
    assert await env.run(call) == "from p1"
    assert env.up.log[4:] == ["p1"]  # no request to the open deployment
    assert call.route_reason == "lowest-cost (next); skipped p0 (circuit open)"
    assert attempts(call) == [("p1", "ok", None)]

    env.clock.now += 0.2  # the cooldown has passed: one probe goes to p0, and it succeeds
    call = env.call()
    assert await env.run(call) == "from p0"
    assert call.route_reason == "lowest-cost; half-open probe"
    assert p0.state == CLOSED
    assert [h["to"] for h in p0.history] == [OPEN, HALF_OPEN, CLOSED]


async def test_a_failed_probe_opens_the_breaker_again() -> None:
    env = build(
        group("m", dep("p0", 1.0, breaker={"consecutive_failures": 1, "cooldown_s": 5.0}), dep("p1", 2.0))
    )
    env.up.scripts = {"p0": ["500", "500"]}
    p0 = env.dep("p0").breaker
    assert await env.run(env.call()) == "from p1"
    env.clock.now += 5.0
    assert await env.run(env.call()) == "from p1"  # the probe to p0 failed, p1 answered
    assert env.up.log == ["p0", "p1", "p0", "p1"]
    assert p0.state == OPEN and p0.retry_in() == 5.0
    assert [h["to"] for h in p0.history] == [OPEN, HALF_OPEN, OPEN]


async def test_every_breaker_open_answers_503_at_once_naming_them() -> None:
    env = build(
        group(
            "m",
            dep("p0", 1.0, breaker={"consecutive_failures": 1, "cooldown_s": 10.0}),
            dep("p1", 2.0, breaker={"consecutive_failures": 1, "cooldown_s": 20.0}),
            retry={"max_attempts": 2},
        )
    )
    env.up.then = {"p0": "500", "p1": "500"}
    first = await env.fail(env.call())
    assert first.status == 502 and first.message.endswith("tried: p0 (server_error); p1 (server_error)")

    env.clock.now += 1.0
    call = env.call()
    err = await env.fail(call)
    assert env.up.log == ["p0", "p1"] and call.attempts == [] and env.clock.sleeps == []
    assert isinstance(err, Unavailable)
    assert (err.status, err.type, err.code, err.kind) == (
        503,
        "service_unavailable",
        "circuit_open",
        "circuit_open",
    )
    assert err.message == "model 'm' is unavailable: circuit open for p0, p1; retry in 9.0s"
    assert err.headers["retry-after"] == "9"


async def test_the_failure_that_opens_the_last_breaker_answers_503_with_retry_after() -> None:
    env = build(group("m", dep("p0", breaker={"consecutive_failures": 2, "cooldown_s": 10.0})))
    env.up.then = {"p0": "500"}
    err = await env.fail(env.call())
    assert env.up.log == ["p0", "p0"]  # the third attempt finds the breaker open
    assert (err.status, err.type, err.code) == (503, "service_unavailable", "server_error")
    assert err.headers["retry-after"] == "10"
    assert err.message == "model 'm': the upstream failed; tried: p0 (server_error); p0 (server_error)"


# -- context windows and non-retryable errors -------------------------------------------------------


def _windows(**small: Any) -> Env:
    return build(
        group("small", dep("p0", context_window=1000), **small),
        group("other", dep("p1")),
        group("large", dep("p2", context_window=100_000)),
    )


async def test_a_context_window_error_goes_to_the_context_window_fallbacks_first() -> None:
    env = _windows(fallbacks=["other", "large"], context_window_fallbacks=["large"])
    env.up.scripts = {"p0": ["context"]}
    call = env.call("small")
    assert await env.run(call) == "from p2"
    assert env.up.log == ["p0", "p2"]  # "large" moved ahead of "other"
    assert call.fallbacks == 1 and env.clock.sleeps == []
    assert attempts(call) == [("p0", "error", "context_window"), ("p2", "ok", None)]


async def test_a_prompt_over_every_window_of_a_group_skips_it_for_the_context_window_fallbacks() -> None:
    env = _windows(fallbacks=["other"], context_window_fallbacks=["large"])
    call = env.call("small", est_prompt_tokens=5000)
    assert await env.run(call) == "from p2"
    assert env.up.log == ["p2"] and call.fallbacks == 1


async def test_a_prompt_over_every_window_everywhere_is_a_400() -> None:
    env = _windows()
    call = env.call("small", est_prompt_tokens=5000)
    err = await env.fail(call)
    assert env.up.log == [] and call.attempts == []
    assert (err.status, err.type, err.code) == (400, "invalid_request_error", "context_length_exceeded")
    assert err.message == (
        "model 'small': the request is larger than the context window of every deployment "
        "(at least about 5000 prompt + 0 completion tokens)"
    )


@pytest.mark.parametrize(
    ("reply", "status", "type_", "kind", "message", "counts_as_failure"),
    [
        ("400", 400, "invalid_request_error", "bad_request", "p0 says 400", False),
        ("context", 400, "invalid_request_error", "context_window", "maximum context length is 1000", False),
        ("content", 400, "invalid_request_error", "content_policy", "flagged by the content filter", False),
        (
            "401",
            502,
            "upstream_error",
            "upstream_auth",
            "the provider rejected Architect's credentials",
            True,
        ),
    ],
)
async def test_a_non_retryable_error_is_returned_at_once(
    reply: str, status: int, type_: str, kind: str, message: str, counts_as_failure: bool
) -> None:
    env = build(
        group("m", dep("p0", 1.0), dep("p1", 2.0), fallbacks=["other"]),
        group("other", dep("p2")),
    )
    env.up.scripts = {"p0": [reply]}
    call = env.call()
    err = await env.fail(call)
    assert env.up.log == ["p0"] and env.clock.sleeps == [] and call.fallbacks == 0
    assert isinstance(err, ProviderError)
    assert (err.status, err.type, err.kind) == (status, type_, kind)
    assert message in err.message
    # a bad request says the deployment is healthy; rejected credentials do not
    assert env.dep("p0").breaker.consecutive_failures == (1 if counts_as_failure else 0)


# -- deployment limits ------------------------------------------------------------------------------


def _rpm_limited(limit_wait_s: float) -> Env:
    """Two deployments of 1 request per minute, used at t and t+10; the call at t+20 finds both full
    (p0 frees up in 40 s, p1 in 50 s)."""
    one_rpm = {"limits": {"rpm": 1}}
    return build(group("m", dep("p0", 1.0, **one_rpm), dep("p1", 2.0, **one_rpm), limit_wait_s=limit_wait_s))


async def _use_both(env: Env) -> None:
    assert await env.run(env.call()) == "from p0"
    env.clock.now += 10
    assert await env.run(env.call()) == "from p1"
    env.clock.now += 10


async def test_every_deployment_at_its_limit_gives_429_with_the_shortest_wait() -> None:
    env = _rpm_limited(0.0)
    await _use_both(env)
    call = env.call()
    err = await env.fail(call)
    assert env.up.log == ["p0", "p1"] and call.attempts == [] and env.clock.sleeps == []
    # p0's start leaves the count when its 1 s bucket has left the 60 s window: 40 s + BUCKET_S from now
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(40.0 + BUCKET_S)
    assert (err.status, err.type, err.code, err.headers["retry-after"]) == (
        429, "rate_limit_error", "rate_limit_exceeded", "41")  # fmt: skip
    assert err.message.startswith("model 'm': every deployment is at its limits; retry in 41.0s (")
    assert "m: every deployment is at its rate/concurrency limit" in err.message


async def test_a_limited_group_waits_up_to_limit_wait_s_for_a_slot() -> None:
    env = _rpm_limited(45.0)
    await _use_both(env)
    assert await env.run(env.call()) == "from p0"
    assert env.clock.sleeps == [pytest.approx(40.0 + BUCKET_S)]


async def test_a_limit_wait_shorter_than_the_limit_gives_up_with_the_wait_left() -> None:
    env = _rpm_limited(5.0)
    await _use_both(env)
    err = await env.fail(env.call())
    assert env.clock.sleeps == [pytest.approx(5.0)]
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(35.0 + BUCKET_S)
    assert env.up.log == ["p0", "p1"]


async def test_a_chain_limited_everywhere_gives_the_shortest_wait_of_all_its_groups() -> None:
    one_rpm = {"limits": {"rpm": 1}}
    env = build(group("m", dep("p0", **one_rpm), fallbacks=["b"]), group("b", dep("p1", **one_rpm)))
    assert await env.run(env.call()) == "from p0"  # t: p0 is full until t+61 (its bucket)
    env.clock.now += 30
    assert await env.run(env.call("b")) == "from p1"  # t+30: p1 is full until t+91
    env.clock.now += 10
    call = env.call()
    err = await env.fail(call)
    assert env.up.log == ["p0", "p1"] and call.fallbacks == 1
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(20.0 + BUCKET_S)
    assert err.headers["retry-after"] == "21"
