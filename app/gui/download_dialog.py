"""The first-run dialog: choose a speech model, download it with progress, or place its files by hand."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.download_task import ModelDownload
from stt.catalog import CATALOG, DEFAULT_MODEL, Quantization, get_spec, variant_size
from stt.modelstore import is_downloaded, marker_path, model_dir, placed_problems

PUBLIC_HUB = "https://huggingface.co"
PROGRESS_STEPS = 1000
"""The progress bar counts in thousandths: byte counts do not fit its int range."""

MODEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("parakeet-tdt-0.6b-v3", "Parakeet TDT v3 — 25 European languages"),
    ("parakeet-tdt-0.6b-v2", "Parakeet TDT v2 — English only, a little more accurate in English"),
)
VARIANT_TEXT: dict[Quantization, str] = {
    "int8": "int8 — smaller; recommended on the CPU",
    "fp32": "fp32 — full precision; recommended with an NVIDIA GPU",
}
# Phrases of the hub's messages: it suggests placing files by hand exactly when a download cannot reach it.
_BY_HAND = "by hand"
_OFFLINE = "offline mode is on"
_UNREACHABLE = "cannot reach the Hugging Face hub"


def needs_download(model: str, quantization: Quantization) -> bool:
    """Whether `model` is a catalog name whose `quantization` is neither downloaded nor placed by hand.

    A folder path, or any name outside the catalog, never needs a download. Only checks files on disk.
    """
    if model not in CATALOG:
        return False
    if is_downloaded(model, quantization):
        return False
    if marker_path(model, quantization).exists():
        return True  # a damaged download: downloading again repairs it
    return bool(placed_problems(get_spec(model), quantization, model_dir(model)))


def format_bytes(count: float) -> str:
    """A byte count for people, in decimal units: 512 bytes, 12 kB, 312 MB, 2.55 GB."""
    if count < 1000:
        return f"{count:.0f} bytes"
    if round(count / 1e3) < 1000:
        return f"{count / 1e3:.0f} kB"
    if round(count / 1e6) < 1000:
        return f"{count / 1e6:.0f} MB"
    return f"{count / 1e9:.2f} GB"


def format_speed(bytes_per_s: float) -> str:
    """A transfer speed: 850 kB/s, 24.5 MB/s, 1.20 GB/s."""
    if round(bytes_per_s / 1e3) < 1000:
        return f"{bytes_per_s / 1e3:.0f} kB/s"
    if round(bytes_per_s / 1e6, 1) < 1000:
        return f"{bytes_per_s / 1e6:.1f} MB/s"
    return f"{bytes_per_s / 1e9:.2f} GB/s"


def format_time_left(seconds: float) -> str:
    """A rounded estimate: seconds under 10 s, then 5 s steps, whole minutes, then hours in 5-minute steps."""
    if seconds < 10:
        return f"about {max(1, math.ceil(seconds))} s left"
    if seconds < 57.5:
        return f"about {_nearest(seconds / 5) * 5} s left"
    minutes = _nearest(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(_nearest(seconds / 300) * 5, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


def _nearest(value: float) -> int:
    """Rounded half up, as people round (Python's round() goes to even)."""
    return math.floor(value + 0.5)


def progress_text(done: int, total: int, bytes_per_s: float, seconds_left: float) -> str:
    """The line under the progress bar: "312 MB of 671 MB — 24.5 MB/s — about 15 s left"."""
    parts = [f"{format_bytes(done)} of {format_bytes(total)}"]
    if bytes_per_s > 0:
        parts.append(format_speed(bytes_per_s))
    if seconds_left >= 0 and done < total:
        parts.append(format_time_left(seconds_left))
    return " — ".join(parts)


def download_size(count: int) -> str:
    """A variant's size as offered for download: in GB, or smaller units for tiny models."""
    return f"{count / 1e9:.2f} GB" if count >= 10_000_000 else format_bytes(count)


def repository_url(name: str) -> str:
    """Where a person can fetch the files of catalog model `name` by hand."""
    spec = get_spec(name)
    endpoint = (os.environ.get("HF_ENDPOINT") or PUBLIC_HUB).rstrip("/")
    return f"{endpoint}/{spec.repo_id}/tree/{spec.revision}"


class FirstRunDialog(QDialog):
    """Shown when no speech model is on disk: offers the models and variants, downloads one, or explains how to
    place its files by hand. Emits `model_ready` and closes once the chosen variant is complete."""

    model_ready = Signal(str, str)
    """(catalog name, quantization) of the variant now on disk."""

    def __init__(
        self,
        cuda_available: bool,
        parent: QWidget | None = None,
        *,
        name: str | None = None,
        quantization: Quantization | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Perch — download a speech model")
        self.cuda_available = cuda_available
        self.recommended: Quantization = "fp32" if cuda_available else "int8"
        self.download = ModelDownload(self)
        self._task: tuple[str, Quantization] | None = None
        self._checking = False
        self._last_progress: tuple[int, int] | None = None

        intro = QLabel(
            "Perch recognises speech on this computer, so it needs a speech model. Choose one to download "
            "from Hugging Face; this is needed only once."
        )
        intro.setWordWrap(True)

        choices = list(MODEL_CHOICES)
        if name in CATALOG and name not in dict(choices):
            choices.append((name, f"{name} — {CATALOG[name].description}"))
        chosen_name = name if name in dict(choices) else DEFAULT_MODEL
        self.model_buttons: dict[str, QRadioButton] = {}
        self._model_group = QButtonGroup(self)
        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        for model, label in choices:
            button = QRadioButton(label)
            button.setChecked(model == chosen_name)
            self._model_group.addButton(button)
            self.model_buttons[model] = button
            model_layout.addWidget(button)

        self.variant_buttons: dict[Quantization, QRadioButton] = {}
        self._variant_group = QButtonGroup(self)
        variant_box = QGroupBox("Variant")
        variant_layout = QVBoxLayout(variant_box)
        for variant in ("int8", "fp32"):
            button = QRadioButton()
            button.setChecked(variant == (quantization or self.recommended))
            self._variant_group.addButton(button)
            self.variant_buttons[variant] = button
            variant_layout.addWidget(button)
        self.hint = QLabel(
            "This computer has a usable NVIDIA GPU: fp32 is the better choice here."
            if cuda_available
            else "No usable NVIDIA GPU was found: int8 is the better choice here."
        )
        self.hint.setWordWrap(True)
        variant_layout.addWidget(self.hint)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.progress_bar.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.hide()

        self.problem = ProblemPanel()
        self.problem.hide()

        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for push in (self.download_button, self.cancel_button, self.close_button):
            buttons.addWidget(push)

        layout = QVBoxLayout(self)
        for widget in (intro, model_box, variant_box, self.progress_bar, self.status_label, self.problem):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self.setMinimumWidth(560)

        self._model_group.buttonToggled.connect(self._on_toggled)
        self._variant_group.buttonToggled.connect(self._on_toggled)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.close_button.clicked.connect(self.reject)
        self.problem.check_button.clicked.connect(self.check_again)
        self.download.progress.connect(self.show_progress)
        self.download.finished.connect(self._on_finished)
        self.download.failed.connect(self._on_failed)
        self.download.cancelled.connect(self._on_cancelled)
        self._on_choice_changed()

    @property
    def chosen_model(self) -> str:
        """The catalog name of the selected model."""
        return next(model for model, button in self.model_buttons.items() if button.isChecked())

    @property
    def chosen_quantization(self) -> Quantization:
        """The selected variant."""
        return next(variant for variant, button in self.variant_buttons.items() if button.isChecked())

    @Slot()
    def start_download(self) -> None:
        """Download the selected variant, resuming what an earlier attempt left."""
        if self.download.busy:
            return
        self._task = (self.chosen_model, self.chosen_quantization)
        self._checking = False
        self._last_progress = None
        self.problem.hide()
        self.progress_bar.show()
        self.status_label.setText(f"Connecting to Hugging Face to download {self._task[0]} ({self._task[1]})…")
        self.status_label.show()
        self._set_busy(True)
        self.cancel_button.show()
        self._fit()
        self.cancel_button.setEnabled(True)
        self.download.start(*self._task)

    @Slot()
    def cancel_download(self) -> None:
        """Stop the running download; its partial files stay so that Download resumes it."""
        if not self.download.busy:
            return
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Stopping the download…")
        self.download.cancel()

    @Slot()
    def check_again(self) -> None:
        """Look for files placed by hand for the selected variant."""
        if self.download.busy:
            return
        self._task = (self.chosen_model, self.chosen_quantization)
        self._checking = True
        self.problem.feedback.setText("Checking the files…")
        self._set_busy(True)
        self.download.check(*self._task)

    @Slot(object, object, float, float)
    def show_progress(self, done: int, total: int, bytes_per_s: float, seconds_left: float) -> None:
        """Move the bar and rewrite the line under it."""
        self._last_progress = (done, total)
        self.progress_bar.setValue(round(done / total * PROGRESS_STEPS) if total else PROGRESS_STEPS)
        if self.cancel_button.isEnabled():
            self.status_label.setText(progress_text(done, total, bytes_per_s, seconds_left))

    def reject(self) -> None:
        """Close; a running download stops and can be resumed later."""
        self.download.cancel()
        self._task = None
        super().reject()

    def _set_busy(self, busy: bool) -> None:
        for button in (*self.model_buttons.values(), *self.variant_buttons.values()):
            button.setEnabled(not busy)
        self.download_button.setEnabled(not busy)
        self.problem.check_button.setEnabled(not busy)

    def _fit(self) -> None:
        # Word-wrapped labels do not resize a shown window by themselves, and adjustSize() stops at 2/3 of the screen.
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        width = max(self.width(), self.minimumWidth())
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
        screen = self.screen()
        if screen is not None:
            height = min(height, screen.availableGeometry().height())
        self.resize(width, height)

    def _idle(self) -> None:
        self._set_busy(False)
        self.cancel_button.hide()

    @Slot(QAbstractButton, bool)
    def _on_toggled(self, _button: QAbstractButton, checked: bool) -> None:
        if checked:
            self._on_choice_changed()

    def _on_choice_changed(self) -> None:
        spec = get_spec(self.chosen_model)
        for variant, button in self.variant_buttons.items():
            button.setText(f"{VARIANT_TEXT[variant]} — {download_size(variant_size(spec, variant))}")
        self.problem.describe(self.chosen_model, self.chosen_quantization)

    @Slot(str)
    def _on_finished(self, path: str) -> None:
        task, self._task = self._task, None
        self._idle()
        if task is not None:
            self.status_label.setText(f"{task[0]} ({task[1]}) is ready in {path}.")
            self.model_ready.emit(*task)
            self.accept()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._task = None
        self._idle()
        if self._checking:
            self.problem.feedback.setText(
                f"Not complete yet: {message}. Put the files in the folder above, then press Check again."
            )
            return
        self.progress_bar.hide()
        self.status_label.hide()
        self.problem.show_failure(message)
        self.problem.describe(self.chosen_model, self.chosen_quantization)
        self.problem.show()
        self._fit()

    @Slot()
    def _on_cancelled(self) -> None:
        self._task = None
        self._idle()
        where = ""
        if self._last_progress is not None:
            done, total = self._last_progress
            where = f" at {format_bytes(done)} of {format_bytes(total)}"
        self.status_label.setText(f"Download stopped{where}. Press Download to resume it where it stopped.")


class ProblemPanel(QWidget):
    """Why a download failed and, when the hub cannot be reached, how to place the files by hand."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.next_step = QLabel()
        self.next_step.setWordWrap(True)

        self.by_hand = QGroupBox("Place the files by hand")
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.source.setTextFormat(Qt.TextFormat.RichText)
        self.source.setOpenExternalLinks(True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.files = QLabel()
        self.files.setFont(fixed)
        self.files.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        into = QLabel("Copy them into this folder on this computer, then press Check again:")
        into.setWordWrap(True)
        self.folder = QLineEdit()
        self.folder.setReadOnly(True)
        self.folder.setFont(fixed)
        self.copy_button = QPushButton("Copy folder path")
        self.open_button = QPushButton("Open folder")
        self.check_button = QPushButton("Check again")
        row = QHBoxLayout()
        for button in (self.copy_button, self.open_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.check_button)
        self.feedback = QLabel()
        self.feedback.setWordWrap(True)
        box = QVBoxLayout(self.by_hand)
        for widget in (self.source, self.files, into, self.folder):
            box.addWidget(widget)
        box.addLayout(row)
        box.addWidget(self.feedback)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for part in (self.headline, self.message, self.next_step, self.by_hand):
            layout.addWidget(part)
        self.copy_button.clicked.connect(self.copy_folder)
        self.open_button.clicked.connect(self.open_folder)

    def show_failure(self, message: str) -> None:
        """Show a download error; the by-hand instructions appear when the hub suggests them."""
        by_hand = _BY_HAND in message
        if _OFFLINE in message:
            self.headline.setText("Offline mode is on (HF_HUB_OFFLINE is set), so Perch cannot download the model.")
        elif _UNREACHABLE in message:
            self.headline.setText("Perch cannot reach the Hugging Face hub.")
        else:
            self.headline.setText("The download did not finish.")
        self.message.setText(_sentence(message))
        if _OFFLINE in message:
            self.next_step.setText(
                "Unset HF_HUB_OFFLINE and start Perch again to download, or place the files by hand as described below."
            )
        elif by_hand:
            self.next_step.setText(
                "Connect to the internet and press Download (it resumes where it stopped), "
                "or place the files by hand as described below."
            )
        else:
            self.next_step.setText("Press Download to try again; it resumes where it stopped.")
        self.feedback.clear()
        self.by_hand.setVisible(by_hand)

    def describe(self, name: str, quantization: Quantization) -> None:
        """Fill in the files, folder and source for one variant."""
        spec = get_spec(name)
        url = repository_url(name)
        self.source.setText(
            f"On a computer with internet access, download these files of {html.escape(name)} ({quantization}) "
            f'from <a href="{html.escape(url)}">{html.escape(url)}</a>:'
        )
        lines = [f"{file.name}  ({format_bytes(file.approx_size)})" for file in spec.files[quantization]]
        self.files.setText("\n".join(lines))
        self.folder.setText(str(model_dir(name)))

    @Slot()
    def copy_folder(self) -> None:
        """Put the model folder's path on the clipboard."""
        QGuiApplication.clipboard().setText(self.folder.text())
        self.feedback.setText("The folder path is on the clipboard.")

    @Slot()
    def open_folder(self) -> None:
        """Show the model folder in the file manager, creating it first."""
        folder = Path(self.folder.text())
        folder.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.feedback.setText(f"No file manager could open {folder}; copy its path and open it yourself.")


def _sentence(message: str) -> str:
    """An engine message as a sentence: capital first letter, full stop."""
    text = message[:1].upper() + message[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
