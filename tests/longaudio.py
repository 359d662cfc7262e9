"""Long audio files for file-transcription tests: faint noise with spoken phrases at known times, written block by
block so that even an hour never sits in memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

RATE = 16000
NOISE_RMS = 0.0003
"""About -70 dBFS RMS: its peaks reach the engine (it is not skipped as silence), yet it is far below speech."""


def write_long_file(
    path: Path,
    seconds: float,
    phrases: Sequence[tuple[float, npt.NDArray[np.float32]]],
    *,
    block_seconds: float = 10.0,
    subtype: str = "PCM_16",
) -> Path:
    """`seconds` of faint noise at 16 kHz with each (start time, 16 kHz speech) mixed in."""
    rng = np.random.default_rng(3)
    total = int(seconds * RATE)
    block = int(block_seconds * RATE)
    with soundfile.SoundFile(path, "w", samplerate=RATE, channels=1, subtype=subtype) as out:
        for first in range(0, total, block):
            count = min(block, total - first)
            samples = rng.normal(0.0, NOISE_RMS, count).astype(np.float32)
            for start_s, speech in phrases:
                begin = int(start_s * RATE)
                lo, hi = max(first, begin), min(first + count, begin + len(speech))
                if lo < hi:
                    samples[lo - first : hi - first] += speech[lo - begin : hi - begin]
            out.write(samples)
    return path


def spaced_phrases(
    speak: Callable[[str], npt.NDArray[np.float32]], texts: Sequence[str], every_s: float, first_s: float = 2.0
) -> list[tuple[float, npt.NDArray[np.float32]]]:
    """Each phrase spoken `every_s` seconds apart, from `first_s`."""
    return [(first_s + i * every_s, speak(text)) for i, text in enumerate(texts)]
