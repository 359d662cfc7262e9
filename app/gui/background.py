"""Run slow work on a thread of its own and hand the outcome to a slot on the GUI thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger("perch.gui")


class _Messenger(QObject):
    """Created on the worker thread, so that it also dies there; its signals reach the receivers' threads."""

    succeeded = Signal(object)
    failed = Signal(object)


def run_in_background(
    work: Callable[[], Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[Exception], None],
    *,
    name: str,
) -> threading.Thread:
    """Call `work()` on a daemon thread; then `on_result(value)` or `on_error(exception)`.

    Pass bound methods of QObjects living on the GUI thread: they run there, and not at all once their object
    is destroyed, so a closed window never receives a late answer.
    """

    def body() -> None:
        messenger = _Messenger()
        try:
            messenger.succeeded.connect(on_result)
            messenger.failed.connect(on_error)
        except RuntimeError:  # the receiver is already gone
            return
        try:
            value = work()
        except Exception as exc:
            log.debug("%s failed: %s", name, exc)
            messenger.failed.emit(exc)
        else:
            messenger.succeeded.emit(value)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread
