"""Opt-in instrumentation: audio/feature taps, NaN guards and decode-step logs, set by environment."""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stt.audio import write_wav
from stt.decoding import StepTrace
from stt.errors import NumericError

decode_log = logging.getLogger("perch.decode")


@dataclass(frozen=True)
class Instrumentation:
    """`PERCH_AUDIO_TAP=DIR`, `PERCH_NAN_GUARD=1`, `PERCH_DEBUG_DECODE=1`."""

    tap_dir: Path | None = None
    nan_guard: bool = False
    debug_decode: bool = False

    @classmethod
    def from_env(cls) -> Instrumentation:
        """Read the switches from the environment."""
        tap = os.environ.get("PERCH_AUDIO_TAP")
        return cls(
            tap_dir=Path(tap).expanduser() if tap else None,
            nan_guard=os.environ.get("PERCH_NAN_GUARD", "") not in ("", "0"),
            debug_decode=os.environ.get("PERCH_DEBUG_DECODE", "") not in ("", "0"),
        )

    def check(self, stage: str, values: npt.NDArray[np.floating]) -> None:
        """Fail naming the stage when guarding and `values` hold NaN or Inf."""
        if self.nan_guard and not np.isfinite(values).all():
            bad = int(values.size - np.isfinite(values).sum())
            raise NumericError(f"{stage} produced {bad} NaN/Inf values (PERCH_NAN_GUARD)")

    def tap(self, samples: npt.NDArray[np.float32], features: npt.NDArray[np.float32]) -> None:
        """Write the input (16 kHz WAV) and its features (.npy) when tapping."""
        if self.tap_dir is None:
            return
        self.tap_dir.mkdir(parents=True, exist_ok=True)
        stem = self.tap_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_counter):05d}"
        write_wav(stem.with_suffix(".wav"), samples)
        np.save(stem.with_suffix(".npy"), features)

    def trace(self, step: StepTrace) -> None:
        """Log one decode step."""
        decode_log.info("frame=%d token=%d duration=%d p=%.4f", step.frame, step.token, step.duration, step.probability)


_counter = itertools.count()
