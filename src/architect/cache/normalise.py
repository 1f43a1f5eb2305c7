"""Canonical text for the normalised-exact tier.

Unicode NFKC, surrounding whitespace trimmed, runs of whitespace collapsed to one space outside code
(fenced ``` / ~~~ blocks and inline `backtick` spans are kept byte for byte), and case folded only
when configured: case and spacing carry meaning in code and JSON, so they are left alone by default.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["normalise_messages", "normalise_text"]

# fenced blocks (``` or ~~~, to the matching fence or the end) and inline code spans
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)
_WS = re.compile(r"\s+")


def normalise_text(text: str, *, casefold: bool = False) -> str:
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    pos = 0
    for m in _CODE.finditer(text):
        out.append(_prose(text[pos : m.start()], casefold))
        out.append(m.group(0))
        pos = m.end()
    out.append(_prose(text[pos:], casefold))
    return "".join(out).strip()


def _prose(s: str, casefold: bool) -> str:
    s = _WS.sub(" ", s)
    return s.casefold() if casefold else s


def normalise_messages(messages: Any, *, casefold: bool = False) -> Any:
    """The messages with every text content normalised (string contents and `text` parts); other
    fields (roles, names, tool calls, images) unchanged."""
    if not isinstance(messages, list):
        return messages
    out: list[Any] = []
    for m in messages:
        if not isinstance(m, dict):
            out.append(m)
            continue
        c = m.get("content")
        if isinstance(c, str):
            m = {**m, "content": normalise_text(c, casefold=casefold)}
        elif isinstance(c, list):
            parts = [
                {**p, "text": normalise_text(p["text"], casefold=casefold)}
                if isinstance(p, dict) and isinstance(p.get("text"), str)
                else p
                for p in c
            ]
            m = {**m, "content": parts}
        out.append(m)
    return out
