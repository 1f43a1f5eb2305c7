"""Where a deployment's price comes from: the one function that answers it, `resolve_price`.

A deployment's `price:` in the configuration wins (an explicit `0` is a price: a local vLLM). Without
one, a deployment is priced from the catalogue of the `genai-prices` package (pydantic's maintained
price data, pinned in pyproject.toml; its data ships inside the package and only its bundled data is
read, never its optional updater, so nothing is fetched). The catalogue is asked for a *provider and a
model*, never a model name alone: the provider is the one the provider's `prices_from` names, else the
one whose API address matches the deployment's base URL (api.openai.com, api.anthropic.com,
openrouter.ai, api.groq.com, ...). A deployment on any other host (127.0.0.1, a private vLLM) that has
no `price:` has an unknown price, so a local `qwen` never gets a cloud price. A `simulated`
deployment (the demo fleet) is never looked up: without a `price:` it costs 0, as it always has.

The router resolves every deployment once, when it is built (`Deployment.pricing`). An unknown price
is never read as 0: the pipeline records such a call's cost as unknown (`cost_source`), and budgets
price it at the dearest known price of its group (`budget_prices`).

The catalogue module is imported only when a deployment needs it (it takes ~30 MiB)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from architect.config import Config, DeploymentConfig, PriceConfig, ProviderConfig
from architect.errors import ConfigError

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice, Provider, TieredPrices

__all__ = [
    "CATALOGUE_PACKAGE",
    "Catalogue",
    "PriceSource",
    "PricedDeployment",
    "ResolvedPrice",
    "budget_prices",
    "catalogue",
    "dearest",
    "resolve_config",
    "resolve_price",
]

PriceSource = Literal["config", "catalogue", "unknown"]
CATALOGUE_PACKAGE = "genai-prices"


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    """A deployment's price and where it came from. `price` is None exactly when `source` is
    "unknown"; `detail` says which catalogue entry priced it, or why the price is unknown."""

    price: PriceConfig | None
    source: PriceSource
    detail: str = ""

    @property
    def known(self) -> bool:
        return self.price is not None


class Catalogue:
    """The bundled data of `genai-prices`: provider lookup by id or API address, and a model's
    current per-token prices as a `PriceConfig`. Reads only the data shipped in the package."""

    def __init__(self, providers: Sequence[Provider] | None = None) -> None:
        if providers is None:
            from genai_prices.data import providers as bundled  # the package's data, no updater

            providers = bundled
        self._providers = list(providers)
        self._by_id = {p.id: p for p in self._providers}

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"{CATALOGUE_PACKAGE} {version(CATALOGUE_PACKAGE)}"

    def provider_ids(self) -> list[str]:
        return sorted(self._by_id)

    def has_provider(self, provider_id: str) -> bool:
        return provider_id in self._by_id

    def provider_for_url(self, base_url: str) -> str | None:
        """The catalogue provider whose API address `base_url` is (its `api_pattern`), or None."""
        for p in self._providers:
            if re.match(p.api_pattern, base_url):
                return p.id
        return None

    def lookup(
        self, provider_id: str, model: str, at: datetime | None = None
    ) -> tuple[PriceConfig, str] | None:
        """`model`'s prices at `provider_id` in force at `at` (default now), with the catalogue's model
        id; None if the provider or the model is not in the catalogue. A provider that resells
        another's models (its `fallback_model_providers`) is searched as the catalogue does."""
        provider = self._by_id.get(provider_id)
        if provider is None:
            return None
        info = provider.find_model(model, all_providers=self._providers)
        if info is None:
            return None
        prices = info.get_prices(at or datetime.now(UTC))
        return _price_config(prices), info.id


def _usd(value: Decimal | TieredPrices | None) -> float | None:
    """A per-million-token price as a float; a tiered price gives its base (first-tier) rate."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    return float(value.base)


def _price_config(prices: ModelPrice) -> PriceConfig:
    """The token prices of a catalogue entry (prices it has none of are 0, as the catalogue counts
    them; a missing cache price falls back to the input price, as for a configured price)."""
    return PriceConfig(
        input_per_mtok=_usd(prices.input_mtok) or 0.0,
        output_per_mtok=_usd(prices.output_mtok) or 0.0,
        cached_input_per_mtok=_usd(prices.cache_read_mtok),
        cache_write_per_mtok=_usd(prices.cache_write_mtok),
    )


@functools.cache
def catalogue() -> Catalogue:
    """The process's catalogue, loaded on first use."""
    return Catalogue()


def resolve_price(
    deployment: DeploymentConfig,
    provider: ProviderConfig,
    base_url: str,
    *,
    where: str = "",
    source: Catalogue | None = None,
) -> ResolvedPrice:
    """The price of `deployment` on `provider` (reached at `base_url`): its configured `price:`; for a
    `simulated` provider without one, 0; else the catalogue's price for the provider (`prices_from`,
    or the one whose API address `base_url` is) and the model; else unknown. `where` is the provider's
    field path for errors: a `prices_from` the catalogue does not know raises ConfigError naming it."""
    if deployment.price is not None:
        return ResolvedPrice(deployment.price, "config", "price: in the configuration")
    if provider.kind == "simulated":
        return ResolvedPrice(PriceConfig(), "config", "a simulated deployment without price: costs 0")
    if provider.prices_from is not None:
        cat = source or catalogue()
        pid: str | None = provider.prices_from
        if not cat.has_provider(provider.prices_from):
            field = f"{where}.prices_from" if where else "prices_from"
            raise ConfigError(
                f"{field}: {provider.prices_from!r} is not a provider in the price catalogue "
                f"({cat.version}; known: {', '.join(cat.provider_ids())})"
            )
    elif _private_host(base_url):  # decided without loading the catalogue
        return ResolvedPrice(
            None,
            "unknown",
            f"no price: and {base_url} is a local or private address, never priced from the catalogue "
            "(give price:, 0 for a model you run yourself)",
        )
    else:
        cat = source or catalogue()
        pid = cat.provider_for_url(base_url)
    if pid is None:
        return ResolvedPrice(
            None,
            "unknown",
            f"no price: and {base_url or 'its base URL'} is not a provider the price catalogue knows "
            "(give price:, 0 for a model you run yourself, or prices_from: on the provider)",
        )
    found = cat.lookup(pid, deployment.model)
    if found is None:
        return ResolvedPrice(
            None,
            "unknown",
            f"no price: and the price catalogue ({cat.version}) has no model {deployment.model!r} at {pid}",
        )
    price, model_id = found
    return ResolvedPrice(price, "catalogue", f"{cat.version}: {pid}/{model_id}")


_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".invalid", ".test")


def _private_host(base_url: str) -> bool:
    """Is `base_url`'s host one no public provider's API has: an IP address (loopback, private or
    not: public APIs are reached by name), `localhost`, a single-label name (a container or host on
    a private network) or a private-use suffix?"""
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    if not host or host == "localhost" or "." not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(_PRIVATE_SUFFIXES)
    return True


@dataclass(frozen=True, slots=True)
class PricedDeployment:
    """One configured deployment's resolved price, by its field path (for `architect config check`)."""

    path: str
    group: str
    provider: str
    model: str
    resolved: ResolvedPrice


def resolve_config(config: Config, base_urls: dict[str, str]) -> list[PricedDeployment]:
    """Every deployment of `config` with its resolved price (`base_urls`: the default base URL of each
    provider kind without one); raises ConfigError for a `prices_from` the catalogue does not know."""
    index = {p.name: i for i, p in enumerate(config.providers)}
    out = []
    for gi, g in enumerate(config.models):
        for di, d in enumerate(g.deployments):
            p = config.provider(d.provider)
            url = (p.base_url or base_urls.get(p.kind) or "").rstrip("/")
            resolved = resolve_price(d, p, url, where=f"providers[{index[p.name]}]")
            out.append(PricedDeployment(f"models[{gi}].deployments[{di}]", g.name, p.name, d.model, resolved))
    return out


def dearest(prices: Iterable[PriceConfig]) -> PriceConfig | None:
    """The componentwise highest of `prices` (None for none): what a budget holds for a call whose
    deployment's price is unknown."""
    prices = list(prices)
    if not prices:
        return None
    return PriceConfig(
        input_per_mtok=max(p.input_per_mtok for p in prices),
        output_per_mtok=max(p.output_per_mtok for p in prices),
        cached_input_per_mtok=max(_or_input(p.cached_input_per_mtok, p) for p in prices),
        cache_write_per_mtok=max(_or_input(p.cache_write_per_mtok, p) for p in prices),
    )


def _or_input(value: float | None, price: PriceConfig) -> float:
    """A cache price as `cost_usd` applies it: the input price when none is given."""
    return price.input_per_mtok if value is None else value


def budget_prices(resolved: Sequence[ResolvedPrice]) -> list[PriceConfig | None]:
    """The price budgets use for each of one group's deployments: its own when known, else the dearest
    known price in the group, else None (no price in the group is known: a budgeted call skips it)."""
    stand_in = dearest(r.price for r in resolved if r.price is not None)
    return [r.price if r.price is not None else stand_in for r in resolved]
