"""How the caption looks and lays out its text: colours, sizes, the level meter and the elided state line."""

from __future__ import annotations

import html
import math
from typing import NamedTuple

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from app.coordinator import Ending, Phase
from app.injection.types import DeliveryResult

FINAL_SECONDS = 4.0
"""How long the last text stays after dictation goes idle, before it hides or dims."""
DEFAULT_WIDTH = 640
BOTTOM_GAP = 48
"""Pixels between the automatically placed caption and the bottom of the primary screen's free area."""
VISIBLE_LINES = 2
"""Lines of text kept visible; longer text loses its beginning."""
MAX_MEASURED_CHARS = 4000
"""Only this much of the end of a very long text is laid out; more never fits in a few lines."""
GEOMETRY_DEBOUNCE_MS = 300
FADE_MS = 250
METER_FLOOR_DB = -60.0
METER_INTERVAL_MS = 33
"""Meter animation step: at most about 30 redraws a second."""
ELLIPSIS = "…"

TEXT_COLOR = "#f4f5f7"
DIM_COLOR = "#8b919a"
"""Text that may still change, and everything once dictation is idle."""
STATE_COLOR = "#b4bac3"
WARNING_COLOR = "#ffb454"
BACKGROUND = QColor(22, 24, 28, 232)
BORDER = QColor(255, 255, 255, 36)
METER_TRACK = QColor(255, 255, 255, 34)
METER_FILL = QColor("#5ec4ff")
METER_HOT = QColor(WARNING_COLOR)
CORNER_RADIUS = 10.0
MARGINS = (16, 10, 16, 10)

WINDOW_FLAGS = (
    Qt.WindowType.Tool
    | Qt.WindowType.FramelessWindowHint
    | Qt.WindowType.WindowStaysOnTopHint
    | Qt.WindowType.WindowDoesNotAcceptFocus
)


def level_fraction(db: float) -> float:
    """How full the meter is for a level in dBFS: 0 at -60 dB or below (and for NaN), 1 at 0 dB or above."""
    if math.isnan(db):
        return 0.0
    return min(1.0, max(0.0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB))


class StateLine(NamedTuple):
    """What the caption's state line says, and whether it is a problem (shown in the warning colour)."""

    text: str
    problem: bool = False


BUSY_LINES = {Phase.RECORDING: "Listening…", Phase.TRANSCRIBING: "Transcribing…", Phase.TYPING: "Typing…"}
"""The state line while dictation is busy, by the coordinator's phase (the tray's "recording", …)."""
ENDING_LINES = {"typed": "Typed", "cancelled": "Cancelled", "no speech": "No speech heard", "stopped": "Stopped"}


def latency_text(ms: float | None) -> str | None:
    """A time from stop to typed text ("180 ms", "1.2 s"); None for no usable time."""
    if ms is None or not math.isfinite(ms) or ms < 0:
        return None
    return f"{ms:.0f} ms" if ms < 999.5 else f"{ms / 1000:.1f} s"


def ending_line(ending: Ending) -> StateLine:
    """The state line once an utterance has ended."""
    if ending.kind == "clipboard":
        return StateLine(f"Left on the clipboard: {ending.message}", problem=True)
    if ending.kind == "failed":
        return StateLine(ending.message, problem=True)
    return StateLine(ENDING_LINES[ending.kind])


def delivery_line(result: DeliveryResult, typed_ms: float | None) -> str:
    """The state line once an utterance's text was delivered: typed (and how fast), or where it went instead."""
    if result.method == "copied":
        return f"Left on the clipboard: {result.reason}"
    if result.method == "nothing":
        return f"Not typed or copied: {result.reason}" if result.reason else "Nothing to type"
    if not result.confirmed:
        return f"Paste not taken: {result.reason}"
    amount = latency_text(typed_ms)
    return f"Typed {amount} after release" if amount is not None else "Typed"


def caption_html(text: str, stable_chars: int, *, dimmed: bool = False, elided: bool = False) -> str:
    """Rich text for a caption: the stable start in full colour, the rest dimmed; all of it escaped."""
    stable = max(0, min(len(text), stable_chars))
    head = html.escape(text[:stable], quote=False)
    tail = html.escape(text[stable:], quote=False)
    if dimmed:
        return f'<span style="color:{DIM_COLOR}">{ELLIPSIS if elided else ""}{head}{tail}</span>'
    prefix = f'<span style="color:{DIM_COLOR}">{ELLIPSIS}</span>' if elided else ""
    if tail:
        return f'{prefix}{head}<span style="color:{DIM_COLOR}">{tail}</span>'
    return prefix + head


def line_starts(text: str, font: QFont, width: int) -> list[int]:
    """Where each line begins when `text` is word-wrapped at `width` pixels in `font`."""
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    starts: list[int] = []
    layout.beginLayout()
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(max(1, width))
        starts.append(line.textStart())
    layout.endLayout()
    return starts


def visible_start(text: str, font: QFont, width: int, lines: int = VISIBLE_LINES) -> int:
    """The index from which `ELLIPSIS` plus the rest of `text` fits in `lines` lines (0 when all of it fits)."""
    offset = max(0, len(text) - MAX_MEASURED_CHARS)
    end = text[offset:]
    starts = line_starts(end, font, width)
    if offset == 0 and len(starts) <= lines:
        return 0
    start = starts[max(0, len(starts) - lines)] if len(starts) > lines else 0
    while start < len(end):
        while start < len(end) and end[start].isspace():
            start += 1
        if len(line_starts(ELLIPSIS + end[start:], font, width)) <= lines:
            break
        space = end.find(" ", start)
        start = space + 1 if space > start else start + 1
    return offset + start


class LevelMeter(QWidget):
    """A thin bar whose length follows the input level, rising quickly and falling slowly."""

    ATTACK = 0.6
    RELEASE = 0.25

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(4)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._target = 0.0
        self._value = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(METER_INTERVAL_MS)
        self._timer.timeout.connect(self._step)

    @property
    def target(self) -> float:
        """Where the bar is heading, from 0 (empty) to 1 (full)."""
        return self._target

    @property
    def value(self) -> float:
        """What the bar shows now, from 0 to 1."""
        return self._value

    def set_level(self, db: float) -> None:
        """A new input level in dBFS."""
        self._target = level_fraction(db)
        if self._target != self._value and not self._timer.isActive():
            self._timer.start()

    def reset(self) -> None:
        """Empty the bar at once."""
        self._timer.stop()
        self._target = self._value = 0.0
        self.update()

    def _step(self) -> None:
        rate = self.ATTACK if self._target > self._value else self.RELEASE
        self._value += (self._target - self._value) * rate
        if abs(self._target - self._value) < 0.005:
            self._value = self._target
            self._timer.stop()
        self.update()

    def track_colour(self) -> QColor:
        """The colour of the empty track: faint white, for the caption's dark background."""
        return METER_TRACK

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """The track and the filled part."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        track = QRectF(self.rect())
        radius = track.height() / 2
        painter.setBrush(self.track_colour())
        painter.drawRoundedRect(track, radius, radius)
        if self._value > 0:
            filled = QRectF(track.x(), track.y(), max(track.height(), track.width() * self._value), track.height())
            painter.setBrush(METER_HOT if self._value > 0.9 else METER_FILL)
            painter.drawRoundedRect(filled, radius, radius)


class ElidedLabel(QLabel):
    """One line of plain text that ends in an ellipsis when it does not fit; the whole text is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def full_text(self) -> str:
        """The text before eliding."""
        return self._full

    def set_full_text(self, text: str) -> None:
        """Show `text`, shortened to the label's width."""
        self._full = " ".join(text.split())
        self.refresh()

    def refresh(self) -> None:
        """Elide again for the current width and font."""
        width = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width) if width > 0 else ""
        self.setText(shown if width > 0 else self._full)
        self.setToolTip(self._full if shown != self._full else "")
        self.setFixedHeight(self.fontMetrics().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        """Elide for the new width."""
        super().resizeEvent(event)
        self.refresh()
