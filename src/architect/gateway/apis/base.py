"""The inbound APIs: what a client speaks (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`,
`/v1/embeddings`), as translations in front of the one pipeline.

An `InboundAPI` checks a request at the edge, and, per attempt, turns the call into the request a
deployment takes and the deployment's answer (complete or streamed) back into the client's format.
The choice is made per attempt from (inbound API, deployment kind): a deployment that speaks the
inbound API natively gets the client's request as it is (model name replaced); any other gets it
translated to an OpenAI chat completion, which its adapter (`gateway/providers`) translates on. So a
model group that mixes deployment kinds, and its fallbacks, serve every inbound API.

A field a translation cannot carry is either dropped and recorded (`Call.dropped`: the response's
`x-architect-dropped` header and the ledger row's `dropped` column) or refused with a 400 naming it.
The tables are in docs/agents.md and in each API's module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson

from architect.errors import GatewayError, ProviderError, UpstreamRefused
from architect.gateway.providers.base import UNSUPPORTED, ChatResult, StreamTranslator

if TYPE_CHECKING:
    from architect.gateway.call import Call
    from architect.gateway.routing import Deployment

__all__ = ["UNSUPPORTED", "HTTPParts", "InboundAPI", "cached_object", "derived_base", "refused"]

HTTPParts = tuple[str, bytes, dict[str, str]]  # (path under the deployment's base URL, body, headers)


class InboundAPI(Protocol):
    """One API a client speaks. `name` is the ledger's `endpoint`. Implementations hold no per-call
    state: what a call needs across attempts lives on its `Call`."""

    name: str
    streams: bool  # whether requests may ask for a stream
    stateful: bool  # whether a call may refer to, or be kept as, a stored conversation (hooks.Conversations)

    def validate(self, body: dict[str, Any]) -> None:
        """Refuse (InvalidRequest naming the field) a body whose fields this API acts on are not of
        the API's shapes; anything else passes through."""

    def request(self, call: Call, d: Deployment, stream: bool) -> HTTPParts:
        """The request to send to `d` for this attempt; records on `call.dropped` what it drops and
        raises a refusal (400) for what `d` cannot take."""

    def response(self, call: Call, d: Deployment, data: bytes) -> ChatResult:
        """`d`'s complete answer in the client's format, with its usage."""

    def stream_translator(self, call: Call, d: Deployment) -> StreamTranslator:
        """Turns `d`'s streamed bytes into the client's stream events."""

    def error_response(self, exc: GatewayError) -> tuple[int, bytes]:
        """(status, body) of an error in this API's format."""

    def stream_error(self, message: str, kind: str, translator: StreamTranslator) -> bytes:
        """The event that ends a stream that broke after its first byte (never a clean end);
        `translator` is the stream's (an API whose events are numbered continues its numbering)."""

    def from_cache(self, call: Call, body: bytes) -> bytes:
        """Another call's complete answer (a cache hit, or an identical call's coalesced answer) made
        this call's own, before it is returned or replayed: the ids the API gives per answer are this
        call's, and what the API keeps of an answer is left on the call as for an answer of its own
        (the Responses API's stored response). Done once per hit, on the hot path: a small edit."""

    def replay(self, call: Call, body: bytes) -> list[bytes]:
        """The stream events of a complete (cached) answer, as `from_cache` made it."""

    def assemble(self, stream: bytes) -> bytes | None:
        """The complete answer a finished stream made (to cache it); None if it cannot be rebuilt."""


def refused(message: str, param: str) -> ProviderError:
    """A request field the chosen deployment cannot take: a 400 naming it unless another deployment of
    the group or its fallbacks can; not a health issue of the deployment."""
    return UpstreamRefused(message, param=param, code=UNSUPPORTED)


_HEX = "0123456789abcdef"


def derived_base(old: object, new: str, prefix: str) -> tuple[str, str] | None:
    """For another answer's id `old` and this call's `new` (both `prefix` + a base): (old base, new
    base) when `old` is of the form the gateway makes from a call id (lower-case hex of the new base's
    length), so that the ids the gateway made from it (items, tool calls) are to be made from the new
    one; None when it is not (a provider's own id, whose items' ids are the provider's: kept)."""
    if not isinstance(old, str) or not old.startswith(prefix) or old == new:
        return None
    old_base, new_base = old[len(prefix) :], new.removeprefix(prefix)
    if len(old_base) != len(new_base) or old_base.strip(_HEX):
        return None
    return old_base, new_base


def cached_object(body: bytes) -> dict[str, Any] | None:
    """A cached (or coalesced) answer's JSON object, for `InboundAPI.from_cache` to make it the new
    call's own; None if the body is not one (never: the cache holds what an API answered)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
