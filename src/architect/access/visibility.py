"""What a principal may see, in one place: every read of the API and every event stream asks these
functions, so a virtual key's view has one definition.

The admin key and open mode (anonymous on loopback) see everything. A virtual key sees:
- projects it is granted (`Principal.projects`, None = every project) and their features and tasks;
- model groups it may use (`Principal.models`, None = every group) and their deployments;
- its own calls, and budgets of its own key or of a project it is granted;
- no figures that add up other tenants' traffic (request counts, latencies, in-flight and queue
  depths): `fleet_figures` is False for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from architect.events import Event
from architect.principal import Principal

if TYPE_CHECKING:
    from architect.gateway.resilience import CircuitBreaker
    from architect.gateway.routing import Deployment, Router

__all__ = [
    "alert_visible",
    "breaker_view",
    "budget_visible",
    "deployment_view",
    "event_view",
    "fleet_figures",
    "group_usable",
    "project_granted",
    "usable_deployments",
    "visible",
]


def fleet_figures(p: Principal) -> bool:
    """May `p` see figures that aggregate every tenant's traffic?"""
    return p.is_admin


def project_granted(p: Principal, project: str | None) -> bool:
    """May `p` tag calls with, and see, `project`? (None, "no project", is nobody's to see.)"""
    if p.is_admin or p.projects is None:
        return True
    return project is not None and project in p.projects


def group_usable(p: Principal, group: str | None) -> bool:
    if p.is_admin or p.models is None:
        return True
    return group is not None and group in p.models


def budget_visible(p: Principal, scope: str, target: str) -> bool:
    if p.is_admin:
        return True
    if scope == "key":
        return p.key_id is not None and target == p.key_id
    if scope == "project":
        return project_granted(p, target)
    return False


def alert_visible(p: Principal, alert: Mapping[str, Any]) -> bool:
    """A virtual key sees budget alerts about budgets it may see; the other kinds (error rate, latency,
    breakers) are computed from everyone's traffic and are the admin's."""
    if p.is_admin:
        return True
    target = alert.get("target")
    if alert.get("kind") != "budget" or not isinstance(target, str):
        return False
    scope, _, rest = target.partition(":")  # "scope:target:period"; a project name may hold ":"
    name, sep, _period = rest.rpartition(":")
    return bool(sep) and budget_visible(p, scope, name)


def visible(p: Principal, event: Event) -> bool:
    """Is `event` of the bus for `p`? Topics not known here are the admin's only."""
    if p.is_admin:
        return True
    data = event.data
    if event.topic == "call":
        return p.key_id is not None and data.get("key_id") == p.key_id
    if event.topic == "task":
        return project_granted(p, data.get("project"))
    if event.topic == "breaker":
        return group_usable(p, data.get("group"))
    if event.topic == "alert":
        return alert_visible(p, data)
    return False


_BREAKER_EVENT_FIELDS = ("deployment", "group", "ts", "from", "to")


def event_view(p: Principal, event: Event) -> dict[str, Any]:
    """The data of a visible event as `p` is shown it: a breaker transition's reason (failure counts
    of everyone's calls) is left out for a virtual key."""
    if event.topic == "breaker" and not fleet_figures(p):
        return {k: event.data[k] for k in _BREAKER_EVENT_FIELDS if k in event.data}
    return event.data


def usable_deployments(router: Router, p: Principal) -> list[Deployment]:
    """The deployments of the model groups `p` may use (every deployment for the admin)."""
    return [d for d in router.deployments() if group_usable(p, d.group)]


def breaker_view(breaker: CircuitBreaker) -> dict[str, Any]:
    """A breaker as a virtual key sees it: state, seconds until a probe, thresholds and transitions,
    without window counts, probes in flight or the transitions' reasons (all from everyone's calls)."""
    return {
        "state": breaker.state,
        "retry_in_s": round(breaker.retry_in(), 3),
        "config": breaker.config.model_dump(),
        "history": [{k: h[k] for k in ("ts", "from", "to")} for h in breaker.history],
    }


def deployment_view(d: Deployment) -> dict[str, Any]:
    """A deployment as a virtual key sees it: what it is, its breaker and its configured limits, without
    live figures (in flight, latency averages, limit usage)."""
    limits = d.limiter.snapshot()
    return {
        "name": d.name,
        "group": d.group,
        "provider": d.provider,
        "model": d.model,
        "simulated": d.simulated,
        **d.price_view(),
        "breaker": breaker_view(d.breaker),
        "limits": {k: limits[k] for k in ("max_concurrency", "rpm", "tpm")},
    }
