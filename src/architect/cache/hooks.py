"""Installs the response cache into a running gateway (called by `Runtime.start`)."""

from __future__ import annotations

from typing import Any

from architect.cache.service import CacheService
from architect.cache.tiers import L1Cache, L2Tier, RedisL2, StoreL2, Tiers
from architect.errors import ConfigError
from architect.gateway.hooks import NullCache

__all__ = ["build_service", "install", "uninstall"]


def build_service(runtime: Any, clock: Any = None) -> CacheService:
    import time

    clock = clock or time.time
    cfg = runtime.config.cache
    l2: L2Tier | None = None
    if cfg.l2 == "store":
        l2 = StoreL2(runtime.store.cache, clock)
    elif cfg.l2 == "redis":
        if not cfg.redis_url:
            raise ConfigError("cache.redis_url: required when cache.l2 is 'redis'")
        l2 = RedisL2(cfg.redis_url, cfg.redis_prefix, clock)
    semantic = None
    if cfg.semantic.get("enabled"):
        from architect.cache.semantic import build_semantic

        semantic = build_semantic(cfg.semantic, runtime)
    return CacheService(
        lambda: runtime.config.cache,
        Tiers(L1Cache(cfg.l1_max_bytes, clock), l2),
        clock=clock,
        semantic=semantic,
    )


async def install(runtime: Any) -> None:
    service = build_service(runtime)
    if service.semantic is not None:
        await service.semantic.start()
    runtime.hooks.cache = service
    runtime.extensions["cache"] = service


async def uninstall(runtime: Any) -> None:
    service = runtime.extensions.pop("cache", None)
    runtime.hooks.cache = NullCache()
    if isinstance(service, CacheService):
        if service.semantic is not None:
            await service.semantic.aclose()
        await service.aclose()
