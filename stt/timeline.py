"""Recent captured audio addressed by absolute sample index."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt


class Timeline:
    """Appends blocks, slices any span still held, and forgets what lies before a given index."""

    def __init__(self) -> None:
        self._blocks: deque[tuple[int, npt.NDArray[np.float32]]] = deque()
        self.start = 0
        self.end = 0

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        """Add the next samples."""
        if len(samples):
            self._blocks.append((self.end, samples))
            self.end += len(samples)

    def slice(self, begin: int, end: int) -> npt.NDArray[np.float32]:
        """Samples [begin, end), clamped to what is held."""
        begin, end = max(begin, self.start), min(end, self.end)
        if end <= begin:
            return np.zeros(0, dtype=np.float32)
        parts = [
            block[max(0, begin - first) : end - first]
            for first, block in self._blocks
            if first < end and first + len(block) > begin
        ]
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def forget_before(self, index: int) -> None:
        """Release whole blocks that end at or before `index`."""
        while self._blocks and self._blocks[0][0] + len(self._blocks[0][1]) <= index:
            self._blocks.popleft()
        self.start = self._blocks[0][0] if self._blocks else self.end
