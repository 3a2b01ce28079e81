"""The /jaeger/api/v3 answers' shapes for the OpenAPI document: Jaeger's `api_v3` messages in
proto3 JSON (`idl/proto/api_v3/query_service.proto`), as pydantic models.

Answers are written from dicts (`_jaeger_v3_shapes`); these models document them, and
schemathesis checks that what is sent conforms. proto3 JSON leaves out a field at its default,
so every field but the ids and names may be absent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class V3Services(BaseModel):
    services: list[str]


class V3Operation(BaseModel):
    name: str
    spanKind: Literal["server", "client", "producer", "consumer", "internal"]


class V3Operations(BaseModel):
    operations: list[V3Operation]


class V3ServiceSummary(BaseModel):
    name: str = Field(description="written even when empty: Jaeger UI requires it")
    spanCount: int | None = Field(None, ge=1)
    errorSpanCount: int | None = Field(None, ge=1)


class V3TraceSummary(BaseModel):
    traceId: str = Field(pattern=r"^[0-9a-f]{32}$")
    rootServiceName: str | None = Field(None, description="absent when no span of the trace lacks a parent")
    rootOperationName: str | None = None
    minStartTimeUnixNano: str | None = Field(None, pattern=r"^[0-9]+$", description="ns since the epoch")
    maxEndTimeUnixNano: str | None = Field(None, pattern=r"^[0-9]+$")
    spanCount: int | None = Field(None, ge=1)
    errorSpanCount: int | None = Field(None, ge=1)
    orphanSpanCount: int | None = Field(None, ge=1, description="spans whose parent is not in the trace")
    services: list[V3ServiceSummary] | None = None


class V3TraceSummaries(BaseModel):
    summaries: list[V3TraceSummary]


class V3Traces(BaseModel):
    result: dict[str, Any] = Field(description="OTLP JSON `TracesData`: `{\"resourceSpans\": [...]}`")


class V3ErrorDetails(BaseModel):
    httpCode: int
    message: str = Field(description="what was wrong, naming the parameter, and what to send instead")


class V3Error(BaseModel):
    """grpc-gateway's error, as Jaeger's v3 HTTP gateway writes every refusal."""

    error: V3ErrorDetails
