"""Model groups, deployments and the strategies that order a group's deployments for a request.

A `Deployment` carries its live state (in-flight count, latency EWMAs, breaker and limiter); the
`Router` builds them from the configuration and answers "which deployments, in which order".
Deployments that are open-circuited, over their limits or too small for the request are skipped,
and the reason for the choice is returned for the ledger. Each deployment's price is resolved once,
when the router is built (`gateway.prices.resolve_price`), and held on it (`pricing`, `budget_price`)."""

from __future__ import annotations

import fnmatch
import math
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from architect import __version__
from architect.config import Config, DeploymentConfig, ModelGroupConfig, PriceConfig, ProviderConfig
from architect.gateway.limits import DeploymentLimiter
from architect.gateway.prices import ResolvedPrice, budget_prices, resolve_price
from architect.gateway.providers import Adapter, Transport, adapter_for
from architect.gateway.providers.http1 import HTTP1Transport
from architect.gateway.providers.simulated import SimulatedTransport
from architect.gateway.resilience import CircuitBreaker

__all__ = ["DEFAULT_BASE_URLS", "Deployment", "Group", "Route", "Router"]

_USER_AGENT = f"architect/{__version__}"  # a provider's `headers` may replace it

EWMA_ALPHA = 0.2
EWMA_DECAY_S = 60.0  # half-life of a latency estimate that gets no new samples
NOMINAL_OUTPUT_TOKENS = 256  # lowest-cost: the output estimate when the request sets no max_tokens
DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com/v1",
    "simulated": "http://simulated.invalid/v1",
}


@dataclass(eq=False)
class Deployment:
    name: str
    group: str
    provider: str
    model: str
    config: DeploymentConfig
    adapter: Adapter
    transport: Transport
    base_url: str
    headers: dict[str, str]
    simulated: bool
    breaker: CircuitBreaker
    limiter: DeploymentLimiter
    responses: bool = False  # the provider has the Responses API (`ProviderConfig.responses`)
    # where its price comes from (config, the catalogue, or unknown); set by `Router.build`
    pricing: ResolvedPrice = field(default_factory=lambda: ResolvedPrice(None, "unknown", "not resolved"))
    # what budgets hold and charge for its calls: its price, else the dearest known one of its group;
    # None when no price in the group is known (a budgeted call skips it)
    budget_price: PriceConfig | None = None
    in_flight: int = 0
    ewma_ttft_ms: float | None = None
    ewma_total_ms: float | None = None
    last_sample: float = 0.0

    def observe_latency(self, ttft_ms: float | None, total_ms: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        # the older the estimate, the less it weighs against a new sample (a stale EWMA from before a
        # deployment recovered is mostly replaced by the first sample after it is tried again)
        age = now - self.last_sample if self.ewma_total_ms is not None else 0.0
        keep = (1 - EWMA_ALPHA) * (0.5 ** (age / EWMA_DECAY_S) if age > 0 else 1.0)
        if ttft_ms is not None:
            prev = self.ewma_ttft_ms
            self.ewma_ttft_ms = ttft_ms if prev is None else keep * prev + (1 - keep) * ttft_ms
        prev_total = self.ewma_total_ms
        self.ewma_total_ms = total_ms if prev_total is None else keep * prev_total + (1 - keep) * total_ms
        self.last_sample = now

    def latency_score(self, now: float) -> float:
        """Expected latency (EWMA of time to first token + EWMA of total time). An estimate that gets no
        new samples halves every EWMA_DECAY_S, so a deployment that was slow (and so stopped being
        chosen) is eventually tried again and, if it recovered, wins back its traffic."""
        if self.ewma_total_ms is None:
            return 0.0
        base = (self.ewma_ttft_ms or 0.0) + self.ewma_total_ms
        age = now - self.last_sample
        return base * (0.5 ** (age / EWMA_DECAY_S)) if age > 0 else base

    @property
    def price(self) -> PriceConfig | None:
        """Its resolved price; None when unknown."""
        return self.pricing.price

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "provider": self.provider,
            "model": self.model,
            "simulated": self.simulated,
            **self.price_view(),
            "in_flight": self.in_flight,
            "ewma_ttft_ms": self.ewma_ttft_ms,
            "ewma_total_ms": self.ewma_total_ms,
            "breaker": self.breaker.snapshot(),
            "limits": self.limiter.snapshot(),
        }

    def price_view(self) -> dict[str, Any]:
        """Its price as the API shows it: USD per million tokens (None when unknown), the source and
        where it came from."""
        p = self.pricing.price
        return {
            "price": p.model_dump() if p is not None else None,
            "price_source": self.pricing.source,
            "price_detail": self.pricing.detail,
        }


@dataclass(eq=False)
class Group:
    name: str
    config: ModelGroupConfig
    deployments: list[Deployment]


@dataclass(slots=True)
class Route:
    deployment: Deployment
    reason: str


@dataclass
class Router:
    config: Config
    groups: dict[str, Group] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    aliases: dict[str, str] = field(default_factory=dict)  # exact alias -> group name
    patterns: list[tuple[Callable[[str], object], str]] = field(default_factory=list)  # (match, group)
    # some deployment declares it cannot take tools, JSON-schema formats or images (else a request's
    # needs are not worth reading: every deployment takes everything)
    limited: bool = False

    @classmethod
    def build(
        cls, config: Config, *, transports: dict[str, Transport] | None = None, previous: Router | None = None
    ) -> Router:
        """Build deployments from config. `transports` overrides per provider (tests); `previous` keeps
        the breaker, limiter, latency and in-flight state of deployments that still exist (config
        reload): such a deployment is the same object, updated in place, so calls in flight on it
        release their slots on the state the new router uses."""
        router = cls(config)
        given = dict(transports or {})
        sims: dict[str, dict[str, Any]] = {}
        for g in config.models:
            for d in g.deployments:
                if config.provider(d.provider).kind == "simulated":
                    sims.setdefault(d.provider, {})[d.model] = d.simulate
        for p in config.providers:
            if p.name in given:
                router.transports[p.name] = given[p.name]
            elif previous is not None and p.name in previous.transports and p.kind != "simulated":
                router.transports[p.name] = previous.transports[p.name]
            elif p.kind == "simulated":
                router.transports[p.name] = SimulatedTransport(sims.get(p.name, {}))
            else:
                router.transports[p.name] = HTTP1Transport(max_connections=p.max_connections)
        old = {d.name: d for grp in (previous.groups.values() if previous else ()) for d in grp.deployments}
        taken: set[str] = set()
        index = {p.name: i for i, p in enumerate(config.providers)}
        for g in config.models:
            deps = []
            for d in g.deployments:
                p = config.provider(d.provider)
                dep = router._deployment(g, d, p, old, taken)
                dep.pricing = resolve_price(d, p, dep.base_url, where=f"providers[{index[p.name]}]")
                taken.add(dep.name)
                deps.append(dep)
            for dep, bp in zip(deps, budget_prices([x.pricing for x in deps]), strict=True):
                dep.budget_price = bp
            router.groups[g.name] = Group(g.name, g, deps)
            router.limited |= any(not (d.tools and d.json_schema and d.images) for d in g.deployments)
            for a in g.aliases:
                if "*" in a or "?" in a:
                    router.patterns.append((re.compile(fnmatch.translate(a)).match, g.name))
                else:
                    router.aliases[a] = g.name
        return router

    def unpriced(self) -> list[Deployment]:
        """The deployments whose price is unknown."""
        return [d for d in self.deployments() if d.price is None]

    def baseline_price(self, group: str | None) -> PriceConfig | None:
        """The price savings are measured against: the first known price among `group`'s deployments."""
        g = self.groups.get(group) if group else None
        return next((d.price for d in g.deployments if d.price is not None), None) if g else None

    def _deployment(
        self,
        g: ModelGroupConfig,
        d: DeploymentConfig,
        p: ProviderConfig,
        old: dict[str, Deployment],
        taken: set[str],
    ) -> Deployment:
        name = d.name_in(g.name)
        if name in taken:  # two unnamed deployments of the same model on one provider
            n = 2
            while f"{name}#{n}" in taken:
                n += 1
            name = f"{name}#{n}"
        adapter = adapter_for(p.kind)
        headers = {
            "user-agent": _USER_AGENT,
            **adapter.auth_headers(p.api_key),
            **{k.lower(): v for k, v in p.headers.items()},
        }
        base_url = (p.base_url or DEFAULT_BASE_URLS.get(p.kind) or "").rstrip("/")
        prev = old.get(name)
        if prev is not None:
            prev.group, prev.provider, prev.model, prev.config = g.name, p.name, d.model, d
            prev.adapter, prev.transport, prev.base_url, prev.headers = (
                adapter,
                self.transports[p.name],
                base_url,
                headers,
            )
            prev.simulated = p.kind == "simulated"
            prev.responses = p.responses
            prev.breaker.reconfigured(d.breaker)
            prev.limiter.reconfigured(d.limits)
            return prev
        return Deployment(
            name=name,
            group=g.name,
            provider=p.name,
            model=d.model,
            config=d,
            adapter=adapter,
            transport=self.transports[p.name],
            base_url=base_url,
            headers=headers,
            simulated=p.kind == "simulated",
            breaker=CircuitBreaker(name, d.breaker),
            limiter=DeploymentLimiter(d.limits),
            responses=p.responses,
        )

    def group(self, name: str) -> Group | None:
        """The group named `name`, or the one it is an alias of: an exact alias, else the first
        pattern (in config order) that matches it."""
        g = self.groups.get(name)
        if g is not None:
            return g
        target = self.aliases.get(name)
        if target is None:
            target = next((t for match, t in self.patterns if match(name)), None)
        return self.groups.get(target) if target is not None else None

    def deployments(self) -> Iterable[Deployment]:
        for g in self.groups.values():
            yield from g.deployments

    def order(
        self,
        group: Group,
        est_prompt_tokens: int,
        max_tokens: int,
        *,
        fit_tokens: int | None = None,
        deployments: list[Deployment] | None = None,
    ) -> list[Route]:
        """The group's deployments whose context window fits the request, best first by the group's
        strategy, each with the reason it is at its place. (Breakers and limits are checked by the
        executor when it picks, so a deployment that frees up meanwhile is still used.) A deployment is
        left out when `fit_tokens` (the prompt's low estimate; default `est_prompt_tokens`) plus
        `max_tokens` exceeds its window. `deployments`: the ones of the group to consider (those that
        pass the call's hard constraints, `gateway.constraints`); default all."""
        usable: list[Deployment] = []
        need = (est_prompt_tokens if fit_tokens is None else fit_tokens) + max_tokens
        for d in group.deployments if deployments is None else deployments:
            window = d.config.context_window
            if window is not None and need > window:
                continue
            usable.append(d)
        if len(usable) <= 1:
            return [Route(d, "only deployment") for d in usable]
        strategy = group.config.strategy
        rnd = self.rng.random
        if strategy == "least-busy":
            ranked = sorted(usable, key=lambda d: (d.in_flight, rnd()))
        elif strategy == "lowest-latency":
            now = self.clock()
            ranked = sorted(usable, key=lambda d: (d.latency_score(now), rnd()))
        elif strategy == "lowest-cost":
            out = max_tokens or NOMINAL_OUTPUT_TOKENS

            def cost(d: Deployment) -> float:
                pr = d.price
                if pr is None:  # unknown: never taken for the cheapest, tried after every known price
                    return math.inf
                return est_prompt_tokens * pr.input_per_mtok + out * pr.output_per_mtok

            ranked = sorted(usable, key=lambda d: (cost(d), rnd()))
            return [
                Route(
                    d,
                    (strategy if i == 0 else f"{strategy} (next)")
                    + ("; price unknown" if d.price is None else ""),
                )
                for i, d in enumerate(ranked)
            ]
        else:
            # weighted random order without replacement (Efraimidis-Spirakis): key u^(1/w), largest first
            ranked = sorted(usable, key=lambda d: math.log(1.0 - rnd()) / d.config.weight, reverse=True)
        return [Route(d, strategy if i == 0 else f"{strategy} (next)") for i, d in enumerate(ranked)]

    async def aclose(self) -> None:
        for t in self.transports.values():
            await t.aclose()
