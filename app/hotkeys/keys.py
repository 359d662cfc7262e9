"""Hotkeys as the settings write them ("Ctrl+Alt+Space", "Super+F9", "Pause") and as a neutral value.

The text follows Qt's portable key-sequence style: modifiers first, joined by `+`, then one key. Parsing ignores
case and accepts common aliases (Control, Meta, Win, Cmd, Escape, PageUp, …); `format_hotkey` writes the canonical
form back. `Ctrl` is the Control key everywhere, macOS included; `Super` is the Windows key, or Command on a Mac.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Modifier = Literal["ctrl", "alt", "shift", "super"]

MODIFIER_ORDER: tuple[Modifier, ...] = ("ctrl", "alt", "shift", "super")
MODIFIER_LABELS: dict[Modifier, str] = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "super": "Super"}
MODIFIER_ALIASES: dict[str, Modifier] = {
    "ctrl": "ctrl",
    "control": "ctrl",
    "ctl": "ctrl",
    "alt": "alt",
    "option": "alt",
    "opt": "alt",
    "shift": "shift",
    "super": "super",
    "meta": "super",
    "win": "super",
    "windows": "super",
    "cmd": "super",
    "command": "super",
    "logo": "super",
}

_NAMED_KEYS: dict[str, str] = {
    # canonical name: X11 / xkbcommon keysym name
    "Space": "space",
    "Tab": "Tab",
    "Return": "Return",
    "Enter": "KP_Enter",
    "Esc": "Escape",
    "Backspace": "BackSpace",
    "Ins": "Insert",
    "Del": "Delete",
    "Home": "Home",
    "End": "End",
    "PgUp": "Prior",
    "PgDown": "Next",
    "Left": "Left",
    "Up": "Up",
    "Right": "Right",
    "Down": "Down",
    "Pause": "Pause",
    "Print": "Print",
    "ScrollLock": "Scroll_Lock",
    "CapsLock": "Caps_Lock",
    "NumLock": "Num_Lock",
    "Menu": "Menu",
    "`": "grave",
    "-": "minus",
    "=": "equal",
    "[": "bracketleft",
    "]": "bracketright",
    "\\": "backslash",
    ";": "semicolon",
    "'": "apostrophe",
    ",": "comma",
    ".": "period",
    "/": "slash",
}

KEYSYM_NAMES: dict[str, str] = {
    **{chr(c): chr(c).lower() for c in range(ord("A"), ord("Z") + 1)},
    **{str(d): str(d) for d in range(10)},
    **{f"F{n}": f"F{n}" for n in range(1, 25)},
    **_NAMED_KEYS,
}
"""Every key a hotkey may use (canonical name) with its X11 keysym name, which xkbcommon and the freedesktop
shortcuts specification use too."""

KEY_ALIASES: dict[str, str] = {
    **{name.lower(): name for name in KEYSYM_NAMES},
    "spacebar": "Space",
    "escape": "Esc",
    "insert": "Ins",
    "delete": "Del",
    "pageup": "PgUp",
    "page_up": "PgUp",
    "prior": "PgUp",
    "pagedown": "PgDown",
    "pgdn": "PgDown",
    "page_down": "PgDown",
    "next": "PgDown",
    "printscreen": "Print",
    "prtsc": "Print",
    "sysreq": "Print",
    "break": "Pause",
    "scroll_lock": "ScrollLock",
    "caps_lock": "CapsLock",
    "num_lock": "NumLock",
    "apps": "Menu",
    "backtab": "Tab",
    "grave": "`",
    "minus": "-",
    "equal": "=",
    "comma": ",",
    "period": ".",
    "slash": "/",
    "backslash": "\\",
    "semicolon": ";",
    "apostrophe": "'",
    "bracketleft": "[",
    "bracketright": "]",
}


@dataclass(frozen=True)
class Hotkey:
    """One key with the modifiers that must be held with it, and no others."""

    key: str
    """The canonical key name: `Space`, `F9`, `D`, `Pause`, `/`, … (a key of `KEYSYM_NAMES`)."""
    modifiers: frozenset[Modifier] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.key not in KEYSYM_NAMES:
            raise ValueError(f"unknown key {self.key!r}")
        unknown = set(self.modifiers) - set(MODIFIER_ORDER)
        if unknown:
            raise ValueError(f"unknown modifier {sorted(unknown)[0]!r}")

    def __str__(self) -> str:
        return format_hotkey(self)

    @property
    def keysym_name(self) -> str:
        """The key's X11 (and xkbcommon) keysym name: `space`, `F9`, `d`."""
        return KEYSYM_NAMES[self.key]


def parse_hotkey(text: str) -> Hotkey | None:
    """The hotkey a settings string names, None for an empty string; ValueError names the part that is wrong."""
    spec = text.strip()
    if not spec:
        return None
    if "," in spec.rstrip(","):
        raise ValueError(f"{spec!r} is a key sequence; a hotkey is one key combination")
    parts = spec.split("+")
    if spec.endswith("++") or spec == "+":
        raise ValueError(f"{spec!r}: the + key cannot be a hotkey (it needs Shift on most layouts); use = instead")
    modifiers: set[Modifier] = set()
    key: str | None = None
    for raw in parts:
        part = raw.strip()
        if not part:
            raise ValueError(f"{spec!r} has an empty part between two + signs")
        modifier = MODIFIER_ALIASES.get(part.lower())
        if modifier is not None:
            if key is not None:
                raise ValueError(f"{spec!r}: the modifier {part!r} comes after the key {key!r}; put modifiers first")
            if modifier in modifiers:
                raise ValueError(f"{spec!r} names {MODIFIER_LABELS[modifier]} twice")
            modifiers.add(modifier)
            continue
        name = KEY_ALIASES.get(part.lower())
        if name is None:
            raise ValueError(f"{spec!r}: unknown key {part!r}")
        if key is not None:
            raise ValueError(f"{spec!r} has two keys, {key!r} and {part!r}; a hotkey has one key and modifiers")
        key = name
    if key is None:
        raise ValueError(f"{spec!r} has only modifiers; add a key such as Space or F9")
    return Hotkey(key, frozenset(modifiers))


def format_hotkey(hotkey: Hotkey | None) -> str:
    """The canonical settings string: `Ctrl+Alt+Shift+Super+Key` order; empty for None."""
    if hotkey is None:
        return ""
    return "+".join([*(MODIFIER_LABELS[m] for m in MODIFIER_ORDER if m in hotkey.modifiers), hotkey.key])
