"""The two lists of the Vocabulary page as table models: phrases (with "stronger") and replacements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import QWidget

from app.vocabulary_settings import ReplacementEntry, VocabularyEntry

Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()
_EDITABLE = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
_CHECKABLE = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
_SHOWN = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def _check_state(on: bool) -> Qt.CheckState:
    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked


def _is_checked(value: Any) -> bool:
    return Qt.CheckState(value) == Qt.CheckState.Checked


@dataclass
class _Phrase:
    text: str
    stronger: bool


@dataclass
class _Replacement:
    spoken: str
    written: str
    case_sensitive: bool


class _ListModel(QAbstractTableModel):
    """Rows kept in a list; `edited` follows every change the person makes."""

    edited = Signal()
    headers: tuple[str, ...] = ()
    tips: tuple[str, ...] = ()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def rowCount(self, parent: Index = _ROOT) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = _ROOT) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.headers)

    def headerData(  # noqa: N802 - Qt's name
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.headers):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[section]
        return None

    def _replace_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def _append(self, rows: list[Any]) -> int:
        """Add rows at the end; the first new row."""
        first = len(self._rows)
        if rows:
            self.beginInsertRows(_ROOT, first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
            self.edited.emit()
        return first

    def remove(self, rows: Iterable[int]) -> None:
        """Remove the rows at these positions."""
        chosen = sorted(set(rows), reverse=True)
        for row in chosen:
            self.beginRemoveRows(_ROOT, row, row)
            del self._rows[row]
            self.endRemoveRows()
        if chosen:
            self.edited.emit()

    def _changed(self, index: Index) -> None:
        self.dataChanged.emit(index, index)
        self.edited.emit()


class PhraseModel(_ListModel):
    """Words and phrases to boost: the text, edited in place, and a "stronger" check box."""

    TEXT, STRONGER = 0, 1
    headers = ("Word or phrase", "Stronger")
    tips = (
        "A name, a term or a phrase that Perch should listen for; double-click to edit it.",
        "Boost it harder: for a name that still comes out wrong.",
    )

    def entries(self) -> tuple[VocabularyEntry, ...]:
        """The phrases as the settings keep them: blank rows left out, each text once (its first row)."""
        seen: set[str] = set()
        found = []
        for row in self._rows:
            text = _collapsed(row.text)
            if text and text not in seen:
                seen.add(text)
                found.append(VocabularyEntry(text, row.stronger))
        return tuple(found)

    def set_entries(self, entries: Iterable[VocabularyEntry]) -> None:
        """Show these phrases instead of the rows there are."""
        self._replace_rows([_Phrase(e.text, e.stronger) for e in entries])

    def add(self, entries: Iterable[VocabularyEntry]) -> int:
        """Append phrases; the row of the first."""
        return self._append([_Phrase(e.text, e.stronger) for e in entries])

    def text(self, row: int) -> str:
        return str(self._rows[row].text)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        phrase: _Phrase = self._rows[index.row()]
        if index.column() == self.TEXT and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return phrase.text
        if index.column() == self.STRONGER and role == Qt.ItemDataRole.CheckStateRole:
            return _check_state(phrase.stronger)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[index.column()]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return _EDITABLE if index.column() == self.TEXT else _CHECKABLE

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid():
            return False
        phrase: _Phrase = self._rows[index.row()]
        if index.column() == self.TEXT and role == Qt.ItemDataRole.EditRole:
            phrase.text = _collapsed(str(value))
        elif index.column() == self.STRONGER and role == Qt.ItemDataRole.CheckStateRole:
            phrase.stronger = _is_checked(value)
        else:
            return False
        self._changed(index)
        return True


class ReplacementModel(_ListModel):
    """Replacements: the spoken form and "match case" edited in place; the written form, which may span several
    lines, is shown on one line here and edited beside the table."""

    SPOKEN, WRITTEN, CASE = 0, 1, 2
    headers = ("When I say", "Write", "Match case")
    tips = (
        "The words as you say them (and as the model writes them); double-click to edit.",
        "What is typed instead; it may span several lines (a snippet). Edit it in the box under the list.",
        "Replace only when the case matches too.",
    )

    def entries(self) -> tuple[ReplacementEntry, ...]:
        """The replacements as the settings keep them (rows without a spoken form left out)."""
        return tuple(
            ReplacementEntry(_collapsed(r.spoken), r.written, r.case_sensitive)
            for r in self._rows
            if _collapsed(r.spoken)
        )

    def set_entries(self, entries: Iterable[ReplacementEntry]) -> None:
        """Show these replacements instead of the rows there are."""
        self._replace_rows([_Replacement(e.spoken, e.written, e.case_sensitive) for e in entries])

    def add(self, entry: ReplacementEntry) -> int:
        """Append a replacement; its row."""
        return self._append([_Replacement(entry.spoken, entry.written, entry.case_sensitive)])

    def spoken(self, row: int) -> str:
        return _collapsed(self._rows[row].spoken)

    def written(self, row: int) -> str:
        return str(self._rows[row].written)

    def set_written(self, row: int, text: str) -> None:
        """Change the written form of a row."""
        replacement: _Replacement = self._rows[row]
        if replacement.written != text:
            replacement.written = text
            self._changed(self.index(row, self.WRITTEN))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        replacement: _Replacement = self._rows[index.row()]
        column = index.column()
        if column == self.SPOKEN and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return replacement.spoken
        if column == self.WRITTEN and role == Qt.ItemDataRole.DisplayRole:
            return " ⏎ ".join(replacement.written.splitlines())
        if column == self.WRITTEN and role == Qt.ItemDataRole.ToolTipRole:
            return replacement.written or self.tips[column]
        if column == self.CASE and role == Qt.ItemDataRole.CheckStateRole:
            return _check_state(replacement.case_sensitive)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[column]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return {self.SPOKEN: _EDITABLE, self.WRITTEN: _SHOWN}.get(index.column(), _CHECKABLE)

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid():
            return False
        replacement: _Replacement = self._rows[index.row()]
        if index.column() == self.SPOKEN and role == Qt.ItemDataRole.EditRole:
            replacement.spoken = _collapsed(str(value))
        elif index.column() == self.CASE and role == Qt.ItemDataRole.CheckStateRole:
            replacement.case_sensitive = _is_checked(value)
        else:
            return False
        self._changed(index)
        return True
