"""Typed, validated configuration: a YAML file with `${ENV_VAR}` references, plus env overrides.

`load_config(path)` is the only function that reads a file; models are frozen value objects.
Every error is a `ConfigError` naming the file, the field path (``models[2].deployments[0].price``)
and what was expected. The fields are documented in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from architect.config_agents import (
    BUILTIN,
    AgentConfig,
    EscalateStep,
    OrchestratorConfig,
    check_agents,
)
from architect.config_alerts import AlertRule, check_alerts
from architect.config_routing import CostWeight, ExplorationConfig, QualityTarget, RoutingConfig
from architect.errors import ConfigError

__all__ = [
    "CACHE_NAME",
    "AgentConfig",
    "AlertRule",
    "AuthConfig",
    "BreakerConfig",
    "CacheConfig",
    "Config",
    "DeploymentConfig",
    "EscalateStep",
    "ExplorationConfig",
    "LedgerConfig",
    "LimitsConfig",
    "LoginConfig",
    "ModelGroupConfig",
    "OrchestratorConfig",
    "PriceConfig",
    "ProviderConfig",
    "ResponsesConfig",
    "RetryConfig",
    "RoutingConfig",
    "ServerConfig",
    "SessionsConfig",
    "SimulationConfig",
    "architect_home",
    "default_database_url",
    "load_config",
    "parse_config",
]

ProviderKind = Literal["openai", "anthropic", "simulated"]
Strategy = Literal["weighted", "least-busy", "lowest-latency", "lowest-cost", "auto"]
# The deployment and provider the metrics count cache hits under; no configured one may take it.
CACHE_NAME = "cache"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Model):
    name: str = Field(min_length=1)
    kind: ProviderKind
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    max_connections: int = Field(default=256, ge=1)
    responses: bool = Field(
        default=False,
        description="the server also has the OpenAI Responses API (`{base_url}/responses`): `/v1/responses` "
        "calls are passed to it natively instead of translated to chat completions ('openai' kind only)",
    )
    prices_from: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="the provider in the price catalogue (genai-prices) whose prices apply to this provider's "
        "deployments without price: (e.g. openai for a proxy in front of api.openai.com); default: the one "
        "whose API address base_url is, else none (their price is unknown)",
    )

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderConfig:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an 'openai' provider needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if self.responses and self.kind != "openai":
            raise ValueError("responses: only an 'openai' provider can have the Responses API")
        return self


class PriceConfig(_Model):
    """Prices in USD per million tokens. A deployment's `price:` is optional, and not giving one is not
    the same as giving 0: an explicit price (0 included, e.g. for a model you run yourself) is used as
    it is (the ledger's `cost_source` is `config`). A deployment without one is priced from the price
    catalogue of the pinned `genai-prices` package (its data ships with it; nothing is fetched),
    matched by provider and model, never by model name alone: the provider is the provider's
    `prices_from`, else the one whose API address its `base_url` is (api.openai.com, api.anthropic.com,
    openrouter.ai, api.groq.com, generativelanguage.googleapis.com, api.mistral.ai, api.deepseek.com,
    api.together.xyz, ...), and cached-input and cache-write prices come along where the catalogue has
    them (`cost_source` `catalogue`; a tiered price is taken at its first tier). Anything else, such as
    a server on 127.0.0.1, has an unknown price: `architect config check` and the server's start-up
    name each such deployment, its calls are recorded with cost `unknown` (never $0.00) and every
    total says how many calls it leaves out. A call for a key or project with a budget holds, and is
    charged, the dearest known price of the deployment's group; when no deployment of the group has
    a known price, budgeted calls skip it (the route reason or the error says so). A `simulated`
    deployment without `price:` costs 0, as before."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)


class LimitsConfig(_Model):
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)


class BreakerConfig(_Model):
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0)
    min_calls: int = Field(default=10, ge=1)
    consecutive_failures: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=10.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)


class SimulationConfig(_Model):
    """Behaviour of a deployment on a `simulated` provider."""

    ttft_ms: float = Field(default=150.0, ge=0, description="median time to first token")
    ttft_sigma: float = Field(default=0.3, ge=0, description="log-normal spread of the time to first token")
    tokens_per_s: float = Field(default=80.0, gt=0)
    completion_tokens: int = Field(default=48, ge=1)
    fail_429: float = Field(default=0.0, ge=0, le=1)
    fail_500: float = Field(default=0.0, ge=0, le=1)
    fail_timeout: float = Field(default=0.0, ge=0, le=1)
    fail_reset: float = Field(default=0.0, ge=0, le=1)
    fail_truncate: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0)
    seed: int | None = None
    embedding_dim: int = Field(default=64, ge=1, le=4096)


class DeploymentConfig(_Model):
    provider: str
    model: str
    name: str | None = None
    price: PriceConfig | None = Field(
        default=None,
        description="USD per million tokens; not given: from the price catalogue (genai-prices) by provider "
        "and model, else unknown (an explicit 0, e.g. for a local model, is a price)",
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeout_s: float = Field(default=60.0, gt=0)
    weight: float = Field(default=1.0, gt=0)
    context_window: int | None = Field(default=None, ge=1)
    simulate: SimulationConfig = Field(default_factory=SimulationConfig)
    local: bool = Field(
        default=False,
        description="the model runs on infrastructure you control: a call whose route says `privacy: local-only` "
        "goes only to deployments with `local: true` (docs/routing.md)",
    )
    tools: bool = Field(
        default=True, description="takes tool definitions (`tools`); false: requests with tools skip it"
    )
    json_schema: bool = Field(
        default=True,
        description="takes a JSON-schema response format (structured output); false: such requests skip it",
    )
    images: bool = Field(default=True, description="takes image input; false: requests with images skip it")

    def name_in(self, group: str) -> str:
        """The deployment's name in model group `group`: its `name`, else `group/provider/model` (the
        router numbers a second unnamed deployment of the same model on one provider `#2`, ...)."""
        return self.name or f"{group}/{self.provider}/{self.model}"


class RetryConfig(_Model):
    max_attempts: int = Field(default=3, ge=1, le=20)
    max_time_s: float = Field(default=60.0, gt=0)
    backoff_base_s: float = Field(default=0.05, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)
    max_retry_after_s: float = Field(default=10.0, ge=0)


class ModelGroupConfig(_Model):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(
        default_factory=list,
        description="other model names this group answers to: exact names, or patterns with * and ? "
        "(e.g. 'claude-*'); a group's own name wins, then exact aliases, then patterns in file order",
    )
    strategy: Strategy = "weighted"
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    limit_wait_s: float = Field(default=0.0, ge=0)
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    candidates: list[str] = Field(
        default_factory=list,
        description="`strategy: auto` only: the model groups it chooses among, per call (at least one; not "
        "auto groups themselves)",
    )
    quality_target: QualityTarget | None = Field(
        default=None,
        description="`strategy: auto`: the cheapest candidate whose predicted P(acceptable) reaches this "
        "(default 0.8 when neither this nor cost_weight is set); keys, tasks, projects and requests may "
        "override it",
    )
    cost_weight: CostWeight | None = Field(
        default=None,
        description="`strategy: auto`, instead of quality_target: the candidate with the highest "
        "P(acceptable) - cost_weight x price / dearest price",
    )
    exploration: ExplorationConfig = Field(
        default_factory=ExplorationConfig, description="`strategy: auto`: exploration of other candidates"
    )

    @model_validator(mode="after")
    def _auto(self) -> ModelGroupConfig:
        if self.strategy == "auto":
            if not self.candidates:
                raise ValueError("candidates: an auto group needs at least one candidate group")
            if self.deployments:
                raise ValueError("deployments: an auto group has none (it routes to its candidates)")
        else:
            if not self.deployments:
                raise ValueError("deployments: at least one deployment (only an auto group has none)")
            for f in ("candidates", "quality_target", "cost_weight"):
                if f in self.model_fields_set:
                    raise ValueError(f"{f}: only for strategy: auto")
        return self


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_api_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="the largest request line and headers taken; a larger head is answered 431 and its "
        "connection closed",
    )
    malloc_trim_s: float = Field(default=0.0, ge=0)
    allocator: Literal["auto", "jemalloc", "system"] = "auto"


class LoginConfig(_Model):
    """Throttling of the dashboard login (POST /ui/login): failed attempts allowed per sliding window."""

    window_s: float = Field(
        default=60.0, gt=0, le=86400, description="the sliding window failures are counted in"
    )
    failures_per_address: int = Field(
        default=10,
        ge=1,
        description="failed logins per client address (IPv6: per /64) in the window; then 429",
    )
    failures_per_key: int = Field(
        default=5,
        ge=1,
        description="failed logins per presented key prefix (its first 12 characters); then 429",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks of reverse proxies in front of the server: for a request from one,"
        " the client is the right-most X-Forwarded-For address that is not a trusted proxy",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for i, text in enumerate(v):
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies[{i}]: not an IP address or network: {text!r}") from None
        return v


class SessionsConfig(_Model):
    """Dashboard sessions (in the memory of one process)."""

    idle_s: float = Field(default=3600.0, gt=0, description="a session unused this long ends")
    max_age_s: float = Field(default=12 * 3600.0, gt=0, description="a session ends this long after login")
    per_key: int = Field(
        default=20,
        ge=1,
        description="sessions per key; a new login beyond it ends that key's least recently used one",
    )
    max: int = Field(
        default=10_000,
        ge=1,
        description="sessions in all; beyond it expired ones go, else the login gets 503",
    )


class AuthConfig(_Model):
    admin_key: str | None = Field(default=None, repr=False)
    login: LoginConfig = Field(default_factory=LoginConfig, description="dashboard login throttling")
    sessions: SessionsConfig = Field(default_factory=SessionsConfig, description="dashboard session limits")


class LedgerConfig(_Model):
    bodies: Literal["off", "hashed", "full"] = "off"
    redact: list[str] = Field(default_factory=list, description="regexes masked in stored bodies")
    retention_days: int | None = Field(default=30, ge=1)
    queue_size: int = Field(default=100_000, ge=1)
    flush_interval_ms: int = Field(default=25, ge=1, le=100)
    writer_nice: int = Field(default=5, ge=0, le=19)


class CacheConfig(_Model):
    enabled: bool = True
    ttl_s: float = Field(default=3600.0, gt=0)
    l1_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    l2: Literal["none", "store", "redis"] = "store"
    redis_url: str | None = None
    redis_prefix: str = "architect:"
    normalised: bool = True
    casefold: bool = False
    only_deterministic: bool = True
    namespace: Literal["key", "project"] = "key"
    semantic: dict[str, Any] = Field(default_factory=dict)
    coalesce: bool = True
    coalesce_wait_s: float = Field(default=120.0, gt=0, description="longest a follower waits for a leader")
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1, description="larger answers are not cached")


class ResponsesConfig(_Model):
    """The Responses API's stored responses (`previous_response_id`, `GET`/`DELETE /v1/responses/{id}`)."""

    store: bool = Field(
        default=True,
        description="keep responses for `previous_response_id` (a request's `store: false` keeps nothing); "
        "off: nothing is kept and `previous_response_id` is refused",
    )
    ttl_s: float = Field(default=86400.0, gt=0, description="how long a stored response can be read")
    max_bytes_per_key: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="the stored responses of one key take at most this many bytes; the oldest are evicted "
        "to make room (a single response larger than this is not kept)",
    )
    write_interval_ms: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="kept responses are written to the store in batches, one at most this often: the "
        "gateway process that answered reads them from memory until then, another one finds them once "
        "written (a longer interval writes fewer, larger batches: less CPU per response)",
    )


class Config(_Model):
    providers: list[ProviderConfig] = Field(default_factory=list)
    baseline: str | None = None
    models: list[ModelGroupConfig] = Field(default_factory=list)
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(
        default_factory=AuthConfig,
        description="the admin key (prefer the ARCHITECT_ADMIN_KEY environment variable), dashboard login and sessions",
    )
    database_url: str | None = None
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    responses: ResponsesConfig = Field(
        default_factory=ResponsesConfig, description="stored Responses API answers (previous_response_id)"
    )
    routing: RoutingConfig = Field(
        default_factory=RoutingConfig, description="how auto routes learn from outcomes (scope, refresh)"
    )
    alerts: list[AlertRule] = Field(default_factory=list)
    alert_webhook: str | None = None
    alert_interval_s: float = Field(default=10.0, gt=0, description="how often alert rules are evaluated")
    agents: list[AgentConfig] = Field(
        default_factory=list,
        description="coding agents plan tasks can name (`builtin`, Architect's own, exists without being listed)",
    )
    orchestrator: OrchestratorConfig = Field(
        default_factory=OrchestratorConfig,
        description="the worker's gateway URL (for agents and command tasks) and validation limits",
    )

    @field_validator("models")
    @classmethod
    def _unique_groups(cls, v: list[ModelGroupConfig]) -> list[ModelGroupConfig]:
        seen: set[str] = set()
        for g in v:
            if g.name in seen:
                raise ValueError(f"model group {g.name!r} is defined twice")
            seen.add(g.name)
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        providers = {p.name for p in self.providers}
        if len(providers) != len(self.providers):
            raise ValueError("provider names must be unique")
        for pi, p in enumerate(self.providers):
            if p.name == CACHE_NAME:
                raise ValueError(f"providers[{pi}].name: {CACHE_NAME!r} is reserved for cache hits")
        groups = {g.name for g in self.models}
        auto = {g.name for g in self.models if g.strategy == "auto"}
        for gi, g in enumerate(self.models):
            for di, d in enumerate(g.deployments):
                if d.name == CACHE_NAME:
                    raise ValueError(
                        f"models[{gi}].deployments[{di}].name: {CACHE_NAME!r} is reserved for cache hits"
                    )
                if d.provider not in providers:
                    raise ValueError(
                        f"models[{gi}].deployments[{di}].provider: unknown provider {d.provider!r} "
                        f"(known: {', '.join(sorted(providers)) or 'none'})"
                    )
            for ci, c in enumerate(g.candidates):
                if c not in groups:
                    raise ValueError(f"models[{gi}].candidates[{ci}]: unknown model group {c!r}")
                if c in auto:
                    raise ValueError(f"models[{gi}].candidates[{ci}]: {c!r} is an auto group itself")
            if len(set(g.candidates)) != len(g.candidates):
                raise ValueError(f"models[{gi}].candidates: a group is listed twice")
            if g.strategy == "auto" and (g.fallbacks or g.context_window_fallbacks):
                raise ValueError(
                    f"models[{gi}].fallbacks: an auto group has none (its chain is its other candidates)"
                )
            for f in (*g.fallbacks, *g.context_window_fallbacks):
                if f not in groups:
                    raise ValueError(f"models[{gi}].fallbacks: unknown model group {f!r}")
                if f == g.name:
                    raise ValueError(f"models[{gi}].fallbacks: a group cannot fall back to itself")
        exact: dict[str, str] = {}
        for gi, g in enumerate(self.models):
            for ai, a in enumerate(g.aliases):
                if not a.strip() or any(ord(c) < 32 for c in a):
                    raise ValueError(f"models[{gi}].aliases[{ai}]: an alias must be a non-empty name")
                if a in groups:
                    raise ValueError(f"models[{gi}].aliases[{ai}]: {a!r} is the name of a model group")
                if "*" not in a and "?" not in a:
                    if a in exact and exact[a] != g.name:
                        raise ValueError(
                            f"models[{gi}].aliases[{ai}]: {a!r} is already an alias of group {exact[a]!r}"
                        )
                    exact[a] = g.name
        if self.baseline is not None and self.baseline not in groups:
            raise ValueError(f"baseline: unknown model group {self.baseline!r}")
        check_agents(self.agents, [(g.name, g.aliases) for g in self.models], self.orchestrator)
        alert_problems = check_alerts(self.alerts, groups, self.deployment_names())
        if alert_problems:
            raise ValueError("\n  ".join(alert_problems))
        return self

    def deployment_names(self) -> set[str]:
        """Every deployment's name: its `name`, else `group/provider/model` (as the router names it)."""
        return {d.name_in(g.name) for g in self.models for d in g.deployments}

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)

    def all_agents(self) -> list[AgentConfig]:
        """The configured agents, plus the implicit `builtin` one unless an agent takes its name."""
        if any(a.name == BUILTIN.name for a in self.agents):
            return list(self.agents)
        return [*self.agents, BUILTIN]

    def agent(self, name: str) -> AgentConfig | None:
        """The agent called `name` (the implicit `builtin` included), None when there is none."""
        return next((a for a in self.all_agents() if a.name == name), None)

    def gateway_url(self) -> str:
        """The gateway's base URL for agents: `orchestrator.gateway_url`, else the server's address
        (a wildcard host replaced by the loopback address), without a trailing slash or /v1."""
        if self.orchestrator.gateway_url:
            return self.orchestrator.gateway_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.server.host, self.server.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.server.port}"

    def with_overrides(self, **changes: Any) -> Config:
        return self.model_copy(update=changes)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(node: Any, path: str, env: dict[str, str], source: str) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else str(k), env, source) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, f"{path}[{i}]", env, source) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{source}: {path}: environment variable {name} is not set")

        return _ENV_REF.sub(repl, node)
    return node


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "literal[")):
            out += f".{part}" if out else part
    return out or "(top level)"


def parse_config(data: Any, *, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    """Validate already-loaded YAML data; raises ConfigError with field paths."""
    env = dict(os.environ if env is None else env)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    data = _substitute(data, "", env, source)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            where = _loc(tuple(err["loc"]))
            if (
                where == "(top level)"
                and ": " in msg
                and msg.split(": ", 1)[0].replace(".", "").isidentifier()
            ) or (where == "(top level)" and msg.startswith(("models[", "agents[", "alerts["))):
                lines.append(msg)
            else:
                lines.append(f"{where}: {msg}")
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(lines)) from None
    admin = env.get("ARCHITECT_ADMIN_KEY")
    db = env.get("ARCHITECT_DATABASE_URL")
    if admin:
        cfg = cfg.model_copy(update={"auth": cfg.auth.model_copy(update={"admin_key": admin})})
    if db:
        cfg = cfg.model_copy(update={"database_url": db})
    return cfg


def load_config(path: str | Path | None, *, env: dict[str, str] | None = None) -> Config:
    """Read and validate a YAML config file (None: an empty config plus env overrides)."""
    if path is None:
        return parse_config({}, env=env)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, source=str(p), env=env)


def architect_home(env: dict[str, str] | None = None) -> Path:
    """Where Architect keeps its local files: `ARCHITECT_HOME`, default ~/.architect."""
    env = dict(os.environ if env is None else env)
    return Path(env.get("ARCHITECT_HOME") or Path.home() / ".architect")


def default_database_url(env: dict[str, str] | None = None) -> str:
    """`ARCHITECT_DATABASE_URL`, else SQLite at $ARCHITECT_HOME/architect.db (default ~/.architect)."""
    env = dict(os.environ if env is None else env)
    if env.get("ARCHITECT_DATABASE_URL"):
        return env["ARCHITECT_DATABASE_URL"]
    return f"sqlite:///{architect_home(env) / 'architect.db'}"
