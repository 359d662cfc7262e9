"""The service's uvicorn server, built from its options."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn

from app.service.guard import GuardRules
from app.service.http import ApiOptions, create_app
from app.service.recognition import WorkerTranscriber
from app.service.stream import MAX_MESSAGE_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8737
"""Chosen to avoid the usual local servers (8000, 8080, 5092, 8765, 10300, 11434)."""
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
"""OpenAI's limit for one upload."""
NO_FAMILY = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)
"""Errors that mean this machine has no IPv6 loopback (it is then served on 127.0.0.1 alone)."""


class ServiceStartError(OSError):
    """The service could not listen; the message is one line saying why and what to do."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


@dataclass(frozen=True)
class ServiceOptions:
    """Where and how the service listens."""

    token: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_sessions: int = 4
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    """`Host` names accepted besides the loopback names and the bound address (e.g. a LAN name)."""
    debug: bool = False

    @property
    def url(self) -> str:
        """The base URL of the OpenAI-compatible API."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the service on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PreboundServer(uvicorn.Server):
    """A uvicorn server on sockets bound before it runs, so that a port in use is reported before anything starts
    and one port can be served on both loopback families."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config)
        self.bound = sockets

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve the bound sockets (or `sockets`); they are closed when it stops."""
        try:
            await super().serve(sockets or self.bound)
        finally:
            self.close_sockets()

    def close_sockets(self) -> None:
        """Close the bound sockets (when the server will not run, or has stopped)."""
        for sock in self.bound:
            sock.close()


def build_server(transcriber: WorkerTranscriber, options: ServiceOptions) -> PreboundServer:
    """A uvicorn server for the API, already listening; `run()` serves until Ctrl+C.

    Raises `ServiceStartError` when the port cannot be used."""
    rules = GuardRules.for_bind(
        options.host,
        options.port,
        options.token,
        extra_hosts=options.allowed_hosts,
        origins=options.allowed_origins,
        max_body_bytes=options.max_upload_bytes,
    )
    sockets = listen(options.host, options.port)
    app = create_app(transcriber, ApiOptions(rules, options.max_sessions, options.debug))
    config = uvicorn.Config(
        app,
        host=options.host.strip("[]"),
        port=options.port,
        log_level="debug" if options.debug else "warning",
        access_log=options.debug,
        lifespan="off",
        server_header=False,
        ws_max_size=MAX_MESSAGE_BYTES,
    )
    return PreboundServer(config, sockets)


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host:port`: 127.0.0.1 (or localhost) also listens on ::1 where the machine has it;
    other hosts bind what they resolve to. Raises `ServiceStartError`, one line, when one cannot be bound."""
    required, optional = _addresses(host, port)
    sockets: list[socket.socket] = []
    try:
        for family, address in required:
            sockets.append(_bind(family, address))
            port = port or sockets[0].getsockname()[1]  # port 0: the one picked for the first, for all
        for family, address in optional:
            try:
                sockets.append(_bind(family, (address[0], port, *address[2:])))
            except ServiceStartError as exc:
                if exc.errno not in NO_FAMILY:
                    raise
    except ServiceStartError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


Address = tuple[socket.AddressFamily, tuple[Any, ...]]
"""A socket family and an address to bind (IPv6 addresses have four fields)."""


def _addresses(host: str, port: int) -> tuple[list[Address], list[Address]]:
    """The addresses that must be bound, and those bound only where the machine has them."""
    name = host.strip("[]")
    if name.lower() in (DEFAULT_HOST, "localhost"):
        return [(socket.AF_INET, (DEFAULT_HOST, port))], [(socket.AF_INET6, ("::1", port, 0, 0))]
    try:
        found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServiceStartError(f"cannot listen on {host}:{port} ({exc.strerror}); check the host name") from None
    return list(dict.fromkeys((family, tuple(address)) for family, _, _, _, address in found)), []


def _bind(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    shown = f"[{address[0]}]:{address[1]}" if family == socket.AF_INET6 else f"{address[0]}:{address[1]}"
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ServiceStartError(f"cannot listen on {shown} ({exc.strerror or exc})", exc.errno) from None
    try:
        if sys.platform != "win32":  # elsewhere it only allows rebinding a port whose old connections are closing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        fix = "choose another port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "choose another address"
        raise ServiceStartError(f"cannot listen on {shown} ({exc.strerror or exc}); {fix}", exc.errno) from None
    sock.set_inheritable(False)
    return sock
