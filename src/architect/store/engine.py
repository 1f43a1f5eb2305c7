"""Engine creation (URL normalisation, SQLite WAL pragmas, driver selection) and the small pieces the
SQL repositories share: the dialect's INSERT (for ON CONFLICT) and the error a failed statement
becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from architect.errors import StoreError

__all__ = [
    "begin_immediate",
    "dialect_insert",
    "is_sqlite",
    "make_engine",
    "normalise_url",
    "redact_url",
    "store_error",
]


def normalise_url(url: str) -> str:
    """Accept `postgres://` / `postgresql://` and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")


def redact_url(url: str) -> str:
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite defers BEGIN on its own; take transaction control so that `BEGIN IMMEDIATE` works.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # After a checkpoint restarts the WAL, truncate it to this size: without a limit the file keeps its
    # high-water mark (220 MB after minutes of a busy ledger), and its index (`-shm`) stays mapped at
    # the matching size.
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql(conn.info.pop("begin_statement", "BEGIN"))


def begin_immediate(conn: Any) -> Any:
    """Begin a write transaction at once (SQLite `BEGIN IMMEDIATE`; a plain BEGIN elsewhere)."""
    if conn.dialect.name == "sqlite":
        conn.info["begin_statement"] = "BEGIN IMMEDIATE"
    return conn.begin()


def make_engine(url: str, **kw: Any) -> Engine:
    """Create an engine. SQLite files get WAL mode and a busy timeout; their folder is created."""
    url = normalise_url(url)
    try:
        u = make_url(url)
    except Exception as exc:
        raise StoreError(f"invalid database URL {redact_url(url)!r}: {exc}") from None
    if u.drivername.startswith("sqlite"):
        db = u.database or ""
        kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        if db in ("", ":memory:"):
            kw.setdefault("poolclass", StaticPool)
        elif not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, **kw)


def dialect_insert(engine: Engine) -> Any:
    """The dialect's `insert` construct (it has `on_conflict_do_nothing`) for SQLite or PostgreSQL."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def store_error(what: str, exc: SQLAlchemyError) -> StoreError:
    """The StoreError for a failed statement: what failed and the driver's first line, no parameters."""
    return StoreError(f"{what} failed: {exc.__class__.__name__}: {str(exc.args[0]) if exc.args else ''}")
