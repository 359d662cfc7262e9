"""Admission of WebSocket streams (the model must be loaded, and every streaming route shares one session limit),
and the rules that keep a client that stops reading from holding a session."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket

from app.service.recognition import WorkerTranscriber

CLOSE_TRY_LATER = 1013
CLOSE_POLICY = 1008


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


async def admit(websocket: WebSocket, transcriber: WorkerTranscriber, limit: SessionLimit) -> bool:
    """Accept the socket and take a place for it, or close it with the reason; the caller leaves when done."""
    await websocket.accept()
    if not transcriber.loaded:
        await websocket.close(CLOSE_TRY_LATER, "the model is still loading; try again shortly")
        return False
    if not limit.enter():
        await websocket.close(CLOSE_TRY_LATER, f"this server takes {limit.maximum} streams at once")
        return False
    return True


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
