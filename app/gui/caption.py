"""The live caption: a small always-on-top window with the words being dictated, the state and the input level.

The window never takes the keyboard focus, so the text keeps going to the application the person is typing into.
It can be dragged and resized; each change of place or size is reported (debounced) through `geometry_changed`.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QPoint, QPropertyAnimation, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QMoveEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSizeGrip, QSizePolicy, QVBoxLayout, QWidget

from app.gui.caption_parts import (
    BACKGROUND,
    BORDER,
    BOTTOM_GAP,
    CORNER_RADIUS,
    DEFAULT_WIDTH,
    DIM_COLOR,
    FADE_MS,
    FINAL_SECONDS,
    GEOMETRY_DEBOUNCE_MS,
    MARGINS,
    STATE_COLOR,
    TEXT_COLOR,
    VISIBLE_LINES,
    WARNING_COLOR,
    WINDOW_FLAGS,
    ElidedLabel,
    LevelMeter,
    caption_html,
    latency_text,
    visible_start,
)
from app.settings import CaptionSettings
from app.settings_rules import Geometry


class CaptionWindow(QWidget):
    """Frameless, always-on-top caption that shows live text without ever taking the focus."""

    geometry_changed = Signal(tuple)
    """(x, y, width, height) after the person moved or resized the caption; debounced."""
    add_to_vocabulary = Signal(str)
    """The person chose "Add to vocabulary…" in the caption's menu; the text it shows (or showed last)."""

    def __init__(
        self,
        settings: CaptionSettings | None = None,
        final_seconds: float = FINAL_SECONDS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, WINDOW_FLAGS)
        # Set before the first show: showing must never activate the window.
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_X11DoNotAcceptFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWindowTitle("Perch caption")
        self.final_seconds = final_seconds

        self.state_label = ElidedLabel()
        self.latency_label = QLabel()
        self.latency_label.setStyleSheet(f"color: {DIM_COLOR};")
        self.latency_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.latency_label.hide()
        self.text_label = QLabel()
        self.text_label.setTextFormat(Qt.TextFormat.RichText)
        self.text_label.setWordWrap(True)
        self.text_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.text_label.setStyleSheet(f"color: {TEXT_COLOR};")
        self.meter = LevelMeter()
        for label in (self.state_label, self.latency_label, self.text_label):
            label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(12)
        top.addWidget(self.state_label, 1)
        top.addWidget(self.latency_label, 0)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(*MARGINS)
        self._layout.setSpacing(6)
        self._layout.addLayout(top)
        self._layout.addWidget(self.text_label, 1)
        self._layout.addWidget(self.meter)
        # The grip sits in the corner over the layout, not in it.
        self.grip = QSizeGrip(self)
        self.grip.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self._text = ""
        self._stable = 0
        self._state = ""
        self._state_error = False
        self._latency = ""
        self._active = False
        """Between the first show_* call of an utterance and `idle()`."""
        self._dimmed = False
        self._auto_placed = True
        self._last_geometry: Geometry | None = None
        self._drag_offset: QPoint | None = None

        self._linger = QTimer(self)
        self._linger.setSingleShot(True)
        self._linger.timeout.connect(self._after_linger)
        self._geometry_timer = QTimer(self)
        self._geometry_timer.setSingleShot(True)
        self._geometry_timer.setInterval(GEOMETRY_DEBOUNCE_MS)
        self._geometry_timer.timeout.connect(self._report_geometry)
        self._fade = QPropertyAnimation(self, QByteArray(b"windowOpacity"), self)
        self._fade.setDuration(FADE_MS)
        self._fade.finished.connect(self._faded)

        self._settings = CaptionSettings()
        self._configured = False
        self.apply_settings(settings if settings is not None else CaptionSettings())

    # Public slots.

    def show_partial(self, text: str, stable_chars: int) -> None:
        """Live text: the first `stable_chars` characters in full colour, the rest dimmed."""
        self._begin()
        self._text, self._stable = text, stable_chars
        self._render_text()

    def show_final(self, text: str) -> None:
        """The utterance's finished text, all in full colour."""
        self._begin()
        self._text, self._stable = text, len(text)
        self._render_text()

    def show_state(self, text: str, error: bool = False) -> None:
        """The state line ("Listening…", "Typed 180 ms after release"…); errors in a warning colour."""
        self._begin()
        self._state, self._state_error = text, error
        self._render_state()

    def set_level(self, db: float) -> None:
        """The input level in dBFS; the meter spans -60 to 0 dB."""
        self.meter.set_level(db)

    def set_latency(self, ms: float | None) -> None:
        """The last utterance's time from stop to typed text, or None to show none.

        It is not shown while the state line already says it.
        """
        amount = latency_text(ms)
        self._latency = "" if amount is None else f"typed {amount} after release"
        self._render_latency()

    def idle(self) -> None:
        """Dictation stopped: after `final_seconds`, hide (hide_when_idle) or dim the last text.

        Call it last for an utterance: any show_* call after it starts a new one, which clears the old text.
        """
        self._active = False
        self.meter.reset()
        self._linger.start(max(0, round(self.final_seconds * 1000)))

    def apply_settings(self, caption: CaptionSettings) -> None:
        """Font size, opacity, click-through, hiding when idle and geometry, applied at once."""
        old, first = self._settings, not self._configured
        self._settings, self._configured = caption, True
        self._apply_fonts(caption.font_size)
        if self._fade.state() != QPropertyAnimation.State.Running:
            self.setWindowOpacity(caption.opacity)
        self._set_click_through(caption.click_through)
        if first or caption.geometry != old.geometry or (caption.geometry is None and self._auto_placed):
            self._place(caption.geometry)
        if not caption.show:
            self._fade.stop()
            self.hide()
        elif self._active:
            self._reveal()
        elif self.isVisible() and not self._linger.isActive():
            # Idle and past the linger: follow a change of hide_when_idle now.
            if caption.hide_when_idle:
                self._fade_out()
            else:
                self._stop_fade()
                self._dimmed = True
        self._render_text()
        self._render_state()

    def text(self) -> str:
        """The text on show, or the last one shown."""
        return self._text

    # Showing and hiding.

    def _begin(self) -> None:
        if not self._active:
            self._text, self._stable = "", 0
            self._state, self._state_error = "", False
            self._render_text()
            self._render_state()
        self._active = True
        self._dimmed = False
        self._linger.stop()
        self._reveal()

    def _reveal(self) -> None:
        self._stop_fade()
        if self._settings.show and not self.isVisible():
            self.show()  # WA_ShowWithoutActivating: the focus stays where it is

    def _after_linger(self) -> None:
        if self._active:
            return
        if self._settings.hide_when_idle:
            self._fade_out()
        else:
            self._dimmed = True
            self._render_text()
            self._render_state()

    def _fade_out(self) -> None:
        if not self.isVisible():
            return
        self._fade.stop()
        self._fade.setStartValue(self.windowOpacity())
        self._fade.setEndValue(0.0)
        self._fade.start()

    def _stop_fade(self) -> None:
        if self._fade.state() == QPropertyAnimation.State.Running:
            self._fade.stop()
        self.setWindowOpacity(self._settings.opacity)

    def _faded(self) -> None:
        if not self._active:
            self.hide()
        self.setWindowOpacity(self._settings.opacity)

    # Rendering.

    def _apply_fonts(self, size: int) -> None:
        font = QFont(self.font())
        font.setPointSize(size)
        self.text_label.setFont(font)
        self.text_label.setMinimumHeight(VISIBLE_LINES * QFontMetrics(font).lineSpacing())
        small = QFont(self.font())
        small.setPointSize(max(8, round(size * 0.62)))
        self.state_label.setFont(small)
        self.state_label.refresh()
        smaller = QFont(self.font())
        smaller.setPointSize(max(7, round(size * 0.55)))
        self.latency_label.setFont(smaller)

    def _render_text(self) -> None:
        font = self.text_label.font()
        left, _, right, _ = MARGINS
        width = self.width() - left - right
        lines = VISIBLE_LINES
        if self.isVisible():
            lines = max(lines, self.text_label.contentsRect().height() // QFontMetrics(font).lineSpacing())
        start = visible_start(self._text, font, width, lines)
        shown = self._text[start:]
        self.text_label.setText(caption_html(shown, self._stable - start, dimmed=self._dimmed, elided=start > 0))

    def _render_state(self) -> None:
        color = WARNING_COLOR if self._state_error else DIM_COLOR if self._dimmed else STATE_COLOR
        style = f"color: {color};"
        if self.state_label.styleSheet() != style:
            self.state_label.setStyleSheet(style)
        self.state_label.set_full_text(self._state)
        self._render_latency()

    def _render_latency(self) -> None:
        self.latency_label.setText(self._latency)
        self.latency_label.setVisible(bool(self._latency) and self._latency.casefold() != self._state.casefold())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """The rounded dark background."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(BORDER, 1))
        painter.setBrush(BACKGROUND)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), CORNER_RADIUS, CORNER_RADIUS)

    # Place, size and click-through.

    def _default_rect(self) -> QRect:
        screen = QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 720)
        width = min(DEFAULT_WIDTH, max(240, area.width() - 2 * BOTTOM_GAP))
        height = max(self.minimumSizeHint().height(), self.sizeHint().height())
        x = area.x() + (area.width() - width) // 2
        y = area.y() + area.height() - BOTTOM_GAP - height
        return QRect(x, y, width, height)

    def _place(self, geometry: Geometry | None) -> None:
        rect = QRect(*geometry) if geometry is not None else None
        if rect is not None and any(s.availableGeometry().intersects(rect) for s in QGuiApplication.screens()):
            self.setGeometry(rect)
            self._auto_placed = False
        else:  # none saved, or saved on a screen that is gone
            self.setGeometry(self._default_rect())
            self._auto_placed = True
        self._last_geometry = self._current_geometry()

    def _current_geometry(self) -> Geometry:
        rect = self.geometry()
        return (rect.x(), rect.y(), rect.width(), rect.height())

    def _report_geometry(self) -> None:
        geometry = self._current_geometry()
        if geometry != self._last_geometry:
            self._last_geometry = geometry
            self._auto_placed = False
            self.geometry_changed.emit(geometry)

    def _set_click_through(self, on: bool) -> None:
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, on)
        self.grip.setVisible(not on)
        if on:
            self.unsetCursor()
        else:
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        if bool(self.windowFlags() & Qt.WindowType.WindowTransparentForInput) != on:
            visible = self.isVisible()
            self.setWindowFlag(Qt.WindowType.WindowTransparentForInput, on)  # this hides the window
            if visible:
                self.show()

    # Events.

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        """Keep the grip in the corner, re-fit the text and report the size."""
        super().resizeEvent(event)
        hint = self.grip.sizeHint()
        self.grip.setGeometry(
            self.width() - hint.width() - 3, self.height() - hint.height() - 3, hint.width(), hint.height()
        )
        self._render_text()
        self._geometry_timer.start()

    def moveEvent(self, event: QMoveEvent) -> None:  # noqa: N802 - Qt's name
        """Report the new position."""
        super().moveEvent(event)
        self._geometry_timer.start()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Start dragging the caption."""
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        handle = self.windowHandle()
        if handle is not None and handle.startSystemMove():
            self._drag_offset = None
        else:
            self._drag_offset = event.globalPosition().toPoint() - self.frameGeometry().topLeft()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Follow the pointer while dragging."""
        if self._drag_offset is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self.move(event.globalPosition().toPoint() - self._drag_offset)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 - Qt's name
        """A menu with "Add to vocabulary…", for a word the caption shows wrong."""
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        add = menu.addAction("Add to vocabulary…")
        add.setToolTip("Add a word or phrase that Perch should listen for; the caption's text is filled in")
        add.triggered.connect(lambda: self.add_to_vocabulary.emit(self._text))
        menu.popup(event.globalPos())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Stop dragging."""
        self._drag_offset = None
        super().mouseReleaseEvent(event)
