"""The exception tree. Every message names the value, the rule it broke and the fix.

    TracebatonError
    ├── ConfigurationError    a setting (argument, environment variable, file) is unusable
    │   └── FlowSpecError     a flow spec does not parse or breaks a rule of spec v1
    ├── OtlpDecodeError       an OTLP request body cannot be decoded
    └── StoreError            the span store cannot do what was asked
        ├── StoreSaturatedError   ingest is behind; retry after `retry_after_s`
        └── StoreClosedError      the store was shut down

    TraceAssertionError (also an AssertionError)  a flow failed its expectations
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebaton.assertions import FlowResult


class TracebatonError(Exception):
    """Base of every error tracebaton raises on purpose."""


class ConfigurationError(TracebatonError):
    """A setting is unusable: the message says which one, what it holds and what it takes."""


class OtlpDecodeError(TracebatonError):
    """An OTLP request body is malformed; receivers answer it with 400 / INVALID_ARGUMENT."""


class StoreError(TracebatonError):
    """The span store cannot do what was asked."""


class StoreSaturatedError(StoreError):
    """Ingest is behind: the request was refused whole and should be sent again later.

    Receivers answer with 503 + Retry-After or UNAVAILABLE + RetryInfo, which every
    OpenTelemetry exporter honours by retrying with backoff.
    """

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreClosedError(StoreError):
    """The store was shut down; nothing more is accepted."""


class FlowSpecError(ConfigurationError):
    """A flow spec is unusable: the message names the key (as a path like
    `expect.budgets.hops`), what it holds and what it takes."""


class TraceAssertionError(AssertionError, TracebatonError):
    """A flow did not meet its expectations. `result` holds the whole verdict; the message
    is its rendering: verdict line, first divergence, hop diff, span tree."""

    def __init__(self, message: str, result: FlowResult) -> None:
        super().__init__(message)
        self.result = result


# Users meet these as tracebaton.X (tracebacks, pytest's "E   ..." lines), not as a private module.
for _error in (TracebatonError, ConfigurationError, FlowSpecError, OtlpDecodeError, StoreError,
               StoreSaturatedError, StoreClosedError, TraceAssertionError):
    _error.__module__ = "tracebaton"
