"""Binding the receivers' and the API's ports, with an error that says which part is wrong.

A bind fails for different reasons that need different fixes: a host that is not an
address at all, an address of another machine, a port another process holds, a privileged
port. grpcio binds its own socket and logs its failure as a bare core line, so its address
is tried here first.
"""

from __future__ import annotations

import errno
import socket

from tracebaton import ConfigurationError


def _bound(host: str, port: int, what: str, port_setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ConfigurationError(f"{what} cannot listen on {where}: "
                                 f"{_reason(host, error, port_setting)}") from None
    return sock


def _reason(host: str, error: OSError, port_setting: str) -> str:
    if isinstance(error, socket.gaierror):
        return (f"{host!r} is neither an IP address nor a host name this machine resolves; "
                "use one of its addresses: 127.0.0.1 for this machine only, 0.0.0.0 for every interface")
    if error.errno == errno.EADDRNOTAVAIL:
        return (f"{host} is not an address of this machine; use one of its addresses: "
                "127.0.0.1 for this machine only, 0.0.0.0 for every interface")
    if error.errno == errno.EADDRINUSE:
        return (f"the port is in use: another process holds it; pick another {port_setting}, "
                "or 0 for a free one")
    if error.errno == errno.EACCES:
        return (f"permission denied: ports below 1024 need privileges; pick another "
                f"{port_setting} above 1023, or 0 for a free one")
    return f"{error.strerror}; pick another {port_setting}, or 0 for a free one"


def listen_socket(host: str, port: int, what: str, port_setting: str = "port") -> socket.socket:
    """A non-blocking socket listening on `host:port`, or a `ConfigurationError` naming what
    to change (`port_setting` names the flag or setting that chose the port)."""
    sock = _bound(host, port, what, port_setting)
    # Accepted connections inherit it (Linux): a response written as headers then body is
    # not held back by Nagle waiting for a delayed ACK (40 ms on a kept-alive connection).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def check_listenable(host: str, port: int, what: str, port_setting: str = "port") -> None:
    """Raise what `listen_socket` would, for a server that binds its own socket."""
    _bound(host, port, what, port_setting).close()
