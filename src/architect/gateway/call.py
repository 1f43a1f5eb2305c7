"""The per-request state that flows through the pipeline, and request parsing/validation.

Parsing is deliberately lean: the body is parsed once with orjson, the fields of the OpenAI reference
are checked in one allocation-free pass (`validation`), and everything else passes through to the
provider untouched."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from architect.errors import InvalidRequest
from architect.gateway.apis.base import InboundAPI
from architect.gateway.apis.chat import CHAT, EMBEDDINGS
from architect.gateway.estimate import PromptSize
from architect.gateway.limits import Ticket
from architect.gateway.providers.base import Usage
from architect.gateway.routing import Deployment, Group
from architect.identifiers import check_identifier
from architect.principal import Principal
from architect.records import AttemptRecord

__all__ = [
    "CONTROL_KEYS",
    "Call",
    "StreamSettle",
    "parse_body",
    "parse_tags",
    "validate_chat",
    "validate_embeddings",
]

_TAG_KEYS = ("project", "feature", "task")
# per-request cache controls a client may send as `metadata` fields: read by the cache, not tags
CONTROL_KEYS = ("cache", "cache_ttl")

# Call ids: a random per-process prefix and a counter (unique across processes, no syscall per id).
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


StreamSettle = Callable[["bool | None", "Usage | None"], None]  # (healthy?, usage) of a streamed attempt


class Call:
    """One client request and what happened to it, as the pipeline, its hooks and the executor see it.

    Set by the hooks: `key_ticket` (per-key limits), `cache_tier`, `cache_plan`, `semantic_probe`
    (the response cache; `semantic_off` turns its semantic tier off for this call) and
    `budget_reservation` (budgets), `state` (`Conversations`: the Responses API's turn). Set by the executor: `attempts`, `route_reason`, `fallbacks`,
    `attempt_ttft_ms` (the current attempt's time to first token, set by its send) and, for a stream
    whose first bytes arrived, `settle_stream` (settles the deployment's slot and breaker when the
    stream ends)."""

    __slots__ = (
        "api",
        "attempt_ttft_ms",
        "attempts",
        "body",
        "budget_reservation",
        "cache_plan",
        "cache_tier",
        "call_id",
        "chain",
        "controls",
        "cost_usd",
        "decision",
        "deployment",
        "dropped",
        "endpoint",
        "error",
        "est_prompt_tokens",
        "explored",
        "fallbacks",
        "group",
        "headers",
        "http_status",
        "include_usage",
        "key_ticket",
        "local_only",
        "max_tokens",
        "model",
        "needs",
        "principal",
        "prompt_size",
        "raw_body",
        "request_id",
        "response_body",
        "route",
        "route_header",
        "route_prefix",
        "route_reason",
        "route_request",
        "route_scores",
        "routed_by",
        "saved_cost_usd",
        "saved_ms",
        "semantic_off",
        "semantic_probe",
        "settle_stream",
        "state",
        "status",
        "stream",
        "t0",
        "tags",
        "task_type",
        "tokens_estimated",
        "translated",
        "translation_dropped",
        "truncated",
        "ts",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        endpoint: str,
        body: dict[str, Any],
        raw_body: bytes,
        principal: Principal,
        tags: dict[str, str],
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        api: InboundAPI | None = None,
    ) -> None:
        """`tags`: the call's tags; the cache controls among them (`CONTROL_KEYS`) go to `controls`
        instead (they steer the cache and are not recorded as tags).
        `headers`: the request's headers, names in lower case (cache controls and tags read them).
        `api`: the inbound API the client speaks (by default the one named `endpoint`).

        `call_id` is the gateway's own id of the call, unique whatever the client sends: the ids of
        the objects a call answers with (`resp_...`, `msg_...`) derive from it. `request_id` is the
        client's `x-request-id` when it sent a valid one (a correlation value, which a client may
        reuse: the ledger keeps a reused one's later calls under a derived id, `ledger.LedgerWriter`),
        else the call id."""
        self.call_id = call_id = f"{_ID_PREFIX}{next(_ids):010x}"
        self.request_id = request_id or call_id
        self.t0 = time.perf_counter()
        self.ts = time.time()
        self.api: InboundAPI = api or (EMBEDDINGS if endpoint == "embeddings" else CHAT)
        self.endpoint = endpoint
        self.dropped: list[str] = []  # request fields the answering attempt's translation dropped
        self.translated: dict[str, Any] | None = None  # the body as a chat completion, when translated
        self.translation_dropped: list[str] = []  # what that translation dropped
        self.state: object | None = None  # what a stateful API keeps for this call (its own type)
        self.body = body
        self.raw_body = raw_body
        self.principal = principal
        self.controls = {k: tags[k] for k in CONTROL_KEYS if k in tags}
        self.tags = {k: v for k, v in tags.items() if k not in CONTROL_KEYS} if self.controls else tags
        self.headers: dict[str, str] = headers if headers is not None else {}
        self.model: str = body["model"]
        self.stream = bool(body.get("stream"))
        so = body.get("stream_options")
        self.include_usage = bool(so.get("include_usage")) if isinstance(so, dict) else False
        mt = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        self.max_tokens: int = int(mt) if mt else 0
        self.est_prompt_tokens: int | None = None  # prompt_size.estimate
        self.prompt_size: PromptSize | None = None
        self.group: Group | None = None
        self.deployment: Deployment | None = None
        self.attempts: list[AttemptRecord] = []
        self.attempt_ttft_ms: float | None = None
        self.settle_stream: StreamSettle | None = None
        self.fallbacks = 0
        self.usage: Usage | None = None
        self.tokens_estimated = False
        self.ttft_ms: float | None = None
        self.status = "ok"
        self.http_status = 200
        self.error: BaseException | None = None
        self.truncated = False
        self.cache_tier: str | None = None  # "miss", "bypass" or the tier that answered ("hit-l1", ...)
        self.cache_plan: object | None = None  # the cache's keys for this call (its own type)
        self.semantic_probe: object | None = None  # the semantic tier's query vector (its own type)
        self.semantic_off = False
        self.saved_cost_usd = 0.0
        self.saved_ms = 0.0
        self.route_reason: str | None = None
        self.key_ticket: Ticket | None = None
        self.budget_reservation: object | None = None  # the budgets' hold (their own type)
        self.response_body: bytes | None = None
        self.cost_usd = 0.0
        # the route (`gateway.constraints`, `hooks.Routes`): what the request needs of a deployment, its
        # privacy, its route settings as the request gave them ((where, text): the x-architect-route
        # header or metadata.architect_route) and as resolved (the routes hook's own type)
        self.needs: frozenset[str] = frozenset()
        self.local_only = False
        self.route_request: tuple[str, str] | None = None
        self.route: object | None = None
        # what an `auto` group decided: the auto group asked for, the chain of candidate groups it chose
        # (the chosen one first), P(acceptable) per candidate, whether it explored, the reason put
        # before each attempt's, the x-architect-route header and the hook's own state for settling
        self.routed_by: str | None = None
        self.chain: list[Group] | None = None
        self.route_scores: dict[str, float] | None = None
        self.explored = False
        self.route_prefix: str | None = None
        self.route_header: str | None = None
        self.decision: object | None = None
        self.task_type: str | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; refused (400) when it is empty, not UTF-8, not JSON or not an
    object."""
    if not raw:
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode()
        except UnicodeDecodeError as bad:
            raise InvalidRequest(
                f"the request body must be JSON encoded in UTF-8; byte {bad.start} (0x{raw[bad.start]:02x}) "
                "is not valid UTF-8"
            ) from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def validate_chat(body: dict[str, Any]) -> None:
    """Refuse a chat completion body that does not have the OpenAI reference shapes (see
    `architect.gateway.validation`); unknown fields pass through."""
    CHAT.validate(body)


def validate_embeddings(body: dict[str, Any]) -> None:
    """Refuse an embeddings body that does not have the OpenAI reference shapes."""
    EMBEDDINGS.validate(body)


def parse_tags(header: str | None, metadata: Any) -> dict[str, str]:
    """Tags from `x-architect-tags: k=v,k=v` and string values of the body's `metadata` object.
    Tag keys and values are identifiers (stored, filtered on): control characters are refused."""
    tags: dict[str, str] = {}
    if header:
        check_identifier(header, "x-architect-tags")
        for part in header.split(","):
            part = part.strip()
            if not part:
                continue
            k, sep, v = part.partition("=")
            k, v = k.strip(), v.strip()
            if not sep or not k or not v:
                raise InvalidRequest(
                    f"x-architect-tags: expected key=value pairs separated by commas, got {part!r}",
                    param="x-architect-tags",
                )
            if len(k) > 64 or len(v) > 200:
                raise InvalidRequest(
                    "x-architect-tags: keys are at most 64 characters, values 200", param="x-architect-tags"
                )
            tags[k] = v
    if isinstance(metadata, dict):
        for k, v in metadata.items():
            if isinstance(v, str | int | float) and not isinstance(v, bool) and isinstance(k, str):
                check_identifier(k, "metadata")
                if isinstance(v, str):
                    check_identifier(v, f"metadata.{k}")
                tags.setdefault(k[:64], str(v)[:200])
    return tags


def tag_columns(tags: dict[str, str]) -> dict[str, str | None]:
    return {k: tags.get(k) for k in _TAG_KEYS}
