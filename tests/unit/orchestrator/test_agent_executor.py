"""The agent executor's pure parts: which agent and model an attempt gets (escalation), which agents
cannot run here (a program missing, named: only their tasks wait), and the briefing."""

from __future__ import annotations

import asyncio

import pytest

from architect.config_agents import AgentConfig
from architect.errors import ArchitectError
from architect.orchestrator.briefing import Briefing, DepChange, render_briefing
from architect.orchestrator.executors.agent import AgentExecutor, resolve_agent
from architect.orchestrator.executors.base import AgentPrograms
from architect.store.orchestrator import SQLiteMemoryTaskRepo

FEATURE = {"id": 1, "slug": "f", "title": "Checkout", "project": "shop", "spec": "Carts persist.",
           "acceptance": ["a cart survives a restart"], "agent": None}  # fmt: skip


def _agents() -> dict[str, AgentConfig]:
    cheap = AgentConfig.model_validate(
        {
            "name": "cheap",
            "runner": "builtin",
            "model": "small",
            "escalate": [{"attempt": 2, "model": "medium"}, {"attempt": 3, "agent": "strong"}],
        }
    )
    strong = AgentConfig.model_validate({"name": "strong", "runner": "builtin", "model": "large"})
    return {"cheap": cheap, "strong": strong}


@pytest.mark.parametrize(("attempt", "agent", "model"), [(1, "cheap", "small"), (2, "cheap", "medium"),
                                                        (3, "strong", "large"), (7, "strong", "large")])  # fmt: skip
def test_escalation_ladder_by_attempt(attempt: int, agent: str, model: str) -> None:
    cfg, m = resolve_agent(_agents(), {"agent": "cheap", "attempt": attempt}, FEATURE)
    assert (cfg.name, m) == (agent, model)


def test_task_agent_then_feature_agent_then_default() -> None:
    agents = _agents()
    assert resolve_agent(agents, {"attempt": 1}, {**FEATURE, "agent": "strong"})[0].name == "strong"
    assert resolve_agent(agents, {"attempt": 1}, FEATURE, "cheap")[0].name == "cheap"
    assert resolve_agent(agents, {"attempt": 1}, FEATURE)[0].name == "builtin"
    with pytest.raises(ArchitectError, match="'nope' is not configured"):
        resolve_agent(agents, {"agent": "nope", "attempt": 1}, FEATURE)


class _NoKeys:
    def mint(self, **_: object) -> tuple[str, str]:
        raise AssertionError("not called")

    def revoke(self, key_id: str) -> None: ...
    def feature_budget(self, feature: str, usd: float) -> None: ...
    def usage(self, key_id: str, since: float) -> dict[str, object]:
        return {}


def test_missing_names_each_agent_whose_program_is_missing_and_health_holds_nothing_back() -> None:
    aider = AgentConfig.model_validate({"name": "aider", "runner": "aider", "command": "/nonexistent/aider"})
    cheap = AgentConfig.model_validate(
        {"name": "cheap", "runner": "builtin", "escalate": [{"attempt": 3, "agent": "aider"}]}
    )
    fine = AgentConfig.model_validate({"name": "fine", "runner": "builtin"})
    agents = {"aider": aider, "cheap": cheap, "fine": fine}
    ex = AgentExecutor(SQLiteMemoryTaskRepo(), agents, _NoKeys(), "http://127.0.0.1:9", default_agent="fine")
    missing = ex.missing()
    assert sorted(missing) == ["aider", "cheap"]  # not builtin nor fine: they need no program
    assert "/nonexistent/aider" in missing["aider"]
    # an agent whose later attempts would escalate to a missing one waits too, and says why
    assert missing["cheap"].startswith("escalates to agent aider from attempt 3: ")
    assert "/nonexistent/aider" in missing["cheap"]
    # per agent, not per executor: the worker holds back only those agents' tasks
    assert asyncio.run(ex.health()) is None
    assert isinstance(ex, AgentPrograms) and ex.default_agent == "fine"
    assert AgentExecutor(SQLiteMemoryTaskRepo(), {}, _NoKeys(), "http://127.0.0.1:9").missing() == {}


def test_briefing_holds_the_task_the_feature_the_dependencies_and_the_last_failure() -> None:
    text = render_briefing(
        Briefing(
            task={"key": "T5", "title": "Pricing", "description": "Prices in cents."},
            feature=FEATURE,
            validator="pytest -q",
            attempt=2,
            deps=[DepChange("T2", "Cart", ("cart.py",))],
            previous_reason="validation_failed: exit code 1",
            previous_output="FAILED tests/test_t5.py::test_t5 - assert 5 == 15",
        )
    )
    assert text.startswith("# Task T5: Pricing\n")
    for part in ("Prices in cents.", "Carts persist.", "- a cart survives a restart", "T2 Cart (changed: cart.py)",
                 "`pytest -q`", "## Attempt 2", "FAILED tests/test_t5.py::test_t5 - assert 5 == 15"):  # fmt: skip
        assert part in text
    first = render_briefing(
        Briefing(task={"key": "T1", "title": "A"}, feature=FEATURE, validator=None, attempt=1)
    )
    assert "Attempt" not in first and "How the work is checked" not in first
