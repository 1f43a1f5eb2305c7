from __future__ import annotations

from architect.errors import ArchitectError, BudgetExceeded, GatewayError, RateLimited, UpstreamTimeout


def test_hierarchy_has_one_root() -> None:
    for cls in (GatewayError, RateLimited, BudgetExceeded, UpstreamTimeout):
        assert issubclass(cls, ArchitectError)


def test_openai_error_body_and_headers() -> None:
    err = RateLimited("slow down", retry_after=2.2)
    assert err.status == 429
    assert err.headers["retry-after"] == "3"
    assert err.body() == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    b = BudgetExceeded("over")
    assert b.headers["x-should-retry"] == "false"
    assert b.body()["error"]["code"] == "budget_exceeded"
