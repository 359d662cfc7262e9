"""What every hotkey backend offers, and the press/release rule they share.

The rule, the same on every platform: a hotkey is *pressed* when its key goes down while exactly its modifiers
are held (Caps Lock, Num Lock and Scroll Lock do not count). From then on it stays pressed until its key goes up,
whatever happens to the modifiers: letting go of Ctrl before Space does not end push-to-talk, and the release of
Space ends it even when no modifier is held any more. Keyboard auto-repeat while the key is held is swallowed, so
one hold is exactly one press and one release. Every press that was reported gets its release, also when the
backend stops or loses its connection while the key is down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Literal, Protocol

from app.hotkeys.keys import Hotkey

log = logging.getLogger("perch.hotkeys")

Action = Literal["ptt", "toggle"]
ACTIONS: tuple[Action, ...] = ("ptt", "toggle")
ACTION_LABELS: dict[str, str] = {"ptt": "push to talk", "toggle": "start/stop dictation"}

Callback = Callable[[str], None]
"""Called with "ptt" or "toggle"."""


class HotkeyBackend(Protocol):
    """Global hotkeys on one kind of desktop, with separate press and release.

    Use: `problem()`, then `register(...)`, then `start(...)`; `stop()` ends it, after which `register` and `start`
    may be called again with other hotkeys. The callbacks run on a thread of the backend (the X11 event thread, the
    Windows hook thread, the macOS run-loop thread, the D-Bus reader thread), never on the caller's: they must
    return quickly and hand the event over, say through a queued Qt signal, to the GUI thread.
    """

    name: str

    def problem(self) -> str | None:
        """Why global hotkeys cannot work here, with what to do; None when they can."""

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Take the hotkeys (None for none); problems such as "Ctrl+Alt+Space is already taken by another program".

        A hotkey named in a problem does not work; the other one may.
        """

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Report presses and releases of the registered hotkeys from now on; `on_problem` gets later trouble
        (a lost connection, a shortcut the desktop did not bind) as a sentence for the person."""

    def stop(self) -> None:
        """Stop reporting and give the keys back to the desktop; a press still held gets its release first."""


def bindings(ptt: Hotkey | None, toggle: Hotkey | None) -> tuple[dict[Action, Hotkey], list[str]]:
    """The hotkeys to register by action, and a problem when both are the same (push-to-talk keeps it)."""
    chosen: dict[Action, Hotkey] = {}
    problems: list[str] = []
    if ptt is not None:
        chosen["ptt"] = ptt
    if toggle is not None:
        if toggle == ptt:
            problems.append(f"{toggle} is both the push-to-talk and the toggle hotkey; it is used for push to talk")
        else:
            chosen["toggle"] = toggle
    return chosen, problems


class PressTracker:
    """Turns raw key downs and ups into one press and one release per hold, following the module's rule."""

    def __init__(self, on_press: Callback, on_release: Callback) -> None:
        self._on_press = on_press
        self._on_release = on_release
        self._held: dict[Hashable, str] = {}
        self._lock = threading.Lock()
        self.repeats = 0
        """Key downs swallowed because the key was already held (auto-repeat); for tests and logs."""

    def down(self, key: Hashable, action: str | None) -> bool:
        """A key went down; `action` is the hotkey it completes with the modifiers held now, or None.

        True when the event belongs to a hotkey (a press or a repeat), which a backend may then hide from others.
        """
        with self._lock:
            if key in self._held:
                self.repeats += 1
                return True
            if action is None or action in self._held.values():
                return False
            self._held[key] = action
        self._call(self._on_press, action)
        return True

    def up(self, key: Hashable) -> bool:
        """A key went up; True when that ended a hotkey press."""
        with self._lock:
            action = self._held.pop(key, None)
        if action is None:
            return False
        self._call(self._on_release, action)
        return True

    def is_held(self, key: Hashable) -> bool:
        """Whether this key is down as part of a hotkey press."""
        with self._lock:
            return key in self._held

    def release_all(self) -> None:
        """Report the release of every hotkey still pressed (the backend stops or lost its input)."""
        with self._lock:
            actions = list(self._held.values())
            self._held.clear()
        for action in actions:
            self._call(self._on_release, action)

    @staticmethod
    def _call(callback: Callback, action: str) -> None:
        try:
            callback(action)
        except Exception:  # a failing handler must not end the backend's thread
            log.exception("hotkey callback failed for %s", action)


class UnavailableBackend:
    """No global hotkeys here: it only explains why and what to do instead."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def problem(self) -> str | None:
        """Always the reason."""
        return self.reason

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Nothing can be registered: the reason, when there is anything to register."""
        return [self.reason] if ptt is not None or toggle is not None else []

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""
