"""Work for the history window off the GUI thread, with each outcome handed back on the GUI thread."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger("perch.history")

T = TypeVar("T")


class Jobs(QObject):
    """Runs callables one at a time, in order, on a worker thread; `done` or `failed` runs on this object's thread."""

    _outcome = Signal(object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._outcome.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.pending = 0
        """Jobs submitted whose outcome has not been delivered yet."""

    def submit(self, work: Callable[[], T], done: Callable[[T], None], failed: Callable[[Exception], None]) -> None:
        """Run `work` on the worker thread; then `done(result)` or `failed(error)` on the GUI thread."""
        self.pending += 1
        self._pool.submit(self._run, work, done, failed)

    def _run(self, work: Callable[[], T], done: Callable[[T], None], failed: Callable[[Exception], None]) -> None:
        try:
            result = work()
        except Exception as exc:
            log.warning("history job failed: %s", exc, exc_info=True)
            outcome = partial(failed, exc)
        else:
            outcome = partial(done, result)
        # The window may have been destroyed meanwhile; then there is nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self._outcome.emit(outcome)

    def _deliver(self, outcome: Callable[[], None]) -> None:
        self.pending -= 1
        outcome()

    def shutdown(self, wait: bool = True) -> None:
        """Drop queued jobs and, if asked, wait for the one running."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
