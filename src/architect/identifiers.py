"""Identifiers at the edge: names that are stored, indexed, filtered on and shown (model names, tag keys
and values, key names, project and feature slugs, task ids) must not hold control characters.

`check_identifier` refuses NUL, the other C0/C1 control characters and DEL, the Unicode line and
paragraph separators, and the bidirectional-override characters (which can make a name display as
something other than what it is), with an `InvalidRequest` (400) naming the field. Free text (message
content, descriptions, command output) is not an identifier: the store escapes what a database cannot
hold instead of refusing it."""

from __future__ import annotations

import re

from architect.errors import InvalidRequest

__all__ = ["check_identifier", "first_forbidden"]

_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def first_forbidden(value: str) -> int | None:
    """The index of the first character an identifier may not hold, or None."""
    m = _FORBIDDEN.search(value)
    return None if m is None else m.start()


def check_identifier(value: str, field: str) -> str:
    """`value` unchanged, or InvalidRequest naming `field` and the offending character's position."""
    m = _FORBIDDEN.search(value)
    if m is not None:
        raise InvalidRequest(
            f"{field}: must not contain control characters (found U+{ord(m.group()):04X} at position "
            f"{m.start()})",
            param=field,
        )
    return value
