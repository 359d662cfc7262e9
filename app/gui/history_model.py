"""The history entries as a table: one row per dictation, newest first, loaded a page at a time."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont

from app.gui import history_format as fmt
from app.history import HistoryEntry

ERROR_COLOR = QColor("#c0392b")
BUSY_COLOR = QColor("#2471a3")

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    """The table's columns, in order."""

    TIME = 0
    DURATION = 1
    TEXT = 2
    LATENCY = 3
    MODEL = 4
    STATUS = 5


HEADERS = {
    Column.TIME: ("Time", "When you dictated it (local time)"),
    Column.DURATION: ("Length", "How long you spoke"),
    Column.TEXT: ("Text", "What was recognised; hover or select a row for all of it"),
    Column.LATENCY: ("Latency", "From the moment you stopped speaking to the text being typed"),
    Column.MODEL: ("Model", "The speech model and the device it ran on"),
    Column.STATUS: ("Status", "Failed and re-transcribed dictations are marked here"),
}


class HistoryModel(QAbstractTableModel):
    """Loaded entries plus what the window is doing with them (re-transcribing, failed re-transcriptions)."""

    more_wanted = Signal()
    """The view reached the last row and another page exists; the window loads it and calls `append`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[HistoryEntry] = []
        self.has_more = False
        self.loading = False
        """A load is in flight; the view asks for no further page meanwhile."""
        self.busy: set[int] = set()
        """Ids being re-transcribed."""
        self.problems: dict[int, str] = {}
        """Ids whose last re-transcription failed, with the message."""

    # -- contents ----------------------------------------------------------------------------------

    def reset(self, entries: list[HistoryEntry], has_more: bool) -> None:
        """Replace every row."""
        self.beginResetModel()
        self.entries = list(entries)
        self.has_more = has_more
        self.loading = False
        self.endResetModel()

    def append(self, entries: list[HistoryEntry], has_more: bool) -> None:
        """Add a page at the end, skipping entries already shown (new dictations shift the pages)."""
        known = {e.id for e in self.entries}
        fresh = [e for e in entries if e.id not in known]
        self.loading = False
        self.has_more = has_more
        if fresh:
            first = len(self.entries)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self.entries.extend(fresh)
            self.endInsertRows()

    def entry(self, row: int) -> HistoryEntry:
        """The entry shown in `row`."""
        return self.entries[row]

    def row_of(self, entry_id: int) -> int | None:
        """The row showing this entry, if it is loaded."""
        return next((row for row, e in enumerate(self.entries) if e.id == entry_id), None)

    def set_busy(self, entry_id: int, busy: bool) -> None:
        """Show or clear `Re-transcribing…` on an entry's row."""
        if busy:
            self.busy.add(entry_id)
        else:
            self.busy.discard(entry_id)
        self._row_changed(entry_id)

    def set_problem(self, entry_id: int, message: str | None) -> None:
        """Remember (or forget) why re-transcribing an entry failed."""
        if message is None:
            self.problems.pop(entry_id, None)
        else:
            self.problems[entry_id] = message
        self._row_changed(entry_id)

    def _row_changed(self, entry_id: int) -> None:
        row = self.row_of(entry_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    # -- paging ------------------------------------------------------------------------------------

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008, N802  (Qt's signature)
        return not parent.isValid() and self.has_more and not self.loading

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if self.canFetchMore(parent):
            self.loading = True
            self.more_wanted.emit()

    # -- Qt model ----------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or section not in HEADERS:
            return None
        title, tip = HEADERS[Column(section)]
        if role == Qt.ItemDataRole.DisplayRole:
            return title
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        entry = self.entries[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(entry, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._color(entry, column)
        if role == Qt.ItemDataRole.FontRole and column == Column.TEXT and not entry.text:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.DURATION, Column.LATENCY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return entry
        return None

    def status_text(self, entry: HistoryEntry) -> str:
        """The status marker of a row."""
        if entry.id in self.busy:
            return "Re-transcribing…"
        if entry.status == "failed":
            return "⚠ Failed"
        if entry.id in self.problems:
            return "⚠ Re-transcription failed"
        if entry.status == "retranscribed":
            return "↻ Re-transcribed"
        return ""

    def _display(self, entry: HistoryEntry, column: Column) -> str:
        if column == Column.TIME:
            return fmt.when(entry.created)
        if column == Column.DURATION:
            return fmt.duration_text(entry.duration_s)
        if column == Column.TEXT:
            if entry.text:
                return fmt.one_line(entry.text)
            return fmt.one_line(f"No text: {entry.error}" if entry.error else "No text")
        if column == Column.LATENCY:
            return fmt.latency_text(entry.stop_to_typed_ms)
        if column == Column.MODEL:
            return fmt.model_text(entry)
        return self.status_text(entry)

    def _tooltip(self, entry: HistoryEntry, column: Column) -> str | None:
        if column == Column.TIME:
            return fmt.full_when(entry.created)
        if column == Column.TEXT:
            return fmt.text_tooltip(entry.text) if entry.text else entry.error
        if column == Column.LATENCY:
            return fmt.latency_tooltip(entry)
        if column == Column.MODEL:
            return fmt.model_text(entry) or None
        if column == Column.STATUS:
            return self.problems.get(entry.id) or entry.error
        return None

    def _color(self, entry: HistoryEntry, column: Column) -> QColor | None:
        if column == Column.STATUS and entry.id in self.busy:
            return BUSY_COLOR
        failed = entry.status == "failed" or entry.id in self.problems
        if failed and (column == Column.STATUS or (column == Column.TEXT and not entry.text)):
            return ERROR_COLOR
        return None
