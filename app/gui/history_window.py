"""The history window: search past dictations, copy or type them again, re-transcribe or delete them.

Database reads and writes run on one worker thread, in order; re-transcribing runs the speech model on another.
Each outcome comes back to the GUI thread, where stale list loads (an older search) are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.coordinator import Phase
from app.gui import history_format as fmt
from app.gui.history_jobs import Jobs
from app.gui.history_model import ERROR_COLOR, HistoryModel
from app.gui.history_typing import StepAsideTyping
from app.gui.history_view import EntryDetail, HistoryTable, action_button, ask_to_delete
from app.gui.icons import state_icon
from app.gui.transcribe_window import dropped_files
from app.history import History, HistoryEntry
from app.vocabulary_add import Addition

PAGE_SIZE = 100
SEARCH_DELAY_MS = 200

Page = tuple[list[HistoryEntry], bool, int]
"""Entries, whether more exist, and the number of entries in the whole history."""


class HistoryWindow(QWidget):
    """A normal top-level window listing the dictation history, newest first."""

    loaded = Signal()
    """The list was reloaded or grew by a page."""

    def __init__(
        self,
        history: History,
        *,
        type_text: Callable[[str], None],
        retranscribe: Callable[[Path], str],
        retention: tuple[int, int] = (0, 20),
        transcribe_files: Callable[[list[Path]], None] | None = None,
        add_to_vocabulary: Callable[[str], Addition] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """`add_to_vocabulary` saves a phrase selected in an entry's text (None: the window offers no way to)."""
        super().__init__(parent)
        self._add_to_vocabulary = add_to_vocabulary
        self.setWindowFlag(Qt.WindowType.Window)
        self._transcribe_files = transcribe_files
        self.setAcceptDrops(transcribe_files is not None)
        self.setWindowTitle("Perch history")
        self.setWindowIcon(state_icon(Phase.IDLE))
        self.resize(920, 600)
        self._history = history
        self._retranscribe = retranscribe
        self._db = Jobs("perch-history-view", self)
        self._model_runs = Jobs("perch-retranscribe", self)
        self._generation = 0
        """Counts list loads; a result from an older one is dropped."""
        self._total = 0
        self._shown_query = ""
        self._stale = False
        self._wanted: int | None = None
        """An entry to select once the list has loaded (`select_entry`)."""

        self.model = HistoryModel(self)
        self.model.more_wanted.connect(self._load_more)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search dictations")
        self.search.setClearButtonEnabled(True)
        self.count = QLabel()
        self.table = HistoryTable(self.model)
        self.detail = EntryDetail()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)
        self.retention = QLabel()
        self._build_actions()
        self._lay_out()

        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.search.returnPressed.connect(self.refresh)
        self._typing = StepAsideTyping(self, type_text, lambda message: self._notify(message, error=True))
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.copy_pressed.connect(self.copy_selected)
        self.table.delete_pressed.connect(self.delete_selected)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.detail.retranscribe.clicked.connect(self.retranscribe_selected)
        self.detail.add_to_vocabulary.setVisible(add_to_vocabulary is not None)
        self.detail.add_to_vocabulary.clicked.connect(self.add_selection_to_vocabulary)
        self.detail.text.customContextMenuRequested.connect(self._text_menu)
        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus)

        self._show_retention(*retention)
        if history.problems:
            self._notify(" ".join(history.problems), error=True)
        self._selection_changed()
        self.refresh()

    # -- layout ------------------------------------------------------------------------------------

    def _build_actions(self) -> None:
        def action(
            text: str, tip: str, slot: Callable[[], None], key: QKeySequence.StandardKey | None = None
        ) -> QAction:
            made = QAction(text, self)
            made.setToolTip(tip)
            made.triggered.connect(slot)
            if key is not None:
                made.setShortcut(key)
                made.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # the table handles the keys itself
                made.setShortcutVisibleInContextMenu(True)
            return made

        self.copy_action = action(
            "Copy", "Copy the text to the clipboard", self.copy_selected, QKeySequence.StandardKey.Copy
        )
        self.type_action = action(
            "Type again", "Type the text into the window you were in before this one", self.type_selected
        )
        self.retranscribe_action = action(
            "Re-transcribe", "Run the speech model again on the recording", self.retranscribe_selected
        )
        self.delete_action = action(
            "Delete…", "Delete the dictation and its recording", self.delete_selected, QKeySequence.StandardKey.Delete
        )
        self.folder_action = action(
            "Open audio folder", "Show the folder that holds the recording", self.open_audio_folder
        )
        self.actions_in_order = [
            self.copy_action,
            self.type_action,
            self.retranscribe_action,
            self.delete_action,
            self.folder_action,
        ]

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        buttons = QHBoxLayout()
        self.buttons: dict[QAction, QPushButton] = {}
        for act in self.actions_in_order:
            button = self.buttons[act] = action_button(act)
            buttons.addWidget(button)
            if act is self.retranscribe_action:
                buttons.addStretch(1)  # the destructive and the rare actions sit apart
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        footer = QHBoxLayout()
        footer.addWidget(self.retention)
        footer.addStretch(1)
        footer.addWidget(self.notice, 2, Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addLayout(footer)

    def _show_retention(self, keep_days: int, keep_recordings: int) -> None:
        self.retention.setText(fmt.retention_text(keep_days, keep_recordings))
        self.retention.setToolTip(fmt.retention_tooltip(keep_days, keep_recordings))

    def _notify(self, text: str, error: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setStyleSheet(f"color: {ERROR_COLOR.name()};" if error else "")

    # -- loading -----------------------------------------------------------------------------------

    @property
    def history(self) -> History:
        """The history this window shows."""
        return self._history

    @property
    def query(self) -> str:
        """The search text in effect ('' shows everything)."""
        text = self.search.text()
        return text if text.strip() else ""

    @property
    def busy(self) -> bool:
        """Whether any database or model work is still under way."""
        return bool(self._db.pending or self._model_runs.pending or self._typing.waiting)

    def refresh(self) -> None:
        """Reload the list for the current search, keeping the selection and as many rows as are loaded."""
        self._search_timer.stop()
        self._stale = False
        self._generation += 1
        generation, query = self._generation, self.query
        # The same search again keeps the pages already loaded; a new one starts from the first page.
        new_query = query != self._shown_query
        loaded = 0 if new_query else len(self.model.entries)
        self._shown_query = query
        limit = max(PAGE_SIZE, -(-loaded // PAGE_SIZE) * PAGE_SIZE)
        self.model.loading = True
        self._db.submit(
            lambda: self._read(query, limit, 0),
            lambda page: self._reloaded(generation, page, new_query),
            lambda exc: self._load_failed(generation, exc),
        )

    def select_entry(self, entry_id: int) -> None:
        """Show one entry, selected: the search is cleared and the list reloaded."""
        self._wanted = entry_id
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.refresh()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._transcribe_files is not None and dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        files = dropped_files(event.mimeData())
        if self._transcribe_files is not None and files:
            event.acceptProposedAction()
            self._transcribe_files(files)

    def entry_added(self) -> None:
        """A new dictation was stored: show it (at once if the window is open, else when it opens)."""
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def _read(self, query: str, limit: int, offset: int) -> Page:
        """On the worker: one more row than asked, to know whether another page exists."""
        entries = self._history.search(query, limit + 1, offset)
        return entries[:limit], len(entries) > limit, self._history.count()

    def _load_more(self) -> None:
        generation, query, offset = self._generation, self.query, len(self.model.entries)
        self._db.submit(
            lambda: self._read(query, PAGE_SIZE, offset),
            lambda page: self._page_arrived(generation, page),
            lambda exc: self._load_failed(generation, exc),
        )

    def _reloaded(self, generation: int, page: Page, new_query: bool) -> None:
        if generation != self._generation:
            return
        entries, more, self._total = page
        selected = [e.id for e in self.selected_entries()]
        current = self.table.currentIndex()
        current_id = self.model.entry(current.row()).id if current.isValid() else None
        # Keep the first visible row in place, unless the list was at its top (new entries show) or is new.
        at_top = new_query or self.table.verticalScrollBar().value() == 0
        anchor_row = self.table.rowAt(0)
        anchor_id = self.model.entry(anchor_row).id if anchor_row >= 0 and not at_top else None
        self.model.reset(entries, more)
        self._reselect(selected, current_id)
        if self._wanted is not None and self.model.row_of(self._wanted) is not None:
            self._reselect([self._wanted], self._wanted)
            at_top, anchor_id = False, self._wanted
            self._wanted = None
        anchor = None if anchor_id is None else self.model.row_of(anchor_id)
        if anchor is not None:
            self.table.scrollTo(self.model.index(anchor, 0), QAbstractItemView.ScrollHint.PositionAtTop)
        elif at_top:
            self.table.scrollToTop()
        self._show_count()
        self._selection_changed()
        self.loaded.emit()

    def _page_arrived(self, generation: int, page: Page) -> None:
        if generation != self._generation:
            return
        entries, more, self._total = page
        self.model.append(entries, more)
        self._show_count()
        self.loaded.emit()

    def _load_failed(self, generation: int, exc: Exception) -> None:
        if generation == self._generation:
            self.model.loading = False
        self._notify(f"Could not read the history ({exc}). Close and reopen this window to try again.", error=True)

    def _reselect(self, ids: list[int], current_id: int | None) -> None:
        selection = QItemSelection()
        for entry_id in ids:
            row = self.model.row_of(entry_id)
            if row is not None:
                selection.select(self.model.index(row, 0), self.model.index(row, self.model.columnCount() - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        chooser = self.table.selectionModel()
        chooser.select(selection, flags)
        row = None if current_id is None else self.model.row_of(current_id)
        if row is not None:
            chooser.setCurrentIndex(self.model.index(row, 0), QItemSelectionModel.SelectionFlag.NoUpdate)

    def _show_count(self) -> None:
        shown = len(self.model.entries)
        self.count.setText(fmt.count_text(self._total, shown, self.model.has_more, bool(self.query)))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self.refresh()

    # -- selection ---------------------------------------------------------------------------------

    def selected_entries(self) -> list[HistoryEntry]:
        """The selected entries, in the order shown."""
        return [self.model.entry(row) for row in self.table.selected_rows()]

    def _single(self) -> HistoryEntry | None:
        chosen = self.selected_entries()
        return chosen[0] if len(chosen) == 1 else None

    @staticmethod
    def _has_audio(entry: HistoryEntry) -> bool:
        return entry.input_path is not None and Path(entry.input_path).is_file()

    def _selection_changed(self) -> None:
        chosen = self.selected_entries()
        single = chosen[0] if len(chosen) == 1 else None
        audio = single is not None and self._has_audio(single)
        self.copy_action.setEnabled(any(e.text for e in chosen))
        self.type_action.setEnabled(single is not None and bool(single.text))
        self.retranscribe_action.setEnabled(audio and single is not None and single.id not in self.model.busy)
        self.delete_action.setEnabled(bool(chosen))
        self.folder_action.setEnabled(
            single is not None and single.input_path is not None and Path(single.input_path).parent.is_dir()
        )
        if single is not None:
            busy = single.id in self.model.busy
            problem = self.model.problems.get(single.id) or fmt.failure_text(single, audio)
            self.detail.show_entry(single, problem, can_retranscribe=audio, busy=busy)
        elif chosen:
            self.detail.show_many(len(chosen))
        else:
            self.detail.show_none()

    def _context_menu(self, pos: QPoint) -> None:
        if not self.table.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for act in self.actions_in_order:
            menu.addAction(act)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _text_menu(self, pos: QPoint) -> None:
        """The text view's own menu (Copy, Select All), with "Add to vocabulary" for a selection."""
        text = self.detail.text
        menu = text.createStandardContextMenu(pos)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self._add_to_vocabulary is not None:
            menu.addSeparator()
            add = menu.addAction("Add to vocabulary")
            add.setToolTip(self.detail.add_to_vocabulary.toolTip())
            add.setEnabled(bool(self.detail.selected_text().strip()))
            add.triggered.connect(self.add_selection_to_vocabulary)
        menu.popup(text.viewport().mapToGlobal(pos))

    # -- actions -----------------------------------------------------------------------------------

    def add_selection_to_vocabulary(self) -> None:
        """Save the words selected in the entry's text as a vocabulary phrase, and say how it went."""
        if self._add_to_vocabulary is None:
            return
        added = self._add_to_vocabulary(self.detail.selected_text())
        self._notify(added.message, error=added.failed)

    def copy_selected(self) -> None:
        """Put the selected texts on the clipboard, one per line, in the order shown."""
        texts = [e.text for e in self.selected_entries() if e.text]
        if not texts:
            return
        QGuiApplication.clipboard().setText("\n".join(texts))
        self._notify("Copied." if len(texts) == 1 else f"Copied {len(texts)} dictations.")

    def type_selected(self) -> None:
        """Step aside, wait for the focus to go back to the window the person was in, then type the text there."""
        entry = self._single()
        if entry is not None and entry.text:
            self._typing.start(entry.text)

    def retranscribe_selected(self) -> None:
        """Run the speech model again on the selected entry's recording, off the GUI thread."""
        entry = self._single()
        if entry is None or entry.input_path is None or entry.id in self.model.busy or not self._has_audio(entry):
            return
        path = Path(entry.input_path)
        entry_id = entry.id
        self.model.set_busy(entry_id, True)
        self._notify("Re-transcribing…")
        self._selection_changed()
        self._model_runs.submit(
            lambda: self._retranscribe(path),
            lambda text: self._store_transcript(entry_id, text),
            lambda exc: self._retranscribe_failed(entry_id, path, exc),
        )

    def _store_transcript(self, entry_id: int, text: str) -> None:
        text = text.strip()
        if not text:
            self._retranscribe_failed(entry_id, None, ValueError("no speech was recognised in the recording"))
            return
        self._db.submit(
            lambda: self._history.replace_text(entry_id, text),
            lambda found: self._transcript_stored(entry_id, found),
            lambda exc: self._retranscribe_failed(entry_id, None, exc),
        )

    def _transcript_stored(self, entry_id: int, found: bool) -> None:
        self.model.set_busy(entry_id, False)
        self.model.set_problem(entry_id, None)
        self._notify("Re-transcribed." if found else "That dictation was deleted meanwhile.")
        self.refresh()

    def _retranscribe_failed(self, entry_id: int, path: Path | None, exc: Exception) -> None:
        message = fmt.retranscribe_failure_text(exc, path)
        self.model.set_busy(entry_id, False)
        self.model.set_problem(entry_id, message)
        self._notify(message, error=True)
        self._selection_changed()

    def delete_selected(self) -> None:
        """Ask, then delete the selected entries and their recordings."""
        chosen = self.selected_entries()
        if not chosen:
            return
        ids = [e.id for e in chosen]
        ask_to_delete(self, len(ids), lambda: self._delete(ids))

    def _delete(self, ids: list[int]) -> None:
        for entry_id in ids:
            self.model.problems.pop(entry_id, None)

        def work() -> int:
            return sum(self._history.delete(entry_id, delete_audio=True) for entry_id in ids)

        self._db.submit(work, self._deleted, self._delete_failed)

    def _deleted(self, count: int) -> None:
        self._notify("Deleted." if count == 1 else f"Deleted {count} dictations.")
        self.refresh()

    def _delete_failed(self, exc: Exception) -> None:
        self._notify(f"Could not delete ({exc}); try again.", error=True)
        self.refresh()

    def open_audio_folder(self) -> None:
        """Open the folder holding the selected entry's recording in the file manager."""
        entry = self._single()
        if entry is None or entry.input_path is None:
            return
        folder = Path(entry.input_path).parent
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._notify(f"Could not open {folder}; open it in your file manager.", error=True)

    # -- retention ---------------------------------------------------------------------------------

    def apply_retention(self, keep_days: int, keep_recordings: int) -> None:
        """Show and apply new retention rules (History.apply_retention, off the GUI thread), then reload."""
        if keep_days < 0 or keep_recordings < 0:
            raise ValueError(f"keep_days and keep_recordings must be 0 or more, got {keep_days} and {keep_recordings}")
        self._show_retention(keep_days, keep_recordings)
        self._db.submit(
            lambda: self._history.apply_retention(keep_days, keep_recordings),
            lambda _none: self.refresh(),
            self._retention_failed,
        )

    def _retention_failed(self, exc: Exception) -> None:
        self._notify(f"Could not apply the retention rules ({exc}); change them again to retry.", error=True)

    def shutdown(self) -> None:
        """Stop the worker threads (waiting for a running database job); call before closing the History."""
        self._db.shutdown(wait=True)
        self._model_runs.shutdown(wait=False)
