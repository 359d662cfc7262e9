"""Partials by their real cost: the encoder's speed on this machine, the preset it affords, and the step cadence."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stt.streaming import StreamingPreset

OPEN_SEGMENT_S = 3.0
"""Typical length of the open segment a partial step sees: live dictation cuts segments at short pauses once they
hold 2 s of speech, so a preset's left context reaches no further back than about this."""


@dataclass(frozen=True)
class EncoderCost:
    """Encoder time on this machine: `fixed` seconds per call plus `per_second` per second of audio."""

    fixed: float
    per_second: float

    def of(self, seconds: float) -> float:
        """Estimated time to encode `seconds` of audio."""
        return self.fixed + self.per_second * seconds

    @classmethod
    def measure(
        cls,
        encode: Callable[[float], object],
        short: float = 1.0,
        long: float = 4.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> EncoderCost:
        """Time two window lengths (after one untimed run of each) and fit the line through them."""
        times = []
        for seconds in (short, long):
            encode(seconds)
            started = clock()
            encode(seconds)
            times.append(clock() - started)
        per_second = max(0.0, (times[1] - times[0]) / (long - short))
        return cls(max(0.0, times[0] - per_second * short), per_second)

    def updated(self, seconds: float, took: float, weight: float = 0.2) -> EncoderCost:
        """Follow a measured run: the per-second part moves towards what it showed (load changes with time)."""
        if seconds <= 0:
            return self
        observed = max(0.0, (took - self.fixed) / seconds)
        return EncoderCost(self.fixed, (1 - weight) * self.per_second + weight * observed)


@dataclass(frozen=True)
class Plan:
    """How a preset runs at a CPU budget: seconds between steps, each step's cost, and a word's expected wait."""

    preset: StreamingPreset
    period: float
    step_cost: float
    latency: float


def plan(preset: StreamingPreset, cost: EncoderCost, budget: float, open_segment_s: float = OPEN_SEGMENT_S) -> Plan:
    """Steps at least a chunk apart and far enough apart that their cost stays within `budget` of the time; a step
    that comes later decodes every chunk that arrived meanwhile, over a larger window."""
    chunk = preset.chunk * 0.08
    right = preset.right * 0.08
    left = min(preset.left * 0.08, open_segment_s)
    period = chunk
    step = cost.of(left + chunk + right)
    for _ in range(20):  # the fixed point of period = cost(window(period)) / budget
        chunks = max(1, math.ceil(period / chunk - 1e-9))
        step = cost.of(left + chunks * chunk + right)
        wanted = max(chunk, step / budget)
        if abs(wanted - period) < 1e-4:
            break
        period = wanted
    # A word that ends just after a step waits a period, then the right context, then the step itself.
    return Plan(preset, period, step, period + right + step)


def best_plan(presets: Sequence[StreamingPreset], cost: EncoderCost, budget: float) -> Plan:
    """The preset whose words show soonest on this machine (ties: the later, more accurate one)."""
    plans = [plan(p, cost, budget) for p in presets]
    return min(reversed(plans), key=lambda p: round(p.latency, 2))


class Pacer:
    """Spaces partial steps so that they use at most `budget` of the time: after a step that took `c` seconds the
    next may start `c × (1 / budget − 1)` seconds after it ended."""

    def __init__(self, budget: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._next = 0.0

    def took(self, seconds: float) -> None:
        """A step just ended after `seconds` of work."""
        self._next = self._clock() + seconds * (1 / self.budget - 1)

    def wait(self) -> float:
        """Seconds until the next step may start (0: now)."""
        return max(0.0, self._next - self._clock())

    def reset(self) -> None:
        """A new segment: its first step may start at once."""
        self._next = 0.0
