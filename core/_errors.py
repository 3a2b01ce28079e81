"""The exception tree. Every message names the value, the rule it broke and the fix.

    TracebatonError
    ├── ConfigurationError        a setting (argument, environment variable, file) is unusable
    │   └── FlowSpecError         a flow spec does not parse or breaks a rule of spec v1
    ├── CollectorStateError       a Collector used before `start()`, after `shutdown()`, or started twice
    ├── OtlpDecodeError           an OTLP request body cannot be decoded
    ├── StoreError                the span store cannot do what was asked
    │   ├── StoreSaturatedError   ingest is behind; retry after `retry_after_s`
    │   └── StoreClosedError      the store was shut down
    └── RemoteError               a `tracebaton serve` over HTTP did not do what was asked; `url`
        ├── ServerUnreachableError   no answer: refused, unresolvable or timed out (`__cause__`)
        ├── ServerError              it answered 5xx: its failure, not the request's; `status`, `body`
        └── RequestRejectedError     it answered 4xx: the request must change; `status`, `detail`

    TraceAssertionError (also an AssertionError)  a flow failed its expectations
    tracebaton.demo.DemoExtraMissing (also an ImportError, defined with the demo)

The three kinds of RemoteError call for different people: an unreachable server is an
address or a process to fix, a 5xx is the server's log to read (a retry may do), a 4xx is
the request to change (the server's `detail` says how).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracebaton.assertions import FlowResult

_SHOWN_BODY = 500
"""Characters of an error answer's body kept in a message (the whole body is on `.body`)."""


class TracebatonError(Exception):
    """Base of every error tracebaton raises on purpose."""


class ConfigurationError(TracebatonError):
    """A setting is unusable: the message says which one, what it holds and what it takes."""


class CollectorStateError(TracebatonError):
    """A `Collector` was asked for something its lifecycle state does not allow; `state` is
    one of "not started", "running", "shut down"."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


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


class RemoteError(TracebatonError):
    """A `tracebaton serve` reached over HTTP did not do what was asked; `url` is what was asked."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url

    @staticmethod
    def for_answer(url: str, status: int, body: str) -> ServerError | RequestRejectedError:
        """The error for an HTTP answer of 400 or more from `url`: a 5xx is the server's
        failure, anything else in 4xx the request's."""
        if status >= 500:
            return ServerError(url, status, body)
        return RequestRejectedError(url, status, body)

    @staticmethod
    def json_of(url: str, status: int, body: str, *, setting: str) -> Any:
        """What a tracebaton server answered at `url`, decoded; raises what an answer of 400
        or more stands for, or ConfigurationError naming `setting` (where the URL came from)
        when the answer is not JSON, as a server other than tracebaton answers."""
        if status >= 400:
            raise RemoteError.for_answer(url, status, body)
        try:
            return json.loads(body)
        except ValueError as error:
            raise ConfigurationError(
                f"{url} answered {status} but not JSON: is this a tracebaton server? Point {setting} "
                "at its API port (7357 by default)"
            ) from error


class ServerUnreachableError(RemoteError):
    """No answer came: the connection failed (refused, reset, a name that does not resolve)
    or the server did not answer in time. `__cause__` is the transport's own exception."""

    def __init__(self, url: str, cause: BaseException, *, timed_out: bool, fix: str) -> None:
        what = "did not answer in time" if timed_out else "cannot be reached"
        super().__init__(f"tracebaton at {url} {what} ({type(cause).__name__}: {cause}); {fix}", url=url)
        self.timed_out = timed_out


class ServerError(RemoteError):
    """The server answered 5xx: it failed, the request may well be fine. `status` and the
    whole `body` are kept; a 503 usually passes once the server has caught up."""

    def __init__(self, url: str, status: int, body: str) -> None:
        then = "retry once it has caught up" if status == 503 else "its log says why"
        super().__init__(
            f"{url} answered {status}: {_detail(body)}; that is the server failing, not the "
            f"request: {then}",
            url=url,
        )
        self.status = status
        self.body = body


class RequestRejectedError(RemoteError):
    """The server answered 4xx: the request must change. `detail` is the server's own
    explanation (its `{"detail": ...}`), `body` the whole answer."""

    def __init__(self, url: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        self.detail = _detail(body)
        super().__init__(f"{url} answered {status}: {self.detail}", url=url)


def _detail(body: str) -> str:
    """What the server said: its `detail` when it answered as tracebaton does, else the body."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:_SHOWN_BODY] or "(an empty body)"
    if isinstance(answer, dict) and "detail" in answer:
        detail = answer["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)[:_SHOWN_BODY]
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):  # a google.rpc.Status (OTLP)
        return str(answer["message"])
    return body[:_SHOWN_BODY]


class TraceAssertionError(AssertionError, TracebatonError):
    """A flow did not meet its expectations. `result` holds the whole verdict; the message
    is its rendering: verdict line, first divergence, hop diff, span tree."""

    def __init__(self, message: str, result: FlowResult) -> None:
        super().__init__(message)
        self.result = result
