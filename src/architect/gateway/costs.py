"""Prices and cost arithmetic. Prices are USD per million tokens, from the configuration."""

from __future__ import annotations

from architect.config import PriceConfig
from architect.gateway.providers.base import Usage

__all__ = ["cost_usd", "worst_case_cost"]


def cost_usd(price: PriceConfig, usage: Usage) -> float:
    """What `usage` costs: of its `prompt_tokens` (every input token), the cache reads at the cached
    input price and the cache writes at the cache-write price (each defaulting to the input price),
    the rest at the input price; completion tokens at the output price."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    cached_price = (
        price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    )
    write_price = (
        price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
    )
    return (
        (usage.prompt_tokens - cached - written) * price.input_per_mtok
        + cached * cached_price
        + written * write_price
        + usage.completion_tokens * price.output_per_mtok
    ) / 1_000_000


def worst_case_cost(price: PriceConfig, prompt_tokens: int, max_tokens: int) -> float:
    """The most `prompt_tokens` in and `max_tokens` out can cost: every prompt token at the dearer of
    the input and cache-write prices."""
    write = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else 0.0
    return (prompt_tokens * max(price.input_per_mtok, write) + max_tokens * price.output_per_mtok) / 1_000_000
