"""Engine creation: URL normalisation, SQLite WAL pragmas, driver selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from architect.errors import StoreError

__all__ = ["begin_immediate", "is_sqlite", "make_engine", "normalise_url", "redact_url"]


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


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite defers BEGIN on its own; take transaction control so that `BEGIN IMMEDIATE` works.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
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
