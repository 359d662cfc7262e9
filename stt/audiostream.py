"""Reading an audio file block by block as mono 16 kHz, so any length fits in bounded memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import soxr

from stt.audio import TARGET_RATE, open_audio, read_block
from stt.errors import AudioError

BLOCK_SECONDS = 30


def stream_audio(
    path: str | os.PathLike[str], block_seconds: float = BLOCK_SECONDS
) -> Iterator[npt.NDArray[np.float32]]:
    """Yield consecutive mono 16 kHz float32 blocks of the file; the file is opened on the first `next`."""
    with open_audio(path) as file:
        rate = int(file.samplerate)
        resampler = (
            soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="float32", quality="HQ") if rate != TARGET_RATE else None
        )
        frames = max(1, int(block_seconds * rate))
        while True:
            block = read_block(file, frames)
            last = len(block) < frames
            if not np.isfinite(block).all():
                raise AudioError(f"{path} contains NaN or infinite samples; it cannot be transcribed.")
            mono = np.ascontiguousarray(block.mean(axis=1), dtype=np.float32)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield mono
            if last:
                return
