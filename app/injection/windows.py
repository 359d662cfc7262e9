"""Windows: typing with SendInput Unicode events, pasting with Ctrl+V and putting every clipboard format back."""

from __future__ import annotations

import contextlib
import ctypes
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from app import injection  # PASTE_SETTLE_S is looked up on the package, where tests replace it
from app.injection.timing import KEYSTROKE_S, TYPE_SETUP_S, time_budget
from app.injection.types import InjectionError, Method, WindowRef, normalize_newlines

INPUT_KEYBOARD = 1
KEYEVENTF_KEYUP = 0x0002
KEYEVENTF_UNICODE = 0x0004
VK_RETURN = 0x0D
VK_TAB = 0x09
VK_CONTROL = 0x11
VK_V = 0x56
CF_UNICODETEXT = 13
WINDOWS_HANDLE_FORMATS = frozenset({2, 3, 9, 14, 0x80, 0x82, 0x83, 0x8E, *range(0x300, 0x400)})
"""CF_BITMAP, CF_METAFILEPICT, CF_PALETTE, CF_ENHMETAFILE, the display and the GDI object formats: handles, not
memory (Windows derives the bitmap from CF_DIB, which is kept)."""


class KEYBDINPUT(ctypes.Structure):
    """winuser.h KEYBDINPUT."""

    _fields_ = (
        ("wVk", ctypes.c_uint16),
        ("wScan", ctypes.c_uint16),
        ("dwFlags", ctypes.c_uint32),
        ("time", ctypes.c_uint32),
        ("dwExtraInfo", ctypes.c_size_t),
    )


class MOUSEINPUT(ctypes.Structure):
    """winuser.h MOUSEINPUT (only for the size of the union)."""

    _fields_ = (
        ("dx", ctypes.c_int32),
        ("dy", ctypes.c_int32),
        ("mouseData", ctypes.c_uint32),
        ("dwFlags", ctypes.c_uint32),
        ("time", ctypes.c_uint32),
        ("dwExtraInfo", ctypes.c_size_t),
    )


class _INPUTUNION(ctypes.Union):
    _fields_ = (("ki", KEYBDINPUT), ("mi", MOUSEINPUT))


class INPUT(ctypes.Structure):
    """winuser.h INPUT."""

    _fields_ = (("type", ctypes.c_uint32), ("u", _INPUTUNION))


def _key_input(vk: int = 0, scan: int = 0, flags: int = 0) -> INPUT:
    item = INPUT(type=INPUT_KEYBOARD)
    item.u.ki = KEYBDINPUT(wVk=vk, wScan=scan, dwFlags=flags, time=0, dwExtraInfo=0)
    return item


def windows_inputs(text: str) -> list[INPUT]:
    """Key down and up per UTF-16 code unit (so a character beyond the BMP is its surrogate pair); Enter and Tab
    as their virtual keys."""
    inputs: list[INPUT] = []
    for char in normalize_newlines(text):
        if char in ("\n", "\t"):
            vk = VK_RETURN if char == "\n" else VK_TAB
            inputs += [_key_input(vk=vk), _key_input(vk=vk, flags=KEYEVENTF_KEYUP)]
            continue
        units = char.encode("utf-16-le")
        for index in range(0, len(units), 2):
            unit = int.from_bytes(units[index : index + 2], "little")
            inputs.append(_key_input(scan=unit, flags=KEYEVENTF_UNICODE))
            inputs.append(_key_input(scan=unit, flags=KEYEVENTF_UNICODE | KEYEVENTF_KEYUP))
    return inputs


def windows_shortcut(*vks: int) -> list[INPUT]:
    """Press the virtual keys in order and release them in reverse."""
    return [_key_input(vk=vk) for vk in vks] + [_key_input(vk=vk, flags=KEYEVENTF_KEYUP) for vk in reversed(vks)]


class WindowsApi:
    """The few user32 and kernel32 calls the Windows typist makes."""

    def __init__(self) -> None:
        from ctypes import wintypes

        loader = getattr(ctypes, "WinDLL")  # noqa: B009  (only on Windows)
        self.user32 = user32 = loader("user32", use_last_error=True)
        self.kernel32 = kernel32 = loader("kernel32", use_last_error=True)
        user32.SendInput.argtypes = [wintypes.UINT, ctypes.POINTER(INPUT), ctypes.c_int]
        user32.SendInput.restype = wintypes.UINT
        user32.GetForegroundWindow.restype = wintypes.HWND
        user32.GetWindowTextW.argtypes = [wintypes.HWND, wintypes.LPWSTR, ctypes.c_int]
        user32.GetClassNameW.argtypes = [wintypes.HWND, wintypes.LPWSTR, ctypes.c_int]
        user32.OpenClipboard.argtypes = [wintypes.HWND]
        user32.EnumClipboardFormats.argtypes = [wintypes.UINT]
        user32.EnumClipboardFormats.restype = wintypes.UINT
        user32.GetClipboardData.argtypes = [wintypes.UINT]
        user32.GetClipboardData.restype = wintypes.HANDLE
        user32.SetClipboardData.argtypes = [wintypes.UINT, wintypes.HANDLE]
        user32.SetClipboardData.restype = wintypes.HANDLE
        kernel32.GlobalAlloc.argtypes = [wintypes.UINT, ctypes.c_size_t]
        kernel32.GlobalAlloc.restype = wintypes.HGLOBAL
        kernel32.GlobalLock.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalLock.restype = ctypes.c_void_p
        kernel32.GlobalUnlock.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalSize.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalSize.restype = ctypes.c_size_t

    def send_input(self, inputs: Sequence[INPUT]) -> int:
        """SendInput; the number of events the system took."""
        array = (INPUT * len(inputs))(*inputs)
        return int(self.user32.SendInput(len(inputs), array, ctypes.sizeof(INPUT)))

    def foreground_window(self) -> tuple[int, str, str]:
        """(HWND, title, window class) of the foreground window; HWND 0 when none."""
        hwnd = self.user32.GetForegroundWindow() or 0
        title = ctypes.create_unicode_buffer(512)
        klass = ctypes.create_unicode_buffer(256)
        if hwnd:
            self.user32.GetWindowTextW(hwnd, title, 512)
            self.user32.GetClassNameW(hwnd, klass, 256)
        return int(hwnd), title.value, klass.value

    @contextlib.contextmanager
    def _open(self) -> Iterator[None]:
        for _ in range(50):  # another program may hold the clipboard for a moment
            if self.user32.OpenClipboard(None):
                break
            time.sleep(0.01)
        else:
            raise InjectionError("another program keeps the clipboard open")
        try:
            yield
        finally:
            self.user32.CloseClipboard()

    def read_clipboard(self) -> dict[int, bytes]:
        """Every memory-backed clipboard format, byte for byte."""
        formats: dict[int, bytes] = {}
        with self._open():
            fmt = 0
            while fmt := int(self.user32.EnumClipboardFormats(fmt)):
                if fmt in WINDOWS_HANDLE_FORMATS:
                    continue
                handle = self.user32.GetClipboardData(fmt)
                pointer = self.kernel32.GlobalLock(handle) if handle else None
                if not pointer:
                    continue
                try:
                    formats[fmt] = ctypes.string_at(pointer, self.kernel32.GlobalSize(handle))
                finally:
                    self.kernel32.GlobalUnlock(handle)
        return formats

    def write_clipboard(self, formats: Mapping[int, bytes]) -> None:
        """Empty the clipboard and put these formats on it."""
        gmem_moveable = 0x0002
        with self._open():
            self.user32.EmptyClipboard()
            for fmt, data in formats.items():
                handle = self.kernel32.GlobalAlloc(gmem_moveable, max(1, len(data)))
                pointer = self.kernel32.GlobalLock(handle)
                ctypes.memmove(pointer, data, len(data))
                self.kernel32.GlobalUnlock(handle)
                self.user32.SetClipboardData(fmt, handle)


class WindowsTypist:
    """Types with SendInput Unicode events; pastes with Ctrl+V, restoring the clipboard after PASTE_SETTLE_S."""

    name = "Windows"

    def __init__(self, api: Any = None) -> None:
        self._api = api

    def _win(self) -> Any:
        if self._api is None:
            if sys.platform != "win32":
                raise InjectionError("the Windows typist runs only on Windows")
            self._api = WindowsApi()
        return self._api

    def problem(self) -> str | None:
        """Only off Windows."""
        return None if sys.platform == "win32" or self._api is not None else "this is not Windows"

    def focused_window(self) -> WindowRef | None:
        """The foreground window."""
        hwnd, title, klass = self._win().foreground_window()
        return WindowRef(hwnd, title, (klass,)) if hwnd else None

    def type_text(self, text: str) -> None:
        """SendInput in batches; fewer events taken means a higher-privileged window blocked them."""
        inputs = windows_inputs(text)
        for start in range(0, len(inputs), 1000):
            batch = inputs[start : start + 1000]
            if self._win().send_input(batch) != len(batch):
                raise InjectionError(
                    "Windows blocked the keystrokes: the focused program probably runs as administrator "
                    "(run Perch as administrator too, or paste)"
                )

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type what fits the budget."""
        return "type" if TYPE_SETUP_S + KEYSTROKE_S * len(text) <= time_budget(text) else "paste"

    def copy(self, text: str) -> None:
        """CF_UNICODETEXT, NUL-terminated."""
        self._win().write_clipboard({CF_UNICODETEXT: (text + "\0").encode("utf-16-le")})

    def paste(self, text: str) -> bool:
        """Save every format, put the text up, Ctrl+V, wait PASTE_SETTLE_S, restore."""
        api = self._win()
        saved = api.read_clipboard()
        self.copy(normalize_newlines(text).replace("\n", "\r\n"))
        try:
            if api.send_input(windows_shortcut(VK_CONTROL, VK_V)) != 4:
                raise InjectionError("Windows blocked the paste shortcut")
            time.sleep(injection.PASTE_SETTLE_S)
        finally:
            api.write_clipboard(saved)
        return True

    def close(self) -> None:
        """Nothing to undo."""
