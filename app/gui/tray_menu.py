"""The tray menu, built fresh each time it opens."""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMenu

from app.settings import DEVICE_CHOICES, MODE_CHOICES
from stt.catalog import CATALOG, variant_size
from stt.quantization import QUANTIZATION_CHOICES

if TYPE_CHECKING:
    from app.gui.controller import Controller

log = logging.getLogger("perch.tray")

MODE_LABELS = {"ptt": "Push to talk", "toggle": "Toggle", "handsfree": "Hands-free"}
DEVICE_LABELS = {"auto": "Best available", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)", "tensorrt": "TensorRT"}
QUANTIZATION_LABELS = {"auto": "Automatic (int8 on CPU, fp32 on GPU)", "int8": "int8", "fp32": "fp32"}
"""Menu labels; with Automatic chosen, the weights in use follow the label."""


class MicrophoneList(QObject):
    """Input device names, listed off the GUI thread; the menu shows the last list and asks for a fresh one."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.problem: str | None = None
        self._busy = threading.Lock()

    def refresh(self) -> None:
        """List the devices again in the background; `changed` follows."""
        if self._busy.locked():
            return
        threading.Thread(target=self._list, name="perch-list-microphones", daemon=True).start()

    def _list(self) -> None:
        from stt.errors import PerchError
        from stt.microphone import list_input_devices

        with self._busy:
            try:
                self.names, self.problem = [d.name for d in list_input_devices()], None
            except PerchError as exc:
                self.names, self.problem = [], str(exc)
        self.changed.emit()


def build_menu(menu: QMenu, app: Controller) -> None:
    """Start/Stop, Mode, Microphone, Model, captions, the windows, Quit."""
    recording = app.state.capturing
    start = menu.addAction("Stop dictation" if recording else "Start dictation")
    start.triggered.connect(app.toggle)
    start.setEnabled(app.state.model_error is None or recording)
    _radio(
        menu.addMenu("Mode"),
        [(MODE_LABELS[m], m) for m in MODE_CHOICES],
        app.dictation.options.mode,
        lambda mode: app.live.update_settings(mode=mode),
        enabled=not recording,
    )
    settings = app.options.settings
    if settings is not None:
        current = settings.current()
        _microphone_menu(menu.addMenu("Microphone"), app, current.microphone)
        model = menu.addMenu("Model")
        status = model_status(app)
        if status:
            model.addAction(status).setEnabled(False)
            model.addSeparator()
        models = [(_model_label(spec.name, spec.description), spec.name) for spec in CATALOG.values()]
        if current.model not in CATALOG:
            models.append((f"Folder: {current.model}", current.model))
        _radio(model, models, current.model, lambda name: app.live.update_settings(model=name))
        model.addSeparator()
        spec = CATALOG.get(current.model)
        sizes = {q: f" — {variant_size(spec, q) / 1e9:.2f} GB" for q in ("int8", "fp32")} if spec else {}
        quantizations = [(QUANTIZATION_LABELS[q] + sizes.get(q, ""), q) for q in QUANTIZATION_CHOICES]
        in_use = app.options.weights
        if in_use is not None and current.quantization == "auto":
            quantizations[0] = (f"{QUANTIZATION_LABELS['auto']}: {in_use.quantization} in use", "auto")
        _radio(model, quantizations, current.quantization, lambda q: app.live.update_settings(quantization=q))
        model.addSeparator()
        devices = [(DEVICE_LABELS[d], d) for d in DEVICE_CHOICES]
        _radio(model, devices, current.device, lambda device: app.live.update_settings(device=device))
        model.addSeparator()
        model.addAction("Download or manage models…").triggered.connect(lambda: app.windows.show_settings("model"))
    captions = menu.addAction("Show captions")
    captions.setCheckable(True)
    captions.setChecked(app.options.caption.show)
    captions.toggled.connect(app.show_captions)
    menu.addSeparator()
    menu.addAction("Transcribe files…").triggered.connect(app.windows.choose_files_to_transcribe)
    menu.addAction("History…").triggered.connect(app.windows.show_history)
    if settings is not None:
        menu.addAction("Vocabulary…").triggered.connect(lambda: app.windows.show_settings("vocabulary"))
    menu.addAction("Settings…").triggered.connect(app.windows.show_settings)
    menu.addAction("Check setup…").triggered.connect(app.windows.show_check_setup)
    menu.addSeparator()
    menu.addAction("Quit").triggered.connect(app.quit)


def model_status(app: Controller) -> str:
    """ "Loaded in 1.9 s · runs 14× faster than real time" for the model in use; empty while none is loaded."""
    recognizer = app.worker.recognizer
    if recognizer is None:
        return ""
    summary = recognizer.report.summary()
    return summary[:1].upper() + summary[1:]


def _model_label(name: str, description: str) -> str:
    """ "Parakeet-TDT 0.6B v3 — 25 European languages" from the catalog's description."""
    title, _, rest = description.removeprefix("NVIDIA ").partition(": ")
    return f"{title} — {rest.split(',')[0]}" if rest else name


def _radio(
    menu: QMenu,
    items: Sequence[tuple[str, Any]],
    current: Any,
    choose: Callable[[Any], None],
    *,
    enabled: bool = True,
) -> None:
    """A group of checkable items, one per (label, value), the current one checked."""
    group = QActionGroup(menu)
    for label, value in items:
        item = menu.addAction(label)
        item.setCheckable(True)
        item.setChecked(value == current)
        item.setEnabled(enabled)
        item.triggered.connect(lambda _checked=False, v=value: choose(v))
        group.addAction(item)


def _microphone_menu(menu: QMenu, app: Controller, current: str | None) -> None:
    """System default plus each input device; the list is refreshed while the menu is open."""
    microphones = app.microphones

    def fill() -> None:
        if not shiboken6.isValid(menu):  # the tray menu was rebuilt before the list came back
            _disconnect(microphones.changed, fill)
            return
        menu.clear()
        names = list(microphones.names)
        if current is not None and current not in names:
            names.append(current)  # chosen earlier, unplugged now
        items: list[tuple[str, str | None]] = [("System default", None), *((name, name) for name in names)]
        _radio(menu, items, current, lambda name: app.live.update_settings(microphone=name))
        if microphones.problem:
            note = menu.addAction(microphones.problem)
            note.setEnabled(False)

    fill()
    microphones.changed.connect(fill)
    menu.destroyed.connect(lambda: _disconnect(microphones.changed, fill))
    microphones.refresh()


def _disconnect(signal: Any, slot: Callable[[], None]) -> None:
    """Disconnect `slot` if it is still connected (PySide warns, rather than raises, when it is not)."""
    with contextlib.suppress(RuntimeError, TypeError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        signal.disconnect(slot)
