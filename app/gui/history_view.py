"""The widgets of the history window: the entry table and the detail pane under it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.gui import history_format as fmt
from app.gui.history_model import ERROR_COLOR, Column, HistoryModel
from app.history import HistoryEntry

_SAMPLES = {
    Column.TIME: "Yesterday 23:59",
    Column.DURATION: "00:00 s",
    Column.LATENCY: "0000 ms",
    Column.MODEL: "parakeet-tdt-0.6b-v3 · CUDA",
    Column.STATUS: "⚠ Re-transcribed",
}
"""Text that sets each column's starting width; Text takes the rest."""


class HistoryTable(QTableView):
    """The entry table: whole rows selected, several at once; Copy and Delete keys reported as signals."""

    copy_pressed = Signal()
    delete_pressed = Signal()

    def __init__(self, model: HistoryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rows = self.verticalHeader()
        rows.setVisible(False)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        for column, sample in _SAMPLES.items():
            header.resizeSection(column, self.fontMetrics().horizontalAdvance(sample) + 24)
        header.setSectionResizeMode(Column.TEXT, QHeaderView.ResizeMode.Stretch)

    def selected_rows(self) -> list[int]:
        """The selected rows, top to bottom."""
        return sorted(index.row() for index in self.selectionModel().selectedRows())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_pressed.emit()
        elif event.key() == Qt.Key.Key_Delete or event.matches(QKeySequence.StandardKey.Delete):
            self.delete_pressed.emit()
        else:
            super().keyPressEvent(event)
            return
        event.accept()


class EntryDetail(QWidget):
    """The selected entry in full: when and how, any problem (with a way out), and all of its text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.meta = QLabel()
        self.meta.setWordWrap(True)
        self.meta.setTextFormat(Qt.TextFormat.PlainText)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.setStyleSheet(f"color: {ERROR_COLOR.name()};")
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retranscribe = QPushButton("Re-transcribe now")
        self.retranscribe.setToolTip("Run the speech model again on this dictation's recording")
        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.addWidget(self.problem, 1)
        banner_layout.addWidget(self.retranscribe, 0, Qt.AlignmentFlag.AlignVCenter)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.previous = QLabel()
        self.previous.setWordWrap(True)
        self.previous.setTextFormat(Qt.TextFormat.PlainText)
        self.previous.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.previous.setEnabled(False)  # dimmed: it is no longer the text
        self.add_to_vocabulary = QPushButton("Add to vocabulary")
        self.add_to_vocabulary.setToolTip("Add the selected words to Settings ▸ Vocabulary: Perch listens for them")
        self.add_to_vocabulary.setEnabled(False)
        self.add_to_vocabulary.hide()  # shown by a window that can add to the vocabulary
        self.text.copyAvailable.connect(self.add_to_vocabulary.setEnabled)
        self.text.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        footer = QHBoxLayout()
        footer.addWidget(self.previous, 1)
        footer.addWidget(self.add_to_vocabulary, 0, Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.meta)
        layout.addWidget(self.banner)
        layout.addWidget(self.text, 1)
        layout.addLayout(footer)
        self.show_none()

    def show_none(self) -> None:
        """Nothing selected."""
        self._fill("Select a dictation to see all of its text.", "", None, can_retranscribe=False)

    def show_many(self, count: int) -> None:
        """Several entries selected."""
        self._fill(f"{fmt.plural(count, 'dictation')} selected.", "", None, can_retranscribe=False)

    def show_entry(self, entry: HistoryEntry, problem: str | None, can_retranscribe: bool, busy: bool) -> None:
        """One entry; `problem` is why it failed or why its last re-transcription failed."""
        self._fill(fmt.meta_line(entry), entry.text, problem, can_retranscribe=can_retranscribe and not busy)
        if busy:
            self.problem.setText(f"{problem}\nRe-transcribing…" if problem else "")
        self.text.setPlaceholderText("No text was recognised." if not busy else "Re-transcribing…")
        if entry.previous_text is not None and entry.previous_text != entry.text:
            before = fmt.one_line(entry.previous_text) or "(no text)"
            self.previous.setText(f"Before re-transcription: {before}")
            self.previous.setVisible(True)

    def selected_text(self) -> str:
        """The text selected in the text view ("" for none)."""
        return self.text.textCursor().selectedText()

    def _fill(self, meta: str, text: str, problem: str | None, *, can_retranscribe: bool) -> None:
        self.meta.setText(meta)
        self.text.setPlainText(text)
        self.text.setPlaceholderText("")
        self.problem.setText(problem or "")
        self.banner.setVisible(bool(problem))
        self.retranscribe.setVisible(can_retranscribe)
        self.previous.setVisible(False)


def action_button(action: QAction) -> QPushButton:
    """A push button that triggers `action` and is enabled with it."""
    button = QPushButton(action.text())
    button.setToolTip(action.toolTip())
    button.setEnabled(action.isEnabled())
    button.clicked.connect(action.trigger)
    action.enabledChanged.connect(button.setEnabled)
    return button


def ask_to_delete(parent: QWidget, count: int, delete: Callable[[], None]) -> QMessageBox:
    """Ask (without blocking) whether to delete `count` dictations; `delete` runs only on a yes."""
    what = "this dictation and its recording" if count == 1 else f"these {count} dictations and their recordings"
    box = QMessageBox(QMessageBox.Icon.Question, "Delete dictations", f"Delete {what}? This cannot be undone.")
    box.setParent(parent, box.windowFlags())
    yes = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)

    def answered(_result: int) -> None:
        if box.clickedButton() is yes:
            delete()

    box.finished.connect(answered)
    box.open()
    return box
