"""Hard constraints on a call's route: what the request needs of a deployment, and which deployments
cannot give it. They hold on every route (any strategy, the fallback chain, an `auto` group's
candidates), before any preference:

- privacy `local-only` (the call's route settings, `Call.local_only`): only deployments with
  `local: true`;
- tools (`tools` / `functions` in the request): not deployments with `tools: false`;
- a JSON-schema response format (chat `response_format`, Responses `text.format`, Messages
  `output_format`): not deployments with `json_schema: false`;
- image input (a content part that is an image): not deployments with `images: false`;
- the context window: the prompt's low estimate plus `max_tokens` must fit (`Router.order`).

When nothing in the whole chain is left the call is refused with a 400 naming the constraint
(`check_chain`), never sent somewhere it must not go."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from architect.errors import InvalidRequest
from architect.gateway.routing import Deployment, Group

__all__ = ["NEEDS", "check_chain", "refusal", "request_needs"]

# What a request may need of a deployment, in the order a refusal names them.
NEEDS = ("tools", "json_schema", "images")
_WHAT = {
    "privacy": "privacy: local-only: the call may go only to deployments with local: true",
    "tools": "tools: the request has tools and",
    "json_schema": "response_format: the request asks for a JSON-schema response format and",
    "images": "images: the request has image input and",
}
_PARAM = {"privacy": "privacy", "tools": "tools", "json_schema": "response_format", "images": "images"}
_IMAGE_PARTS = frozenset(("image_url", "image", "input_image"))


def request_needs(endpoint: str, body: dict[str, Any]) -> frozenset[str]:
    """What the request needs of a deployment (a subset of NEEDS), from the client's body in the shape
    of its API (`chat`, `messages`, `responses`; nothing for `embeddings`)."""
    if endpoint == "embeddings":
        return frozenset()
    out: set[str] = set()
    if body.get("tools") or body.get("functions"):
        out.add("tools")
    if endpoint == "chat":
        fmt = body.get("response_format")
    elif endpoint == "responses":
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
    else:
        fmt = body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out.add("json_schema")
    items = body.get("input") if endpoint == "responses" else body.get("messages")
    if isinstance(items, list) and _has_image(items):
        out.add("images")
    return frozenset(out)


def _has_image(items: list[Any]) -> bool:
    for m in items:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") in _IMAGE_PARTS:
                    return True
        elif m.get("type") in _IMAGE_PARTS:  # a Responses input item given as a bare part
            return True
    return False


def refusal(d: Deployment, needs: frozenset[str], local_only: bool) -> str | None:
    """The first constraint `d` fails for a call ("privacy", "tools", "json_schema", "images"), or None."""
    c = d.config
    if local_only and not c.local:
        return "privacy"
    if needs:
        if "tools" in needs and not c.tools:
            return "tools"
        if "json_schema" in needs and not c.json_schema:
            return "json_schema"
        if "images" in needs and not c.images:
            return "images"
    return None


def admitted(g: Group, needs: frozenset[str], local_only: bool) -> list[Deployment]:
    """`g`'s deployments that pass the hard constraints (the context window aside)."""
    if not needs and not local_only:
        return g.deployments
    return [d for d in g.deployments if refusal(d, needs, local_only) is None]


def check_chain(model: str, chain: Iterable[Group], needs: frozenset[str], local_only: bool) -> None:
    """Refuse (400 naming the constraint) a call none of whose chain's deployments pass the hard
    constraints. The constraint named is the first, in the order privacy, tools, json_schema, images,
    after which none is left."""
    if not needs and not local_only:
        return
    deps = [d for g in chain for d in g.deployments]
    if any(refusal(d, needs, local_only) is None for d in deps):
        return
    left = deps
    if local_only:
        left = [d for d in left if d.config.local]
        if not left:
            _refuse(model, "privacy", "no deployment of it or its fallbacks is local")
    for need in NEEDS:
        if need in needs:
            left = [d for d in left if getattr(d.config, need)]
            if not left:
                _refuse(model, need, "no deployment of it or its fallbacks (that is left) can take it")


def _refuse(model: str, constraint: str, detail: str) -> None:
    if constraint == "privacy":
        msg = f"{_WHAT['privacy']}, and for model '{model}' {detail}"
    else:
        msg = f"{_WHAT[constraint]} for model '{model}' {detail} ({constraint}: false)"
    raise InvalidRequest(msg, param=_PARAM[constraint], code="route_constraint")
