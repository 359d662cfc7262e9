"""The X11 CLIPBOARD selection: every format read byte for byte, new text offered, the old contents put back."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from app.injection.timing import PASTE_QUIET_S
from app.injection.x11_clipboard_formats import META_TARGETS, ClipboardSnapshot, ClipData
from app.injection.x11_clipboard_owner import _ClipboardOwner
from app.injection.x11_display import _open_display

log = logging.getLogger("perch.injection")

READ_TIMEOUT_S = 1.0
"""The longest a paste spends saving the clipboard; formats not read by then are not restored."""


class X11Clipboard(_ClipboardOwner):
    """Owns and reads the CLIPBOARD selection; a thread of its own answers the programs that paste."""

    def __init__(self, display: str | None = None, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        super().__init__(display)
        self.read_timeout_s = read_timeout_s
        # Reading, from the caller's thread.
        self._read_lock = threading.Lock()
        self._reader: Any = None
        self._reader_window: Any = None

    # Public side.

    def snapshot(self) -> ClipboardSnapshot:
        """Read every format on the CLIPBOARD (within read_timeout_s)."""
        from Xlib import X

        self._ensure_thread()
        with self._read_lock:
            display, window = self._reader_conn()
            clipboard = display.intern_atom("CLIPBOARD")
            owner = display.get_selection_owner(clipboard)
            if owner == X.NONE or (isinstance(owner, int) and owner == 0):
                return ClipboardSnapshot({})
            owner_id = owner if isinstance(owner, int) else owner.id
            if owner_id == self._window_id():
                return self._call(self._owned_snapshot)
            deadline = time.monotonic() + self.read_timeout_s
            targets = self._convert(display, window, display.intern_atom("TARGETS"), deadline)
            if targets is None or targets.format != 32:
                self._reader.close()
                self._reader = self._reader_window = None
                return ClipboardSnapshot({}, complete=False)
            formats: dict[str, ClipData] = {}
            complete = True
            atoms = memoryview(targets.data).cast("I") if len(targets.data) % 4 == 0 else memoryview(b"").cast("I")
            names = {display.get_atom_name(atom): atom for atom in dict.fromkeys(atoms)}
            for name in sorted(names, key=_read_order):  # the likeliest originals first, in case time runs out
                if name in META_TARGETS:
                    continue
                data = self._convert(display, window, names[name], deadline)
                if data is None:
                    log.debug("clipboard format %s could not be read", name)
                    complete = False
                else:
                    formats[name] = data
            if not complete:  # an abandoned INCR transfer could still write into this window's property
                self._reader.close()
                self._reader = self._reader_window = None
            return ClipboardSnapshot(formats, complete)

    def offer(self, formats: Mapping[str, ClipData]) -> int:
        """Own the CLIPBOARD with these formats; the returned generation identifies this ownership."""
        self._ensure_thread()
        return self._call(lambda: self._own(dict(formats)))

    def wait_fetched(self, generation: int, timeout: float) -> bool:
        """Wait until a program has fetched a format of this ownership and asked nothing more for PASTE_QUIET_S."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if self._generation != generation:
                    return any(target not in META_TARGETS for target in self._served)
                fetched = any(target not in META_TARGETS for target in self._served)
                if fetched and now - self._last_request >= PASTE_QUIET_S:
                    return True
                if not fetched and (now >= deadline or self._owned is None):
                    return False
                wait = PASTE_QUIET_S - (now - self._last_request) if fetched else deadline - now
                self._changed.wait(max(0.001, wait))

    def restore(self, snapshot: ClipboardSnapshot, generation: int) -> None:
        """Put a snapshot back, unless something else has been copied since `generation` was offered."""

        def put_back() -> None:
            if self._generation != generation or self._owned is None:
                return
            if snapshot.formats:
                self._own(dict(snapshot.formats))
            else:
                self._disown()

        self._call(put_back)

    def served(self) -> list[str]:
        """The targets fetched from the current ownership so far (for tests and logs)."""
        with self._changed:
            return list(self._served)

    def close(self) -> None:
        """Offer the clipboard to a clipboard manager (so it outlives Perch), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._hand_to_manager, timeout=3.0)
        self._stop = True
        self._poke()
        thread.join(timeout=3)
        with self._start_lock:
            self._thread = None
            if self._wake is not None:
                for fd in self._wake:
                    os.close(fd)
                self._wake = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # Reading (caller's thread).

    def _reader_conn(self) -> tuple[Any, Any]:
        if self._reader is None:
            from Xlib import X

            display = _open_display(self.display_name)
            root = display.screen().root
            window = root.create_window(-10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask)
            self._reader, self._reader_window = display, window
        return self._reader, self._reader_window

    def _convert(self, display: Any, window: Any, target: int, deadline: float) -> ClipData | None:
        """Ask the owner for one target; follow INCR transfers; None on refusal or timeout."""
        from Xlib import X

        clipboard = display.intern_atom("CLIPBOARD")
        prop = display.intern_atom("PERCH_CLIPBOARD")
        incr = display.intern_atom("INCR")
        window.delete_property(prop)
        window.convert_selection(clipboard, target, prop, X.CurrentTime)
        display.flush()
        event = _wait_event(
            display,
            lambda e: e.type == X.SelectionNotify and e.target == target and e.selection == clipboard,
            deadline,
        )
        if event is None or event.property == X.NONE:
            return None
        reply = window.get_property(prop, X.AnyPropertyType, 0, 0x1FFFFFFF, delete=True)
        if reply is None:
            return None
        if reply.property_type != incr:
            return ClipData(display.get_atom_name(reply.property_type), reply.format, _raw(reply.value))
        display.flush()  # deleting the INCR property asked for the first chunk
        chunks: list[bytes] = []
        kind, size = 0, 8
        while True:
            event = _wait_event(
                display,
                lambda e: e.type == X.PropertyNotify and e.atom == prop and e.state == X.PropertyNewValue,
                deadline,
            )
            if event is None:
                return None
            reply = window.get_property(prop, X.AnyPropertyType, 0, 0x1FFFFFFF, delete=True)
            display.flush()
            if reply is None:
                continue
            data = _raw(reply.value)
            if not data:
                return ClipData(display.get_atom_name(kind or reply.property_type), size, b"".join(chunks))
            kind, size = reply.property_type, reply.format
            chunks.append(data)


TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT", "text/plain", "COMPOUND_TEXT")


def _read_order(target: str) -> int:
    """Text first, then other text, PNG and program-specific formats, then the image formats toolkits derive
    from one picture (Qt offers a screenshot as some twenty of them, each encoded on request)."""
    if target in TEXT_TARGETS:
        return 0
    if target == "image/png" or not target.startswith("image/"):
        return 1
    return 2


def _raw(value: Any) -> bytes:
    """Property data as bytes (python-xlib gives arrays for 16- and 32-bit formats)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1")
    return bytes(value.tobytes())


def _wait_event(display: Any, match: Callable[[Any], bool], deadline: float) -> Any:
    """The next event that matches, discarding others, or None at the deadline."""
    while True:
        while display.pending_events():
            event = display.next_event()
            if match(event):
                return event
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        select.select([display.fileno()], [], [], remaining)
