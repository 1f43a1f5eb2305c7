from __future__ import annotations

from pathlib import Path

import pytest

from architect.config import default_database_url, load_config, parse_config
from architect.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "src" / "architect" / "examples" / "simulated.yaml"


def _base(**group: object) -> dict[str, object]:
    dep = {"provider": "p", "model": "x"}
    return {
        "providers": [{"name": "p", "kind": "simulated"}],
        "models": [{"name": "g", "deployments": [dep], **group}],
    }


def test_shipped_example_is_valid() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.baseline == "strong"
    assert {g.name for g in cfg.models} >= {"fast", "mid", "strong", "flaky"}


def test_wrong_field_names_path_and_expectation() -> None:
    data = _base()
    data["models"] = [
        {"name": "a", "deployments": [{"provider": "p", "model": "x"}]},
        {"name": "b", "deployments": [{"provider": "p", "model": "y"}]},
        {"name": "c", "deployments": [{"provider": "p", "model": "z", "price": 3}]},
    ]
    with pytest.raises(ConfigError) as exc:
        parse_config(data, source="conf.yaml", env={})
    msg = str(exc.value)
    assert "conf.yaml" in msg
    assert "models[2].deployments[0].price" in msg


def test_unknown_provider_and_fallback_are_refused() -> None:
    data = _base()
    data["models"][0]["deployments"][0]["provider"] = "nope"  # type: ignore[index]
    with pytest.raises(
        ConfigError, match=r"models\[0\]\.deployments\[0\]\.provider: unknown provider 'nope'"
    ):
        parse_config(data, env={})
    with pytest.raises(ConfigError, match="unknown model group 'ghost'"):
        parse_config(_base(fallbacks=["ghost"]), env={})


def test_the_name_cache_hits_are_counted_under_is_reserved() -> None:
    data = _base()
    data["providers"][0]["name"] = "cache"  # type: ignore[index]
    data["models"][0]["deployments"][0]["provider"] = "cache"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"providers\[0\]\.name: 'cache' is reserved"):
        parse_config(data, env={})
    data = _base()
    data["models"][0]["deployments"][0]["name"] = "cache"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\]\.name: 'cache' is reserved"):
        parse_config(data, env={})


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]\.stratgy"):
        parse_config(_base(stratgy="weighted"), env={})


def test_env_references_and_defaults(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(
        "providers:\n  - name: v\n    kind: openai\n    base_url: '${BASE:-http://127.0.0.1:9/v1}'\n"
        "    api_key: ${KEY}\n"
    )
    cfg = load_config(f, env={"KEY": "sk-123"})
    assert cfg.providers[0].api_key == "sk-123"
    assert cfg.providers[0].base_url == "http://127.0.0.1:9/v1"
    assert "sk-123" not in repr(cfg.providers[0])
    with pytest.raises(ConfigError, match=r"providers\[0\]\.api_key: environment variable KEY is not set"):
        load_config(f, env={})


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("models:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line"):
        load_config(f, env={})


def test_env_overrides_admin_key_and_database() -> None:
    cfg = parse_config({}, env={"ARCHITECT_ADMIN_KEY": "adm", "ARCHITECT_DATABASE_URL": "sqlite:///x.db"})
    assert cfg.auth.admin_key == "adm"
    assert cfg.database_url == "sqlite:///x.db"
    assert default_database_url({"ARCHITECT_HOME": "/tmp/h"}) == "sqlite:////tmp/h/architect.db"


def test_openai_provider_needs_base_url() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        parse_config({"providers": [{"name": "o", "kind": "openai"}]}, env={})


def test_aliases_resolve_exact_then_patterns_in_order_and_collisions_are_refused() -> None:
    from architect.gateway.routing import Router

    data = _base(aliases=["claude-*", "sonnet"])
    data["models"].append(  # type: ignore[attr-defined]
        {
            "name": "h",
            "aliases": ["claude-opus-*", "gpt-5.5"],
            "deployments": [{"provider": "p", "model": "y"}],
        }
    )
    router = Router.build(parse_config(data, env={}))
    found = {
        name: (g.name if g else None)
        for name in ("g", "h", "sonnet", "gpt-5.5", "claude-opus-4-1", "claude-haiku", "other")
        for g in [router.group(name)]
    }
    assert found == {
        "g": "g",
        "h": "h",
        "sonnet": "g",
        "gpt-5.5": "h",
        "claude-opus-4-1": "g",  # the first pattern in file order wins
        "claude-haiku": "g",
        "other": None,
    }
    with pytest.raises(ConfigError, match=r"models\[0\]\.aliases\[0\]: 'g' is the name of a model group"):
        parse_config(_base(aliases=["g"]), env={})
    twice = _base(aliases=["x1"])
    twice["models"].append({"name": "h", "aliases": ["x1"], "deployments": [{"provider": "p", "model": "y"}]})  # type: ignore[attr-defined]
    with pytest.raises(
        ConfigError, match=r"models\[1\]\.aliases\[0\]: 'x1' is already an alias of group 'g'"
    ):
        parse_config(twice, env={})
