"""Buffered streaming with an offline encoder: [left | chunk | right] windows, each frame decoded once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.decoding import Hypothesis, StepTrace
from stt.engine import SAMPLE_RATE, DecoderCarry, Recognizer
from stt.results import Word

FRAME_SAMPLES = 1280
"""Samples per encoder frame (80 ms): 8 feature frames of 10 ms."""


@dataclass(frozen=True)
class StreamingPreset:
    """Context sizes in seconds; the decoder sees `chunk` new seconds per step, `right` ahead of them."""

    name: str
    left_s: float
    chunk_s: float
    right_s: float

    @property
    def left(self) -> int:
        """Left context in encoder frames."""
        return int(self.left_s * 100 / 8)

    @property
    def chunk(self) -> int:
        """Chunk in encoder frames (at least one)."""
        return max(1, int(self.chunk_s * 100 / 8))

    @property
    def right(self) -> int:
        """Right context in encoder frames."""
        return int(self.right_s * 100 / 8)

    @property
    def latency_s(self) -> float:
        """Theoretical latency of a word: chunk plus right context."""
        return (self.chunk + self.right) * FRAME_SAMPLES / SAMPLE_RATE

    @property
    def window_samples(self) -> int:
        """Audio one step runs through the encoder."""
        return (self.left + self.chunk + self.right) * FRAME_SAMPLES


PRESETS: dict[str, StreamingPreset] = {
    "low": StreamingPreset("low", 2.0, 0.25, 0.25),
    "economy": StreamingPreset("economy", 1.0, 0.5, 0.25),
    "balanced": StreamingPreset("balanced", 5.0, 0.5, 0.5),
    "quality": StreamingPreset("quality", 10.0, 1.0, 1.0),
}
"""From the lowest latency to the best accuracy; `economy` re-encodes the least audio per second of speech
(3.5 s against 10-12 s for the others), for slow CPUs."""


@dataclass
class StreamStep:
    """What one step decoded: global frame range and timings."""

    first_frame: int
    last_frame: int
    window_start_frame: int
    encoder_ms: float
    decode_ms: float
    final: bool
    window_s: float = 0.0
    """Audio the encoder ran over."""


@dataclass
class StreamText:
    """The stream's text so far; `stable_chars` is the prefix later steps cannot change (all but the last word)."""

    text: str
    stable_chars: int
    words: list[Word] = field(default_factory=list)


class StreamingDecoder:
    """Decodes one growing stream of 16 kHz audio chunk by chunk, carrying the decoder state.

    Each step runs the encoder over [left | chunk(s) | right] and decodes only the chunk frames,
    so every frame is decoded exactly once. Audio older than the left context is released.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        preset: StreamingPreset,
        offset: float = 0.0,
        trace: Callable[[StepTrace], None] | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.preset = preset
        self.trace = trace
        """Receives every decode step with its frame on the stream's timeline."""
        self.reset(offset)

    def reset(self, offset: float = 0.0) -> None:
        """Start a new stream whose first sample lies at `offset` seconds."""
        self.offset = offset
        self._audio = np.zeros(0, dtype=np.float32)
        self._incoming: list[npt.NDArray[np.float32]] = []
        self._base = 0  # stream sample index of self._audio[0]
        self._total = 0
        self.decoded_frames = 0
        self._carry: DecoderCarry | None = None
        self.hypothesis = Hypothesis()
        self.steps: list[StreamStep] = []
        self.finished = False
        self._input_ended = False

    @property
    def total_samples(self) -> int:
        """Samples fed so far."""
        return self._total

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Append audio to the stream."""
        if self.finished:
            raise RuntimeError("the stream is finished; reset it before feeding more audio")
        self._incoming.append(np.asarray(samples, dtype=np.float32))
        self._total += len(samples)

    def end_input(self) -> None:
        """No more audio will come: the last chunks get whatever right context is left."""
        self._input_ended = True

    def _frames_ready(self, catch_up: bool) -> int:
        if self._input_ended:
            return max(0, -(-self._total // FRAME_SAMPLES) - self.decoded_frames)
        available = self._total // FRAME_SAMPLES - self.preset.right - self.decoded_frames
        chunk = self.preset.chunk
        if available < chunk:
            return 0
        return (available // chunk) * chunk if catch_up else chunk

    def ready(self) -> bool:
        """Whether a full chunk and its right context have arrived."""
        return self._frames_ready(False) > 0

    def pending_seconds(self) -> float:
        """Audio fed but not decoded yet."""
        return max(0, self._total - self.decoded_frames * FRAME_SAMPLES) / SAMPLE_RATE

    def step(self, *, catch_up: bool = True, run_options: ort.RunOptions | None = None) -> StreamStep | None:
        """Decode the next chunk (every complete chunk when catching up); None when none is ready."""
        if self.finished:
            return None
        frames = self._frames_ready(catch_up)
        if frames == 0:
            return None
        if self._input_ended and (catch_up or frames <= self.preset.chunk):
            return self.finish(run_options)
        frames = min(frames, self.preset.chunk) if self._input_ended else frames
        end = min(self._total, (self.decoded_frames + frames + self.preset.right) * FRAME_SAMPLES)
        return self._run(self.decoded_frames + frames, end, False, run_options)

    def finish(self, run_options: ort.RunOptions | None = None) -> StreamStep | None:
        """Decode everything left, with no right context; the stream then takes no more audio."""
        step = None
        if self._total > self.decoded_frames * FRAME_SAMPLES:
            step = self._run(None, self._total, True, run_options)
            if step is None:
                return None
        self.finished = True
        return step

    def _run(self, last: int | None, end: int, final: bool, run_options: ort.RunOptions | None) -> StreamStep | None:
        first = self.decoded_frames
        window_first = max(0, first - self.preset.left)
        start = window_first * FRAME_SAMPLES
        if self._incoming:
            self._audio = np.concatenate([self._audio, *self._incoming])
            self._incoming.clear()
        window = self._audio[start - self._base : end - self._base]
        t0 = time.perf_counter()
        encoded, valid = self.recognizer.encode(window, run_options)
        if run_options is not None and run_options.terminate:
            return None  # cancelled after the encoder: decode nothing, so the next step redoes this one
        t1 = time.perf_counter()
        local_last = valid if last is None else min(valid, last - window_first)
        local_first = first - window_first
        if local_last > local_first:
            hyp, self._carry = self.recognizer.decode_range(
                encoded, local_first, local_last, self._carry, frame_base=window_first, trace=self.trace
            )
            self.hypothesis.ids += hyp.ids
            self.hypothesis.frames += [f + window_first for f in hyp.frames]
            self.hypothesis.durations += hyp.durations
            self.hypothesis.probabilities += hyp.probabilities
        t2 = time.perf_counter()
        self.decoded_frames = window_first + max(local_last, local_first)
        self._release(max(0, self.decoded_frames - self.preset.left) * FRAME_SAMPLES)
        step = StreamStep(
            first,
            self.decoded_frames,
            window_first,
            (t1 - t0) * 1000,
            (t2 - t1) * 1000,
            final,
            len(window) / SAMPLE_RATE,
        )
        self.steps.append(step)
        return step

    def _release(self, keep_from: int) -> None:
        if keep_from > self._base:
            self._audio = self._audio[keep_from - self._base :].copy()
            self._base = keep_from

    def text(self) -> StreamText:
        """The text decoded so far, with the stable prefix marked."""
        _, rendered = self.recognizer.timed(self.hypothesis, self.offset)
        text, words = rendered.text, rendered.words
        if self.finished:
            return StreamText(text, len(text), words)
        return StreamText(text, rendered.stable_chars if len(words) > 1 else 0, words)
