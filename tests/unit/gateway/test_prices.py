"""Where prices come from (`gateway.prices`): the configuration, the genai-prices catalogue matched by
provider and model, or unknown. The dollar figures below are written from the providers' public price
pages (USD per million tokens, as genai-prices 0.2.5 has them), never read from the catalogue here:

| model | input | cached input | cache write | output |
|---|---|---|---|---|
| gpt-4o (OpenAI) | 2.50 | 1.25 | - | 10.00 |
| gpt-4o-mini (OpenAI) | 0.15 | 0.075 | - | 0.60 |
| claude-sonnet-4 (Anthropic) | 3.00 | 0.30 | 3.75 | 15.00 |
| claude-3-5-haiku (Anthropic) | 0.80 | 0.08 | 1.00 | 4.00 |
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from architect.cli.common import unpriced_note, usd_or_unknown
from architect.cli.main import app as cli
from architect.config import PriceConfig, parse_config
from architect.errors import ConfigError
from architect.gateway.costs import cost_usd, worst_case_cost
from architect.gateway.prices import Catalogue, budget_prices, dearest, resolve_config, resolve_price
from architect.gateway.providers.base import Usage
from architect.gateway.routing import DEFAULT_BASE_URLS, Router

OPENAI = {"name": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_key": "k"}
ANTHROPIC = {"name": "anthropic", "kind": "anthropic", "api_key": "k"}  # the default base URL
LOCAL = {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}


def _config(providers: list[dict[str, Any]], *deployments: dict[str, Any], **group: Any) -> Any:
    return parse_config(
        {"providers": providers, "models": [{"name": "g", "deployments": list(deployments), **group}]}, env={}
    )


def _resolved(provider: dict[str, Any], model: str, **deployment: Any) -> Any:
    cfg = _config([provider], {"provider": provider["name"], "model": model, **deployment})
    (only,) = resolve_config(cfg, DEFAULT_BASE_URLS)
    return only.resolved


def test_openai_models_are_priced_from_the_catalogue_by_provider_and_model() -> None:
    r = _resolved(OPENAI, "gpt-4o")
    assert r.source == "catalogue" and "openai/gpt-4o" in r.detail
    assert r.price == PriceConfig(input_per_mtok=2.5, output_per_mtok=10.0, cached_input_per_mtok=1.25)
    # 800 uncached + 200 cached prompt tokens, 500 completion tokens
    usage = Usage(prompt_tokens=1_000, cached_tokens=200, completion_tokens=500)
    assert cost_usd(r.price, usage) == pytest.approx(0.00725)  # (800*2.5 + 200*1.25 + 500*10) / 1e6

    mini = _resolved(OPENAI, "gpt-4o-mini-2024-07-18").price  # a dated id matches its model
    assert mini == PriceConfig(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075)
    usage = Usage(prompt_tokens=10_000, cached_tokens=2_000, completion_tokens=1_000)
    assert cost_usd(mini, usage) == pytest.approx(0.00195)  # (8000*0.15 + 2000*0.075 + 1000*0.6) / 1e6


def test_anthropic_models_carry_cache_read_and_write_prices() -> None:
    # 3,500 input tokens: 1,000 uncached, 2,000 cache reads, 500 cache writes; 300 output tokens
    usage = Usage(prompt_tokens=3_500, cached_tokens=2_000, cache_write_tokens=500, completion_tokens=300)
    sonnet = _resolved(ANTHROPIC, "claude-sonnet-4-20250514")
    assert sonnet.source == "catalogue"
    assert sonnet.price == PriceConfig(
        input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75
    )
    assert cost_usd(sonnet.price, usage) == pytest.approx(0.009975)  # 3000 + 600 + 1875 + 4500
    haiku = _resolved(ANTHROPIC, "claude-3-5-haiku-20241022").price
    assert haiku == PriceConfig(
        input_per_mtok=0.8, output_per_mtok=4.0, cached_input_per_mtok=0.08, cache_write_per_mtok=1.0
    )
    assert cost_usd(haiku, usage) == pytest.approx(0.00266)  # 800 + 160 + 500 + 1200
    # the worst case holds every prompt token at the dearer of input and cache write
    assert worst_case_cost(haiku, 1_000, 100) == pytest.approx((1_000 * 1.0 + 100 * 4.0) / 1e6)


def test_an_explicit_zero_stays_zero_with_source_config() -> None:
    r = _resolved(LOCAL, "qwen2.5-coder", price={})
    assert r.source == "config" and r.price == PriceConfig()
    assert cost_usd(r.price, Usage(prompt_tokens=10_000, completion_tokens=1_000)) == 0.0
    # a price given for a catalogue model wins over the catalogue
    mine = _resolved(OPENAI, "gpt-4o", price={"input_per_mtok": 1.0, "output_per_mtok": 2.0})
    assert mine.source == "config" and mine.price == PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:11434/v1",
        "http://vllm:8000/v1",
        "http://10.0.0.7/v1",
        "https://gpu.corp.internal/v1",
    ],
)
def test_a_local_model_has_an_unknown_price_even_with_a_cloud_model_name(base_url: str) -> None:
    local = {**LOCAL, "base_url": base_url}
    for model in ("qwen2.5-coder", "gpt-4o", "claude-sonnet-4-20250514"):
        r = _resolved(local, model)
        assert r.source == "unknown" and r.price is None and not r.known
        assert "local or private address" in r.detail


def test_unknown_hosts_and_models_are_unknown_not_zero() -> None:
    other = {**LOCAL, "base_url": "https://llm.example.com/v1"}
    r = _resolved(other, "gpt-4o")
    assert r.source == "unknown" and "not a provider the price catalogue knows" in r.detail
    r = _resolved(OPENAI, "no-such-model-xyz")
    assert r.source == "unknown" and "no model 'no-such-model-xyz' at openai" in r.detail


def test_prices_from_names_the_catalogue_provider_of_a_proxy() -> None:
    proxy = {**LOCAL, "prices_from": "openai"}
    r = _resolved(proxy, "gpt-4o-mini")
    assert r.source == "catalogue" and r.price is not None and r.price.input_per_mtok == 0.15
    bad = parse_config(
        {
            "providers": [LOCAL, {**LOCAL, "name": "p2", "prices_from": "no-such-vendor"}],
            "models": [{"name": "g", "deployments": [{"provider": "p2", "model": "x"}]}],
        },
        env={},
    )
    with pytest.raises(ConfigError, match=r"providers\[1\]\.prices_from: 'no-such-vendor' is not a provider"):
        resolve_config(bad, DEFAULT_BASE_URLS)
    with pytest.raises(ConfigError, match=r"providers\[0\]\.prices_from"):
        parse_config({"providers": [{**LOCAL, "prices_from": "Not A Name"}]}, env={})


def test_simulated_deployments_keep_their_behaviour() -> None:
    sim = {"name": "sim", "kind": "simulated"}
    assert _resolved(sim, "gpt-4o").price == PriceConfig()  # never looked up: 0, as before
    assert _resolved(sim, "gpt-4o").source == "config"
    given = _resolved(sim, "sim-fast", price={"input_per_mtok": 0.1, "output_per_mtok": 0.4})
    assert given.price == PriceConfig(input_per_mtok=0.1, output_per_mtok=0.4)


_NO_NETWORK = """
import socket, sys, threading

def refuse(*args, **kwargs):
    raise SystemExit(f"network use: {args}")

socket.getaddrinfo = socket.create_connection = refuse
socket.socket.connect = socket.socket.connect_ex = refuse
from architect.config import parse_config
from architect.gateway.routing import Router

cfg = parse_config({"providers": [{"name": "o", "kind": "openai", "base_url": "https://api.openai.com/v1"}],
                    "models": [{"name": "g", "deployments": [{"provider": "o", "model": "gpt-4o"}]}]}, env={})
router = Router.build(cfg)
assert "genai_prices" in sys.modules
assert not any(t.name.startswith("genai_prices") for t in threading.enumerate())
print(router.groups["g"].deployments[0].pricing.source)
"""


def test_loading_the_catalogue_in_a_fresh_process_needs_no_network() -> None:
    out = subprocess.run([sys.executable, "-c", _NO_NETWORK], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "catalogue"


def test_the_catalogue_makes_no_network_call_and_starts_no_updater(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cat = Catalogue()  # a fresh load of the bundled data
    provider = {**OPENAI}
    cfg = _config([provider], {"provider": "openai", "model": "gpt-4o"})
    d = cfg.models[0].deployments[0]
    r = resolve_price(d, cfg.providers[0], "https://api.openai.com/v1", source=cat)
    assert r.source == "catalogue" and cat.version.startswith("genai-prices ")
    assert not any(t.name.startswith("genai_prices") for t in threading.enumerate())


def test_budget_prices_stand_in_with_the_dearest_known_price_of_the_group() -> None:
    cheap = PriceConfig(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075)
    dear = PriceConfig(input_per_mtok=3.0, output_per_mtok=15.0, cache_write_per_mtok=3.75)
    top = dearest([cheap, dear])
    assert top == PriceConfig(
        input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=3.0, cache_write_per_mtok=3.75
    )
    cfg = _config(
        [OPENAI, LOCAL],
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "local", "model": "qwen"},
        {"provider": "openai", "model": "gpt-4o"},
    )
    resolved = [p.resolved for p in resolve_config(cfg, DEFAULT_BASE_URLS)]
    mini, qwen, big = budget_prices(resolved)
    assert mini == resolved[0].price and big == resolved[2].price
    assert qwen is not None and qwen.input_per_mtok == 2.5 and qwen.output_per_mtok == 10.0
    assert budget_prices([resolved[1]]) == [None]  # no known price in the group


async def test_the_router_holds_prices_ranks_unknown_last_and_takes_the_first_known_baseline() -> None:
    cfg = _config(
        [OPENAI, LOCAL],
        {"provider": "local", "model": "qwen"},
        {"provider": "openai", "model": "gpt-4o"},
        {"provider": "openai", "model": "gpt-4o-mini"},
        strategy="lowest-cost",
    )
    router = Router.build(cfg)
    try:
        qwen, big, mini = router.groups["g"].deployments
        assert [d.name for d in router.unpriced()] == [qwen.name]
        assert (qwen.pricing.source, big.pricing.source) == ("unknown", "catalogue")
        assert qwen.budget_price is not None and qwen.budget_price.output_per_mtok == 10.0
        routes = router.order(router.groups["g"], 1_000, 100)
        assert [r.deployment for r in routes] == [mini, big, qwen]
        assert routes[-1].reason == "lowest-cost (next); price unknown"
        assert router.baseline_price("g") == big.price  # the first known price of the group
        view = qwen.snapshot()
        assert view["price"] is None and view["price_source"] == "unknown"
        assert big.snapshot()["price"]["input_per_mtok"] == 2.5
    finally:
        await router.aclose()


def test_config_check_names_every_deployment_whose_price_is_unknown(tmp_path: Any) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers:\n"
        "  - {name: openai, kind: openai, base_url: https://api.openai.com/v1}\n"
        "  - {name: local, kind: openai, base_url: http://127.0.0.1:8000/v1}\n"
        "models:\n"
        "  - name: g\n"
        "    deployments:\n"
        "      - {provider: openai, model: gpt-4o}\n"
        "      - {provider: local, model: qwen}\n"
        "      - {provider: local, model: llama, price: {}}\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert "prices: 1 from the config, 1 from the price catalogue, 1 unknown" in res.output
    assert "models[0].deployments[1] (g: local qwen): price unknown" in res.output
    assert "deployments[2]" not in res.output and "deployments[0]" not in res.output.split("prices:")[1]


def test_cli_costs_say_unknown_and_how_many_calls_they_leave_out() -> None:
    assert usd_or_unknown(0.0, 3, 3) == "unknown"
    assert usd_or_unknown(1.5, 4, 1) == "$1.5000 (+1 unknown)"
    assert usd_or_unknown(0.0, 2, 0) == "$0.0000"
    assert unpriced_note(0) is None
    assert "2 calls have an unknown price" in (unpriced_note(2) or "")
