"""Audio files transcribed on the engine worker one segment at a time, so dictation always comes first."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.audio import open_audio
from stt.audiostream import stream_audio
from stt.engine import SAMPLE_RATE, Recognizer, TranscriptBuilder
from stt.errors import PerchError
from stt.longform import segment_stream
from stt.results import Transcript

log = logging.getLogger("perch.files")

SEGMENT_SECONDS = 30.0
"""Longest piece of a file per engine step: dictation waits at most this much audio's work (less, since a
step in flight is stopped when dictation starts)."""

FileState = Literal["queued", "running", "done", "failed", "cancelled"]

_ids = itertools.count(1)


@dataclass(frozen=True)
class FileProgress:
    """How far a file job has got; speed counts only the engine's time on this file."""

    job_id: int
    state: FileState
    position_s: float
    duration_s: float
    engine_s: float

    @property
    def fraction(self) -> float:
        """Share done, 0 … 1."""
        return min(1.0, self.position_s / self.duration_s) if self.duration_s > 0 else 0.0

    @property
    def speed(self) -> float:
        """Seconds of audio per second of engine work (0 before the first segment)."""
        return self.position_s / self.engine_s if self.engine_s > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Engine time still needed at the speed so far; None before it is known."""
        return max(0.0, self.duration_s - self.position_s) / self.speed if self.speed > 0 else None


@dataclass(frozen=True)
class FileResult:
    """How a file job ended: a transcript, or an error, or cancelled."""

    job_id: int
    path: Path
    state: FileState
    transcript: Transcript | None = None
    error: str | None = None


class FileJob:
    """One audio file, transcribed segment by segment when the engine has nothing more urgent to do.

    The engine worker calls `step` repeatedly; each call transcribes at most one segment of at most
    `SEGMENT_SECONDS` (fewer for models with a shorter limit), so memory stays bounded by the segment size
    however long the file. A step whose encoder run is stopped (dictation started, or `cancel`) is redone
    later from the same segment. `on_progress` and `on_done` are called on the engine thread.
    """

    def __init__(
        self,
        path: Path,
        on_progress: Callable[[FileProgress], None] | None = None,
        on_done: Callable[[FileResult], None] | None = None,
        *,
        segment_seconds: float = SEGMENT_SECONDS,
    ) -> None:
        self.id = next(_ids)
        self.path = path
        self._on_progress = on_progress
        self._on_done = on_done
        self._segment_seconds = segment_seconds
        self._lock = threading.Lock()
        self._cancelled = False
        self._run: ort.RunOptions | None = None
        self.state: FileState = "queued"
        self.duration_s = 0.0
        self._segments: Iterator[tuple[int, npt.NDArray[np.float32]]] | None = None
        self._pending: tuple[int, npt.NDArray[np.float32]] | None = None
        self._builder: TranscriptBuilder | None = None
        self._engine_s = 0.0
        self._started = 0.0
        self.interruptions = 0
        """Encoder runs stopped part-way (for dictation or a cancel) and redone."""

    @property
    def finished(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.state in ("done", "failed", "cancelled")

    def cancel(self) -> None:
        """Stop as soon as possible: an encoder run in flight is stopped, and no further segment starts."""
        with self._lock:
            self._cancelled = True
            if self._run is not None:
                self._run.terminate = True

    def restart(self) -> None:
        """Start again from the beginning (on another model); a cancelled or ended job stays ended."""
        if self.finished or self._cancelled:
            return
        self._segments = self._pending = self._builder = None
        self._engine_s = 0.0
        self.state = "queued"

    def cancel_waiting(self) -> None:
        """End a job that is not running as cancelled, at once."""
        self.cancel()
        if not self.finished:
            self._finish(FileResult(self.id, self.path, "cancelled"))

    def fail(self, message: str) -> None:
        """End the job with an error before it ran (the model did not load, the engine stopped)."""
        if not self.finished:
            self._finish(FileResult(self.id, self.path, "failed", error=message))

    def step(self, recognizer: Recognizer, run_options: ort.RunOptions) -> bool:
        """Transcribe the next segment; True once the job has ended. A stopped run changes nothing."""
        if self.finished:
            return True
        if self._cancelled:
            self._finish(FileResult(self.id, self.path, "cancelled"))
            return True
        try:
            if self._segments is None:
                self._open(recognizer)
            assert self._segments is not None and self._builder is not None
            if self._pending is None:
                self._pending = next(self._segments, None)
                if self._pending is None:
                    self._finish(FileResult(self.id, self.path, "done", self._builder.finish(self._started)))
                    return True
            start, samples = self._pending
            with self._lock:
                if self._cancelled:
                    run_options.terminate = True
                self._run = run_options
            began = time.perf_counter()
            try:
                part = recognizer.transcribe_segment(samples, start / SAMPLE_RATE, run_options)
            except Exception:
                if run_options.terminate:
                    self._engine_s += time.perf_counter() - began
                    self.interruptions += 1
                    return False  # stopped for dictation or a cancel: redo this segment later
                raise
            finally:
                with self._lock:
                    self._run = None
            self._engine_s += time.perf_counter() - began
            self._builder.add(part, start + len(samples))
            self._pending = None
            self._report()
            return False
        except PerchError as exc:
            self._finish(FileResult(self.id, self.path, "failed", error=str(exc)))
        except Exception as exc:
            log.exception("transcribing %s failed", self.path)
            self._finish(FileResult(self.id, self.path, "failed", error=f"transcribing {self.path} failed: {exc}"))
        return True

    def _open(self, recognizer: Recognizer) -> None:
        with open_audio(self.path) as handle:
            frames, rate = handle.frames, handle.samplerate
        self.duration_s = frames / rate if rate > 0 and frames >= 0 else 0.0
        self._started = time.perf_counter()
        seconds = min(self._segment_seconds, recognizer.max_segment_seconds)
        self._segments = segment_stream(stream_audio(self.path), int(seconds * SAMPLE_RATE))
        self._builder = TranscriptBuilder(recognizer.device)
        self.state = "running"
        self._report()

    def _report(self) -> None:
        if self._on_progress is not None and self._builder is not None:
            position = self._builder.samples / SAMPLE_RATE
            self._on_progress(FileProgress(self.id, self.state, position, self.duration_s, self._engine_s))

    def _finish(self, result: FileResult) -> None:
        self.state = result.state
        if isinstance(self._segments, Iterator):
            close = getattr(self._segments, "close", None)
            if close is not None:
                close()  # closes the file
        self._segments = self._pending = None
        if result.state == "done" and self._builder is not None:
            self.duration_s = max(self.duration_s, self._builder.samples / SAMPLE_RATE)
        if self._on_done is not None:
            self._on_done(result)


def audio_duration(path: Path) -> float:
    """Length of an audio file in seconds, from its header (raises AudioError when it cannot be read)."""
    with open_audio(path) as handle:
        return handle.frames / handle.samplerate if handle.samplerate > 0 else 0.0
