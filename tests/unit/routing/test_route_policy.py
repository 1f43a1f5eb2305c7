"""Route settings: parsing (errors name the field), the request header, and resolution across levels
(the most specific level's knob wins; privacy is the strictest of all levels)."""

from __future__ import annotations

import pytest

from architect.errors import InvalidRequest
from architect.routing.policy import RouteSettings, parse_header, resolve

Q = RouteSettings(quality_target=0.9)
W = RouteSettings(cost_weight=0.3)
LOCAL = RouteSettings(privacy="local-only")
NONE = RouteSettings()


def test_parse_takes_any_subset_and_as_dict_gives_only_what_is_set() -> None:
    s = RouteSettings.parse({"quality_target": 0.9, "privacy": "local-only"}, where="route")
    assert s == RouteSettings(quality_target=0.9, privacy="local-only")
    assert s.as_dict() == {"quality_target": 0.9, "privacy": "local-only"}
    assert RouteSettings.parse(None, where="route").empty
    assert RouteSettings.parse({"quality": 0.5}, where="route").quality_target == 0.5


@pytest.mark.parametrize(
    ("obj", "param"),
    [
        ({"quality_target": 1.0}, "key.route.quality_target"),
        ({"quality_target": 0}, "key.route.quality_target"),
        ({"quality_target": "high"}, "key.route.quality_target"),
        ({"quality_target": True}, "key.route.quality_target"),
        ({"cost_weight": -0.1}, "key.route.cost_weight"),
        ({"cost_weight": float("nan")}, "key.route.cost_weight"),
        ({"privacy": "cloud"}, "key.route.privacy"),
        ({"speed": 1}, "key.route.speed"),
        ("fast", "key.route"),
    ],
)
def test_parse_refuses_bad_values_naming_the_field(obj: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        RouteSettings.parse(obj, where="key.route")
    assert e.value.param == param and str(e.value).startswith(param)


def test_header_accepts_quality_and_quality_target_and_names_the_bad_setting() -> None:
    assert parse_header("quality=0.9; cost_weight=0.3; privacy=local-only") == RouteSettings(
        0.9, 0.3, "local-only"
    )
    assert parse_header("quality_target=0.7").quality_target == 0.7
    assert parse_header(" QUALITY = 0.7 , privacy=any ") == RouteSettings(quality_target=0.7, privacy="any")
    for text, param in [
        ("quality=2", "x-architect-route.quality"),
        ("quality=abc", "x-architect-route.quality"),
        ("privacy=public", "x-architect-route.privacy"),
        ("quality=0.5; quality_target=0.6", "x-architect-route.quality_target"),
        ("fast", "x-architect-route"),
        ("colour=red", "x-architect-route.colour"),
    ]:
        with pytest.raises(InvalidRequest) as e:
            parse_header(text)
        assert e.value.param == param, text
    with pytest.raises(InvalidRequest) as e:
        parse_header("quality=2", where="metadata.architect_route")
    assert e.value.param == "metadata.architect_route.quality"


def test_the_most_specific_level_wins_with_its_sources() -> None:
    r = resolve(
        [("request", NONE), ("task", NONE), ("key", Q), ("project", W)], RouteSettings(quality_target=0.7)
    )
    assert (r.quality_target, r.cost_weight, r.sources["quality_target"]) == (0.9, None, "key")
    assert r.knob == ("quality_target", 0.9, "key")
    # a level that sets only cost_weight makes the policy cost_weight, over a less specific quality_target
    r = resolve([("request", W), ("key", Q)], NONE)
    assert (r.quality_target, r.cost_weight, r.knob) == (None, 0.3, ("cost_weight", 0.3, "request"))
    # both at one level: quality_target
    r = resolve([("task", RouteSettings(quality_target=0.6, cost_weight=1.0))], NONE)
    assert r.knob == ("quality_target", 0.6, "task")
    # nothing anywhere: the group's, else the default 0.8
    assert resolve([], RouteSettings(cost_weight=0.5)).knob == ("cost_weight", 0.5, "group")
    assert resolve([], NONE).knob == ("quality_target", 0.8, "default")


def test_privacy_is_the_strictest_level_and_a_request_cannot_relax_it() -> None:
    r = resolve([("request", RouteSettings(privacy="any")), ("key", LOCAL)], NONE)
    assert r.privacy == "local-only" and r.sources["privacy"] == "key"
    r = resolve([("request", LOCAL), ("project", RouteSettings(privacy="any"))], NONE)
    assert r.privacy == "local-only" and r.sources["privacy"] == "request"
    r = resolve([("request", LOCAL), ("project", LOCAL)], NONE)
    assert r.sources["privacy"] == "project"  # the least specific level that enforces it
    assert resolve([], NONE).privacy == "any"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quality_target", 0.5),
        ("quality_target", 0.0),
        ("quality_target", 1.0),
        ("quality_target", float("inf")),
        ("cost_weight", 0.0),
        ("cost_weight", 1000.0),
        ("cost_weight", 1000.5),
        ("cost_weight", -0.1),
        ("cost_weight", float("nan")),
        ("privacy", "local-only"),
        ("privacy", "cloud"),
    ],
)
def test_every_place_that_takes_route_settings_gives_one_verdict(field: str, value: object) -> None:
    """A request header, a key's or project's API body, a plan's task and a group's config accept and
    refuse the same values (`config_routing`'s one definition)."""
    from pydantic import ValidationError

    from architect.api.access import RouteBody
    from architect.api.routing import RouteIn
    from architect.config import ModelGroupConfig
    from architect.orchestrator.plan_model import RouteSpec

    def verdict(check: object) -> bool:
        try:
            check()  # type: ignore[operator]
        except (InvalidRequest, ValidationError):
            return False
        return True

    verdicts = {
        "parse": verdict(lambda: RouteSettings.parse({field: value}, where="route")),
        "header": verdict(lambda: parse_header(f"{field}={value}")),
        "keys API": verdict(lambda: RouteBody.model_validate({field: value})),
        "projects API": verdict(lambda: RouteIn.model_validate({field: value})),
        "plan task": verdict(lambda: RouteSpec.model_validate({field: value})),
    }
    if field != "privacy":  # a group's config has no privacy (its deployments say whether they are local)
        verdicts["group config"] = verdict(
            lambda: ModelGroupConfig.model_validate(
                {"name": "auto", "strategy": "auto", "candidates": ["a"], field: value}
            )
        )
    assert len(set(verdicts.values())) == 1, verdicts
