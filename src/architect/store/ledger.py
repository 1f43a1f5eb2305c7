"""Ledger storage: one row per call, its upstream attempts kept with it (`attempt_log`, a JSON array).
SQL and in-memory implementations of one interface. Writes take `CallRecord`s (`architect.records`);
reads return rows as dicts.

Text values are written through `store.text.storable` (NUL and lone surrogates become U+FFFD) on
every implementation. A write the database refuses because of a row's values raises
`StoreDataError` (the ledger writer then isolates that row); any other failure raises `StoreError`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import attrgetter, is_not
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, case, delete, func, or_, select
from sqlalchemy.pool import StaticPool

from architect.errors import StoreDataError, StoreError
from architect.records import CallRecord, encode_attempts
from architect.store.request_ids import is_reuse, same_request
from architect.store.schema import calls
from architect.store.text import String, Text, TextPositions, storable

__all__ = ["ATTEMPT_FIELDS", "CALL_COLUMNS", "LedgerRepo", "MemoryLedger", "SQLLedger"]

log = logging.getLogger("architect.store.ledger")

# The columns a reader sees (`calls_between`, `get_call`); the attempts come from `attempts_for`.
CALL_COLUMNS = tuple(c.name for c in calls.columns if c.name not in ("id", "attempt_log"))
# What one entry of a call's `attempt_log` holds.
ATTEMPT_FIELDS = (
    "attempt",
    "ts",
    "model_group",
    "deployment",
    "provider",
    "status",
    "http_status",
    "error_kind",
    "ttft_ms",
    "total_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "route_reason",
)
_CALL_DEFAULTS: dict[str, Any] = {
    c.name: (c.default.arg if c.default is not None else None)  # type: ignore[attr-defined]
    for c in calls.columns
    if c.name != "id"
}
_ATTEMPT_DEFAULTS: dict[str, Any] = {
    k: (0 if k in ("prompt_tokens", "completion_tokens") else 0.0 if k == "cost_usd" else None)
    for k in ATTEMPT_FIELDS
}


class LedgerRepo(Protocol):
    def record(self, records: Sequence[CallRecord]) -> None:
        """Insert calls (one batched insert, one transaction), each with its attempts in order."""

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Calls with since <= ts < until, optionally filtered by column equality."""

    def get_call(self, request_id: str, key_id: str | None = None) -> dict[str, Any] | None:
        """The call recorded as `request_id`; with `key_id`, the key's call: that one if it is the key's,
        else the newest of the key's calls its client sent as `request_id` (recorded under an id
        derived from it, `store.request_ids`)."""

    def window_stats(self, since: float, until: float, target: str | None, q: float | None) -> dict[str, Any]:
        """Counted by the store, over calls with since <= ts < until (with `target`, only those whose
        model group or deployment it names): `calls`, `errors` (status other than ok) and
        `quantile_ms`, the q-quantile (0..1) of the total_ms of the ok calls, the value of rank
        floor(q * (n - 1)) (the rule of every quantile the metrics report),
        None when there are none or q is None. For alert rules, which must not load a busy window's
        rows."""

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        """The call's attempts in order, each with its `request_id`; [] for an unknown call."""

    def purge_before(self, ts: float) -> int:
        """Delete calls older than ts; returns the number deleted."""

    def close(self) -> None:
        """Release what the repository holds (its write connection)."""


def _attempts(request_id: str, log_json: str | bytes | None) -> list[dict[str, Any]]:
    if not log_json:
        return []
    return [{"request_id": request_id, **_ATTEMPT_DEFAULTS, **a} for a in orjson.loads(log_json)]


def _at_rank(values: Sequence[float]) -> float | None:
    """The q-quantile, given the sorted values from its rank floor(q * (n - 1)) on (none: no values)."""
    return float(values[0]) if values else None


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc.args[0] if exc.args else ''}"


def _insert_sql(columns: Sequence[str], paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _log_text(log_: Any) -> str | None:
    """A record's `attempt_log` as stored (None when it has none)."""
    return encode_attempts(log_) if log_ else None


def _tags_text(tags: Any) -> str | None:
    return orjson.dumps(tags).decode() if tags else None


_COLUMNS = tuple(_CALL_DEFAULTS)
_LOG_AT = _COLUMNS.index("attempt_log")
_TAGS_AT = _COLUMNS.index("tags")
_SCORES_AT = _COLUMNS.index("route_scores")
_VALUES = attrgetter(*_COLUMNS)  # a record's values in column order, as a tuple
_NONES = tuple([None] * len(_COLUMNS))
# The text columns: the raw insert path escapes them as the schema's types do for SQLAlchemy.
_TEXT = TextPositions([i for i, c in enumerate(_COLUMNS) if isinstance(calls.c[c].type, String | Text)])


def _runs(records: Sequence[CallRecord]) -> list[tuple[tuple[bool, ...], list[tuple[Any, ...]]]]:
    """Records as parameter tuples, in runs of consecutive records that set the same columns: a
    column whose value is None is left out of the INSERT (it is NULL either way, and binding a NULL
    costs the database about as much as binding a value; a call leaves about a third of its columns
    empty). Runs keep the records in their order."""
    runs: list[tuple[tuple[bool, ...], list[tuple[Any, ...]]]] = []
    last: tuple[bool, ...] | None = None
    params: list[tuple[Any, ...]] = []
    for r in records:
        vals = list(_VALUES(r))
        vals[_LOG_AT] = _log_text(vals[_LOG_AT])
        vals[_TAGS_AT] = _tags_text(vals[_TAGS_AT])
        vals[_SCORES_AT] = _tags_text(vals[_SCORES_AT])
        _TEXT.apply(vals)
        mask = tuple(map(is_not, vals, _NONES))
        if mask != last:
            last, params = mask, []
            runs.append((mask, params))
        params.append(tuple(compress(vals, mask)))
    return runs


class SQLLedger:
    """Writes go to the driver's executemany on a connection the writer keeps (the ledger writer's
    batches are the hottest writes in the system, and a pool checkout plus SQLAlchemy's transaction
    bookkeeping per batch cost as much as the rows); reads use SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._paramstyle = engine.dialect.paramstyle
        self._inserts: dict[tuple[bool, ...], str] = {}
        self._sqlite = engine.dialect.name == "sqlite"
        # An in-memory SQLite database is one connection shared by every user: never hold it.
        self._keep = not isinstance(engine.pool, StaticPool)
        self._conn: Any = None

    def record(self, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        try:
            runs = _runs(records)
        except Exception as exc:  # a value that cannot become a parameter (e.g. attempts not JSON)
            raise StoreDataError(f"ledger write failed: {_describe(exc)}") from exc
        try:
            conn = self._conn if self._conn is not None else self._engine.raw_connection()
        except Exception as exc:  # the pool raises the driver's own errors (not SQLAlchemy's) here
            raise StoreError(f"ledger write failed: cannot connect: {exc.__class__.__name__}") from exc
        try:
            cur = conn.cursor()
            try:
                if self._sqlite:
                    cur.execute("BEGIN")
                for mask, params in runs:
                    cur.executemany(self._insert(mask), params)
                if self._sqlite:
                    cur.execute("COMMIT")
                else:
                    conn.commit()
            finally:
                cur.close()
        except Exception as exc:
            refused = self._refused(exc)
            if not (refused and self._rollback(conn)):
                self._discard(conn)
            raise (StoreDataError if refused else StoreError)(
                f"ledger write failed: {_describe(exc)}"
            ) from exc
        if self._keep:
            self._conn = conn
        else:
            conn.close()

    def _refused(self, exc: Exception) -> bool:
        """Whether the database (or its driver) refused the values of a row, rather than failing as a
        whole (connection lost, database locked or missing a table): integrity and data errors, and
        values the driver cannot convert."""
        dbapi = self._engine.dialect.loaded_dbapi
        return isinstance(
            exc, dbapi.IntegrityError | dbapi.DataError | ValueError | TypeError | OverflowError
        )

    def _rollback(self, conn: Any) -> bool:
        """End the failed transaction and keep the connection; False if that failed too."""
        try:
            if self._sqlite:
                if conn.driver_connection.in_transaction:
                    conn.driver_connection.execute("ROLLBACK")
            else:
                conn.rollback()
        except Exception:
            return False
        if self._keep:
            self._conn = conn
        else:
            conn.close()
        return True

    def _insert(self, mask: tuple[bool, ...]) -> str:
        sql = self._inserts.get(mask)
        if sql is None:
            sql = self._inserts[mask] = _insert_sql(list(compress(_COLUMNS, mask)), self._paramstyle)
        return sql

    def _discard(self, conn: Any) -> None:
        self._conn = None
        try:
            if self._sqlite and conn.driver_connection.in_transaction:
                conn.driver_connection.execute("ROLLBACK")
            conn.invalidate() if self._keep else conn.close()
        except Exception:  # the connection is unusable anyway
            log.debug("discarding the ledger write connection failed", exc_info=True)

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        cols = [calls.c[c] for c in (columns or CALL_COLUMNS)]
        q = select(*cols).where(calls.c.ts >= since, calls.c.ts < until)
        for k, v in (where or {}).items():
            q = q.where(calls.c[k].is_(None) if v is None else calls.c[k] == v)
        q = q.order_by(calls.c.ts.desc() if newest_first else calls.c.ts, calls.c.id)
        if limit is not None:
            q = q.limit(limit).offset(offset)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def window_stats(self, since: float, until: float, target: str | None, q: float | None) -> dict[str, Any]:
        cond = [calls.c.ts >= since, calls.c.ts < until]
        if target is not None:
            cond.append(or_(calls.c.model_group == target, calls.c.deployment == target))
        ok = calls.c.status == "ok"
        counts = select(func.count(), func.coalesce(func.sum(case((ok, 1), else_=0)), 0)).where(*cond)
        with self._engine.connect() as conn:
            n, n_ok = conn.execute(counts).one()
            values: list[float] = []
            if n_ok and q is not None:
                pos = q * (n_ok - 1)
                ranked = (
                    select(calls.c.total_ms)
                    .where(*cond, ok)
                    .order_by(calls.c.total_ms)
                    .limit(1)
                    .offset(int(pos))
                )
                values = [float(v) for v in conn.execute(ranked).scalars()]
        quantile = _at_rank(values) if q is not None else None
        return {"calls": int(n), "errors": int(n) - int(n_ok), "quantile_ms": quantile}

    def get_call(self, request_id: str, key_id: str | None = None) -> dict[str, Any] | None:
        q = select(*(calls.c[c] for c in CALL_COLUMNS))
        if key_id is None:
            q = q.where(calls.c.request_id == request_id)
        else:
            exact_first = case((calls.c.request_id == request_id, 0), else_=1)
            q = (
                q.where(same_request(calls.c.request_id, request_id), calls.c.key_id == key_id)
                .order_by(exact_first, calls.c.ts.desc())
                .limit(1)
            )
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        q = select(calls.c.attempt_log).where(calls.c.request_id == request_id)
        with self._engine.connect() as conn:
            return _attempts(request_id, conn.execute(q).scalar())

    def purge_before(self, ts: float) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(calls).where(calls.c.ts < ts)).rowcount or 0


class MemoryLedger:
    """The in-memory double, for fast unit tests."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def record(self, records: Sequence[CallRecord]) -> None:
        ids = {c["request_id"] for c in self.calls}
        new: list[dict[str, Any]] = []
        for r in records:
            if r.request_id in ids:
                raise StoreDataError(f"ledger write failed: duplicate request_id {r.request_id}")
            ids.add(r.request_id)
            row = dict(zip(_COLUMNS, _VALUES(r), strict=True))
            row["attempt_log"] = _log_text(row["attempt_log"])
            row["tags"] = _tags_text(row["tags"])
            row["route_scores"] = _tags_text(row["route_scores"])
            new.append({k: storable(v) if isinstance(v, str) else v for k, v in row.items()})
        self.calls.extend(new)

    def calls_between(
        self,
        since: float,
        until: float,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        rows = [
            c
            for c in self.calls
            if since <= c["ts"] < until and all(c.get(k) == v for k, v in (where or {}).items())
        ]
        rows.sort(key=lambda c: c["ts"], reverse=newest_first)
        if limit is not None:
            rows = rows[offset : offset + limit]
        cols = columns or CALL_COLUMNS
        return [{k: c.get(k) for k in cols} for c in rows]

    def window_stats(self, since: float, until: float, target: str | None, q: float | None) -> dict[str, Any]:
        rows = [
            c
            for c in self.calls
            if since <= c["ts"] < until and (target is None or target in (c["model_group"], c["deployment"]))
        ]
        ok = sorted(c["total_ms"] for c in rows if c["status"] == "ok")
        pos = int(q * (len(ok) - 1)) if ok and q is not None else 0
        return {
            "calls": len(rows),
            "errors": len(rows) - len(ok),
            "quantile_ms": _at_rank(ok[pos : pos + 1]) if q is not None else None,
        }

    def get_call(self, request_id: str, key_id: str | None = None) -> dict[str, Any] | None:
        if key_id is None:
            c = next((c for c in self.calls if c["request_id"] == request_id), None)
        else:
            found = [c for c in self.calls if c["key_id"] == key_id and is_reuse(c["request_id"], request_id)]
            c = min(found, key=lambda c: (c["request_id"] != request_id, -c["ts"]), default=None)
        return {k: c.get(k) for k in CALL_COLUMNS} if c else None

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        c = next((c for c in self.calls if c["request_id"] == request_id), None)
        return _attempts(request_id, c["attempt_log"]) if c else []

    def purge_before(self, ts: float) -> int:
        before = len(self.calls)
        self.calls = [c for c in self.calls if c["ts"] >= ts]
        return before - len(self.calls)

    def close(self) -> None:
        return None
