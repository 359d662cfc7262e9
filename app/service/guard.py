"""One ASGI guard in front of every route: Host and Origin checks, the bearer token, and the upload size limit."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.service.errors import error_response

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PUBLIC_PATHS = ("/health",)
"""Paths that need no token (they reveal nothing but whether the model is loaded)."""


class BodyTooLargeError(Exception):
    """The request body grew past the limit while it was read."""


@dataclass(frozen=True)
class GuardRules:
    """What the guard lets through.

    hosts: the `Host` names accepted (with or without `:port`); anything else is a DNS-rebinding attempt.
    origins: browser `Origin`s accepted; a request without `Origin` (curl, SDKs) always passes this check.
    """

    token: str
    port: int
    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    max_body_bytes: int = 25 * 1024 * 1024

    @classmethod
    def for_bind(
        cls,
        host: str,
        port: int,
        token: str,
        *,
        extra_hosts: Iterable[str] = (),
        origins: Iterable[str] = (),
        max_body_bytes: int = 25 * 1024 * 1024,
    ) -> GuardRules:
        """Rules for a server bound to `host:port`: the loopback names, the bound address and `extra_hosts`."""
        bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
        names = {n.lower() for n in (*LOOPBACK_NAMES, bound, *extra_hosts)}
        return cls(token, port, frozenset(names), frozenset(origins), max_body_bytes)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a `Host` header names this server."""
        if not header:
            return False
        value = header.strip().lower()
        if value in self.hosts:
            return True
        name, _, port = value.rpartition(":")
        return name in self.hosts and port == str(self.port)

    def token_matches(self, authorization: str | None) -> bool:
        """Whether `Authorization: Bearer <token>` carries the token (compared in constant time)."""
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())


def _is_preflight(scope: Scope, headers: Headers) -> bool:
    """A browser's CORS preflight, which never carries the token; the CORS middleware answers it, after the Origin
    check (a preflight has an `Origin`, so it only gets here from an allowed one)."""
    return scope.get("method") == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


class Guard:
    """Rejects what the rules forbid before any route sees it, and counts body bytes as they stream in."""

    def __init__(self, app: ASGIApp, rules: GuardRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, code = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message})
            else:
                kind = "authentication_error" if status == 401 else "invalid_request_error"
                await error_response(status, message, kind, code=code)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._limited(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        rules = self.rules
        if not rules.host_allowed(headers.get("host")):
            return 421, "this server only answers requests addressed to its own host name", "invalid_host"
        origin = headers.get("origin")
        if origin is not None and origin not in rules.origins:
            return 403, f"the web origin {origin!r} is not allowed (see `--allow-origin`)", "origin_not_allowed"
        needs_token = str(scope.get("path", "")) not in PUBLIC_PATHS and not _is_preflight(scope, headers)
        if needs_token and not rules.token_matches(headers.get("authorization")):
            return 401, "a valid token is required: send `Authorization: Bearer <token>`", "invalid_api_key"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > rules.max_body_bytes):
            return 413, self._too_large_message(), "request_too_large"
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False
        limit = self.rules.max_body_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            response = error_response(413, self._too_large_message(), code="request_too_large")
            await response(scope, receive, send)

    def _too_large_message(self) -> str:
        return f"the upload is larger than this server's limit of {self.rules.max_body_bytes / (1 << 20):g} MB"
