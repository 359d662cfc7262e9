"""Benchmark: per-stage timings, real-time factor and memory, beside onnx-asr on the same files."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from stt import features as feats
from stt.engine import Recognizer
from stt.results import Timings

SAMPLE_RATE = 16000


@dataclass
class ClipResult:
    """Median timings of one clip, ours and the peer's."""

    name: str
    seconds: float
    ours: Timings
    peer_ms: float | None
    features_1thread_ms: float
    same_tokens: bool | None
    token_count: int


@dataclass
class BenchReport:
    """Everything the benchmark measured."""

    load_seconds: float
    warmup_seconds: float
    device: str
    peak_rss_mb: float
    peer_peak_rss_mb: float | None
    peer_note: str
    clips: list[ClipResult] = field(default_factory=list)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def synthetic_clip(seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Speech-like audio: noise bursts with syllable-rate envelopes and short pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.6)
    voiced = np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 280 * t) + rng.normal(0, 0.6, n)
    return (0.2 * envelope * voiced).astype(np.float32)


def _median_ms(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, last = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        last = run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), last


def _features_one_thread_ms(samples: npt.NDArray[np.float32], repeat: int) -> float:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _median_ms(lambda: feats.log_mel(samples), repeat)[0]
    with threadpool_limits(1):
        return _median_ms(lambda: feats.log_mel(samples), repeat)[0]


def load_peer(recognizer: Recognizer, threads: int) -> tuple[Any, str]:
    """onnx-asr on the same model files and device, or None with the reason."""
    try:
        import onnx_asr
        import onnxruntime as ort
    except ImportError:
        return None, "onnx-asr is not installed (pip install 'perch-dictation[bench]')"
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"] if recognizer.device == "cpu" else None
    quantization = "int8" if recognizer.files.quantization == "int8" else None
    model = onnx_asr.load_model(
        "nemo-conformer-tdt",
        recognizer.files.directory,
        quantization=quantization,
        sess_options=options,
        providers=providers,
    ).with_timestamps()
    return model, ""


def run_bench(
    recognizer: Recognizer,
    clips: Sequence[tuple[str, npt.NDArray[np.float32]]],
    *,
    repeat: int = 3,
    threads: int = 0,
    with_peer: bool = True,
) -> BenchReport:
    """Time every clip through Perch, then load onnx-asr and time the same clips again, interleaved."""
    report = BenchReport(
        recognizer.report.load_seconds, recognizer.report.warmup_seconds, recognizer.device, 0.0, None, ""
    )
    ours: dict[str, list[Timings]] = {name: [] for name, _ in clips}
    ids: dict[str, list[int]] = {}
    for name, samples in clips:
        recognizer.transcribe(samples)
        for _ in range(repeat):
            result = recognizer.transcribe(samples)
            ours[name].append(result.timings)
        ids[name] = result.token_ids
    report.peak_rss_mb = peak_rss_mb()
    peer = None
    if with_peer:
        peer, report.peer_note = load_peer(recognizer, threads)
    for name, samples in clips:
        peer_ms, same = None, None
        if peer is not None:
            peer.recognize(samples, sample_rate=SAMPLE_RATE)
            peer_ms, peer_result = _median_ms(partial(peer.recognize, samples, sample_rate=SAMPLE_RATE), repeat)
            # Interleave a second round of ours so both ran under the same machine load.
            for _ in range(repeat):
                ours[name].append(recognizer.transcribe(samples).timings)
            peer_tokens = [recognizer.vocab.pieces.index(t.replace(" ", "\u2581")) for t in peer_result.tokens or []]
            same = peer_tokens == ids[name]
        runs = ours[name]
        median = Timings(
            *(statistics.median(getattr(t, k) for t in runs) for k in ("features", "encoder", "decode", "total"))
        )
        report.clips.append(
            ClipResult(
                name,
                len(samples) / SAMPLE_RATE,
                median,
                peer_ms,
                _features_one_thread_ms(samples, repeat),
                same,
                len(ids[name]),
            )
        )
    if peer is not None:
        report.peer_peak_rss_mb = peak_rss_mb()
    return report


def format_report(report: BenchReport) -> str:
    """A plain-text table."""
    lines = [
        f"device {report.device}; load {report.load_seconds:.2f} s, warm-up {report.warmup_seconds:.2f} s; "
        f"peak RSS {report.peak_rss_mb:.0f} MiB"
        + (f" (with onnx-asr loaded too: {report.peer_peak_rss_mb:.0f} MiB)" if report.peer_peak_rss_mb else ""),
    ]
    if report.peer_note:
        lines.append(f"onnx-asr not run: {report.peer_note}")
    header = (
        f"{'clip':<24}{'audio s':>8}{'features':>10}{'encoder':>10}{'decode':>9}{'total':>9}"
        f"{'RTFx':>8}{'dec/enc':>8}{'feat xRT':>9}{'onnx-asr':>10}{'ratio':>7}{'tokens':>8}  same"
    )
    lines.append(header)
    for c in report.clips:
        t = c.ours
        ratio = f"{t.total / c.peer_ms:.3f}" if c.peer_ms else "-"
        peer = f"{c.peer_ms:.1f}" if c.peer_ms else "-"
        same = "-" if c.same_tokens is None else ("yes" if c.same_tokens else "NO")
        lines.append(
            f"{c.name[:23]:<24}{c.seconds:>8.1f}{t.features:>10.1f}{t.encoder:>10.1f}{t.decode:>9.1f}{t.total:>9.1f}"
            f"{c.seconds * 1000 / max(t.total, 1e-9):>8.1f}{t.decode / max(t.encoder, 1e-9):>8.3f}"
            f"{c.seconds * 1000 / max(c.features_1thread_ms, 1e-9):>9.0f}{peer:>10}{ratio:>7}{c.token_count:>8}  {same}"
        )
    lines.append("times in ms, medians; ratio = Perch total / onnx-asr total (lower is better)")
    return "\n".join(lines)
