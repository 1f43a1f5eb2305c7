"""Amounts of money as messages and tables show them."""

from __future__ import annotations

import math

__all__ = ["usd"]

_MAX_DECIMALS = 10


def usd(amount: float) -> str:
    """`$` and the amount with at least two decimals: up to four for an amount of a cent or more, three
    significant digits below a cent (so a limit of $0.0005 reads `$0.0005`, never `$0.00`)."""
    size = abs(amount)
    small = 0 < size < 0.01
    decimals = min(_MAX_DECIMALS, 2 - math.floor(math.log10(size))) if small else 4
    text = f"{amount:,.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"-${whole[1:]}.{fraction}" if whole.startswith("-") else f"${whole}.{fraction}"
