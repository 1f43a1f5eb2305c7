from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stubs.openai_stub import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as s:
        yield s
