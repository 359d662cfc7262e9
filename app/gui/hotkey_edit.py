"""A field that records a hotkey: click it, press the key combination, and it shows "Ctrl+Alt+Space"."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPushButton, QSizePolicy, QToolButton, QWidget

from app.gui.form_row import row_with_message
from app.hotkeys.keys import MODIFIER_LABELS, MODIFIER_ORDER, Hotkey, Modifier, format_hotkey, parse_hotkey

Key = Qt.Key

NAMED_KEYS: dict[int, str] = {
    # Qt key: hotkey name (letters, digits and F-keys are worked out in key_name)
    Key.Key_Space: "Space",
    Key.Key_Tab: "Tab",
    Key.Key_Backtab: "Tab",
    Key.Key_Return: "Return",
    Key.Key_Enter: "Enter",
    Key.Key_Escape: "Esc",
    Key.Key_Backspace: "Backspace",
    Key.Key_Insert: "Ins",
    Key.Key_Delete: "Del",
    Key.Key_Home: "Home",
    Key.Key_End: "End",
    Key.Key_PageUp: "PgUp",
    Key.Key_PageDown: "PgDown",
    Key.Key_Left: "Left",
    Key.Key_Up: "Up",
    Key.Key_Right: "Right",
    Key.Key_Down: "Down",
    Key.Key_Pause: "Pause",
    Key.Key_Print: "Print",
    Key.Key_ScrollLock: "ScrollLock",
    Key.Key_CapsLock: "CapsLock",
    Key.Key_NumLock: "NumLock",
    Key.Key_Menu: "Menu",
    Key.Key_QuoteLeft: "`",
    Key.Key_Minus: "-",
    Key.Key_Equal: "=",
    Key.Key_BracketLeft: "[",
    Key.Key_BracketRight: "]",
    Key.Key_Backslash: "\\",
    Key.Key_Semicolon: ";",
    Key.Key_Apostrophe: "'",
    Key.Key_Comma: ",",
    Key.Key_Period: ".",
    Key.Key_Slash: "/",
    # With Shift held Qt reports the shifted symbol; hotkeys name the key itself (as on a US layout).
    Key.Key_Exclam: "1",
    Key.Key_At: "2",
    Key.Key_NumberSign: "3",
    Key.Key_Dollar: "4",
    Key.Key_Percent: "5",
    Key.Key_AsciiCircum: "6",
    Key.Key_Ampersand: "7",
    Key.Key_Asterisk: "8",
    Key.Key_ParenLeft: "9",
    Key.Key_ParenRight: "0",
    Key.Key_Underscore: "-",
    Key.Key_Plus: "=",
    Key.Key_BraceLeft: "[",
    Key.Key_BraceRight: "]",
    Key.Key_Bar: "\\",
    Key.Key_Colon: ";",
    Key.Key_QuoteDbl: "'",
    Key.Key_Less: ",",
    Key.Key_Greater: ".",
    Key.Key_Question: "/",
    Key.Key_AsciiTilde: "`",
}

_MODIFIER_KEYS: dict[int, Modifier | None] = {
    Key.Key_Control: "ctrl",
    Key.Key_Alt: "alt",
    Key.Key_Shift: "shift",
    Key.Key_Meta: "super",
    Key.Key_Super_L: "super",
    Key.Key_Super_R: "super",
    Key.Key_Hyper_L: None,
    Key.Key_Hyper_R: None,
    Key.Key_AltGr: None,
}

_ALONE_OK = {f"F{n}" for n in range(1, 25)} | {"Pause", "Print", "ScrollLock", "Ins", "Menu"}
"""Keys that may be a hotkey without a modifier; any other key alone would be lost for typing."""

_PROMPT = "Press the keys…"


def _mac_swapped() -> bool:
    """Qt on macOS reports Command as Control and Control as Meta unless told not to."""
    return sys.platform == "darwin" and not QCoreApplication.testAttribute(
        Qt.ApplicationAttribute.AA_MacDontSwapCtrlAndMeta
    )


def held_modifiers(flags: Qt.KeyboardModifier) -> set[Modifier]:
    """The hotkey modifiers among Qt's modifier flags."""
    swapped = _mac_swapped()
    pairs: tuple[tuple[Qt.KeyboardModifier, Modifier], ...] = (
        (Qt.KeyboardModifier.ControlModifier, "super" if swapped else "ctrl"),
        (Qt.KeyboardModifier.AltModifier, "alt"),
        (Qt.KeyboardModifier.ShiftModifier, "shift"),
        (Qt.KeyboardModifier.MetaModifier, "ctrl" if swapped else "super"),
    )
    return {name for flag, name in pairs if flags & flag}


def modifier_of_key(key: int) -> Modifier | None:
    """The modifier a modifier key stands for (None for other keys and for AltGr, Hyper)."""
    name = _MODIFIER_KEYS.get(key)
    if name is not None and _mac_swapped() and name in ("ctrl", "super"):
        return "super" if name == "ctrl" else "ctrl"
    return name


def key_name(key: int) -> str | None:
    """The hotkey name of a Qt key (`Space`, `F9`, `D`, `/`), None for keys a hotkey cannot use."""
    if Key.Key_A.value <= key <= Key.Key_Z.value or Key.Key_0.value <= key <= Key.Key_9.value:
        return chr(key)
    if Key.Key_F1.value <= key <= Key.Key_F24.value:
        return f"F{key - Key.Key_F1.value + 1}"
    return NAMED_KEYS.get(key)


def describe_modifiers(modifiers: set[Modifier]) -> str:
    return "+".join(MODIFIER_LABELS[m] for m in MODIFIER_ORDER if m in modifiers)


def hotkey_problem(text: str, other: str, other_name: str) -> str | None:
    """Why `text` cannot be a hotkey (None when it can): not parseable, a typing key alone, or equal to `other`."""
    try:
        hotkey = parse_hotkey(text)
    except ValueError as exc:
        return f"{exc}."
    if hotkey is None:
        return None
    if hotkey.key not in _ALONE_OK and not (hotkey.modifiers - {"shift"}):
        return f"{text} alone would stop that key from typing: add Ctrl, Alt or Super."
    try:
        taken = parse_hotkey(other)
    except ValueError:
        taken = None
    if taken == hotkey:
        return f"{text} is already the {other_name}: choose a different combination."
    return None


class HotkeyEdit(QWidget):
    """Shows a hotkey; a click starts recording the next key combination, Escape cancels, Clear sets none."""

    edited = Signal(str)
    """The person recorded a combination (canonical text) or cleared it (""); not emitted by `set_hotkey`."""
    capturing_changed = Signal(bool)
    """Recording started or ended; a global hotkey grab may want to pause meanwhile."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hotkey = ""
        self._capturing = False
        self._held: set[Modifier] = set()
        self._chord: set[Modifier] = set()
        """Every modifier held since the keys were last all up."""
        self.button = QPushButton()
        self.button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.button.setAutoDefault(False)
        self.button.clicked.connect(self.start_capture)
        self.button.installEventFilter(self)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("No hotkey")
        self.clear_button.clicked.connect(self._clear)
        self.message = row_with_message(self, self.button, self.clear_button)
        self._show_text()

    @property
    def capturing(self) -> bool:
        """Whether the next key combination is being recorded."""
        return self._capturing

    def hotkey(self) -> str:
        """The hotkey shown, in the settings format; "" for none."""
        return self._hotkey

    def set_hotkey(self, text: str) -> None:
        """Show `text` (the settings format) without emitting `edited`."""
        self._hotkey = text
        if not self._capturing:
            self._show_text()

    def show_problem(self, text: str) -> None:
        """An inline message under the field; "" hides it."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def start_capture(self) -> None:
        """Record the next key combination."""
        if self._capturing:
            return
        self._capturing = True
        self._held, self._chord = set(), set()
        self.show_problem("")
        self.button.setFocus(Qt.FocusReason.OtherFocusReason)
        self.button.grabKeyboard()
        self._show_text()
        self.capturing_changed.emit(True)

    def cancel_capture(self) -> None:
        """Stop recording and keep the hotkey as it was."""
        self._end_capture()

    def _end_capture(self) -> None:
        if not self._capturing:
            return
        self._capturing = False
        self._held, self._chord = set(), set()
        self.button.releaseKeyboard()
        self._show_text()
        self.capturing_changed.emit(False)

    def _clear(self) -> None:
        self._end_capture()
        self.show_problem("")
        self.edited.emit("")

    def _show_text(self) -> None:
        if self._capturing:
            held = describe_modifiers(self._held)
            self.button.setText(f"{held}+…" if held else f"{_PROMPT} (Esc cancels)")
        else:
            self.button.setText(self._hotkey or "None")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """While recording, every key goes to the recorder: no shortcuts, no focus moves, no dialog keys."""
        if watched is not self.button or not self._capturing:
            return False
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()
            return True
        if isinstance(event, QKeyEvent) and kind == QEvent.Type.KeyPress:
            self._pressed(event)
            return True
        if isinstance(event, QKeyEvent) and kind == QEvent.Type.KeyRelease:
            self._released(event)
            return True
        if kind == QEvent.Type.FocusOut:
            self._end_capture()
        return False

    def _pressed(self, event: QKeyEvent) -> None:
        key = event.key()
        held = held_modifiers(event.modifiers())
        modifier = modifier_of_key(key)
        if key in _MODIFIER_KEYS:
            if modifier is not None:
                held.add(modifier)
            self._held = held
            self._chord |= held
            self._show_text()
            return
        if key == Key.Key_Escape and not held:
            self._end_capture()
            return
        if event.isAutoRepeat():
            return
        name = key_name(key)
        if name is None:
            self.show_problem("That key cannot be part of a hotkey: try a letter, Space or F1–F12 with Ctrl or Alt.")
            return
        text = format_hotkey(Hotkey(name, frozenset(held)))
        self._end_capture()
        self.edited.emit(text)

    def _released(self, event: QKeyEvent) -> None:
        key = event.key()
        if key not in _MODIFIER_KEYS:
            return
        still = held_modifiers(event.modifiers())
        modifier = modifier_of_key(key)
        if modifier is not None:
            still.discard(modifier)
        if not still and self._chord:
            self.show_problem(
                f"{describe_modifiers(self._chord)} has no key: hold the modifiers and press a key such as Space or F9."
            )
            self._chord = set()
        self._held = still
        self._show_text()
