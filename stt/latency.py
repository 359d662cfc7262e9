"""Latency of each utterance, and percentiles over a session."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

import numpy as np

from stt.events import Final

log = logging.getLogger("perch.latency")


@dataclass(frozen=True)
class LatencySample:
    """One utterance: stop→final, the engine's own time after the stop, and stop→typed when known."""

    utterance: int
    stop_to_final_ms: float
    last_segment_ms: float
    stop_to_typed_ms: float | None = None

    @property
    def overhead_ms(self) -> float:
        """Time from stop to final that the engine did not spend recognising."""
        return self.stop_to_final_ms - self.last_segment_ms


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation); NaN for no values."""
    return float(np.percentile(values, q)) if values else float("nan")


class LatencyLog:
    """Collects per-utterance latency; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[int, LatencySample] = {}
        self._stopped: dict[int, float] = {}

    def add_final(self, final: Final) -> LatencySample:
        """Record a final's latency (and log it)."""
        t = final.timings
        sample = LatencySample(final.utterance, t.stop_to_final_ms, t.last_segment_ms)
        with self._lock:
            self._samples[final.utterance] = sample
            self._stopped[final.utterance] = t.stopped_at
            so_far = [s.stop_to_final_ms for s in self._samples.values()]
        log.info(
            "utterance %d: stop→final %.0f ms (engine %.0f ms after the stop); p50 %.0f ms, p95 %.0f ms over %d",
            final.utterance,
            sample.stop_to_final_ms,
            sample.last_segment_ms,
            percentile(so_far, 50),
            percentile(so_far, 95),
            len(so_far),
        )
        return sample

    def add_typed(self, utterance: int, typed_at: float) -> LatencySample | None:
        """When the app finished typing an utterance's text (`time.monotonic()`); the completed sample."""
        with self._lock:
            sample = self._samples.get(utterance)
            if sample is None:
                return None
            typed_ms = (typed_at - self._stopped[utterance]) * 1000
            sample = replace(sample, stop_to_typed_ms=typed_ms)
            self._samples[utterance] = sample
        log.info("utterance %d: stop→typed %.0f ms", utterance, typed_ms)
        return sample

    def samples(self) -> list[LatencySample]:
        """Every utterance so far, in order."""
        with self._lock:
            return [self._samples[k] for k in sorted(self._samples)]

    def summary(self) -> dict[str, float | int]:
        """Count and p50/p95 of stop→final, engine time after stop, overhead, and stop→typed."""
        samples = self.samples()
        typed = [s.stop_to_typed_ms for s in samples if s.stop_to_typed_ms is not None]
        result: dict[str, float | int] = {"utterances": len(samples)}
        series = {
            "stop_to_final_ms": [s.stop_to_final_ms for s in samples],
            "last_segment_ms": [s.last_segment_ms for s in samples],
            "overhead_ms": [s.overhead_ms for s in samples],
            "stop_to_typed_ms": typed,
        }
        for name, values in series.items():
            if values:
                result[f"{name}_p50"] = round(percentile(values, 50), 1)
                result[f"{name}_p95"] = round(percentile(values, 95), 1)
        return result

    def format(self) -> str:
        """A short human summary."""
        s = self.summary()
        if not s["utterances"]:
            return "no utterances"
        lines = [f"{s['utterances']} utterance(s)"]
        for key, label in (
            ("stop_to_final_ms", "stop → final"),
            ("last_segment_ms", "engine after stop"),
            ("overhead_ms", "pipeline overhead"),
            ("stop_to_typed_ms", "stop → typed"),
        ):
            if f"{key}_p50" in s:
                lines.append(f"{label}: p50 {s[f'{key}_p50']:.0f} ms, p95 {s[f'{key}_p95']:.0f} ms")
        return "\n".join(lines)
