"""Per-minute rollups of the ledger with mergeable sketches, and queries over them.

Feeding: the gateway calls `Rollups.add_one(row)` for every call it hands to the ledger writer (a few
dict updates on the event loop, so no other thread competes for the GIL per row); they are aggregated
in memory per (minute, dimensions) and appended to `metric_rollups`
every `flush_s` seconds (partial rows: several per minute and process, merged when read). Four
dimension sets are kept: 0 = (model_group, deployment, provider), 1 = those plus key_id and project,
2 = (model_group, project), 3 = (model_group, key_id); a query reads the smallest set that covers
its grouping and filters.
A compactor merges each complete hour's minute rows into hour rows (one process wins, guarded by a
watermark in the store) and purges minute rows after `minute_retention_s`.

Reading: a window is aligned to whole minutes; hours below the watermark come from hour rows, the
rest from minute rows. Groupings or filters outside dimension set 1 (feature, task, status...) fall
back to an exact scan of the ledger.

A call whose price is unknown (`cost_source` "unknown") adds nothing to `cost_usd` and is counted in
`unpriced`, so every total says how many calls it leaves out.

Cache hits are counted under the deployment and provider `cache` in every dimension set (so a stored
row holds either cache hits or calls that were not, never both); their latency is kept out of the
latency and TTFT percentiles and summarised on its own (`cache_hit_p50_ms`, ...).

Attempts: a call's figures go to the deployment that answered it (or the last one tried), its
upstream attempts to the deployment (and model group) each attempt tried, from the call's attempt
log: `attempts`, `failed_attempts` (status "error"; a client leaving is not a failure) and
`attempt_errors_by_kind`. A call with no attempt log keeps its `attempts` count on its own row.
`failovers` counts the calls answered by another deployment than the first one tried."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from architect.metrics.aggregate import CACHE, STATS_COLUMNS, summarise
from architect.metrics.sketch import Sketch
from architect.records import AttemptRecord, CallRecord
from architect.store.ledger import LedgerRepo
from architect.store.rollups import RollupRepo

__all__ = ["DIMSETS", "Agg", "Rollups", "merge_rows"]

DIMSETS: tuple[tuple[str, ...], ...] = (
    ("model_group", "deployment", "provider"),
    ("model_group", "deployment", "provider", "key_id", "project"),
    ("model_group", "project"),
    ("model_group", "key_id"),
)
ALL_DIMS = DIMSETS[1]
assert ALL_DIMS == ("model_group", "deployment", "provider", "key_id", "project")  # Rollups._add's key
_PREFERENCE = (2, 3, 0, 1)  # smallest (fewest rows) first
_SUMS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "baselined",
    "cost_baselined_usd",
    "cache_hits",
    "cache_saved_usd",
    "unpriced",
    "attempts",
    "fallbacks",
    "failed_attempts",
    "failovers",
)


@dataclass
class Agg:
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_SUMS, 0))
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    attempt_errors_by_kind: dict[str, int] = field(default_factory=dict)
    latency: Sketch = field(default_factory=Sketch)  # calls not answered by the cache
    ttft: Sketch = field(default_factory=Sketch)
    cache_latency: Sketch = field(default_factory=Sketch)  # cache hits

    def add_call(self, r: CallRecord) -> None:
        s = self.sums
        s["requests"] += 1
        if r.status != "ok":
            s["errors"] += 1
            kind = r.error_kind or r.status or "unknown"
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        s["prompt_tokens"] += r.prompt_tokens or 0
        s["completion_tokens"] += r.completion_tokens or 0
        s["cached_tokens"] += r.cached_tokens or 0
        cost = r.cost_usd or 0.0
        s["cost_usd"] += cost
        if r.baseline_cost_usd is not None:
            s["baseline_cost_usd"] += r.baseline_cost_usd
            s["baselined"] += 1
            s["cost_baselined_usd"] += cost
        s["cache_saved_usd"] += r.saved_cost_usd or 0.0
        if r.cost_source == "unknown":  # its cost_usd (0) is not a price: totals leave it out
            s["unpriced"] += 1
        log = r.attempt_log
        if not log:  # attempts without a log stay with the call (attempt-logged ones: `add_attempt`)
            s["attempts"] += r.attempts or 0
        elif r.status == "ok" and log[0].deployment != r.deployment:
            s["failovers"] += 1
        s["fallbacks"] += r.fallbacks or 0
        if r.cache_hit:
            s["cache_hits"] += 1
            if r.total_ms is not None:
                self.cache_latency.add(r.total_ms)
            return
        if r.total_ms is not None:
            self.latency.add(r.total_ms)
        if r.ttft_ms is not None:
            self.ttft.add(r.ttft_ms)

    def add_attempt(self, a: AttemptRecord) -> None:
        """One upstream attempt made on this aggregate's deployment."""
        s = self.sums
        s["attempts"] += 1
        if a.status == "error":
            s["failed_attempts"] += 1
            kind = a.error_kind or "unknown"
            self.attempt_errors_by_kind[kind] = self.attempt_errors_by_kind.get(kind, 0) + 1

    def merge(self, other: Agg) -> None:
        s = self.sums
        for k, v in other.sums.items():
            s[k] += v
        _add_counts(self.errors_by_kind, other.errors_by_kind)
        _add_counts(self.attempt_errors_by_kind, other.attempt_errors_by_kind)
        self.latency.merge(other.latency)
        self.ttft.merge(other.ttft)
        self.cache_latency.merge(other.cache_latency)

    def add_row(self, row: Mapping[str, Any], *, sketches: bool = True) -> None:
        """Merge a rollup row; `sketches=False` skips the percentile sketches (most of the cost)."""
        s = self.sums
        for k in _SUMS:
            s[k] += row.get(k) or 0
        if row.get("errors_by_kind"):
            _add_counts(self.errors_by_kind, orjson.loads(row["errors_by_kind"]))
        if row.get("attempt_errors_by_kind"):
            _add_counts(self.attempt_errors_by_kind, orjson.loads(row["attempt_errors_by_kind"]))
        if not sketches:
            return
        if row.get("provider") == CACHE:  # a row of cache hits: its latency sketch is theirs
            self.cache_latency.merge_bytes(row.get("latency_sketch"))
        else:
            self.latency.merge_bytes(row.get("latency_sketch"))
            self.ttft.merge_bytes(row.get("ttft_sketch"))

    def to_row(self) -> dict[str, Any]:
        """The stored form of an aggregate of cache hits only or of other calls only (its provider
        column says which), so one latency sketch column serves both."""
        if self.cache_latency.count and (self.latency.count or self.ttft.count):
            raise ValueError("a rollup row cannot hold cache hits together with other calls")
        latency = self.cache_latency if self.cache_latency.count else self.latency
        return {
            **self.sums,
            "errors_by_kind": _json(self.errors_by_kind),
            "attempt_errors_by_kind": _json(self.attempt_errors_by_kind),
            "latency_sketch": latency.to_bytes(),
            "ttft_sketch": self.ttft.to_bytes(),
        }

    def summary(self) -> dict[str, Any]:
        s = self.sums
        n = int(s["requests"])
        lat, ttft, hits = self.latency, self.ttft, self.cache_latency
        return {
            "requests": n,
            "errors": int(s["errors"]),
            "error_rate": (s["errors"] / n) if n else 0.0,
            "errors_by_kind": dict(self.errors_by_kind),
            "p50_ms": lat.quantile(0.5),
            "p90_ms": lat.quantile(0.9),
            "p95_ms": lat.quantile(0.95),
            "p99_ms": lat.quantile(0.99),
            "ttft_p50_ms": ttft.quantile(0.5),
            "ttft_p95_ms": ttft.quantile(0.95),
            "ttft_p99_ms": ttft.quantile(0.99),
            "cache_hit_p50_ms": hits.quantile(0.5),
            "cache_hit_p95_ms": hits.quantile(0.95),
            "cache_hit_p99_ms": hits.quantile(0.99),
            "prompt_tokens": int(s["prompt_tokens"]),
            "completion_tokens": int(s["completion_tokens"]),
            "cached_tokens": int(s["cached_tokens"]),
            "cost_usd": s["cost_usd"],
            "baseline_cost_usd": s["baseline_cost_usd"] if s["baselined"] else None,
            "saving_usd": (s["baseline_cost_usd"] - s["cost_baselined_usd"]) if s["baselined"] else None,
            "cache_hits": int(s["cache_hits"]),
            "cache_saved_usd": s["cache_saved_usd"],
            "unpriced": int(s["unpriced"]),
            "attempts": int(s["attempts"]),
            "failed_attempts": int(s["failed_attempts"]),
            "attempt_error_rate": (s["failed_attempts"] / s["attempts"]) if s["attempts"] else 0.0,
            "attempt_errors_by_kind": dict(self.attempt_errors_by_kind),
            "failovers": int(s["failovers"]),
            "fallbacks": int(s["fallbacks"]),
        }


def _add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for k, n in counts.items():
        into[k] = into.get(k, 0) + n


def _json(counts: Mapping[str, int]) -> str | None:
    return orjson.dumps(counts).decode() if counts else None


def merge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge rollup rows with equal (dimset, dimensions) into one row each (for compaction)."""
    out: dict[tuple[Any, ...], tuple[dict[str, Any], Agg]] = {}
    for r in rows:
        key = (r["dimset"], *(r[d] for d in ALL_DIMS))
        if key not in out:
            out[key] = ({"dimset": r["dimset"], **{d: r[d] for d in ALL_DIMS}}, Agg())
        out[key][1].add_row(r)
    return [{**dims, **agg.to_row()} for dims, agg in out.values()]


class Rollups:
    """Accumulates flushed ledger rows and answers aggregate queries."""

    def __init__(
        self,
        repo: RollupRepo,
        ledger: LedgerRepo,
        *,
        flush_s: float = 5.0,
        minute_retention_s: float = 3 * 86400,
        compact_lag_s: float = 900.0,
    ) -> None:
        self.repo = repo
        self.ledger = ledger
        self.flush_s = flush_s
        self.minute_retention_s = minute_retention_s
        self.compact_lag_s = compact_lag_s
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._acc: dict[tuple[Any, ...], Agg] = {}
        self._last_flush = time.monotonic()

    # -- feeding -------------------------------------------------------------------------------------
    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Fold in calls given as ledger rows (loading a ledger's rows; the gateway uses `add_one`)."""
        # Each call is added once, at the finest key (minute + every dimension); the coarser
        # dimension sets are merged from those few aggregates when they are written (`drain`).
        records = [CallRecord.from_row(r) for r in rows]
        with self._lock:
            for r in records:
                self._add(r)

    def add_one(self, r: CallRecord) -> None:
        """One call (the ledger's observer calls this for every call queued for the ledger)."""
        with self._lock:
            self._add(r)

    def _add(self, r: CallRecord) -> None:  # holding the lock
        ts = int(r.ts)
        minute = ts - ts % 60
        hit = r.cache_hit
        key = (
            minute,
            r.model_group,
            CACHE if hit else r.deployment,
            CACHE if hit else r.provider,
            r.key_id,
            r.project,
        )  # the minute and ALL_DIMS (a cache hit's deployment and provider are CACHE)
        acc = self._acc
        agg = acc.get(key)
        if agg is None:
            agg = acc[key] = Agg()
        agg.add_call(r)
        for a in r.attempt_log or ():  # each attempt to the deployment it tried, in the call's minute
            key = (minute, a.model_group, a.deployment, a.provider, r.key_id, r.project)
            agg = acc.get(key)
            if agg is None:
                agg = acc[key] = Agg()
            agg.add_attempt(a)

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.flush_s

    def on_flushed(self, rows: list[Mapping[str, Any]]) -> None:
        """Aggregate rows and write every `flush_s` (for feeding from a batch of written rows)."""
        self.add(rows)
        if self.due():
            self.flush()

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            fine, self._acc = self._acc, {}
            self._last_flush = time.monotonic()
        acc: dict[tuple[Any, ...], Agg] = {}
        for (minute, *vals), part in fine.items():
            row = dict(zip(ALL_DIMS, vals, strict=True))
            hit = row["provider"] == CACHE  # cache hits stay apart in every dimension set
            for i, names in enumerate(DIMSETS):
                key = (minute, i, hit, *(row[d] for d in names))
                agg = acc.get(key)
                if agg is None:
                    agg = acc[key] = Agg()
                agg.merge(part)
        out = []
        for (minute, dimset, hit, *vals), agg in acc.items():
            dims = dict.fromkeys(ALL_DIMS)
            if hit:
                dims.update(deployment=CACHE, provider=CACHE)
            dims.update(zip(DIMSETS[dimset], vals, strict=True))
            out.append({"res": 60, "bucket": minute, "dimset": dimset, **dims, **agg.to_row()})
        return out

    def flush(self) -> int:
        """Write what is pending. Flushes are serialised, so when one returns, every call added before
        it is in the store (also those another thread's flush took and was still writing)."""
        with self._flushing:
            rows = self.drain()
            self.repo.insert_rollups(rows)
        return len(rows)

    def compact(self, now: float | None = None) -> int:
        """Compact every complete hour older than `compact_lag_s`; purge old minute rows."""
        now = time.time() if now is None else now
        n = 0
        if self.repo.hour_watermark() is None:  # the first call sets the watermark
            self.repo.compact_next_hour(merge_rows, now - self.compact_lag_s)
        while self.repo.compact_next_hour(merge_rows, now - self.compact_lag_s) is not None:
            n += 1
        w = self.repo.hour_watermark()
        if w is not None:
            self.repo.purge_rollups(60, min(w, now - self.minute_retention_s))
        return n

    # -- reading -------------------------------------------------------------------------------------
    @staticmethod
    def dimset_for(needed: Iterable[str]) -> int | None:
        need = set(needed)
        return next((i for i in _PREFERENCE if need <= set(DIMSETS[i])), None)

    def _plan(self, lo: int, hi: int, now: float) -> list[tuple[int, int, int]]:
        """[(res, from, to)] covering [lo, hi) with hour rows where compacted."""
        w = self.repo.hour_watermark()
        if w is None:
            return [(60, lo, hi)]
        wm = int(w)
        h0 = math.ceil(lo / 3600) * 3600
        h1 = min(hi - hi % 3600, wm)
        if h1 <= h0:
            return [(60, lo, hi)]
        return [p for p in ((60, lo, h0), (3600, h0, h1), (60, h1, hi)) if p[2] > p[1]]

    def _rows(
        self, dimset: int, lo: int, hi: int, where: Mapping[str, Any], now: float
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for res, a, b in self._plan(lo, hi, now):
            out += self.repo.rollup_rows(dimset, res, a, b, where)
        return out

    def align(self, since: float, until: float, now: float) -> tuple[int, int]:
        lo = int(since) - int(since) % 60
        hi = int(math.ceil(until / 60) * 60)
        if lo < now - self.minute_retention_s:  # minute rows are gone there: whole hours
            lo -= lo % 3600
        return lo, hi

    def summary(
        self,
        since: float,
        until: float,
        group_by: Sequence[str],
        where: Mapping[str, Any],
        now: float | None = None,
        *,
        percentiles: bool = True,
    ) -> tuple[list[dict[str, Any]], tuple[int, int], str]:
        """Rows per group; also the aligned window and the source ("rollups" or "ledger").
        `percentiles=False` leaves the latency percentiles out (None), for totals over long windows."""
        now = time.time() if now is None else now
        dimset = self.dimset_for([*group_by, *where])
        if dimset is None:
            rows = self.ledger.calls_between(since, until, columns=STATS_COLUMNS, where=dict(where))
            return summarise(rows, list(group_by)), (int(since), int(until)), "ledger"
        lo, hi = self.align(since, until, now)
        groups: dict[tuple[Any, ...], Agg] = {}
        if percentiles:
            rows = self._rows(dimset, lo, hi, where, now)
        else:  # sums only: the database adds them up (errors_by_kind is left out too)
            rows = [
                r
                for res, a, b in self._plan(lo, hi, now)
                for r in self.repo.rollup_sums(dimset, res, a, b, where, group_by, _SUMS)
            ]
        for r in rows:
            key = tuple(r[g] for g in group_by)
            agg = groups.get(key)
            if agg is None:
                agg = groups[key] = Agg()
            agg.add_row(r, sketches=percentiles)
        out = [
            {**dict(zip(group_by, k, strict=True)), **agg.summary()}
            for k, agg in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
        ]
        return out, (lo, hi), "rollups"

    def timeseries(
        self,
        since: float,
        until: float,
        step: int,
        group_by: Sequence[str],
        where: Mapping[str, Any],
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        dimset = self.dimset_for([*group_by, *where])
        if dimset is None:
            raise ValueError(
                "group_by/filters: time series support model_group, deployment, provider, key_id, project"
            )
        lo, hi = self.align(since, until, now)
        lo -= lo % step
        series: dict[tuple[Any, ...], Agg] = {}
        for r in self._rows(dimset, lo, hi, where, now):
            t = int(r["bucket"]) - int(r["bucket"]) % step
            key = (t, *(r[g] for g in group_by))
            agg = series.get(key)
            if agg is None:
                agg = series[key] = Agg()
            agg.add_row(r)
        if not group_by:  # a point for every step, zeros where nothing happened
            for t in range(lo, hi, step):
                series.setdefault((t,), Agg())
        points = []
        for key, agg in sorted(series.items(), key=lambda kv: (tuple(str(x) for x in kv[0][1:]), kv[0][0])):
            s = agg.summary()
            points.append(
                {
                    "t": key[0],
                    **dict(zip(group_by, key[1:], strict=True)),
                    "requests": s["requests"],
                    "errors": s["errors"],
                    "p50_ms": s["p50_ms"],
                    "p95_ms": s["p95_ms"],
                    "p99_ms": s["p99_ms"],
                    "ttft_p50_ms": s["ttft_p50_ms"],
                    "cost_usd": s["cost_usd"],
                    "unpriced": s["unpriced"],
                    "baseline_cost_usd": s["baseline_cost_usd"],
                    "cache_hits": s["cache_hits"],
                    "prompt_tokens": s["prompt_tokens"],
                    "completion_tokens": s["completion_tokens"],
                }
            )
        return points
