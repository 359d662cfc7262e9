"""Cutting long audio into encoder-sized segments at quiet points."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
WINDOW = SAMPLE_RATE // 10
"""Energy is compared over 100 ms windows, so a pause between words wins over one quiet sample."""
SEARCH_FRACTION = 0.2
"""The cut is looked for in the last fifth before the limit."""


def quietest_point(samples: npt.NDArray[np.float32], lo: int, hi: int) -> int:
    """Index in [lo, hi) at the centre of the 100 ms window with the least energy."""
    lo, hi = max(0, lo), min(len(samples), hi)
    if hi - lo <= WINDOW:
        return hi
    energy = np.square(samples[lo:hi], dtype=np.float64)
    window_sums = np.convolve(energy, np.ones(WINDOW), mode="valid")
    return lo + int(window_sums.argmin()) + WINDOW // 2


def segment_stream(
    blocks: Iterable[npt.NDArray[np.float32]], max_samples: int
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """Yield (offset, segment) pieces of at most `max_samples`, cut at the quietest point near the limit.

    Only about one segment of audio is held at a time.
    """
    pending: list[npt.NDArray[np.float32]] = []
    held = 0
    offset = 0
    for block in blocks:
        if len(block) == 0:
            continue
        pending.append(np.asarray(block, dtype=np.float32))
        held += len(block)
        while held > max_samples:
            buffer = np.concatenate(pending)
            cut = quietest_point(buffer, int(max_samples * (1 - SEARCH_FRACTION)), max_samples)
            yield offset, buffer[:cut]
            offset += cut
            rest = buffer[cut:]
            pending, held = [rest], len(rest)
    buffer = np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
    yield offset, buffer
