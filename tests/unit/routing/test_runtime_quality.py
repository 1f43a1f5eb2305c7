"""The runtime's quality model: started with the runtime only when the config has an auto group (a
gateway without one never builds it, nor loads numpy), synced in the background, closed with it."""

from __future__ import annotations

import pytest

from architect.records import CallRecord
from architect.routing.features import HashedFeatures
from architect.runtime import Runtime, has_auto_route
from architect.store import Store
from tests.helpers import make_config, wait_until_async

CONFIG = {
    "providers": [{"name": "sim", "kind": "simulated"}],
    "models": [{"name": "small", "deployments": [{"provider": "sim", "model": "s"}]}],
    "routing": {"refresh_s": 0.01},
}


async def test_no_auto_group_no_model() -> None:
    runtime = Runtime(make_config(CONFIG), Store.memory())
    assert not has_auto_route(runtime.config)
    await runtime.start()
    assert "quality" not in runtime.__dict__ and runtime.quality_priors() == {}
    await runtime.stop()


AUTO = {
    **CONFIG,
    "models": [*CONFIG["models"], {"name": "auto", "strategy": "auto", "candidates": ["small"]}],
}


@pytest.mark.parametrize("embed", [False, True])
async def test_with_an_auto_group_the_model_starts_syncs_and_closes(embed: bool) -> None:
    store = Store.memory()
    runtime = Runtime(make_config({**AUTO, "routing": {"refresh_s": 0.01, "embed": embed}}), store)
    assert has_auto_route(runtime.config)
    await runtime.start()
    model = runtime.quality
    assert model.refresh_s == 0.01 and model.scope == "global"
    # the route decides with the learner, on features of the dimension it learns (64 more with embed)
    assert runtime.route.quality is model and model.dim == runtime.route_features.dim
    assert model.dim - HashedFeatures().dim == (64 if embed else 0)
    store.ledger.record(
        [CallRecord(request_id="r1", ts=1.0, endpoint="chat", model="small", model_group="small")]
    )
    store.routing.record_feedback("r1", None, 1.0)
    await wait_until_async(lambda: model.outcome_count("small") == 1)
    await runtime.stop()
    assert model._task is None  # closed with the runtime
