"""Mergeable latency sketches: DDSketch with a logarithmic mapping (the `ddsketch` library's
`LogarithmicMapping`), relative accuracy 1%.

Guarantee: for any quantile q, the returned value v satisfies |v - x| <= 0.01 * x, where x is the exact
q-quantile of the added values taken as the element of rank floor(q * (n - 1)) of the sorted values
(the same definition `ddsketch.DDSketch.get_quantile_value` uses). Merging is adding bin counts, so
sketches of minutes combine into hours, days and groups without loss beyond that bound. Values <= 0
go to a zero bin. Serialised as a compact sparse orjson list: [zero_count, [key, count, ...]]."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from ddsketch.mapping import LogarithmicMapping

__all__ = ["RELATIVE_ACCURACY", "Sketch"]

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_MIN_VALUE = _MAPPING.min_possible


class Sketch:
    __slots__ = ("bins", "count", "zero")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zero = 0
        self.count = 0

    def add(self, value: float) -> None:
        self.count += 1
        if value <= _MIN_VALUE:
            self.zero += 1
            return
        k = _MAPPING.key(value)
        self.bins[k] = self.bins.get(k, 0) + 1

    def extend(self, values: Iterable[float]) -> Sketch:
        for v in values:
            self.add(v)
        return self

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.zero += other.zero
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c

    def merge_bytes(self, data: bytes | None) -> None:
        if not data:
            return
        zero, flat = orjson.loads(data)
        self.zero += zero
        self.count += zero
        bins = self.bins
        for i in range(0, len(flat), 2):
            k, c = flat[i], flat[i + 1]
            bins[k] = bins.get(k, 0) + c
            self.count += c

    def to_bytes(self) -> bytes | None:
        if not self.count:
            return None
        flat: list[int] = []
        for k, c in self.bins.items():
            flat.append(k)
            flat.append(c)
        return orjson.dumps([self.zero, flat])

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Sketch:
        s = cls()
        s.merge_bytes(data)
        return s

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) within the stated relative accuracy; None when empty."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        running = self.zero
        if running > rank:
            return 0.0
        for k in sorted(self.bins):
            running += self.bins[k]
            if running > rank:
                return float(_MAPPING.value(k))
        return float(_MAPPING.value(max(self.bins)))
