"""X11 keysyms and the core keyboard mapping: which key types a character, and which keycodes are free."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

KEYSYM_RETURN = 0xFF0D
KEYSYM_TAB = 0xFF09
KEYSYM_SHIFT_L = 0xFFE1
KEYSYM_CONTROL_L = 0xFFE3
KEYSYM_ALT_L = 0xFFE9
KEYSYM_CAPS_LOCK = 0xFFE5
KEYSYM_V = 0x76
KEYPAD_KEYSYMS = range(0xFF80, 0xFFBE)
"""KP_* keysyms: their second level depends on Num Lock, so they are never used for typing."""
SHIFT_MASK, LOCK_MASK = 0x01, 0x02
HELD_MODIFIERS = (0, 2, 3, 5, 6, 7)
"""Modifier map rows that change what a key does: Shift, Control, Mod1 (Alt), Mod3, Mod4 (Super), Mod5 (AltGr)."""


def char_keysym(char: str) -> int:
    """The keysym that stands for a character: Latin-1 directly, everything else through the Unicode range."""
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


def keysym_char(keysym: int) -> str | None:
    """The character a keysym types (legacy keysyms through libxkbcommon when it is there), else None."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if 0x01000100 <= keysym <= 0x0110FFFF:
        return chr(keysym - 0x01000000)
    if keysym in KEYPAD_KEYSYMS or keysym >= 0xFE00:  # keypad, dead keys, function and modifier keys
        return None
    code = _xkb_to_utf32()(keysym)
    return chr(code) if 0x20 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None


@functools.cache
def _xkb_to_utf32() -> Callable[[int], int]:
    name = ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0"
    try:
        function = ctypes.CDLL(name).xkb_keysym_to_utf32
    except (OSError, AttributeError):
        return lambda _keysym: 0
    function.argtypes = [ctypes.c_uint32]
    function.restype = ctypes.c_uint32
    return lambda keysym: int(function(keysym))


class _Keymap:
    """The core keyboard mapping read at one moment, seen from the active group."""

    def __init__(self, display: Any) -> None:
        info = display.display.info
        self.first = int(info.min_keycode)
        self.rows: list[Sequence[int]] = list(
            display.get_keyboard_mapping(self.first, int(info.max_keycode) - self.first + 1)
        )
        self.state = int(display.screen().root.query_pointer().mask)
        group = (self.state >> 13) & 3
        self.direct: dict[str, tuple[int, bool]] = {}
        """Character → (keycode, with Shift) at the first two levels of the active group."""
        self.keys: dict[int, int] = {}
        """Keysym → a keycode that has it at level 1 of any group (Shift, Control, Return, v, …)."""
        for keycode, row in self.items():
            for index, keysym in enumerate(row[:4]):
                if keysym and index % 2 == 0:
                    self.keys.setdefault(keysym, keycode)
            if group >= 2:  # groups 3 and 4 sit at layout-dependent places: use spare keycodes
                continue
            for level in (0, 1):
                index = 2 * group + level
                keysym = row[index] if index < len(row) else 0
                if not keysym or keysym in KEYPAD_KEYSYMS:
                    continue
                char = keysym_char(keysym)
                if char is not None and (char not in self.direct or (level == 0 and self.direct[char][1])):
                    self.direct[char] = (keycode, level == 1)

    def items(self) -> Iterator[tuple[int, Sequence[int]]]:
        """(keycode, keysyms) for every keycode."""
        for offset, row in enumerate(self.rows):
            yield self.first + offset, row

    def row(self, keycode: int) -> Sequence[int]:
        """The keysyms of one keycode."""
        offset = keycode - self.first
        return self.rows[offset] if 0 <= offset < len(self.rows) else ()

    def free(self) -> list[int]:
        """Keycodes with no keysym at all (8 is left alone: it stands for no key on evdev keyboards)."""
        return [keycode for keycode, row in self.items() if keycode > 8 and not any(row)]


@dataclass
class _Plan:
    """Key presses for a text and the spare keycodes to map first."""

    keys: list[tuple[int, bool]]
    """(keycode, with Shift) per character."""
    remaps: dict[int, int]
    """Keycode → the keysym to map to it before typing."""
    spare: dict[int, int]
    """The typist's keysym → spare keycode table once the remaps are done."""
