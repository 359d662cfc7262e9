"""A streaming recognition session, the core every streaming protocol shares: 16 kHz audio in, VAD and segment
events, partials and finals out, all recognition on the engine worker."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from app.service.recognition import KEEP, BoostChoice, compile_boost, recognize_with
from stt.dictation import LIVE_VAD
from stt.engine import Recognizer
from stt.results import Transcript, Word
from stt.segmenter import (
    FRAME,
    SAMPLE_RATE,
    SegmentEnded,
    Segmenter,
    SegmentEvent,
    SpeechDiscarded,
    SpeechEnded,
    SpeechStarted,
    VadOptions,
)
from stt.vad import SileroVad
from stt.worker import EngineWorker

UNREAD_EVENTS = 64
"""Events waiting for a client past which it gets no more partials (finals and the rest still queue)."""


@dataclass(frozen=True)
class SessionOptions:
    """Limits and pacing of one session."""

    max_seconds: float = 3600.0
    """Audio one session may send; past it the session ends."""
    idle_seconds: float = 60.0
    """A session that sends no audio this long ends (the protocol adapter keeps this clock)."""
    max_unread_events: int = 256
    """Events waiting for a client past which it counts as stalled and the session is dropped."""
    send_seconds: float = 30.0
    """How long one message may take to reach the client before it counts as stalled."""
    partial_interval: float = 0.5
    """Least time between two partials of the open segment."""
    vad: VadOptions | None = LIVE_VAD
    """How speech is cut into segments; None: no VAD, the client ends each segment with `commit()`."""


@dataclass(frozen=True)
class SpeechStart:
    """Speech began `time` seconds into the session."""

    time: float


@dataclass(frozen=True)
class SpeechStop:
    """Speech ended `time` seconds into the session."""

    time: float


@dataclass(frozen=True)
class Partial:
    """The open segment's text so far."""

    text: str


@dataclass(frozen=True)
class Committed:
    """A segment ended and went to the engine; its `Final` (or a segment `Failed`) follows, in this order."""

    start: float
    end: float


@dataclass(frozen=True)
class Final:
    """One finished segment, times on the session's timeline."""

    text: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    """Something went wrong (a segment could not be transcribed, the client sent nonsense); the session goes on."""

    message: str
    segment: bool = False
    """True when it stands for a committed segment's `Final`."""


@dataclass(frozen=True)
class Ended:
    """The session is over; nothing follows."""


SessionEvent = SpeechStart | SpeechStop | Partial | Committed | Final | Failed | Ended


class StreamSession:
    """One client's audio stream. Call `feed()` as audio arrives and `stop()` at the end; read `events`.

    Finals are transcribed in the order their segments end; a partial is asked for only when the engine has
    nothing else waiting, so that partials never delay anyone's final.
    """

    def __init__(self, worker: EngineWorker, options: SessionOptions | None = None) -> None:
        self.worker = worker
        self.options = options or SessionOptions()
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._vad = SileroVad()
        self._segmenter = Segmenter(self.options.vad)
        self._segmenter_at = 0  # session sample of the segmenter's first frame
        self._manual_from = 0  # without VAD: start of the audio not yet committed
        self._audio = np.zeros(0, np.float32)  # session audio from sample `_base` on
        self._base = 0
        self._vad_at = 0  # samples the VAD has seen
        self._open_from: int | None = None  # start of the open segment
        self._segment = 0  # counts segments, so a late partial of a closed one is dropped
        self._speaking = False
        self._last_end = 0
        self._boost: BoostChoice = KEEP
        self._finals: asyncio.Queue[Future[Final] | None] = asyncio.Queue()
        self._partial: asyncio.Task[None] | None = None
        self._partial_at = 0.0
        self._stopped = False
        self._deliver = asyncio.get_running_loop().create_task(self._deliver_finals())

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return (self._base + len(self._audio)) / SAMPLE_RATE

    def set_vocabulary(self, phrases: Sequence[str]) -> None:
        """Boost `phrases` in this session's finals from the next segment on (none: the recogniser's own)."""
        texts = tuple(p for p in phrases if p.strip())
        loop = asyncio.get_running_loop()

        def done(future: Future[None]) -> None:
            if (error := future.exception()) is not None:
                loop.call_soon_threadsafe(self.report, f"the vocabulary could not be used: {error}")

        self.worker.submit(functools.partial(self._compile, texts)).add_done_callback(done)

    def report(self, message: str) -> None:
        """Tell the client of a problem, in order with the other events."""
        self.events.put_nowait(Failed(message))

    def _compile(self, texts: tuple[str, ...], recognizer: Recognizer) -> None:
        """On the engine thread, before any final submitted after it."""
        self._boost = compile_boost(texts, recognizer) if texts else KEEP

    @property
    def stalled(self) -> bool:
        """Whether the client has left so many events unread that it is not reading at all."""
        return self.events.qsize() > self.options.max_unread_events

    async def feed(self, samples: npt.NDArray[np.float32]) -> bool:
        """Take more 16 kHz mono audio; False once the session holds more than it may (it should then stop) or
        the client is `stalled` (it should be dropped)."""
        if self._stopped or self.stalled:
            return False
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        total = self._base + len(self._audio)
        whole = (total - self._vad_at) // FRAME * FRAME
        if self.options.vad is None:
            self._vad_at += whole
        elif whole:
            chunk = self._slice(self._vad_at, self._vad_at + whole)
            probabilities = await asyncio.to_thread(self._vad.frames, chunk)
            self._vad_at += whole
            for probability in probabilities:
                self._handle(self._segmenter.push(float(probability)))
        self._trim()
        self._maybe_partial()
        return self.seconds <= self.options.max_seconds and not self.stalled

    async def stop(self) -> None:
        """Flush the open segment, deliver every final, then `Ended`."""
        if self._stopped:
            return
        if self.options.vad is None:
            self.commit()
        self._stopped = True
        total = self._base + len(self._audio)
        self._handle(self._segmenter.flush(total - self._segmenter_at))
        if self._speaking:
            self._speaking = False
            self.events.put_nowait(SpeechStop(self._last_end / SAMPLE_RATE))
        self._finals.put_nowait(None)
        await self._deliver
        if self._partial is not None:
            self._partial.cancel()
        self.events.put_nowait(Ended())

    def configure(self, vad: VadOptions | None) -> None:
        """Change how speech is cut from here on; an open segment or uncommitted audio is committed first."""
        self.commit()
        if vad is None:
            self._manual_from = self._base + len(self._audio)
        self.options = replace(self.options, vad=vad)
        self._restart()

    def commit(self) -> bool:
        """End the open segment now (without VAD: make the audio since the last commit one segment).

        False when there is nothing to commit (without VAD: less than 100 ms).
        """
        total = self._base + len(self._audio)
        if self.options.vad is None:
            if total - self._manual_from < SAMPLE_RATE // 10:
                return False
            start, self._manual_from = self._manual_from, total
            self._submit_final(SegmentEnded(start, total, start))
            return True
        if self._open_from is None:
            return False
        events = self._segmenter.flush(total - self._segmenter_at)
        self._handle(events)
        self._restart()
        return any(isinstance(e, SegmentEnded) for e in events)

    def clear(self) -> None:
        """Drop the audio not yet committed: the open segment, or (without VAD) the audio since the last commit."""
        self._manual_from = self._base + len(self._audio)
        if self._open_from is not None:
            self._open_from = None
            self._segment += 1
            self._end_speech()
        self._restart()

    def _restart(self) -> None:
        """A fresh segmenter from the next VAD frame on."""
        self._segmenter = Segmenter(self.options.vad)
        self._segmenter_at = self._vad_at
        self._manual_from = max(self._manual_from, self._base)

    def close(self) -> None:
        """Drop the session at once (the client has gone)."""
        self._stopped = True
        self._deliver.cancel()
        if self._partial is not None:
            self._partial.cancel()

    def _handle(self, events: Sequence[SegmentEvent]) -> None:
        for event in map(self._shift, events):
            if isinstance(event, SpeechStarted):
                self._open_from = event.start
                self._segment += 1
                if not self._speaking:
                    self._speaking = True
                    self.events.put_nowait(SpeechStart(event.start / SAMPLE_RATE))
            elif isinstance(event, SegmentEnded):
                self._open_from = None
                self._segment += 1
                self._last_end = event.end
                if not event.cut:
                    self._end_speech()
                self._submit_final(event)
            elif isinstance(event, SpeechDiscarded):
                self._open_from = None
                self._segment += 1
                self._end_speech()
            elif isinstance(event, SpeechEnded):
                self._end_speech()

    def _shift(self, event: SegmentEvent) -> SegmentEvent:
        """A segmenter event with its sample positions on the session's timeline."""
        by = self._segmenter_at
        moved = {f.name: getattr(event, f.name) + by for f in fields(event) if type(getattr(event, f.name)) is int}
        return replace(event, **moved)

    def _end_speech(self) -> None:
        if self._speaking:
            self._speaking = False
            self.events.put_nowait(SpeechStop(self._last_end / SAMPLE_RATE))

    def _submit_final(self, segment: SegmentEnded) -> None:
        samples = self._slice(segment.audio_start, segment.end)
        start, end = segment.start / SAMPLE_RATE, segment.end / SAMPLE_RATE
        offset = segment.audio_start / SAMPLE_RATE
        self.events.put_nowait(Committed(start, end))
        work = functools.partial(self._final, samples, offset, (start, end))
        self._finals.put_nowait(self.worker.submit_yielding(work))

    def _final(
        self,
        samples: npt.NDArray[np.float32],
        offset: float,
        span: tuple[float, float],
        r: Recognizer,
        run_options: ort.RunOptions,
    ) -> Final:
        part = recognize_with(samples, offset, self._boost, r, run_options)
        return Final(part.text, *span, list(part.words))

    async def _deliver_finals(self) -> None:
        while (future := await self._finals.get()) is not None:
            try:
                final: Final = await asyncio.wrap_future(future)
            except Exception as exc:
                self.events.put_nowait(Failed(f"a segment could not be transcribed: {exc}", segment=True))
                continue
            self.events.put_nowait(final)

    def _maybe_partial(self) -> None:
        """A partial of the open segment, when the engine is idle and the last one is done."""
        if self._open_from is None or self._stopped:
            return
        if self.events.qsize() > UNREAD_EVENTS:
            return  # the client is not reading: no engine work on previews nobody will see
        now = time.monotonic()
        if now - self._partial_at < self.options.partial_interval or self.worker.pending():
            return
        if self._partial is not None and not self._partial.done():
            return
        self._partial_at = now
        samples = self._slice(max(self._open_from, self._base), self._base + len(self._audio))
        future = self.worker.submit_yielding(functools.partial(recognize_with, samples, 0.0, KEEP), redo=False)
        self._partial = asyncio.get_running_loop().create_task(self._emit_partial(future, self._segment))

    async def _emit_partial(self, future: Future[Transcript], segment: int) -> None:
        try:
            part = await asyncio.wrap_future(future)
        except Exception:
            return  # a partial is a preview: the segment's final reports the failure
        if segment == self._segment and part.text and not self._stopped:
            self.events.put_nowait(Partial(part.text))

    def _slice(self, start: int, end: int) -> npt.NDArray[np.float32]:
        return np.array(self._audio[start - self._base : end - self._base], dtype=np.float32)

    def _trim(self) -> None:
        """Forget audio no segment can need: before the open segment, or the newest audio, less a second."""
        total = self._base + len(self._audio)
        keep = self._open_from if self._open_from is not None else total
        if self.options.vad is None:
            keep = self._manual_from
        keep = min(keep, self._vad_at) - SAMPLE_RATE  # a second for the next segment's padding and lookback
        if keep - self._base > 10 * SAMPLE_RATE:
            self._audio = self._audio[keep - self._base :]
            self._base = keep
