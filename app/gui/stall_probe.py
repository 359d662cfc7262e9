"""A timer probe for the GUI thread: how long was it ever kept from running its event loop?

With `PERCH_GUI_PROBE=1` the app runs a 5 ms timer and logs, after each dictation and at exit, the longest
delay between two ticks beyond the interval: the longest time the GUI thread was blocked.
"""

from __future__ import annotations

import logging
import os
import time

from PySide6.QtCore import QObject, Qt, QTimer

log = logging.getLogger("perch.probe")

ENV = "PERCH_GUI_PROBE"


class StallProbe(QObject):
    """Ticks every `interval_ms` on the GUI thread and records how late each tick came."""

    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.interval = interval_ms / 1000
        self.longest_ms = 0.0
        self.ticks = 0
        self.over_50ms = 0
        self._last = time.perf_counter()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    @classmethod
    def from_env(cls) -> StallProbe | None:
        """A running probe when PERCH_GUI_PROBE=1, else None."""
        if os.environ.get(ENV) != "1":
            return None
        probe = cls()
        probe.start()
        return probe

    def start(self) -> None:
        """Start ticking."""
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        late_ms = max(0.0, (now - self._last - self.interval) * 1000)
        self._last = now
        self.ticks += 1
        self.longest_ms = max(self.longest_ms, late_ms)
        if late_ms > 50:
            self.over_50ms += 1

    def report(self, when: str) -> None:
        """Log the longest stall so far."""
        log.info(
            "GUI thread probe (%s): longest stall %.1f ms, %d stalls over 50 ms, %d ticks",
            when,
            self.longest_ms,
            self.over_50ms,
            self.ticks,
        )
