"""Terminals: which window classes name one, and which of them have no clipboard paste key."""

from __future__ import annotations

from collections.abc import Sequence

TERMINALS = frozenset(
    {
        "xterm",
        "uxterm",
        "urxvt",
        "rxvt",
        "gnome-terminal",
        "konsole",
        "alacritty",
        "kitty",
        "foot",
        "wezterm",
        "tilix",
        "terminator",
        "xfce4-terminal",
        "st",
    }
)
"""WM_CLASS names of terminals, which paste with Ctrl+Shift+V (Ctrl+V is a control character there)."""

TYPE_ONLY_TERMINALS = frozenset({"xterm", "uxterm", "urxvt", "rxvt"})
"""Terminals without Ctrl+Shift+V for the clipboard (xterm has no clipboard paste key by default, in urxvt
Ctrl+Shift starts Unicode code entry): `auto` types into them whatever the length."""


def terminal_name(wm_class: Sequence[str]) -> str | None:
    """The known terminal a WM_CLASS names (`gnome-terminal-server` → `gnome-terminal`), or None."""
    for value in wm_class:
        name = value.lower().rsplit(".", 1)[-1]  # org.wezfurlong.wezterm, com.gexperts.Tilix
        for terminal in TERMINALS:
            if name == terminal or name.startswith(terminal + "-"):
                return terminal
    return None
