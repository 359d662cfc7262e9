"""What every audio source delivers: 16 kHz mono blocks with their level, through a callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from stt.errors import AudioError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioBlock:
    """Consecutive 16 kHz mono samples from a source.

    `captured` is the `time.monotonic()` at which the block's last sample was received (for a
    replayed file, when the replay delivered it); `level_db` is the block's RMS level in dBFS.
    """

    samples: npt.NDArray[np.float32]
    captured: float
    level_db: float


@dataclass
class CaptureStats:
    """What went wrong while capturing, counted rather than hidden."""

    blocks: int = 0
    overflows: int = 0
    dropped_blocks: int = 0
    reopened: int = 0


AudioSink = Callable[[AudioBlock], None]
ErrorSink = Callable[[AudioError], None]


class AudioSource(Protocol):
    """A microphone or a replayed file.

    `start` begins delivery: `sink` is called with each block from the source's own thread (never
    from an audio driver callback), `on_error` when capture fails or the device is lost. `stop`
    ends delivery; blocks already captured are delivered before it returns.
    """

    @property
    def stats(self) -> CaptureStats: ...

    @property
    def running(self) -> bool: ...

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None: ...

    def stop(self) -> None: ...


def level_dbfs(samples: npt.NDArray[np.float32]) -> float:
    """RMS level in dBFS; -120 for an empty or silent block."""
    if samples.size == 0:
        return -120.0
    mean_square = float(np.dot(samples, samples)) / samples.size
    return max(-120.0, 10.0 * float(np.log10(mean_square))) if mean_square > 0 else -120.0
