"""The configuration reference (docs/configuration.md) generated from the config models, so the
documentation cannot drift from the code: `architect config reference > docs/configuration.md`."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from architect.config import Config

__all__ = ["DESCRIPTIONS", "missing_descriptions", "reference_markdown"]

_INTRO = """# Configuration reference

Architect reads one YAML file (`architect serve --config FILE`, or `ARCHITECT_CONFIG`). Any string may
reference the environment as `${NAME}` or `${NAME:-default}`; put secrets there, never in the file.
`ARCHITECT_ADMIN_KEY` and `ARCHITECT_DATABASE_URL` override `auth.admin_key` and `database_url`.
Validate a file with `architect config check FILE`: a wrong field is reported with its path
(`models[2].deployments[0].price`) and what was expected, and the server does not start.
Unknown fields are errors (a typo is never silently ignored).

This page is generated from the code (`architect config reference`); a test keeps it current.
"""


# Field meanings (a field's own `description` wins). A test fails when a field has neither.
DESCRIPTIONS: dict[str, str] = {
    "Config.providers": "upstream providers: where requests can go",
    "Config.baseline": "the model group savings are measured against (the first of its deployments whose price is known)",
    "Config.models": "model groups: the names clients send as `model`",
    "Config.server": "listen address and request limits",
    "Config.auth": "the admin key (prefer the ARCHITECT_ADMIN_KEY environment variable)",
    "Config.database_url": "store URL; default SQLite at $ARCHITECT_HOME/architect.db (~/.architect)",
    "Config.ledger": "what is recorded about each call and for how long",
    "Config.cache": "response caching",
    "Config.alerts": "alert rules evaluated continuously",
    "Config.alert_webhook": "URL that receives each alert firing/resolution (POST, retried)",
    "ProviderConfig.name": "unique name deployments refer to (not `cache`: the metrics count cache hits under it)",
    "ProviderConfig.kind": "`openai` (any OpenAI-compatible server), `anthropic`, or `simulated`",
    "ProviderConfig.base_url": "API base including /v1 (required for openai; anthropic defaults to the public API)",
    "ProviderConfig.api_key": "the provider's key; use `${ENV_VAR}`; never logged or returned",
    "ProviderConfig.headers": "extra headers sent to the provider",
    "ProviderConfig.max_connections": "pooled keep-alive connections to this provider",
    "ModelGroupConfig.name": "the public model name clients use",
    "ModelGroupConfig.strategy": "how deployments are ordered: weighted, least-busy, lowest-latency, lowest-cost; `auto`: "
    "the group has no deployments and picks one of its `candidates` per call (docs/routing.md)",
    "ModelGroupConfig.fallbacks": "groups tried in order when every deployment of this one failed",
    "ModelGroupConfig.context_window_fallbacks": "groups with larger context windows, for context-length errors",
    "ModelGroupConfig.retry": "retry bounds for this group",
    "ModelGroupConfig.limit_wait_s": "how long a request waits for a deployment under its limits before a 429",
    "ModelGroupConfig.deployments": "at least one deployment (none for `strategy: auto`)",
    "DeploymentConfig.provider": "the provider's name",
    "DeploymentConfig.model": "the model name sent to the provider",
    "DeploymentConfig.name": "a display name; default `group/provider/model`; not `cache` (reserved for cache hits)",
    "DeploymentConfig.limits": "per-deployment rate and concurrency limits",
    "DeploymentConfig.breaker": "circuit breaker thresholds",
    "DeploymentConfig.timeout_s": "longest wait for an answer (for streams: for the first byte, then between chunks)",
    "DeploymentConfig.weight": "share of traffic under the weighted strategy",
    "DeploymentConfig.context_window": "prompt + max_tokens limit; larger requests skip this deployment",
    "DeploymentConfig.simulate": "behaviour on a `simulated` provider",
    "PriceConfig.input_per_mtok": "prompt tokens",
    "PriceConfig.output_per_mtok": "completion tokens",
    "PriceConfig.cached_input_per_mtok": "cached prompt tokens (default: the input price)",
    "PriceConfig.cache_write_per_mtok": "prompt-cache writes (Anthropic; default: the input price)",
    "LimitsConfig.rpm": "requests in any 60 s window",
    "LimitsConfig.tpm": "tokens in any 60 s window (estimate charged up front, corrected with usage)",
    "LimitsConfig.max_concurrency": "requests in flight at once",
    "BreakerConfig.failure_rate": "opens when this share of calls in the window failed ...",
    "BreakerConfig.window_s": "... over this sliding window ...",
    "BreakerConfig.min_calls": "... once the window holds at least this many calls",
    "BreakerConfig.consecutive_failures": "or after this many failures in a row",
    "BreakerConfig.cooldown_s": "time open before a half-open probe",
    "BreakerConfig.half_open_probes": "concurrent probe requests while half-open",
    "SimulationConfig.tokens_per_s": "generation speed",
    "SimulationConfig.completion_tokens": "answer length (capped by max_tokens)",
    "SimulationConfig.fail_429": "share of calls answered 429 with Retry-After",
    "SimulationConfig.fail_500": "share of calls answered 500",
    "SimulationConfig.fail_timeout": "share of calls that hang until the deployment's timeout",
    "SimulationConfig.fail_reset": "share of calls whose connection is reset",
    "SimulationConfig.fail_truncate": "share of streams cut off mid-way",
    "SimulationConfig.retry_after_s": "the Retry-After sent with simulated 429s",
    "SimulationConfig.seed": "random seed (deterministic behaviour)",
    "SimulationConfig.embedding_dim": "dimension of simulated embeddings",
    "RetryConfig.max_attempts": "attempts per group (retries and other deployments)",
    "RetryConfig.max_time_s": "total time budget for all attempts",
    "RetryConfig.backoff_base_s": "first backoff step (full jitter, doubling)",
    "RetryConfig.backoff_max_s": "largest backoff step",
    "RetryConfig.max_retry_after_s": "longest Retry-After honoured; longer ones rule the deployment out",
    "ServerConfig.host": "listen address (loopback only while no admin key is set)",
    "ServerConfig.port": "listen port",
    "ServerConfig.max_body_bytes": "larger request bodies get 413 (the OpenAI-compatible /v1 routes)",
    "ServerConfig.max_api_body_bytes": "larger request bodies get 413 everywhere else (/api/v1, the dashboard's forms); refused from Content-Length without reading, counted while streaming",
    "ServerConfig.malloc_trim_s": (
        "every this many seconds `architect serve` hands the free pages inside glibc's malloc arenas back"
        " to the system (malloc_trim(0) on a thread of its own, off the event loop); 0 = never. Linux with"
        " glibc only, a no-op elsewhere; read at start. Lowers resident memory a little under sustained"
        " load (10 s: about 2 MiB less after 10 minutes, bench/RESULTS.md) but does not stop its creep;"
        " with jemalloc (server.allocator) it does nothing"
    ),
    "ServerConfig.allocator": (
        "the memory allocator `architect serve` runs on: jemalloc (Debian's libjemalloc2; serve executes"
        " itself again with it in LD_PRELOAD, the same pid) keeps resident memory steady under sustained"
        " load, where glibc's malloc creeps (bench/RESULTS.md); system = the C library's malloc, its"
        " arenas capped at 2; auto = jemalloc where installed, else system (the start-up banner says"
        " which). Read at start"
    ),
    "AuthConfig.admin_key": "the admin key; ARCHITECT_ADMIN_KEY overrides",
    "LedgerConfig.bodies": "store request/response bodies: off, hashed (SHA-256), or full (with redaction)",
    "LedgerConfig.retention_days": "calls older than this are deleted (null keeps everything)",
    "LedgerConfig.queue_size": "in-memory rows waiting to be written; beyond it calls are dropped and counted",
    "LedgerConfig.flush_interval_ms": (
        "how often queued rows are written (at most 100 ms); each flush is one transaction, so"
        " fewer flushes cost less CPU, while shorter ones hold the CPU for less time at once"
    ),
    "LedgerConfig.writer_nice": (
        "how many steps lower the writer thread's CPU priority is than the gateway's (Linux; 0 = equal):"
        " on a busy core its batch is then spread between requests instead of stalling them"
    ),
    "CacheConfig.enabled": "turn response caching on or off",
    "CacheConfig.ttl_s": "default time to live of a cached answer",
    "CacheConfig.l1_max_bytes": "in-process cache size",
    "CacheConfig.l2": "second tier: none, the store, or Redis",
    "CacheConfig.redis_url": "Redis URL for l2: redis",
    "CacheConfig.redis_prefix": "key prefix in Redis",
    "CacheConfig.normalised": "also match after Unicode/whitespace normalisation",
    "CacheConfig.casefold": "fold case when normalising (off: case matters in code and JSON)",
    "CacheConfig.only_deterministic": "cache only temperature 0 or seeded requests",
    "CacheConfig.namespace": "tenant boundary: per key or per project",
    "CacheConfig.semantic": "semantic cache settings (see docs/caching.md); off unless enabled",
    "CacheConfig.coalesce": "identical concurrent requests share one upstream call",
    "AlertRule.name": "unique rule name",
    "AlertRule.kind": "budget, error_rate, latency_p95 or breaker_open",
    "AlertRule.threshold": "fraction in (0, 1] (budget, error_rate), milliseconds above 0 (latency_p95) or "
    "minutes (breaker_open; 0: as soon as it opens)",
    "AlertRule.window_s": "evaluation window",
    "AlertRule.target": "model group or deployment the rule watches; for a budget rule, a budget "
    "(`scope:target`, made at run time, so not checked) (default: all)",
}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:  # a constrained type (`QualityTarget`): the type it constrains
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else ""
        )
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}" if args else "map"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"`{tp.__name__}`"
    return getattr(tp, "__name__", str(tp))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{value!r}`" if value not in ([], {}) else "empty"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def walk(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.append(m)
        for f in m.model_fields.values():
            for tp in (f.annotation, *typing.get_args(f.annotation)):
                for t in (tp, *typing.get_args(tp)):
                    if isinstance(t, type) and issubclass(t, BaseModel):
                        walk(t)

    walk(root)
    return seen


def reference_markdown() -> str:
    out = [_INTRO]
    for model in _models(Config):
        out.append(f"\n## `{model.__name__}`\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("!!!"):
            out.append(doc + "\n")
        out.append("| field | type | default | meaning |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            desc = (field.description or DESCRIPTIONS.get(f"{model.__name__}.{name}", "")).replace("|", "\\|")
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    return "\n".join(out) + "\n"


def missing_descriptions() -> list[str]:
    return [
        f"{m.__name__}.{name}"
        for m in _models(Config)
        for name, f in m.model_fields.items()
        if not f.description and f"{m.__name__}.{name}" not in DESCRIPTIONS
    ]
