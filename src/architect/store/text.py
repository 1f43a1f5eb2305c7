"""Text the databases can hold, the same on SQLite and PostgreSQL.

PostgreSQL refuses U+0000 in a text value, and neither driver can encode a lone surrogate (U+D800 to
U+DFFF, which Python's `json` decodes from `"\\ud800"`). Free text that may legitimately hold them
(message content, upstream answers and error messages, command output, audit snapshots) goes through
`storable`, which replaces each with U+FFFD (the replacement character): the row is written, and reads
back the same, on both databases. Identifiers are refused at the edge instead
(`architect.identifiers.check_identifier`).

`String` and `Text` are the column types of every text column in the schema modules: SQLAlchemy's
types with `storable` applied to every value bound to them (inserts, updates, and the values they
are compared with). The ledger's raw insert path, which bypasses SQLAlchemy, applies `TextPositions`
to its parameter rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["REPLACEMENT", "String", "Text", "TextPositions", "storable"]

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """`value` with every NUL and lone surrogate replaced by U+FFFD; the same object when it holds
    neither (so `storable(s) is s` tells whether anything was replaced)."""
    if value.isascii():  # no surrogate can be there: one fast scan for NUL
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    try:  # encoding fails only on a lone surrogate, and is several times faster than a regex scan
        if b"\x00" not in value.encode():
            return value
    except UnicodeEncodeError:
        pass
    return _UNSTORABLE.sub(REPLACEMENT, value)


class TextPositions:
    """Applies `storable` in place to the text values at fixed positions of parameter rows (lists).
    A row whose text is all storable, nearly every row, costs one join and one scan."""

    __slots__ = ("_at", "_get")

    def __init__(self, at: Sequence[int]) -> None:
        self._at = tuple(at)
        # itemgetter of one position returns the value rather than a 1-tuple: ask for it twice
        self._get = itemgetter(*(self._at if len(self._at) > 1 else self._at * 2)) if self._at else None

    def apply(self, values: list[Any]) -> None:
        if self._get is None:
            return
        try:
            text = "".join(filter(None, self._get(values)))
        except TypeError:  # a value that is not text: look at each one
            text = "\x00"
        if storable(text) is text:
            return
        for i in self._at:
            v = values[i]
            if isinstance(v, str):
                values[i] = storable(v)


class String(TypeDecorator[str]):
    """`sqlalchemy.String` whose bound values (and literals) pass through `storable`."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable(value) if isinstance(value, str) else value


class Text(TypeDecorator[str]):
    """`sqlalchemy.Text` whose bound values (and literals) pass through `storable`."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable(value) if isinstance(value, str) else value
