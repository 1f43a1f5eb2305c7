"""REST endpoints of the cache (admin only): statistics and purging."""

from __future__ import annotations

import itertools
import time
from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from architect.api.deps import AdminDep, RuntimeDep
from architect.api.params import Body, Identifier, KeyId, Seconds
from architect.errors import InvalidRequest

__all__ = ["PurgeRequest", "router"]

router = APIRouter(prefix="/cache", tags=["cache"])


def _given(*fields: str) -> dict[str, Any]:
    return {"required": list(fields), "properties": {f: {"not": {"type": "null"}} for f in fields}}


_NAMESPACES = ("namespace", "key_id", "project")
# What the spec says about a purge: at least one filter (or all=true), at most one namespace form.
_PURGE_RULES: dict[str, Any] = {
    "anyOf": [_given(f) for f in (*_NAMESPACES, "model", "older_than_s")]
    + [{"required": ["all"], "properties": {"all": {"const": True}}}],
    "not": {"anyOf": [_given(a, b) for a, b in itertools.combinations(_NAMESPACES, 2)]},
}


class PurgeRequest(Body):
    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(_PURGE_RULES))

    namespace: Identifier | None = Field(
        default=None, description='a namespace: "k:<key id>" or "p:<project>"'
    )
    key_id: KeyId | None = Field(default=None, description="shorthand for namespace k:<key id>")
    project: Identifier | None = Field(default=None, description="shorthand for namespace p:<project>")
    model: Identifier | None = Field(default=None, description="a model group")
    older_than_s: Seconds | None = Field(default=None, description="entries created this long ago")
    all: bool = Field(default=False, description="required to purge everything (no filter)")


@router.get("/stats")
async def cache_stats(runtime: RuntimeDep, _: AdminDep) -> dict[str, Any]:
    """Entries and bytes per tier, lookups and hit rate per tier, coalesced requests, savings."""
    return await runtime.cache.stats()


@router.post("/purge")
async def cache_purge(req: PurgeRequest, runtime: RuntimeDep, _: AdminDep) -> dict[str, Any]:
    """Delete cached answers by namespace, model and/or age (from L1, L2 and the semantic index)."""
    given = [x for x in (req.namespace, req.key_id, req.project) if x is not None]
    if len(given) > 1:
        raise InvalidRequest("give at most one of namespace, key_id, project", param="namespace")
    ns = req.namespace or (f"k:{req.key_id}" if req.key_id else f"p:{req.project}" if req.project else None)
    if ns is None and req.model is None and req.older_than_s is None and not req.all:
        raise InvalidRequest("give a filter (namespace, key_id, project, model, older_than_s) or all=true")
    before = time.time() - req.older_than_s if req.older_than_s is not None else None
    removed = await runtime.cache.purge(namespace=ns, model=req.model, created_before=before)
    return {"removed": removed, "namespace": ns, "model": req.model, "created_before": before}
