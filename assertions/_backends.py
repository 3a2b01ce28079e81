"""Where a flow is judged: in this process over a store (embedded), or by a remote
`tracebaton serve` through its REST API. `Flow` and `Client` talk to either the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

from tracebaton import ConfigurationError, RemoteError, ServerUnreachableError, StoreError
from tracebaton.collector import PROTOBUF, SpanStore, StoredSpan, TraceQuery, TraceSummary

from ._engine import FlowEngine
from ._result import FlowResult
from ._spec import FlowSpec
from ._spec_dump import flow_spec_to_dict
from ._wire import span_from_json

_ACK_TIMEOUT_S = 30.0


class FlowBackend(Protocol):
    dashboard_url: str | None

    @property
    def otlp_http_endpoint(self) -> str:
        """Where services under test export (`sut_env()` points them here)."""
        ...

    def export_spans(self, spans: Sequence[ReadableSpan]) -> None:
        """Store a flow's own spans; returns once they are committed (acknowledged)."""
        ...

    def check(
        self,
        spec: FlowSpec,
        trace_id: str | None,
        *,
        test_id: str | None = None,
        session_id: str | None = None,
        record: bool = True,
    ) -> FlowResult:
        """Judge `spec`; `record=False` for a look that is not a check (`flow.trace()`)."""
        ...

    def spans(self, trace_ids: Sequence[str]) -> list[StoredSpan]: ...

    def traces(self, query: TraceQuery) -> list[TraceSummary]: ...


class EmbeddedBackend:
    """A store in this process: the engine reads it directly, flow spans skip the network."""

    def __init__(self, store: SpanStore, *, otlp_http_endpoint: str,
                 dashboard_url: str | None = None) -> None:
        self.store = store
        self._engine = FlowEngine(store)
        self.otlp_http_endpoint = otlp_http_endpoint
        self.dashboard_url = dashboard_url

    def export_spans(self, spans: Sequence[ReadableSpan]) -> None:
        body = encode_spans(spans).SerializeToString()
        result = self.store.ingest(body, PROTOBUF).result(_ACK_TIMEOUT_S)
        if result.rejected_spans:
            raise StoreError(f"the store rejected the flow's own span: {result.error_message}")

    def check(
        self,
        spec: FlowSpec,
        trace_id: str | None,
        *,
        test_id: str | None = None,
        session_id: str | None = None,
        record: bool = True,
    ) -> FlowResult:
        result = self._engine.check(spec, trace_id)
        if record:  # like a server-side check, so the dashboard on the kept store lists it
            # with the spec, as the server records it: the dashboard draws budget markers from it
            self.store.record_run({**result.to_json(), "spec": flow_spec_to_dict(spec)}, test_id=test_id,
                                  session_id=session_id)
        return result

    def spans(self, trace_ids: Sequence[str]) -> list[StoredSpan]:
        return [span for trace_id in trace_ids for span in self.store.trace(trace_id)]

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        return self.store.traces(query)


class RemoteBackend:
    """A `tracebaton serve` elsewhere: flows are judged server-side (`POST /api/check`).

    Failures say whose they are: `ServerUnreachableError` (no answer), `ServerError` (it
    answered 5xx), `RequestRejectedError` (it answered 4xx), all `RemoteError`s.
    """

    def __init__(
        self,
        api_url: str,
        *,
        token: str | None = None,
        otlp_http_endpoint: str | None = None,
        ingest_token: str | None = None,
    ) -> None:
        import httpx

        self.api_url = api_url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=httpx.Timeout(10.0))
        # its own client: the API token is not sent to the OTLP endpoint, nor the ingest token to the API
        self._otlp_http = httpx.Client(
            headers={"authorization": f"Bearer {ingest_token}"} if ingest_token else {},
            timeout=_ACK_TIMEOUT_S,
        )
        self._otlp = otlp_http_endpoint
        self.dashboard_url: str | None = self.api_url

    @property
    def otlp_http_endpoint(self) -> str:
        if self._otlp is None:
            health = self._json(self._request(self._http, "GET", "/healthz"))
            endpoint = health.get("otlp_http")
            if not isinstance(endpoint, str):
                raise ConfigurationError(
                    f"{self.api_url}/healthz does not say where OTLP/HTTP listens; pass otlp_http_endpoint="
                )
            self._otlp = endpoint
        return self._otlp

    def _request(self, http: Any, method: str, url: str, **kwargs: Any) -> Any:
        """The answer to one request, whatever its status; no answer at all raises."""
        import httpx

        try:
            return http.request(method, url, **kwargs)
        except httpx.TransportError as error:
            raise ServerUnreachableError(
                str(http.base_url).rstrip("/") or url,
                error,
                timed_out=isinstance(error, httpx.TimeoutException),
                fix="start it with `tracebaton serve`, or fix --tracebaton-url / TRACEBATON_URL",
            ) from error

    def _json(self, response: Any) -> Any:
        return RemoteError.json_of(str(response.request.url), response.status_code, response.text,
                                   setting="--tracebaton-url or TRACEBATON_URL")

    def export_spans(self, spans: Sequence[ReadableSpan]) -> None:
        response = self._request(
            self._otlp_http,
            "POST",
            self.otlp_http_endpoint + "/v1/traces",
            content=encode_spans(spans).SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        if response.status_code != 200:
            url = str(response.request.url)
            raise RemoteError.for_answer(url, response.status_code, _otlp_text(response))

    def check(
        self,
        spec: FlowSpec,
        trace_id: str | None,
        *,
        test_id: str | None = None,
        session_id: str | None = None,
        record: bool = True,
    ) -> FlowResult:
        payload = {
            "spec": flow_spec_to_dict(spec),
            "trace_id": trace_id,
            "test_id": test_id,
            "session_id": session_id,
            "record": record,
        }
        wait_s = spec.wait.timeout_ns / 1e9 + 30.0
        response = self._request(self._http, "POST", "/api/check", json=payload, timeout=wait_s)
        return FlowResult.from_json(self._json(response))

    def spans(self, trace_ids: Sequence[str]) -> list[StoredSpan]:
        spans = []
        for trace_id in trace_ids:
            response = self._request(self._http, "GET", f"/api/traces/{trace_id}")
            if response.status_code == 404:
                continue
            spans += [span_from_json(s) for s in self._json(response)["spans"]]
        return spans

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        params: dict[str, Any] = {"limit": query.limit}
        if query.service:
            params["service"] = query.service
        if query.name:
            params["name"] = query.name
        if query.status is not None:
            params["status"] = query.status.label
        if query.since_unix_nano is not None:
            params["since_unix_nano"] = query.since_unix_nano
        for key, value in query.attributes.items():
            params[f"attr.{key}"] = value
        data = self._json(self._request(self._http, "GET", "/api/traces", params=params))
        return [
            TraceSummary(
                trace_id=t["trace_id"],
                root_service=t.get("root_service"),
                root_name=t.get("root_name"),
                start_unix_nano=int(t["start_unix_nano"]),
                end_unix_nano=int(t["end_unix_nano"]),
                span_count=int(t["span_count"]),
                error_count=int(t["error_count"]),
                services=tuple(t["services"]),
                last_arrival_unix_nano=int(t["last_arrival_unix_nano"]),
            )
            for t in data["traces"]
        ]

    def close(self) -> None:
        self._http.close()
        self._otlp_http.close()


def _otlp_text(response: Any) -> str:
    """An OTLP/HTTP error answer as text: its google.rpc.Status message when it is protobuf."""
    if response.headers.get("content-type", "").startswith("application/x-protobuf"):
        from google.protobuf.message import DecodeError
        from google.rpc import status_pb2

        status = status_pb2.Status()
        try:
            status.ParseFromString(response.content)
        except DecodeError:
            return repr(response.content[:200])
        return str(status.message)
    return str(response.text)
