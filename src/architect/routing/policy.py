"""Route settings and their resolution for one call.

A level (a request, a task, a key, a project, an `auto` group's config) may set `quality_target`
(0 < q < 1: the cheapest candidate predicted to reach it), `cost_weight` (>= 0: trade P(acceptable)
against price) and `privacy` (`any` | `local-only`). `resolve` combines them:

- quality_target / cost_weight: the most specific level that sets either wins, both knobs together
  (request > task > key > project > group > the default quality_target 0.8); a level that sets both
  uses quality_target;
- privacy: the strictest of all levels (any level saying `local-only` makes the call local-only; a
  request cannot relax its key's or its project's privacy).

Request settings are `x-architect-route: quality=0.9; cost_weight=0.3; privacy=local-only` (or the same
string in the body's `metadata.architect_route`); `parse_header` reads them, refusing a bad one with a
400 naming `x-architect-route.quality` etc."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from architect.config_routing import MAX_COST_WEIGHT, PRIVACY, Privacy
from architect.errors import InvalidRequest

__all__ = [
    "DEFAULT_QUALITY_TARGET",
    "LEVELS",
    "EffectiveRoute",
    "Privacy",
    "RouteSettings",
    "parse_header",
    "project_route",
    "resolve",
]

DEFAULT_QUALITY_TARGET = 0.8
# the levels, most specific first (the sources `EffectiveRoute.sources` names)
LEVELS = ("request", "task", "key", "project", "group", "default")
_FIELDS = ("quality_target", "cost_weight", "privacy")
_ALIASES = {"quality": "quality_target"}


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """One level's settings (None: not set at this level)."""

    quality_target: float | None = None  # 0 < q < 1
    cost_weight: float | None = None  # >= 0
    privacy: Privacy | None = None

    @classmethod
    def parse(cls, obj: object, *, where: str) -> RouteSettings:
        """Settings from a JSON object (a key's or task's `route`, an API body); None or {} is no
        settings. Raises InvalidRequest naming `{where}.quality_target` etc."""
        if obj is None:
            return EMPTY
        if isinstance(obj, RouteSettings):
            return obj
        if not isinstance(obj, Mapping):
            raise InvalidRequest(
                f"{where}: expected an object with quality_target, cost_weight and/or privacy", param=where
            )
        values: dict[str, object] = {}
        for k, v in obj.items():
            name = _ALIASES.get(k, k) if isinstance(k, str) else k
            if name not in _FIELDS:
                raise InvalidRequest(
                    f"{where}.{k}: unknown route setting; known: quality_target, cost_weight, privacy",
                    param=f"{where}.{k}",
                )
            if v is not None:
                values[str(name)] = _check(str(name), v, f"{where}.{k}")
        return cls(
            quality_target=cast("float | None", values.get("quality_target")),
            cost_weight=cast("float | None", values.get("cost_weight")),
            privacy=cast("Privacy | None", values.get("privacy")),
        )

    def as_dict(self) -> dict[str, object]:
        """The fields that are set."""
        return {f: v for f in _FIELDS if (v := getattr(self, f)) is not None}

    @property
    def empty(self) -> bool:
        return self.quality_target is None and self.cost_weight is None and self.privacy is None


EMPTY = RouteSettings()


def _check(name: str, v: object, where: str) -> object:
    if name == "privacy":
        if v not in PRIVACY:
            raise InvalidRequest(f"{where}: expected 'any' or 'local-only', got {v!r}", param=where)
        return v
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise InvalidRequest(f"{where}: expected a number, got {v!r}", param=where) from None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidRequest(f"{where}: expected a number, got {v!r}", param=where)
    f = float(v)
    if name == "quality_target" and not 0 < f < 1:
        raise InvalidRequest(
            f"{where}: a quality target is between 0 and 1 (exclusive), got {f:g}", param=where
        )
    if name == "cost_weight" and not 0 <= f <= MAX_COST_WEIGHT:
        raise InvalidRequest(
            f"{where}: a cost weight is from 0 to {MAX_COST_WEIGHT:g}, got {f:g}", param=where
        )
    return f


def parse_header(text: str, *, where: str = "x-architect-route") -> RouteSettings:
    """`quality=0.9; cost_weight=0.3; privacy=local-only` (`quality` and `quality_target` both; `;` or
    `,` between settings). Raises InvalidRequest naming `{where}.quality` etc."""
    values: dict[str, str] = {}
    if len(text) > 500:
        raise InvalidRequest(f"{where}: at most 500 characters", param=where)
    for part in text.replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition("=")
        k, v = k.strip().lower(), v.strip()
        if not sep or not k or not v:
            raise InvalidRequest(
                f"{where}: expected name=value settings separated by ';' (quality, cost_weight, privacy), "
                f"got {part[:60]!r}",
                param=where,
            )
        if k in values or (_ALIASES.get(k, k) in {_ALIASES.get(x, x) for x in values}):
            raise InvalidRequest(f"{where}.{k}: given twice", param=f"{where}.{k}")
        values[k] = v
    return RouteSettings.parse(values, where=where)


@dataclass(frozen=True, slots=True)
class EffectiveRoute:
    """The settings one call is routed by, and where each came from (field -> a LEVELS name)."""

    quality_target: float | None
    cost_weight: float | None
    privacy: Privacy
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def knob(self) -> tuple[str, float, str]:
        """(the knob in force: "quality_target" | "cost_weight", its value, its source)."""
        if self.quality_target is not None:
            return "quality_target", self.quality_target, self.sources.get("quality_target", "default")
        assert self.cost_weight is not None
        return "cost_weight", self.cost_weight, self.sources.get("cost_weight", "default")


def resolve(levels: Sequence[tuple[str, RouteSettings]], group_default: RouteSettings) -> EffectiveRoute:
    """The effective settings: `levels` most specific first (("request", s), ("task", s), ("key", s),
    ("project", s)), then the auto group's config, then the default quality_target. See the module
    docstring for the rules."""
    all_levels = [*levels, ("group", group_default)]
    sources: dict[str, str] = {}
    quality: float | None = None
    weight: float | None = None
    for name, s in all_levels:
        if s.quality_target is not None:
            quality = s.quality_target
            sources["quality_target"] = name
            break
        if s.cost_weight is not None:
            weight = s.cost_weight
            sources["cost_weight"] = name
            break
    else:
        quality = DEFAULT_QUALITY_TARGET
        sources["quality_target"] = "default"
    privacy: Privacy = "any"
    sources["privacy"] = "default"
    for name, s in all_levels:  # the least specific level that says local-only is its source
        if s.privacy == "local-only":
            privacy = "local-only"
            sources["privacy"] = name
    if privacy == "any":
        named = next((n for n, s in all_levels if s.privacy == "any"), None)
        if named is not None:
            sources["privacy"] = named
    return EffectiveRoute(quality, weight, privacy, sources)


def project_route(row: Mapping[str, object]) -> RouteSettings:
    """A project's settings as the store's `project_settings` row holds them (validated when written)."""
    return RouteSettings.parse(
        {k: row[k] for k in ("quality_target", "cost_weight", "privacy") if row.get(k) is not None},
        where="project_settings",
    )
