"""Virtual API keys: generation, hashing, the public view, and the cached resolver used by the
authenticator.

A secret looks like `sk-arch-<43 url-safe chars>` (256 random bits). Only its SHA-256 is stored (a
fast hash is right for high-entropy secrets: there is nothing to brute-force), plus the first
12 characters as a visible prefix. The secret is returned once, at creation or rotation."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from architect.access.auth import Principal
from architect.errors import InvalidRequest, NotFoundInStore, StateConflict
from architect.store.access import PERIODS, AccessRepo

__all__ = [
    "KeyResolver",
    "KeyService",
    "hash_secret",
    "key_view",
    "new_secret",
    "parse_budget",
    "principal_for",
]

SECRET_PREFIX = "sk-arch-"
VISIBLE_CHARS = 12
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
    tags = dict(row.get("tags") or {})
    project = tags.get("project")
    return Principal(
        kind="key",
        key_id=row["id"],
        name=row["name"],
        models=frozenset(row["models"]) if row.get("models") else None,
        tags=tags,
        projects=frozenset({project}) if project else frozenset(),
        extra={"rpm": row.get("rpm"), "tpm": row.get("tpm"), "bodies": row.get("bodies")},
    )


class KeyService:
    """Create, revoke and rotate keys; every change is written to the audit log by `actor`."""

    def __init__(self, repo: AccessRepo) -> None:
        self.repo = repo

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
    ) -> tuple[str, dict[str, Any]]:
        if not name.strip():
            raise InvalidRequest("name: must not be empty", param="name")
        if budget_period not in PERIODS:
            raise InvalidRequest(f"budget_period: use one of {', '.join(PERIODS)}", param="budget_period")
        secret = new_secret()
        now = time.time()
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
        }
        self.repo.create_key(row)
        if budget_usd is not None:
            self.repo.upsert_budget("key", row["id"], budget_period, budget_usd)
        view = self.view(row["id"])
        self.repo.add_audit(actor, "key.create", row["id"], None, view)
        return secret, view

    def view(self, key_id: str) -> dict[str, Any]:
        row = self.repo.get_key(key_id)
        if row is None:
            raise NotFoundInStore(f"no key with id {key_id!r}")
        return key_view(row, self.repo.list_budgets())

    def list(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        budgets = self.repo.list_budgets()
        return [key_view(r, budgets) for r in self.repo.list_keys(ids)]

    def revoke(self, key_id: str, *, actor: str) -> dict[str, Any]:
        before = self.view(key_id)
        now = time.time()
        self.repo.update_key(key_id, {"revoked_at": before["revoked_at"] or now, "updated_at": now})
        after = self.view(key_id)
        self.repo.add_audit(actor, "key.revoke", key_id, before, after)
        return after

    def rotate(self, key_id: str, *, actor: str) -> tuple[str, dict[str, Any]]:
        before = self.view(key_id)
        if before["revoked"]:
            raise StateConflict(f"key {key_id} is revoked; create a new one instead")
        secret = new_secret()
        self.repo.update_key(
            key_id,
            {"secret_hash": hash_secret(secret), "prefix": secret[:VISIBLE_CHARS], "updated_at": time.time()},
        )
        after = self.view(key_id)
        self.repo.add_audit(actor, "key.rotate", key_id, before, after)
        return secret, after


class KeyResolver:
    """token -> Principal or None, for `Authenticator.key_resolver`.

    Lookups are cached in memory for `ttl_s` (default 0.5 s) and then re-read from the store, so a key
    revoked, rotated or expired on any process sharing the store is refused within `ttl_s` plus one
    store round trip everywhere. Expiry is also checked on every use against the cached row."""

    def __init__(self, repo: AccessRepo, *, ttl_s: float = 0.5, max_entries: int = 10_000) -> None:
        self.repo = repo
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()

    def invalidate(self) -> None:
        self._cache.clear()

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
