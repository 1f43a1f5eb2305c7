"""What the ledger records: one `CallRecord` per client request, with its upstream attempts
(`AttemptRecord`) in order. The pipeline makes them when a call ends, the ledger writer queues them,
its observers (rollups, Prometheus counters) read them and the store turns them into rows of the
`calls` table (`architect.store.ledger`). A leaf module: the store and the gateway both use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import msgspec
import orjson

__all__ = ["CALL_FIELDS", "AttemptRecord", "CallRecord", "encode_attempts"]


class AttemptRecord(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One try of one deployment. `status` is None while the attempt runs; the pipeline records an
    attempt that never ended (the client left) as `cancelled`. Fields left None are not stored (a
    reader sees the defaults: None, 0 tokens, 0.0 cost). A msgspec Struct: the executor makes one per
    try on the event loop and the ledger writer encodes them, both in C."""

    attempt: int
    ts: float
    model_group: str
    deployment: str
    provider: str
    route_reason: str | None = None
    status: str | None = None
    http_status: int | None = None
    error_kind: str | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    prompt_tokens: int | None = None  # set on the attempt that answered
    completion_tokens: int | None = None
    cost_usd: float | None = None

    def stored(self) -> dict[str, Any]:
        """The attempt as its `attempt_log` entry holds it: the fields that are set (values as they
        are, not converted)."""
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not None}


def encode_attempts(attempts: list[AttemptRecord]) -> str:
    """A call's `attempt_log` as stored: its attempts' set fields, as a JSON array."""
    return _ENCODER.encode(attempts).decode()


@dataclass(slots=True, kw_only=True)
class CallRecord:
    """One call as the ledger holds it (the columns of `calls`, `tags` and `attempt_log` as objects
    that the store writes as JSON)."""

    request_id: str
    ts: float
    endpoint: str
    model: str
    status: str = "ok"
    http_status: int = 200
    total_ms: float = 0.0
    key_id: str | None = None
    project: str | None = None
    feature: str | None = None
    task: str | None = None
    tags: Mapping[str, str] | None = None
    model_group: str | None = None
    deployment: str | None = None
    provider: str | None = None
    simulated: bool = False
    stream: bool = False
    attempts: int = 0
    fallbacks: int = 0
    error_kind: str | None = None
    error_message: str | None = None
    truncated: bool = False
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0
    baseline_cost_usd: float | None = None
    cache: str | None = None
    saved_cost_usd: float = 0.0
    saved_ms: float = 0.0
    route_reason: str | None = None
    body_hash: str | None = None
    request_body: str | None = None
    response_body: str | None = None
    attempt_log: list[AttemptRecord] | None = None
    # where `cost_usd` came from: "config", "catalogue", "unknown" (then 0 is not a price), "cache" (a
    # cache hit: it cost nothing); None when no deployment answered
    cost_source: str | None = None
    dropped: str | None = None  # request fields a translation dropped, comma-separated
    # an `auto` route's decision: the auto group asked for (`model_group` is the candidate that served
    # it), P(acceptable) per candidate (stored as JSON), whether the choice was an exploration; the
    # task type (tag `type`, else `role`, else "unknown") is set on every call
    routed_by: str | None = None
    route_scores: Mapping[str, float] | None = None
    task_type: str | None = None
    explored: bool = False

    @property
    def cache_hit(self) -> bool:
        """Answered from the cache (`cache` is one of the `hit-*` tiers)."""
        c = self.cache
        return c is not None and c.startswith("hit")

    def as_dict(self) -> dict[str, Any]:
        """The record with its attempts as dicts (for a quarantine file or an in-memory store)."""
        out = {f: getattr(self, f) for f in CALL_FIELDS}
        if self.attempt_log is not None:
            out["attempt_log"] = [a.stored() for a in self.attempt_log]
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CallRecord:
        """A record from a `calls` row given as a mapping (loading rows back, tests, benchmarks):
        its columns are taken, a missing one or a null one that has a default gets it, attempts given as
        dicts become `AttemptRecord`s and tags given as JSON text a dict."""
        data = {
            k: v for k, v in row.items() if k in _CALL_FIELD_SET and (v is not None or k not in _DEFAULTED)
        }
        for k, v in _REQUIRED.items():
            data.setdefault(k, v)
        log = data.get("attempt_log")
        if isinstance(log, str):
            log = orjson.loads(log)
        if log is not None:
            data["attempt_log"] = [a if isinstance(a, AttemptRecord) else AttemptRecord(**a) for a in log]
        for k in ("tags", "route_scores"):
            if isinstance(data.get(k), str):
                data[k] = orjson.loads(data[k])
        return cls(**data)


CALL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))
_ENCODER = msgspec.json.Encoder()
_CALL_FIELD_SET = frozenset(CALL_FIELDS)
# fields whose default is a value (a null in a row means that value)
_DEFAULTED = frozenset(
    f.name for f in fields(CallRecord) if f.default is not None and f.default is not MISSING
)
_REQUIRED: dict[str, Any] = {
    "request_id": "",
    "ts": 0.0,
    "endpoint": "",
    "model": "",
}  # a partial row may lack
