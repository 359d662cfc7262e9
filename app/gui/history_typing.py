"""`Type again` from the history window: the window steps aside first, so the text goes where the person was."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

log = logging.getLogger("perch.history")

FOCUS_WAIT_MS = 300
"""How long the focus gets to go back to the window the person was in."""


class StepAsideTyping(QObject):
    """Minimises `window`, waits (on a timer) until it has lost the focus, then calls `type_text`.

    When the desktop ignores the minimise (some Wayland compositors do), the window hides instead; if it still
    has the focus after that, nothing is typed and `problem` says what to do.
    """

    def __init__(self, window: QWidget, type_text: Callable[[str], None], problem: Callable[[str], None]) -> None:
        super().__init__(window)
        self._window = window
        self._type_text = type_text
        self._problem = problem
        self._text: str | None = None
        self._hidden = False
        self._timer = QTimer(self, singleShot=True, interval=FOCUS_WAIT_MS)
        self._timer.timeout.connect(self._focus_checked)

    @property
    def waiting(self) -> bool:
        """Whether a text is waiting for the focus to leave."""
        return self._text is not None

    def start(self, text: str) -> None:
        """Step aside and type `text` once the focus is elsewhere (a newer call replaces a waiting text)."""
        self._text = text
        self._hidden = False
        self._window.showMinimized()
        self._timer.start()

    def _focus_checked(self) -> None:
        if self._text is None:
            return
        if self._window.isActiveWindow():
            if not self._hidden:
                self._hidden = True
                self._window.hide()
                self._timer.start()
                return
            self._text = None
            self._problem("The focus stayed on the history window, so nothing was typed; use Copy instead.")
            return
        text, self._text = self._text, None
        try:
            self._type_text(text)
        except Exception as exc:
            log.warning("typing from the history failed: %s", exc, exc_info=True)
            self._problem(f"Could not type the text ({exc}); use Copy and paste it instead.")
