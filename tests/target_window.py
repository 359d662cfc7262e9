"""A stand-in for the window that receives dictated text, run as its own process on a test X server.

`python -m tests.target_window OUT_DIR` shows two top-level windows, "main" and "other", each a plain text
editor that rewrites `OUT_DIR/<name>.txt` with its whole text after every change, so a test reads back exactly
what arrived. When both windows are on screen it prints one JSON line with their X window ids, then answers
commands on stdin, one per line, with one line on stdout each:

- `clear`: empty both editors (`ok`).
- `terminal INSTANCE CLASS`: give "main" that WM_CLASS and make it paste like a terminal: Ctrl+Shift+V pastes and
  Ctrl+V types a literal `^V` (`ok`).
- `normal`: back to Qt's own WM_CLASS and Ctrl+V (`ok`).
- `own-clipboard PNG_PATH HTML_PATH`: put `image/png` and `text/html` with those files' bytes on the CLIPBOARD
  (`ok`).
- `dump-clipboard`: a JSON object {mime type: [byte count, sha256]} of every format on the CLIPBOARD as Qt reads it.
- `quit`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QPlainTextEdit

NAMES = ("main", "other")


class Editor(QPlainTextEdit):
    """A text editor that mirrors its text into a file."""

    def __init__(self, name: str, out: Path) -> None:
        super().__init__()
        self.path = out / f"{name}.txt"
        self.terminal = False
        self.setWindowTitle(f"perch-target-{name}")
        self.resize(480, 240)
        self.textChanged.connect(self._save)
        self._save()

    def _save(self) -> None:
        temp = self.path.with_suffix(".tmp")
        temp.write_text(self.toPlainText(), encoding="utf-8")
        temp.replace(self.path)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802  (Qt's name)
        """In terminal mode Ctrl+Shift+V pastes and Ctrl+V is a literal character, as in a terminal."""
        if self.terminal and event.key() == Qt.Key.Key_V:
            mods = event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
            if mods == Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier:
                self.paste()
                return
            if mods == Qt.KeyboardModifier.ControlModifier:
                self.insertPlainText("^V")
                return
        super().keyPressEvent(event)


def wm_class(window_id: int, value: bytes | None = None) -> bytes:
    """A window's raw WM_CLASS property, replaced by `value` when given."""
    import Xlib.display
    import Xlib.X
    import Xlib.Xatom

    display = Xlib.display.Display()
    try:
        window = display.create_resource_object("window", window_id)
        prop = window.get_property(Xlib.Xatom.WM_CLASS, Xlib.X.AnyPropertyType, 0, 1024)
        old = bytes(prop.value) if prop is not None else b""
        if value is not None:
            window.change_property(Xlib.Xatom.WM_CLASS, Xlib.Xatom.STRING, 8, value)
            display.sync()
        return old
    finally:
        display.close()


class Commands(QObject):
    """Reads commands from stdin inside the Qt event loop."""

    def __init__(self, app: QApplication, editors: dict[str, Editor]) -> None:
        super().__init__()
        self.app = app
        self.editors = editors
        self.original_class: bytes | None = None
        self.pending = b""
        self.notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
        self.notifier.activated.connect(self._read)

    def _read(self) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.app.quit()
            return
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            words = line.decode().split()
            print(self.run(words) if words else "ok", flush=True)

    def run(self, words: list[str]) -> str:
        command, args = words[0], words[1:]
        main = self.editors["main"]
        if command == "clear":
            for editor in self.editors.values():
                editor.clear()
        elif command == "terminal":
            old = wm_class(int(main.winId()), f"{args[0]}\0{args[1]}\0".encode())
            if self.original_class is None:
                self.original_class = old
            main.terminal = True
        elif command == "normal":
            if self.original_class is not None:
                wm_class(int(main.winId()), self.original_class)
            main.terminal = False
        elif command == "own-clipboard":
            data = QMimeData()
            data.setData("image/png", Path(args[0]).read_bytes())
            data.setData("text/html", Path(args[1]).read_bytes())
            QApplication.clipboard().setMimeData(data)
        elif command == "dump-clipboard":
            mime = QApplication.clipboard().mimeData()
            formats = {}
            for name in mime.formats() if mime is not None else []:
                raw = bytes(mime.data(name).data())
                formats[name] = [len(raw), hashlib.sha256(raw).hexdigest()]
            return json.dumps(formats)
        elif command == "quit":
            self.app.quit()
        else:
            return f"unknown command {command}"
        return "ok"


def main() -> None:
    """Show the windows, announce them, answer commands."""
    out = Path(sys.argv[1])
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    app = QApplication(sys.argv[:1])
    editors = {name: Editor(name, out) for name in NAMES}
    for index, editor in enumerate(editors.values()):
        editor.move(40 + 520 * index, 40)
        editor.show()
    commands = Commands(app, editors)

    def announce() -> None:
        handles = [editor.windowHandle() for editor in editors.values()]
        if not all(handle is not None and handle.isExposed() for handle in handles):
            QTimer.singleShot(10, announce)
            return
        print(json.dumps({name: int(editor.winId()) for name, editor in editors.items()}), flush=True)

    QTimer.singleShot(0, announce)
    app.exec()
    del commands  # kept alive while the event loop ran


if __name__ == "__main__":
    main()
