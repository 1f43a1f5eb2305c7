"""The `auto` route's decision, per call: the gateway's `hooks.Routes`, wired by the runtime.

For every call, `resolve` combines its route settings (request header or `metadata.architect_route`,
the task's or the key's `route`, the project's settings, the group's config; `policy.resolve`): the
pipeline then keeps its privacy as a hard constraint on every route (`gateway.constraints`).

For a call to an `auto` group, `decide`:
1. the eligible candidates are given (those with a deployment that passes the hard constraints and
   whose context window fits); each one's price for this call is its cheapest admitted deployment's
   known price at the prompt's estimate and `max_tokens` (256 when unset); an unknown price counts as
   the dearest;
2. features: `HashedFeatures.hashed_row` of the prompt's system and user text (the last 1,500
   characters, as the evaluation cuts them);
3. P(acceptable) per candidate from the `QualityModel`, with each candidate's price-tier prior (the tiers
   over all of the group's candidates, so a candidate's prior does not depend on the others' eligibility);
4. the policy: `quality_target` q: the cheapest candidate with P >= q, else (none reaches it) the one
   with the highest P; `cost_weight` w: the highest P - w x price / dearest price;
5. exploration: with probability `exploration.share`, while exploration's extra cost so far is at
   most `exploration.budget_share` of the group's spend (counted in this process), another eligible
   candidate is taken instead: the one with the fewest outcomes (`explored`);
6. the chain: the chosen candidate, then the other eligible ones dearer than it (cheapest first), then
   the cheaper ones (dearest first).
The features are handed to the model (`record_features`) to learn from when the call's outcome comes."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from architect.config import PriceConfig
from architect.gateway.call import Call
from architect.gateway.constraints import admitted, request_needs
from architect.gateway.costs import cost_usd
from architect.gateway.providers.base import Usage
from architect.gateway.routing import NOMINAL_OUTPUT_TOKENS, Group
from architect.routing.policy import EMPTY, EffectiveRoute, RouteSettings, parse_header, resolve
from architect.routing.predict import PRIOR_ONE, Features, OutcomeCounts, QualityModel, price_prior

if TYPE_CHECKING:
    from architect.routing.features import HashedFeatures

__all__ = ["AutoRouter", "prompt_text"]

_TEXT_ROLES = frozenset(("system", "developer", "user"))
_TEXT_PARTS = frozenset(("text", "input_text"))


def prompt_text(endpoint: str, body: Mapping[str, Any]) -> str:
    """The system and user text of a request in its API's shape (chat `messages`, Messages `system` and
    `messages`, Responses `instructions` and `input`), turns separated by a blank line."""
    parts: list[str] = []
    if endpoint == "messages":
        _content(body.get("system"), parts)
        items = body.get("messages")
    elif endpoint == "responses":
        _content(body.get("instructions"), parts)
        items = body.get("input")
        if isinstance(items, str):
            parts.append(items)
            items = None
    elif endpoint == "embeddings":
        inp = body.get("input")
        items = None
        if isinstance(inp, str):
            parts.append(inp)
        elif isinstance(inp, list):
            parts.extend(x for x in inp if isinstance(x, str))
    else:
        items = body.get("messages")
    if isinstance(items, list):
        for m in items:
            if isinstance(m, dict) and m.get("role", "user") in _TEXT_ROLES:
                _content(m.get("content"), parts)
    return "\n\n".join(parts)


def _content(c: object, out: list[str]) -> None:
    if isinstance(c, str):
        out.append(c)
    elif isinstance(c, list):
        for p in c:
            if (
                isinstance(p, dict)
                and p.get("type", "text") in _TEXT_PARTS
                and isinstance(p.get("text"), str)
            ):
                out.append(p["text"])


@dataclass(slots=True)
class _Counters:
    """An auto group's spend and exploration in this process."""

    spend: float = 0.0
    extra: float = 0.0  # what exploring cost beyond the policy's choice
    explored: dict[str, int] = field(default_factory=dict)  # explorations per candidate


@dataclass(slots=True)
class _Decision:
    auto: str
    policy_price: PriceConfig | None  # the price of the candidate the policy chose
    explored: bool


class AutoRouter:
    """`hooks.Routes` with an `auto` decision. `projects` holds the route settings of projects (the
    store's `project_settings`, kept current by `set_projects` / `set_project`: no store read per
    call); `quality` answers P(acceptable) (`PriorModel` until the learner is wired)."""

    def __init__(
        self,
        quality: QualityModel,
        *,
        rng: random.Random | None = None,
        features: HashedFeatures | None = None,
    ) -> None:
        self.quality = quality
        self.rng = rng or random.Random()
        self._hashed = features  # made on the first auto decision: numpy is not loaded before
        self.projects: dict[str, RouteSettings] = {}
        self.counters: dict[str, _Counters] = {}

    # -- project settings ---------------------------------------------------------------------------
    def set_projects(self, settings: Mapping[str, RouteSettings]) -> None:
        """Replace every project's settings (a periodic read of the store)."""
        self.projects = {k: v for k, v in settings.items() if not v.empty}

    def set_project(self, project: str, settings: RouteSettings | None) -> None:
        """One project's settings changed here (its API write): in force at once in this process."""
        if settings is None or settings.empty:
            self.projects.pop(project, None)
        else:
            self.projects[project] = settings

    # -- hooks.Routes ---------------------------------------------------------------------------------
    def resolve(self, call: Call) -> None:
        levels: list[tuple[str, RouteSettings]] = []
        if call.route_request is not None:
            where, text = call.route_request
            levels.append(("request", parse_header(text, where=where)))
        p = call.principal
        stored = p.extra.get("route")
        if stored:
            level = "task" if p.extra.get("temporary") else "key"
            levels.append((level, RouteSettings.parse(stored, where=f"{level}.route")))
        project = call.tags.get("project")
        if project is not None and (ps := self.projects.get(project)) is not None:
            levels.append(("project", ps))
        group = call.group
        auto = group is not None and group.config.strategy == "auto"
        if not levels and not auto:
            return  # nothing set: privacy any, no auto decision (the hot path of a plain call)
        cfg = group.config if group is not None else None
        default = (
            RouteSettings(quality_target=cfg.quality_target, cost_weight=cfg.cost_weight)
            if cfg is not None and auto
            else EMPTY
        )
        eff = resolve(levels, default)
        call.route = eff
        call.local_only = eff.privacy == "local-only"

    def decide(self, call: Call, group: Group, candidates: list[Group], eligible: list[Group]) -> None:
        eff = call.route if isinstance(call.route, EffectiveRoute) else resolve([], _group_settings(group))
        out = call.max_tokens or NOMINAL_OUTPUT_TOKENS
        tokens = call.est_prompt_tokens or 0
        prices = {g.name: _price(g, call, tokens, out) for g in eligible}
        order = sorted(eligible, key=lambda g: _price_key(prices[g.name][0]))
        names = [g.name for g in order]
        # the prior's price tiers are over all candidates (at every deployment's price), so a candidate's
        # prior does not depend on which others this call may use
        tiers = sorted(candidates, key=lambda g: _price_key(_price(g, call, tokens, out, admit=False)[0]))
        every = price_prior([g.name for g in tiers])
        prior = {n: every.get(n, PRIOR_ONE) for n in names}
        x = self._features(call)
        project = call.tags.get("project")
        task_type = call.task_type or "unknown"
        scores = self.quality.predict(x, project=project, task_type=task_type, candidates=names, prior=prior)
        p = {n: float(scores.get(n, prior[n])) for n in names}
        knob, value, source = eff.knob
        if knob == "quality_target":
            chosen = next((n for n in names if p[n] >= value), None)
            if chosen is not None:
                why = f"cheapest with P>={value:.2f} (quality_target from {source})"
            else:
                chosen = max(names, key=lambda n: (p[n], -names.index(n)))
                why = f"none reaches P>={value:.2f} (quality_target from {source}): the highest P"
        else:
            known = [c for c, _ in prices.values() if c is not None]
            top = max(known) if known else 0.0

            def utility(n: str) -> float:
                c = prices[n][0]
                share = 1.0 if c is None else (c / top if top > 0 else 0.0)
                return p[n] - value * share

            chosen = max(names, key=lambda n: (utility(n), -names.index(n)))
            why = f"max P-{value:g}*price/max (cost_weight from {source})"
        counters = self.counters.setdefault(group.name, _Counters())
        policy_choice = chosen
        explored = False
        ex = group.config.exploration
        if (
            len(names) > 1
            and ex.share > 0
            and self.rng.random() < ex.share
            and counters.extra <= ex.budget_share * counters.spend
        ):
            others = [n for n in names if n != chosen]
            if isinstance(self.quality, OutcomeCounts):
                counts = self.quality.outcome_counts(project=project, task_type=task_type, candidates=others)
            else:
                counts = counters.explored
            chosen = min(others, key=lambda n: (counts.get(n, 0), names.index(n)))
            counters.explored[chosen] = counters.explored.get(chosen, 0) + 1
            explored = True
            why = f"explore (fewest outcomes; policy: {policy_choice})"
        by_name = {g.name: g for g in order}
        at = names.index(chosen)
        chain = [
            by_name[chosen],
            *(by_name[n] for n in names[at + 1 :]),
            *(by_name[n] for n in reversed(names[:at])),
        ]
        listed = "; ".join(f"{n} {p[n]:.2f}" for n in names)
        call.routed_by = group.name
        call.group = chain[0]
        call.chain = chain
        call.route_scores = {n: round(p[n], 3) for n in names}
        call.explored = explored
        call.route_prefix = f"auto: {why}: {listed}"
        call.route_header = f"group={chosen}; p={p[chosen]:.3f}; {knob}={value:g}; source={source}" + (
            "; explored" if explored else ""
        )
        call.decision = _Decision(group.name, prices[policy_choice][1], explored)
        if x is not None:
            self.quality.record_features(call.request_id, x)

    def settled(self, call: Call) -> None:
        d = call.decision
        if not isinstance(d, _Decision):
            return
        counters = self.counters.setdefault(d.auto, _Counters())
        counters.spend += call.cost_usd
        usage = call.usage
        if d.explored and usage is not None:
            alt = cost_usd(d.policy_price, usage) if d.policy_price is not None else 0.0
            counters.extra += max(0.0, call.cost_usd - alt)

    # -- helpers --------------------------------------------------------------------------------------
    def _features(self, call: Call) -> Features | None:
        text = prompt_text(call.endpoint, call.body)
        if not text:
            return None
        import numpy as np

        hashed = self._hashed
        if hashed is None:
            from architect.routing.features import HashedFeatures

            hashed = self._hashed = HashedFeatures()
        idx, vals = hashed.hashed_row(text)
        needs = request_needs(call.endpoint, call.body)
        items = call.body.get("input") if call.endpoint == "responses" else call.body.get("messages")
        ridx, rvals = hashed.request_columns(
            tools="tools" in needs,
            json_schema="json_schema" in needs,
            images="images" in needs,
            turns=len(items) if isinstance(items, list) else 1,
        )
        eidx, evals = hashed.embed_columns(text)
        return (
            np.asarray(idx + ridx + eidx, dtype=np.int32),
            np.asarray(vals + rvals + evals, dtype=np.float32),
        )

    def use_features(self, features: HashedFeatures) -> None:
        """The feature maker of the decisions from now on (the runtime's: with the static embedding when
        `routing.embed` is set; the quality model's dimension must match `features.dim`)."""
        self._hashed = features

    def exploration(self, group: str) -> dict[str, Any]:
        """An auto group's counters in this process (spend, exploration's extra cost, explorations)."""
        c = self.counters.get(group) or _Counters()
        return {"spend_usd": c.spend, "explore_extra_usd": c.extra, "explored": dict(c.explored)}


def _group_settings(group: Group) -> RouteSettings:
    return RouteSettings(quality_target=group.config.quality_target, cost_weight=group.config.cost_weight)


def _price(
    g: Group, call: Call, tokens: int, out: int, *, admit: bool = True
) -> tuple[float | None, PriceConfig | None]:
    """A candidate's cost for this call at its cheapest admitted deployment (`admit`; else any) of known
    price (None when none has a known price), and that price."""
    best: tuple[float | None, PriceConfig | None] = (None, None)
    for d in admitted(g, call.needs, call.local_only) if admit else g.deployments:
        pr = d.price
        if pr is None:
            continue
        c = cost_usd(pr, Usage(prompt_tokens=tokens, completion_tokens=out))
        if best[0] is None or c < best[0]:
            best = (c, pr)
    return best


def _price_key(c: float | None) -> float:
    return math.inf if c is None else c
