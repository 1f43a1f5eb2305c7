"""Cache keys: a canonical hash of everything that determines the answer, within a tenant namespace.

The key covers the whole request body except fields that only change how the answer is delivered
(`stream`, `stream_options`) or who asked (`user`, `metadata`, `store`); `model` is replaced by the
resolved model group. Anything unknown is included, so a new sampling parameter can never make two
different requests share an answer. The namespace is part of the hashed material, so an entry can
only be found by the tenant that wrote it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from architect.cache.normalise import normalise_messages

__all__ = ["is_deterministic", "namespace_of", "request_keys", "sampling_params", "system_prompt"]

_DELIVERY_ONLY = frozenset({"stream", "stream_options", "user", "metadata", "store", "model"})
_SAMPLING = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
)


def namespace_of(principal: Any, tags: dict[str, str], mode: str) -> str:
    """The tenant namespace of a call.

    mode "key": the virtual key's id. mode "project": the project the *key* is bound to (a client
    cannot claim another project by sending a tag); a key bound to no project keeps its own
    namespace, split by the request's project tag. Admin and anonymous (single-tenant open mode)
    callers are split by the request's project tag."""
    key_id = getattr(principal, "key_id", None) or getattr(principal, "kind", "anonymous")
    if mode == "project":
        bound = (getattr(principal, "tags", None) or {}).get("project")
        if bound:
            return f"p:{bound}"
        proj = tags.get("project")
        if getattr(principal, "kind", None) in ("admin", "anonymous"):
            return f"p:{proj}" if proj else f"k:{key_id}"
        return f"k:{key_id}/p:{proj}" if proj else f"k:{key_id}"
    return f"k:{key_id}"


def is_deterministic(body: dict[str, Any]) -> bool:
    """Temperature 0 or a seed (an absent temperature means the provider default, usually 1)."""
    t = body.get("temperature")
    return body.get("seed") is not None or (t is not None and not isinstance(t, bool) and t == 0)


def _digest(material: dict[str, Any]) -> str:
    raw = orjson.dumps(material, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(raw).hexdigest()


def request_keys(
    body: dict[str, Any],
    group: str,
    namespace: str,
    *,
    normalised: bool,
    casefold: bool,
    api: str = "chat",
) -> tuple[str, str | None]:
    """(exact key, normalised key or None). `api` is the inbound API (the entries hold its response
    bytes, so an answer in one API's format never serves another's); chat keys leave it out."""
    material = {k: v for k, v in body.items() if k not in _DELIVERY_ONLY}
    head: dict[str, Any] = {"v": 1} if api == "chat" else {"v": 1, "api": api}
    exact = _digest({**head, "ns": namespace, "group": group, "req": material})
    if not normalised or api != "chat":
        return exact, None  # normalising knows chat messages only
    norm = dict(material)
    norm["messages"] = normalise_messages(material.get("messages"), casefold=casefold)
    return exact, _digest(
        {**head, "norm": True, "cf": casefold, "ns": namespace, "group": group, "req": norm}
    )


def sampling_params(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in _SAMPLING if k in body}


def system_prompt(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for m in body.get("messages") or ():
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            c = m.get("content")
            parts.append(c if isinstance(c, str) else orjson.dumps(c).decode())
    return "\n".join(parts)
