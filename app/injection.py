"""Typing dictated text into the window that has the keyboard focus.

A `Typist` knows one platform: which window has the focus, how to type text as keystrokes, and how to paste it
through the clipboard, putting the clipboard back afterwards. `deliver` applies the focus rule (text goes only
into the window where dictation started, otherwise to the clipboard) and picks typing or pasting;
`choose_typist` picks the typist for this desktop.

On X11 keystrokes go through the XTEST extension, like a real keyboard, so every client accepts them, whatever
its toolkit. Characters that the active layout has at its first two levels are typed with their own keys (and
Shift); any other character gets a spare keycode of its own, mapped to just that character at both levels,
which stays mapped for later use and is cleared by `close`. The clipboard is owned through python-xlib from a
thread of its own, so the paste knows when the target has fetched the text before the old contents go back.

Nothing here needs Qt. The Windows and macOS typists load their system libraries only when used.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from app.settings import TypingStrategy

log = logging.getLogger("perch.injection")

T = TypeVar("T")

Method = Literal["type", "paste"]
Outcome = Literal["typed", "pasted", "copied", "nothing"]

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

NO_SPACE_BEFORE = frozenset(",.;:!?)]}…%’”»")
NO_SPACE_AFTER = frozenset("([{“‘«¿¡/")


class InjectionError(Exception):
    """Text could not be typed or pasted; the message says why and what to do."""


# What the app sees.


@dataclass(frozen=True)
class WindowRef:
    """A window, compared by its system id; the title and class only make messages readable."""

    id: int
    """X11 window id, Windows HWND, or the process id of the focused macOS application."""
    title: str = field(default="", compare=False)
    wm_class: tuple[str, ...] = field(default=(), compare=False)
    """X11 WM_CLASS (instance, class); the window class or application name elsewhere."""

    def __str__(self) -> str:
        name = self.title or (self.wm_class[-1] if self.wm_class else "")
        return f'"{name}"' if name else f"window {self.id:#x}"

    @property
    def is_terminal(self) -> bool:
        """Whether the window class names a known terminal."""
        return terminal_name(self.wm_class) is not None


def terminal_name(wm_class: Sequence[str]) -> str | None:
    """The known terminal a WM_CLASS names (`gnome-terminal-server` → `gnome-terminal`), or None."""
    for value in wm_class:
        name = value.lower().rsplit(".", 1)[-1]  # org.wezfurlong.wezterm, com.gexperts.Tilix
        for terminal in TERMINALS:
            if name == terminal or name.startswith(terminal + "-"):
                return terminal
    return None


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one final text."""

    method: Outcome
    """`typed` or `pasted` into the window, `copied` to the clipboard only, or `nothing` (empty text)."""
    seconds: float
    """How long the delivery took: for typing, until every keystroke was handed to the system (the window may
    take longer to show them); for pasting, until the window fetched the text and the clipboard was restored."""
    text: str = ""
    """The text as delivered, with any leading space that smart spacing added."""
    window: WindowRef | None = None
    """The window that had the focus at delivery."""
    reason: str = ""
    """Why the text was only copied, or a note about a paste that the window did not fetch."""
    confirmed: bool = True
    """False when a paste was sent but the window did not fetch the text within PASTE_TIMEOUT_S."""

    @property
    def delivered(self) -> bool:
        """Whether the text went into the window."""
        return self.method in ("typed", "pasted")

    def notice(self) -> str | None:
        """A line for a notification when the person has to paste the text themselves."""
        if self.method == "copied":
            return f"The text is on the clipboard ({self.reason}); paste it where you want it."
        if not self.confirmed:
            return f"The window did not take the pasted text ({self.reason}); it was not typed."
        return None


class Typist(Protocol):
    """Puts text into the focused window of one kind of desktop."""

    name: str

    def problem(self) -> str | None:
        """Why this typist cannot work here, with what to do; None when it can."""

    def focused_window(self) -> WindowRef | None:
        """The window that has the keyboard focus, if this platform can tell."""

    def type_text(self, text: str) -> None:
        """Type the text as keystrokes into the focused window; raises InjectionError."""

    def paste(self, text: str) -> bool:
        """Paste the text into the focused window and put the clipboard back; whether the window fetched it."""

    def copy(self, text: str) -> None:
        """Leave the text on the clipboard."""

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type or paste, for the `auto` strategy: typing when it fits the time budget."""

    def close(self) -> None:
        """Undo lasting changes (spare keycodes) and hand the clipboard over; the typist stays usable."""


def time_budget(text: str) -> float:
    """The longest typing may take for this text, in seconds."""
    return BUDGET_FIXED_S + BUDGET_PER_CHAR_S * len(text)


# Smart spacing.


def _is_cjk(char: str) -> bool:
    """Scripts written without spaces between words (Han, kana, Hangul syllables are spaced, so not here)."""
    name = unicodedata.name(char, "")
    return name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "FULLWIDTH", "THAI"))


def leading_space(previous_text_in_field: str | None, text: str) -> str:
    """A space when `text` continues what was typed last into the same field, else ""."""
    previous = previous_text_in_field
    if not previous or not text:
        return ""
    last, first = previous[-1], text[0]
    if last.isspace() or first.isspace():
        return ""
    if first in NO_SPACE_BEFORE or last in NO_SPACE_AFTER:
        return ""
    if _is_cjk(last) and _is_cjk(first):
        return ""
    return " "


class TypingMemory:
    """What was typed last, into which window and when: enough to decide on a leading space."""

    def __init__(self, max_age_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._last: tuple[WindowRef, str, float] | None = None

    def previous(self, window: WindowRef | None) -> str | None:
        """The text typed last into this window, if that was recent; None otherwise."""
        if window is None or self._last is None:
            return None
        last_window, text, when = self._last
        if last_window != window or self._clock() - when > self.max_age_s:
            return None
        return text

    def remember(self, window: WindowRef | None, text: str) -> None:
        """Note text that went into a window (None forgets)."""
        self._last = (window, text, self._clock()) if window is not None and text else None

    def forget(self) -> None:
        """Start afresh, as after the person clicked somewhere."""
        self._last = None


# The focus rule.


def deliver(
    typist: Typist,
    text: str,
    started_in: WindowRef | None,
    any_focus: bool,
    *,
    strategy: TypingStrategy = "auto",
    memory: TypingMemory | None = None,
) -> DeliveryResult:
    """Type or paste `text` into the focused window if it is the one dictation started in, else copy it.

    `started_in` is `typist.focused_window()` from when dictation started (None when unknown); `any_focus`
    types into whatever has the focus now. With `memory` (smart spacing) a space is put before text that
    continues what was typed last into the same window. Never raises for a failed delivery: the text is
    copied and the result says why.
    """
    start = time.perf_counter()

    def result(
        method: Outcome, out: str, window: WindowRef | None, reason: str = "", ok: bool = True
    ) -> DeliveryResult:
        return DeliveryResult(method, time.perf_counter() - start, out, window, reason, ok)

    def copied(window: WindowRef | None, reason: str) -> DeliveryResult:
        try:
            typist.copy(text)
        except Exception as exc:
            reason = f"{reason}; copying failed too: {exc}"
            return result("nothing", text, window, reason)
        return result("copied", text, window, reason)

    if not text:
        return result("nothing", text, None)
    if strategy == "clipboard":
        return copied(None, "typing is set to clipboard only")
    try:
        problem = typist.problem()
    except Exception as exc:
        problem = str(exc)
    if problem is not None:
        return copied(None, problem)
    try:
        window = typist.focused_window()
    except Exception as exc:
        return copied(None, str(exc))
    if not any_focus and started_in is not None and window != started_in:
        where = f"to {window}" if window is not None else "away"
        return copied(window, f"the focus moved from {started_in} {where} during dictation")
    out = leading_space(memory.previous(window), text) + text if memory is not None else text
    method: Method = strategy if strategy in ("type", "paste") else typist.auto_method(out, window)
    try:
        if method == "type":
            try:
                typist.type_text(out)
                outcome = result("typed", out, window)
            except InjectionError as exc:
                log.warning("could not type into %s (%s); pasting instead", window, exc)
                method = "paste"
        if method == "paste":
            taken = typist.paste(out)
            note = "" if taken else f"it did not fetch the clipboard within {PASTE_TIMEOUT_S:g} s"
            outcome = result("pasted", out, window, note, taken)
    except InjectionError as exc:
        log.warning("could not paste into %s: %s", window, exc)
        return copied(window, str(exc))
    except Exception as exc:  # a failure of the typist itself must not lose the text
        log.exception("delivering text into %s failed", window)
        return copied(window, f"typing failed: {exc}")
    if memory is not None:
        memory.remember(window, out)
    return outcome


# Choosing a typist.


def choose_typist(
    strategy: str = "auto",
    copy: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> Typist:
    """The typist for this desktop; `copy` (a Qt clipboard setter, say) serves the clipboard-only fallback."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if strategy == "clipboard":
        return ClipboardOnlyTypist("typing is set to clipboard only", copy, env)
    if platform == "win32":
        return WindowsTypist()
    if platform == "darwin":
        return MacTypist()
    if env.get("WAYLAND_DISPLAY"):
        if shutil.which("wtype"):
            return WtypeTypist()
        if shutil.which("ydotool") and ydotool_socket(env) is not None:
            return YdotoolTypist()
        return ClipboardOnlyTypist(
            "typing into Wayland windows needs wtype (Sway, Hyprland and other wlroots desktops) or ydotool with "
            "its ydotoold daemon running (GNOME, KDE); install one of them",
            copy,
            env,
        )
    if env.get("DISPLAY"):
        return X11Typist(env["DISPLAY"])
    return ClipboardOnlyTypist("there is no X11 or Wayland display to type into", copy, env)


class ClipboardOnlyTypist:
    """Only copies: the fallback where no way of typing is available."""

    name = "clipboard only"

    def __init__(
        self, reason: str, copy: Callable[[str], None] | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self.reason = reason
        self._copy = copy
        self._env = dict(os.environ if environ is None else environ)
        self._x11: X11Clipboard | None = None

    def problem(self) -> str | None:
        """Always the reason this typist was chosen."""
        return self.reason

    def focused_window(self) -> WindowRef | None:
        """Unknown."""
        return None

    def type_text(self, text: str) -> None:
        """Cannot type."""
        raise InjectionError(self.reason)

    def paste(self, text: str) -> bool:
        """Cannot paste."""
        raise InjectionError(self.reason)

    def copy(self, text: str) -> None:
        """Through the given function, else wl-copy on Wayland, else the X11 CLIPBOARD."""
        if self._copy is not None:
            self._copy(text)
        elif self._env.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
            _wl_copy(text.encode())
        elif self._env.get("DISPLAY"):
            if self._x11 is None:
                self._x11 = X11Clipboard(self._env["DISPLAY"])
            self._x11.offer(text_formats(normalize_newlines(text)))
        else:
            raise InjectionError("no clipboard is available")

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Irrelevant: nothing can be typed."""
        return "paste"

    def close(self) -> None:
        """Hand an X11 clipboard over to a clipboard manager."""
        if self._x11 is not None:
            self._x11.close()


def _run(command: list[str], stdin: str | None = None, timeout: float = 5.0) -> str:
    """Run a helper program; its failure becomes an InjectionError with its message."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InjectionError(f"{command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise InjectionError(f"{command[0]} failed: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


def _wl_copy(data: bytes, mime: str | None = None) -> None:
    """Offer data with wl-copy, which forks a server of its own that serves it until something else is copied."""
    command = ["wl-copy", *(["--type", mime] if mime else [])]
    try:
        subprocess.run(command, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InjectionError(f"wl-copy failed: {exc}") from exc


# X11: keystrokes through XTEST.

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
SPARE_KEYCODE_REUSE_S = 2.0
"""A spare keycode is remapped to another character only if it was last typed longer ago than this."""

# Cost model for `auto`, from typing into a Qt text field on Xvfb (see tests/test_injection.py).
TYPE_SETUP_S = 0.010
"""Reading the keymap and focus before typing."""
KEYSTROKE_S = 0.0028
"""One key press and release, up to the target having shown it: twice the 1.4 ms measured, for slower targets.
With the budget of 100 ms + 2 ms per character, `auto` types up to about 110 characters and pastes longer text."""
REMAP_S = 0.005
"""Mapping a spare keycode: every X client reloads its keymap."""


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


def normalize_newlines(text: str) -> str:
    """CR LF and CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


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


class X11Typist:
    """Types through XTEST and pastes through the CLIPBOARD selection on an X11 display."""

    name = "X11"

    def __init__(self, display: str | None = None, clipboard: X11Clipboard | None = None) -> None:
        self.display_name = display if display is not None else os.environ.get("DISPLAY", "")
        self.clipboard = clipboard if clipboard is not None else X11Clipboard(self.display_name)
        self.paste_timeout_s = PASTE_TIMEOUT_S
        self._conn: Any = None
        self._lock = threading.RLock()
        self._spare: dict[int, int] = {}
        """Keysym → the spare keycode this typist mapped to it."""
        self._spare_used: dict[int, float] = {}
        """Spare keycode → when it was last typed."""

    # Connection.

    def problem(self) -> str | None:
        """No display, no python-xlib, no XTEST: each with what to do."""
        if not self.display_name:
            return "no X11 display is set (DISPLAY is empty)"
        try:
            display = self._display()
        except InjectionError as exc:
            return str(exc)
        if not display.has_extension("XTEST"):
            return f"the X server on {self.display_name} lacks the XTEST extension needed to type"
        return None

    def _display(self) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = _open_display(self.display_name)
                self._conn.set_error_handler(_log_x_error)
            while self._conn.pending_events():  # MappingNotify reaches every client; nothing here reads events
                self._conn.next_event()
            return self._conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """The connection, under the lock; X errors become InjectionError and a broken connection is dropped."""
        import Xlib.error

        with self._lock:
            display = self._display()
            try:
                yield display
            except (Xlib.error.ConnectionClosedError, OSError) as exc:
                self._conn = None
                raise InjectionError(f"the connection to the X11 display {self.display_name} broke: {exc}") from exc
            except Xlib.error.XError as exc:
                raise InjectionError(f"the X server refused a request: {exc}") from exc

    def close(self) -> None:
        """Clear the spare keycodes, hand the clipboard to a clipboard manager, close the connections."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    keymap = _Keymap(self._conn)
                    for keysym, keycode in self._spare.items():
                        if tuple(keymap.row(keycode)[:2]) == (keysym, keysym):
                            self._conn.change_keyboard_mapping(keycode, [[0, 0]])
                    self._conn.sync()
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            self._spare.clear()
            self._spare_used.clear()
        self.clipboard.close()

    # Focus.

    def focused_window(self) -> WindowRef | None:
        """The top-level client window (the one with WM_STATE) that holds the input focus."""
        import Xlib.error

        with self._session() as display:
            try:
                focus = display.get_input_focus().focus
                if isinstance(focus, int) or focus.id in (0, 1):  # None or PointerRoot
                    return None
                window = _client_window(display, focus)
                return WindowRef(window.id, _window_title(display, window), _wm_class(window))
            except Xlib.error.XError as exc:
                log.debug("focus lookup failed: %s", exc)
                return None

    # Typing.

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Paste text with line breaks or tabs (keys that act in many windows) and text too slow to type."""
        if window is not None and terminal_name(window.wm_class) in TYPE_ONLY_TERMINALS:
            return "type"
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            return "paste"
        return "type" if self.typing_time(text) <= time_budget(text) else "paste"

    def typing_time(self, text: str) -> float:
        """The expected time to type the text (inf when it cannot be typed), from the cost model above."""
        try:
            with self._session() as display:
                plan = self._plan(_Keymap(display), normalize_newlines(text))
        except InjectionError:
            return float("inf")
        return TYPE_SETUP_S + KEYSTROKE_S * len(plan.keys) + REMAP_S * len(plan.remaps)

    def type_text(self, text: str) -> None:
        """Press and release a key per character; spare keycodes stand in for characters the layout lacks."""
        from Xlib import X
        from Xlib.ext import xtest

        text = normalize_newlines(text)
        with self._session() as display:
            self._wait_for_modifiers(display)
            keymap = _Keymap(display)
            plan = self._plan(keymap, text)
            self._apply(display, plan)
            shift = keymap.keys.get(KEYSYM_SHIFT_L)
            caps = keymap.keys.get(KEYSYM_CAPS_LOCK) if keymap.state & LOCK_MASK else None
            invert = bool(keymap.state & LOCK_MASK) and caps is None
            if caps is not None:  # Caps Lock off while typing, back on afterwards
                _tap(display, caps)
            shifted_now = False
            for index, (keycode, level2) in enumerate(plan.keys):
                shifted = not level2 if invert and text[index].lower() != text[index].upper() else level2
                if shifted != shifted_now and shift is not None:
                    xtest.fake_input(display, X.KeyPress if shifted else X.KeyRelease, shift)
                    shifted_now = shifted
                _tap(display, keycode)
                if index % 256 == 255:
                    display.flush()
            if shifted_now and shift is not None:
                xtest.fake_input(display, X.KeyRelease, shift)
            if caps is not None:
                _tap(display, caps)
            display.sync()

    def _plan(self, keymap: _Keymap, text: str) -> _Plan:
        """The keys for each character, with spare keycodes for the rest; raises if there are too few."""
        spare = {
            keysym: keycode
            for keysym, keycode in self._spare.items()
            if tuple(keymap.row(keycode)[:2]) == (keysym, keysym)  # still mapped as we left it
        }
        free = keymap.free()
        keys: list[tuple[int, bool]] = []
        remaps: dict[int, int] = {}
        for char in text:
            if char in ("\n", "\t"):
                keysym = KEYSYM_RETURN if char == "\n" else KEYSYM_TAB
                if keysym in keymap.keys:
                    keys.append((keymap.keys[keysym], False))
                    continue
            elif char in keymap.direct:
                keys.append(keymap.direct[char])
                continue
            else:
                keysym = char_keysym(char)
            keycode = spare.get(keysym)
            if keycode is None:
                keycode = self._spare_keycode(free, spare, {code for code, _ in keys})
                spare = {sym: code for sym, code in spare.items() if code != keycode}
                spare[keysym] = keycode
                remaps[keycode] = keysym
            keys.append((keycode, False))
        return _Plan(keys, remaps, spare)

    def _spare_keycode(self, free: list[int], spare: dict[int, int], needed: set[int]) -> int:
        """An unused keycode, else the spare keycode typed longest ago (not within SPARE_KEYCODE_REUSE_S)."""
        if free:
            return free.pop(0)
        now = time.monotonic()
        candidates = [
            (self._spare_used.get(keycode, 0.0), keycode)
            for keycode in spare.values()
            if keycode not in needed and now - self._spare_used.get(keycode, 0.0) > SPARE_KEYCODE_REUSE_S
        ]
        if not candidates:
            raise InjectionError("the keyboard has too few spare keys for the characters of this text")
        return min(candidates)[1]

    def _apply(self, display: Any, plan: _Plan) -> None:
        """Map the plan's spare keycodes and remember them."""
        for keycode, keysym in plan.remaps.items():
            # The keysym at both levels: a lone Latin-1 letter would become a lower/upper pair (Ä typing ä).
            display.change_keyboard_mapping(keycode, [[keysym, keysym]])
        self._spare = plan.spare
        now = time.monotonic()
        spare_codes = set(plan.spare.values())
        self._spare_used = {code: used for code, used in self._spare_used.items() if code in spare_codes}
        for keycode, _ in plan.keys:
            if keycode in spare_codes:
                self._spare_used[keycode] = now

    def _wait_for_modifiers(self, display: Any) -> None:
        """Wait for the person to let go of modifier keys; release any still held after MODIFIER_WAIT_S."""
        from Xlib import X
        from Xlib.ext import xtest

        rows = display.get_modifier_mapping()
        keycodes = {int(code) for row in HELD_MODIFIERS for code in rows[row] if code}
        deadline = time.monotonic() + MODIFIER_WAIT_S
        while True:
            pressed = display.query_keymap()
            held = [code for code in keycodes if pressed[code >> 3] & (1 << (code & 7))]
            if not held:
                return
            if time.monotonic() >= deadline:
                log.info("releasing modifier keys still held before typing: %s", held)
                for code in held:
                    xtest.fake_input(display, X.KeyRelease, code)
                display.sync()
                return
            time.sleep(0.01)

    # Pasting.

    def paste_keys(self, window: WindowRef | None) -> tuple[int, ...]:
        """Keysyms of the paste shortcut: Ctrl+Shift+V in terminals (Ctrl+Alt+V in urxvt), Ctrl+V elsewhere."""
        terminal = terminal_name(window.wm_class) if window is not None else None
        if terminal in ("urxvt", "rxvt"):
            return (KEYSYM_CONTROL_L, KEYSYM_ALT_L, KEYSYM_V)
        if terminal is not None:
            return (KEYSYM_CONTROL_L, KEYSYM_SHIFT_L, KEYSYM_V)
        return (KEYSYM_CONTROL_L, KEYSYM_V)

    def paste(self, text: str) -> bool:
        """Offer the text on the CLIPBOARD, press the paste shortcut, then restore what was there before."""
        keys = self.paste_keys(self.focused_window())
        snapshot = self.clipboard.snapshot()
        if not snapshot.complete:
            log.warning("the clipboard could be read only in part; unreadable formats will not come back")
        generation = self.clipboard.offer(text_formats(normalize_newlines(text)))
        try:
            self._press_shortcut(keys)
            return self.clipboard.wait_fetched(generation, self.paste_timeout_s)
        finally:
            self.clipboard.restore(snapshot, generation)

    def copy(self, text: str) -> None:
        """Own the CLIPBOARD with the text until something else is copied."""
        self.clipboard.offer(text_formats(normalize_newlines(text)))

    def _press_shortcut(self, keysyms: tuple[int, ...]) -> None:
        """Press the keys in order, release them in reverse; a letter missing from the layout gets a spare key."""
        from Xlib import X
        from Xlib.ext import xtest

        with self._session() as display:
            self._wait_for_modifiers(display)
            keymap = _Keymap(display)
            keycodes = []
            for keysym in keysyms:
                keycode = keymap.keys.get(keysym)
                if keycode is None:
                    char = keysym_char(keysym)
                    if char is None:
                        raise InjectionError(f"the keyboard layout has no key for keysym {keysym:#x}")
                    plan = self._plan(keymap, char)
                    self._apply(display, plan)
                    keycode = plan.keys[0][0]
                keycodes.append(keycode)
            for keycode in keycodes:
                xtest.fake_input(display, X.KeyPress, keycode)
            for keycode in reversed(keycodes):
                xtest.fake_input(display, X.KeyRelease, keycode)
            display.sync()


def _tap(display: Any, keycode: int) -> None:
    from Xlib import X
    from Xlib.ext import xtest

    xtest.fake_input(display, X.KeyPress, keycode)
    xtest.fake_input(display, X.KeyRelease, keycode)


def _log_x_error(error: Any, request: Any) -> None:
    log.debug("X error: %s", error)


def _has_property(display: Any, window: Any, name: str) -> bool:
    from Xlib import X

    return window.get_property(display.intern_atom(name), X.AnyPropertyType, 0, 0) is not None


def _client_window(display: Any, window: Any) -> Any:
    """The window itself or its nearest ancestor with WM_STATE; else a WM_STATE child of the top-level frame."""
    top = window
    current = window
    while True:
        if _has_property(display, current, "WM_STATE"):
            return current
        tree = current.query_tree()
        parent = tree.parent
        if not parent or isinstance(parent, int) or parent.id == tree.root.id:
            top = current
            break
        current = parent
    found = _find_client_below(display, top, depth=3)
    return found if found is not None else top


def _find_client_below(display: Any, window: Any, depth: int) -> Any:
    if depth == 0:
        return None
    for child in window.query_tree().children:
        if _has_property(display, child, "WM_STATE"):
            return child
    for child in window.query_tree().children:
        found = _find_client_below(display, child, depth - 1)
        if found is not None:
            return found
    return None


def _window_title(display: Any, window: Any) -> str:
    from Xlib import X, Xatom

    prop = window.get_property(display.intern_atom("_NET_WM_NAME"), X.AnyPropertyType, 0, 1024)
    if prop is not None and prop.format == 8:
        return bytes(prop.value).decode("utf-8", "replace")
    prop = window.get_property(Xatom.WM_NAME, X.AnyPropertyType, 0, 1024)
    if prop is not None and prop.format == 8:
        return bytes(prop.value).decode("latin-1")
    return ""


def _wm_class(window: Any) -> tuple[str, ...]:
    from Xlib import X, Xatom

    prop = window.get_property(Xatom.WM_CLASS, X.AnyPropertyType, 0, 1024)
    if prop is None or prop.format != 8:
        return ()
    return tuple(part.decode("latin-1") for part in bytes(prop.value).split(b"\0") if part)


# X11: the CLIPBOARD selection.


@dataclass(frozen=True)
class ClipData:
    """One clipboard format as the X server carries it: the property type, item size and raw bytes."""

    type: str
    format: int
    data: bytes


META_TARGETS = frozenset(
    {"TARGETS", "TIMESTAMP", "MULTIPLE", "SAVE_TARGETS", "DELETE", "INSERT_SELECTION", "INSERT_PROPERTY"}
)
"""Targets that describe the selection or act on it, rather than carry its contents."""


@dataclass(frozen=True)
class ClipboardSnapshot:
    """Every format on the clipboard at one moment, byte for byte."""

    formats: dict[str, ClipData]
    """Target name (`image/png`, `UTF8_STRING`, …) → its data; empty when nothing was on the clipboard."""
    complete: bool = True
    """False when some advertised formats could not be read."""

    def text(self) -> str | None:
        """The UTF-8 text, if any."""
        for target in ("UTF8_STRING", "text/plain;charset=utf-8"):
            if target in self.formats:
                return self.formats[target].data.decode("utf-8", "replace")
        return None


def text_formats(text: str) -> dict[str, ClipData]:
    """The text in the formats X11 programs ask for (STRING only when it fits Latin-1)."""
    utf8 = text.encode()
    formats = {
        "UTF8_STRING": ClipData("UTF8_STRING", 8, utf8),
        "text/plain;charset=utf-8": ClipData("text/plain;charset=utf-8", 8, utf8),
        "TEXT": ClipData("UTF8_STRING", 8, utf8),
        "text/plain": ClipData("text/plain", 8, utf8),
    }
    with contextlib.suppress(UnicodeEncodeError):
        formats["STRING"] = ClipData("STRING", 8, text.encode("latin-1"))
    return formats


READ_TIMEOUT_S = 1.0
"""The longest a paste spends saving the clipboard; formats not read by then are not restored."""
INCR_CHUNK = 65536
"""Bytes per step when a large format is sent incrementally (ICCCM INCR)."""
TRANSFER_TIMEOUT_S = 5.0
"""An incremental transfer whose requestor stops reading is dropped after this long."""


@dataclass
class _Transfer:
    window: Any
    prop: int
    type: int
    format: int
    data: bytes
    offset: int
    deadline: float


class X11Clipboard:
    """Owns and reads the CLIPBOARD selection; a thread of its own answers the programs that paste."""

    def __init__(self, display: str | None = None, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.display_name = display if display is not None else os.environ.get("DISPLAY", "")
        self.read_timeout_s = read_timeout_s
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake: tuple[int, int] | None = None
        self._stop = False
        self._changed = threading.Condition()
        # Owner thread state (read elsewhere only under `_changed`).
        self._conn: Any = None
        self._window: Any = None
        self._atoms: dict[str, int] = {}
        self._owned: dict[int, ClipData] | None = None
        self._owned_time = 0
        self._generation = 0
        self._served: list[str] = []
        self._last_request = 0.0
        self._transfers: dict[tuple[int, int], _Transfer] = {}
        # Reading, from the caller's thread.
        self._read_lock = threading.Lock()
        self._reader: Any = None
        self._reader_window: Any = None

    # Public side.

    def snapshot(self) -> ClipboardSnapshot:
        """Read every format on the CLIPBOARD (within read_timeout_s)."""
        from Xlib import X

        self._ensure_thread()
        with self._read_lock:
            display, window = self._reader_conn()
            clipboard = display.intern_atom("CLIPBOARD")
            owner = display.get_selection_owner(clipboard)
            if owner == X.NONE or (isinstance(owner, int) and owner == 0):
                return ClipboardSnapshot({})
            owner_id = owner if isinstance(owner, int) else owner.id
            if owner_id == self._window_id():
                return self._call(self._owned_snapshot)
            deadline = time.monotonic() + self.read_timeout_s
            targets = self._convert(display, window, display.intern_atom("TARGETS"), deadline)
            if targets is None or targets.format != 32:
                self._reader.close()
                self._reader = self._reader_window = None
                return ClipboardSnapshot({}, complete=False)
            formats: dict[str, ClipData] = {}
            complete = True
            atoms = memoryview(targets.data).cast("I") if len(targets.data) % 4 == 0 else memoryview(b"").cast("I")
            names = {display.get_atom_name(atom): atom for atom in dict.fromkeys(atoms)}
            for name in sorted(names, key=_read_order):  # the likeliest originals first, in case time runs out
                if name in META_TARGETS:
                    continue
                data = self._convert(display, window, names[name], deadline)
                if data is None:
                    log.debug("clipboard format %s could not be read", name)
                    complete = False
                else:
                    formats[name] = data
            if not complete:  # an abandoned INCR transfer could still write into this window's property
                self._reader.close()
                self._reader = self._reader_window = None
            return ClipboardSnapshot(formats, complete)

    def offer(self, formats: Mapping[str, ClipData]) -> int:
        """Own the CLIPBOARD with these formats; the returned generation identifies this ownership."""
        self._ensure_thread()
        return self._call(lambda: self._own(dict(formats)))

    def wait_fetched(self, generation: int, timeout: float) -> bool:
        """Wait until a program has fetched a format of this ownership and asked nothing more for PASTE_QUIET_S."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if self._generation != generation:
                    return any(target not in META_TARGETS for target in self._served)
                fetched = any(target not in META_TARGETS for target in self._served)
                if fetched and now - self._last_request >= PASTE_QUIET_S:
                    return True
                if not fetched and (now >= deadline or self._owned is None):
                    return False
                wait = PASTE_QUIET_S - (now - self._last_request) if fetched else deadline - now
                self._changed.wait(max(0.001, wait))

    def restore(self, snapshot: ClipboardSnapshot, generation: int) -> None:
        """Put a snapshot back, unless something else has been copied since `generation` was offered."""

        def put_back() -> None:
            if self._generation != generation or self._owned is None:
                return
            if snapshot.formats:
                self._own(dict(snapshot.formats))
            else:
                self._disown()

        self._call(put_back)

    def served(self) -> list[str]:
        """The targets fetched from the current ownership so far (for tests and logs)."""
        with self._changed:
            return list(self._served)

    def close(self) -> None:
        """Offer the clipboard to a clipboard manager (so it outlives Perch), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._hand_to_manager, timeout=3.0)
        self._stop = True
        self._poke()
        thread.join(timeout=3)
        with self._start_lock:
            self._thread = None
            if self._wake is not None:
                for fd in self._wake:
                    os.close(fd)
                self._wake = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # Reading (caller's thread).

    def _reader_conn(self) -> tuple[Any, Any]:
        if self._reader is None:
            from Xlib import X

            display = _open_display(self.display_name)
            root = display.screen().root
            window = root.create_window(-10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask)
            self._reader, self._reader_window = display, window
        return self._reader, self._reader_window

    def _convert(self, display: Any, window: Any, target: int, deadline: float) -> ClipData | None:
        """Ask the owner for one target; follow INCR transfers; None on refusal or timeout."""
        from Xlib import X

        clipboard = display.intern_atom("CLIPBOARD")
        prop = display.intern_atom("PERCH_CLIPBOARD")
        incr = display.intern_atom("INCR")
        window.delete_property(prop)
        window.convert_selection(clipboard, target, prop, X.CurrentTime)
        display.flush()
        event = _wait_event(
            display,
            lambda e: e.type == X.SelectionNotify and e.target == target and e.selection == clipboard,
            deadline,
        )
        if event is None or event.property == X.NONE:
            return None
        reply = window.get_property(prop, X.AnyPropertyType, 0, 0x1FFFFFFF, delete=True)
        if reply is None:
            return None
        if reply.property_type != incr:
            return ClipData(display.get_atom_name(reply.property_type), reply.format, _raw(reply.value))
        display.flush()  # deleting the INCR property asked for the first chunk
        chunks: list[bytes] = []
        kind, size = 0, 8
        while True:
            event = _wait_event(
                display,
                lambda e: e.type == X.PropertyNotify and e.atom == prop and e.state == X.PropertyNewValue,
                deadline,
            )
            if event is None:
                return None
            reply = window.get_property(prop, X.AnyPropertyType, 0, 0x1FFFFFFF, delete=True)
            display.flush()
            if reply is None:
                continue
            data = _raw(reply.value)
            if not data:
                return ClipData(display.get_atom_name(kind or reply.property_type), size, b"".join(chunks))
            kind, size = reply.property_type, reply.format
            chunks.append(data)

    # Owner thread.

    def _window_id(self) -> int | None:
        with self._changed:
            return None if self._window is None else int(self._window.id)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            from Xlib import X

            display = _open_display(self.display_name)
            display.set_error_handler(_log_x_error)
            root = display.screen().root
            window = root.create_window(-10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask)
            names = ("CLIPBOARD", "TARGETS", "TIMESTAMP", "MULTIPLE", "INCR", "ATOM", "INTEGER", "PERCH_TIME")
            with self._changed:
                self._conn, self._window = display, window
                self._atoms = {name: display.intern_atom(name) for name in names}
            display.flush()
            self._stop = False
            self._wake = os.pipe()
            self._thread = threading.Thread(target=self._loop, name="perch-clipboard", daemon=True)
            self._thread.start()

    def _call(self, function: Callable[[], T], timeout: float = 5.0) -> T:
        if threading.current_thread() is self._thread:
            return function()
        future: Future[T] = Future()
        self._calls.put((function, future))
        self._poke()
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            raise InjectionError("the clipboard thread did not answer") from exc

    def _poke(self) -> None:
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"\0")

    def _loop(self) -> None:
        display = self._conn
        wake = self._wake
        assert wake is not None
        try:
            while not self._stop:
                while True:
                    try:
                        function, future = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(function())
                        except BaseException as exc:
                            future.set_exception(exc)
                while display.pending_events():
                    self._handle(display.next_event())
                display.flush()
                self._expire_transfers()
                ready, _, _ = select.select([display.fileno(), wake[0]], [], [], 0.5)
                if wake[0] in ready:
                    os.read(wake[0], 4096)
        except Exception:
            log.exception("the clipboard thread stopped")
        finally:
            with self._changed:
                self._owned = None
                self._changed.notify_all()
            with contextlib.suppress(Exception):
                display.close()

    def _server_time(self) -> int:
        """A current server timestamp, from a zero-length property change on our window."""
        from Xlib import X, Xatom

        display, window = self._conn, self._window
        atom = self._atoms["PERCH_TIME"]
        window.change_property(atom, Xatom.STRING, 8, b"", mode=X.PropModeAppend)
        display.flush()
        while True:
            event = display.next_event()
            if event.type == X.PropertyNotify and event.window.id == window.id and event.atom == atom:
                return int(event.time)
            self._handle(event)

    def _own(self, formats: dict[str, ClipData]) -> int:
        display, window = self._conn, self._window
        stamp = self._server_time()
        clipboard = self._atoms["CLIPBOARD"]
        window.set_selection_owner(clipboard, stamp)
        owner = display.get_selection_owner(clipboard)
        if (owner if isinstance(owner, int) else owner.id) != window.id:
            raise InjectionError("another program kept the clipboard")
        owned = {display.intern_atom(name): data for name, data in formats.items()}
        with self._changed:
            self._owned, self._owned_time = owned, stamp
            self._generation += 1
            self._served = []
            self._changed.notify_all()
            return self._generation

    def _disown(self) -> None:
        from Xlib import X
        from Xlib.protocol import request

        display = self._conn
        stamp = self._server_time()
        request.SetSelectionOwner(
            display=display.display, window=X.NONE, selection=self._atoms["CLIPBOARD"], time=stamp
        )
        display.flush()
        with self._changed:
            self._owned = None
            self._generation += 1
            self._served = []
            self._changed.notify_all()

    def _owned_snapshot(self) -> ClipboardSnapshot:
        display = self._conn
        owned = self._owned or {}
        return ClipboardSnapshot({display.get_atom_name(atom): data for atom, data in owned.items()})

    def _handle(self, event: Any) -> None:
        """One event on the owner connection; a misbehaving requestor costs only its own request."""
        try:
            self._dispatch(event)
        except Exception as exc:
            log.debug("clipboard event %s failed: %s", type(event).__name__, exc)

    def _dispatch(self, event: Any) -> None:
        from Xlib import X

        if event.type == X.SelectionRequest:
            self._answer(event)
        elif event.type == X.SelectionClear and event.atom == self._atoms["CLIPBOARD"]:
            if event.time == X.CurrentTime or event.time >= self._owned_time:
                with self._changed:
                    self._owned = None
                    self._changed.notify_all()
        elif event.type == X.PropertyNotify and event.state == X.PropertyDelete:
            transfer = self._transfers.get((event.window.id, event.atom))
            if transfer is not None:
                self._send_chunk(transfer)

    def _answer(self, event: Any) -> None:
        """Serve one SelectionRequest: TARGETS, TIMESTAMP or a format we hold; refuse anything else."""
        from Xlib import X
        from Xlib.protocol import event as xevent

        display = self._conn
        atoms = self._atoms
        requestor = event.requestor
        prop = event.property or event.target  # obsolete clients leave the property as None
        owned = self._owned
        current = owned is not None and event.selection == atoms["CLIPBOARD"]
        current = current and (event.time == X.CurrentTime or event.time >= self._owned_time)
        answered = False
        if current and owned is not None:
            if event.target == atoms["TARGETS"]:
                targets = [atoms["TARGETS"], atoms["TIMESTAMP"], *owned]
                requestor.change_property(prop, atoms["ATOM"], 32, targets)
                answered = True
            elif event.target == atoms["TIMESTAMP"]:
                requestor.change_property(prop, atoms["INTEGER"], 32, [self._owned_time])
                answered = True
            elif event.target in owned:
                data = owned[event.target]
                kind = display.get_atom(data.type)
                limit = min(4 * int(display.display.info.max_request_length) - 64, 4 * INCR_CHUNK)
                if len(data.data) > limit:
                    self._start_transfer(requestor, prop, kind, data)
                else:
                    requestor.change_property(prop, kind, data.format, data.data)
                answered = True
        notify = xevent.SelectionNotify(
            time=event.time,
            requestor=requestor,
            selection=event.selection,
            target=event.target,
            property=prop if answered else X.NONE,
        )
        requestor.send_event(notify, event_mask=0)
        display.flush()
        if current:
            name = display.get_atom_name(event.target)
            log.debug("clipboard request for %s (%s)", name, "served" if answered else "refused")
            with self._changed:
                self._served.append(name)
                self._last_request = time.monotonic()
                self._changed.notify_all()

    def _start_transfer(self, requestor: Any, prop: int, kind: int, data: ClipData) -> None:
        from Xlib import X

        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, self._atoms["INCR"], 32, [len(data.data)])
        self._transfers[(requestor.id, prop)] = _Transfer(
            requestor, prop, kind, data.format, data.data, 0, time.monotonic() + TRANSFER_TIMEOUT_S
        )

    def _send_chunk(self, transfer: _Transfer) -> None:
        from Xlib import X

        chunk = transfer.data[transfer.offset : transfer.offset + INCR_CHUNK]
        transfer.window.change_property(transfer.prop, transfer.type, transfer.format, chunk)
        transfer.offset += len(chunk)
        transfer.deadline = time.monotonic() + TRANSFER_TIMEOUT_S
        if not chunk:  # the zero-length property that ends the transfer has been written
            del self._transfers[(transfer.window.id, transfer.prop)]
            if not any(key[0] == transfer.window.id for key in self._transfers):
                transfer.window.change_attributes(event_mask=X.NoEventMask)
        self._conn.flush()

    def _expire_transfers(self) -> None:
        now = time.monotonic()
        for key, transfer in list(self._transfers.items()):
            if now > transfer.deadline:
                log.debug("dropping a stalled clipboard transfer to window %#x", key[0])
                del self._transfers[key]

    def _hand_to_manager(self) -> None:
        """Ask a running clipboard manager (freedesktop ClipboardManager) to copy what we own."""
        from Xlib import X

        display, window = self._conn, self._window
        manager = display.intern_atom("CLIPBOARD_MANAGER")
        if self._owned is None or display.get_selection_owner(manager) == X.NONE:
            return
        save = display.intern_atom("SAVE_TARGETS")
        window.convert_selection(manager, save, display.intern_atom("PERCH_SAVE"), self._server_time())
        display.flush()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not display.pending_events():
                select.select([display.fileno()], [], [], max(0.0, deadline - time.monotonic()))
                if not display.pending_events():
                    continue
            event = display.next_event()
            if event.type == X.SelectionNotify and event.selection == manager:
                return
            self._handle(event)


TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT", "text/plain", "COMPOUND_TEXT")


def _read_order(target: str) -> int:
    """Text first, then other text, PNG and program-specific formats, then the image formats toolkits derive
    from one picture (Qt offers a screenshot as some twenty of them, each encoded on request)."""
    if target in TEXT_TARGETS:
        return 0
    if target == "image/png" or not target.startswith("image/"):
        return 1
    return 2


def _open_display(name: str) -> Any:
    try:
        import Xlib.display
        import Xlib.error
    except ImportError as exc:
        raise InjectionError("typing on X11 needs python-xlib (pip install python-xlib)") from exc
    try:
        return Xlib.display.Display(name or None)
    except (Xlib.error.DisplayError, OSError) as exc:
        raise InjectionError(f"cannot open the X11 display {name}: {exc}") from exc


def _raw(value: Any) -> bytes:
    """Property data as bytes (python-xlib gives arrays for 16- and 32-bit formats)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1")
    return bytes(value.tobytes())


def _wait_event(display: Any, match: Callable[[Any], bool], deadline: float) -> Any:
    """The next event that matches, discarding others, or None at the deadline."""
    while True:
        while display.pending_events():
            event = display.next_event()
            if match(event):
                return event
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        select.select([display.fileno()], [], [], remaining)


# Wayland: helper programs.


def ydotool_socket(environ: Mapping[str, str] | None = None) -> str | None:
    """The ydotoold socket if the daemon seems to be running."""
    env = os.environ if environ is None else environ
    candidates = [env.get("YDOTOOL_SOCKET", "")]
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(str(Path(runtime) / ".ydotool_socket"))
    candidates.append("/tmp/.ydotool_socket")
    return next((path for path in candidates if path and Path(path).exists()), None)


class _WaylandTypist:
    """Shared paste for Wayland: wl-copy, the shortcut, and after PASTE_SETTLE_S the old clipboard back.

    Wayland does not tell other programs when a paste has been fetched (`wl-copy --paste-once` would be
    taken by a clipboard manager first), so the wait is a fixed one.
    """

    name = "Wayland"

    def problem(self) -> str | None:
        """Missing programs."""
        missing = [tool for tool in self._tools() if shutil.which(tool) is None]
        if missing:
            return f"typing on Wayland needs {' and '.join(missing)}; install them"
        return None

    def _tools(self) -> list[str]:
        return ["wl-copy", "wl-paste"]

    def focused_window(self) -> WindowRef | None:
        """Wayland does not tell other programs which window has the focus."""
        return None

    def copy(self, text: str) -> None:
        """wl-copy."""
        _wl_copy(text.encode())

    def paste(self, text: str) -> bool:
        """Put the text on the clipboard, press the shortcut, wait PASTE_SETTLE_S, put the old contents back."""
        previous = self._previous_clipboard()
        _wl_copy(normalize_newlines(text).encode())
        try:
            self._press_paste()
            time.sleep(PASTE_SETTLE_S)
        finally:
            if previous is not None:
                with contextlib.suppress(InjectionError):
                    _wl_copy(previous[1], previous[0])
        return True

    def _previous_clipboard(self) -> tuple[str, bytes] | None:
        """The first format on the clipboard (wl-copy can offer only one when putting it back)."""
        try:
            types = _run(["wl-paste", "--list-types"]).split()
        except InjectionError:
            return None
        if not types:
            return None
        mime = next((t for t in types if t.startswith("text/plain")), types[0])
        done = subprocess.run(["wl-paste", "--no-newline", "--type", mime], capture_output=True, timeout=5, check=False)
        return (mime, done.stdout) if done.returncode == 0 else None

    def _press_paste(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to undo."""


class WtypeTypist(_WaylandTypist):
    """wtype: the virtual-keyboard protocol of wlroots compositors, with any Unicode character."""

    name = "Wayland (wtype)"

    def _tools(self) -> list[str]:
        return ["wtype", *super()._tools()]

    def type_text(self, text: str) -> None:
        """wtype -- TEXT."""
        _run(["wtype", "--", normalize_newlines(text)], timeout=10 + 0.01 * len(text))

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type unless the text is long (wtype is about as fast as XTEST)."""
        return "type" if TYPE_SETUP_S + KEYSTROKE_S * len(text) <= time_budget(text) else "paste"

    def _press_paste(self) -> None:
        _run(["wtype", "-M", "ctrl", "-k", "v", "-m", "ctrl"])


class YdotoolTypist(_WaylandTypist):
    """ydotool: kernel uinput through ydotoold, so it works on any compositor; keys follow a US layout."""

    name = "Wayland (ydotool)"
    KEY_LEFTCTRL = 29
    KEY_V = 47

    def _tools(self) -> list[str]:
        return ["ydotool", *super()._tools()]

    def problem(self) -> str | None:
        """Also the daemon."""
        missing = super().problem()
        if missing is None and ydotool_socket() is None:
            return "ydotool needs its daemon: start ydotoold (it needs access to /dev/uinput)"
        return missing

    def type_text(self, text: str) -> None:
        """ydotool type (right for US-layout ASCII only; `auto` pastes everything else)."""
        _run(["ydotool", "type", "--", normalize_newlines(text)], timeout=10 + 0.02 * len(text))

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Always paste: ydotool types key positions, which give other characters on other layouts."""
        return "paste"

    def _press_paste(self) -> None:
        ctrl, v = self.KEY_LEFTCTRL, self.KEY_V
        _run(["ydotool", "key", f"{ctrl}:1", f"{v}:1", f"{v}:0", f"{ctrl}:0"])


# Windows: SendInput with KEYEVENTF_UNICODE.

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
            time.sleep(PASTE_SETTLE_S)
        finally:
            api.write_clipboard(saved)
        return True

    def close(self) -> None:
        """Nothing to undo."""


# macOS: Quartz keyboard events carrying Unicode strings.

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
        _run(["pbcopy"], stdin=text)

    def paste(self, text: str) -> bool:
        """pbcopy, Cmd+V, wait PASTE_SETTLE_S, put the previous text back (other formats are not kept)."""
        try:
            previous: str | None = _run(["pbpaste"])
        except InjectionError:
            previous = None
        self.copy(text)
        try:
            self._mac().post(keycode=MAC_KEY_V, flags=MAC_FLAG_COMMAND)
            time.sleep(PASTE_SETTLE_S)
        finally:
            if previous is not None:
                self.copy(previous)
        return True

    def close(self) -> None:
        """Nothing to undo."""
