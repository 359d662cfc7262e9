"""The engine worker: one thread owns the recogniser, turns segments into finals and streams partials."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.boost.phrases import DEFAULT_STRENGTH, Phrase, compile_vocabulary
from stt.engine import SAMPLE_RATE, Recognizer
from stt.errors import ModelError
from stt.events import Error, EventSink, Final, Idle, Partial, SegmentText, UtteranceTimings
from stt.filejob import FileJob
from stt.pacing import EncoderCost, Pacer, best_plan
from stt.recordings import RecordingStore
from stt.results import Word
from stt.streaming import PRESETS, StreamingDecoder, StreamingPreset, StreamText
from stt.text import Rendered

log = logging.getLogger("perch.worker")

T = TypeVar("T")

PartialsChoice = Literal["auto", "low", "economy", "balanced", "quality", "off"]
FinalChoice = Literal["full", "streaming"]


@dataclass(frozen=True)
class WorkerOptions:
    """How live text is produced.

    partials: a streaming preset for the live caption, `auto` (the one whose words show soonest on this
        device, from its measured encoder speed, re-checked between segments) or `off`. Whatever the preset,
        partial steps are spaced so that they take at most `realtime_budget` of the time.
    final: `full` transcribes each segment again with its whole context (partials never change
        the final); `streaming` keeps the streamed tokens and decodes only the tail (lowest latency).
    """

    partials: PartialsChoice = "auto"
    final: FinalChoice = "full"
    realtime_budget: float = 0.5
    vocabulary: tuple[Phrase, ...] = ()
    """Phrases to boost (NeMo's phrase boosting); a change applies once no utterance is in progress."""
    boost_strength: float = DEFAULT_STRENGTH


@dataclass(frozen=True)
class _Open:
    utterance: int
    index: int
    offset: float


@dataclass(frozen=True)
class _Audio:
    utterance: int
    index: int
    samples: npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Close:
    utterance: int
    index: int
    samples: npt.NDArray[np.float32]
    offset: float
    start: float
    end: float


@dataclass(frozen=True)
class _Drop:
    utterance: int
    index: int


@dataclass(frozen=True)
class _End:
    utterance: int
    stopped_at: float
    audio: Path | None
    timeline_start: float


@dataclass(frozen=True)
class _Cancel:
    utterance: int


@dataclass(frozen=True)
class _Options:
    options: WorkerOptions


@dataclass(frozen=True)
class _Call:
    work: Callable[[Recognizer], Any]
    future: Future[Any]


@dataclass(frozen=True)
class _YieldingCall:
    work: Callable[[Recognizer, ort.RunOptions], Any]
    future: Future[Any]
    redo: bool
    stops: int = 0
    """Times it was stopped for dictation; after MAX_STOPS it runs to the end."""


class GaveWayError(RuntimeError):
    """Submitted work was stopped so that a dictation final could run first, and is not done again."""


_Job = _Open | _Audio | _Close | _Drop | _End | _Cancel | _Options | _Call | _YieldingCall
_SUBMITTED = (_Call, _YieldingCall)
_URGENT = (_Close, _End, _Cancel)
_STOPS_SUBMITTED = (_Open, *_URGENT)
"""Dictation jobs that stop yielding work in progress: an utterance begins, or its final is due."""
MAX_STOPS = 3
"""Times yielding work may be stopped and redone, so that it always ends."""
_DICTATION = (_Open, _Audio, _Close, _Drop, _End, _Cancel)


@dataclass
class _Utterance:
    segments: dict[int, SegmentText] = field(default_factory=dict)
    streamed: dict[int, StreamText] = field(default_factory=dict)
    work: list[tuple[float, float]] = field(default_factory=list)
    failure: str | None = None


class EngineWorker:
    """Runs every recognition on one thread, in order; partial steps only when nothing else waits.

    Segment and utterance jobs are never dropped. Partial steps are skipped while finals wait, an
    encoder pass already running for a partial is cancelled when a final arrives, and a stream that
    fell behind catches up in one pass, so partials thin out under load instead of piling up.
    """

    def __init__(
        self,
        load: Callable[[], Recognizer],
        emit: EventSink,
        options: WorkerOptions | None = None,
        store: RecordingStore | None = None,
    ) -> None:
        self.options = options or WorkerOptions()
        self._load = load
        self._emit = emit
        self._store = store
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._working = False
        self._partial_run: ort.RunOptions | None = None
        self._file_run: ort.RunOptions | None = None
        self._call_run: ort.RunOptions | None = None
        self._call_previews = False
        """The yielding work running now is not done again when stopped (a preview)."""
        self._vocabulary_waits = False
        """A vocabulary change arrived during an utterance: it applies once that is done."""
        self._files: deque[FileJob] = deque()
        self._utterances: dict[int, _Utterance] = {}
        self._stream: StreamingDecoder | None = None
        self._stream_key: tuple[int, int] | None = None
        self._presets = list(PRESETS.values())
        self._preset_index = 0
        self._cost: EncoderCost | None = None
        self._pacer = Pacer(self.options.realtime_budget)
        self.recognizer: Recognizer | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()
        """Set once loading has finished, whether it worked or not."""
        self._thread = threading.Thread(target=self._run, name="perch-engine", daemon=True)

    @property
    def preset(self) -> StreamingPreset | None:
        """The streaming preset in use, or None when partials are off."""
        return None if self.options.partials == "off" else self._presets[self._preset_index]

    def start(self) -> None:
        """Start the thread; the model loads there."""
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then stop; file jobs still waiting fail."""
        with self._cond:
            self._closing = True
            if self._file_run is not None:
                self._file_run.terminate = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        """Whether an utterance is still being worked on."""
        with self._cond:
            return bool(self._jobs) or bool(self._utterances) or self._working

    def pending(self) -> int:
        """Jobs waiting (not counting partial steps)."""
        with self._cond:
            return len(self._jobs)

    def open_segment(self, utterance: int, index: int, offset: float) -> None:
        """Speech began: stream partials for segment `index`, whose audio starts `offset` s into the utterance."""
        self._put(_Open(utterance, index, offset))

    def audio(self, utterance: int, index: int, samples: npt.NDArray[np.float32]) -> None:
        """More audio of an open segment, for partials."""
        self._put(_Audio(utterance, index, samples))

    def close_segment(
        self, utterance: int, index: int, samples: npt.NDArray[np.float32], *, offset: float, start: float, end: float
    ) -> None:
        """A segment ended: transcribe its audio (an eager final)."""
        self._put(_Close(utterance, index, samples, offset, start, end))

    def drop_segment(self, utterance: int, index: int) -> None:
        """The speech that opened segment `index` was too short to keep."""
        self._put(_Drop(utterance, index))

    def end_utterance(self, utterance: int, stopped_at: float, audio: Path | None, timeline_start: float = 0.0) -> None:
        """Dictation stopped: emit the final once every segment before this is done."""
        self._put(_End(utterance, stopped_at, audio, timeline_start))

    def set_options(self, options: WorkerOptions) -> None:
        """Use new options from the next segment on (queued behind the jobs already waiting)."""
        self._put(_Options(options))

    def submit(self, work: Callable[[Recognizer], T]) -> Future[T]:
        """Run `work(recognizer)` on the engine thread after the submitted work already waiting (the model is not
        thread-safe: its sessions keep device buffers). Dictation comes first: its jobs, and its partial steps
        when due, go before submitted work. The future fails when the model did not load. Keep each piece of work
        short, or use `submit_yielding`."""
        future: Future[T] = Future()
        with self._cond:
            if self._closing:
                future.set_exception(RuntimeError("the engine has stopped"))
                return future
        self._put(_Call(work, future))
        return future

    def submit_yielding(self, work: Callable[[Recognizer, ort.RunOptions], T], *, redo: bool = True) -> Future[T]:
        """Like `submit`, for `work(recognizer, run_options)` that passes `run_options` to every model run: when an
        utterance begins or a dictation final is due while it runs, ONNX Runtime stops it and dictation goes
        first. Stopped work runs again when submitted work may run (`redo`; after MAX_STOPS stops it runs to the
        end). Without `redo` it is a preview: it gives way to any other job too, and its future fails with
        `GaveWayError`."""
        future: Future[T] = Future()
        with self._cond:
            if self._closing:
                future.set_exception(RuntimeError("the engine has stopped"))
                return future
        self._put(_YieldingCall(work, future, redo))
        return future

    def add_file(self, job: FileJob) -> None:
        """Transcribe a file when dictation leaves the engine free: one segment per step, never while an
        utterance is being recorded or finished (a step in flight then is stopped and redone later)."""
        with self._cond:
            if not self._closing and self.load_error is None:
                self._files.append(job)
                self._cond.notify()
                return
        job.fail(f"the model is not loaded ({self.load_error})" if self.load_error else "the engine has stopped")

    def take_files(self) -> list[FileJob]:
        """Remove every file job not yet ended and return them, e.g. to run them on a new model; one
        running now is stopped."""
        with self._cond:
            files, self._files = list(self._files), deque()
            if self._file_run is not None:
                self._file_run.terminate = True
        return files

    def cancel_file(self, job: FileJob) -> None:
        """Stop a file job: a waiting one ends at once, a running one within its current segment."""
        with self._cond:
            running = bool(self._files) and self._files[0] is job and self._file_run is not None
            waiting = not running and job in self._files
            if waiting:
                self._files.remove(job)
            job.cancel()
            self._cond.notify()
        if waiting or not running:
            job.cancel_waiting()

    def cancel_utterance(self, utterance: int) -> None:
        """Forget an utterance: no final."""
        self._put(_Cancel(utterance))

    def _put(self, job: _Job) -> None:
        with self._cond:
            self._jobs.append(job)
            if isinstance(job, _URGENT) and self._partial_run is not None:
                self._partial_run.terminate = True
            if isinstance(job, _DICTATION) and self._file_run is not None:
                self._file_run.terminate = True
            if self._call_run is not None and (isinstance(job, _STOPS_SUBMITTED) or self._call_previews):
                self._call_run.terminate = True  # the person first; and a preview gives way to any other work
            self._cond.notify()

    # The worker thread.

    def _run(self) -> None:
        try:
            self.recognizer = self._load()
            self._choose_preset(self.recognizer)
            self._boost_vocabulary(self.recognizer)
        except Exception as exc:
            self.load_error = str(exc) or type(exc).__name__
            log.error("the model could not be loaded: %s", self.load_error)
            self._emit(Error("model", self.load_error))
        finally:
            self.ready.set()
        if self.load_error is not None:
            self._fail_files(f"the model is not loaded ({self.load_error})")
        while True:
            file: FileJob | None = None
            with self._cond:
                while not self._jobs and not self._closing and not self._partial_due() and not self._file_due():
                    self._cond.wait(self._pacer.wait() if self._partial_waits() else None)
                if self._takes_job():
                    job: _Job | None = self._next_job()
                elif self._closing:
                    break
                elif self._partial_due():
                    job = None
                    self._partial_run = ort.RunOptions()
                else:
                    job, file = None, self._files[0]
                    self._file_run = ort.RunOptions()
                self._working = True
            try:
                if file is not None:
                    self._file_step(file)
                elif job is None:
                    self._partial_step()
                else:
                    self._handle(job)
            except Exception:
                log.exception("the engine worker failed on %s", type(job).__name__ if job else "a partial step")
            finally:
                with self._cond:
                    self._partial_run = self._file_run = None
                    self._working = False
        self._fail_files("Perch is quitting; the transcription was not finished")

    def _takes_job(self) -> bool:
        """Whether the next thing to do is a queued job: dictation's before anything, submitted work after a
        partial step of the person's dictation that is due (closing: every job, to finish)."""
        if not self._jobs:
            return False
        return self._closing or not self._partial_due() or any(not isinstance(j, _SUBMITTED) for j in self._jobs)

    def _next_job(self) -> _Job:
        """The oldest job, except that dictation's jobs go before submitted work (the person at the keyboard comes
        first); each kind keeps its own order."""
        if isinstance(self._jobs[0], _SUBMITTED):
            for index, job in enumerate(self._jobs):
                if not isinstance(job, _SUBMITTED):
                    del self._jobs[index]
                    return job
        return self._jobs.popleft()

    def _file_due(self) -> bool:
        return bool(self._files) and not self._utterances and self.recognizer is not None

    def _file_step(self, file: FileJob) -> None:
        assert self.recognizer is not None and self._file_run is not None
        if file.step(self.recognizer, self._file_run):
            with self._cond:
                if self._files and self._files[0] is file:
                    self._files.popleft()

    def _fail_files(self, message: str) -> None:
        with self._cond:
            files, self._files = list(self._files), deque()
        for file in files:
            file.fail(message)

    def _partial_waits(self) -> bool:
        """A partial step is ready but paced."""
        return self._stream is not None and not self._stream.finished and self._stream.ready()

    def _partial_due(self) -> bool:
        return self._partial_waits() and self._pacer.wait() == 0

    def _handle(self, job: _Job) -> None:
        if isinstance(job, _Open):
            self._utterances.setdefault(job.utterance, _Utterance())
            self._start_stream(job)
        elif isinstance(job, _Audio):
            if self._stream is not None and self._stream_key == (job.utterance, job.index):
                self._stream.feed(job.samples)
        elif isinstance(job, _Close):
            self._close(job)
        elif isinstance(job, _Drop):
            if self._stream_key == (job.utterance, job.index):
                self._stream = self._stream_key = None
            self._utterances.get(job.utterance, _Utterance()).streamed.pop(job.index, None)
        elif isinstance(job, _End):
            self._end(job)
        elif isinstance(job, _Call):
            self._call(job)
        elif isinstance(job, _YieldingCall):
            self._yielding_call(job)
        elif isinstance(job, _Options):
            old, self.options = self.options, job.options
            if self.recognizer is not None and old.partials != job.options.partials:
                self._choose_preset(self.recognizer)
            changed = (old.vocabulary, old.boost_strength) != (job.options.vocabulary, job.options.boost_strength)
            if changed or self._vocabulary_waits:
                self._vocabulary_waits = bool(self._utterances)
                if not self._vocabulary_waits and self.recognizer is not None:
                    self._boost_vocabulary(self.recognizer)
        else:
            self._utterances.pop(job.utterance, None)
            if self._stream_key is not None and self._stream_key[0] == job.utterance:
                self._stream = self._stream_key = None
            self._idle_if_done()

    def _call(self, job: _Call) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        if self.recognizer is None:
            job.future.set_exception(ModelError(self.load_error or "the model is not loaded"))
            return
        try:
            job.future.set_result(job.work(self.recognizer))
        except Exception as exc:
            job.future.set_exception(exc)

    def _yielding_call(self, job: _YieldingCall) -> None:
        if not job.stops and not job.future.set_running_or_notify_cancel():
            return
        if self.recognizer is None:
            job.future.set_exception(ModelError(self.load_error or "the model is not loaded"))
            return
        run = ort.RunOptions()
        if job.stops < MAX_STOPS:
            with self._cond:
                self._call_run, self._call_previews = run, not job.redo
                run.terminate = any(isinstance(waiting, _STOPS_SUBMITTED) or not job.redo for waiting in self._jobs)
        try:
            result = job.work(self.recognizer, run)
        except Exception as exc:
            if not run.terminate:
                job.future.set_exception(exc)
            elif job.redo:
                with self._cond:  # back to the front of the submitted work, behind the dictation that stopped it
                    self._jobs.appendleft(replace(job, stops=job.stops + 1))
            else:
                job.future.set_exception(GaveWayError("stopped for dictation"))
        else:
            job.future.set_result(result)
        finally:
            with self._cond:
                self._call_run = None

    def _start_stream(self, job: _Open) -> None:
        self._stream = self._stream_key = None
        preset = self.preset
        if preset is None or self.recognizer is None:
            return
        if self.options.partials == "auto" and self._cost is not None:
            self._preset_index = self._presets.index(best_plan(self._presets, self._cost, self._pacer.budget).preset)
            preset = self._presets[self._preset_index]
        self._pacer.reset()
        self._stream = StreamingDecoder(self.recognizer, preset, job.offset)
        self._stream_key = (job.utterance, job.index)

    def _partial_step(self) -> None:
        stream, key = self._stream, self._stream_key
        if stream is None or key is None:
            return
        try:
            step = stream.step(run_options=self._partial_run)
        except Exception as exc:
            if self._partial_run is not None and self._partial_run.terminate:
                return  # a final is waiting; this partial is not needed any more
            log.warning("live partials stopped for this segment: %s", exc)
            self._stream = self._stream_key = None
            return
        if step is None:
            return
        self._pacer.took((step.encoder_ms + step.decode_ms) / 1000)
        if self._cost is not None:
            self._cost = self._cost.updated(step.window_s, step.encoder_ms / 1000)
        if self._partial_run is not None and self._partial_run.terminate:
            return  # a final is waiting: it comes before this partial's text
        utterance = self._utterances.setdefault(key[0], _Utterance())
        utterance.streamed[key[1]] = stream.text()
        self._emit_partial(key[0])

    def _emit_partial(self, utterance_id: int) -> None:
        utterance = self._utterances.get(utterance_id)
        if utterance is None:
            return
        key = self._stream_key
        streaming = key[1] if key is not None and key[0] == utterance_id else None
        text, stable, settled = "", 0, True
        for index in sorted(set(utterance.segments) | set(utterance.streamed)):
            final = utterance.segments.get(index)
            if final is not None:
                piece, piece_stable = final.text, len(final.text)
            else:
                streamed = utterance.streamed[index]
                # Only the stream still running keeps its stable prefix: a closed one awaits its final pass.
                piece, piece_stable = streamed.text, streamed.stable_chars if index == streaming else 0
            if not piece:
                continue
            separator = " " if text else ""
            if settled:
                stable = len(text) + len(separator) + piece_stable
            settled = settled and final is not None
            text += separator + piece
        self._emit(Partial(utterance_id, text, stable))

    def _close(self, job: _Close) -> None:
        utterance = self._utterances.setdefault(job.utterance, _Utterance())
        recognizer = self.recognizer
        started = time.monotonic()
        stream = self._stream if self._stream_key == (job.utterance, job.index) else None
        self._stream = self._stream_key = None
        if recognizer is None:
            utterance.failure = f"the model is not loaded ({self.load_error})"
            return
        try:
            if self.options.final == "streaming" and stream is not None:
                stream.finish()
                _, rendered = recognizer.timed(stream.hypothesis, job.offset)
                text, words = _clip(rendered, job.offset, job.offset + len(job.samples) / SAMPLE_RATE)
            else:
                transcript = recognizer.transcribe(job.samples, job.offset)
                text, words = transcript.text, transcript.words
        except Exception as exc:
            utterance.failure = str(exc) or type(exc).__name__
            log.error("transcription of a segment failed: %s", utterance.failure)
            return
        finally:
            utterance.work.append((started, time.monotonic()))
        utterance.segments[job.index] = SegmentText(job.start, job.end, text, words)
        utterance.streamed.pop(job.index, None)
        self._emit_partial(job.utterance)

    def _end(self, job: _End) -> None:
        utterance = self._utterances.pop(job.utterance, _Utterance())
        if self._stream_key is not None and self._stream_key[0] == job.utterance:
            self._stream = self._stream_key = None
        failure = utterance.failure
        kept = job.audio
        if self._store is not None and job.audio is not None:
            kept = self._store.finished(job.audio, ok=failure is None)
        if failure is not None:
            where = f"; the audio is kept at {kept}, run `perch transcribe {kept}` to try again" if kept else ""
            self._emit(Error("transcription", f"transcription failed: {failure}{where}", job.utterance, kept))
        elif utterance.segments:
            segments = [utterance.segments[i] for i in sorted(utterance.segments)]
            words = [w for s in segments for w in s.words]
            text = " ".join(s.text for s in segments if s.text)
            now = time.monotonic()
            after_stop = sum(max(0.0, end - max(start, job.stopped_at)) for start, end in utterance.work)
            timings = UtteranceTimings(
                stopped_at=job.stopped_at,
                final_at=now,
                last_segment_ms=after_stop * 1000,
                engine_ms=sum(end - start for start, end in utterance.work) * 1000,
            )
            self._emit(Final(job.utterance, text, words, segments, timings, kept, job.timeline_start))
        self._idle_if_done()

    def _idle_if_done(self) -> None:
        if not self._utterances:
            if self._vocabulary_waits and self.recognizer is not None:
                self._vocabulary_waits = False
                self._boost_vocabulary(self.recognizer)
            self._emit(Idle())

    def _boost_vocabulary(self, recognizer: Recognizer) -> None:
        """Compile the options' vocabulary for the loaded model and boost it from the next utterance on."""
        phrases = self.options.vocabulary
        if not phrases:
            recognizer.boost = None
            return
        try:
            compiled = compile_vocabulary(phrases, recognizer.phrase_tokenizer().encode, self.options.boost_strength)
        except Exception as exc:  # the vocabulary must never stop dictation
            log.error("the vocabulary could not be used: %s", exc)
            recognizer.boost = None
            self._emit(Error("vocabulary", f"the vocabulary could not be used ({exc}); dictation goes on without it"))
            return
        recognizer.boost = compiled.boost
        log.info("boosting %d phrases at strength %g", compiled.phrases, compiled.strength)
        if compiled.warnings:
            shown = "; ".join(compiled.warnings[:3]) + (" …" if len(compiled.warnings) > 3 else "")
            self._emit(Error("vocabulary", f"{len(compiled.warnings)} vocabulary entries were left out: {shown}"))

    def _choose_preset(self, recognizer: Recognizer) -> None:
        choice = self.options.partials
        self._pacer.budget = self.options.realtime_budget
        if choice == "off":
            return
        if choice != "auto":
            self._preset_index = self._presets.index(PRESETS[choice])
            return
        noise = np.random.default_rng(1).normal(0, 0.05, 4 * SAMPLE_RATE).astype(np.float32)
        self._cost = EncoderCost.measure(lambda seconds: recognizer.encode(noise[: int(seconds * SAMPLE_RATE)]))
        best = best_plan(self._presets, self._cost, self.options.realtime_budget)
        self._preset_index = self._presets.index(best.preset)
        log.info(
            "the encoder takes %.0f ms + %.0f ms per second of audio here: partials use the %s preset, a step "
            "every %.2f s (%.0f ms each), words shown about %.1f s after they are spoken",
            self._cost.fixed * 1000,
            self._cost.per_second * 1000,
            best.preset.name,
            best.period,
            best.step_cost * 1000,
            best.latency,
        )


def _clip(rendered: Rendered, start: float, end: float) -> tuple[str, list[Word]]:
    """The text and words of the words that begin inside [start, end): streamed audio can run past a
    segment's end."""
    inside = [i for i, w in enumerate(rendered.words) if start - 0.08 <= w.start < end]
    if not inside:
        return "", []
    first, last = inside[0], inside[-1]
    text = rendered.text[rendered.spans[first][0] : rendered.spans[last][1]]
    return text, rendered.words[first : last + 1]
