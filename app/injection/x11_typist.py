"""Typing on X11: keystrokes through XTEST, spare keycodes for characters the layout lacks, and pasting with the
shortcut the focused window expects."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from app.injection.terminals import TYPE_ONLY_TERMINALS, terminal_name
from app.injection.timing import KEYSTROKE_S, MODIFIER_WAIT_S, PASTE_TIMEOUT_S, REMAP_S, TYPE_SETUP_S, time_budget
from app.injection.types import InjectionError, Method, WindowRef, normalize_newlines
from app.injection.x11_clipboard import X11Clipboard
from app.injection.x11_clipboard_formats import text_formats
from app.injection.x11_display import _client_window, _log_x_error, _open_display, _window_title, _wm_class
from app.injection.x11_keymap import (
    HELD_MODIFIERS,
    KEYSYM_ALT_L,
    KEYSYM_CAPS_LOCK,
    KEYSYM_CONTROL_L,
    KEYSYM_RETURN,
    KEYSYM_SHIFT_L,
    KEYSYM_TAB,
    KEYSYM_V,
    LOCK_MASK,
    _Keymap,
    _Plan,
    char_keysym,
    keysym_char,
)

log = logging.getLogger("perch.injection")

SPARE_KEYCODE_REUSE_S = 2.0
"""A spare keycode is remapped to another character only if it was last typed longer ago than this."""


class X11Typist:
    """Types through XTEST and pastes through the CLIPBOARD selection on an X11 display."""

    name = "X11"

    def __init__(self, display: str | None = None, clipboard: X11Clipboard | None = None) -> None:
        self.display_name = display if display is not None else os.environ.get("DISPLAY", "")
        self.clipboard = clipboard if clipboard is not None else X11Clipboard(self.display_name)
        self.paste_timeout_s = PASTE_TIMEOUT_S
        self._conn: Any = None
        self._lock = threading.RLock()
        self._spare: dict[int, int] = {}
        """Keysym → the spare keycode this typist mapped to it."""
        self._spare_used: dict[int, float] = {}
        """Spare keycode → when it was last typed."""

    # Connection.

    def problem(self) -> str | None:
        """No display, no python-xlib, no XTEST: each with what to do."""
        if not self.display_name:
            return "no X11 display is set (DISPLAY is empty)"
        try:
            display = self._display()
        except InjectionError as exc:
            return str(exc)
        if not display.has_extension("XTEST"):
            return f"the X server on {self.display_name} lacks the XTEST extension needed to type"
        return None

    def _display(self) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = _open_display(self.display_name)
                self._conn.set_error_handler(_log_x_error)
            while self._conn.pending_events():  # MappingNotify reaches every client; nothing here reads events
                self._conn.next_event()
            return self._conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """The connection, under the lock; X errors become InjectionError and a broken connection is dropped."""
        import Xlib.error

        with self._lock:
            display = self._display()
            try:
                yield display
            except (Xlib.error.ConnectionClosedError, OSError) as exc:
                self._conn = None
                raise InjectionError(f"the connection to the X11 display {self.display_name} broke: {exc}") from exc
            except Xlib.error.XError as exc:
                raise InjectionError(f"the X server refused a request: {exc}") from exc

    def close(self) -> None:
        """Clear the spare keycodes, hand the clipboard to a clipboard manager, close the connections."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    keymap = _Keymap(self._conn)
                    for keysym, keycode in self._spare.items():
                        if tuple(keymap.row(keycode)[:2]) == (keysym, keysym):
                            self._conn.change_keyboard_mapping(keycode, [[0, 0]])
                    self._conn.sync()
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            self._spare.clear()
            self._spare_used.clear()
        self.clipboard.close()

    # Focus.

    def focused_window(self) -> WindowRef | None:
        """The top-level client window (the one with WM_STATE) that holds the input focus."""
        import Xlib.error

        with self._session() as display:
            try:
                focus = display.get_input_focus().focus
                if isinstance(focus, int) or focus.id in (0, 1):  # None or PointerRoot
                    return None
                window = _client_window(display, focus)
                return WindowRef(window.id, _window_title(display, window), _wm_class(window))
            except Xlib.error.XError as exc:
                log.debug("focus lookup failed: %s", exc)
                return None

    # Typing.

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Paste text with line breaks or tabs (keys that act in many windows) and text too slow to type."""
        if window is not None and terminal_name(window.wm_class) in TYPE_ONLY_TERMINALS:
            return "type"
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            return "paste"
        return "type" if self.typing_time(text) <= time_budget(text) else "paste"

    def typing_time(self, text: str) -> float:
        """The expected time to type the text (inf when it cannot be typed), from the cost model above."""
        try:
            with self._session() as display:
                plan = self._plan(_Keymap(display), normalize_newlines(text))
        except InjectionError:
            return float("inf")
        return TYPE_SETUP_S + KEYSTROKE_S * len(plan.keys) + REMAP_S * len(plan.remaps)

    def type_text(self, text: str) -> None:
        """Press and release a key per character; spare keycodes stand in for characters the layout lacks."""
        from Xlib import X
        from Xlib.ext import xtest

        text = normalize_newlines(text)
        with self._session() as display:
            self._wait_for_modifiers(display)
            keymap = _Keymap(display)
            plan = self._plan(keymap, text)
            self._apply(display, plan)
            shift = keymap.keys.get(KEYSYM_SHIFT_L)
            caps = keymap.keys.get(KEYSYM_CAPS_LOCK) if keymap.state & LOCK_MASK else None
            invert = bool(keymap.state & LOCK_MASK) and caps is None
            if caps is not None:  # Caps Lock off while typing, back on afterwards
                _tap(display, caps)
            shifted_now = False
            for index, (keycode, level2) in enumerate(plan.keys):
                shifted = not level2 if invert and text[index].lower() != text[index].upper() else level2
                if shifted != shifted_now and shift is not None:
                    xtest.fake_input(display, X.KeyPress if shifted else X.KeyRelease, shift)
                    shifted_now = shifted
                _tap(display, keycode)
                if index % 256 == 255:
                    display.flush()
            if shifted_now and shift is not None:
                xtest.fake_input(display, X.KeyRelease, shift)
            if caps is not None:
                _tap(display, caps)
            display.sync()

    def _plan(self, keymap: _Keymap, text: str) -> _Plan:
        """The keys for each character, with spare keycodes for the rest; raises if there are too few."""
        spare = {
            keysym: keycode
            for keysym, keycode in self._spare.items()
            if tuple(keymap.row(keycode)[:2]) == (keysym, keysym)  # still mapped as we left it
        }
        free = keymap.free()
        keys: list[tuple[int, bool]] = []
        remaps: dict[int, int] = {}
        for char in text:
            if char in ("\n", "\t"):
                keysym = KEYSYM_RETURN if char == "\n" else KEYSYM_TAB
                if keysym in keymap.keys:
                    keys.append((keymap.keys[keysym], False))
                    continue
            elif char in keymap.direct:
                keys.append(keymap.direct[char])
                continue
            else:
                keysym = char_keysym(char)
            keycode = spare.get(keysym)
            if keycode is None:
                keycode = self._spare_keycode(free, spare, {code for code, _ in keys})
                spare = {sym: code for sym, code in spare.items() if code != keycode}
                spare[keysym] = keycode
                remaps[keycode] = keysym
            keys.append((keycode, False))
        return _Plan(keys, remaps, spare)

    def _spare_keycode(self, free: list[int], spare: dict[int, int], needed: set[int]) -> int:
        """An unused keycode, else the spare keycode typed longest ago (not within SPARE_KEYCODE_REUSE_S)."""
        if free:
            return free.pop(0)
        now = time.monotonic()
        candidates = [
            (self._spare_used.get(keycode, 0.0), keycode)
            for keycode in spare.values()
            if keycode not in needed and now - self._spare_used.get(keycode, 0.0) > SPARE_KEYCODE_REUSE_S
        ]
        if not candidates:
            raise InjectionError("the keyboard has too few spare keys for the characters of this text")
        return min(candidates)[1]

    def _apply(self, display: Any, plan: _Plan) -> None:
        """Map the plan's spare keycodes and remember them."""
        for keycode, keysym in plan.remaps.items():
            # The keysym at both levels: a lone Latin-1 letter would become a lower/upper pair (Ä typing ä).
            display.change_keyboard_mapping(keycode, [[keysym, keysym]])
        self._spare = plan.spare
        now = time.monotonic()
        spare_codes = set(plan.spare.values())
        self._spare_used = {code: used for code, used in self._spare_used.items() if code in spare_codes}
        for keycode, _ in plan.keys:
            if keycode in spare_codes:
                self._spare_used[keycode] = now

    def _wait_for_modifiers(self, display: Any) -> None:
        """Wait for the person to let go of modifier keys; release any still held after MODIFIER_WAIT_S."""
        from Xlib import X
        from Xlib.ext import xtest

        rows = display.get_modifier_mapping()
        keycodes = {int(code) for row in HELD_MODIFIERS for code in rows[row] if code}
        deadline = time.monotonic() + MODIFIER_WAIT_S
        while True:
            pressed = display.query_keymap()
            held = [code for code in keycodes if pressed[code >> 3] & (1 << (code & 7))]
            if not held:
                return
            if time.monotonic() >= deadline:
                log.info("releasing modifier keys still held before typing: %s", held)
                for code in held:
                    xtest.fake_input(display, X.KeyRelease, code)
                display.sync()
                return
            time.sleep(0.01)

    # Pasting.

    def paste_keys(self, window: WindowRef | None) -> tuple[int, ...]:
        """Keysyms of the paste shortcut: Ctrl+Shift+V in terminals (Ctrl+Alt+V in urxvt), Ctrl+V elsewhere."""
        terminal = terminal_name(window.wm_class) if window is not None else None
        if terminal in ("urxvt", "rxvt"):
            return (KEYSYM_CONTROL_L, KEYSYM_ALT_L, KEYSYM_V)
        if terminal is not None:
            return (KEYSYM_CONTROL_L, KEYSYM_SHIFT_L, KEYSYM_V)
        return (KEYSYM_CONTROL_L, KEYSYM_V)

    def paste(self, text: str) -> bool:
        """Offer the text on the CLIPBOARD, press the paste shortcut, then restore what was there before."""
        keys = self.paste_keys(self.focused_window())
        snapshot = self.clipboard.snapshot()
        if not snapshot.complete:
            log.warning("the clipboard could be read only in part; unreadable formats will not come back")
        generation = self.clipboard.offer(text_formats(normalize_newlines(text)))
        try:
            self._press_shortcut(keys)
            return self.clipboard.wait_fetched(generation, self.paste_timeout_s)
        finally:
            self.clipboard.restore(snapshot, generation)

    def copy(self, text: str) -> None:
        """Own the CLIPBOARD with the text until something else is copied."""
        self.clipboard.offer(text_formats(normalize_newlines(text)))

    def _press_shortcut(self, keysyms: tuple[int, ...]) -> None:
        """Press the keys in order, release them in reverse; a letter missing from the layout gets a spare key."""
        from Xlib import X
        from Xlib.ext import xtest

        with self._session() as display:
            self._wait_for_modifiers(display)
            keymap = _Keymap(display)
            keycodes = []
            for keysym in keysyms:
                keycode = keymap.keys.get(keysym)
                if keycode is None:
                    char = keysym_char(keysym)
                    if char is None:
                        raise InjectionError(f"the keyboard layout has no key for keysym {keysym:#x}")
                    plan = self._plan(keymap, char)
                    self._apply(display, plan)
                    keycode = plan.keys[0][0]
                keycodes.append(keycode)
            for keycode in keycodes:
                xtest.fake_input(display, X.KeyPress, keycode)
            for keycode in reversed(keycodes):
                xtest.fake_input(display, X.KeyRelease, keycode)
            display.sync()


def _tap(display: Any, keycode: int) -> None:
    from Xlib import X
    from Xlib.ext import xtest

    xtest.fake_input(display, X.KeyPress, keycode)
    xtest.fake_input(display, X.KeyRelease, keycode)
