"""The running app's answers to `perch ptt|toggle|cancel|status|show|open|files|quit` on its local socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from app import coordinator as co
from app import ipc

if TYPE_CHECKING:
    from app.gui.controller import Controller


def answer(app: Controller, line: str) -> str:
    """Carry out one command line (already checked against `ipc.COMMANDS`) and return the reply."""
    if line == "ptt press":
        app.feed(co.Press())
    elif line == "ptt release":
        app.feed(co.Release())
    elif line == "toggle":
        app.toggle()
    elif line == "cancel":
        app.feed(co.Cancel())
    elif line == "status":
        return app.state.phase.value
    elif line == "show":
        app.windows.show_settings()
    elif line.startswith("show "):
        return _show(app, line.removeprefix("show "))
    elif line == "files":
        return app.files.describe()
    elif line.startswith("transcribe "):
        app.windows.transcribe_files([Path(p) for p in json.loads(line.removeprefix("transcribe "))])
    elif line == "quit":
        app.quit()
    return "ok"


def _show(app: Controller, window: str) -> str:
    windows = {
        "settings": app.windows.show_settings,
        "history": app.windows.show_history,
        "transcribe": app.windows.show_transcribe,
        "check-setup": app.windows.show_check_setup,
    }
    if window not in windows:
        return f"error: no window {window!r}; windows: {', '.join(ipc.WINDOWS)}"
    windows[window]()
    return "ok"
