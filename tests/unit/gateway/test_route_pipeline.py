"""The pipeline with the route hook, in process (a mock transport): a local-only call reaches only the
local deployment of a weighted group and its budget reservation holds only what the deployments it may
reach can cost; an auto call's reservation covers its chain of eligible candidates only."""

from __future__ import annotations

import random

import orjson

from architect.config import parse_config
from architect.events import EventBus
from architect.gateway.call import Call
from architect.gateway.costs import worst_case_cost
from architect.gateway.hooks import Hooks
from architect.gateway.ledger import LedgerWriter
from architect.gateway.pipeline import Pipeline
from architect.gateway.providers.transport import (
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    response_from_bytes,
)
from architect.gateway.routing import Router
from architect.principal import Principal
from architect.routing.decide import AutoRouter
from architect.routing.predict import PriorModel
from architect.store import Store

ANSWER = b'{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}'


class Budgets:
    def __init__(self) -> None:
        self.reserved: list[float] = []

    def may_apply(self, call: Call) -> bool:
        return True

    async def reserve(self, call: Call, worst_case_usd: float) -> None:
        self.reserved.append(worst_case_usd)

    async def settle(self, call: Call, actual_usd: float) -> None:
        return None


def _pipeline() -> tuple[Pipeline, MockTransport, Budgets]:
    def dep(model: str, price: float, **kw: object) -> dict[str, object]:
        return {
            "provider": "p",
            "model": model,
            "price": {"input_per_mtok": price, "output_per_mtok": price},
            **kw,
        }

    cfg = parse_config(
        {
            "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "models": [
                {
                    "name": "mixed",
                    "deployments": [dep("cloud", 100.0, weight=1000), dep("onprem", 1.0, local=True)],
                },
                {"name": "cheap", "deployments": [dep("cheap", 0.5)]},
                {"name": "dear", "deployments": [dep("dear", 50.0)]},
                {"name": "auto", "strategy": "auto", "candidates": ["cheap", "dear", "mixed"]},
            ],
        },
        env={},
    )

    async def answer(request: HTTPRequest) -> HTTPResponse:
        return response_from_bytes(200, ANSWER)

    transport = MockTransport(answer)
    router = Router.build(cfg, transports={"p": transport})
    budgets = Budgets()
    hooks = Hooks(budgets=budgets, budgets_active=True, routes=AutoRouter(PriorModel(), rng=random.Random(0)))
    return Pipeline(cfg, router, LedgerWriter(Store.memory().ledger), EventBus(), hooks), transport, budgets


def _call(model: str, principal: Principal, **headers: str) -> Call:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 10}
    call = Call("chat", body, orjson.dumps(body), principal, {}, headers=headers)
    if "x-architect-route" in headers:
        call.route_request = ("x-architect-route", headers["x-architect-route"])
    return call


async def test_local_only_reaches_and_reserves_only_the_local_deployment() -> None:
    pipeline, transport, budgets = _pipeline()
    private = Principal(kind="key", key_id="k", extra={"route": {"privacy": "local-only"}})
    for _ in range(3):
        call = _call("mixed", private)
        await pipeline.chat(call)
        assert orjson.loads(transport.requests[-1].body)["model"] == "onprem"
        assert call.deployment is not None and call.deployment.name == "mixed/p/onprem"
    bound = call.prompt_size.bound if call.prompt_size is not None else 0
    assert budgets.reserved[-1] == worst_case_cost(
        pipeline.router.groups["mixed"].deployments[1].price, bound, 10
    )  # type: ignore[arg-type]
    await pipeline.chat(_call("mixed", Principal(kind="admin")))
    assert budgets.reserved[-1] > budgets.reserved[0]  # without the constraint the cloud one counts


async def test_an_auto_call_reserves_over_its_eligible_chain_and_records_its_decision() -> None:
    pipeline, transport, budgets = _pipeline()
    call = _call("auto", Principal(kind="admin"), **{"x-architect-route": "quality=0.5"})
    await pipeline.chat(call)
    assert orjson.loads(transport.requests[-1].body)["model"] == "cheap"
    assert [g.name for g in call.chain or ()] == ["cheap", "mixed", "dear"]
    bound = call.prompt_size.bound if call.prompt_size is not None else 0
    dearest = max(d.budget_price.input_per_mtok for g in call.chain or () for d in g.deployments)  # type: ignore[union-attr]
    assert dearest == 100.0 and budgets.reserved[-1] == (bound + 10) * 100.0 / 1e6
    # local-only: only `mixed` (its onprem deployment) is eligible; the chain and reservation follow
    call = _call("auto", Principal(kind="admin"), **{"x-architect-route": "quality=0.5; privacy=local-only"})
    await pipeline.chat(call)
    assert [g.name for g in call.chain or ()] == ["mixed"] and call.route_scores == {"mixed": 0.7}
    assert orjson.loads(transport.requests[-1].body)["model"] == "onprem"
    assert budgets.reserved[-1] == (bound + 10) * 1.0 / 1e6
    record = pipeline._record(call, call.deployment, call.usage, None)
    assert (record.routed_by, record.model_group, record.task_type, record.explored) == (
        "auto",
        "mixed",
        "unknown",
        False,
    )
