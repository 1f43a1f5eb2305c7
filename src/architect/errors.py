"""One exception root for Architect and its documented hierarchy.

    ArchitectError                      root of everything Architect raises on purpose
    ├── ConfigError                     invalid configuration (names the file and field path)
    ├── StoreError                      storage failures, converted from SQLAlchemy/driver errors
    │   ├── StoreDataError              the database refused a row's values (other rows can be written)
    │   ├── MigrationRequired           the database schema is behind the code
    │   ├── NotFoundInStore             a looked-up row does not exist
    │   └── StateConflict               a row's state does not allow the change (a finished task, a duplicate)
    ├── PlanError                       an orchestrator plan is invalid (cycle, unknown dependency)
    ├── GitError                        a git command failed (carries the command and its stderr)
    ├── RoutingDataError                an outcome file or an evaluation option is invalid (names the option)
    └── GatewayError                    an error with an HTTP status, rendered in the OpenAI format
        ├── InvalidRequest       400
        ├── AuthenticationFailed 401
        ├── PermissionDenied     403
        ├── NotFound             404
        │   └── MethodNotAllowed 405  (the Allow header lists the methods)
        ├── PayloadTooLarge      413
        ├── RateLimited          429  (retry_after seconds)
        ├── BudgetExceeded       429  (code budget_exceeded, never retried by SDKs)
        ├── ProviderError        upstream failures, carrying a retryable flag and the kind
        │   ├── UpstreamError    502
        │   ├── UpstreamRefused  400  (the request, not the deployment, was at fault; never retried)
        │   ├── UpstreamRateLimited 429
        │   ├── Unavailable      503
        │   └── UpstreamTimeout  504
        └── ClientClosed         the client went away (499, never sent)

An error is whole when it is made: its status, type, code and headers are given to the constructor
(or are its class's), never changed afterwards.

Third-party exceptions (SQLAlchemy, pydantic, yaml) are converted at the module
boundary that calls the library; nothing outside that module sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ArchitectError",
    "AuthenticationFailed",
    "BudgetExceeded",
    "ClientClosed",
    "ConfigError",
    "GatewayError",
    "GitError",
    "InvalidRequest",
    "MethodNotAllowed",
    "MigrationRequired",
    "NotFound",
    "NotFoundInStore",
    "PayloadTooLarge",
    "PermissionDenied",
    "PlanError",
    "ProviderError",
    "RateLimited",
    "RoutingDataError",
    "StateConflict",
    "StoreDataError",
    "StoreError",
    "Unavailable",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamRefused",
    "UpstreamTimeout",
]


class ArchitectError(Exception):
    """Root of every error Architect raises on purpose."""


class ConfigError(ArchitectError):
    """The configuration is invalid; the message names the file and the field path."""


class StoreError(ArchitectError):
    """A storage operation failed."""


class StoreDataError(StoreError):
    """The database refused the values of a row (out of range, too long, a duplicate or missing
    value): the same write fails again, while other rows can be written."""


class MigrationRequired(StoreError):
    """The database schema is behind; run `architect db upgrade`."""


class NotFoundInStore(StoreError):
    """A row that was asked for does not exist."""


class StateConflict(StoreError):
    """A row's current state does not allow the change (a task that is already finished, a feature that
    is already paused, a duplicate). The message names the row and its state, never a driver's text."""


class PlanError(ArchitectError):
    """An orchestrator plan is invalid."""


class RoutingDataError(ArchitectError):
    """An outcome file or an option of a router evaluation is invalid (missing file, unknown format,
    unknown model); `option` is the command-line option it came from (`--data`, `--weak`, ...)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


class GitError(ArchitectError):
    """A git command failed, or a repository, revision or worktree is not what was asked for.

    `command` is the git argument list (without `git` and the `-c` settings Architect adds), `stderr`
    the command's error output (shortened), `code` its exit status (None when no command ran)."""

    def __init__(
        self, message: str, *, command: Sequence[str] = (), stderr: str = "", code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.command = tuple(command)
        self.stderr = stderr
        self.code = code


class GatewayError(ArchitectError):
    """An error with an HTTP status, rendered as an OpenAI-style error body. The class gives the
    status, type and code; a `status` given here overrides the class's for this error."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class MethodNotAllowed(InvalidRequest):
    """The path exists but not with this method; `allow` lists the methods it takes."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, allow: str, **kw: Any) -> None:
        super().__init__(f"method not allowed; use {allow}", **kw)
        self.headers["allow"] = allow


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.headers.setdefault("retry-after", str(max(1, round(retry_after + 0.499))))


class BudgetExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("x-should-retry", "false")


class ProviderError(GatewayError):
    """An upstream failure. `kind` is recorded in the ledger; `retryable` drives retries."""

    status = 502
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "upstream_error",
        retryable: bool = True,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.kind = kind
        self.retryable = retryable
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class UpstreamError(ProviderError):
    status = 502


class UpstreamRefused(ProviderError):
    """The upstream refused the request itself (a bad request, a context window, content policy) or
    the provider cannot take it: the client's request is at fault, so it is a 400 (a 404 stays a
    404) and it is never retried."""

    status = 400
    type = "invalid_request_error"

    def __init__(
        self, message: str, *, kind: str = "bad_request", retryable: bool = False, **kw: Any
    ) -> None:
        super().__init__(message, kind=kind, retryable=retryable, **kw)


class UpstreamRateLimited(ProviderError):
    """The upstream rate limited the call (retried elsewhere; the client sees it when all are)."""

    status = 429
    type = "rate_limit_error"


class Unavailable(ProviderError):
    status = 503
    type = "service_unavailable"


class UpstreamTimeout(ProviderError):
    status = 504
    type = "timeout"


class ClientClosed(GatewayError):
    status = 499
    type = "client_closed"
