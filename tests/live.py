"""Helpers for live-pipeline tests: an event recorder that waits on events, and a hand-fed source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from stt.events import Event
from stt.livebench import PacedSource
from stt.sources import AudioSink, ErrorSink

E = TypeVar("E")


class Recorder:
    """Collects events from any thread; tests wait for the ones they need."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type[E]) -> list[E]:
        """Every event of one type so far."""
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(
        self, kind: type[E], predicate: Callable[[E], bool] = lambda _e: True, count: int = 1, timeout: float = 30.0
    ) -> list[E]:
        """Block until `count` events of `kind` satisfy `predicate`; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found: list[E] = [e for e in self.events if isinstance(e, kind) and predicate(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [type(e).__name__ for e in self.events][-30:]
                    raise AssertionError(f"no {count} x {kind.__name__} within {timeout} s; last events: {names}")
                self._cond.wait(left)


class HandSource(PacedSource):
    """A source the test pushes audio into at once; blocks are delivered on the caller's thread."""

    def __init__(self, block: int = 160) -> None:
        super().__init__(speed=0, block=block)
        self.opened = 0

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None:
        super().start(sink, on_error)
        self.opened += 1

    def push(self, samples: npt.NDArray[np.float32]) -> None:
        """Deliver audio in blocks, as a driver would."""
        self.play(samples)


def silence(seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Faint noise, like a quiet room (about -60 dBFS)."""
    return np.random.default_rng(seed).normal(0.0, 0.001, int(seconds * 16000)).astype(np.float32)
