"""The configuration of alert rules (`alerts:`) and `check_alerts`, the checks `Config` runs on them.

`architect.config` imports `AlertRule` into `Config` and re-exports it. A rule's threshold is read by
its kind (a fraction for `budget` and `error_rate`, milliseconds for `latency_p95`, minutes for
`breaker_open`), and its target must name a model group or deployment the config defines, except a
`budget` rule's: budgets are made at run time (`architect keys create --budget-usd`), in the store.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AlertRule", "check_alerts"]

AlertKind = Literal["budget", "error_rate", "latency_p95", "breaker_open"]


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: AlertKind
    threshold: float
    window_s: float = Field(default=300.0, gt=0)
    target: str | None = None


def _threshold_problem(rule: AlertRule) -> str | None:
    t = rule.threshold
    if rule.kind in ("budget", "error_rate"):
        return (
            None
            if 0 < t <= 1
            else f"{rule.kind} rules take a fraction in (0, 1], e.g. 0.8 for 80%; got {t:g}"
        )
    if rule.kind == "latency_p95":
        return None if t > 0 else f"latency_p95 rules take milliseconds above 0; got {t:g}"
    return (
        None if t >= 0 else f"breaker_open rules take minutes, 0 or more (0: as soon as it opens); got {t:g}"
    )


def check_alerts(
    rules: Sequence[AlertRule], groups: Collection[str], deployments: Collection[str]
) -> list[str]:
    """Every problem of the rules, each naming its field (`alerts[1].threshold: ...`); empty when none."""
    problems: list[str] = []
    first: dict[str, int] = {}
    known = set(groups) | set(deployments)
    for i, rule in enumerate(rules):
        if rule.name in first:
            problems.append(
                f"alerts[{i}].name: {rule.name!r} is the name of alerts[{first[rule.name]}] too (rule names are unique)"
            )
        first.setdefault(rule.name, i)
        if (why := _threshold_problem(rule)) is not None:
            problems.append(f"alerts[{i}].threshold: {why}")
        if rule.kind != "budget" and rule.target and rule.target not in known:
            problems.append(
                f"alerts[{i}].target: {rule.target!r} names no model group or deployment "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
    return problems
