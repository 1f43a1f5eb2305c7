"""Stored Responses API answers: `previous_response_id`, `GET` and `DELETE /v1/responses/{id}`.

`ResponseStore` is the pipeline's `Conversations` hook (`gateway.hooks`) for `/v1/responses` calls:
- `resolve`, before routing: a call with `previous_response_id` gets the stored conversation (the
  previous call's input items and its output items) put in front of its own `input`, so every
  deployment, translated or native, sees the whole conversation; the id the client gave is echoed in
  the response. An id this key did not store (another key's, expired, deleted, never) is a 404, the
  same for each; with `responses.store` off it is a 400.
- `keep`, after a successful call whose request did not say `store: false`: the call's input items
  (the expanded conversation) and its response, after the ledger's `redact` rules (applied to every
  string in them), as one row of the store's `responses` table, namespaced by the caller's key, for
  `responses.ttl_s`. A key's rows take at most `responses.max_bytes_per_key` bytes: when they go over,
  its oldest are evicted down to three quarters of the cap (a single response larger than the cap is
  not kept). Rows are written behind the call, in batches (one every `responses.write_interval_ms`,
  100 ms by default), by a thread at the ledger writer's lower CPU priority (`ledger.writer_nice`:
  it shares the event loop's core); until written they are read from memory, so the next turn finds
  its previous response at once on the same gateway process, and on another one once the batch is
  written (within about the interval, plus the write).

Every read and delete is scoped to the caller's key, the admin key included (it sees only what it
stored itself): a stored conversation is readable only by the key that made it.

`GET /v1/responses/{id}/input_items` lists a response's input items as OpenAI's API does, in pages:
`order` (`desc`, the default: newest first, or `asc`), `limit` (1-100, default 20), `after` (the id of
the item the page starts after); `include` is accepted (the items are kept whole). An item sent
without an id gets one made from the response's id and its position (`item_<base>_<n>`), so ids are
unique across responses; an id the client gave is kept."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import orjson

from architect.config import Config
from architect.errors import InvalidRequest, NotFound
from architect.gateway.apis.responses import RESPONSES, turn
from architect.gateway.apis.responses_translate import Turn, input_items
from architect.gateway.call import Call
from architect.gateway.estimate import PromptSize
from architect.gateway.ledger import lower_thread_priority
from architect.principal import Principal
from architect.store.responses import ResponseRepo

__all__ = ["ResponseStore", "owner", "page_query"]

log = logging.getLogger("architect.gateway")

_EVICT_TO = 0.75  # a key over its cap is brought down to this part of it
_MAX_LIMIT = 100  # input items per page


def owner(principal: Principal) -> str:
    """The namespace a caller's stored responses live in: its key id ("admin" for the admin key,
    "anonymous" in open mode)."""
    return principal.key_id or principal.kind


def page_query(query: bytes) -> tuple[str, int, str | None]:
    """`order`, `limit` and `after` of an input items listing's query string (defaults `desc`, 20,
    none); InvalidRequest naming the parameter for a value out of its range."""
    params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"order: must be 'asc' or 'desc', not '{order[:40]}'", param="order")
    text = params.get("limit", "20")
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= _MAX_LIMIT):
        raise InvalidRequest(
            f"limit: must be an integer from 1 to {_MAX_LIMIT}, not '{text[:40]}'", param="limit"
        )
    return order, int(text), params.get("after")


def _redacted(value: Any, rules: list[re.Pattern[str]]) -> Any:
    if isinstance(value, str):
        for rx in rules:
            value = rx.sub("[REDACTED]", value)
        return value
    if isinstance(value, list):
        return [_redacted(v, rules) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, rules) for k, v in value.items()}
    return value


_TEXT_INPUT = b'[{"type":"message","role":"user","content":[{"type":"input_text","text":%b}]}]'


def _input_json(value: object) -> bytes:
    """`orjson.dumps(input_items(value))`, without building the items (or copying the list) first."""
    if isinstance(value, str):
        return _TEXT_INPUT % orjson.dumps(value)
    return orjson.dumps(value) if isinstance(value, list) else b"[]"


class ResponseStore:
    """Implements `architect.gateway.hooks.Conversations` for the Responses API, and answers
    `GET`/`DELETE /v1/responses/{id}`."""

    def __init__(
        self, repo: ResponseRepo, config: Callable[[], Config], clock: Callable[[], float] = time.time
    ):
        self._repo = repo
        self._config = config
        self._clock = clock
        self._pending: dict[str, dict[str, Any]] = {}  # rows not yet written, by id
        self._flush: asyncio.Task[None] | None = None
        self._rules: tuple[tuple[str, ...], list[re.Pattern[str]]] = ((), [])
        self._rules_of: Config | None = None  # the configuration `_rules` were read from
        self._bytes: dict[str, int] = {}  # per key: the bytes of its stored responses (see `_put`)
        self._writer: ThreadPoolExecutor | None = None  # one thread, at the ledger writer's lower priority
        self._last = 0.0  # the creation time of the last response kept

    def _redact_rules(self, config: Config) -> list[re.Pattern[str]]:
        """The ledger's redaction rules, compiled once per configuration (a reload makes a new one)."""
        if config is not self._rules_of:
            patterns = tuple(config.ledger.redact)
            if patterns != self._rules[0]:
                self._rules = (patterns, [re.compile(p) for p in patterns])
            self._rules_of = config
        return self._rules[1]

    # -- the pipeline's hook ------------------------------------------------------------------------
    async def resolve(self, call: Call) -> None:
        if call.api is not RESPONSES:
            return
        t = turn(call)
        previous = t.previous_id
        if previous is None:
            return
        if not self._config().responses.store:
            raise InvalidRequest(
                "previous_response_id: this gateway keeps no responses (responses.store is off); "
                "send the whole conversation in 'input'",
                param="previous_response_id",
            )
        raw = await self.read(previous, owner(call.principal))
        if raw is None:
            raise NotFound(
                f"previous_response_id: no response with id '{previous}' (never stored for this key, "
                "expired or deleted)",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        stored = orjson.loads(raw)
        output = (stored.get("response") or {}).get("output") or []
        call.body["input"] = [*stored.get("input", []), *output, *input_items(call.body.get("input"))]
        call.body.pop("previous_response_id", None)
        t.prior_size = len(raw)
        call.prompt_size = PromptSize(len(call.raw_body) + len(raw))

    def keep(self, call: Call) -> None:
        state = call.state
        if call.api is not RESPONSES or not isinstance(state, Turn) or not state.store:
            return
        response = state.response
        config = self._config()
        cfg = config.responses
        if response is None or not cfg.store or not isinstance(response.get("id"), str):
            return
        rules = self._redact_rules(config)
        encoded = state.encoded
        if rules:
            items = input_items(call.body.get("input"))
            body = orjson.dumps(_redacted({"input": items, "response": response}, rules))
        else:  # the response's JSON as it was sent, when it was
            sent = encoded[1] if encoded is not None and encoded[0] is response else orjson.dumps(response)
            body = b'{"input":%b,"response":%b}' % (_input_json(call.body.get("input")), sent)
        size = len(body)
        if size > cfg.max_bytes_per_key:
            log.info(
                "response %s not stored: %d bytes, over responses.max_bytes_per_key", response["id"], size
            )
            return
        now = max(self._clock(), self._last + 1e-6)  # in the order kept: `evict` removes the oldest
        self._last = now
        rid = response["id"][:64]
        self._pending[rid] = {
            "id": rid,
            "key_id": owner(call.principal),
            "created_at": now,
            "expires_at": now + cfg.ttl_s,
            "size": size,
            "body": body.decode(),
        }
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        """Write the pending rows in batches, off the loop, until none is left."""
        try:
            while self._pending:
                # let the calls finishing meanwhile join the batch (they are readable meanwhile)
                await asyncio.sleep(self._config().responses.write_interval_ms / 1000)
                rows = list(self._pending.values())
                if self._writer is None:
                    nice = self._config().ledger.writer_nice
                    self._writer = ThreadPoolExecutor(
                        1, "architect-responses", initializer=lower_thread_priority, initargs=(nice,)
                    )
                cap = self._config().responses.max_bytes_per_key
                try:
                    await asyncio.get_running_loop().run_in_executor(self._writer, self._put, rows, cap)
                except Exception:
                    log.exception("storing %d responses failed; they are dropped", len(rows))
                for row in rows:
                    if self._pending.get(row["id"]) is row:
                        del self._pending[row["id"]]
        finally:
            self._flush = None

    def _put(self, rows: list[dict[str, Any]], cap: int) -> None:
        """Insert a batch (a row the store refuses, its id taken or its values, is left out: the
        others are written); then, per key, evict its oldest rows when its count of bytes (read once from
        the store, then kept here) goes over the cap. With several gateway processes each counts its
        own writes on top of what it read, so a key may briefly hold more until one of them evicts."""
        missed = self._repo.put(rows)
        if missed:  # their id was taken or their values refused: the others are written all the same
            left = set(missed)
            rows = [r for r in rows if r["id"] not in left]
        now = self._clock()
        for row in rows:
            key = row["key_id"]
            if key not in self._bytes:
                self._bytes[key] = self._repo.usage(key, now)  # this batch included
            else:
                self._bytes[key] += row["size"]
        for key in {row["key_id"] for row in rows}:
            if self._bytes[key] > cap:  # evict down to a part of the cap, so eviction is rare
                self._bytes[key] = self._repo.evict(key, int(cap * _EVICT_TO), now)

    async def drain(self) -> None:
        """Wait until every kept response is written."""
        while self._flush is not None:
            await asyncio.shield(self._flush)

    async def aclose(self) -> None:
        """Write what is pending, then stop the writer's thread."""
        await self.drain()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=False)

    # -- GET / DELETE /v1/responses/{id} -------------------------------------------------------------
    async def read(self, response_id: str, key_id: str) -> str | None:
        """The stored document (`{"input": [...], "response": {...}}`) of a key's response, or None."""
        now = self._clock()
        row = self._pending.get(response_id)
        if row is not None:
            return str(row["body"]) if row["key_id"] == key_id and row["expires_at"] > now else None
        return await asyncio.to_thread(self._repo.get, response_id, key_id, now)

    async def get(self, response_id: str, principal: Principal) -> bytes:
        """The response object of `GET /v1/responses/{id}`; NotFound for an id the key cannot read."""
        raw = await self.read(response_id, owner(principal))
        if raw is None:
            raise _not_found(response_id)
        return orjson.dumps(orjson.loads(raw).get("response"))

    async def input_items(
        self,
        response_id: str,
        principal: Principal,
        order: str = "desc",
        limit: int = 20,
        after: str | None = None,
    ) -> bytes:
        """`GET /v1/responses/{id}/input_items`: a page of the items the response answered (see the
        module's docstring); InvalidRequest for an `after` that is none of them."""
        raw = await self.read(response_id, owner(principal))
        if raw is None:
            raise _not_found(response_id)
        items = orjson.loads(raw).get("input") or []
        base = response_id.removeprefix("resp_")
        data = [
            item if isinstance(item.get("id"), str) else {**item, "id": f"item_{base}_{i}"}
            for i, item in enumerate(items)
        ]
        if order == "desc":
            data.reverse()
        start = 0
        if after is not None:
            start = next((i + 1 for i, item in enumerate(data) if item["id"] == after), -1)
            if start < 0:
                raise InvalidRequest(
                    f"after: no input item with id '{after[:64]}' in this response", param="after"
                )
        page = data[start : start + limit]
        return orjson.dumps(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": start + limit < len(data),
            }
        )

    async def delete(self, response_id: str, principal: Principal) -> bytes:
        """`DELETE /v1/responses/{id}`; NotFound for an id the key cannot delete."""
        key_id = owner(principal)
        row = self._pending.get(response_id)
        found = False
        if row is not None and row["key_id"] == key_id:
            del self._pending[response_id]
            found = True
        await self.drain()  # a batch being written may hold it
        found = await asyncio.to_thread(self._repo.delete, response_id, key_id) or found
        if not found:
            raise _not_found(response_id)
        return orjson.dumps({"id": response_id, "object": "response", "deleted": True})

    async def purge(self) -> int:
        """Remove every expired response (the runtime runs it hourly)."""
        self._bytes.clear()  # counted again from the store on the next write
        return await asyncio.to_thread(self._repo.purge_expired, self._clock())


def _not_found(response_id: str) -> NotFound:
    return NotFound(
        f"no response with id '{response_id[:64]}' (never stored for this key, expired or deleted)",
        param="response_id",
        code="response_not_found",
    )
