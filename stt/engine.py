"""The recogniser: features → encoder → greedy TDT → text, for audio of any length."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt import features as feats
from stt import modelcache
from stt.boost.tree import Boost
from stt.contract import ModelShape, check_contract
from stt.decoding import DEFAULT_DURATIONS, DecoderState, Hypothesis, StepTrace, greedy_tdt
from stt.errors import AudioError, ContractError, ModelFileError
from stt.instrument import Instrumentation
from stt.joint import WINDOW, JointRunner
from stt.longform import segment_stream
from stt.modelfiles import ModelConfig, ModelFiles
from stt.results import Timings, Token, Transcript
from stt.runtime import RuntimeOptions, SessionInfo, create_session
from stt.text import Rendered, TokenTrack, join_texts, render, timed_tokens
from stt.vocab import Vocabulary

if TYPE_CHECKING:
    from stt.boost.tokenizer import PhraseTokenizer

SAMPLE_RATE = 16000
MIN_SAMPLES = SAMPLE_RATE // 10
"""Shorter input (< 0.1 s) gives an empty transcript."""
SILENCE_PEAK = 10 ** (-70 / 20)
"""Input whose peak stays under -70 dBFS is silence: nothing is recognised in it."""
MAX_SEGMENT_SECONDS = {"fp32": 300.0, "int8": 20.0}
"""Longest pass through the encoder; int8 degrades beyond ~20 s, fp32 is safe well below 400 s."""


@dataclass(frozen=True)
class DecoderCarry:
    """Decoder state between chunks of one stream: LSTM state, last token, frames the last duration overshot."""

    h: npt.NDArray[np.float32]
    c: npt.NDArray[np.float32]
    last_token: int
    frame_offset: int
    boost_state: int = 0


@dataclass(frozen=True)
class LoadReport:
    """Where the model runs, how long loading took, and how fast it has run since."""

    device: str
    providers: tuple[str, ...]
    notes: tuple[str, ...]
    load_seconds: float
    warmup_seconds: float
    realtime_factor: float | None = None
    """Seconds of audio recognised per second of work so far; None before any audio was recognised."""

    @property
    def ready_seconds(self) -> float:
        """Load and warm-up: how long it took until the model was ready."""
        return self.load_seconds + self.warmup_seconds

    def summary(self, where: str = "") -> str:
        """ "loaded in 1.9 s{where} · runs 14× faster than real time" (the speed once something was recognised)."""
        text = f"loaded in {self.ready_seconds:.1f} s{where}"
        factor = self.realtime_factor
        if factor is None:
            return text
        shown = f"{factor:.0f}" if factor >= 10 else f"{factor:.1f}"
        if factor >= 1:
            return f"{text} · runs {shown}× faster than real time"
        return f"{text} · runs at {shown}× real time, slower than speech"


@dataclass
class SpeedMeter:
    """Audio recognised and the time it took, since the model loaded."""

    audio_seconds: float = 0.0
    busy_seconds: float = 0.0

    def add(self, audio_seconds: float, busy_seconds: float) -> None:
        """Count one recognised segment."""
        self.audio_seconds += audio_seconds
        self.busy_seconds += busy_seconds

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of audio per second of work; None before anything was measured."""
        return self.audio_seconds / self.busy_seconds if self.busy_seconds > 0 else None


def _open(
    files: ModelFiles, path: Path, options: RuntimeOptions, profile: dict[str, str] | None
) -> tuple[ort.InferenceSession, SessionInfo]:
    try:
        return create_session(path, options, profile, refresh_cache=False)
    except Exception as exc:  # ONNX Runtime raises its own untyped errors for unreadable graphs.
        if isinstance(exc, (ModelFileError, MemoryError)):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path} is not a loadable ONNX model ({first[:200]}); {files.fix}") from exc


class Recognizer:
    """A loaded Parakeet-TDT model. Not thread-safe: use one per worker thread."""

    def __init__(
        self,
        files: ModelFiles,
        options: RuntimeOptions | None = None,
        *,
        instrumentation: Instrumentation | None = None,
        warm_up: bool = True,
    ) -> None:
        started = time.perf_counter()
        options = options or RuntimeOptions()
        self.files = files
        self.config = ModelConfig.load(files.config)
        self.vocab = Vocabulary.load(files.vocab)
        self.instrumentation = instrumentation or Instrumentation.from_env()
        self.max_segment_seconds = MAX_SEGMENT_SECONDS[files.quantization]
        frames = int(self.max_segment_seconds * 100) + 1
        profile = {
            "trt_profile_min_shapes": f"audio_signal:1x{self.config.features_size}x10,length:1",
            "trt_profile_opt_shapes": f"audio_signal:1x{self.config.features_size}x2000,length:1",
            "trt_profile_max_shapes": f"audio_signal:1x{self.config.features_size}x{frames},length:1",
        }
        # The small decoder first: its load's scratch memory is gone before the encoder's peak (26 MiB less, fp32).
        self._decoder, dec_info = _open(files, files.decoder_joint, options, None)
        self._encoder, enc_info = _open(files, files.encoder, options, profile)
        if options.cache_optimized and options.device != "tensorrt":
            modelcache.refresh_later(files.encoder, files.decoder_joint)
        self.shape: ModelShape = check_contract(
            self._encoder,
            files.encoder,
            self._decoder,
            files.decoder_joint,
            features_size=self.config.features_size,
            vocab_size=len(self.vocab),
            num_durations=len(DEFAULT_DURATIONS),
        )
        self.device = enc_info.device
        # int8 graphs quantise activations over the whole call, so a window would change each frame's logits.
        window = 1 if files.quantization == "int8" else WINDOW
        self._joint = JointRunner(self._decoder, self.shape, dec_info.device, window)
        if self._joint.width != len(self.vocab) + len(DEFAULT_DURATIONS):
            raise ContractError(
                f"{files.decoder_joint.name}: output 'outputs' has {self._joint.width} logits, but vocab.txt has "
                f"{len(self.vocab)} tokens + {len(DEFAULT_DURATIONS)} durations; the vocabulary does not belong "
                "to this model"
            )
        self.frame_seconds = self.config.subsampling_factor * feats.HOP_LENGTH / SAMPLE_RATE
        self.boost: Boost | None = None
        """Phrase boosting for every decode from now on (None: off); set it between utterances."""
        self._phrase_tokenizer: PhraseTokenizer | None = None
        self.speed = SpeedMeter()
        """How fast recognition has run so far (the warm-up left out)."""
        loaded = time.perf_counter()
        warmup_seconds = 0.0
        # On the CPU a first run is barely slower than later ones (0-7 %), less than a warm-up would cost.
        if warm_up and self.device != "cpu":
            noise = np.random.default_rng(0).normal(0.0, 0.05, SAMPLE_RATE).astype(np.float32)
            self._recognize(noise, 0.0)
            self.speed = SpeedMeter()
            warmup_seconds = time.perf_counter() - loaded
        self._load_report = LoadReport(
            device=self.device,
            providers=enc_info.providers,
            notes=tuple(dict.fromkeys(n for n in (enc_info.note, dec_info.note) if n)),
            load_seconds=loaded - started,
            warmup_seconds=warmup_seconds,
        )

    @property
    def report(self) -> LoadReport:
        """Where the model runs, how long it took to load, and how fast it has run so far."""
        return replace(self._load_report, realtime_factor=self.speed.realtime_factor)

    def phrase_tokenizer(self) -> PhraseTokenizer:
        """The tokenizer that splits vocabulary phrases into this model's tokens (made on first use)."""
        if self._phrase_tokenizer is None:
            from stt.boost.tokenizer import PhraseTokenizer

            self._phrase_tokenizer = PhraseTokenizer.for_model(self.files.directory, self.vocab)
        return self._phrase_tokenizer

    def transcribe(self, samples: npt.NDArray[np.float32], offset: float = 0.0) -> Transcript:
        """Recognise 16 kHz mono samples of any length; times are shifted by `offset` seconds."""
        return self.transcribe_stream([samples], offset)

    def transcribe_stream(
        self,
        blocks: Iterable[npt.NDArray[np.float32]],
        offset: float = 0.0,
        progress: Callable[[float], None] | None = None,
    ) -> Transcript:
        """Recognise 16 kHz mono audio given as consecutive blocks, one encoder pass per segment.

        Audio longer than the model's limit is cut at the quietest point near it; memory stays
        bounded by the segment size however long the input. `progress` gets the seconds done after
        each segment.
        """
        started = time.perf_counter()
        result = TranscriptBuilder(self.device)
        max_samples = int(self.max_segment_seconds * SAMPLE_RATE)
        for start, segment in segment_stream(blocks, max_samples):
            result.add(self.transcribe_segment(segment, offset + start / SAMPLE_RATE), start + len(segment))
            if progress is not None:
                progress(result.samples / SAMPLE_RATE)
        return result.finish(started)

    def transcribe_segment(
        self, samples: npt.NDArray[np.float32], offset: float = 0.0, run_options: ort.RunOptions | None = None
    ) -> Transcript:
        """Recognise one segment no longer than `max_segment_seconds`; a run stopped through
        `run_options.terminate` raises (ONNX Runtime's error) and changes nothing."""
        return self._recognize(samples, offset, run_options)

    def _recognize(
        self, samples: npt.NDArray[np.float32], offset: float, run_options: ort.RunOptions | None = None
    ) -> Transcript:
        duration = len(samples) / SAMPLE_RATE
        if not np.isfinite(samples).all():
            raise AudioError("the audio contains NaN or infinite samples; it cannot be transcribed")
        if len(samples) < MIN_SAMPLES or float(np.abs(samples).max(initial=0.0)) < SILENCE_PEAK:
            return Transcript("", duration, device=self.device)
        t0 = time.perf_counter()
        features, length = feats.log_mel(samples, self.config.features_size)
        self.instrumentation.check("features", features)
        self.instrumentation.tap(samples, features)
        t1 = time.perf_counter()
        result = self.recognize_features(features, length, offset, run_options)
        result.duration = duration
        result.timings.features = (t1 - t0) * 1000
        result.timings.total = (time.perf_counter() - t0) * 1000
        self.speed.add(duration, result.timings.total / 1000)
        return result

    def recognize_features(
        self,
        features: npt.NDArray[np.float32],
        length: int,
        offset: float = 0.0,
        run_options: ort.RunOptions | None = None,
    ) -> Transcript:
        """Encode and decode log-mel features [features_size, T] with `length` valid frames."""
        timings = Timings()
        t1 = time.perf_counter()
        encoded, num_frames = self._encode_features(features, length, run_options)
        t2 = time.perf_counter()
        hyp, _ = self.decode_range(encoded, 0, num_frames, None)
        t3 = time.perf_counter()
        tokens, rendered = self.timed(hyp, offset)
        timings.encoder, timings.decode = (t2 - t1) * 1000, (t3 - t2) * 1000
        timings.total = (time.perf_counter() - t1) * 1000
        return Transcript(
            rendered.text,
            num_frames * self.frame_seconds,
            tokens,
            rendered.words,
            timings,
            self.device,
            token_ids=hyp.ids,
            token_starts=[offset + f * self.frame_seconds for f in hyp.frames],
            token_durations=[d * self.frame_seconds for d in hyp.durations],
        )

    def encode(
        self, samples: npt.NDArray[np.float32], run_options: ort.RunOptions | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Features and encoder over 16 kHz samples: encoder output [channels, T'] and its valid frames."""
        if not np.isfinite(samples).all():
            raise AudioError("the audio contains NaN or infinite samples; it cannot be transcribed")
        features, length = feats.log_mel(samples, self.config.features_size)
        self.instrumentation.check("features", features)
        return self._encode_features(features, length, run_options)

    def _encode_features(
        self, features: npt.NDArray[np.float32], length: int, run_options: ort.RunOptions | None
    ) -> tuple[npt.NDArray[np.float32], int]:
        encoded, encoded_lengths = self._encoder.run(
            ["outputs", "encoded_lengths"],
            {"audio_signal": features[None], "length": np.array([length], dtype=np.int64)},
            run_options,
        )
        encoded = np.asarray(encoded)
        self.instrumentation.check("encoder output", encoded)
        return encoded[0], min(int(np.asarray(encoded_lengths)[0]), encoded.shape[2])

    def decode_range(
        self,
        encoded: npt.NDArray[np.float32],
        first: int,
        last: int,
        carry: DecoderCarry | None,
        *,
        frame_base: int = 0,
        trace: Callable[[StepTrace], None] | None = None,
    ) -> tuple[Hypothesis, DecoderCarry]:
        """Greedy TDT over encoder frames [first, last), continuing from `carry` (a fresh start if None).

        Frames in the hypothesis are indices into `encoded`. The returned carry continues on the
        frames that follow `last`, possibly from another encoder pass. Decode steps go to `trace`
        (else to the decode log when enabled) with `frame_base` added to their frame.
        """
        self._joint.set_frames(encoded[:, first:last])
        if carry is None:
            start = DecoderState(self._joint.reset_state(), self.vocab.blank_id)
        else:
            state = self._joint.import_state(carry.h, carry.c)
            start = DecoderState(state, carry.last_token, carry.frame_offset, carry.boost_state)
        step = self._joint
        if self.instrumentation.nan_guard:
            step = _GuardedStep(self._joint, self.instrumentation)  # type: ignore[assignment]
        sink = trace or (self.instrumentation.trace if self.instrumentation.debug_decode else None)
        shifted: Callable[[StepTrace], None] | None = None
        if sink is not None:
            shift = first + frame_base
            target = sink

            def shifted(s: StepTrace) -> None:
                target(StepTrace(s.frame + shift, s.token, s.duration, s.probability))

        hyp, end = greedy_tdt(
            step,
            last - first,
            start,
            blank_id=self.vocab.blank_id,
            max_symbols=self.config.max_tokens_per_step,
            trace=shifted,
            boost=self.boost,
        )
        hyp.frames = [f + first for f in hyp.frames]
        h, c = self._joint.export_state(end.state)
        return hyp, DecoderCarry(h, c, end.last_token, end.frame_offset, end.boost_state)

    def timed(self, hyp: Hypothesis, offset: float = 0.0) -> tuple[list[Token], Rendered]:
        """Visible tokens of a hypothesis timed from `offset` seconds, and their text and words."""
        track = TokenTrack(hyp.ids, hyp.frames, hyp.durations, hyp.probabilities)
        tokens = timed_tokens(self.vocab, track, self.frame_seconds, offset)
        return tokens, render(self.vocab, tokens)


class TranscriptBuilder:
    """Segments' transcripts joined into one, in order."""

    def __init__(self, device: str) -> None:
        self.transcript = Transcript(text="", duration=0.0, device=device)
        self.samples = 0
        """Input samples covered so far."""
        self._texts: list[str] = []

    def add(self, part: Transcript, covered_samples: int) -> None:
        """Append the next segment's transcript; `covered_samples` is where that segment ends in the input."""
        result = self.transcript
        result.tokens.extend(part.tokens)
        result.token_ids.extend(part.token_ids)
        result.token_starts.extend(part.token_starts)
        result.token_durations.extend(part.token_durations)
        result.words.extend(part.words)
        result.timings.add(part.timings)
        self._texts.append(part.text)
        self.samples = covered_samples

    def finish(self, started: float) -> Transcript:
        """The whole transcript; `started` is the `perf_counter` time the work began."""
        self.transcript.duration = self.samples / SAMPLE_RATE
        self.transcript.text = join_texts(self._texts)
        self.transcript.timings.total = (time.perf_counter() - started) * 1000
        return self.transcript


class _GuardedStep:
    """A joint step that checks its logits for NaN/Inf."""

    def __init__(self, inner: JointRunner, instrumentation: Instrumentation) -> None:
        self._inner = inner
        self._instrumentation = instrumentation

    def __call__(self, frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        logits, next_state = self._inner(frame, last_token, state)
        self._instrumentation.check("joint logits", logits)
        return logits, next_state
