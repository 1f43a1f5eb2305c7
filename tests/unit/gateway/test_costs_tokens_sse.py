from __future__ import annotations

import orjson

from architect.config import PriceConfig
from architect.gateway.costs import cost_usd, worst_case_cost
from architect.gateway.providers.base import Usage
from architect.gateway.sse import completion_to_sse, sse_to_completion
from architect.gateway.tokens import count_messages, count_text, install_encodings


def test_cost_uses_input_output_and_cached_prices() -> None:
    price = PriceConfig(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3)
    usage = Usage(prompt_tokens=1_000, completion_tokens=100, cached_tokens=400)
    assert abs(cost_usd(price, usage) - (600 * 3 + 400 * 0.3 + 100 * 15) / 1e6) < 1e-12
    assert worst_case_cost(price, 10, 20) == (10 * 3 + 20 * 15) / 1e6


def test_tokens_are_counted_offline_from_verified_files(tmp_path: object) -> None:
    folder = install_encodings()
    assert len(list(folder.iterdir())) >= 2
    assert count_text("hello world") == 2
    n = count_messages([{"role": "user", "content": "hello world"}])
    assert n == 3 + 3 + 1 + 2


def test_completion_and_stream_round_trip() -> None:
    body = orjson.dumps(
        {
            "id": "c1",
            "created": 1,
            "model": "m",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi there"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
        }
    )
    events = completion_to_sse(body, include_usage=True)
    assert events[-1] == b"data: [DONE]\n\n"
    back = orjson.loads(sse_to_completion(b"".join(events)) or b"{}")
    assert back["choices"][0]["message"]["content"] == "hi there"
    assert back["usage"]["total_tokens"] == 4
    assert sse_to_completion(b"".join(events[:-1])) is None  # no [DONE]: incomplete
