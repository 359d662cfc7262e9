"""Engine events (from any thread) as Qt signals on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from stt.events import Event


class EngineBridge(QObject):
    """`post` may be called from any thread; `arrived` delivers the event on the thread this object lives in."""

    arrived = Signal(object)

    def post(self, event: Event) -> None:
        """Queue an engine event for the GUI thread."""
        self.arrived.emit(event)
