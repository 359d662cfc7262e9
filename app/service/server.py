"""The service's uvicorn server, built from its options."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

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


def build_server(transcriber: WorkerTranscriber, options: ServiceOptions) -> uvicorn.Server:
    """A uvicorn server for the API; `run()` serves until Ctrl+C."""
    rules = GuardRules.for_bind(
        options.host,
        options.port,
        options.token,
        extra_hosts=options.allowed_hosts,
        origins=options.allowed_origins,
        max_body_bytes=options.max_upload_bytes,
    )
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
    return uvicorn.Server(config)
