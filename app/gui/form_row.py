"""A control with a button or reading beside it and a message line under both, as the settings use it."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget


def row_with_message(owner: QWidget, main: QWidget, side: QWidget) -> QLabel:
    """Lay out `main` (stretching) and `side` in a row on `owner`, a hidden message line below; the message."""
    message = QLabel()
    message.setWordWrap(True)
    message.setStyleSheet("color: palette(link);")
    message.hide()
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(main, 1)
    row.addWidget(side)
    column = QVBoxLayout(owner)
    column.setContentsMargins(0, 0, 0, 0)
    column.addLayout(row)
    column.addWidget(message)
    return message
