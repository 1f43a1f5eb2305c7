"""Extension points of the request pipeline, with null implementations.

    authenticate → key limits → cache lookup / coalescing → budget reservation
                 → route and attempt(s) → settle cost → ledger

The access domain provides `KeyLimits` and `Budgets`; the cache domain provides `ResponseCache`;
`Conversations` is the state an inbound API keeps between calls (the Responses API's stored responses,
`gateway.apis.responses_state`); the routing domain provides `Routes` (route settings, the `auto`
decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from architect.gateway.call import Call
from architect.gateway.providers.base import Usage
from architect.gateway.routing import Group
from architect.principal import Principal

__all__ = [
    "Authenticate",
    "Budgets",
    "CachedAnswer",
    "Conversations",
    "Hooks",
    "KeyLimits",
    "NullBudgets",
    "NullCache",
    "NullConversations",
    "NullKeyLimits",
    "NullRoutes",
    "ResponseCache",
    "Routes",
]


class Authenticate(Protocol):
    """Resolves a request's Authorization header (and the dashboard's cookies) to a Principal, or
    raises AuthenticationFailed (the access domain's `Authenticator`)."""

    async def authenticate(
        self, authorization: str | None, cookies: Mapping[str, str] | None = None, *, anthropic: bool = False
    ) -> Principal: ...


class KeyLimits(Protocol):
    async def admit(self, call: Call) -> None:
        """Raise RateLimited if the caller's key is over its rpm/tpm; else take the slot."""

    def release(self, call: Call, actual_tokens: int | None) -> None: ...


@dataclass(slots=True)
class CachedAnswer:
    body: bytes  # a complete answer in the call's API format (made the call's own by `InboundAPI.from_cache`)
    tier: str  # "hit-l1" | "hit-l2" | "hit-normalised" | "hit-semantic"
    cost_usd: float  # what the original call cost (the saving)
    latency_ms: float  # what the original call took (the latency saved)
    usage: Usage | None = None


class ResponseCache(Protocol):
    async def lookup(self, call: Call) -> CachedAnswer | None:
        """A cached answer, or None (and sets call.cache_tier to 'miss' or 'bypass'). May coalesce:
        wait for an identical in-flight request and return its answer."""

    async def store(self, call: Call, body: bytes) -> None:
        """Remember a successful answer (a complete JSON body) for this call."""

    def abandon(self, call: Call, error: BaseException | None) -> None:
        """The call ended without an answer to store (wake coalesced waiters)."""


class Budgets(Protocol):
    def may_apply(self, call: Call) -> bool:
        """Whether a budget may apply although none was loaded: the call's key is newer than the
        last load (a key minted with its budget a moment ago, e.g. for a task attempt)."""

    async def reserve(self, call: Call, worst_case_usd: float) -> None:
        """Raise BudgetExceeded if a budget cannot cover the worst case; else hold it."""

    async def settle(self, call: Call, actual_usd: float) -> None: ...


class Conversations(Protocol):
    async def resolve(self, call: Call) -> None:
        """Before routing: replace what the call refers to in kept state (a Responses call's
        `previous_response_id`) by its content; raise (NotFound, InvalidRequest) if it cannot."""

    def keep(self, call: Call) -> None:
        """After a successful call: keep what a later call may refer to (it may be written later)."""


class Routes(Protocol):
    def resolve(self, call: Call) -> None:
        """Before routing, for every call: its route settings from the request, its task, key and
        project and its group (sets `call.route` and `call.local_only`); raise InvalidRequest naming
        the field for a bad `x-architect-route` / `metadata.architect_route`."""

    def decide(self, call: Call, group: Group, candidates: list[Group], eligible: list[Group]) -> None:
        """For a call to the `auto` group `group` (its `candidates`, in config order): choose among the
        `eligible` ones (those with a deployment that can take the call; at least one). Sets `call.group` (the chosen one),
        `call.chain`, `call.routed_by`, `call.route_scores`, `call.explored`, `call.route_prefix`,
        `call.route_header`."""

    def settled(self, call: Call) -> None:
        """After an `auto` call ended (its cost known): count its spend (and exploration's extra)."""


class NullRoutes:
    """No route settings (privacy `any`); an auto group takes its first eligible candidate."""

    def resolve(self, call: Call) -> None:
        return None

    def decide(self, call: Call, group: Group, candidates: list[Group], eligible: list[Group]) -> None:
        call.routed_by = group.name
        call.group = eligible[0]
        call.chain = list(eligible)
        call.route_prefix = "auto: first candidate (no route policy)"

    def settled(self, call: Call) -> None:
        return None


class NullKeyLimits:
    async def admit(self, call: Call) -> None:
        return None

    def release(self, call: Call, actual_tokens: int | None) -> None:
        return None


class NullCache:
    async def lookup(self, call: Call) -> CachedAnswer | None:
        return None

    async def store(self, call: Call, body: bytes) -> None:
        return None

    def abandon(self, call: Call, error: BaseException | None) -> None:
        return None


class NullBudgets:
    def may_apply(self, call: Call) -> bool:
        return False

    async def reserve(self, call: Call, worst_case_usd: float) -> None:
        return None

    async def settle(self, call: Call, actual_usd: float) -> None:
        return None


class NullConversations:
    async def resolve(self, call: Call) -> None:
        return None

    def keep(self, call: Call) -> None:
        return None


@dataclass
class Hooks:
    key_limits: KeyLimits = field(default_factory=NullKeyLimits)
    cache: ResponseCache = field(default_factory=NullCache)
    budgets: Budgets = field(default_factory=NullBudgets)
    conversations: Conversations = field(default_factory=NullConversations)
    routes: Routes = field(default_factory=NullRoutes)
    budgets_active: bool = False  # skip worst-case estimation when no budget exists
