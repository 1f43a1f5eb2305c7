"""`architect cache ...`: stats, purge, warm, eval."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from architect.cli.common import (
    ConfigOpt,
    DatabaseOpt,
    JsonOpt,
    console,
    open_cli_store,
    parse_since,
    print_json,
    resolve_config,
)
from architect.config import Config

__all__ = ["app"]

app = typer.Typer(help="The response cache: statistics, purging, warming, evaluation.", no_args_is_help=True)

_TIERS = ("hit-l1", "hit-l2", "hit-normalised", "hit-semantic", "miss", "bypass")


def _l2_stats(cfg: Config, store: Any) -> dict[str, Any]:
    from architect.cache.tiers import RedisL2

    if cfg.cache.l2 == "store":
        return {"backend": "store", **store.cache.stats(time.time())}
    if cfg.cache.l2 == "redis" and cfg.cache.redis_url:

        async def run() -> dict[str, Any]:
            l2 = RedisL2(cfg.cache.redis_url or "", cfg.cache.redis_prefix, time.time)
            try:
                return await l2.stats()
            finally:
                await l2.aclose()

        return asyncio.run(run())
    return {"backend": "none"}


def ledger_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-tier counts, hit rate and savings from ledger rows (columns cache, saved_cost_usd, saved_ms)."""
    counts = {t: 0 for t in _TIERS}
    saved_usd = saved_ms = 0.0
    for r in rows:
        tier = r.get("cache") or "bypass"
        counts[tier] = counts.get(tier, 0) + 1
        saved_usd += r.get("saved_cost_usd") or 0.0
        saved_ms += r.get("saved_ms") or 0.0
    lookups = sum(v for k, v in counts.items() if k != "bypass")
    hits = sum(v for k, v in counts.items() if k.startswith("hit-"))
    return {
        "calls": len(rows),
        "lookups": lookups,
        "hits": hits,
        "hit_rate": hits / lookups if lookups else 0.0,
        "by_tier": counts,
        "hit_rate_by_tier": {
            k: (v / lookups if lookups else 0.0) for k, v in counts.items() if k.startswith("hit-")
        },
        "saved_cost_usd": saved_usd,
        "saved_s": saved_ms / 1000.0,
    }


@app.command()
def stats(
    since: Annotated[str, typer.Option(help="ledger window for hit rates and savings: 15m, 24h, 7d")] = "24h",
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Entries and bytes in the L2, hit rate per tier and savings (from the ledger)."""
    cfg = resolve_config(config)
    store = open_cli_store(database_url, cfg)
    try:
        rows = store.ledger.calls_between(
            parse_since(since),
            time.time() + 1,
            columns=["cache", "saved_cost_usd", "saved_ms"],
            where={"endpoint": "chat"},
        )
        l2 = _l2_stats(cfg, store)
    finally:
        store.close()
    out = {"since": since, "l2": l2, **ledger_summary(rows)}
    if json:
        print_json(out)
        return
    console.print(
        f"L2 ({l2.get('backend')}): {l2.get('entries', 0):,} entries, {l2.get('bytes', 0):,} bytes"
        + (f", {l2['expired']:,} expired" if l2.get("expired") else "")
    )
    t = Table(title=f"cache outcomes, last {since}")
    t.add_column("outcome")
    t.add_column("calls", justify="right")
    t.add_column("share of lookups", justify="right")
    for tier, n in out["by_tier"].items():
        share = f"{n / out['lookups']:.1%}" if out["lookups"] and tier != "bypass" else "-"
        t.add_row(tier, f"{n:,}", share)
    console.print(t)
    console.print(
        f"hit rate {out['hit_rate']:.1%}; saved ${out['saved_cost_usd']:,.4f} and {out['saved_s']:,.1f} s"
    )


@app.command()
def purge(
    namespace: Annotated[str | None, typer.Option(help='namespace: "k:<key id>" or "p:<project>"')] = None,
    key_id: Annotated[str | None, typer.Option("--key", help="a key's namespace (k:<key id>)")] = None,
    project: Annotated[str | None, typer.Option(help="a project's namespace (p:<project>)")] = None,
    model: Annotated[str | None, typer.Option(help="a model group")] = None,
    older_than: Annotated[str | None, typer.Option(help="entries created before: 1h, 7d ...")] = None,
    all_: Annotated[bool, typer.Option("--all", help="purge everything")] = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Delete cached answers from the L2 (store or Redis). A running gateway's in-process L1 is purged
    with POST /api/v1/cache/purge."""
    from architect.cache.tiers import RedisL2, StoreL2

    given = [x for x in (namespace, key_id, project) if x]
    if len(given) > 1:
        raise typer.BadParameter("give at most one of --namespace, --key, --project")
    ns = namespace or (f"k:{key_id}" if key_id else f"p:{project}" if project else None)
    before = parse_since(older_than) if older_than else None
    if ns is None and model is None and before is None and not all_:
        raise typer.BadParameter(
            "give a filter (--namespace/--key/--project, --model, --older-than) or --all"
        )
    cfg = resolve_config(config)
    if cfg.cache.l2 == "none":
        console.print(
            "cache.l2 is 'none': there is no shared cache to purge (restart the gateway to empty L1)"
        )
        raise typer.Exit(0)
    store = open_cli_store(database_url, cfg)

    async def run() -> int:
        if cfg.cache.l2 == "redis":
            if not cfg.cache.redis_url:
                raise typer.BadParameter("cache.redis_url is not set in the config")
            l2: Any = RedisL2(cfg.cache.redis_url, cfg.cache.redis_prefix, time.time)
        else:
            l2 = StoreL2(store.cache, time.time)
        try:
            return int(await l2.purge(namespace=ns, model=model, created_before=before))
        finally:
            await l2.aclose()

    try:
        removed = asyncio.run(run())
    finally:
        store.close()
    if json:
        print_json({"removed": removed, "namespace": ns, "model": model, "created_before": before})
        return
    console.print(f"removed {removed:,} cached answers from the {cfg.cache.l2} L2")


@app.command()
def warm(
    top: Annotated[int, typer.Option(min=1, help="how many distinct requests to replay")] = 100,
    since: Annotated[str, typer.Option(help="ledger window: 24h, 7d ...")] = "7d",
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Replay the most frequent deterministic requests from the ledger through the normal pipeline
    (as the key that made them, within its limits and budgets) so their answers are in the L2.
    Needs request bodies in the ledger: `ledger.bodies: full`."""
    from architect.cache.warm import warm as run_warm
    from architect.runtime import Runtime

    cfg = resolve_config(config)
    if cfg.cache.l2 == "none":
        console.print("[yellow]cache.l2 is 'none': warmed answers would live only in this process's L1[/]")
    store = open_cli_store(database_url, cfg)

    async def run() -> Any:
        runtime = Runtime(cfg, store, config_path=config)
        await runtime.start()
        try:
            report = await run_warm(
                store.ledger, runtime.pipeline.chat, runtime.principal_of, top=top, since=parse_since(since)
            )
            runtime.ledger.flush()
            return report
        finally:
            await runtime.stop()

    try:
        report = asyncio.run(run())
    finally:
        store.close()
    out = {
        "scanned": report.scanned,
        "candidates": report.candidates,
        "without_body": report.without_body,
        "redacted": report.redacted,
        "non_deterministic": report.non_deterministic,
        "results": report.results,
        "cost_usd": report.cost_usd,
        "errors": report.errors[:20],
    }
    if json:
        print_json(out)
    else:
        console.print(
            f"scanned {report.scanned:,} ledger calls, replayed {report.candidates:,} distinct requests: "
            + (", ".join(f"{k} {v}" for k, v in sorted(report.results.items())) or "nothing")
            + f"; upstream cost ${report.cost_usd:,.4f}"
        )
        for e in report.errors[:5]:
            console.print(f"  [red]error[/]: {e}")
    if report.bodies_missing or (report.scanned and not report.candidates and report.without_body):
        console.print(
            "[yellow]the ledger holds no request bodies for these calls, so nothing can be replayed: "
            "set `ledger.bodies: full` in the config (or per key) to make cache warming possible[/]"
        )
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    data: Annotated[
        str, typer.Option(help="JSONL of {a, b, duplicate} pairs")
    ] = "../shared/data/cache/qqp_dev.jsonl",
    model: Annotated[str, typer.Option(help="embedding model: minilm or static")] = "minilm",
    threshold: Annotated[
        float | None, typer.Option(help="cosine threshold (default: the shipped one)")
    ] = None,
    verifier: Annotated[
        str | None, typer.Option(help="'gateway:<model group>' (needs --config) or 'python:module:attr'")
    ] = None,
    verifier_limit: Annotated[int, typer.Option(help="candidates checked by the verifier")] = 200,
    limit: Annotated[int | None, typer.Option(help="evaluate a random sample of this many pairs")] = None,
    target_precision: Annotated[float, typer.Option(help="precision the held-out check aims at")] = 0.90,
    embeddings_cache: Annotated[
        str | None, typer.Option(help="folder to keep computed embeddings in (faster re-runs)")
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    json: JsonOpt = False,
) -> None:
    """Precision/recall of the semantic tier on labelled pairs: one question of each pair is cached,
    the other is the query. Prints the figures at the threshold, the curve, recall at precision
    0.90/0.95, a held-out check of the threshold choice and lookup latency."""
    from pathlib import Path
    from types import SimpleNamespace

    from architect.cache.embedders import load_embedder
    from architect.cache.eval import evaluate, load_pairs
    from architect.cache.semantic import DEFAULT_THRESHOLD, load_verifier
    from architect.principal import ADMIN

    t = DEFAULT_THRESHOLD if threshold is None else threshold
    if not 0 < t <= 1:
        raise typer.BadParameter("expected a cosine threshold in (0, 1]", param_hint="--threshold")
    pairs = load_pairs(data, limit)
    embedder = load_embedder(model)
    cache_dir = Path(embeddings_cache).expanduser() if embeddings_cache else None

    async def run() -> Any:
        runtime = None
        verify = None
        if verifier:
            if verifier.startswith("gateway:"):
                from architect.runtime import Runtime

                cfg = resolve_config(config)
                runtime = Runtime(cfg, open_cli_store(database_url, cfg), config_path=config)
                await runtime.start()
            v = load_verifier(verifier, runtime.pipeline.chat if runtime is not None else None)
            assert v is not None
            who = SimpleNamespace(principal=ADMIN, tags={"feature": "cache-eval"})

            async def verify(q: str, cached: str) -> bool:
                return await v.verify(q, cached, who)  # type: ignore[arg-type]

        try:
            return await evaluate(
                pairs,
                embedder,
                t,
                target_precision=target_precision,
                cache_dir=cache_dir,
                verifier=verify,
                verifier_limit=verifier_limit,
            )
        finally:
            if runtime is not None:
                await runtime.stop()
                runtime.store.close()

    result = asyncio.run(run())
    if json:
        print_json(result.as_dict())
        return
    _print_eval(result)


def _print_eval(r: Any) -> None:
    console.print(
        f"[bold]{r.model}[/] on {r.pairs:,} pairs ({r.duplicates:,} duplicates), threshold {r.threshold:.3f}: "
        f"precision {r.precision:.3f}, recall {r.recall:.3f}, F1 {r.f1:.3f} ({r.hits:,} hits)"
    )
    t = Table(title="precision / recall by threshold")
    for col in ("cosine >=", "precision", "recall", "F1", "hits"):
        t.add_column(col, justify="right")
    for p in r.curve:
        if round(p["threshold"] * 100) % 5 == 0 or p["threshold"] >= 0.9:
            t.add_row(
                f"{p['threshold']:.3f}",
                f"{p['precision']:.3f}",
                f"{p['recall']:.3f}",
                f"{p['f1']:.3f}",
                f"{int(p['hits']):,}",
            )
    console.print(t)
    for k, v in r.recall_at_precision.items():
        at = r.threshold_at_precision[k]
        console.print(
            f"recall at precision {k}: " + ("not reached" if v is None else f"{v:.3f} (cosine >= {at:.2f})")
        )
    s = r.split
    if s.get("chosen_on_half_a") is None:
        console.print(f"held-out check: no threshold reaches precision {s['target_precision']:.2f} on half A")
    else:
        lo, hi = s["ci95"]
        console.print(
            f"held-out check: cosine >= {s['chosen_on_half_a']:.2f} chosen on half A for precision "
            f"{s['target_precision']:.2f} gives {s['held_out_precision']:.3f} on half B "
            f"(95% CI {lo:.3f}-{hi:.3f}, {s['held_out_hits']:,} hits), recall {s['held_out_recall']:.3f}"
        )
    console.print(
        f"lookup latency: embedding p50 {r.embed_ms_p50:.1f} ms / p95 {r.embed_ms_p95:.1f} ms, "
        f"vector search p50 {r.search_ms_p50:.2f} ms / p95 {r.search_ms_p95:.2f} ms ({r.pairs:,} entries)"
    )
    if r.verifier:
        v = r.verifier
        console.print(
            f"verifier: {v['accepted']}/{v['candidates_checked']} candidates accepted; precision "
            f"{v['precision_before']} before, {v['precision_after']} after "
            f"(95% CI {v['ci95_after'][0]:.3f}-{v['ci95_after'][1]:.3f}); "
            f"kept {v['correct_kept']}/{v['correct_candidates']} correct hits"
        )
