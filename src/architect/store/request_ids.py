"""A call's request id in the ledger: the client's `x-request-id` when it sent one, else the gateway's
own. `calls.request_id` is unique, and a client may reuse its id: a later call under a taken id is
recorded as `reused_id(id)`, `<the id, up to 47 characters>:<16 hex digits>` (64 characters at most,
itself a valid request id). `is_reuse` and `same_request` find a call by the id its client knows."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import ColumnElement, or_
from sqlalchemy.sql.elements import ColumnClause

__all__ = ["is_reuse", "reused_id", "same_request"]

_KEPT = 47  # characters of the client's id a derived id keeps
_SUFFIX = 16  # hex digits after the colon


def reused_id(request_id: str) -> str:
    """The id a call is recorded under when its request id is already taken."""
    return f"{request_id[:_KEPT]}:{secrets.token_hex(_SUFFIX // 2)}"


def is_reuse(recorded: str, request_id: str) -> bool:
    """Whether `recorded` is the id of a call its client sent as `request_id`: the id itself, or an id
    derived from it by `reused_id`."""
    if recorded == request_id:
        return True
    head, sep, tail = recorded.rpartition(":")
    return (
        bool(sep)
        and head == request_id[:_KEPT]
        and len(tail) == _SUFFIX
        and re.fullmatch(r"[0-9a-f]+", tail) is not None
    )


def same_request(column: ColumnClause[str], request_id: str) -> ColumnElement[bool]:
    """SQL: `column` holds `request_id` or an id `reused_id` derived from it."""
    prefix = request_id[:_KEPT].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == request_id, column.like(f"{prefix}:{'_' * _SUFFIX}", escape="\\"))
