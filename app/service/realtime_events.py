"""The OpenAI Realtime transcription wire format: session configuration in, conversation item events out."""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from app.service.session import Committed, Ended, Failed, Final, Partial, SessionEvent, SpeechStart, SpeechStop
from stt.segmenter import VadOptions

RATE = 24000
"""The only input rate of `audio/pcm` (and beta `pcm16`)."""


class BadEventError(ValueError):
    """A client event the server cannot apply; it becomes an `error` event and the socket stays open."""


@dataclass(frozen=True)
class TurnDetection:
    """`server_vad` settings, mapped onto the segmenter."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def vad(self) -> VadOptions:
        """One segment per turn: no early cuts; the prefix padding is the audio handed to the engine before it."""
        exit_threshold = min(VadOptions.exit_threshold, max(self.threshold - 0.15, 0.0))
        return VadOptions(
            threshold=self.threshold,
            exit_threshold=exit_threshold,
            min_silence_ms=self.silence_duration_ms,
            lookback_ms=self.prefix_padding_ms,
        )

    def wire(self) -> dict[str, Any]:
        return {"type": "server_vad", **self.__dict__}


@dataclass(frozen=True)
class RealtimeConfig:
    """The effective transcription session."""

    model: str
    language: str | None = None
    prompt: str = ""
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)

    def ga(self, session_id: str) -> dict[str, Any]:
        """The GA `session` object."""
        audio_input = {
            "format": {"type": "audio/pcm", "rate": RATE},
            "noise_reduction": None,
            "transcription": self._transcription(),
            "turn_detection": self.turn_detection.wire() if self.turn_detection else None,
        }
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "audio": {"input": audio_input},
            "include": [],
        }

    def beta(self, session_id: str) -> dict[str, Any]:
        """The beta `transcription_session` object."""
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": "pcm16",
            "input_audio_transcription": self._transcription(),
            "turn_detection": self.turn_detection.wire() if self.turn_detection else None,
            "input_audio_noise_reduction": None,
            "include": [],
        }

    def _transcription(self) -> dict[str, Any]:
        return {"model": self.model, "language": self.language, "prompt": self.prompt}


def apply_update(config: RealtimeConfig, event: dict[str, Any]) -> RealtimeConfig:
    """The config after a `session.update` (GA) or `transcription_session.update` (beta) event."""
    session = _object(event.get("session", {}), "session")
    if event["type"] == "session.update":
        if session.get("type", "transcription") != "transcription":
            raise BadEventError("this server only has transcription sessions: use session.type 'transcription'")
        audio = _object(_object(session.get("audio", {}), "session.audio").get("input", {}), "session.audio.input")
        if "format" in audio:
            fmt = _object(audio["format"], "session.audio.input.format")
            if fmt.get("type", "audio/pcm") != "audio/pcm" or fmt.get("rate", RATE) != RATE:
                raise BadEventError(f"only audio/pcm at {RATE} Hz is supported")
        transcription, turns = audio.get("transcription"), ("turn_detection", audio)
    else:
        if session.get("input_audio_format", "pcm16") != "pcm16":
            raise BadEventError("only input_audio_format 'pcm16' is supported")
        transcription, turns = session.get("input_audio_transcription"), ("turn_detection", session)
    if transcription is not None:
        config = _transcription(config, _object(transcription, "transcription"))
    key, holder = turns
    if key in holder:
        config = replace(config, turn_detection=_turn_detection(holder[key]))
    return config


def _transcription(config: RealtimeConfig, value: dict[str, Any]) -> RealtimeConfig:
    language, prompt = value.get("language"), value.get("prompt") or ""
    if (language is not None and not isinstance(language, str)) or not isinstance(prompt, str):
        raise BadEventError("transcription.language and transcription.prompt must be strings")
    return replace(config, language=language or None, prompt=prompt)


def _turn_detection(value: Any) -> TurnDetection | None:
    if value is None:
        return None
    value = _object(value, "turn_detection")
    kind = value.get("type", "server_vad")
    if kind == "semantic_vad":
        return TurnDetection()  # no semantic model here: the server VAD with its defaults
    if kind != "server_vad":
        raise BadEventError(f"turn_detection.type {kind!r} is not supported: use 'server_vad' or null")
    defaults = TurnDetection()
    threshold = value.get("threshold") if value.get("threshold") is not None else defaults.threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise BadEventError("turn_detection.threshold must be a number in (0, 1]")
    times = {}
    for name in ("prefix_padding_ms", "silence_duration_ms"):
        ms = value.get(name) if value.get(name) is not None else getattr(defaults, name)
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= 10_000:
            raise BadEventError(f"turn_detection.{name} must be a whole number from 0 to 10000")
        times[name] = ms
    return TurnDetection(float(threshold), **times)


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEventError(f"{name} must be an object")
    return value


def new_id(prefix: str) -> str:
    """An id in OpenAI's style."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class _Item:
    id: str
    sent: str = ""  # the text its deltas have given so far


class ItemEvents:
    """Turns session events into Realtime server events, keeping each segment's item id from speech to final."""

    def __init__(self) -> None:
        self._open: _Item | None = None  # the item of the speech in progress
        self._committed: deque[_Item] = deque()  # committed items waiting for their final, in order
        self._previous: str | None = None
        self._numbers = itertools.count(1)

    def _item(self) -> _Item:
        if self._open is None:
            self._open = _Item(f"item_{next(self._numbers):06d}_{uuid.uuid4().hex[:8]}")
        return self._open

    def messages(self, event: SessionEvent) -> list[dict[str, Any]]:
        """The server events of one session event."""
        if isinstance(event, SpeechStart):
            ms = round(event.time * 1000)
            return [{"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": self._item().id}]
        if isinstance(event, SpeechStop):
            item = self._open or (self._committed[-1] if self._committed else self._item())
            ms = round(event.time * 1000)
            return [{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item.id}]
        if isinstance(event, Committed):
            item, self._open = self._item(), None
            self._committed.append(item)
            message = {"type": "input_audio_buffer.committed", "previous_item_id": self._previous, "item_id": item.id}
            self._previous = item.id
            return [message]
        if isinstance(event, Partial):
            return self._delta(self._item(), event.text)
        if isinstance(event, Final):
            item = self._committed.popleft()
            completed: dict[str, Any] = {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.id,
                "content_index": 0,
                "transcript": event.text,
                "usage": {"type": "duration", "seconds": round(event.end - event.start, 3)},
            }
            return [*self._delta(item, event.text), completed]
        if isinstance(event, Failed):
            if event.segment:
                item = self._committed.popleft()
                error = {"type": "server_error", "code": None, "message": event.message, "param": None}
                failed = {"type": "conversation.item.input_audio_transcription.failed", "item_id": item.id}
                return [failed | {"content_index": 0, "error": error}]
            return [error_event(event.message)]
        assert isinstance(event, Ended)
        return []

    @staticmethod
    def _delta(item: _Item, text: str) -> list[dict[str, Any]]:
        """The new text of `item`, when it goes on from what was sent (a changed partial waits for the final)."""
        if not text.startswith(item.sent) or text == item.sent:
            return []
        delta, item.sent = text[len(item.sent) :], text
        return [
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item.id,
                "content_index": 0,
                "delta": delta,
            }
        ]


def error_event(message: str, event_id: str | None = None) -> dict[str, Any]:
    """A Realtime `error` event."""
    error = {"type": "invalid_request_error", "code": None, "message": message, "param": None, "event_id": event_id}
    return {"type": "error", "error": error}
