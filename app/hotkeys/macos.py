"""macOS: a Quartz event tap (CGEventTapCreate) for key down, key up and modifier changes, on a run-loop thread.

The tap sees every key in the session. The hotkey's key going down with exactly its modifiers is a press, its key
going up is the release (the rule of `app.hotkeys.base`); both, and the auto-repeats between them, are taken out
of the event stream so the focused application does not see them. `Ctrl` is the Control key and `Super` is
Command. The tap needs the Accessibility permission (System Settings › Privacy & Security › Accessibility) for
Perch or the terminal that starts it. The system frameworks are loaded only when the backend runs, so this module
imports anywhere.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
import threading
from collections.abc import Mapping
from typing import Any

from app.hotkeys.base import Action, Callback, PressTracker, bindings
from app.hotkeys.keys import Hotkey, Modifier

log = logging.getLogger("perch.hotkeys")

APPLICATION_SERVICES = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"
CORE_FOUNDATION = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"

KEY_DOWN, KEY_UP, FLAGS_CHANGED = 10, 11, 12
TAP_DISABLED_BY_TIMEOUT, TAP_DISABLED_BY_USER_INPUT = 0xFFFFFFFE, 0xFFFFFFFF
KEYCODE_FIELD = 9
"""kCGKeyboardEventKeycode."""
SESSION_EVENT_TAP, HEAD_INSERT_EVENT_TAP, TAP_OPTION_DEFAULT = 1, 0, 0

FLAG_MASKS: dict[Modifier, int] = {
    "shift": 0x00020000,
    "ctrl": 0x00040000,
    "alt": 0x00080000,
    "super": 0x00100000,
}
"""kCGEventFlagMaskShift, …Control, …Alternate, …Command."""

MAC_KEYCODES: dict[str, int] = {
    "A": 0x00,
    "S": 0x01,
    "D": 0x02,
    "F": 0x03,
    "H": 0x04,
    "G": 0x05,
    "Z": 0x06,
    "X": 0x07,
    "C": 0x08,
    "V": 0x09,
    "B": 0x0B,
    "Q": 0x0C,
    "W": 0x0D,
    "E": 0x0E,
    "R": 0x0F,
    "Y": 0x10,
    "T": 0x11,
    "1": 0x12,
    "2": 0x13,
    "3": 0x14,
    "4": 0x15,
    "6": 0x16,
    "5": 0x17,
    "=": 0x18,
    "9": 0x19,
    "7": 0x1A,
    "-": 0x1B,
    "8": 0x1C,
    "0": 0x1D,
    "]": 0x1E,
    "O": 0x1F,
    "U": 0x20,
    "[": 0x21,
    "I": 0x22,
    "P": 0x23,
    "Return": 0x24,
    "L": 0x25,
    "J": 0x26,
    "'": 0x27,
    "K": 0x28,
    ";": 0x29,
    "\\": 0x2A,
    ",": 0x2B,
    "/": 0x2C,
    "N": 0x2D,
    "M": 0x2E,
    ".": 0x2F,
    "Tab": 0x30,
    "Space": 0x31,
    "`": 0x32,
    "Backspace": 0x33,
    "Esc": 0x35,
    "CapsLock": 0x39,
    "Enter": 0x4C,
    "F1": 0x7A,
    "F2": 0x78,
    "F3": 0x63,
    "F4": 0x76,
    "F5": 0x60,
    "F6": 0x61,
    "F7": 0x62,
    "F8": 0x64,
    "F9": 0x65,
    "F10": 0x6D,
    "F11": 0x67,
    "F12": 0x6F,
    "F13": 0x69,
    "F14": 0x6B,
    "F15": 0x71,
    "F16": 0x6A,
    "F17": 0x40,
    "F18": 0x4F,
    "F19": 0x50,
    "F20": 0x5A,
    "Ins": 0x72,  # the Help key sits where Insert is
    "Home": 0x73,
    "PgUp": 0x74,
    "Del": 0x75,
    "End": 0x77,
    "PgDown": 0x79,
    "Left": 0x7B,
    "Right": 0x7C,
    "Down": 0x7D,
    "Up": 0x7E,
}
"""Virtual key codes (HIToolbox Events.h kVK_*) of the keys a hotkey may use; ANSI layout positions. Pause, Print,
Scroll Lock, Num Lock, Menu and F21–F24 have none."""


def modifiers_from_flags(flags: int) -> frozenset[Modifier]:
    """The modifiers a CGEventFlags value holds (Caps Lock and the others are ignored)."""
    return frozenset(modifier for modifier, mask in FLAG_MASKS.items() if flags & mask)


class TapDecoder:
    """The tap's decisions: presses and releases, and which events to take out of the stream."""

    def __init__(self, chosen: Mapping[Action, Hotkey], tracker: PressTracker) -> None:
        self.tracker = tracker
        self.codes = {action: (MAC_KEYCODES[hotkey.key], hotkey.modifiers) for action, hotkey in chosen.items()}

    def feed(self, event_type: int, keycode: int, flags: int) -> bool:
        """One tap event; True when it belongs to a hotkey and is dropped."""
        if event_type == KEY_DOWN:
            held = modifiers_from_flags(flags)
            action = next((a for a, (code, mods) in self.codes.items() if code == keycode and mods == held), None)
            return self.tracker.down(keycode, action)
        if event_type == KEY_UP:
            return self.tracker.up(keycode)
        return False


def unusable_keys(chosen: Mapping[Action, Hotkey]) -> list[Action]:
    """The hotkeys whose key a Mac keyboard does not have."""
    return [action for action, hotkey in chosen.items() if hotkey.key not in MAC_KEYCODES]


@functools.cache
def _frameworks() -> _Frameworks:
    return _Frameworks()


class _Frameworks:
    """The Quartz and Core Foundation functions the tap needs."""

    def __init__(self) -> None:
        quartz = ctypes.CDLL(APPLICATION_SERVICES)
        cf = ctypes.CDLL(CORE_FOUNDATION)
        self.callback_type = ctypes.CFUNCTYPE(
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p
        )
        quartz.CGEventTapCreate.restype = ctypes.c_void_p
        quartz.CGEventTapCreate.argtypes = (
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_uint64,
            self.callback_type,
            ctypes.c_void_p,
        )
        quartz.CGEventTapEnable.argtypes = (ctypes.c_void_p, ctypes.c_bool)
        quartz.CGEventGetIntegerValueField.restype = ctypes.c_int64
        quartz.CGEventGetIntegerValueField.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
        quartz.CGEventGetFlags.restype = ctypes.c_uint64
        quartz.CGEventGetFlags.argtypes = (ctypes.c_void_p,)
        quartz.AXIsProcessTrusted.restype = ctypes.c_bool
        cf.CFMachPortCreateRunLoopSource.restype = ctypes.c_void_p
        cf.CFMachPortCreateRunLoopSource.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long)
        cf.CFRunLoopGetCurrent.restype = ctypes.c_void_p
        cf.CFRunLoopAddSource.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        cf.CFRunLoopStop.argtypes = (ctypes.c_void_p,)
        cf.CFRelease.argtypes = (ctypes.c_void_p,)
        self.quartz = quartz
        self.cf = cf
        self.common_modes = ctypes.c_void_p.in_dll(cf, "kCFRunLoopCommonModes")


class MacBackend:
    """Global hotkeys on macOS through a Quartz event tap."""

    name = "macOS event tap"

    def __init__(self) -> None:
        self._chosen: dict[Action, Hotkey] = {}
        self._thread: threading.Thread | None = None
        self._loop: int | None = None
        self._ready = threading.Event()
        self._callback: Any = None  # the ctypes callback must outlive the tap
        self._tracker: PressTracker | None = None
        self._on_problem: Callback | None = None

    def problem(self) -> str | None:
        """Not macOS, or no Accessibility permission yet."""
        if sys.platform != "darwin":
            return "the macOS event tap works only on macOS"
        try:
            trusted = _frameworks().quartz.AXIsProcessTrusted()
        except (OSError, AttributeError) as exc:
            return f"cannot load the macOS Quartz framework: {exc}"
        if not trusted:
            return (
                "global hotkeys need the Accessibility permission: allow Perch (or the terminal that starts it) in "
                "System Settings › Privacy & Security › Accessibility, then restart Perch"
            )
        return None

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Keep the hotkeys a Mac keyboard can type; a problem for the others and for a missing permission."""
        if self._thread is not None:
            raise RuntimeError("stop() the hotkeys before registering others")
        chosen, problems = bindings(ptt, toggle)
        for action in unusable_keys(chosen):
            hotkey = chosen.pop(action)
            problems.append(f"{hotkey} cannot be used: a Mac keyboard has no {hotkey.key} key")
        problem = self.problem() if chosen else None
        if problem is not None:
            problems.append(problem)
        self._chosen = chosen
        return problems

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Create the tap on a run-loop thread; the callbacks run there and must be quick."""
        if self._thread is not None:
            raise RuntimeError("the hotkeys are already started")
        self._tracker = PressTracker(on_press, on_release)
        self._on_problem = on_problem
        if not self._chosen or sys.platform != "darwin":
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="perch-hotkeys-macos", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=5)

    def stop(self) -> None:
        """Stop the run loop and remove the tap; a press still held gets its release."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None:
            _frameworks().cf.CFRunLoopStop(self._loop)
        thread.join(timeout=5)
        self._loop = None

    def _run(self) -> None:
        tracker = self._tracker
        assert tracker is not None
        frameworks = _frameworks()
        quartz, cf = frameworks.quartz, frameworks.cf
        decoder = TapDecoder(self._chosen, tracker)
        tap: int | None = None

        def on_event(_proxy: int, event_type: int, event: int, _refcon: int) -> int | None:
            if event_type in (TAP_DISABLED_BY_TIMEOUT, TAP_DISABLED_BY_USER_INPUT):
                quartz.CGEventTapEnable(tap, True)
                return event
            keycode = quartz.CGEventGetIntegerValueField(event, KEYCODE_FIELD)
            return None if decoder.feed(event_type, keycode, quartz.CGEventGetFlags(event)) else event

        self._callback = frameworks.callback_type(on_event)
        mask = (1 << KEY_DOWN) | (1 << KEY_UP) | (1 << FLAGS_CHANGED)
        tap = quartz.CGEventTapCreate(
            SESSION_EVENT_TAP, HEAD_INSERT_EVENT_TAP, TAP_OPTION_DEFAULT, mask, self._callback, None
        )
        if not tap:
            self._ready.set()
            if self._on_problem is not None:
                self._on_problem(
                    "macOS refused the keyboard event tap: allow Perch in System Settings › Privacy & Security › "
                    "Accessibility (and Input Monitoring), then restart Perch"
                )
            return
        source = cf.CFMachPortCreateRunLoopSource(None, tap, 0)
        self._loop = cf.CFRunLoopGetCurrent()
        cf.CFRunLoopAddSource(self._loop, source, frameworks.common_modes)
        quartz.CGEventTapEnable(tap, True)
        self._ready.set()
        try:
            cf.CFRunLoopRun()
        finally:
            quartz.CGEventTapEnable(tap, False)
            cf.CFRelease(source)
            cf.CFRelease(tap)
            tracker.release_all()
