"""Cache warming: replay the most frequent deterministic chat requests recorded in the ledger through
the normal pipeline (as the key that made them, so the answers land in that key's namespace, and
within that key's limits and budgets).

It needs the request bodies in the ledger (`ledger.bodies: full`); redacted bodies are skipped
because replaying them would ask a different question."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from architect.cache.keys import is_deterministic
from architect.errors import GatewayError
from architect.gateway.call import Call, parse_tags
from architect.principal import Principal
from architect.store.ledger import LedgerRepo

__all__ = ["Candidate", "WarmReport", "candidates", "warm"]

_COLUMNS = ["request_id", "key_id", "tags", "model", "body_hash", "request_body", "ts"]


@dataclass
class Candidate:
    key_id: str | None
    body: dict[str, Any]
    raw: bytes
    tags: dict[str, str]
    count: int


@dataclass
class WarmReport:
    scanned: int = 0
    without_body: int = 0
    redacted: int = 0
    non_deterministic: int = 0
    candidates: int = 0
    results: dict[str, int] = field(default_factory=dict)  # cache outcome -> count
    errors: list[str] = field(default_factory=list)
    cost_usd: float = 0.0

    @property
    def bodies_missing(self) -> bool:
        return self.scanned > 0 and self.without_body == self.scanned


def candidates(rows: list[dict[str, Any]], top: int, report: WarmReport) -> list[Candidate]:
    groups: dict[tuple[str | None, str], Candidate] = {}
    for r in rows:
        report.scanned += 1
        text = r.get("request_body")
        if not text:
            report.without_body += 1
            continue
        raw = text.encode("utf-8")
        if r.get("body_hash") and hashlib.sha256(raw).hexdigest() != r["body_hash"]:
            report.redacted += 1
            continue
        gk = (r.get("key_id"), hashlib.sha256(raw).hexdigest())
        if gk in groups:
            groups[gk].count += 1
            continue
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(body, dict) or not is_deterministic(body):
            report.non_deterministic += 1
            continue
        stored = orjson.loads(r["tags"]) if r.get("tags") else {}
        tags = {**parse_tags(None, body.pop("metadata", None)), **stored}
        body["stream"] = False
        body.pop("stream_options", None)
        groups[gk] = Candidate(r.get("key_id"), body, raw, tags, 1)
    best = sorted(groups.values(), key=lambda c: -c.count)[:top]
    report.candidates = len(best)
    return best


async def warm(
    ledger: LedgerRepo,
    chat: Callable[[Call], Awaitable[bytes]],
    principal_of: Callable[[str | None], Principal | None],
    *,
    top: int,
    since: float,
) -> WarmReport:
    """Replay the top requests of `ledger` through `chat` (a started gateway's `Pipeline.chat`), each
    as the principal its key id stands for now (`principal_of`; None: skipped)."""
    import asyncio

    report = WarmReport()
    rows = await asyncio.to_thread(
        ledger.calls_between,
        since,
        time.time() + 1,
        columns=_COLUMNS,
        where={"endpoint": "chat", "status": "ok"},
    )
    for cand in candidates(rows, top, report):
        principal = principal_of(cand.key_id)
        if principal is None:
            report.results["skipped-key-gone"] = report.results.get("skipped-key-gone", 0) + 1
            continue
        call = Call("chat", cand.body, cand.raw, principal, {**cand.tags, "cache_warm": "1"})
        try:
            await chat(call)
            outcome = call.cache_tier or "bypass"
            report.cost_usd += call.cost_usd
        except GatewayError as exc:
            outcome = "error"
            report.errors.append(f"{cand.body.get('model')}: {exc.message}")
        report.results[outcome] = report.results.get(outcome, 0) + 1
    return report
