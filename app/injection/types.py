"""What the app sees of typing: the window, what happened to a text, the `Typist` protocol and its error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.injection.terminals import terminal_name

Method = Literal["type", "paste"]
Outcome = Literal["typed", "pasted", "copied", "nothing"]


class InjectionError(Exception):
    """Text could not be typed or pasted; the message says why and what to do."""


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


def normalize_newlines(text: str) -> str:
    """CR LF and CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
