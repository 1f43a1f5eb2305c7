from __future__ import annotations

from architect.errors import (
    ArchitectError,
    BudgetExceeded,
    GatewayError,
    MethodNotAllowed,
    RateLimited,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from architect.gateway.providers.base import upstream_error


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


def test_errors_are_whole_when_made() -> None:
    m = MethodNotAllowed("POST")
    assert (m.status, m.type, m.code, m.headers) == (
        405,
        "invalid_request_error",
        "method_not_allowed",
        {"allow": "POST"},
    )
    r = UpstreamRefused("too long", kind="context_window", code="context_length_exceeded")
    assert (r.status, r.type, r.retryable, r.kind) == (400, "invalid_request_error", False, "context_window")
    limited = UpstreamRateLimited("slow", kind="rate_limited", headers={"retry-after": "2"})
    assert (limited.status, limited.type, limited.retryable, limited.headers) == (
        429, "rate_limit_error", True, {"retry-after": "2"},
    )  # fmt: skip
    # an upstream's refusal is the client's 400, except a 404 (an unknown upstream model) stays a 404
    assert [
        (e.status, e.type) for e in (upstream_error(422, {}, "bad"), upstream_error(404, {}, "gone"))
    ] == [
        (400, "invalid_request_error"),
        (404, "invalid_request_error"),
    ]
