"""Model groups, deployments and the strategies that order a group's deployments for a request.

A `Deployment` carries its live state (in-flight count, latency EWMAs, breaker and limiter); the
`Router` builds them from the configuration and answers "which deployments, in which order".
Deployments that are open-circuited, over their limits or too small for the request are skipped,
and the reason for the choice is returned for the ledger."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from architect.config import Config, DeploymentConfig, ModelGroupConfig, ProviderConfig
from architect.gateway.limits import DeploymentLimiter
from architect.gateway.providers import Adapter, Transport, adapter_for
from architect.gateway.providers.simulated import SimulatedTransport
from architect.gateway.providers.transport import AiohttpTransport
from architect.gateway.resilience import CircuitBreaker

__all__ = ["Deployment", "Group", "Route", "Router"]

EWMA_ALPHA = 0.2
EWMA_DECAY_S = 60.0  # after this long without a sample a deployment's latency estimate fades back


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
    in_flight: int = 0
    ewma_ttft_ms: float | None = None
    ewma_total_ms: float | None = None
    last_sample: float = 0.0

    def observe_latency(self, ttft_ms: float | None, total_ms: float) -> None:
        a = EWMA_ALPHA
        if ttft_ms is not None:
            self.ewma_ttft_ms = (
                ttft_ms if self.ewma_ttft_ms is None else (1 - a) * self.ewma_ttft_ms + a * ttft_ms
            )
        self.ewma_total_ms = (
            total_ms if self.ewma_total_ms is None else (1 - a) * self.ewma_total_ms + a * total_ms
        )
        self.last_sample = time.monotonic()

    def latency_score(self, now: float) -> float:
        """Expected latency; an estimate decays toward 0 when stale so a recovered deployment is retried."""
        if self.ewma_total_ms is None:
            return 0.0
        base = (self.ewma_ttft_ms or 0.0) + self.ewma_total_ms
        age = now - self.last_sample
        return base * (0.5 ** (age / EWMA_DECAY_S)) if age > 0 else base

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "provider": self.provider,
            "model": self.model,
            "simulated": self.simulated,
            "in_flight": self.in_flight,
            "ewma_ttft_ms": self.ewma_ttft_ms,
            "ewma_total_ms": self.ewma_total_ms,
            "breaker": self.breaker.snapshot(),
            "limits": self.limiter.snapshot(),
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

    @classmethod
    def build(
        cls, config: Config, *, transports: dict[str, Transport] | None = None, previous: Router | None = None
    ) -> Router:
        """Build deployments from config. `transports` overrides per provider (tests); `previous` keeps
        the breaker, limiter and latency state of deployments that still exist (config reload)."""
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
                router.transports[p.name] = AiohttpTransport(max_connections=p.max_connections)
        old = {d.name: d for grp in (previous.groups.values() if previous else ()) for d in grp.deployments}
        for g in config.models:
            deps = [router._deployment(g, d, config.provider(d.provider), old) for d in g.deployments]
            router.groups[g.name] = Group(g.name, g, deps)
        return router

    def _deployment(
        self, g: ModelGroupConfig, d: DeploymentConfig, p: ProviderConfig, old: dict[str, Deployment]
    ) -> Deployment:
        name = d.name or f"{g.name}/{p.name}/{d.model}"
        adapter = adapter_for(p.kind)
        headers = {**adapter.auth_headers(p.api_key), **{k.lower(): v for k, v in p.headers.items()}}
        base_url = (p.base_url or "http://simulated.invalid/v1").rstrip("/")
        prev = old.get(name)
        dep = Deployment(
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
            breaker=prev.breaker.reconfigured(d.breaker) if prev else CircuitBreaker(name, d.breaker),
            limiter=prev.limiter.reconfigured(d.limits) if prev else DeploymentLimiter(d.limits),
        )
        if prev is not None:
            dep.ewma_ttft_ms, dep.ewma_total_ms, dep.last_sample = (
                prev.ewma_ttft_ms,
                prev.ewma_total_ms,
                prev.last_sample,
            )
            dep.in_flight = prev.in_flight
        return dep

    def group(self, name: str) -> Group | None:
        return self.groups.get(name)

    def deployments(self) -> Iterable[Deployment]:
        for g in self.groups.values():
            yield from g.deployments

    def order(self, group: Group, est_prompt_tokens: int, max_tokens: int) -> list[Route]:
        """The group's usable deployments, best first, each with the reason it was chosen/skipped-to."""
        now = time.monotonic()
        usable: list[Deployment] = []
        for d in group.deployments:
            if (
                d.config.context_window is not None
                and est_prompt_tokens + max_tokens > d.config.context_window
            ):
                continue
            usable.append(d)
        if not usable:
            return []
        strategy = group.config.strategy
        if len(usable) == 1:
            return [Route(usable[0], "only deployment")]
        if strategy == "least-busy":
            ranked = sorted(usable, key=lambda d: (d.in_flight, self.rng.random()))
            reason = "least-busy"
        elif strategy == "lowest-latency":
            ranked = sorted(usable, key=lambda d: (d.latency_score(now), self.rng.random()))
            reason = "lowest-latency"
        elif strategy == "lowest-cost":

            def cost(d: Deployment) -> float:
                pr = d.config.price
                return est_prompt_tokens * pr.input_per_mtok + max_tokens * pr.output_per_mtok

            ranked = sorted(usable, key=lambda d: (cost(d), self.rng.random()))
            reason = "lowest-cost"
        else:
            ranked = []
            pool = list(usable)
            while pool:
                pick = self.rng.choices(pool, weights=[d.config.weight for d in pool])[0]
                ranked.append(pick)
                pool.remove(pick)
            reason = "weighted"
        return [Route(d, reason if i == 0 else f"{reason} (next)") for i, d in enumerate(ranked)]

    async def aclose(self) -> None:
        for t in self.transports.values():
            await t.aclose()
