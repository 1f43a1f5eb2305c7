"""Engine creation (URL normalisation, supported schemes, SQLite WAL pragmas, driver selection), the
first connection's check (a StoreError naming the URL when it fails), and the small pieces the SQL
repositories share: the dialect's INSERT (for ON CONFLICT) and the error a failed statement becomes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from architect.errors import StoreError

__all__ = [
    "begin_immediate",
    "check_connection",
    "dialect_insert",
    "is_sqlite",
    "make_engine",
    "normalise_url",
    "redact_url",
    "sqlite_file",
    "store_error",
]

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


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
    """The URL as it was written, its password shown as `***`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def sqlite_file(url: str) -> Path | None:
    """The file of a file-backed SQLite URL; None for another database, an in-memory one or a `file:` URI."""
    try:
        u = make_url(normalise_url(url))
    except Exception:
        return None
    db = u.database or ""
    if u.get_backend_name() != "sqlite" or db in ("", ":memory:") or db.startswith("file:"):
        return None
    return Path(db).expanduser()


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
    """Create an engine (no connection yet). SQLite files get WAL mode and a busy timeout; their folder
    is created. A URL that does not parse, names another database than SQLite or PostgreSQL, or whose
    driver is not installed is a StoreError naming it (password redacted)."""
    shown = redact_url(url)
    try:
        u = make_url(normalise_url(url))
    except Exception as exc:
        raise StoreError(f"invalid database URL {shown!r}: {exc}") from None
    if u.get_backend_name() not in SUPPORTED_BACKENDS:
        scheme = url.split("://", 1)[0] if "://" in url else u.drivername
        raise StoreError(f"unsupported database URL scheme {scheme!r} (use sqlite or postgresql)")
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        if db in ("", ":memory:"):
            kw.setdefault("poolclass", StaticPool)
        file = sqlite_file(url)
        if file is not None:
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder of the database {shown}: {exc.strerror or exc}"
                ) from None
        engine = _create(u, shown, kw)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    kw.setdefault("pool_pre_ping", True)
    return _create(u, shown, kw)


def _create(u: URL, shown: str, kw: dict[str, Any]) -> Engine:
    try:
        return create_engine(u, **kw)
    except ImportError as exc:
        raise StoreError(
            f"the database driver of {shown} ({u.drivername}) is not installed: {exc.name or exc}"
        ) from None
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {shown!r}: {exc}") from None


# libpq's wording around the reason: "connection failed: connection to server at "h", port 1 failed: "
_PG_PREFIXES = re.compile(
    r"^(connection failed:\s*)?(connection to server at [^,]*, port \d+ failed:\s*)?(FATAL:\s*)?"
)


def _connect_failure_reason(exc: BaseException) -> str:
    """The driver's reason a connection failed, in a few words (its first line, libpq's prefixes off)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    reason = _PG_PREFIXES.sub("", lines[0]).strip() if lines else ""
    if not reason:
        return type(orig).__name__
    if reason[1:2].islower():  # "Connection refused" -> "connection refused", not "SSL ..." or "FATAL"
        reason = reason[0].lower() + reason[1:]
    return reason


def check_connection(engine: Engine, url: str) -> None:
    """Connect once; a failure is a StoreError naming the URL (password redacted) and the reason."""
    try:
        with engine.connect():
            pass
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(
            f"cannot connect to the database {redact_url(url)}: {_connect_failure_reason(exc)}"
        ) from None


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
