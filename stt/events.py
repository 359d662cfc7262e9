"""What live dictation reports, as typed events; none of them depends on a GUI toolkit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stt.results import Word


@dataclass(frozen=True)
class Listening:
    """Capture for an utterance has begun (key pressed, toggled on, or speech heard hands-free)."""

    utterance: int


@dataclass(frozen=True)
class Level:
    """Input level for a meter, in dBFS (peak of the blocks since the last event)."""

    db: float


@dataclass(frozen=True)
class Partial:
    """Text so far of the current utterance; the first `stable_chars` characters will not change
    before the final, except where the final's full-context pass reads a segment differently."""

    utterance: int
    text: str
    stable_chars: int


@dataclass(frozen=True)
class SegmentText:
    """One stretch of speech within an utterance; times in seconds on the utterance's recording."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class UtteranceTimings:
    """Latency of one utterance, all times from `time.monotonic()` in seconds, durations in ms."""

    stopped_at: float
    final_at: float
    last_segment_ms: float
    """Engine time of the segment still left when dictation stopped (0 if none was)."""
    engine_ms: float
    """Engine time of every segment of the utterance."""
    typed_at: float | None = None

    @property
    def stop_to_final_ms(self) -> float:
        """From the key release (or the end of speech) to the final text."""
        return (self.final_at - self.stopped_at) * 1000


@dataclass(frozen=True)
class Final:
    """The utterance's finished text."""

    utterance: int
    text: str
    words: list[Word]
    segments: list[SegmentText]
    timings: UtteranceTimings
    audio: Path | None = None
    """The utterance's recording, where one is kept."""
    timeline_start: float = 0.0
    """Where the utterance (time 0 of its words and segments) lies, in seconds since capture began."""


@dataclass(frozen=True)
class Error:
    """Something failed; `kind` is one of the ERROR_KINDS, `message` says what to do."""

    kind: str
    message: str
    utterance: int | None = None
    audio: Path | None = None


ERROR_KINDS = ("model", "microphone", "device-lost", "transcription", "overload", "vocabulary")


@dataclass(frozen=True)
class Idle:
    """Nothing is being recorded or transcribed."""


Event = Listening | Level | Partial | Final | Error | Idle
EventSink = Callable[[Event], None]
