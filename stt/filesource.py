"""Replaying audio files (or arrays) as if a microphone captured them, for tests and demos."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from stt.audio import load_audio
from stt.errors import AudioError, MicrophoneError
from stt.sources import SAMPLE_RATE, AudioBlock, AudioSink, CaptureStats, ErrorSink, level_dbfs

ReplayInput = str | os.PathLike[str] | npt.NDArray[np.floating]


class FileSource:
    """Deliver files or 16 kHz float32 arrays in `block_ms` blocks from a thread, at `speed` times real time.

    `speed=0` delivers as fast as possible. `gap_s` seconds of silence go before, between and after the
    inputs; `loop` repeats them until `stop`. `fail_after_s` simulates a lost device: after that much
    audio the source calls `on_error` with a MicrophoneError and delivers nothing more. `finished` is
    set when delivery ends for any reason.
    """

    def __init__(
        self,
        inputs: ReplayInput | Sequence[ReplayInput],
        *,
        block_ms: int = 10,
        speed: float = 1.0,
        gap_s: float = 0.0,
        loop: bool = False,
        fail_after_s: float | None = None,
    ) -> None:
        if block_ms <= 0:
            raise ValueError(f"block_ms must be positive, got {block_ms}")
        if speed < 0 or gap_s < 0 or (fail_after_s is not None and fail_after_s < 0):
            raise ValueError("speed, gap_s and fail_after_s must not be negative")
        self._inputs: list[ReplayInput]
        if isinstance(inputs, (str, os.PathLike, np.ndarray)):
            self._inputs = [inputs]
        else:
            self._inputs = list(inputs)
        self._block = max(1, round(SAMPLE_RATE * block_ms / 1000))
        self._speed = speed
        self._gap = np.zeros(round(gap_s * SAMPLE_RATE), dtype=np.float32)
        self._loop = loop
        self._fail_after = None if fail_after_s is None else round(fail_after_s * SAMPLE_RATE)
        self._program: npt.NDArray[np.float32] | None = None
        self._stats = CaptureStats()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.finished = threading.Event()

    @property
    def stats(self) -> CaptureStats:
        """Blocks delivered in the current (or last) run."""
        return self._stats

    @property
    def running(self) -> bool:
        """True while the replay thread delivers."""
        return self._thread is not None and self._thread.is_alive()

    def program(self) -> npt.NDArray[np.float32]:
        """Everything one pass delivers: the inputs at 16 kHz with the gaps; read once, then kept."""
        if self._program is None:
            parts = [self._gap]
            for item in self._inputs:
                parts += [_load(item), self._gap]
            self._program = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        return self._program

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None:
        """Begin the replay from the start; raises AudioError when an input cannot be read."""
        if self.running:
            raise RuntimeError("The file source is already running; call stop() first.")
        program = self.program()
        self._stats = CaptureStats()
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(
            target=self._replay, args=(program, sink, on_error), name="perch-filesource", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the replay and wait for the thread."""
        thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _replay(self, program: npt.NDArray[np.float32], sink: AudioSink, on_error: ErrorSink) -> None:
        try:
            self._deliver(program, sink, on_error)
        finally:
            self.finished.set()

    def _deliver(self, program: npt.NDArray[np.float32], sink: AudioSink, on_error: ErrorSink) -> None:
        start = time.monotonic()
        delivered = 0  # samples since start, across loops: the pacing clock
        limit = math.inf if self._fail_after is None else self._fail_after
        while not self._stop.is_set():
            for offset in range(0, len(program), self._block):
                end = min(offset + self._block, len(program))
                take = int(min(end - offset, limit - delivered))
                if take > 0:
                    if self._speed > 0:
                        due = start + (delivered + take) / SAMPLE_RATE / self._speed
                        wait = due - time.monotonic()
                        if wait > 0 and self._stop.wait(wait):
                            return
                    elif self._stop.is_set():
                        return
                    samples = program[offset : offset + take].copy()
                    delivered += take
                    self._stats.blocks += 1
                    sink(AudioBlock(samples=samples, captured=time.monotonic(), level_db=level_dbfs(samples)))
                if delivered >= limit:
                    seconds = delivered / SAMPLE_RATE
                    on_error(MicrophoneError(f"device lost (simulated after {seconds:g} s of audio)"))
                    return
            if not self._loop or not len(program):
                return


def _load(item: ReplayInput) -> npt.NDArray[np.float32]:
    """A path read and resampled to 16 kHz mono, or an array taken as 16 kHz mono already."""
    if isinstance(item, np.ndarray):
        array = np.asarray(item)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.floating):
            raise AudioError(f"Replay arrays must be 1-D 16 kHz float samples, got {array.dtype} shape {array.shape}.")
        return np.ascontiguousarray(array, dtype=np.float32)
    return load_audio(item)
