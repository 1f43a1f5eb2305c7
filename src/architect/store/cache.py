"""Response-cache storage (the L2 tier in the store): SQL and in-memory implementations of one
interface. Rows are plain dicts with the columns of `schema_cache.cache_entries`.

Every lookup takes `now` (UNIX seconds) so expiry is decided by the caller's clock, which tests
inject; expired rows are never returned and are removed by `purge(expired_before=now)`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from architect.errors import StoreError
from architect.store.schema_cache import cache_entries

__all__ = ["CACHE_COLUMNS", "CacheRepo", "MemoryCacheRepo", "SQLCacheRepo"]

CACHE_COLUMNS = tuple(c.name for c in cache_entries.columns)


class CacheRepo(Protocol):
    in_memory: bool

    def get(self, key: str, norm_key: str | None, now: float) -> dict[str, Any] | None:
        """The live row with this exact key, else (when norm_key is given) the newest live row with
        this normalised key. The result has an extra field `match`: "exact" or "normalised"."""

    def put(self, row: Mapping[str, Any]) -> None:
        """Insert or replace the row with this key."""

    def delete(self, key: str) -> None: ...

    def purge(
        self,
        *,
        namespace: str | None = None,
        model: str | None = None,
        created_before: float | None = None,
        expired_before: float | None = None,
    ) -> int:
        """Delete rows matching every given filter (all rows when none is given); returns the count."""

    def stats(self, now: float) -> dict[str, Any]:
        """{"entries", "bytes", "expired", "models": {model: entries}}."""


def _err(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"cache {what} failed: {exc.__class__.__name__}: {exc.args[0] if exc.args else ''}")


class SQLCacheRepo:
    in_memory = False

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def get(self, key: str, norm_key: str | None, now: float) -> dict[str, Any] | None:
        t = cache_entries
        match = t.c.key == key if norm_key is None else or_(t.c.key == key, t.c.norm_key == norm_key)
        q = select(t).where(match, t.c.expires_at > now).order_by(t.c.created_at.desc()).limit(8)
        try:
            with self._engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(q)]
        except SQLAlchemyError as exc:
            raise _err("read", exc) from exc
        return _pick(rows, key)

    def put(self, row: Mapping[str, Any]) -> None:
        values = _complete(row)
        try:
            with self._engine.begin() as conn:
                if self._dialect in ("sqlite", "postgresql"):
                    if self._dialect == "sqlite":
                        from sqlalchemy.dialects.sqlite import insert
                    else:
                        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
                    stmt = insert(cache_entries).values(values)
                    upd = {k: stmt.excluded[k] for k in values if k != "key"}
                    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=upd))
                else:  # pragma: no cover - other dialects
                    conn.execute(delete(cache_entries).where(cache_entries.c.key == values["key"]))
                    conn.execute(cache_entries.insert().values(values))
        except IntegrityError:  # a concurrent writer stored the same answer first
            return
        except SQLAlchemyError as exc:
            raise _err("write", exc) from exc

    def delete(self, key: str) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(cache_entries).where(cache_entries.c.key == key))
        except SQLAlchemyError as exc:
            raise _err("delete", exc) from exc

    def purge(
        self,
        *,
        namespace: str | None = None,
        model: str | None = None,
        created_before: float | None = None,
        expired_before: float | None = None,
    ) -> int:
        t = cache_entries
        q = delete(t)
        if namespace is not None:
            q = q.where(t.c.namespace == namespace)
        if model is not None:
            q = q.where(t.c.model == model)
        if created_before is not None:
            q = q.where(t.c.created_at < created_before)
        if expired_before is not None:
            q = q.where(t.c.expires_at <= expired_before)
        try:
            with self._engine.begin() as conn:
                return conn.execute(q).rowcount or 0
        except SQLAlchemyError as exc:
            raise _err("purge", exc) from exc

    def stats(self, now: float) -> dict[str, Any]:
        t = cache_entries
        try:
            with self._engine.connect() as conn:
                n, size = conn.execute(select(func.count(), func.coalesce(func.sum(t.c.size), 0))).one()
                expired = conn.execute(select(func.count()).where(t.c.expires_at <= now)).scalar_one()
                models = {m: c for m, c in conn.execute(select(t.c.model, func.count()).group_by(t.c.model))}
        except SQLAlchemyError as exc:
            raise _err("stats", exc) from exc
        return {"entries": int(n), "bytes": int(size), "expired": int(expired), "models": models}


class MemoryCacheRepo:
    """The in-memory double (and the L2 of a memory store)."""

    in_memory = True

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, key: str, norm_key: str | None, now: float) -> dict[str, Any] | None:
        row = self.rows.get(key)
        if row is not None and row["expires_at"] > now:
            return {**row, "match": "exact"}
        if norm_key is None:
            return None
        cands = [r for r in self.rows.values() if r["norm_key"] == norm_key and r["expires_at"] > now]
        if not cands:
            return None
        return {**max(cands, key=lambda r: r["created_at"]), "match": "normalised"}

    def put(self, row: Mapping[str, Any]) -> None:
        values = _complete(row)
        self.rows[values["key"]] = values

    def delete(self, key: str) -> None:
        self.rows.pop(key, None)

    def purge(
        self,
        *,
        namespace: str | None = None,
        model: str | None = None,
        created_before: float | None = None,
        expired_before: float | None = None,
    ) -> int:
        def doomed(r: Mapping[str, Any]) -> bool:
            return (
                (namespace is None or r["namespace"] == namespace)
                and (model is None or r["model"] == model)
                and (created_before is None or r["created_at"] < created_before)
                and (expired_before is None or r["expires_at"] <= expired_before)
            )

        keys = [k for k, r in self.rows.items() if doomed(r)]
        for k in keys:
            del self.rows[k]
        return len(keys)

    def stats(self, now: float) -> dict[str, Any]:
        models: dict[str, int] = {}
        for r in self.rows.values():
            models[r["model"]] = models.get(r["model"], 0) + 1
        return {
            "entries": len(self.rows),
            "bytes": sum(r["size"] for r in self.rows.values()),
            "expired": sum(1 for r in self.rows.values() if r["expires_at"] <= now),
            "models": models,
        }


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in CACHE_COLUMNS}
    out["body"] = bytes(row["body"])
    out["size"] = int(row.get("size") or len(bytes(row["body"])))
    for c in ("prompt_tokens", "completion_tokens"):
        out[c] = int(out[c] or 0)
    for c in ("cost_usd", "latency_ms"):
        out[c] = float(out[c] or 0.0)
    return out


def _pick(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    for r in rows:
        if r["key"] == key:
            r["body"] = bytes(r["body"])
            return {**r, "match": "exact"}
    if rows:
        r = rows[0]
        r["body"] = bytes(r["body"])
        return {**r, "match": "normalised"}
    return None
