"""`WS /v1/stream`: binary PCM frames in, JSON VAD, partial, word and final messages out (the eaRS/Dalston shape),
translated to and from a `StreamSession`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr
from starlette.websockets import WebSocket

from app.service.session import (
    Committed,
    Ended,
    Failed,
    Final,
    Partial,
    SessionEvent,
    SpeechStart,
    SpeechStop,
    StreamSession,
)
from app.service.sessions import SessionEndpoint, StalledClientError, converse, send_within
from stt.engine import SAMPLE_RATE

log = logging.getLogger("perch.service")

MAX_MESSAGE_BYTES = 1 << 20
"""Larger messages close the socket with 1009."""
ENCODINGS = {"pcm_s16le": "<i2", "pcm_f32le": "<f4"}
CLOSE_UNSUPPORTED, CLOSE_TOO_BIG = 1003, 1009


class BadFormatError(ValueError):
    """The query asks for audio the socket cannot take."""


class PcmDecoder:
    """Little-endian PCM frames at any rate to 16 kHz mono float32, keeping a partial sample for the next frame."""

    def __init__(self, encoding: str, rate: int) -> None:
        if encoding not in ENCODINGS:
            raise BadFormatError(f"encoding {encoding!r} is not supported: use {' or '.join(ENCODINGS)}")
        if not 8000 <= rate <= 192_000:
            raise BadFormatError(f"sample_rate {rate} is not supported: use 8000 to 192000")
        self._dtype = np.dtype(ENCODINGS[encoding])
        self._scale = 32768.0 if encoding == "pcm_s16le" else 1.0
        self._rest = b""
        self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None

    def decode(self, data: bytes, last: bool = False) -> npt.NDArray[np.float32]:
        """The next 16 kHz samples; `last` flushes the resampler."""
        data = self._rest + data
        whole = len(data) - len(data) % self._dtype.itemsize
        self._rest = data[whole:]
        samples = np.frombuffer(data[:whole], self._dtype).astype(np.float32) / np.float32(self._scale)
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        if self._stream is not None:
            samples = self._stream.resample_chunk(samples, last=last)
        return np.asarray(samples, dtype=np.float32)


def event_messages(event: SessionEvent) -> list[dict[str, Any]]:
    """The JSON messages of one session event."""
    if isinstance(event, SpeechStart):
        return [{"type": "vad.speech_start", "time": round(event.time, 3)}]
    if isinstance(event, SpeechStop):
        return [{"type": "vad.speech_end", "time": round(event.time, 3)}]
    if isinstance(event, Partial):
        return [{"type": "partial", "text": event.text}]
    if isinstance(event, Committed):
        return []
    if isinstance(event, Final):
        words = [
            {"word": w.text, "start_time": round(w.start, 3), "end_time": round(w.end, 3), "confidence": w.confidence}
            for w in event.words
        ]
        final = {"type": "final", "text": event.text, "start_time": round(event.start, 3)}
        final |= {"end_time": round(event.end, 3), "words": words}
        return [{"type": "word", **w} for w in words] + [final]
    if isinstance(event, Failed):
        return [{"type": "error", "message": event.message}]
    return [{"type": "session.end"}]


class StreamEndpoint(SessionEndpoint):
    """The WebSocket route; at most `max_sessions` at once, each with its own VAD and segmenter."""

    async def serve(self, websocket: WebSocket) -> None:
        query = websocket.query_params
        try:
            decoder = PcmDecoder(query.get("encoding", "pcm_s16le"), int(query.get("sample_rate", SAMPLE_RATE)))
        except ValueError as exc:
            await websocket.send_json({"type": "error", "message": str(exc)})
            await websocket.close(CLOSE_UNSUPPORTED, "unsupported audio format")
            return
        await self._serve(websocket, decoder)

    async def _serve(self, websocket: WebSocket, decoder: PcmDecoder) -> None:
        await websocket.send_json({"type": "session.begin"})
        session = StreamSession(self.transcriber.worker, self.options)

        async def receive() -> str | None:
            reason = await self._receive(websocket, session, decoder)
            if reason is not None:
                await session.feed(decoder.decode(b"", last=True))  # the resampler's last samples
            return reason

        await converse(websocket, session, receive(), self._send(websocket, session))

    async def _receive(self, websocket: WebSocket, session: StreamSession, decoder: PcmDecoder) -> str | None:
        """Read until the client stops (the close reason) or goes (None)."""
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), self.options.idle_seconds)
            except asyncio.TimeoutError:  # TimeoutError from Python 3.11 on
                return "no audio for too long"
            if message["type"] == "websocket.disconnect":
                return None
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if len(data or b"") > MAX_MESSAGE_BYTES or len(text or "") > MAX_MESSAGE_BYTES:
                await websocket.close(CLOSE_TOO_BIG, "messages may be at most 1 MiB")
                return None
            if data is not None:
                if not await session.feed(decoder.decode(data)):
                    if session.stalled:
                        raise StalledClientError
                    return "the stream reached its length limit"
            elif text is not None and self._command(text, session) == "stop":
                return "stopped"

    def _command(self, text: str, session: StreamSession) -> str | None:
        """Apply one text command; its type when known, else the client gets an error message."""
        try:
            command = json.loads(text)
        except ValueError:
            command = None
        kind = command.get("type") if isinstance(command, dict) else None
        if kind == "stop" or text.strip() == "stop":
            return "stop"
        if kind == "config" and isinstance(command, dict):
            vocabulary = command.get("vocabulary", [])
            if isinstance(vocabulary, list) and all(isinstance(v, str) for v in vocabulary):
                session.set_vocabulary(vocabulary)
                return "config"
            message = "config.vocabulary must be a list of strings"
        else:
            message = 'unknown message: send binary PCM, {"type":"stop"} or {"type":"config","vocabulary":[...]}'
        session.report(message)
        return None

    async def _send(self, websocket: WebSocket, session: StreamSession) -> None:
        while True:
            event = await session.events.get()
            for message in event_messages(event):
                if self.debug and message["type"] == "final":
                    log.debug("stream final: %s", message["text"])
                await send_within(websocket, message, self.options.send_seconds)
            if isinstance(event, Ended):
                return
