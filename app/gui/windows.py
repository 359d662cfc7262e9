"""The windows the tray opens: settings, history, check setup and the model download; each made on first use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.coordinator import Phase
from app.vocabulary_add import Addition, add_to_vocabulary

if TYPE_CHECKING:
    from app.gui.controller import Controller
    from stt.modelfiles import Quantization

log = logging.getLogger("perch.app")


class Windows(QObject):
    """Opens each window once and brings it forward when asked again."""

    history_changed = Signal()
    """A dictation was added to the history or updated (from any thread)."""

    def __init__(self, app: Controller) -> None:
        super().__init__()
        self._app = app
        self.settings: Any = None
        self.history: Any = None
        self.check_setup: Any = None
        self.first_run: Any = None
        self.transcribe: Any = None
        self.vocabulary_input: Any = None
        """The caption's "Add to vocabulary…" input while it is open."""
        self.history_changed.connect(self._history_changed)
        app.files.stored.connect(lambda _job, _entry: self._history_changed())

    def show_settings(self, page: str | None = None) -> None:
        """The settings dialog (on `page` when given)."""
        launch = self._app.options.settings
        if launch is None:
            log.info("no settings store: the settings dialog is not available")
            return
        if self.settings is None:
            from app.gui.settings_dialog import SettingsDialog
            from app.gui.trial_window import TrialSources

            app = self._app
            trial = TrialSources(lambda: app.worker, lambda: app.options.history, self._dictating)
            self.settings = SettingsDialog(launch.store, trial)
            self.settings.download_requested.connect(self.show_first_run)
            # The global grab would swallow the very keys being recorded for a new hotkey.
            self.settings.hotkey_capture_changed.connect(self._app.pause_hotkeys)
            self.settings.service_page.token_replaced.connect(lambda: app.sync_service(restart=True))
        if page is not None:
            self.settings.show_page(page)
        _bring_forward(self.settings)

    def _dictating(self) -> bool:
        state = self._app.state
        return state.capturing or state.phase in (Phase.TRANSCRIBING, Phase.TYPING)

    def add_to_vocabulary(self, text: str) -> Addition:
        """Save `text` as a vocabulary phrase (unless it is listed already); what came of it."""
        settings = self._app.options.settings
        if settings is None:
            return Addition("The vocabulary cannot be changed: Perch runs without a settings file.", failed=True)
        return add_to_vocabulary(settings, text)

    def ask_to_add_to_vocabulary(self, text: str) -> None:
        """A small input, prefilled with `text`, for a phrase to add to the vocabulary; a notice says how it went."""
        from PySide6.QtWidgets import QInputDialog

        if self.vocabulary_input is not None:
            self.vocabulary_input.close()
        dialog = QInputDialog()
        dialog.setWindowTitle("Add to vocabulary")
        dialog.setLabelText("A word or phrase for Perch to listen for (a name, a term):")
        dialog.setTextValue(" ".join(text.split()))
        dialog.setOkButtonText("Add")
        dialog.textValueSelected.connect(self._add_asked)
        dialog.finished.connect(dialog.deleteLater)
        dialog.destroyed.connect(lambda *_args: self._forget_input(dialog))
        self.vocabulary_input = dialog
        _bring_forward(dialog)

    def _forget_input(self, dialog: object) -> None:
        if self.vocabulary_input is dialog:
            self.vocabulary_input = None

    def _add_asked(self, text: str) -> None:
        added = self.add_to_vocabulary(text)
        self._app.tray.notify("Perch", added.message, error=added.failed)

    def show_history(self) -> None:
        """The history window (a note when history is off)."""
        history = self._app.options.history
        if history is None:
            self._app.tray.notify("Perch", "History is turned off; turn it on in Settings ▸ History.")
            return
        if self.history is None or self.history.history is not history:
            from app.gui.history_window import HistoryWindow

            options = self._app.options
            self.history = HistoryWindow(
                history,
                type_text=self._app.type_again,
                retranscribe=self._app.retranscribe,
                retention=(options.history_keep_days, options.keep_recordings),
                transcribe_files=self.transcribe_files,
                add_to_vocabulary=self.add_to_vocabulary if options.settings is not None else None,
            )
        else:
            self.history.refresh()
        _bring_forward(self.history)

    def show_history_entry(self, entry_id: int) -> None:
        """The history window with one entry selected."""
        self.show_history()
        if self.history is not None:
            self.history.select_entry(entry_id)

    def show_transcribe(self) -> None:
        """The Transcribe window, with every file handed over so far."""
        if self.transcribe is None:
            from app.gui.transcribe_window import TranscribeWindow

            app = self._app
            weights = app.options.weights
            self.transcribe = TranscribeWindow(app.files, lambda: "" if weights is None else weights.quantization)
            self.transcribe.history_wanted.connect(self.show_history_entry)
        _bring_forward(self.transcribe)

    def transcribe_files(self, paths: list[Path]) -> None:
        """Transcribe files (dropped on a window, or chosen): they are queued and the Transcribe window shows them."""
        self.show_transcribe()
        self.transcribe.transcribe(paths)

    def choose_files_to_transcribe(self) -> None:
        """Tray ▸ Transcribe files…: a file dialog (not modal to anything), then the Transcribe window."""
        from app.gui.transcribe_window import ask_for_audio_files

        self._file_dialog = ask_for_audio_files(None, self.transcribe_files)

    def show_check_setup(self) -> None:
        """The Check setup window; it runs the checks each time it opens."""
        from app.gui.check_setup import CheckSetupWindow

        if self.check_setup is None:
            self.check_setup = CheckSetupWindow(self._app.doctor_context)
        else:
            self.check_setup.run()
        _bring_forward(self.check_setup)

    def show_first_run(self, name: str, quantization: str, cuda: bool | None = None) -> None:
        """The model download dialog for `name`; with `quantization` "auto" it recommends the variant for
        `cuda` (by default: whether the loaded model runs on CUDA)."""
        if self.first_run is not None and self.first_run.isVisible():
            _bring_forward(self.first_run)
            return
        from app.gui.download_dialog import FirstRunDialog

        if cuda is None:
            recognizer = self._app.worker.recognizer
            cuda = recognizer is not None and recognizer.device in ("cuda", "tensorrt")
        chosen: Quantization | None = "int8" if quantization == "int8" else "fp32" if quantization == "fp32" else None
        self.first_run = FirstRunDialog(cuda, name=name, quantization=chosen)
        ready: list[bool] = []

        def model_ready(model: str, variant: str) -> None:
            ready.append(True)
            self._app.live.model_downloaded(model, variant)
            if self.settings is not None:
                self.settings.refresh_model_status()

        self.first_run.model_ready.connect(model_ready)
        self.first_run.finished.connect(lambda _result: None if ready else self._app.live.download_closed())
        _bring_forward(self.first_run)

    def retention_changed(self, keep_days: int, keep_recordings: int) -> None:
        """Retention settings changed: the history window shows and applies them."""
        if self.history is not None:
            self.history.apply_retention(keep_days, keep_recordings)

    def _history_changed(self) -> None:
        if self.history is not None and self.history.isVisible():
            self.history.entry_added()

    def close(self) -> None:
        """Close every window that was opened."""
        opened = (self.settings, self.history, self.check_setup, self.first_run, self.transcribe)
        for window in (*opened, self.vocabulary_input):
            if window is not None:
                window.close()
        if self.history is not None:
            self.history.shutdown()  # before the history database closes


def _bring_forward(window: QWidget) -> None:
    window.show()
    window.raise_()
    window.activateWindow()
