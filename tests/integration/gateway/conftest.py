from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest

from tests.helpers import LiveServer
from tests.stubs.openai_stub import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as s:
        yield s


@pytest.fixture
def client_for() -> Iterator[Callable[[LiveServer], openai.OpenAI]]:
    """Makes openai SDK clients for a server (no SDK retries) and closes them after the test."""
    made: list[openai.OpenAI] = []

    def make(server: LiveServer) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=20))
        return made[-1]

    yield make
    for c in made:
        c.close()
