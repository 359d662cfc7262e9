"""Smart spacing: a space before text that continues what was typed last into the same window."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable

from app.injection.types import WindowRef

NO_SPACE_BEFORE = frozenset(",.;:!?)]}…%’”»")
NO_SPACE_AFTER = frozenset("([{“‘«¿¡/")


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
