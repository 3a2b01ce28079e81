"""The ingest token: OTLP exporters send it as `authorization: Bearer <token>` (set with
OTEL_EXPORTER_OTLP_HEADERS); both receivers check it the same way."""

from __future__ import annotations

import hmac

UNAUTHORIZED = ("this collector requires an ingest token: send `authorization: Bearer <token>` "
                "(OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>; tracebaton.sut_env() "
                "sets it), the value of --ingest-token / TRACEBATON_INGEST_TOKEN")


def bearer_matches(header: str | None, token: str) -> bool:
    """Constant-time: the time taken tells nothing of how much of a guess was right."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
