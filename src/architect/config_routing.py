"""The configuration of `auto` routes' learning (`routing:`) and of an auto group's exploration
(`exploration:` on a model group). `architect.config` imports these value objects into `Config` and
`ModelGroupConfig` and re-exports them.

Also the one definition of a route setting's values (`QualityTarget`, `CostWeight`, `Privacy`), which
every place that takes route settings checks against: a group's config, the keys and projects APIs, a
plan's task, the CLI and a request's `x-architect-route` (`routing.policy.RouteSettings.parse`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_COST_WEIGHT",
    "PRIVACY",
    "CostWeight",
    "ExplorationConfig",
    "Privacy",
    "QualityTarget",
    "RoutingConfig",
]

MAX_COST_WEIGHT = 1000.0
Privacy = Literal["any", "local-only"]
PRIVACY: tuple[Privacy, ...] = ("any", "local-only")
# 0 < q < 1: the cheapest candidate whose predicted P(acceptable) reaches it
QualityTarget = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
# 0 <= w <= MAX_COST_WEIGHT: the highest P(acceptable) - w x price / dearest price
CostWeight = Annotated[float, Field(ge=0, le=MAX_COST_WEIGHT, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExplorationConfig(_Model):
    """How often an `auto` group tries a candidate other than the one its policy picks (to learn about it)."""

    share: float = Field(default=0.05, ge=0, le=1, description="share of the group's calls that explore")
    budget_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="exploration stops while its extra cost so far exceeds this share of the group's spend "
        "(counted in this process)",
    )


class RoutingConfig(_Model):
    """How `auto` routes learn from outcomes (docs/routing.md, "Outcomes and learning")."""

    scope: Literal["global", "project"] = Field(
        default="global",
        description="global: one quality estimate per model group and task type; project: per project, "
        "shrunk to the global one with the weight of 5 outcomes",
    )
    refresh_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="how often a process reads new outcomes from the store and learns them",
    )
    embed: bool = Field(
        default=False,
        description="add the `semantic` extra's static embedding (64 dimensions) of the prompt to the auto "
        "route's features (needs that extra; costs ~0.8 ms per decision and added nothing on the shared "
        "data: docs/routing.md)",
    )
