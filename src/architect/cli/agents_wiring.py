"""What `architect run` and `architect worker` build from `--config`: the executors (command,
python, llm and the coding-agent executor with the configured agents), and the key minter that gives
each agent and command attempt a key of its own on the gateway (`access.attempt_keys`).

Without `--config`, agent tasks use the implicit `builtin` agent and the gateway at
http://127.0.0.1:8400 (or `--gateway-url`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from architect.config import Config, load_config
from architect.config_agents import OrchestratorConfig

if TYPE_CHECKING:
    from architect.orchestrator.executors import Executor
    from architect.orchestrator.worker import TaskKeys
    from architect.store import Store

__all__ = ["build_executors", "gateway_url_of"]

DEFAULT_GATEWAY = "http://127.0.0.1:8400"


def gateway_url_of(config: Config | None, given: str | None) -> str:
    """`--gateway-url`, else the config's `orchestrator.gateway_url`, else its server's address."""
    if given:
        return given
    return config.gateway_url() if config is not None else DEFAULT_GATEWAY


def load_optional(path: str | None) -> Config | None:
    return load_config(path) if path else None


def build_executors(
    store: Store, config: Config | None, gateway_url: str | None, gateway_key: str | None, worker_id: str
) -> tuple[dict[str, Executor], TaskKeys]:
    from architect.access.attempt_keys import AttemptKeys
    from architect.access.keys import KeyService
    from architect.orchestrator.executors import default_executors
    from architect.orchestrator.executors.agent import AgentExecutor
    from architect.orchestrator.worker import TaskKeys

    url = gateway_url_of(config, gateway_url)
    minter = AttemptKeys(
        KeyService(store.keys, store.budgets, store.audit), store.ledger, routing=store.routing
    )
    executors = default_executors(f"{url.rstrip('/').removesuffix('/v1')}/v1", gateway_key)
    agents = {a.name: a for a in config.all_agents()} if config is not None else {}
    orch = config.orchestrator if config is not None else OrchestratorConfig()
    executors["agent"] = AgentExecutor(
        store.tasks, agents, minter, url, validator_timeout_s=orch.validator_timeout_s,
        default_agent=orch.default_agent, worker_id=worker_id,
    )  # fmt: skip
    return executors, TaskKeys(url, minter)
