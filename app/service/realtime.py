"""`WS /v1/realtime?intent=transcription`: the OpenAI Realtime transcription protocol, translated to and from a
`StreamSession`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import replace
from typing import Any

from starlette.websockets import WebSocket

from app.service.realtime_events import (
    RATE,
    BadEventError,
    ItemEvents,
    RealtimeConfig,
    apply_update,
    error_event,
    new_id,
)
from app.service.recognition import WorkerTranscriber
from app.service.session import Ended, SessionOptions, StreamSession
from app.service.sessions import SessionEndpoint, StalledClientError, converse, send_within
from app.service.stream import CLOSE_TOO_BIG, MAX_MESSAGE_BYTES, PcmDecoder

log = logging.getLogger("perch.service")

UPDATES = {"session.update": "session.updated", "transcription_session.update": "transcription_session.updated"}


class RealtimeEndpoint(SessionEndpoint):
    """The WebSocket route; at most `max_sessions` at once, each with its own VAD and segmenter."""

    async def serve(self, websocket: WebSocket) -> None:
        await _Connection(websocket, self.transcriber, self.options, self.debug).serve()


class _Connection:
    """One client: its config, its session and the one lock every send takes."""

    def __init__(self, websocket: WebSocket, transcriber: WorkerTranscriber, options: SessionOptions, debug: bool):
        self.websocket = websocket
        self.debug = debug
        self.id = new_id("sess")
        self.config = RealtimeConfig(transcriber.model_name)
        turns = self.config.turn_detection
        self.options = replace(options, vad=turns.vad() if turns else None)
        self.session = StreamSession(transcriber.worker, self.options)
        self.decoder = PcmDecoder("pcm_s16le", RATE)
        self.items = ItemEvents()
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await send_within(self.websocket, {"event_id": new_id("event"), **message}, self.options.send_seconds)

    async def serve(self) -> None:
        await converse(self.websocket, self.session, self._receive(), self._forward())

    async def _receive(self) -> str | None:
        """Read client events until the session must end (the close reason) or the client goes (None)."""
        await self.send({"type": "session.created", "session": self.config.ga(self.id)})
        while True:
            try:
                message = await asyncio.wait_for(self.websocket.receive(), self.options.idle_seconds)
            except asyncio.TimeoutError:  # TimeoutError from Python 3.11 on
                return "no audio for too long"
            if message["type"] == "websocket.disconnect":
                return None
            text: str | None = message.get("text")
            if len(text or "") > MAX_MESSAGE_BYTES or len(message.get("bytes") or b"") > MAX_MESSAGE_BYTES:
                await self.websocket.close(CLOSE_TOO_BIG, "messages may be at most 1 MiB")
                return None
            event_id: str | None = None
            try:
                event = json.loads(text) if text is not None else None
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    raise BadEventError("send JSON text events with a string 'type'")
                event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
                if not await self._apply(event):
                    if self.session.stalled:
                        raise StalledClientError
                    return "the session reached its length limit"
            except (BadEventError, ValueError) as exc:
                await self.send(error_event(str(exc), event_id))

    async def _apply(self, event: dict[str, Any]) -> bool:
        """Apply one client event; False once the session holds more audio than it may."""
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise BadEventError("input_audio_buffer.append needs 'audio': base64 PCM16 at 24 kHz")
            try:
                data = base64.b64decode(audio, validate=True)
            except binascii.Error as exc:
                raise BadEventError("input_audio_buffer.append: 'audio' is not valid base64") from exc
            return await self.session.feed(self.decoder.decode(data))
        if kind == "input_audio_buffer.commit":
            await self.session.feed(self.decoder.decode(b"", last=True))
            self.decoder = PcmDecoder("pcm_s16le", RATE)
            if not self.session.commit():
                raise BadEventError("input_audio_buffer.commit: the buffer holds no speech to commit (100 ms at least)")
        elif kind == "input_audio_buffer.clear":
            self.session.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind in UPDATES:
            config = apply_update(self.config, event)
            if config.turn_detection != self.config.turn_detection:
                turns = config.turn_detection
                self.session.configure(turns.vad() if turns else None)
            self.config = config
            shaped = config.ga(self.id) if kind == "session.update" else config.beta(self.id)
            await self.send({"type": UPDATES[kind], "session": shaped})
        else:
            raise BadEventError(f"unknown or unsupported event type {kind!r} (this is a transcription session)")
        return True

    async def _forward(self) -> None:
        """Session events to the client, in order."""
        while True:
            event = await self.session.events.get()
            for message in self.items.messages(event):
                if self.debug and message["type"].endswith(".completed"):
                    log.debug("realtime final: %s", message["transcript"])
                await self.send(message)
            if isinstance(event, Ended):
                return
