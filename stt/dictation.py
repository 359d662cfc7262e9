"""Live dictation: captured audio → pre-roll → VAD segments → the engine worker, in three modes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from stt.errors import AudioError, MicrophoneError
from stt.events import Error, EventSink, Level, Listening
from stt.recordings import RecordingStore, RecordingWriter
from stt.segmenter import SegmentEnded, Segmenter, SegmentEvent, SpeechEnded, SpeechStarted
from stt.sources import SAMPLE_RATE, AudioBlock, AudioSource
from stt.timeline import Timeline
from stt.vad import FRAME, SileroVad, VadOptions
from stt.worker import EngineWorker

log = logging.getLogger("perch.dictation")

LIVE_VAD = VadOptions(cut_after_s=2.0, cut_pause_ms=150)
"""Live dictation cuts a segment at a 150 ms pause once it holds 2 s of speech (at shorter pauses, down to 64 ms,
as it grows), so that after the release only the tail since the last cut is left to transcribe
(docs/PERFORMANCE.md, "Early cuts")."""

Mode = Literal["ptt", "toggle", "handsfree"]
MODES: tuple[Mode, ...] = ("ptt", "toggle", "handsfree")


@dataclass(frozen=True)
class DictationOptions:
    """How dictation listens.

    mode: `ptt` records while the key is held, `toggle` between two presses, `handsfree` lets the
        VAD start and end each utterance.
    preroll_ms: the microphone stays open and this much audio from before the start is kept, so the
        first word is never clipped; 0 opens the microphone on start instead.
    stop_wait_ms: after a stop, how long to wait for audio captured before it to arrive.
    vad_batch: frames (32 ms each) the VAD waits for before a call while capturing; more frames per call
        cost less CPU, and a stop always runs whatever is pending at once.
    """

    mode: Mode = "ptt"
    preroll_ms: int = 500
    vad: VadOptions = LIVE_VAD
    level_interval_ms: int = 50
    stop_wait_ms: int = 20
    vad_batch: int = 2


@dataclass
class _Utterance:
    id: int
    first: int
    writer: RecordingWriter | None
    written: int
    segments: int = 0
    next_index: int = 0
    open_index: int | None = None
    open_from: int = 0
    streamed: int = 0
    last_end: int = 0
    stopping_at: float | None = None


class Dictation:
    """Routes audio from a source through the VAD to an engine worker and reports events.

    Blocks arrive on the source's thread; `start`, `stop`, `toggle` and `cancel` may be called from
    any thread and only do bookkeeping. Recognition happens on the worker's thread.
    """

    def __init__(
        self,
        source: AudioSource,
        worker: EngineWorker,
        emit: EventSink,
        options: DictationOptions | None = None,
        *,
        vad: SileroVad | None = None,
        store: RecordingStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or DictationOptions()
        self._source = source
        self._worker = worker
        self._emit = emit
        self._vad = vad or SileroVad()
        self._segmenter = Segmenter(self.options.vad)
        self._store = store
        self._clock = clock
        self._lock = threading.RLock()
        self._timeline = Timeline()
        self._utterance: _Utterance | None = None
        self._next_id = 1
        self._hands_free = False
        self._vad_on = False
        self._vad_base = 0
        self._vad_fed = 0
        self._fresh_from = 0  # pre-roll never reaches back before a device loss or a reopen
        self._level_peak = -120.0
        self._level_at = 0.0
        self.open_seconds: float | None = None
        """How long the last microphone open took, when it opens per utterance."""

    @property
    def recording(self) -> bool:
        """Whether an utterance is being captured."""
        with self._lock:
            return self._utterance is not None

    @property
    def listening(self) -> bool:
        """Whether dictation is on: an utterance is held open, or hands-free listening runs."""
        with self._lock:
            return self._utterance is not None or self._hands_free

    # Control.

    def open(self) -> None:
        """Open the microphone now when it stays open (pre-roll or hands-free)."""
        if self.options.preroll_ms > 0 or self.options.mode == "handsfree":
            self._start_source()

    def close(self) -> None:
        """Stop dictation, finish what was captured, and release the microphone."""
        self.stop(wait=False)
        self._stop_source()

    def reconfigure(self, options: DictationOptions) -> None:
        """New options between utterances; the microphone opens or closes to suit the new mode and pre-roll.

        Raises RuntimeError while dictation is on.
        """
        with self._lock:
            if self._utterance is not None or self._hands_free:
                raise RuntimeError("dictation options cannot change while dictating")
            self.options = options
            self._segmenter = Segmenter(options.vad)
            self._vad_on = False
        if options.preroll_ms > 0 or options.mode == "handsfree":
            self._start_source()
        else:
            self._stop_source()

    def start(self) -> None:
        """Key press (push-to-talk), toggle on, or hands-free listening on."""
        with self._lock:
            self._begin()
        if not self._source.running:  # after the state is set, so that the first block already counts
            try:
                self._start_source()
            except Exception:
                self.cancel()
                raise

    def _begin(self) -> None:
        if self.options.mode == "handsfree":
            if not self._hands_free:
                self._hands_free = True
                self._reset_vad(self._timeline.end)
            return
        current = self._utterance
        if current is not None:
            if current.stopping_at is None:
                return  # already recording: a repeated press
            self._finish(current, current.stopping_at)  # pressed again before the release settled
        preroll = self.options.preroll_ms * SAMPLE_RATE // 1000
        first = max(self._timeline.start, self._timeline.end - preroll, self._fresh_from)
        utterance = self._new_utterance(first)
        self._reset_vad(first)
        self._advance(utterance, None)

    def stop(self, *, wait: bool = True) -> None:
        """Key release, toggle off, or hands-free listening off; what was captured is transcribed."""
        with self._lock:
            if self._hands_free:
                self._hands_free = False
                utterance = self._utterance
                if utterance is not None:
                    self._finish(utterance, self._clock())
                self._vad_on = False
                return
            utterance = self._utterance
            if utterance is None or utterance.stopping_at is not None:
                return
            utterance.stopping_at = self._clock()
            if not wait or not self._source.running:
                self._finish(utterance, utterance.stopping_at)
                return
        timer = threading.Timer(self.options.stop_wait_ms / 1000, self._finish_late, (utterance,))
        timer.daemon = True
        timer.start()

    def toggle(self) -> None:
        """Start when stopped, stop when started."""
        if self.listening:
            self.stop()
        else:
            self.start()

    def cancel(self) -> None:
        """Drop the current utterance: nothing is transcribed or typed."""
        with self._lock:
            utterance, self._utterance = self._utterance, None
            self._hands_free = False
            self._vad_on = False
            if utterance is None:
                return
            if utterance.writer is not None:
                utterance.writer.close()
                if self._store is not None:
                    self._store.discard(utterance.writer.path)
            self._worker.cancel_utterance(utterance.id)
        self._release_source_later()

    # Audio thread.

    def on_block(self, block: AudioBlock) -> None:
        """A captured block (the source's sink)."""
        with self._lock:
            self._meter(block)
            self._timeline.append(block.samples)
            utterance = self._utterance
            if self._vad_on:
                self._advance(utterance, block.captured)
            utterance = self._utterance
            if utterance is not None and utterance.stopping_at is not None and block.captured >= utterance.stopping_at:
                self._finish(utterance, utterance.stopping_at)
            self._forget()

    def on_error(self, error: AudioError) -> None:
        """The source failed: keep and transcribe what was captured, and report it."""
        lost = isinstance(error, MicrophoneError) and self._source.running
        self._emit(Error("device-lost" if lost else "microphone", str(error)))
        with self._lock:
            self._fresh_from = self._timeline.end
            utterance = self._utterance
            if utterance is not None:
                self._finish(utterance, utterance.stopping_at or self._clock())
            if self._hands_free:  # listen on when the device comes back
                self._reset_vad(self._timeline.end)

    # Internals, called with the lock held.

    def _meter(self, block: AudioBlock) -> None:
        self._level_peak = max(self._level_peak, block.level_db)
        if block.captured - self._level_at >= self.options.level_interval_ms / 1000:
            self._emit(Level(self._level_peak))
            self._level_peak, self._level_at = -120.0, block.captured

    def _new_utterance(self, first: int) -> _Utterance:
        writer = self._store.create(self._next_id) if self._store is not None else None
        utterance = _Utterance(self._next_id, first, writer, first, last_end=first)
        self._next_id += 1
        self._utterance = utterance
        self._emit(Listening(utterance.id))
        return utterance

    def _reset_vad(self, at: int) -> None:
        self._vad.reset()
        self._segmenter.reset()
        self._vad_base = self._vad_fed = at
        self._vad_on = True

    def _advance(self, utterance: _Utterance | None, captured: float | None) -> None:
        """Record, stream and run the VAD over the audio that arrived."""
        end = self._timeline.end
        if utterance is not None:
            self._record(utterance, end)
        frames = (end - self._vad_fed) // FRAME
        if frames >= (1 if captured is None else self.options.vad_batch):
            probabilities = self._vad.frames(self._timeline.slice(self._vad_fed, self._vad_fed + frames * FRAME))
            for probability in probabilities:
                self._vad_fed += FRAME
                self._on_vad(self._segmenter.push(float(probability)), captured)
        utterance = self._utterance
        if utterance is not None and utterance.open_index is not None and utterance.streamed < end:
            self._worker.audio(utterance.id, utterance.open_index, self._timeline.slice(utterance.streamed, end))
            utterance.streamed = end

    def _record(self, utterance: _Utterance, end: int) -> None:
        if utterance.writer is not None and utterance.written < end:
            utterance.writer.write(self._timeline.slice(utterance.written, end))
        utterance.written = end

    def _on_vad(self, events: list[SegmentEvent], captured: float | None) -> None:
        for position, event in enumerate(events):
            if isinstance(event, SpeechStarted):
                self._speech_started(self._vad_base + event.start)
            elif isinstance(event, SegmentEnded):
                goes_on = event.cut or any(isinstance(e, SpeechStarted) for e in events[position + 1 :])
                self._segment_ended(event, goes_on, captured)
            elif isinstance(event, SpeechEnded):
                utterance = self._utterance
                if self._hands_free and utterance is not None:
                    self._finish(utterance, captured if captured is not None else self._clock(), flush=False)
            else:
                self._speech_discarded()

    def _speech_started(self, start: int) -> None:
        utterance = self._utterance
        lookback = self.options.vad.lookback_ms * SAMPLE_RATE // 1000
        if utterance is None:
            if not self._hands_free:
                return
            utterance = self._new_utterance(max(self._timeline.start, start - lookback))
            self._record(utterance, self._timeline.end)
        audio_from = max(utterance.first, utterance.last_end, start - lookback, self._timeline.start)
        utterance.open_index = utterance.next_index
        utterance.next_index += 1
        utterance.open_from = utterance.streamed = audio_from
        self._worker.open_segment(utterance.id, utterance.open_index, (audio_from - utterance.first) / SAMPLE_RATE)

    def _segment_ended(self, event: SegmentEnded, goes_on: bool, captured: float | None) -> None:
        utterance = self._utterance
        if utterance is None:
            return
        start, end = self._vad_base + event.start, self._vad_base + event.end
        audio_from = utterance.open_from if utterance.open_index is not None else self._vad_base + event.audio_start
        audio_from = max(audio_from, utterance.first)
        index = utterance.open_index if utterance.open_index is not None else utterance.next_index
        utterance.next_index = max(utterance.next_index, index + 1)
        utterance.open_index = None
        utterance.segments += 1
        utterance.last_end = end
        self._worker.close_segment(
            utterance.id,
            index,
            self._timeline.slice(audio_from, end),
            offset=(audio_from - utterance.first) / SAMPLE_RATE,
            start=(start - utterance.first) / SAMPLE_RATE,
            end=(end - utterance.first) / SAMPLE_RATE,
        )
        if self._hands_free and not goes_on:
            self._finish(utterance, captured if captured is not None else self._clock(), flush=False)

    def _speech_discarded(self) -> None:
        utterance = self._utterance
        if utterance is None or utterance.open_index is None:
            return
        self._worker.drop_segment(utterance.id, utterance.open_index)
        utterance.open_index = None
        if self._hands_free and utterance.segments == 0:
            self._utterance = None
            if utterance.writer is not None:
                utterance.writer.close()
                if self._store is not None:
                    self._store.discard(utterance.writer.path)
            self._worker.cancel_utterance(utterance.id)

    def _finish(self, utterance: _Utterance, stopped_at: float, *, flush: bool = True) -> None:
        """End the utterance: close its open segment, its recording, and ask for the final."""
        if self._utterance is not utterance:
            return
        if flush:
            self._advance(utterance, None)
            leftover = self._timeline.end - self._vad_fed
            if leftover > 0 and self._vad_on:
                frame = np.zeros(FRAME, dtype=np.float32)
                frame[:leftover] = self._timeline.slice(self._vad_fed, self._timeline.end)
                self._vad_fed += FRAME
                self._on_vad(self._segmenter.push(self._vad.probability(frame)), None)
            self._on_vad(self._segmenter.flush(self._timeline.end - self._vad_base), None)
            if self._utterance is not utterance:
                return  # the flush ended it already
        self._utterance = None
        path = None
        if utterance.writer is not None:
            utterance.writer.close()
            path = utterance.writer.path
        self._worker.end_utterance(utterance.id, stopped_at, path, utterance.first / SAMPLE_RATE)
        if not self._hands_free:
            self._vad_on = False
            self._release_source_later()

    def _finish_late(self, utterance: _Utterance) -> None:
        with self._lock:
            if utterance.stopping_at is not None:
                self._finish(utterance, utterance.stopping_at)

    def _forget(self) -> None:
        keep = max(self.options.preroll_ms, self.options.vad.lookback_ms + 1000) * SAMPLE_RATE // 1000
        start = self._timeline.end - keep
        utterance = self._utterance
        if utterance is not None:
            start = min(start, utterance.written, utterance.streamed)
            if utterance.open_index is not None:
                start = min(start, utterance.open_from)
        if self._vad_on:
            start = min(start, self._vad_fed)
        self._timeline.forget_before(start)

    # The source.

    def _start_source(self) -> None:
        if self._source.running:
            return
        started = time.perf_counter()
        with self._lock:
            self._fresh_from = self._timeline.end
        self._source.start(self.on_block, self.on_error)
        if self.options.preroll_ms == 0 and self.options.mode != "handsfree":
            self.open_seconds = time.perf_counter() - started
            log.info("the microphone took %.0f ms to open", self.open_seconds * 1000)

    def _stop_source(self) -> None:
        if self._source.running:
            self._source.stop()

    def _release_source_later(self) -> None:
        """Close a per-utterance microphone off this thread: stopping it delivers blocks to us."""
        if self.options.preroll_ms == 0 and self.options.mode != "handsfree":
            threading.Thread(target=self._release_if_idle, name="perch-mic-close", daemon=True).start()

    def _release_if_idle(self) -> None:
        if not self.listening:
            self._stop_source()
            if self.listening:  # started again while it closed
                self._start_source()
