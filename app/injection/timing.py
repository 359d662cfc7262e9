"""How long typing may take, how long a paste waits for the window, and what typing is expected to cost."""

from __future__ import annotations

BUDGET_FIXED_S = 0.100
BUDGET_PER_CHAR_S = 0.002
"""Typing may take at most BUDGET_FIXED_S + BUDGET_PER_CHAR_S per character; longer text is pasted."""

PASTE_TIMEOUT_S = 1.0
"""How long a paste waits for the target to fetch the text before the clipboard is put back anyway."""
PASTE_SETTLE_S = 0.3
"""Wayland, Windows and macOS do not say when a paste has been fetched: the clipboard comes back after this long."""
PASTE_QUIET_S = 0.03
"""After the target fetched the text, how long without a further request before the clipboard is put back."""
MODIFIER_WAIT_S = 0.5
"""How long typing waits for the person to let go of Ctrl, Alt, Shift or Super (the dictation hotkey)."""

# Cost model for `auto`, from typing into a Qt text field on Xvfb (see tests/test_injection.py).
TYPE_SETUP_S = 0.010
"""Reading the keymap and focus before typing."""
KEYSTROKE_S = 0.0028
"""One key press and release, up to the target having shown it: twice the 1.4 ms measured, for slower targets.
With the budget of 100 ms + 2 ms per character, `auto` types up to about 110 characters and pastes longer text."""
REMAP_S = 0.005
"""Mapping a spare keycode: every X client reloads its keymap."""


def time_budget(text: str) -> float:
    """The longest typing may take for this text, in seconds."""
    return BUDGET_FIXED_S + BUDGET_PER_CHAR_S * len(text)
