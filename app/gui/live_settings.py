"""Settings changes and the first-run download, carried out in the running app without a restart."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app import coordinator as co
from app import notices
from app.history import History
from app.injection import choose_typist
from app.settings import Settings, TypingStrategy, dictation_options, worker_options
from app.settings_changes import settings_change
from stt.dictation import DictationOptions, Mode
from stt.errors import PerchError

if TYPE_CHECKING:
    from app.gui.controller import Controller

log = logging.getLogger("perch.app")


class LiveSettings(QObject):
    """Applies each saved settings change: at once where it can, else as soon as dictation is idle."""

    _saved = Signal(object, object)
    _download_needed = Signal(str, str, bool)

    def __init__(self, app: Controller) -> None:
        super().__init__()
        self.app = app
        self._pending: set[str] = set()
        """Changes that wait for dictation to finish: "model", "microphone", "dictation"."""
        self._download_wait: tuple[threading.Event, list[tuple[str, str]]] | None = None
        self._download_needed.connect(self._show_first_run)
        self._saved.connect(self.apply_settings)
        self._unsubscribe: Any = None
        if app.options.settings is not None:
            self._unsubscribe = app.options.settings.subscribe(self._saved.emit)

    def close(self) -> None:
        """Stop following the settings; a load waiting for a download gives up."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._release_download_wait()

    def await_download(self, name: str, quantization: str, cuda: bool) -> tuple[str, str] | None:
        """From the engine thread: ask the person to download a model; (name, quantization) once it is on disk,
        None when they closed the dialog without one. `cuda` says whether a CUDA GPU would be used."""
        done = threading.Event()
        chosen: list[tuple[str, str]] = []
        self._download_wait = (done, chosen)
        self.app.load_note = "waiting for the model download"
        self._download_needed.emit(name, quantization, cuda)
        done.wait()
        self._download_wait = None
        self.app.load_note = ""
        return chosen[0] if chosen else None

    def _show_first_run(self, name: str, quantization: str, cuda: bool) -> None:
        self.app._refresh()
        self.app.windows.show_first_run(name, quantization, cuda)

    def model_downloaded(self, name: str, quantization: str) -> None:
        """A download finished: use that model (and load it, unless a load is waiting for exactly this)."""
        wait = self._download_wait
        settings = self.app.options.settings
        if wait is not None:
            if settings is not None:
                settings.update(model=name, quantization=quantization)
            wait[1].append((name, quantization))
            wait[0].set()
        elif settings is not None:
            current = settings.current()
            if (current.model, current.quantization) != (name, quantization):
                settings.update(model=name, quantization=quantization)
            elif self.app.state.model_error is not None:
                self._pending.add("model")
                self.apply_pending()

    def download_closed(self) -> None:
        """The first-run dialog was closed without a model."""
        self._release_download_wait()

    def _release_download_wait(self) -> None:
        wait = self._download_wait
        if wait is not None:
            wait[0].set()

    def update_settings(self, **changes: Any) -> None:
        """Save changed settings (from the menu); they then apply through `apply_settings`."""
        if self.app.options.settings is not None:
            self.app.options.settings.update(**changes)
        elif "mode" in changes:
            self.app.options.dictation = replace(self.app.options.dictation, mode=changes["mode"])
            self._pending.add("dictation")
            self.apply_pending()

    def set_mode(self, mode: Mode) -> None:
        """Switch between push-to-talk, toggle and hands-free (applied once the current utterance is done)."""
        self.update_settings(mode=mode)

    def apply_settings(self, old: Settings, new: Settings) -> None:
        """Make a saved change take effect now, or as soon as the utterance in progress is done."""
        change = settings_change(old, new)
        options = self.app.options
        if change.caption:
            self.app._set_caption(replace(new.caption, geometry=options.caption.geometry))
        if change.typing:
            strategy_changed = options.typing_strategy != new.typing_strategy
            options.typing_strategy = new.typing_strategy
            options.type_into_any_focus = new.type_into_any_focus
            options.smart_spacing = new.smart_spacing
            if strategy_changed:
                self.app._typing_thread.submit(self._new_typist, new.typing_strategy)
        if change.sounds:
            self.app.sounds.enabled = new.sound_cues
        if change.hotkeys:
            options.ptt_hotkey, options.toggle_hotkey = new.ptt_hotkey, new.toggle_hotkey
            self.app._restart_hotkeys()
        if change.history:
            self.app._history_thread.submit(self._switch_history, new.history_enabled)
        if change.retention:
            options.history_keep_days = new.history_keep_days
            options.keep_recordings = self.app.recordings.keep = new.keep_recordings
            if options.history is not None:
                self.app._history_thread.submit(self.app._apply_retention, options.history)
            self.app.windows.retention_changed(new.history_keep_days, new.keep_recordings)
        if change.autostart:
            threading.Thread(target=self.set_autostart, args=(new.start_at_login,), daemon=True).start()
        if change.service:
            self.app.sync_service()
        if change.worker:
            options.worker = worker_options(new)
            options.replacements = new.vocabulary.replacement_rules()
            self.app.worker.set_options(options.worker)
        if change.dictation:
            options.dictation = dictation_options(new)
            self._pending.add("dictation")
        if change.microphone:
            self._pending.add("microphone")
        if change.model and self._download_wait is None:  # a load waiting for a download reads them anyway
            self._pending.add("model")
        self.apply_pending()

    def _new_typist(self, strategy: TypingStrategy) -> None:
        old, self.app.typist = self.app.typist, choose_typist(strategy, copy=self.app._copy.emit)
        old.close()

    def _switch_history(self, enabled: bool) -> None:
        if enabled and self.app.options.history is None:
            self.app.options.history = History()
        elif not enabled and self.app.options.history is not None:
            history, self.app.options.history = self.app.options.history, None
            history.close()

    def set_autostart(self, enabled: bool) -> None:
        from app.autostart import set_start_at_login

        try:
            set_start_at_login(enabled)
        except OSError as exc:
            self.app._notice.emit(notices.from_exception(exc))

    def apply_pending(self) -> None:
        """Carry out changes that needed dictation to be idle, once it is."""
        busy = self.app.state.capturing or self.app.state.phase in (co.Phase.TRANSCRIBING, co.Phase.TYPING)
        if busy or not self._pending:
            return
        if "model" in self._pending:
            self._pending -= {"model", "microphone", "dictation"}
            self.app.feed(co.ModelLoading())
            self.app._audio_thread.submit(self._replace_pipeline, True)
        elif "microphone" in self._pending:
            self._pending -= {"microphone", "dictation"}
            self.app._audio_thread.submit(self._replace_pipeline, False)
        elif "dictation" in self._pending:
            self._pending.discard("dictation")
            self.app._audio_thread.submit(self._reconfigure, self.app.options.dictation)

    def _replace_pipeline(self, reload_model: bool) -> None:
        """On the control thread: another microphone, and with `reload_model` another model too."""
        self.app.dictation.close()
        if reload_model:
            files = self.app.worker.take_files()
            self.app.worker.close()
            self.app.worker = self.app._new_worker()
            self.app._start_engine()
            for file in files:  # files being transcribed start again on the new model
                file.restart()
                self.app.worker.add_file(file)
            self.app.sync_service()  # other apps follow the new model
        try:
            self.app.dictation = self.app._new_dictation()
        except PerchError as exc:
            self.app.post(co.CaptureFailed(str(exc)))
            return
        self.app._open_microphone()

    def _reconfigure(self, options: DictationOptions) -> None:
        try:
            self.app.dictation.reconfigure(options)
        except RuntimeError:
            log.warning("dictation started before its new options applied; they apply to the next one")
        except PerchError as exc:
            self.app.post(co.CaptureFailed(str(exc)))
