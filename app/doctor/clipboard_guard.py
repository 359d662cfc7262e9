"""Saving the person's clipboard before the typing check and leaving it exactly as it was afterwards."""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import threading
from collections.abc import Mapping
from typing import IO

from app.doctor.probe import child_environment
from app.injection import ClipboardSnapshot, InjectionError, X11Clipboard, text_formats

KEEPER_TIMEOUT_S = 5.0


class ClipboardGuard:
    """Where the typing check's clipboard work happens, and what puts the old contents back."""

    complete = True
    """Whether everything on the clipboard could be saved (else tests that replace it must not run)."""

    def save(self) -> None:
        """Remember what is on the clipboard now."""

    def copy(self, text: str) -> None:
        """Put text on the clipboard, for a clipboard-only typist."""
        raise NotImplementedError

    def restore(self, ours: str) -> str:
        """Put the saved contents back unless someone copied something else since; a line saying what happened.

        `ours` is the text the check itself copied: finding it there means the contents must go back.
        """
        return ""

    def close(self) -> None:
        """Free what the guard holds."""


class X11ClipboardGuard(ClipboardGuard):
    """The X11 CLIPBOARD through one `X11Clipboard`, shared with the typist so that all ownership is ours."""

    def __init__(self, display: str, environ: Mapping[str, str], python: str) -> None:
        self.display = display
        self.environ = environ
        self.python = python
        self.clipboard = X11Clipboard(display)
        self.saved = ClipboardSnapshot({})

    def save(self) -> None:
        """Read every format now on the clipboard."""
        self.saved = self.clipboard.snapshot()
        self.complete = self.saved.complete

    def copy(self, text: str) -> None:
        """Own the clipboard with the text."""
        self.clipboard.offer(text_formats(text))

    def restore(self, ours: str) -> str:
        """Put the saved formats back, byte for byte, and leave a keeper process serving them."""
        now = self.clipboard.snapshot()
        saved = self.saved.formats
        if now.formats != saved:
            if now.text() != ours and now.formats:
                return "something new was copied during the check, so the clipboard was left as it is"
            generation = self.clipboard.offer(dict(saved))
            if not saved:
                self.clipboard.restore(ClipboardSnapshot({}), generation)  # gives the clipboard up: empty again
        if not saved:
            return "the clipboard was empty before the check and is empty again"
        problem = self._hand_to_keeper()
        if problem:
            return f"your clipboard was put back, but it may be lost when this check ends: {problem}"
        return "your clipboard was put back as it was"

    def _hand_to_keeper(self) -> str:
        """Start the keeper with the saved formats and wait until it owns them; a problem, or ""."""
        from app.doctor.clipboard_keeper import encode

        try:
            keeper = subprocess.Popen(
                [self.python, "-m", "app.doctor.clipboard_keeper"],
                env=child_environment(self.environ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            return str(exc)
        assert keeper.stdin is not None and keeper.stdout is not None
        try:
            keeper.stdin.write(encode(self.display, self.saved.formats))
            keeper.stdin.close()
        except OSError as exc:
            return f"the process that keeps it failed: {exc}"
        answer = _first_line(keeper.stdout, KEEPER_TIMEOUT_S)
        if answer != b"owned" and keeper.poll() is None:
            keeper.kill()  # ends the read that is still waiting, before the pipe is closed
        keeper.stdout.close()
        if answer != b"owned":
            keeper.wait()
            return f"the process that keeps it did not take it (exit status {keeper.returncode})"
        return ""

    def close(self) -> None:
        """Stop the clipboard thread (it owns nothing by now)."""
        self.clipboard.close()


class WaylandClipboardGuard(ClipboardGuard):
    """The Wayland clipboard through wl-paste and wl-copy (which keeps serving by itself)."""

    def __init__(self) -> None:
        self.saved: tuple[str, bytes] | None = None

    def save(self) -> None:
        """The clipboard's text format (wl-copy can put back only one format)."""
        if shutil.which("wl-paste") is None:
            self.complete = False
            return
        types = _run(["wl-paste", "--list-types"])
        if types is None:
            return  # nothing on the clipboard
        names = types.decode(errors="replace").split()
        if not names:
            return
        mime = next((name for name in names if name.startswith("text/plain")), names[0])
        data = _run(["wl-paste", "--no-newline", "--type", mime])
        self.saved = (mime, data) if data is not None else None
        textual = all(name.startswith("text/") or name in ("UTF8_STRING", "STRING", "TEXT") for name in names)
        self.complete = data is not None and textual

    def copy(self, text: str) -> None:
        """wl-copy."""
        if _run(["wl-copy"], text.encode(), output=False) is None:
            raise InjectionError("wl-copy failed")

    def restore(self, ours: str) -> str:
        """wl-copy the saved format back, or clear the clipboard when it was empty."""
        now = _run(["wl-paste", "--no-newline"])
        if now is not None and now.decode(errors="replace") != ours and self.saved is not None and now != self.saved[1]:
            return "something new was copied during the check, so the clipboard was left as it is"
        if self.saved is None:
            _run(["wl-copy", "--clear"], output=False)
            return "the clipboard was empty before the check and is empty again"
        mime, data = self.saved
        if _run(["wl-copy", "--type", mime], data, output=False) is None:
            return "your clipboard could not be put back (wl-copy failed)"
        return "your clipboard's text was put back"


def _run(command: list[str], data: bytes | None = None, *, output: bool = True) -> bytes | None:
    """A wl-clipboard command's output, or None when it failed (an empty clipboard fails wl-paste).

    wl-copy forks a server that keeps serving the clipboard, so its output is not read (the pipe would stay open).
    """
    stream = subprocess.PIPE if output else subprocess.DEVNULL
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(command, input=data, stdout=stream, stderr=subprocess.DEVNULL, timeout=5, check=False)
        if done.returncode == 0:
            return done.stdout if output else b""
    return None


def _first_line(stream: IO[bytes], timeout: float) -> bytes:
    """The first line a child writes (stripped), or what it wrote before the timeout."""
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), name="perch-keeper-answer", daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return b""
