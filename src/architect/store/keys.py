"""Virtual keys: `SQLKeyRepo(engine)` on SQLite/PostgreSQL; `SQLiteMemoryKeyRepo(db)` is the same
implementation on the memory store's in-memory SQLite database. Only the SHA-256 of a key's secret is
stored; the list fields (`models`, `tags`, `projects`, `scopes`) and `route` are JSON in their columns and
decoded on the way out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from architect.errors import NotFoundInStore, StoreError
from architect.store.engine import store_error
from architect.store.schema_keys import api_keys
from architect.store.sqlite_memory import Serialised, SQLiteMemory

__all__ = ["KeyRepo", "SQLKeyRepo", "SQLiteMemoryKeyRepo"]

_JSON_FIELDS = ("models", "tags", "projects", "scopes", "route")


class KeyRepo(Protocol):
    def create_key(self, row: Mapping[str, Any]) -> None: ...
    def get_key(self, key_id: str) -> dict[str, Any] | None: ...
    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None: ...
    def list_keys(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]: ...
    def has_keys(self) -> bool:
        """Whether any virtual key was ever created (revoked and expired ones count)."""

    def update_key(self, key_id: str, fields: Mapping[str, Any]) -> dict[str, Any]: ...


def _key_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = dict(row)
    for f in _JSON_FIELDS:
        out[f] = orjson.loads(out[f]) if out.get(f) else None
    return out


def _key_in(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for f in _JSON_FIELDS:
        if f in out:
            out[f] = orjson.dumps(out[f]).decode() if out[f] is not None else None
    return out


class SQLKeyRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_key(self, row: Mapping[str, Any]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(api_keys).values(**_key_in(row)))
        except IntegrityError as exc:
            raise StoreError("a key with this id or secret already exists") from exc
        except SQLAlchemyError as exc:
            raise store_error("creating a key", exc) from exc

    def get_key(self, key_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _key_out(row._mapping) if row else None

    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.secret_hash == secret_hash)).first()
        return _key_out(row._mapping) if row else None

    def list_keys(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if ids is not None:
            q = q.where(api_keys.c.id.in_(list(ids)))
        with self._engine.connect() as conn:
            return [_key_out(r._mapping) for r in conn.execute(q)]

    def has_keys(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

    def update_key(self, key_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self._engine.begin() as conn:
            n = conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(**_key_in(fields))
            ).rowcount
        if not n:
            raise NotFoundInStore(f"no key with id {key_id!r}")
        out = self.get_key(key_id)
        assert out is not None
        return out


class SQLiteMemoryKeyRepo(Serialised, SQLKeyRepo):
    """The double: the SQL implementation on an in-memory SQLite database (a private one by default)."""

    def __init__(self, db: SQLiteMemory | None = None) -> None:
        db = db or SQLiteMemory()
        super().__init__(db.engine)
        self._lock = db.lock
