"""The settings dialog: every setting, saved the moment it changes, and kept in step with changes made elsewhere."""

from __future__ import annotations

import contextlib
import re
import weakref
from dataclasses import replace

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QListWidget,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.model_page import DevicePage, ModelPage
from app.gui.service_page import ServicePage
from app.gui.settings_form import Binding, Page, value_of, with_value
from app.gui.settings_pages import (
    DictationPage,
    caption_page,
    history_page,
    live_text_page,
    startup_page,
    typing_page,
)
from app.gui.trial_window import TrialSources
from app.gui.vocabulary_page import VocabularyPage
from app.settings import CaptionSettings, Settings, SettingsStore

DEBOUNCE_MS = 300
"""Sliders, spin boxes and typed text are saved once they have been still this long."""

PAGE_ALIASES = {
    "start-at-login": "startup",
    "live": "live-text",
    "text": "live-text",
    "microphone": "dictation",
    "phrases": "vocabulary",
    "replacements": "vocabulary",
    "service": "other-apps",
}


class SettingsDialog(QDialog):
    """Shows the settings of a `SettingsStore` and saves each change at once; remembers nothing of its own."""

    download_requested = Signal(str, str)
    """(catalog model name, "int8" or "fp32"): the person asked to download weights that are not on disk."""
    hotkey_capture_changed = Signal(bool)
    """A hotkey field started (True) or stopped recording keys; global hotkeys may be paused meanwhile."""
    _store_changed = Signal()

    def __init__(self, store: SettingsStore, trial: TrialSources | None = None, parent: QWidget | None = None) -> None:
        """`trial`: where the Vocabulary page's Try it finds the engine and the recordings (none: it is off)."""
        super().__init__(parent)
        self.setWindowTitle("Perch settings")
        self.store = store
        self.model_page = ModelPage()
        self.device_page = DevicePage()
        self.dictation_page = DictationPage()
        self.startup_page = startup_page()
        self.vocabulary_page = VocabularyPage(trial)
        self.service_page = ServicePage()
        self.pages: list[Page] = [
            self.model_page,
            self.device_page,
            self.dictation_page,
            live_text_page(),
            typing_page(),
            self.vocabulary_page,
            caption_page(),
            history_page(),
            self.startup_page,
            self.service_page,
        ]
        self.controls: dict[str, QWidget] = {}
        """The main control of each setting, by path (`mode`, `caption.font_size`)."""
        self._timers: dict[Binding, QTimer] = {}
        self._updating = False
        self._saving = False
        self.reset_box: QMessageBox | None = None

        self.sidebar = QListWidget()
        self.stack = QStackedWidget()
        for page in self.pages:
            self.sidebar.addItem(page.title)
            self.stack.addWidget(page)
            self.controls.update(page.controls)
            for binding in page.bindings:
                binding.changed.connect(lambda *_args, b=binding: self._edited(b))
        self.sidebar.setSpacing(3)
        self.sidebar.setFixedWidth(self.sidebar.sizeHintForColumn(0) + 32)
        self.sidebar.currentRowChanged.connect(self._page_changed)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.reset_button = buttons.addButton("Reset to defaults", QDialogButtonBox.ButtonRole.ResetRole)
        self.reset_button.clicked.connect(self.ask_reset)
        buttons.rejected.connect(self.close)
        body = QHBoxLayout()
        body.addWidget(self.sidebar)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter in a text field must not press Reset or Close

        self.model_page.download_requested.connect(self.download_requested)
        self.device_page.cuda_checked.connect(self.model_page.set_cuda_available)
        for edit in (self.dictation_page.ptt_hotkey, self.dictation_page.toggle_hotkey):
            edit.capturing_changed.connect(self.hotkey_capture_changed)
        self._show(store.current)
        self.sidebar.setCurrentRow(0)
        self.resize(760, 520)
        self._follow(store)

    # The store.

    def _follow(self, store: SettingsStore) -> None:
        """Subscribe to outside changes without the store keeping the dialog alive; unsubscribe when it goes."""
        self._store_changed.connect(self._outside_change)
        dialog = weakref.ref(self)

        def changed(_old: Settings, _new: Settings) -> None:
            target = dialog()
            if target is not None:
                with contextlib.suppress(RuntimeError):  # RuntimeError: the Qt side is already gone
                    target._store_changed.emit()  # queued when the change was saved on another thread

        unsubscribe = store.subscribe(changed)
        self.destroyed.connect(lambda *_args: unsubscribe())
        weakref.finalize(self, unsubscribe)

    def _outside_change(self) -> None:
        if not self._saving:
            self._show(self.store.current)

    def _show(self, settings: Settings) -> None:
        """Set every control to `settings`, except those with an edit still waiting to be saved."""
        pending = {binding.path for binding, timer in self._timers.items() if timer.isActive()}
        self._updating = True
        try:
            for page in self.pages:
                for binding in page.bindings:
                    if binding.path not in pending:
                        binding.write(value_of(settings, binding.path))
                page.refresh(settings)
        finally:
            self._updating = False

    def _edited(self, binding: Binding) -> None:
        if self._updating:
            return
        if not binding.debounce:
            self._commit(binding)
            return
        timer = self._timers.get(binding)
        if timer is None:
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(DEBOUNCE_MS)
            timer.timeout.connect(lambda b=binding: self._commit(b))
            self._timers[binding] = timer
        timer.start()

    def _commit(self, binding: Binding) -> None:
        """Save the value `binding`'s control shows, or say inline why it cannot be saved."""
        for other, timer in self._timers.items():
            if other.path == binding.path:
                timer.stop()
        value = binding.read()
        current = self.store.current
        old = value_of(current, binding.path)
        if value == old:
            binding.show_problem("")
            return
        problem = binding.check(value, current) if binding.check is not None else None
        if problem is None and binding.effect is not None:
            try:
                binding.effect(value)
            except OSError as exc:
                problem = str(exc)
        if problem is not None:
            binding.show_problem(problem)
            self._rewrite(binding, old)
            return
        updated = with_value(current, binding.path, value)
        problem = self._save(updated)
        binding.show_problem(problem or "")
        if problem is None:
            for page in self.pages:
                page.refresh(updated)

    def _save(self, settings: Settings) -> str | None:
        """Save; the message for the person when that fails."""
        self._saving = True
        try:
            self.store.save(settings)
        except ValueError as exc:
            detail = re.sub(r"; using .*? instead\.", ".", str(exc).removeprefix("invalid settings: "))
            return f"Not saved: {detail} Change it to a valid value to save it."
        except OSError as exc:
            return (
                f"Perch could not save its settings ({exc}); check that {self.store.path.parent} is writable "
                "and change the setting again."
            )
        finally:
            self._saving = False
        return None

    def _rewrite(self, binding: Binding, value: object) -> None:
        self._updating = True
        try:
            binding.write(value)
        finally:
            self._updating = False

    def _flush(self) -> None:
        """Save the edits still waiting for their pause."""
        for binding, timer in list(self._timers.items()):
            if timer.isActive():
                self._commit(binding)

    # Reset.

    def ask_reset(self) -> None:
        """Ask whether to put every setting back to its default (without blocking the event loop)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Reset settings",
            "Put every setting back to its default? Your vocabulary, history and downloaded models stay as they are.",
            QMessageBox.StandardButton.Reset | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _result: self._reset_answered(box))
        self.reset_box = box
        box.open()

    def _reset_answered(self, box: QMessageBox) -> None:
        self.reset_box = None
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Reset):
            self.reset_to_defaults()
        box.deleteLater()

    def reset_to_defaults(self) -> None:
        """Save the defaults at once (the caption keeps its place on screen, and the vocabulary stays)."""
        for timer in self._timers.values():
            timer.stop()
        current = self.store.current
        caption = replace(CaptionSettings(), geometry=current.caption.geometry)
        defaults = replace(Settings(), caption=caption, vocabulary=current.vocabulary)
        for page in self.pages:
            page.set_problem("reset", "")
            for binding in page.bindings:
                page.set_problem(binding.path, "")
                binding.show_problem("")
                value = value_of(defaults, binding.path)
                if binding.effect is not None and value != value_of(current, binding.path):
                    try:
                        binding.effect(value)
                    except OSError as exc:
                        binding.show_problem(str(exc))
                        defaults = with_value(defaults, binding.path, value_of(current, binding.path))
        problem = self._save(defaults)
        if problem is not None:
            self.pages[self.stack.currentIndex()].set_problem("reset", problem)
        self._show(self.store.current)

    # Pages and visibility.

    def show_page(self, name: str) -> None:
        """Open on a page by its key (model, dictation, vocabulary, other-apps, …) or an alias of one."""
        key = name.strip().lower().replace(" ", "-").replace("_", "-")
        key = PAGE_ALIASES.get(key, key)
        for index, page in enumerate(self.pages):
            if page.key == key:
                self.sidebar.setCurrentRow(index)
                return
        raise ValueError(f"no settings page {name!r}; the pages are {', '.join(p.key for p in self.pages)}")

    def current_page(self) -> Page:
        """The page on show."""
        return self.pages[self.stack.currentIndex()]

    def refresh_model_status(self) -> None:
        """Check again which weights are on disk (after a download finished)."""
        self.model_page.refresh(self.store.current)

    def _page_changed(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        self._sync_meter()

    def _sync_meter(self) -> None:
        """The microphone is open only while its page is on show."""
        wanted = self.isVisible() and self.stack.currentWidget() is self.dictation_page
        if wanted and not self.dictation_page.probe.running:
            self.dictation_page.start_meter()
        elif not wanted and self.dictation_page.probe.running:
            self.dictation_page.stop_meter()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Refresh what may have changed meanwhile, and start the meter on the microphone page."""
        super().showEvent(event)
        self.dictation_page.list_microphones()
        self.model_page.refresh(self.store.current)
        self._sync_meter()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt's name
        """Save what is pending and close the microphone."""
        for edit in (self.dictation_page.ptt_hotkey, self.dictation_page.toggle_hotkey):
            edit.cancel_capture()
        self._flush()
        super().hideEvent(event)
        if self.dictation_page.probe.running:
            self.dictation_page.stop_meter()
