"""The semantic tier (optional extra `architect-llm[semantic]`; off by default).

Embeds the last user message with an offline model, searches a vector index (usearch HNSW, inner
product on unit vectors = cosine) and treats the nearest neighbour above `threshold` as a candidate,
which a verifier may have to confirm before it is served. Indexes are partitioned by namespace,
model group, system prompt and sampling parameters, so a candidate can only come from the same
tenant asking the same model with the same instructions and settings.

A similarity threshold alone cannot make this safe (measured on Quora question pairs with MiniLM:
precision ~0.69 at cosine 0.80, 0.79 at 0.90, 0.87 at 0.95, levelling near 0.93); see
docs/caching.md. So by default: requests with tools or a JSON schema, and multi-turn conversations,
are never served semantic hits, and a verifier is strongly recommended.

Embedding runs on a one-thread executor, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from architect._optional import optional_module
from architect.cache.embedders import Embedder, load_embedder
from architect.cache.keys import sampling_params, system_prompt
from architect.errors import ConfigError, GatewayError
from architect.gateway.call import Call

if TYPE_CHECKING:
    from architect.cache.tiers import Entry, Tiers

__all__ = [
    "DEFAULT_THRESHOLD",
    "GatewayVerifier",
    "SemanticCache",
    "SemanticConfig",
    "VectorIndex",
    "Verifier",
    "build_semantic",
    "last_user_text",
    "semantic_allowed",
]

log = logging.getLogger("architect.cache")

# Chosen on ../shared/data/cache/qqp_dev.jsonl with MiniLM (see bench/RESULTS-cache.md).
DEFAULT_THRESHOLD = 0.97

VERIFIER_PROMPT = (
    "You decide whether two requests to an assistant are equivalent: the same question or task, "
    "so that one correct answer would be exactly as correct for the other. Differences in wording "
    "do not matter; any difference in entities, numbers, constraints, scope, language or intent "
    "does. Answer with one word: YES if equivalent, NO otherwise. If unsure, answer NO."
)


class SemanticConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    model: Literal["minilm", "static"] = "minilm"
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    verifier: str | None = Field(default=None, description='"gateway:<model group>" or "python:module:attr"')
    allow_tools: bool = False
    allow_json_schema: bool = False
    allow_multi_turn: bool = False
    max_entries: int = Field(default=200_000, ge=1)
    max_text_chars: int = Field(default=4000, ge=1)
    candidates: int = Field(default=3, ge=1, le=20)


def parse_semantic(data: dict[str, Any]) -> SemanticConfig:
    try:
        return SemanticConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"cache.semantic.{loc}: {first['msg']}") from None


def last_user_text(body: dict[str, Any]) -> str | None:
    for m in reversed(body.get("messages") or ()):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                parts = [p.get("text") for p in c if isinstance(p, dict)]
                if any(isinstance(p, dict) and p.get("type") not in (None, "text") for p in c):
                    return None  # images/audio: the text alone does not determine the answer
                return "\n".join(p for p in parts if isinstance(p, str)) or None
            return None
    return None


def semantic_allowed(body: dict[str, Any], cfg: SemanticConfig) -> bool:
    if not cfg.allow_tools and (body.get("tools") or body.get("functions")):
        return False
    rf = body.get("response_format")
    if not cfg.allow_json_schema and isinstance(rf, dict) and rf.get("type") == "json_schema":
        return False
    if not cfg.allow_multi_turn:
        roles = [m.get("role") for m in body.get("messages") or () if isinstance(m, dict)]
        if [r for r in roles if r not in ("system", "developer")] != ["user"]:
            return False
    return True


def partition_key(namespace: str, group: str, body: dict[str, Any]) -> str:
    material = {
        "ns": namespace,
        "group": group,
        "system": hashlib.sha256(system_prompt(body).encode()).hexdigest(),
        "sampling": sampling_params(body),
        "rf": body.get("response_format"),
        "tools": body.get("tools"),
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


class VectorIndex:
    """A usearch HNSW index over unit vectors (inner product = cosine), with integer ids."""

    def __init__(self, dim: int, dtype: str = "f16") -> None:
        from usearch.index import Index

        self.dim = dim
        self._index = Index(
            ndim=dim, metric="ip", dtype=dtype, connectivity=16, expansion_add=64, expansion_search=64
        )

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: Any, vectors: Any) -> None:
        self._index.add(ids, vectors)

    def remove(self, ident: int) -> None:
        self._index.remove(ident)

    def search(self, vector: Any, k: int) -> list[tuple[int, float]]:
        if len(self._index) == 0:
            return []
        m = self._index.search(vector, k)
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(m.keys, m.distances, strict=False)]


Chat = Callable[[Call], Awaitable[bytes]]  # runs a chat call through the gateway (`Pipeline.chat`)


@dataclass(frozen=True, slots=True)
class _Probe:
    """A call's query as the lookup embedded it (kept on the call, so storing its answer does not
    embed it again)."""

    pkey: str
    text: str
    vec: Any  # the embedder's vector (a numpy array: the optional extra's type)


class Verifier(Protocol):
    async def verify(self, query: str, cached: str, call: Call) -> bool:
        """True if the cached answer to `cached` also answers `query`."""


class GatewayVerifier:
    """Asks a (cheap) model through the gateway itself, as the caller's key, at temperature 0; the
    call is recorded in the ledger tagged `cache_overhead=semantic-verifier`."""

    def __init__(self, chat: Chat, model: str) -> None:
        self.chat = chat
        self.model = model
        self.calls = 0
        self.cost_usd = 0.0

    async def verify(self, query: str, cached: str, call: Call) -> bool:
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 3,
            "messages": [
                {"role": "system", "content": VERIFIER_PROMPT},
                {"role": "user", "content": f"Request A:\n{cached}\n\nRequest B:\n{query}\n\nEquivalent?"},
            ],
        }
        tags = {k: v for k, v in call.tags.items() if k in ("project", "feature", "task")}
        vcall = Call(
            "chat", body, orjson.dumps(body), call.principal, {**tags, "cache_overhead": "semantic-verifier"}
        )
        vcall.semantic_off = True
        self.calls += 1
        try:
            out = await self.chat(vcall)
            answer = orjson.loads(out)["choices"][0]["message"]["content"] or ""
        except (GatewayError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
            log.warning("semantic verifier call failed; not serving the candidate", exc_info=True)
            return False
        finally:
            self.cost_usd += vcall.cost_usd
        return answer.strip().upper().startswith("YES")


class CallableVerifier:
    """Wraps a user function `f(query, cached) -> bool` (sync or async)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def verify(self, query: str, cached: str, call: Call) -> bool:
        out = self.fn(query, cached)
        if inspect.isawaitable(out):
            out = await out
        return bool(out)


def load_verifier(spec: str | None, chat: Chat | None) -> Verifier | None:
    """The verifier `spec` names; `chat` runs a gateway verifier's calls (the gateway's pipeline)."""
    if not spec:
        return None
    kind, _, target = spec.partition(":")
    if kind == "gateway" and target:
        if chat is None:
            raise ConfigError(f"cache.semantic.verifier: {spec!r} needs a running gateway")
        return GatewayVerifier(chat, target)
    if kind == "python" and ":" in target:
        mod, _, attr = target.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cache.semantic.verifier: cannot load {target!r}: {exc}") from None
        return CallableVerifier(fn)
    raise ConfigError(
        f"cache.semantic.verifier: expected 'gateway:<model group>' or 'python:module:attr', got {spec!r}"
    )


@dataclass(slots=True)
class _Meta:
    key: str
    text: str
    expires_at: float


@dataclass
class _Partition:
    namespace: str
    model: str
    index: VectorIndex
    meta: dict[int, _Meta] = field(default_factory=dict)


class SemanticCache:
    def __init__(
        self,
        cfg: SemanticConfig,
        embedder: Embedder,
        verifier: Verifier | None = None,
        clock: Any = time.time,
    ) -> None:
        self.cfg = cfg
        self.embedder = embedder
        self.verifier = verifier
        self.clock = clock
        self.tiers: Tiers | None = None
        self._parts: dict[str, _Partition] = {}
        self._next_id = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.counts = {"lookups": 0, "candidates": 0, "verified": 0, "rejected": 0, "hits": 0, "added": 0}
        self.embed_ms = 0.0
        self.search_ms = 0.0

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="architect-embed")

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __len__(self) -> int:
        return sum(len(p.meta) for p in self._parts.values())

    async def embed(self, text: str) -> Any:
        t0 = time.perf_counter()
        vec = await asyncio.get_running_loop().run_in_executor(self._pool, self.embedder.embed, [text])
        self.embed_ms += (time.perf_counter() - t0) * 1000
        return vec[0]

    def _prepare(self, call: Call, namespace: str) -> tuple[str, str] | None:
        if call.semantic_off or call.group is None or not semantic_allowed(call.body, self.cfg):
            return None
        text = last_user_text(call.body)
        if not text or len(text) > self.cfg.max_text_chars:
            return None
        return partition_key(namespace, call.group.name, call.body), text

    async def lookup(self, call: Call, namespace: str) -> Entry | None:
        prep = self._prepare(call, namespace)
        if prep is None:
            return None
        pkey, text = prep
        self.counts["lookups"] += 1
        vec = await self.embed(text)
        call.semantic_probe = _Probe(pkey, text, vec)
        part = self._parts.get(pkey)
        if part is None or self.tiers is None:
            return None
        t0 = time.perf_counter()
        found = part.index.search(vec, self.cfg.candidates)
        self.search_ms += (time.perf_counter() - t0) * 1000
        now = self.clock()
        for ident, sim in found:
            if sim < self.cfg.threshold:
                break
            meta = part.meta.get(ident)
            if meta is None:
                continue
            got = await self.tiers.get(meta.key, None) if meta.expires_at > now else None
            if got is None:  # expired or evicted: forget it
                self._forget(part, ident)
                continue
            self.counts["candidates"] += 1
            if self.verifier is not None:
                if not await self.verifier.verify(text, meta.text, call):
                    self.counts["rejected"] += 1
                    continue
                self.counts["verified"] += 1
            self.counts["hits"] += 1
            return got[0]
        return None

    def add(self, call: Call, namespace: str, entry: Entry) -> None:
        probe = call.semantic_probe
        if not isinstance(probe, _Probe):
            prep = self._prepare(call, namespace)
            if prep is None:
                return
            task = asyncio.get_running_loop().create_task(
                self._embed_and_add(prep[0], prep[1], namespace, entry)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        self._insert(probe.pkey, probe.text, probe.vec, namespace, entry)

    async def _embed_and_add(self, pkey: str, text: str, namespace: str, entry: Entry) -> None:
        try:
            vec = await self.embed(text)
        except Exception:
            log.warning("semantic cache: embedding failed", exc_info=True)
            return
        self._insert(pkey, text, vec, namespace, entry)

    def _insert(self, pkey: str, text: str, vec: Any, namespace: str, entry: Entry) -> None:
        if len(self) >= self.cfg.max_entries:
            return
        part = self._parts.get(pkey)
        if part is None:
            part = self._parts[pkey] = _Partition(namespace, entry.model, VectorIndex(self.embedder.dim))
        ident = self._next_id
        self._next_id += 1
        part.index.add(ident, vec)
        part.meta[ident] = _Meta(entry.key, text, entry.expires_at)
        self.counts["added"] += 1

    def _forget(self, part: _Partition, ident: int) -> None:
        if part.meta.pop(ident, None) is not None:
            part.index.remove(ident)

    def purge(self, namespace: str | None = None, model: str | None = None) -> int:
        doomed = [
            k
            for k, p in self._parts.items()
            if (namespace is None or p.namespace == namespace) and (model is None or p.model == model)
        ]
        n = 0
        for k in doomed:
            n += len(self._parts.pop(k).meta)
        return n

    def stats(self) -> dict[str, Any]:
        lookups = self.counts["lookups"]
        return {
            "model": self.embedder.name,
            "threshold": self.cfg.threshold,
            "verifier": self.cfg.verifier,
            "entries": len(self),
            "partitions": len(self._parts),
            **self.counts,
            "mean_embed_ms": self.embed_ms / lookups if lookups else 0.0,
            "mean_search_ms": self.search_ms / lookups if lookups else 0.0,
        }


def build_semantic(data: dict[str, Any], chat: Chat | None) -> SemanticCache:
    """The semantic tier from `cache.semantic` (its verifier's calls go through `chat`). This is the
    seam of the `semantic` extra: without it installed the config is refused here, by name."""
    cfg = parse_semantic(data)
    if optional_module("usearch.index") is None:
        raise ConfigError(
            "cache.semantic.enabled needs the semantic extra: pip install 'architect-llm[semantic]' (usearch)"
        )
    return SemanticCache(cfg, load_embedder(cfg.model), load_verifier(cfg.verifier, chat))
