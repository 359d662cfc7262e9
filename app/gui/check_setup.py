"""The Check setup window: `perch doctor`'s checks, run in the background and shown one by one as they finish."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.doctor import Check, DoctorContext, Status, default_checks, format_report, load_context, run_events, worst

COLORS: dict[str, str] = {
    "ok": "#2e7d32",
    "warn": "#c77700",
    "fail": "#c62828",
    "skip": "#8a8a8a",
    "pending": "#b0b0b0",
}
STATUS_WORDS: dict[str, str] = {"ok": "works", "warn": "warning", "fail": "problem", "skip": "not checked"}
ICON_SIZE = 22
INTRO = (
    "Perch checks what dictation needs on this computer. While typing is tested, a small “Perch typing test” "
    "window opens for a moment; leave the keyboard alone until it has closed."
)


def status_icon(status: str, size: int = ICON_SIZE) -> QPixmap:
    """A filled circle in the status colour with its mark drawn as lines (no font needed)."""
    ratio = 2.0
    pixmap = QPixmap(round(size * ratio), round(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QColor(COLORS.get(status, COLORS["pending"]))
    if status == "pending":
        painter.setPen(QPen(color, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(QRectF(2, 2, size - 4, size - 4))
        painter.end()
        return pixmap
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    pen = QPen(QColor("white"), size / 9, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    s = size / 22
    if status == "ok":
        path = QPainterPath(QPointF(6.5 * s, 11.5 * s))
        path.lineTo(9.8 * s, 14.8 * s)
        path.lineTo(15.8 * s, 7.8 * s)
        painter.drawPath(path)
    elif status == "fail":
        painter.drawLine(QPointF(7.5 * s, 7.5 * s), QPointF(14.5 * s, 14.5 * s))
        painter.drawLine(QPointF(14.5 * s, 7.5 * s), QPointF(7.5 * s, 14.5 * s))
    elif status == "warn":
        painter.drawLine(QPointF(11 * s, 6 * s), QPointF(11 * s, 12.5 * s))
        painter.drawPoint(QPointF(11 * s, 16 * s))
    else:
        painter.drawLine(QPointF(7 * s, 11 * s), QPointF(15 * s, 11 * s))
    painter.end()
    return pixmap


class ResultRow(QFrame):
    """One check: icon, name, summary, the fix in smaller text, and details behind a toggle."""

    def __init__(self, area: str, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.area = area
        self.name = name
        self.check: Check | None = None
        self.setObjectName("result-row")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.icon = QLabel()
        self.icon.setFixedSize(ICON_SIZE, ICON_SIZE)
        self.title = QLabel(name)
        bold = QFont(self.title.font())
        bold.setBold(True)
        self.title.setFont(bold)
        self.summary = QLabel("Checking…")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.fix = QLabel()
        self.fix.setWordWrap(True)
        self.fix.setTextFormat(Qt.TextFormat.PlainText)
        self.fix.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        small = QFont(self.fix.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
        self.fix.setFont(small)
        self.fix.hide()
        self.toggle = QToolButton()
        self.toggle.setText("Details")
        self.toggle.setCheckable(True)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._show_details)
        self.toggle.hide()
        self.details = QLabel()
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(small.pointSizeF())
        self.details.setFont(mono)
        self.details.hide()

        header = QHBoxLayout()
        header.setSpacing(8)
        header.addWidget(self.title)
        header.addStretch(1)
        header.addWidget(self.toggle)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addLayout(header)
        text.addWidget(self.summary)
        text.addWidget(self.fix)
        text.addWidget(self.details)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.setSpacing(10)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        self._paint("pending")

    @property
    def pending(self) -> bool:
        """Still waiting for its result."""
        return self.check is None

    def set_check(self, check: Check) -> None:
        """Show a result."""
        self.check = check
        self.name = check.name
        self.title.setText(check.name)
        self.summary.setText(check.summary)
        self._paint(check.status)
        self.fix.setVisible(bool(check.fix) and check.status in ("warn", "fail"))
        self.fix.setText(f"What to do: {check.fix}" if check.fix else "")
        lines = list(check.details)
        if check.seconds:
            took = f"{check.seconds * 1000:.0f} ms" if check.seconds < 1 else f"{check.seconds:.1f} s"
            lines.append(f"took {took}")
        self.details.setText("\n".join(lines))
        self.toggle.setVisible(bool(lines))
        self.setToolTip(STATUS_WORDS.get(check.status, check.status))

    def _paint(self, status: str) -> None:
        self.icon.setPixmap(status_icon(status))
        self.fix.setStyleSheet(f"color: {COLORS.get(status, COLORS['pending'])};")

    def _show_details(self, shown: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.details.setVisible(shown)


class CheckSetupWindow(QWidget):
    """Runs the checks on a worker thread and fills in a row per result as it arrives.

    `context_factory` builds the context on the worker thread at the start of each run (it may read the settings
    file); by default the settings file and whether a Perch app answers on its socket. Pass one that sets
    `app_running=True` from inside the app, so that the hotkey check does not try to take the app's own keys.
    """

    check_arrived = Signal(object)
    """A `Check`, on the GUI thread, as soon as it is shown."""
    finished = Signal()
    """A run is over; `checks` holds every result."""

    _specs = Signal(int, object)
    _event = Signal(int, int, object)
    _done = Signal(int)

    def __init__(
        self, context_factory: Callable[[], DoctorContext] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Check setup — Perch")
        self.context_factory = context_factory or load_context
        self._generation = 0
        self._running = False
        self._started_once = False
        self._rows: list[ResultRow] = []
        self._areas: list[str] = []

        title = QLabel("Check setup")
        heading = QFont(title.font())
        heading.setPointSizeF(heading.pointSizeF() * 1.4)
        heading.setBold(True)
        title.setFont(heading)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(2)
        self._list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.StyledPanel)
        scroll.setWidget(self._list)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedWidth(90)
        self.busy.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.busy.hide()
        self.status = QLabel("")
        self.copy_button = QPushButton("Copy report")
        self.copy_button.clicked.connect(self.copy_report)
        self.copy_button.setEnabled(False)
        self.run_button = QPushButton("Run again")
        self.run_button.clicked.connect(self.run)
        close = QPushButton("Close")
        close.clicked.connect(self.close)

        bar = QHBoxLayout()
        bar.addWidget(self.busy)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.run_button)
        bar.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addWidget(scroll, 1)
        layout.addLayout(bar)
        self.resize(720, 640)

        self._specs.connect(self._on_specs)
        self._event.connect(self._on_event)
        self._done.connect(self._on_done)

    # Public.

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self._running

    @property
    def checks(self) -> list[Check]:
        """The results shown so far, in report order."""
        return [row.check for row in self._rows if row.check is not None]

    def rows(self) -> Sequence[ResultRow]:
        """The rows, in report order (for tests and screenshots)."""
        return list(self._rows)

    def run(self) -> bool:
        """Start a run on a worker thread; False when one is already running."""
        if self._running:
            return False
        self._started_once = True
        self._running = True
        self._generation += 1
        self._clear()
        self.busy.show()
        self.status.setText("Checking…")
        self.run_button.setEnabled(False)
        self.copy_button.setEnabled(False)
        threading.Thread(target=self._work, args=(self._generation,), name="perch-check-setup", daemon=True).start()
        return True

    def report_text(self) -> str:
        """The plain-text report, details included, as Copy report puts it on the clipboard."""
        return format_report(self.checks, details=True, header="Perch setup check")

    def copy_report(self) -> None:
        """Put the plain-text report on the clipboard."""
        QGuiApplication.clipboard().setText(self.report_text())
        self.status.setText("The report is on the clipboard.")

    def showEvent(self, event: object) -> None:  # noqa: N802  (Qt's name)
        """The first time the window shows, start a run."""
        super().showEvent(event)  # type: ignore[arg-type]
        if not self._started_once:
            QTimer.singleShot(0, self._first_run)

    def _first_run(self) -> None:
        if not self._started_once:
            self.run()

    # Worker thread.

    def _work(self, generation: int) -> None:
        """Build the context and run the checks, posting everything to the GUI thread."""
        try:
            try:
                context = self.context_factory()
                specs = default_checks(context)
            except Exception as exc:
                failed = Check("Check setup", "fail", f"the checks could not start: {exc}", (), "Report this as a bug.")
                self._post("_specs", generation, [("setup", ())])
                self._post("_event", generation, 0, failed)
                return
            self._post("_specs", generation, [(spec.area, spec.expected) for spec in specs])
            for index, check in run_events(context, specs):
                if not self._post("_event", generation, index, check):
                    return
        finally:
            self._post("_done", generation)

    def _post(self, signal: str, *args: object) -> bool:
        """Emit one of the private signals to the GUI thread; False when the window is gone."""
        try:
            getattr(self, signal).emit(*args)
        except RuntimeError:  # the window was deleted while the checks ran
            return False
        return True

    # GUI thread.

    def _clear(self) -> None:
        for row in self._rows:
            self._list_layout.removeWidget(row)
            row.deleteLater()
        self._rows = []
        self._areas = []

    def _on_specs(self, generation: int, specs: list[tuple[str, tuple[str, ...]]]) -> None:
        """Reserve a row for each expected result, so that the layout does not jump as results arrive."""
        if generation != self._generation:
            return
        self._areas = [area for area, _ in specs]
        for area, names in specs:
            for name in names or (area,):
                self._insert(ResultRow(area, name), len(self._rows))

    def _insert(self, row: ResultRow, position: int) -> None:
        self._rows.insert(position, row)
        self._list_layout.insertWidget(position, row)

    def _on_event(self, generation: int, index: int, check: Check | None) -> None:
        if generation != self._generation or index >= len(self._areas):
            return
        area = self._areas[index]
        if check is None:  # the area is done: drop the places it did not use
            self._drop_pending(area)
            self._update_status()
            return
        mine = [row for row in self._rows if row.area == area]
        target = next((r for r in mine if r.pending and r.name == check.name), None)
        target = target or next((r for r in mine if r.pending), None)
        if target is None:
            target = ResultRow(area, check.name)
            self._insert(target, self._rows.index(mine[-1]) + 1 if mine else len(self._rows))
        target.set_check(check)
        self._update_status()
        self.check_arrived.emit(check)

    def _drop_pending(self, area: str | None) -> None:
        """Remove the rows still waiting for a result, of one area or (None) of all."""
        for row in [r for r in self._rows if r.pending and area in (None, r.area)]:
            self._rows.remove(row)
            self._list_layout.removeWidget(row)
            row.deleteLater()

    def _update_status(self) -> None:
        if self._running:
            pending = sum(1 for row in self._rows if row.pending)
            self.status.setText(f"Checking… {len(self.checks)} done, {pending} to go")

    def _on_done(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._running = False
        self.busy.hide()
        self.run_button.setEnabled(True)
        self.copy_button.setEnabled(True)
        self._drop_pending(None)
        checks = self.checks
        problems = sum(1 for check in checks if check.status == "fail")
        warnings = sum(1 for check in checks if check.status == "warn")
        state: Status = worst(checks)
        if state == "ok":
            self.status.setText("Everything Perch needs works.")
        else:
            parts = [f"{problems} problem{'s' * (problems != 1)}" if problems else ""]
            parts.append(f"{warnings} warning{'s' * (warnings != 1)}" if warnings else "")
            self.status.setText(f"{' and '.join(p for p in parts if p)}: see what to do under each.")
        self.finished.emit()
