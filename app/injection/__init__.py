"""Typing dictated text into the window that has the keyboard focus.

A `Typist` knows one platform: which window has the focus, how to type text as keystrokes, and how to paste it
through the clipboard, putting the clipboard back afterwards. `deliver` applies the focus rule (text goes only
into the window where dictation started, otherwise to the clipboard) and picks typing or pasting;
`choose_typist` picks the typist for this desktop (on Wayland: wtype, ydotool, else the RemoteDesktop portal).

On X11 keystrokes go through the XTEST extension, like a real keyboard, so every client accepts them, whatever
its toolkit. Characters that the active layout has at its first two levels are typed with their own keys (and
Shift); any other character gets a spare keycode of its own, mapped to just that character at both levels,
which stays mapped for later use and is cleared by `close`. The clipboard is owned through python-xlib from a
thread of its own, so the paste knows when the target has fetched the text before the old contents go back.

Nothing here needs Qt. The Windows and macOS typists load their system libraries only when used.
"""

from __future__ import annotations

import shutil

from app.injection.choose import ClipboardOnlyTypist, choose_typist
from app.injection.delivery import deliver
from app.injection.macos import (
    APPLICATION_SERVICES,
    CORE_FOUNDATION,
    MAC_CHUNK_UNITS,
    MAC_FLAG_COMMAND,
    MAC_KEY_RETURN,
    MAC_KEY_TAB,
    MAC_KEY_V,
    MacApi,
    MacTypist,
    mac_unicode_chunks,
)
from app.injection.portal import PortalTypist, remote_desktop_missing, text_keysyms
from app.injection.programs import _run
from app.injection.spacing import NO_SPACE_AFTER, NO_SPACE_BEFORE, TypingMemory, leading_space
from app.injection.terminals import TERMINALS, TYPE_ONLY_TERMINALS, terminal_name
from app.injection.timing import (
    BUDGET_FIXED_S,
    BUDGET_PER_CHAR_S,
    KEYSTROKE_S,
    MODIFIER_WAIT_S,
    PASTE_QUIET_S,
    PASTE_SETTLE_S,
    PASTE_TIMEOUT_S,
    REMAP_S,
    TYPE_SETUP_S,
    time_budget,
)
from app.injection.types import DeliveryResult, InjectionError, Method, Outcome, Typist, WindowRef, normalize_newlines
from app.injection.wayland import WtypeTypist, YdotoolTypist, ydotool_socket
from app.injection.windows import (
    CF_UNICODETEXT,
    INPUT,
    INPUT_KEYBOARD,
    KEYBDINPUT,
    KEYEVENTF_KEYUP,
    KEYEVENTF_UNICODE,
    MOUSEINPUT,
    VK_CONTROL,
    VK_RETURN,
    VK_TAB,
    VK_V,
    WINDOWS_HANDLE_FORMATS,
    WindowsApi,
    WindowsTypist,
    windows_inputs,
    windows_shortcut,
)
from app.injection.x11_clipboard import READ_TIMEOUT_S, TEXT_TARGETS, X11Clipboard
from app.injection.x11_clipboard_formats import META_TARGETS, ClipboardSnapshot, ClipData, text_formats
from app.injection.x11_clipboard_owner import INCR_CHUNK, TRANSFER_TIMEOUT_S
from app.injection.x11_keymap import (
    HELD_MODIFIERS,
    KEYPAD_KEYSYMS,
    KEYSYM_ALT_L,
    KEYSYM_CAPS_LOCK,
    KEYSYM_CONTROL_L,
    KEYSYM_RETURN,
    KEYSYM_SHIFT_L,
    KEYSYM_TAB,
    KEYSYM_V,
    LOCK_MASK,
    SHIFT_MASK,
    char_keysym,
    keysym_char,
)
from app.injection.x11_typist import SPARE_KEYCODE_REUSE_S, X11Typist

__all__ = [
    "APPLICATION_SERVICES",
    "BUDGET_FIXED_S",
    "BUDGET_PER_CHAR_S",
    "CF_UNICODETEXT",
    "CORE_FOUNDATION",
    "HELD_MODIFIERS",
    "INCR_CHUNK",
    "INPUT",
    "INPUT_KEYBOARD",
    "KEYBDINPUT",
    "KEYEVENTF_KEYUP",
    "KEYEVENTF_UNICODE",
    "KEYPAD_KEYSYMS",
    "KEYSTROKE_S",
    "KEYSYM_ALT_L",
    "KEYSYM_CAPS_LOCK",
    "KEYSYM_CONTROL_L",
    "KEYSYM_RETURN",
    "KEYSYM_SHIFT_L",
    "KEYSYM_TAB",
    "KEYSYM_V",
    "LOCK_MASK",
    "MAC_CHUNK_UNITS",
    "MAC_FLAG_COMMAND",
    "MAC_KEY_RETURN",
    "MAC_KEY_TAB",
    "MAC_KEY_V",
    "META_TARGETS",
    "MODIFIER_WAIT_S",
    "MOUSEINPUT",
    "NO_SPACE_AFTER",
    "NO_SPACE_BEFORE",
    "PASTE_QUIET_S",
    "PASTE_SETTLE_S",
    "PASTE_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "REMAP_S",
    "SHIFT_MASK",
    "SPARE_KEYCODE_REUSE_S",
    "TERMINALS",
    "TEXT_TARGETS",
    "TRANSFER_TIMEOUT_S",
    "TYPE_ONLY_TERMINALS",
    "TYPE_SETUP_S",
    "VK_CONTROL",
    "VK_RETURN",
    "VK_TAB",
    "VK_V",
    "WINDOWS_HANDLE_FORMATS",
    "ClipData",
    "ClipboardOnlyTypist",
    "ClipboardSnapshot",
    "DeliveryResult",
    "InjectionError",
    "MacApi",
    "MacTypist",
    "Method",
    "Outcome",
    "PortalTypist",
    "TypingMemory",
    "Typist",
    "WindowRef",
    "WindowsApi",
    "WindowsTypist",
    "WtypeTypist",
    "X11Clipboard",
    "X11Typist",
    "YdotoolTypist",
    "_run",
    "char_keysym",
    "choose_typist",
    "deliver",
    "keysym_char",
    "leading_space",
    "mac_unicode_chunks",
    "normalize_newlines",
    "remote_desktop_missing",
    "shutil",
    "terminal_name",
    "text_formats",
    "text_keysyms",
    "time_budget",
    "windows_inputs",
    "windows_shortcut",
    "ydotool_socket",
]
