"""`perch bench --live`: files replayed through the whole live pipeline, with its latency and cost."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from stt.bench import peak_rss_mb
from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.errors import AudioError
from stt.events import Event, EventSink, Final, Partial
from stt.latency import percentile
from stt.sources import SAMPLE_RATE, AudioBlock, AudioSink, AudioSource, CaptureStats, ErrorSink, level_dbfs
from stt.worker import EngineWorker, PartialsChoice, WorkerOptions

BLOCK = SAMPLE_RATE * 40 // 1000
"""40 ms, the block the microphone delivers."""


class PacedSource:
    """A source the caller plays into at `speed` times real time (0: as fast as the pipeline takes it)."""

    def __init__(self, speed: float = 1.0, block: int = BLOCK) -> None:
        self.speed = speed
        self.block = block
        self._sink: AudioSink | None = None
        self._on_error: ErrorSink | None = None
        self._stats = CaptureStats()
        self._clock_start = 0.0
        self._played = 0

    @property
    def stats(self) -> CaptureStats:
        """Blocks delivered."""
        return self._stats

    @property
    def running(self) -> bool:
        """Between start and stop."""
        return self._sink is not None

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None:
        """Deliver what is played from now on to `sink`."""
        self._sink, self._on_error = sink, on_error
        self._clock_start, self._played = time.monotonic(), 0

    def stop(self) -> None:
        """Deliver nothing more."""
        self._sink = None

    def play(self, samples: npt.NDArray[np.float32]) -> None:
        """Deliver the samples block by block on schedule, on the caller's thread."""
        for i in range(0, len(samples), self.block):
            part = np.ascontiguousarray(samples[i : i + self.block], dtype=np.float32)
            self._played += len(part)
            if self.speed > 0:
                wait = self._clock_start + self._played / SAMPLE_RATE / self.speed - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sink = self._sink
            if sink is None:
                return
            sink(AudioBlock(part, time.monotonic(), level_dbfs(part)))
            self._stats.blocks += 1

    def fail(self, error: AudioError) -> None:
        """Report a failure the way a lost device does."""
        if self._on_error is not None:
            self._on_error(error)

    @property
    def played(self) -> int:
        """Samples delivered since start."""
        return self._played


@dataclass
class LiveBenchReport:
    """What the live benchmark measured (times in ms)."""

    device: str
    preset: str
    speed: float
    utterances: int = 0
    stop_to_final: list[float] = field(default_factory=list)
    last_segment: list[float] = field(default_factory=list)
    partial_latency: list[float] = field(default_factory=list)
    partial_bound: list[float] = field(default_factory=list)
    last_two_seconds_ms: list[float] = field(default_factory=list)
    """Encoder time of each clip's last 2 s, measured on its own after the replay: the goal for stop → final."""
    idle_cpu_percent: float = 0.0
    idle_seconds: float = 0.0
    idle_source: str = "replay"
    peak_rss_mb: float = 0.0
    texts: list[str] = field(default_factory=list)


class _Collector:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.finals: list[tuple[float, Final]] = []
        self.partials: list[tuple[float, Partial]] = []

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        with self.cond:
            if isinstance(event, Final):
                self.finals.append((now, event))
            elif isinstance(event, Partial):
                self.partials.append((now, event))
            self.cond.notify_all()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_live_bench(
    recognizer: Recognizer,
    clips: Sequence[tuple[str, npt.NDArray[np.float32]]],
    *,
    speed: float = 1.0,
    partials: PartialsChoice = "auto",
    idle_seconds: float = 10.0,
    lead_seconds: float = 0.5,
    microphone: AudioSource | None = None,
) -> LiveBenchReport:
    """Push-to-talk over each clip (press before it, release at its end), then silence with the VAD listening.

    With a `microphone`, the idle figure is taken on it (hands-free, whatever it hears) instead of the replay.
    """
    collector = _Collector()
    worker = EngineWorker(lambda: recognizer, collector, WorkerOptions(partials=partials))
    worker.start()
    worker.ready.wait()
    source = PacedSource(speed)
    dictation = Dictation(source, worker, collector, DictationOptions(mode="ptt"))
    dictation.open()
    preset = worker.preset
    report = LiveBenchReport(recognizer.device, preset.name if preset else "off", speed)
    rng = np.random.default_rng(0)
    room = rng.normal(0.0, 0.001, SAMPLE_RATE * 4).astype(np.float32)
    try:
        source.play(room[: int(lead_seconds * SAMPLE_RATE)])
        for _name, audio in clips:
            done = len(collector.finals)
            started_clock = time.monotonic()
            dictation.start()
            source.play(audio)
            dictation.stop()
            # The room goes on being heard while the final is made, as a microphone's would.
            while True:
                with collector.cond:
                    if len(collector.finals) > done:
                        break
                source.play(room[:BLOCK])
            final = collector.finals[-1][1]
            report.utterances += 1
            report.texts.append(final.text)
            report.stop_to_final.append(final.timings.stop_to_final_ms)
            report.last_segment.append(final.timings.last_segment_ms)
            if speed == 1.0 and preset is not None:
                preroll = dictation.options.preroll_ms / 1000
                _partial_latency(report, collector, final, started_clock - preroll, preset.latency_s)
            source.play(room[: SAMPLE_RATE // 2])
        report.idle_seconds = idle_seconds
        if idle_seconds > 0 and microphone is not None:
            report.idle_source = "microphone"
            report.idle_cpu_percent = _idle_cpu_microphone(worker, collector, microphone, idle_seconds)
        elif idle_seconds > 0:
            report.idle_cpu_percent = _idle_cpu(dictation, source, room, idle_seconds)
    finally:
        dictation.close()
        worker.close()
    for _name, audio in clips:
        report.last_two_seconds_ms.append(_encoder_ms(recognizer, audio[-2 * SAMPLE_RATE :]))
    report.peak_rss_mb = peak_rss_mb()
    return report


def _encoder_ms(recognizer: Recognizer, audio: npt.NDArray[np.float32], repeat: int = 3) -> float:
    recognizer.encode(audio)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        recognizer.encode(audio)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


def _partial_latency(
    report: LiveBenchReport,
    collector: _Collector,
    final: Final,
    utterance_clock: float,
    preset_latency: float,
) -> None:
    """For each word: from when its last sample was played (`utterance_clock` is when the utterance's first
    sample was) to the first partial that shows it."""
    partials = [(t, p) for t, p in collector.partials if p.utterance == final.utterance]
    for index, word in enumerate(final.words):
        spoken = utterance_clock + word.end
        shown = next((t for t, p in partials if len(p.text.split()) > index), None)
        if shown is None or shown < spoken:
            continue
        report.partial_latency.append((shown - spoken) * 1000)
    report.partial_bound.append(preset_latency * 1000)


def _idle_cpu(dictation: Dictation, source: PacedSource, room: npt.NDArray[np.float32], seconds: float) -> float:
    """CPU of the whole process, in % of one core, while hands-free listening hears only silence."""
    dictation.options = replace(dictation.options, mode="handsfree")
    dictation.start()
    before_cpu, before_wall = _cpu_seconds(), time.monotonic()
    blocks = int(seconds * SAMPLE_RATE) // len(room) + 1
    for _ in range(blocks):
        source.play(room)
    cpu, wall = _cpu_seconds() - before_cpu, time.monotonic() - before_wall
    dictation.stop()
    return 100.0 * cpu / wall if wall > 0 else 0.0


def _idle_cpu_microphone(worker: EngineWorker, emit: EventSink, microphone: AudioSource, seconds: float) -> float:
    """CPU of the whole process, in % of one core, with the microphone open and hands-free listening on."""
    dictation = Dictation(microphone, worker, emit, DictationOptions(mode="handsfree"))
    dictation.open()
    dictation.start()
    try:
        time.sleep(1.0)  # past the stream's start-up
        before_cpu, before_wall = _cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = _cpu_seconds() - before_cpu, time.monotonic() - before_wall
    finally:
        dictation.close()
    return 100.0 * cpu / wall


def format_live_report(report: LiveBenchReport) -> str:
    """The figures as a small table."""

    def p(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.0f}" if values else "-"

    overhead = [a - b for a, b in zip(report.stop_to_final, report.last_segment, strict=True)]
    lines = [
        f"live pipeline on {report.device}, partials preset {report.preset}, replay at "
        + (f"{report.speed:g}x real time" if report.speed else "full speed"),
        f"utterances: {report.utterances}",
        "| measure | p50 ms | p95 ms |",
        "|---|---:|---:|",
        f"| stop → final | {p(report.stop_to_final, 50)} | {p(report.stop_to_final, 95)} |",
        f"| engine time after the release | {p(report.last_segment, 50)} | {p(report.last_segment, 95)} |",
        f"| stop → final minus engine time | {p(overhead, 50)} | {p(overhead, 95)} |",
    ]
    if report.last_two_seconds_ms:
        lines.append(
            f"| encoder time of a clip's last 2 s, alone (+ 30 ms: the goal for stop → final) "
            f"| {p(report.last_two_seconds_ms, 50)} | {p(report.last_two_seconds_ms, 95)} |"
        )

    if report.partial_latency:
        lines.append(
            f"| word spoken → shown in a partial | {p(report.partial_latency, 50)} | {p(report.partial_latency, 95)} |"
        )
        lines.append(f"(chunk + right context of the preset: {report.partial_bound[0]:.0f} ms)")
    if report.idle_seconds:
        lines.append(
            f"CPU while listening (hands-free, VAD on, {report.idle_source}): {report.idle_cpu_percent:.1f}% of one "
            f"core over {report.idle_seconds:g} s"
        )
    lines.append(f"peak RSS: {report.peak_rss_mb:.0f} MiB")
    return "\n".join(lines)
