"""The typing test window: one text field that the typing check types into, in a process of its own.

`python -m app.doctor.probe_window` shows a small window whose text field takes the keyboard focus. Once it is on
screen it prints one JSON line, `{"window": <native window id>, "pid": <process id>}`, then answers commands
read from stdin, one per line, with one JSON line each (ASCII, so any text survives the pipe):

- `state`: `{"active": <whether the window has the focus>, "text": <the field's text>}`
- `clear`: empty the field and ask for the focus again; `{"ok": true}`
- `clipboard`: `{"clipboard": <the clipboard's text as this toolkit reads it>}`
- `quit`

It quits by itself when stdin closes or after a minute, so it never outlives a check that went wrong.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QVBoxLayout, QWidget

TITLE = "Perch typing test"
LIFETIME_MS = 60_000


class ProbeWindow(QWidget):
    """A label saying what this is, and the field."""

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.Window | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle(TITLE)
        layout = QVBoxLayout(self)
        note = QLabel("Perch is checking that it can type into a window. This window closes by itself.")
        note.setWordWrap(True)
        self.field = QLineEdit()
        self.field.setObjectName("probe-field")
        layout.addWidget(note)
        layout.addWidget(self.field)
        self.resize(420, 110)

    def take_focus(self) -> None:
        """Ask the window system for the keyboard focus, and put it into the field."""
        self.raise_()
        self.activateWindow()
        self.field.setFocus(Qt.FocusReason.OtherFocusReason)


class Commands(QObject):
    """Reads stdin on a thread and answers each line on the GUI thread."""

    line = Signal(str)

    def __init__(self, app: QApplication, window: ProbeWindow) -> None:
        super().__init__()
        self.app = app
        self.window = window
        self.line.connect(self.answer)
        threading.Thread(target=self._read, name="probe-stdin", daemon=True).start()

    def _read(self) -> None:
        for raw in sys.stdin.buffer:
            self.line.emit(raw.decode("utf-8", "replace").strip())
        self.line.emit("quit")

    def answer(self, command: str) -> None:
        """Carry out one command and print its answer."""
        reply: dict[str, object]
        if command == "state":
            reply = {"active": self.window.isActiveWindow(), "text": self.window.field.text()}
        elif command == "clear":
            self.window.field.clear()
            self.window.take_focus()
            reply = {"ok": True}
        elif command == "clipboard":
            reply = {"clipboard": QApplication.clipboard().text()}
        elif command == "quit":
            self.app.quit()
            return
        else:
            reply = {"error": f"unknown command {command!r}"}
        print(json.dumps(reply), flush=True)


def main() -> None:
    """Show the window, announce it, answer commands."""
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Perch typing test")
    window = ProbeWindow()
    window.show()
    commands = Commands(app, window)

    def announce() -> None:
        handle = window.windowHandle()
        if handle is None or not handle.isExposed():
            QTimer.singleShot(10, announce)
            return
        window.take_focus()
        print(json.dumps({"window": int(window.winId()), "pid": os.getpid()}), flush=True)

    QTimer.singleShot(0, announce)
    QTimer.singleShot(LIFETIME_MS, app.quit)
    app.exec()
    del commands  # kept alive while the event loop ran


if __name__ == "__main__":
    main()
