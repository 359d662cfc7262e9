"""What settings pages are built from: a page with a form, and bindings between its controls and settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings

WARNING_STYLE = "color: palette(link);"
"""Inline messages: the palette's accent colour, readable on light and dark themes."""


def value_of(settings: Settings, path: str) -> Any:
    """The value at `path`: a field name, or `caption.<field>`."""
    group, _, name = path.rpartition(".")
    return getattr(settings.caption if group == "caption" else settings, name)


def with_value(settings: Settings, path: str, value: Any) -> Settings:
    """A copy of `settings` with the value at `path` replaced."""
    group, _, name = path.rpartition(".")
    if group == "caption":
        return replace(settings, caption=replace(settings.caption, **{name: value}))
    return replace(settings, **{name: value})


@dataclass(eq=False)
class Binding:
    """How one control edits one setting."""

    path: str
    page: Page
    changed: SignalInstance
    """Emitted when the person edits the control."""
    read: Callable[[], Any]
    """The value the control shows."""
    write: Callable[[Any], None]
    """Show a value (called with the dialog's edits ignored)."""
    debounce: bool = False
    """Save once the edits pause (sliders, spin boxes, typed text) rather than at every step."""
    check: Callable[[Any, Settings], str | None] | None = None
    """Why a value may not be saved, given the current settings; None when it may."""
    effect: Callable[[Any], None] | None = None
    """Something to do outside the settings file before saving; OSError stops the save."""
    report: Callable[[str], None] | None = None
    """Where messages about this control go; the page's message line by default."""

    def show_problem(self, text: str) -> None:
        """Show an inline message for this control; "" removes it."""
        if self.report is not None:
            self.report(text)
        else:
            self.page.set_problem(self.path, text)


class Page(QWidget):
    """One section of the settings dialog: a heading, a form, and a line for messages."""

    def __init__(self, key: str, title: str, intro: str = "") -> None:
        super().__init__()
        self.key = key
        self.title = title
        self.bindings: list[Binding] = []
        self.controls: dict[str, QWidget] = {}
        """The main control of each setting on the page, by path."""
        self._problems: dict[str, str] = {}
        heading = QLabel(title)
        font = QFont(heading.font())
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        heading.setFont(font)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(WARNING_STYLE)
        self.problem.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        if intro:
            note = QLabel(intro)
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addLayout(self.form)
        layout.addWidget(self.problem)
        layout.addStretch(1)

    def refresh(self, settings: Settings) -> None:
        """Bring what the page derives from the settings up to date (statuses, enabled states)."""

    def set_problem(self, key: str, text: str) -> None:
        """Show (or with "" remove) the message about `key` on the page's message line."""
        if text:
            self._problems[key] = text
        else:
            self._problems.pop(key, None)
        self.problem.setText("\n".join(self._problems.values()))
        self.problem.setVisible(bool(self._problems))

    def problem_text(self) -> str:
        """The messages shown on the page, one per line."""
        return self.problem.text() if self._problems else ""

    def section(self, title: str) -> None:
        """A bold heading inside the form."""
        label = QLabel(title)
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
        self.form.addRow(label)

    def add_row(self, label: str, widget: QWidget, tip: str) -> None:
        """A labelled row; the tooltip goes on both the label and the control."""
        widget.setToolTip(tip)
        if label:
            caption = QLabel(label)
            caption.setToolTip(tip)
            caption.setBuddy(widget)
            self.form.addRow(caption, widget)
        else:
            self.form.addRow(widget)

    def bind(
        self, path: str, control: QWidget, changed: SignalInstance, read: Callable[[], Any], **options: Any
    ) -> Binding:
        """Register how `control` edits the setting at `path`; options as in `Binding`, `write` required."""
        binding = Binding(path=path, page=self, changed=changed, read=read, **options)
        self.bindings.append(binding)
        self.controls.setdefault(path, control)
        return binding

    def check_box(self, path: str, text: str, tip: str) -> QCheckBox:
        box = QCheckBox(text)
        self.add_row("", box, tip)
        self.bind(path, box, box.toggled, box.isChecked, write=box.setChecked)
        return box

    def choice(self, path: str, label: str, options: Sequence[tuple[str, str]], tip: str) -> QComboBox:
        """A drop-down of (value, text) options."""
        combo = QComboBox()
        for value, text in options:
            combo.addItem(text, value)
        self.add_row(label, combo, tip)

        def write(value: Any) -> None:
            combo.setCurrentIndex(combo.findData(value))

        self.bind(path, combo, combo.currentIndexChanged, combo.currentData, write=write)
        return combo

    def number(
        self, path: str, label: str, low: int, high: int, tip: str, *, suffix: str = "", zero_text: str = ""
    ) -> QSpinBox:
        """A spin box; `zero_text` is shown instead of 0 (for "forever", "none")."""
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSuffix(suffix)
        if zero_text:
            spin.setSpecialValueText(zero_text)
        spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.add_row(label, spin, tip)
        self.bind(path, spin, spin.valueChanged, spin.value, write=spin.setValue, debounce=True)
        return spin

    def slider(
        self,
        path: str,
        label: str,
        span: tuple[float, float],
        tip: str,
        *,
        ends: tuple[str, str],
        steps: int = 100,
        show: Callable[[float], str] | None = None,
    ) -> QSlider:
        """A slider over `span` in 1/`steps` steps, with a word at each end and optionally the value."""
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(round(span[0] * steps), round(span[1] * steps))
        slider.setPageStep(max(1, steps // 10))
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(QLabel(ends[0]))
        line.addWidget(slider, 1)
        line.addWidget(QLabel(ends[1]))
        if show is not None:
            reading = QLabel()
            reading.setMinimumWidth(reading.fontMetrics().horizontalAdvance("100 %") + 4)
            slider.valueChanged.connect(lambda step: reading.setText(show(step / steps)))
            reading.setText(show(slider.value() / steps))
            line.addWidget(reading)
        self.add_row(label, row, tip)
        slider.setToolTip(tip)

        def write(value: Any) -> None:
            slider.setValue(round(float(value) * steps))

        self.bind(path, slider, slider.valueChanged, lambda: slider.value() / steps, write=write, debounce=True)
        return slider
