"""Admission of WebSocket streams: the model must be loaded, and every streaming route shares one session limit."""

from __future__ import annotations

from starlette.websockets import WebSocket

from app.service.recognition import WorkerTranscriber

CLOSE_TRY_LATER = 1013


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
