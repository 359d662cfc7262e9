"""Windows: a low-level keyboard hook (WH_KEYBOARD_LL) on a thread with its own message loop.

RegisterHotKey reports presses only, so the hook watches every key instead: it follows the modifier keys itself,
turns the hotkey's key going down and up into one press and one release (the rule of `app.hotkeys.base`) and hides
those key events, auto-repeats included, from the focused window. When the hidden key was pressed with Alt or the
Windows key, an unassigned key (VK 0xE8) is tapped so that letting go of Alt does not open the window's menu and
letting go of the Windows key does not open Start. Whether another program holds the same combination is found
out at registration with RegisterHotKey and UnregisterHotKey. user32 is loaded only when the backend runs, so this
module imports anywhere.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections.abc import Mapping
from typing import Any

from app.hotkeys.base import Action, Callback, PressTracker, bindings
from app.hotkeys.keys import Hotkey, Modifier

log = logging.getLogger("perch.hotkeys")

WH_KEYBOARD_LL = 13
HC_ACTION = 0
WM_KEYDOWN, WM_KEYUP, WM_SYSKEYDOWN, WM_SYSKEYUP = 0x0100, 0x0101, 0x0104, 0x0105
WM_QUIT = 0x0012
KEYEVENTF_KEYUP = 0x0002
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x0001, 0x0002, 0x0004, 0x0008, 0x4000
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
VK_MASK_KEY = 0xE8
"""Unassigned virtual key tapped after a hidden Alt or Windows-key combination."""

MODIFIER_VKS: dict[int, Modifier] = {
    0x10: "shift",
    0xA0: "shift",
    0xA1: "shift",
    0x11: "ctrl",
    0xA2: "ctrl",
    0xA3: "ctrl",
    0x12: "alt",
    0xA4: "alt",
    0xA5: "alt",
    0x5B: "super",
    0x5C: "super",
}
REGISTER_MODIFIERS: dict[Modifier, int] = {"alt": MOD_ALT, "ctrl": MOD_CONTROL, "shift": MOD_SHIFT, "super": MOD_WIN}

VK_CODES: dict[str, int] = {
    **{chr(c): c for c in range(ord("A"), ord("Z") + 1)},
    **{str(d): ord(str(d)) for d in range(10)},
    **{f"F{n}": 0x6F + n for n in range(1, 25)},
    "Space": 0x20,
    "Tab": 0x09,
    "Return": 0x0D,
    "Enter": 0x0D,  # the keypad's Enter is VK_RETURN too (an extended key)
    "Esc": 0x1B,
    "Backspace": 0x08,
    "Ins": 0x2D,
    "Del": 0x2E,
    "Home": 0x24,
    "End": 0x23,
    "PgUp": 0x21,
    "PgDown": 0x22,
    "Left": 0x25,
    "Up": 0x26,
    "Right": 0x27,
    "Down": 0x28,
    "Pause": 0x13,
    "Print": 0x2C,
    "ScrollLock": 0x91,
    "CapsLock": 0x14,
    "NumLock": 0x90,
    "Menu": 0x5D,
    ";": 0xBA,
    "=": 0xBB,
    ",": 0xBC,
    "-": 0xBD,
    ".": 0xBE,
    "/": 0xBF,
    "`": 0xC0,
    "[": 0xDB,
    "\\": 0xDC,
    "]": 0xDD,
    "'": 0xDE,
}
"""Virtual-key codes (winuser.h VK_*) of the keys a hotkey may use; punctuation as on a US layout."""


class HookDecoder:
    """The hook's decisions: the modifier state, presses and releases, and which events to hide."""

    def __init__(self, chosen: Mapping[Action, Hotkey], tracker: PressTracker) -> None:
        self.tracker = tracker
        self.codes = {action: (VK_CODES[hotkey.key], hotkey.modifiers) for action, hotkey in chosen.items()}
        self._modifier_keys: set[int] = set()
        self.mask_needed = False
        """Set when a hidden press had Alt or the Windows key held: the caller taps VK_MASK_KEY."""

    @property
    def modifiers(self) -> frozenset[Modifier]:
        """The modifiers held now."""
        return frozenset(MODIFIER_VKS[vk] for vk in self._modifier_keys)

    def feed(self, message: int, vk: int) -> bool:
        """One hook event; True when it belongs to a hotkey and is hidden from the focused window."""
        down = message in (WM_KEYDOWN, WM_SYSKEYDOWN)
        if vk in MODIFIER_VKS:
            if down:
                self._modifier_keys.add(vk)
            else:
                self._modifier_keys.discard(vk)
            return False
        if not down:
            return self.tracker.up(vk)
        held = self.modifiers
        action = next((a for a, (code, mods) in self.codes.items() if code == vk and mods == held), None)
        was_held = self.tracker.is_held(vk)
        hidden = self.tracker.down(vk, action)
        if hidden and not was_held and held & {"alt", "super"}:
            self.mask_needed = True
        return hidden


class KBDLLHOOKSTRUCT(ctypes.Structure):
    """winuser.h KBDLLHOOKSTRUCT."""

    _fields_ = (
        ("vkCode", ctypes.c_uint32),
        ("scanCode", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("time", ctypes.c_uint32),
        ("dwExtraInfo", ctypes.c_size_t),
    )


class MSG(ctypes.Structure):
    """winuser.h MSG."""

    _fields_ = (
        ("hwnd", ctypes.c_void_p),
        ("message", ctypes.c_uint),
        ("wParam", ctypes.c_size_t),
        ("lParam", ctypes.c_ssize_t),
        ("time", ctypes.c_uint32),
        ("pt_x", ctypes.c_long),
        ("pt_y", ctypes.c_long),
        ("lPrivate", ctypes.c_uint32),
    )


def _user32() -> Any:
    user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    user32.SetWindowsHookExW.restype = ctypes.c_void_p
    user32.SetWindowsHookExW.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32)
    user32.CallNextHookEx.restype = ctypes.c_ssize_t
    user32.CallNextHookEx.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_ssize_t)
    user32.UnhookWindowsHookEx.argtypes = (ctypes.c_void_p,)
    user32.GetMessageW.argtypes = (ctypes.POINTER(MSG), ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)
    user32.PostThreadMessageW.argtypes = (ctypes.c_uint32, ctypes.c_uint, ctypes.c_size_t, ctypes.c_ssize_t)
    user32.RegisterHotKey.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint)
    user32.UnregisterHotKey.argtypes = (ctypes.c_void_p, ctypes.c_int)
    user32.keybd_event.argtypes = (ctypes.c_ubyte, ctypes.c_ubyte, ctypes.c_uint32, ctypes.c_size_t)
    return user32


class WindowsBackend:
    """Global hotkeys on Windows through a low-level keyboard hook."""

    name = "Windows keyboard hook"

    def __init__(self) -> None:
        self._chosen: dict[Action, Hotkey] = {}
        self._thread: threading.Thread | None = None
        self._thread_id = 0
        self._ready = threading.Event()
        self._proc: Any = None  # the ctypes callback must outlive the hook
        self._tracker: PressTracker | None = None
        self._on_problem: Callback | None = None

    def problem(self) -> str | None:
        """Only on Windows."""
        return None if sys.platform == "win32" else "the Windows keyboard hook works only on Windows"

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Check each hotkey against the ones other programs registered with Windows."""
        if self._thread is not None:
            raise RuntimeError("stop() the hotkeys before registering others")
        chosen, problems = bindings(ptt, toggle)
        problem = self.problem()
        if problem is not None:
            return [*problems, problem] if chosen else problems
        user32 = _user32()
        for ident, (action, hotkey) in enumerate(list(chosen.items()), start=0xB000):
            mods = MOD_NOREPEAT
            for modifier in hotkey.modifiers:
                mods |= REGISTER_MODIFIERS[modifier]
            if user32.RegisterHotKey(None, ident, mods, VK_CODES[hotkey.key]):
                user32.UnregisterHotKey(None, ident)
            elif ctypes.get_last_error() == ERROR_HOTKEY_ALREADY_REGISTERED:  # type: ignore[attr-defined,unused-ignore]
                problems.append(f"{hotkey} is already taken by another program; choose another hotkey in the settings")
                del chosen[action]
        self._chosen = chosen
        return problems

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Install the hook on a thread that runs a message loop; the callbacks run there and must be quick."""
        if self._thread is not None:
            raise RuntimeError("the hotkeys are already started")
        self._tracker = PressTracker(on_press, on_release)
        self._on_problem = on_problem
        if not self._chosen or self.problem() is not None:
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="perch-hotkeys-windows", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=5)

    def stop(self) -> None:
        """End the message loop and remove the hook; a press still held gets its release."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._thread_id:
            _user32().PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)
        thread.join(timeout=5)
        self._thread_id = 0

    def _run(self) -> None:
        tracker = self._tracker
        assert tracker is not None
        user32 = _user32()
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        kernel32.GetModuleHandleW.restype = ctypes.c_void_p
        decoder = HookDecoder(self._chosen, tracker)
        hook_type = ctypes.WINFUNCTYPE(  # type: ignore[attr-defined,unused-ignore]
            ctypes.c_ssize_t, ctypes.c_int, ctypes.c_size_t, ctypes.c_ssize_t
        )
        hook: int | None = None

        def on_key(code: int, message: int, data: int) -> int:
            if code == HC_ACTION:
                event = KBDLLHOOKSTRUCT.from_address(data)
                if event.vkCode != VK_MASK_KEY and decoder.feed(message, event.vkCode):
                    if decoder.mask_needed:
                        decoder.mask_needed = False
                        user32.keybd_event(VK_MASK_KEY, 0, 0, 0)
                        user32.keybd_event(VK_MASK_KEY, 0, KEYEVENTF_KEYUP, 0)
                    return 1
            return int(user32.CallNextHookEx(hook, code, message, data))

        self._proc = hook_type(on_key)
        self._thread_id = kernel32.GetCurrentThreadId()
        hook = user32.SetWindowsHookExW(
            WH_KEYBOARD_LL, ctypes.cast(self._proc, ctypes.c_void_p), kernel32.GetModuleHandleW(None), 0
        )
        self._ready.set()
        if not hook:
            error = ctypes.get_last_error()  # type: ignore[attr-defined,unused-ignore]
            if self._on_problem is not None:
                self._on_problem(f"Windows refused the keyboard hook (error {error}); global hotkeys do not work")
            return
        try:
            message = MSG()
            while user32.GetMessageW(ctypes.byref(message), None, 0, 0) > 0:
                pass
        finally:
            user32.UnhookWindowsHookEx(hook)
            tracker.release_all()
