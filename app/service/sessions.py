"""What the streaming WebSocket routes share: admission (the model must be loaded, and every streaming route shares
one session limit), a session's lifecycle, and the rules that keep a client that stops reading from holding one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.service.recognition import WorkerTranscriber
from app.service.session import SessionOptions, StreamSession

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


class StalledClientError(Exception):
    """The client does not read what it is sent; its session is dropped."""


class SessionLimit:
    """Streams open at once, across /v1/stream and /v1/realtime; one more is refused at once."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.active = 0

    def enter(self) -> bool:
        """Take a place, or say there is none."""
        if self.active >= self.maximum:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        """Give a place back."""
        self.active -= 1


class SessionEndpoint:
    """A streaming WebSocket route: each connection is admitted (the model loaded, a place free in the shared
    limit, else closed at once with the reason), then served by `serve()`, and its place given back."""

    def __init__(
        self,
        transcriber: WorkerTranscriber,
        sessions: SessionLimit,
        debug: bool = False,
        options: SessionOptions | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.sessions = sessions
        self.debug = debug
        self.options = options or SessionOptions()

    async def __call__(self, websocket: WebSocket) -> None:
        await websocket.accept()
        if not self.transcriber.loaded:
            await websocket.close(CLOSE_TRY_LATER, "the model is still loading; try again shortly")
        elif not self.sessions.enter():
            await websocket.close(CLOSE_TRY_LATER, f"this server takes {self.sessions.maximum} streams at once")
        else:
            try:
                await self.serve(websocket)
            finally:
                self.sessions.leave()

    async def serve(self, websocket: WebSocket) -> None:
        """Serve one admitted connection until it ends."""
        raise NotImplementedError


async def converse(
    websocket: WebSocket,
    session: StreamSession,
    receive: Coroutine[Any, Any, str | None],
    forward: Coroutine[Any, Any, None],
) -> None:
    """Run one session: `forward` sends its events while `receive` reads the client. When `receive` gives a close
    reason the session is flushed, every event sent and the socket closed with that reason; when it gives None (the
    client has gone) the session is dropped; a client that stops reading is dropped with CLOSE_POLICY."""
    sender = asyncio.ensure_future(forward)
    try:
        reason = await receive
        if reason is None:
            return
        await session.stop()
        await sender
        await websocket.close(CLOSE_NORMAL, reason)
    except StalledClientError:
        await drop_stalled(websocket)
    except (WebSocketDisconnect, RuntimeError):  # the client went while we spoke
        pass
    finally:
        session.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, StalledClientError):
            await sender


async def send_within(websocket: WebSocket, message: dict[str, Any], seconds: float) -> None:
    """Send one JSON message; StalledClientError when the client does not take it within `seconds`."""
    try:
        await asyncio.wait_for(websocket.send_json(message), seconds)
    except asyncio.TimeoutError:  # TimeoutError from Python 3.11 on
        raise StalledClientError from None


async def drop_stalled(websocket: WebSocket) -> None:
    """Close a stalled client's socket with the reason, without waiting on it for long."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(CLOSE_POLICY, "the client did not read its messages"), 2.0)
