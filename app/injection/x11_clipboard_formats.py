"""Clipboard contents as X11 carries them: one format's bytes, every format at one moment, text in the formats
programs ask for."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


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
