"""Where a span says it called or answered, by the old and the stable HTTP/RPC conventions.

The store uses it to find the root SERVER span that answered at a `host:port`; the flow
engine uses it to name the target of a CLIENT span whose callee never joined its trace.
"""

from __future__ import annotations

import re
import urllib.parse

from tracebaton import whole_number

from ._model import Attributes

_DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$")


def parse_call_target(target: str) -> tuple[str, int] | None:
    """A call target as `SpanStore.roots` takes it: `host:port` (an IPv6 host in brackets)
    is an address; anything else is a service name, and gives None."""
    match = _HOST_PORT.match(target)
    if match and 0 < int(match.group(2)) <= 65535:
        return match.group(1).strip("[]"), int(match.group(2))
    return None


def url_address(url: str) -> tuple[str, int] | None:
    """`http://Cart:8080/x` -> ("cart", 8080); the scheme's port when none is written."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower())
    return None if port is None else (host.lower(), port)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return whole_number(value)
    return None


def _pair(attributes: Attributes, host_key: str, port_key: str) -> tuple[str, int] | None:
    host, port = attributes.get(host_key), _int(attributes.get(port_key))
    if not isinstance(host, str) or not host:
        return None
    if port is None or (":" in host and not host.startswith("[")):
        # the ASGI instrumentation writes the Host header whole: server.address "127.0.0.1:8000"
        with_port = url_address("http://" + host)
        if with_port is not None and (port is None or with_port[1] == port) and ":" in host:
            return with_port
    return None if port is None else (host.lower(), port)


# Where the old conventions put the peer's address: the caller names the peer it called,
# the server names the host it answered as; both say server.address in the stable ones.
_CALLED = (("server.address", "server.port"), ("net.peer.name", "net.peer.port"))
_SERVED = (("server.address", "server.port"), ("net.host.name", "net.host.port"))


def _addresses(attributes: Attributes, keys: tuple[tuple[str, str], ...]) -> list[tuple[str, int]]:
    """Every host:port the attributes name, in the order the conventions prefer."""
    found = [pair for host_key, port_key in keys if (pair := _pair(attributes, host_key, port_key))]
    for url_key in ("url.full", "http.url"):
        url = attributes.get(url_key)
        if isinstance(url, str) and (pair := url_address(url)) is not None:
            found.append(pair)
    return found


def call_address(attributes: Attributes) -> tuple[str, int] | None:
    """The host:port a CLIENT span called, from its attributes; None when it does not say."""
    return next(iter(_addresses(attributes, _CALLED)), None)


def served_address(attributes: Attributes) -> tuple[str, int] | None:
    """The host:port a SERVER span says it answered at, when it says."""
    return next(iter(_addresses(attributes, _SERVED)), None)


def served_at(attributes: Attributes, host: str, port: int) -> bool:
    """Whether a SERVER span's attributes say it answered at host:port."""
    wanted = (host.lower(), port)
    if wanted in _addresses(attributes, _SERVED):
        return True
    http_host = attributes.get("http.host")
    if isinstance(http_host, str):
        return url_address("http://" + http_host) == wanted or http_host.lower() == f"{wanted[0]}:{port}"
    return False
