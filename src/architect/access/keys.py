"""Virtual API keys: generation, hashing, the public view, and the cached resolver used by the
authenticator.

A secret looks like `sk-arch-<43 url-safe chars>` (256 random bits). Only its SHA-256 is stored (a
fast hash is right for high-entropy secrets: there is nothing to brute-force), plus the first
12 characters as a visible prefix. The secret is returned once, at creation or rotation."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from architect.errors import InvalidRequest, NotFoundInStore, StateConflict
from architect.identifiers import check_identifier
from architect.principal import SCOPES, Principal
from architect.store.audit import AuditRepo
from architect.store.budgets import PERIODS, BudgetRepo
from architect.store.keys import KeyRepo

__all__ = [
    "KeyResolver",
    "KeyService",
    "check_scopes",
    "hash_secret",
    "key_view",
    "new_secret",
    "parse_budget",
    "parse_projects",
    "principal_for",
]

SECRET_PREFIX = "sk-arch-"
VISIBLE_CHARS = 12
ALL_PROJECTS = "*"
_BUDGET = re.compile(r"^\s*\$?(\d+(?:\.\d+)?)\s*(?:/\s*(day|month|total))?\s*$")


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_budget(text: str) -> tuple[float, str]:
    """'50/month' -> (50.0, 'month'); a bare number is a monthly budget."""
    m = _BUDGET.match(text)
    if not m or float(m.group(1)) <= 0:
        raise InvalidRequest(
            f"budget: expected an amount in USD and a period like 50/month, 5/day or 100/total, got {text!r}",
            param="budget_usd",
        )
    return float(m.group(1)), m.group(2) or "month"


def parse_projects(value: str | list[str] | None) -> str | list[str] | None:
    """The projects a key is granted, as stored: "*" (every project), a sorted list of names, or None
    (none beyond the project of its default tags). Names are checked like every identifier."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if ALL_PROJECTS in names:
        if len(names) > 1:
            raise InvalidRequest('projects: "*" grants every project; give it alone', param="projects")
        return ALL_PROJECTS
    out: set[str] = set()
    for name in names:
        check_identifier(name, "projects")
        if not name.strip() or name != name.strip() or len(name) > 200:
            raise InvalidRequest(
                f"projects: a project name is 1-200 characters without surrounding spaces, got {name!r}",
                param="projects",
            )
        out.add(name)
    return sorted(out) or None


def granted_projects(row: Mapping[str, Any]) -> frozenset[str] | None:
    """The projects a key may put spend on and see: None for every project, else its grants plus the
    project of its default tags."""
    grants = row.get("projects")
    if grants == ALL_PROJECTS:
        return None
    bound = (row.get("tags") or {}).get("project")
    return frozenset(grants or ()) | ({bound} if bound else frozenset())


def check_scopes(scopes: list[str] | None) -> list[str] | None:
    """The scopes sorted and deduplicated; an unknown one is a 400 naming `scopes`."""
    if not scopes:
        return None
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(
            f"scopes: unknown scope {unknown[0]!r}; known scopes: {', '.join(SCOPES)}", param="scopes"
        )
    return sorted(set(scopes))


def key_view(row: Mapping[str, Any], budgets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The public shape of a key: never the secret or its hash."""
    now = time.time()
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "created_at": row["created_at"],
        "created_by": row.get("created_by"),
        "revoked": row.get("revoked_at") is not None,
        "revoked_at": row.get("revoked_at"),
        "expires_at": row.get("expires_at"),
        "expired": row.get("expires_at") is not None and row["expires_at"] <= now,
        "rpm": row.get("rpm"),
        "tpm": row.get("tpm"),
        "models": row.get("models"),
        "tags": row.get("tags") or {},
        "projects": ALL_PROJECTS if (g := granted_projects(row)) is None else sorted(g),
        "scopes": row.get("scopes") or [],
        "temporary": bool(row.get("temporary")),
        "route": row.get("route") or {},
        "budgets": [
            {
                "id": b["id"],
                "period": b["period"],
                "limit_usd": b["limit_usd"],
                "spent_usd": b["spent_usd"],
                "reserved_usd": b["reserved_usd"],
                "remaining_usd": b["remaining_usd"],
            }
            for b in (budgets or [])
            if b["scope"] == "key" and b["target"] == row["id"]
        ],
    }


def principal_for(row: Mapping[str, Any]) -> Principal:
    return Principal(
        kind="key",
        key_id=row["id"],
        name=row["name"],
        models=frozenset(row["models"]) if row.get("models") else None,
        tags=dict(row.get("tags") or {}),
        projects=granted_projects(row),
        scopes=frozenset(row.get("scopes") or ()),
        extra={
            "rpm": row.get("rpm"),
            "tpm": row.get("tpm"),
            "bodies": row.get("bodies"),
            "created_at": row.get("created_at"),
            "temporary": bool(row.get("temporary")),
            "route": row.get("route") or None,
        },
    )


class KeyService:
    """Create, revoke and rotate keys; every change is written to the audit log by `actor`."""

    def __init__(self, keys: KeyRepo, budgets: BudgetRepo, audit: AuditRepo) -> None:
        self.keys = keys
        self.budgets = budgets
        self.audit = audit

    def create(
        self,
        *,
        name: str,
        actor: str,
        rpm: int | None = None,
        tpm: int | None = None,
        models: list[str] | None = None,
        tags: dict[str, str] | None = None,
        expires_at: float | None = None,
        budget_usd: float | None = None,
        budget_period: str = "month",
        bodies: str | None = None,
        projects: str | list[str] | None = None,
        scopes: list[str] | None = None,
        temporary: bool = False,
        route: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """`route`: the key's route settings (quality_target, cost_weight, privacy), already checked
        by the caller (`routing.policy.RouteSettings.parse`: the access domain does not import routing)."""
        if not name.strip():
            raise InvalidRequest("name: must not be empty", param="name")
        check_identifier(name, "name")
        for i, m in enumerate(models or ()):
            check_identifier(m, f"models[{i}]")
        for k, v in (tags or {}).items():
            check_identifier(k, "tags")
            check_identifier(v, f"tags.{k}")
        if budget_period not in PERIODS:
            raise InvalidRequest(f"budget_period: use one of {', '.join(PERIODS)}", param="budget_period")
        granted = parse_projects(projects)
        scopes = check_scopes(scopes)
        now = time.time()
        if expires_at is not None and not (math.isfinite(expires_at) and expires_at > now):
            raise InvalidRequest(
                f"expires_at: {expires_at} is not in the future (now {now:.0f}); give a future UNIX time",
                param="expires_at",
            )
        secret = new_secret()
        row: dict[str, Any] = {
            "id": "key_" + uuid.uuid4().hex[:16],
            "name": name.strip(),
            "prefix": secret[:VISIBLE_CHARS],
            "secret_hash": hash_secret(secret),
            "created_at": now,
            "updated_at": now,
            "created_by": actor,
            "expires_at": expires_at,
            "revoked_at": None,
            "rpm": rpm,
            "tpm": tpm,
            "models": sorted(set(models)) if models else None,
            "tags": dict(tags or {}),
            "bodies": bodies,
            "projects": granted,
            "scopes": scopes,
            "temporary": temporary,
            "route": dict(route) if route else None,
        }
        self.keys.create_key(row)
        if budget_usd is not None:
            self.budgets.upsert_budget("key", row["id"], budget_period, budget_usd)
        view = self.view(row["id"])
        self.audit.add_audit(actor, "key.create", row["id"], None, view)
        return secret, view

    def view(self, key_id: str) -> dict[str, Any]:
        row = self.keys.get_key(key_id)
        if row is None:
            raise NotFoundInStore(f"no key with id {key_id!r}")
        return key_view(row, self.budgets.list_budgets())

    def list(self, ids: list[str] | None = None, *, temporary: bool = False) -> list[dict[str, Any]]:
        """Keys (those minted for task attempts only with `temporary`)."""
        budgets = self.budgets.list_budgets()
        return [key_view(r, budgets) for r in self.keys.list_keys(ids) if temporary or not r.get("temporary")]

    def set_route(self, key_id: str, route: Mapping[str, Any] | None, *, actor: str) -> dict[str, Any]:
        """Replace a key's route settings (None or {}: none); checked by the caller, as in `create`."""
        before = self.view(key_id)
        self.keys.update_key(key_id, {"route": dict(route) if route else None, "updated_at": time.time()})
        after = self.view(key_id)
        self.audit.add_audit(actor, "key.route", key_id, before, after)
        return after

    def revoke(self, key_id: str, *, actor: str) -> dict[str, Any]:
        before = self.view(key_id)
        now = time.time()
        self.keys.update_key(key_id, {"revoked_at": before["revoked_at"] or now, "updated_at": now})
        after = self.view(key_id)
        self.audit.add_audit(actor, "key.revoke", key_id, before, after)
        return after

    def rotate(self, key_id: str, *, actor: str) -> tuple[str, dict[str, Any]]:
        before = self.view(key_id)
        if before["revoked"]:
            raise StateConflict(f"key {key_id} is revoked; create a new one instead")
        secret = new_secret()
        self.keys.update_key(
            key_id,
            {"secret_hash": hash_secret(secret), "prefix": secret[:VISIBLE_CHARS], "updated_at": time.time()},
        )
        after = self.view(key_id)
        self.audit.add_audit(actor, "key.rotate", key_id, before, after)
        return secret, after


class KeyResolver:
    """token -> Principal or None, for `Authenticator.key_resolver`.

    Lookups are cached in memory for `ttl_s` (default 0.5 s) and then re-read from the store, so a key
    revoked, rotated or expired on any process sharing the store is refused within `ttl_s` plus one
    store round trip everywhere. Expiry is also checked on every use against the cached row."""

    def __init__(self, repo: KeyRepo, *, ttl_s: float = 0.5, max_entries: int = 10_000) -> None:
        self.repo = repo
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._exist: tuple[float, bool] = (-1e9, False)
        self._exist_check: asyncio.Future[bool] | None = None

    async def keys_exist(self) -> bool:
        """Whether the store holds any virtual key (revoked and expired ones count), re-read at most
        every `ttl_s` while there is none (keys are never deleted, so a yes is kept)."""
        at, exist = self._exist
        if exist or time.monotonic() - at < self.ttl_s:
            return exist
        if self._exist_check is None:  # one store read for all the requests waiting on it
            self._exist_check = asyncio.ensure_future(asyncio.to_thread(self.repo.has_keys))
        check = self._exist_check
        try:
            exist = await asyncio.shield(check)
        finally:
            if self._exist_check is check and check.done():
                self._exist_check = None
        self._exist = (time.monotonic(), exist)
        return exist

    def invalidate(self) -> None:
        self._cache.clear()
        self._exist = (-1e9, False)

    async def __call__(self, token: str) -> Principal | None:
        if not token.startswith(SECRET_PREFIX):
            return None
        digest = hash_secret(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.ttl_s:
            row = hit[1]
        else:
            row = await asyncio.to_thread(self.repo.key_by_hash, digest)
            self._cache[digest] = (now, row)
            self._cache.move_to_end(digest)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        if row is None or row.get("revoked_at") is not None:
            return None
        if row.get("expires_at") is not None and row["expires_at"] <= time.time():
            return None
        return principal_for(row)
