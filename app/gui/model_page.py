"""The Model and Device pages: which model and weights, whether they are downloaded, and where they run."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from app.gui.background import run_in_background
from app.gui.settings_form import Page
from app.settings import Settings, resolved_weights
from stt.catalog import CATALOG, ModelSpec, Quantization, variant_size
from stt.modelstore import is_downloaded

log = logging.getLogger("perch.gui")

CUSTOM = ""
"""The model list's entry for a model folder chosen by the person."""

MODEL_TITLES = {
    "parakeet-tdt-0.6b-v3": "Parakeet v3 — 25 European languages",
    "parakeet-tdt-0.6b-v2": "Parakeet v2 — English only",
}
MODEL_DESCRIPTIONS = {
    "parakeet-tdt-0.6b-v3": (
        "Understands 25 European languages, among them English, German, French, Spanish, Italian and Polish, "
        "and recognises which one you speak. Writes punctuation and capital letters."
    ),
    "parakeet-tdt-0.6b-v2": (
        "Understands English only, and is slightly more accurate on it than v3. Writes punctuation and capital letters."
    ),
}
FOLDER_DESCRIPTION = (
    "A model you placed yourself: a folder with encoder-model.onnx (and its .data file), decoder_joint-model.onnx, "
    "vocab.txt and config.json, or their .int8.onnx versions."
)
DEVICE_OPTIONS = [
    ("auto", "Automatic — the NVIDIA GPU when it works, otherwise the CPU"),
    ("cuda", "NVIDIA GPU (CUDA)"),
    ("tensorrt", "NVIDIA GPU with TensorRT — fastest; the first start takes a few minutes"),
    ("cpu", "CPU only"),
]


def size_text(spec: ModelSpec, quantization: Quantization) -> str:
    """The download size of a variant, e.g. `0.67 GB`."""
    return f"{variant_size(spec, quantization) / 1e9:.2f} GB"


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """Whether ONNX Runtime can run on an NVIDIA GPU here, and one line saying so or why not (slow: imports
    onnxruntime, loads the CUDA libraries and runs a tiny session)."""
    from stt.runtime import cuda_problem

    problem = cuda_problem()
    if problem is None:
        return True, "CUDA works on this computer: the model can run on the NVIDIA GPU."
    return False, f"CUDA cannot be used here, so the model runs on the CPU: {problem}."


class ModelPage(Page):
    """Model, weights, download state and the Download button."""

    model_edited = Signal()
    """The person picked a model from the list or a folder with Browse."""
    download_requested = Signal(str, str)
    """(catalog name, "int8" or "fp32"): the chosen variant is not on disk and the person asked for it."""

    def __init__(self) -> None:
        super().__init__("model", "Model")
        self._settings = Settings()
        self._cuda: bool | None = None
        self.model_combo = QComboBox()
        for name, spec in CATALOG.items():
            self.model_combo.addItem(MODEL_TITLES.get(name, spec.name), name)
        self.model_combo.addItem("A model folder on this computer", CUSTOM)
        self.add_row("Model", self.model_combo, "The speech recognition model that turns your voice into text.")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.form.addRow("", self.description)

        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("The folder that holds the model files")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.folder_row = QWidget()
        line = QHBoxLayout(self.folder_row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.folder_edit, 1)
        line.addWidget(browse)
        self.add_row("Folder", self.folder_row, "Where the files of your own model are.")

        self.quantization = self.choice(
            "quantization",
            "Weights",
            [("auto", "auto"), ("int8", "int8"), ("fp32", "fp32")],
            "int8 weights are a quarter of the size and faster on the CPU; fp32 weights are full precision and "
            "best on an NVIDIA GPU. Automatic picks int8 on the CPU and fp32 on a GPU.",
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.download_button = QPushButton("Download…")
        self.download_button.clicked.connect(self._download)
        status_row = QWidget()
        line = QHBoxLayout(status_row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.status, 1)
        line.addWidget(self.download_button)
        self.add_row("", status_row, "Whether the chosen weights are on this computer.")

        self.bind("model", self.model_combo, self.model_edited, self._model_value, write=self._show_model)
        self.bind(
            "model",
            self.folder_edit,
            self.folder_edit.textEdited,
            self._model_value,
            write=self._show_model,
            debounce=True,
        )
        self.model_combo.currentIndexChanged.connect(self._model_picked)

    def set_cuda_available(self, available: bool) -> None:
        """The outcome of the CUDA check, which decides what Automatic weights means."""
        self._cuda = available
        self.refresh(self._settings)

    def variant(self, settings: Settings) -> Quantization | None:
        """The weights that would be loaded; None while that depends on a CUDA check still running."""
        if settings.quantization == "auto" and settings.device != "cpu" and self._cuda is None:
            return None
        return resolved_weights(settings, cuda_available=bool(self._cuda)).quantization

    def refresh(self, settings: Settings) -> None:
        self._settings = settings
        self._describe()
        name = settings.model
        if name not in CATALOG:
            self.download_button.hide()
            folder = Path(name).expanduser()
            self.status.setText(
                "Perch loads the model from this folder."
                if folder.is_dir()
                else "This folder does not exist: type or choose the folder that holds the model files."
            )
            return
        self.download_button.show()
        variant = self.variant(settings)
        if variant is None:
            self.status.setText("Checking whether this computer can use an NVIDIA GPU…")
            self.download_button.setEnabled(False)
            return
        spec = CATALOG[name]
        downloaded = is_downloaded(name, variant)
        self.download_button.setEnabled(not downloaded)
        self.status.setText(
            f"The {variant} weights are downloaded."
            if downloaded
            else f"The {variant} weights are not downloaded yet ({size_text(spec, variant)})."
        )

    def _model_value(self) -> str:
        data = self.model_combo.currentData()
        return str(data) if data != CUSTOM else self.folder_edit.text().strip()

    def _show_model(self, value: Any) -> None:
        if value in CATALOG:
            self.model_combo.setCurrentIndex(self.model_combo.findData(value))
        else:
            if self.folder_edit.text().strip() != value:
                self.folder_edit.setText(str(value))
            self.model_combo.setCurrentIndex(self.model_combo.findData(CUSTOM))
        self._describe()

    def _describe(self) -> None:
        name = self.model_combo.currentData()
        custom = name == CUSTOM
        self.form.setRowVisible(self.folder_row, custom)
        spec = None if custom else CATALOG.get(str(name))
        description = FOLDER_DESCRIPTION if spec is None else MODEL_DESCRIPTIONS.get(spec.name, spec.description)
        self.description.setText(description)
        sizes = {q: "" if spec is None else f" — {size_text(spec, q)}" for q in ("int8", "fp32")}
        texts = {
            "auto": "Automatic — int8 on the CPU, fp32 on an NVIDIA GPU",
            "int8": f"int8{sizes['int8']} (smaller, faster on the CPU)",
            "fp32": f"fp32{sizes['fp32']} (full precision)",
        }
        for index in range(self.quantization.count()):
            self.quantization.setItemText(index, texts[str(self.quantization.itemData(index))])

    def _model_picked(self) -> None:
        self._describe()
        if self.model_combo.currentData() == CUSTOM and not self.folder_edit.text().strip():
            self.folder_edit.setFocus()
            self.status.setText("Type or choose the folder that holds the model files.")
            self.download_button.hide()
            return
        self.model_edited.emit()

    def _browse(self) -> None:
        start = self.folder_edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the model folder", start)
        if folder:
            self.folder_edit.setText(folder)
            self.model_combo.setCurrentIndex(self.model_combo.findData(CUSTOM))
            self.model_edited.emit()

    def _download(self) -> None:
        name = self._settings.model
        variant = self.variant(self._settings)
        if name in CATALOG and variant is not None:
            self.download_requested.emit(name, variant)


class DevicePage(Page):
    """Where the model runs, and whether CUDA works here (found out on a background thread)."""

    cuda_checked = Signal(bool)
    """Whether ONNX Runtime can use CUDA on this computer."""

    def __init__(self) -> None:
        super().__init__("device", "Device")
        self.choice(
            "device",
            "Run the model on",
            DEVICE_OPTIONS,
            "Where speech is recognised. An NVIDIA GPU is much faster; the CPU works everywhere. Automatic uses "
            "the GPU when CUDA works and the CPU otherwise.",
        )
        self.status = QLabel("Checking whether CUDA works on this computer…")
        self.status.setWordWrap(True)
        self.add_row("", self.status, "What Perch found out about the NVIDIA GPU support on this computer.")
        self.cuda_available: bool | None = None
        run_in_background(cuda_status, self._checked, self._check_failed, name="perch-cuda-check")

    def _checked(self, result: tuple[bool, str]) -> None:
        self.cuda_available, text = result
        self.status.setText(text)
        self.cuda_checked.emit(self.cuda_available)

    def _check_failed(self, error: Exception) -> None:
        self.cuda_available = False
        self.status.setText(
            f"Perch could not find out whether CUDA works here ({error}); Automatic tries the GPU and falls back "
            "to the CPU."
        )
        self.cuda_checked.emit(False)
