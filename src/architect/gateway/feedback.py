"""`POST /v1/feedback`: a client judges one of its calls, and an `auto` route learns from it.

    {"request_id": "...", "score": 0.8}          # 0 (not acceptable) .. 1 (acceptable)
    {"request_id": "...", "passed": true}        # the same as score 1 / 0
    {"request_id": "...", "passed": false, "comment": "wrong answer"}   # comment: up to 2,000 characters

Exactly one of `score` and `passed`. The call is looked up by its request id (the `x-request-id` of its
response) among the calls of the caller's key (the admin's: any call): another key's call is a 404,
as a missing one is. The ledger is flushed first, so a call just answered is found. A request id the
client reused names the newest of its calls with the key (the ledger records the later ones as
`<id>:<16 hex digits>`); the answer's `request_id` is the id of the call judged. A second judgement of
a call replaces the first. The answer: `{"request_id", "outcome", "model_group", "task_type"}`.
Errors are in the OpenAI format, naming the field."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from architect.errors import InvalidRequest, NotFound
from architect.gateway.ledger import LedgerWriter
from architect.principal import Principal
from architect.store.routing import RoutingRepo

__all__ = ["MAX_COMMENT", "Feedback", "parse_feedback"]

MAX_COMMENT = 2000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_FIELDS = ("request_id", "score", "passed", "comment")


def parse_feedback(body: Any) -> tuple[str, float, str | None]:
    """(request id, outcome 0..1, comment) of a feedback body; InvalidRequest naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object with request_id and score or passed")
    for k in body:
        if k not in _FIELDS:
            raise InvalidRequest(f"{k}: unknown field (known: {', '.join(_FIELDS)})", param=str(k))
    rid = body.get("request_id")
    if not isinstance(rid, str) or not _REQUEST_ID.match(rid):
        raise InvalidRequest(
            "request_id: required, the x-request-id of the call (1-64 letters, digits, '.', '_', ':', '-')",
            param="request_id",
        )
    score, passed = body.get("score"), body.get("passed")
    if (score is None) == (passed is None):
        raise InvalidRequest("score: give exactly one of score (0..1) and passed (true/false)", param="score")
    if passed is not None:
        if not isinstance(passed, bool):
            raise InvalidRequest("passed: must be true or false", param="passed")
        outcome = 1.0 if passed else 0.0
    else:
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise InvalidRequest("score: must be a number from 0 to 1", param="score")
        if not 0.0 <= score <= 1.0:
            raise InvalidRequest(f"score: must be from 0 to 1, got {score}", param="score")
        outcome = float(score)
    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidRequest("comment: must be a string", param="comment")
        if len(comment) > MAX_COMMENT:
            raise InvalidRequest(
                f"comment: at most {MAX_COMMENT} characters, got {len(comment)}", param="comment"
            )
    return rid, outcome, comment


class Feedback:
    """Records feedback on calls (`store.routing`), after flushing the ledger writer."""

    def __init__(self, ledger: LedgerWriter, repo: Callable[[], RoutingRepo]) -> None:
        self._ledger = ledger
        self._repo = repo

    async def record(self, body: Any, principal: Principal) -> bytes:
        rid, outcome, comment = parse_feedback(body)
        key_id = None if principal.is_admin else principal.key_id
        repo = self._repo()
        await asyncio.to_thread(self._ledger.flush)
        row = await asyncio.to_thread(repo.record_feedback, rid, key_id, outcome, comment)
        if row is None:
            raise NotFound(
                f"request_id: no call {rid!r} made with this key", param="request_id", code="call_not_found"
            )
        return orjson.dumps(
            {
                "request_id": row["request_id"],
                "outcome": outcome,
                "model_group": row["model_group"],
                "task_type": row["task_type"],
            }
        )
