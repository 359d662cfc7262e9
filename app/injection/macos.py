"""macOS: typing with Quartz keyboard events that carry Unicode strings, pasting with Cmd+V through pbcopy."""

from __future__ import annotations

import ctypes
import sys
import time
from typing import Any

from app import injection  # PASTE_SETTLE_S and _run are looked up on the package, where tests replace them
from app.injection.timing import KEYSTROKE_S, TYPE_SETUP_S, time_budget
from app.injection.types import InjectionError, Method, WindowRef, normalize_newlines

MAC_CHUNK_UNITS = 20
"""CGEventKeyboardSetUnicodeString takes at most 20 UTF-16 units per event."""
MAC_KEY_RETURN = 36
MAC_KEY_TAB = 48
MAC_KEY_V = 9
MAC_FLAG_COMMAND = 0x00100000
APPLICATION_SERVICES = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"
CORE_FOUNDATION = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"


def mac_unicode_chunks(text: str) -> list[list[int] | int]:
    """Events for a text: lists of at most MAC_CHUNK_UNITS UTF-16 units, never splitting a surrogate pair, and
    the key codes of Return and Tab on their own."""
    events: list[list[int] | int] = []
    chunk: list[int] = []
    for char in normalize_newlines(text):
        if char in ("\n", "\t"):
            if chunk:
                events.append(chunk)
                chunk = []
            events.append(MAC_KEY_RETURN if char == "\n" else MAC_KEY_TAB)
            continue
        data = char.encode("utf-16-le")
        units = [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]
        if len(chunk) + len(units) > MAC_CHUNK_UNITS:
            events.append(chunk)
            chunk = []
        chunk += units
    if chunk:
        events.append(chunk)
    return events


class MacApi:
    """The Quartz and Accessibility calls the macOS typist makes, through ctypes."""

    def __init__(self) -> None:
        self.quartz = quartz = ctypes.cdll.LoadLibrary(APPLICATION_SERVICES)
        self.cf = cf = ctypes.cdll.LoadLibrary(CORE_FOUNDATION)
        void_p = ctypes.c_void_p
        quartz.CGEventCreateKeyboardEvent.argtypes = [void_p, ctypes.c_uint16, ctypes.c_bool]
        quartz.CGEventCreateKeyboardEvent.restype = void_p
        quartz.CGEventKeyboardSetUnicodeString.argtypes = [void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_uint16)]
        quartz.CGEventSetFlags.argtypes = [void_p, ctypes.c_uint64]
        quartz.CGEventPost.argtypes = [ctypes.c_uint32, void_p]
        quartz.AXIsProcessTrusted.restype = ctypes.c_bool
        quartz.AXUIElementCreateSystemWide.restype = void_p
        quartz.AXUIElementCopyAttributeValue.argtypes = [void_p, void_p, ctypes.POINTER(void_p)]
        quartz.AXUIElementGetPid.argtypes = [void_p, ctypes.POINTER(ctypes.c_int)]
        cf.CFRelease.argtypes = [void_p]
        cf.CFStringCreateWithCString.argtypes = [void_p, ctypes.c_char_p, ctypes.c_uint32]
        cf.CFStringCreateWithCString.restype = void_p
        cf.CFStringGetCString.argtypes = [void_p, ctypes.c_char_p, ctypes.c_long, ctypes.c_uint32]

    def trusted(self) -> bool:
        """Whether Perch may post keyboard events (Accessibility permission)."""
        return bool(self.quartz.AXIsProcessTrusted())

    def post(self, units: list[int] | None = None, keycode: int = 0, flags: int = 0) -> None:
        """A key down and up that carry the UTF-16 units, or the key code with modifier flags."""
        for down in (True, False):
            event = self.quartz.CGEventCreateKeyboardEvent(None, keycode, down)
            if units:
                array = (ctypes.c_uint16 * len(units))(*units)
                self.quartz.CGEventKeyboardSetUnicodeString(event, len(units), array)
            if flags:
                self.quartz.CGEventSetFlags(event, flags)
            self.quartz.CGEventPost(0, event)  # kCGHIDEventTap
            self.cf.CFRelease(event)

    def focused_application(self) -> tuple[int, str]:
        """(pid, window title) of the application with the keyboard focus; pid 0 when unknown."""
        utf8 = 0x08000100

        def attribute(element: int, name: bytes) -> int | None:
            key = self.cf.CFStringCreateWithCString(None, name, utf8)
            value = ctypes.c_void_p()
            error = self.quartz.AXUIElementCopyAttributeValue(element, key, ctypes.byref(value))
            self.cf.CFRelease(key)
            return value.value if error == 0 and value.value else None

        system = self.quartz.AXUIElementCreateSystemWide()
        app = attribute(system, b"AXFocusedApplication")
        self.cf.CFRelease(system)
        if app is None:
            return 0, ""
        pid = ctypes.c_int()
        self.quartz.AXUIElementGetPid(app, ctypes.byref(pid))
        title = ""
        window = attribute(app, b"AXFocusedWindow")
        if window is not None:
            text = attribute(window, b"AXTitle")
            if text is not None:
                buffer = ctypes.create_string_buffer(1024)
                if self.cf.CFStringGetCString(text, buffer, 1024, utf8):
                    title = buffer.value.decode("utf-8", "replace")
                self.cf.CFRelease(text)
            self.cf.CFRelease(window)
        self.cf.CFRelease(app)
        return pid.value, title


class MacTypist:
    """Types with Quartz Unicode key events; pastes with Cmd+V through pbcopy, restoring the text afterwards."""

    name = "macOS"

    def __init__(self, api: Any = None) -> None:
        self._api = api

    def _mac(self) -> Any:
        if self._api is None:
            if sys.platform != "darwin":
                raise InjectionError("the macOS typist runs only on macOS")
            self._api = MacApi()
        return self._api

    def problem(self) -> str | None:
        """Accessibility permission."""
        if sys.platform != "darwin" and self._api is None:
            return "this is not macOS"
        if not self._mac().trusted():
            return (
                "macOS does not let Perch type yet: allow it in System Settings → Privacy & Security → "
                "Accessibility, then start Perch again"
            )
        return None

    def focused_window(self) -> WindowRef | None:
        """The focused application (by process id) and its window title."""
        pid, title = self._mac().focused_application()
        return WindowRef(pid, title) if pid else None

    def type_text(self, text: str) -> None:
        """One key event per chunk of up to 20 UTF-16 units."""
        api = self._mac()
        for event in mac_unicode_chunks(text):
            if isinstance(event, int):
                api.post(keycode=event)
            else:
                api.post(units=event)

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type what fits the budget (20 characters travel in one event)."""
        events = len(mac_unicode_chunks(text))
        return "type" if TYPE_SETUP_S + KEYSTROKE_S * events <= time_budget(text) else "paste"

    def copy(self, text: str) -> None:
        """pbcopy."""
        injection._run(["pbcopy"], stdin=text)

    def paste(self, text: str) -> bool:
        """pbcopy, Cmd+V, wait PASTE_SETTLE_S, put the previous text back (other formats are not kept)."""
        try:
            previous: str | None = injection._run(["pbpaste"])
        except InjectionError:
            previous = None
        self.copy(text)
        try:
            self._mac().post(keycode=MAC_KEY_V, flags=MAC_FLAG_COMMAND)
            time.sleep(injection.PASTE_SETTLE_S)
        finally:
            if previous is not None:
                self.copy(previous)
        return True

    def close(self) -> None:
        """Nothing to undo."""
