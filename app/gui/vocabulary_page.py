"""Settings ▸ Vocabulary: words and phrases to boost, how strongly, replacements and snippets, and Try it.

The whole vocabulary is one setting: every edit on the page is saved together, once the edits pause.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.history_jobs import Jobs
from app.gui.settings_form import Binding, Page
from app.gui.trial_window import TrialSources, TrialWindow
from app.gui.vocabulary_lists import PhraseModel, ReplacementModel
from app.settings import Settings
from app.vocabulary_settings import STRENGTH_RANGE, ReplacementEntry, VocabularyEntry, VocabularySettings
from app.vocabulary_trial import TRIAL_COUNT
from stt.boost.phrases import DEFAULT_STRENGTH, MAX_PHRASES, Phrase, read_phrase_file

STRENGTH_STEPS = 2
"""Slider positions per unit of strength (half steps)."""
NEAR_LIMIT = int(MAX_PHRASES * 0.9)
"""From this many phrases on, the page warns that the list nears its limit."""
TEXT_FILTER = "Text files (*.txt);;All files (*)"


def _table(model: QSortFilterProxyModel | ReplacementModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(
        QAbstractItemView.EditTrigger.DoubleClicked
        | QAbstractItemView.EditTrigger.EditKeyPressed
        | QAbstractItemView.EditTrigger.SelectedClicked
    )
    view.verticalHeader().setVisible(False)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return view


def _button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setAutoDefault(False)
    return button


def _selected_rows(view: QTableView, proxy: QSortFilterProxyModel | None = None) -> list[int]:
    rows = [index.row() for index in view.selectionModel().selectedRows()]
    if proxy is not None:
        rows = [proxy.mapToSource(proxy.index(row, 0)).row() for row in rows]
    return sorted(rows)


class VocabularyPage(Page):
    """The phrase list, its strength, the replacements, import and export, and Try it."""

    edited = Signal()
    """The person changed something on the page."""

    def __init__(self, trial: TrialSources | None = None) -> None:
        super().__init__(
            "vocabulary",
            "Vocabulary",
            "Names, terms and phrases Perch should listen for, and words to write another way. Changes apply "
            "from the next dictation.",
        )
        self._trial = trial
        self._strength = DEFAULT_STRENGTH
        self._files = Jobs("perch-vocabulary-files", self)
        self.trial_window: TrialWindow | None = None
        self.phrases = PhraseModel(self)
        self.replacements = ReplacementModel(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._phrase_tab(), "Words and phrases")
        self.tabs.addTab(self._replacement_tab(), "Replacements")
        self.form.addRow(self.tabs)
        self._strength_row()
        self._try_row()
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.setStretchFactor(self.form, 1)  # the lists take the height, not the space under them
        self.phrases.edited.connect(self.edited)
        self.replacements.edited.connect(self.edited)
        for signal in (self.phrases.modelReset, self.phrases.rowsInserted, self.phrases.rowsRemoved):
            signal.connect(self._show_count)
        self.phrases.dataChanged.connect(self._show_count)
        self.bindings.append(
            Binding("vocabulary", self, self.edited, self.vocabulary, write=self.show_vocabulary, debounce=True)
        )
        self._show_count()

    # Building.

    def _phrase_tab(self) -> QWidget:
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.phrases)
        self.proxy.setFilterKeyColumn(PhraseModel.TEXT)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the list")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.count = QLabel()
        self.phrase_view = _table(self.proxy)
        header = self.phrase_view.horizontalHeader()
        header.setSectionResizeMode(PhraseModel.STRONGER, QHeaderView.ResizeMode.ResizeToContents)
        self.phrase_view.itemDelegate().closeEditor.connect(self._drop_blank_phrases)
        self.add_phrase = _button("Add", "Add a word or phrase to the list")
        self.remove_phrase = _button("Remove", "Remove the selected words and phrases")
        self.import_button = _button(
            "Import…",
            "Add the phrases of a text file, one per line; blank lines and lines starting with # are left out",
        )
        self.export_button = _button("Export…", "Save the list as a text file, one phrase per line")
        self.add_phrase.clicked.connect(self.start_new_phrase)
        self.remove_phrase.clicked.connect(self.remove_selected_phrases)
        self.import_button.clicked.connect(self.ask_import)
        self.export_button.clicked.connect(self.ask_export)
        self.phrase_view.selectionModel().selectionChanged.connect(self._phrase_selection)
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.phrase_view, self.remove_selected_phrases)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        self.file_note = QLabel()
        self.file_note.setWordWrap(True)
        self.file_note.hide()

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        buttons = QHBoxLayout()
        for button in (self.add_phrase, self.remove_phrase):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.import_button, self.export_button):
            buttons.addWidget(button)
        tab = QWidget()
        column = QVBoxLayout(tab)
        column.addLayout(top)
        column.addWidget(self.phrase_view, 1)
        column.addLayout(buttons)
        column.addWidget(self.file_note)
        self._phrase_selection()
        return tab

    def _replacement_tab(self) -> QWidget:
        self.replacement_view = _table(self.replacements)
        header = self.replacement_view.horizontalHeader()
        header.setSectionResizeMode(ReplacementModel.CASE, QHeaderView.ResizeMode.ResizeToContents)
        self.replacement_view.itemDelegate().closeEditor.connect(self._drop_blank_replacements)
        self.replacement_view.doubleClicked.connect(self._replacement_double_clicked)
        self.written = QPlainTextEdit()
        self.written.setPlaceholderText("Select a replacement to edit what is written; it may span several lines.")
        self.written.setToolTip("What is typed when you say the words; press Enter for a new line (a snippet).")
        self.written.setTabChangesFocus(True)
        self.written.setMaximumHeight(self.written.fontMetrics().lineSpacing() * 5 + 12)
        self.written.textChanged.connect(self._written_edited)
        written_label = QLabel("&Write:")
        written_label.setBuddy(self.written)
        self.add_replacement = _button("Add", "Add a replacement: what you say, and what is written instead")
        self.remove_replacement = _button("Remove", "Remove the selected replacements")
        self.add_replacement.clicked.connect(self.start_new_replacement)
        self.remove_replacement.clicked.connect(self.remove_selected_replacements)
        self.replacement_view.selectionModel().selectionChanged.connect(self._replacement_selection)
        self.replacements.modelReset.connect(self._replacement_selection)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_replacement)
        buttons.addWidget(self.remove_replacement)
        buttons.addStretch(1)
        tab = QWidget()
        column = QVBoxLayout(tab)
        column.addWidget(self.replacement_view, 1)
        column.addWidget(written_label)
        column.addWidget(self.written)
        column.addLayout(buttons)
        self._replacement_selection()
        return tab

    def _strength_row(self) -> None:
        self.strength = QSlider(Qt.Orientation.Horizontal)
        low, high = STRENGTH_RANGE
        self.strength.setRange(round(low * STRENGTH_STEPS), round(high * STRENGTH_STEPS))
        self.strength.setPageStep(STRENGTH_STEPS)
        self.strength_reading = QLabel()
        self.strength_reading.setMinimumWidth(self.strength_reading.fontMetrics().horizontalAdvance("10 (default)"))
        self.strength.valueChanged.connect(self._strength_moved)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(QLabel("Off"))
        line.addWidget(self.strength, 1)
        line.addWidget(QLabel("Strong"))
        line.addWidget(self.strength_reading)
        note = QLabel(
            f"{DEFAULT_STRENGTH:g}, the default, was chosen by measurement: on noisy speech it finds the listed "
            "phrases most often without writing them where they were not said. Stronger finds more, and "
            "sometimes hears a phrase that was not said."
        )
        note.setWordWrap(True)
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(line)
        column.addWidget(note)
        self.add_row("Strength", box, "How hard Perch listens for the words and phrases in the list; Off ignores it.")
        self.strength.setToolTip(box.toolTip())
        self._show_strength()

    def _try_row(self) -> None:
        self.try_button = _button(
            "Try it…",
            f"Transcribe your last {TRIAL_COUNT} recordings without and with this list, to see what it changes",
        )
        self.try_button.clicked.connect(self.try_it)
        if self._trial is None:
            self.try_button.setEnabled(False)
            self.try_button.setToolTip("Try it works in the running app, on the recordings in its history.")
        note = QLabel(f"See what the list changes on your last {TRIAL_COUNT} recordings before you keep it.")
        note.setWordWrap(True)
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.try_button)
        line.addWidget(note, 1)
        self.form.addRow(row)

    # The setting.

    def vocabulary(self) -> VocabularySettings:
        """The vocabulary as the page shows it."""
        return VocabularySettings(self.phrases.entries(), self._strength, self.replacements.entries())

    def show_vocabulary(self, value: VocabularySettings) -> None:
        """Show `value` (left alone when the page already shows it, so that an edit in progress stays)."""
        if value == self.vocabulary():
            return
        if value.phrases != self.phrases.entries():
            self.phrases.set_entries(value.phrases)
        if value.replacements != self.replacements.entries():
            self.replacements.set_entries(value.replacements)
        self._strength = value.strength
        self._show_strength()

    def refresh(self, settings: Settings) -> None:
        self._show_count()

    # Phrases.

    def start_new_phrase(self) -> None:
        """Add an empty row at the end and start editing it (the search is cleared so that it shows)."""
        self.search.clear()
        row = self.phrases.add([VocabularyEntry("")])
        index = self.proxy.mapFromSource(self.phrases.index(row, PhraseModel.TEXT))
        self.phrase_view.scrollTo(index)
        self.phrase_view.setCurrentIndex(index)
        self.phrase_view.edit(index)

    def remove_selected_phrases(self) -> None:
        self.phrases.remove(_selected_rows(self.phrase_view, self.proxy))

    def _drop_blank_phrases(self) -> None:
        blank = [row for row in range(self.phrases.rowCount()) if not self.phrases.text(row).strip()]
        self.phrases.remove(blank)

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(" ".join(text.split()))
        self._show_count()

    def _phrase_selection(self) -> None:
        self.remove_phrase.setEnabled(self.phrase_view.selectionModel().hasSelection())

    def _show_count(self) -> None:
        total = len(self.phrases.entries())
        text = f"{total:,} phrase" if total == 1 else f"{total:,} phrases"
        if self.search.text().strip():
            text = f"{self.proxy.rowCount():,} of {text}"
        self.count.setText(text)
        self.add_phrase.setEnabled(total < MAX_PHRASES)
        if total >= NEAR_LIMIT:
            self.set_problem(
                "limit",
                f"The list holds {total:,} phrases; Perch boosts at most {MAX_PHRASES:,}. Keep the names and words "
                "the model gets wrong.",
            )
        else:
            self.set_problem("limit", "")

    # Import and export.

    def ask_import(self) -> None:
        """Choose a text file to import (without blocking the event loop)."""
        dialog = QFileDialog(self, "Import words and phrases")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter(TEXT_FILTER)
        dialog.fileSelected.connect(lambda name: self.import_file(Path(name)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def ask_export(self) -> None:
        """Choose where to export the list (without blocking the event loop)."""
        dialog = QFileDialog(self, "Export words and phrases")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter(TEXT_FILTER)
        dialog.setDefaultSuffix("txt")
        dialog.selectFile("vocabulary.txt")
        dialog.fileSelected.connect(lambda name: self.export_file(Path(name)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    @property
    def busy(self) -> bool:
        """Whether a file is being read or written."""
        return bool(self._files.pending)

    def import_file(self, path: Path) -> None:
        """Add the phrases of a text file that are not in the list yet (read off the GUI thread)."""
        self._files.submit(
            lambda: read_phrase_file(path),
            lambda phrases: self._imported(path, phrases),
            lambda exc: self._file_failed("import", f"Not imported: {exc}"),
        )

    def _imported(self, path: Path, phrases: list[Phrase]) -> None:
        known = {entry.text for entry in self.phrases.entries()}
        distinct = list(dict.fromkeys(phrase.text for phrase in phrases))
        new = [text for text in distinct if text not in known]
        if len(known) + len(new) > MAX_PHRASES:
            self._file_failed(
                "import",
                f"Not imported: with {path.name} the list would hold {len(known) + len(new):,} phrases, and Perch "
                f"boosts at most {MAX_PHRASES:,}.",
            )
            return
        self.set_problem("import", "")
        self.phrases.add(VocabularyEntry(text) for text in new)
        if not new:
            self._note(f"Nothing new in {path.name}: its phrases are in the list already.")
        elif len(new) < len(distinct):
            self._note(
                f"Imported {len(new):,} of the {len(distinct):,} phrases in {path.name} (the others were in the list "
                "already)."
            )
        else:
            self._note(f"Imported {len(new):,} phrase{'' if len(new) == 1 else 's'} from {path.name}.")

    def export_file(self, path: Path) -> None:
        """Write the phrases to a UTF-8 text file, one per line (off the GUI thread)."""
        texts = [entry.text for entry in self.phrases.entries()]

        def write() -> None:
            path.write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")

        self._files.submit(
            write,
            lambda _none: self._exported(path, len(texts)),
            lambda exc: self._file_failed("export", f"Not exported: {getattr(exc, 'strerror', None) or exc}."),
        )

    def _exported(self, path: Path, count: int) -> None:
        self.set_problem("export", "")
        self._note(f"Exported {count:,} phrase{'' if count == 1 else 's'} to {path}.")

    def _file_failed(self, key: str, message: str) -> None:
        self._note("")
        self.set_problem(key, " ".join(message.split()))

    def _note(self, text: str) -> None:
        self.file_note.setText(text)
        self.file_note.setVisible(bool(text))

    # Replacements.

    def start_new_replacement(self) -> None:
        """Add an empty replacement and start editing what is said."""
        row = self.replacements.add(ReplacementEntry("", ""))
        index = self.replacements.index(row, ReplacementModel.SPOKEN)
        self.replacement_view.scrollTo(index)
        self.replacement_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.replacement_view.edit(index)

    def remove_selected_replacements(self) -> None:
        self.replacements.remove(_selected_rows(self.replacement_view))

    def _drop_blank_replacements(self) -> None:
        model = self.replacements
        model.remove(row for row in range(model.rowCount()) if not model.spoken(row) and not model.written(row))

    def _current_replacement(self) -> int | None:
        rows = _selected_rows(self.replacement_view)
        return rows[0] if len(rows) == 1 else None

    def _replacement_selection(self) -> None:
        row = self._current_replacement()
        self.remove_replacement.setEnabled(self.replacement_view.selectionModel().hasSelection())
        self.written.blockSignals(True)
        try:
            self.written.setPlainText("" if row is None else self.replacements.written(row))
        finally:
            self.written.blockSignals(False)
        self.written.setEnabled(row is not None)

    def _written_edited(self) -> None:
        row = self._current_replacement()
        if row is not None:
            self.replacements.set_written(row, self.written.toPlainText())

    def _replacement_double_clicked(self, index: QModelIndex) -> None:
        if index.column() == ReplacementModel.WRITTEN:
            self.written.setFocus()

    # Strength.

    def _strength_moved(self, position: int) -> None:
        self._strength = position / STRENGTH_STEPS
        self._show_reading()
        self.edited.emit()

    def _show_strength(self) -> None:
        self.strength.blockSignals(True)
        try:
            self.strength.setValue(round(self._strength * STRENGTH_STEPS))
        finally:
            self.strength.blockSignals(False)
        self._show_reading()

    def _show_reading(self) -> None:
        value = self._strength
        text = "Off" if value == 0 else f"{value:g}"
        self.strength_reading.setText(f"{text} (default)" if value == DEFAULT_STRENGTH else text)

    # Try it.

    def try_it(self) -> None:
        """Open the comparison of the last recordings without and with the list on the page."""
        if self._trial is None:
            return
        if self.trial_window is None:
            self.trial_window = TrialWindow(self._trial, self.vocabulary, self)
        self.trial_window.show()
        self.trial_window.raise_()
        self.trial_window.activateWindow()
        self.trial_window.start()
