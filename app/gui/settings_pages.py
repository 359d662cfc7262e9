"""The settings pages other than Model and Device: dictation, live text, typing, caption, history, startup."""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from app import autostart
from app.gui.background import run_in_background
from app.gui.hotkey_edit import HotkeyEdit, hotkey_problem
from app.gui.mic_level import MicLevelProbe, MicLevelView
from app.gui.settings_form import Page
from app.settings import FONT_SIZE_RANGE, OPACITY_RANGE, VAD_THRESHOLD_RANGE, Settings
from stt.microphone import list_input_devices

DEFAULT_MICROPHONE = "System default"


def _microphone_names() -> list[str]:
    return [device.name for device in list_input_devices()]


class DictationPage(Page):
    """Mode, hotkeys, microphone with a live level, speech detection, pre-roll and sound cues."""

    def __init__(self) -> None:
        super().__init__("dictation", "Dictation")
        self.choice(
            "mode",
            "Mode",
            [
                ("ptt", "Push-to-talk — hold the hotkey while you speak"),
                ("toggle", "Toggle — press the hotkey to start, again to stop"),
                ("handsfree", "Hands-free — starts and stops by itself when you speak"),
            ],
            "How dictation starts and stops.",
        )
        self.ptt_hotkey = self._hotkey("ptt_hotkey", "toggle_hotkey", "Push-to-talk hotkey", "toggle hotkey")
        self.toggle_hotkey = self._hotkey("toggle_hotkey", "ptt_hotkey", "Toggle hotkey", "push-to-talk hotkey")

        self.microphone = QComboBox()
        self.microphone.addItem(DEFAULT_MICROPHONE, None)
        self.meter = MicLevelView()
        self.probe = MicLevelProbe(self)
        self.probe.level.connect(self.meter.show_level)
        self.probe.failed.connect(self.meter.show_failure)
        mic_box = QWidget()
        column = QVBoxLayout(mic_box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.microphone)
        column.addWidget(self.meter)
        self.add_row(
            "Microphone",
            mic_box,
            "The input to listen to; System default follows the sound settings of your desktop. "
            "The bar shows how loud it hears you.",
        )
        self.microphone.setToolTip(mic_box.toolTip())
        self.bind(
            "microphone",
            self.microphone,
            self.microphone.currentIndexChanged,
            self.microphone.currentData,
            write=self._show_microphone,
        )
        self.microphone.currentIndexChanged.connect(self._microphone_picked)

        self.slider(
            "vad_threshold",
            "Speech detection",
            VAD_THRESHOLD_RANGE,
            "How sure Perch must be that it hears speech before it counts as speech. Towards Quiet speech it "
            "also picks up soft voices; towards Ignore noise it lets more background sound pass unnoticed.",
            ends=("Quiet speech", "Ignore noise"),
        )
        self.check_box(
            "preroll",
            "Keep the microphone open so the first word is never cut off",
            "Perch keeps the last half second of sound, so dictation includes what you said just before the "
            "hotkey. Your system shows the microphone as in use the whole time.",
        )
        self.check_box(
            "sound_cues",
            "Play a sound when recording starts and stops",
            "A short sound at the start and end of each recording, so you know when Perch listens.",
        )

    def _hotkey(self, path: str, other: str, label: str, other_name: str) -> HotkeyEdit:
        edit = HotkeyEdit()
        self.add_row(
            label,
            edit,
            "Click, then press the key combination, such as Ctrl+Alt+Space. Escape cancels; Clear removes it.",
        )

        def check(value: Any, settings: Settings) -> str | None:
            return hotkey_problem(str(value), str(getattr(settings, other)), other_name)

        self.bind(path, edit, edit.edited, edit.hotkey, write=edit.set_hotkey, check=check, report=edit.show_problem)
        edit.edited.connect(edit.set_hotkey)
        return edit

    def list_microphones(self) -> None:
        """Fill the microphone list in the background."""
        run_in_background(_microphone_names, self._set_microphones, self._listing_failed, name="perch-list-mics")

    def start_meter(self) -> None:
        """Listen to the chosen microphone."""
        self.meter.clear()
        self.probe.start(self.microphone.currentData())

    def stop_meter(self) -> None:
        """Stop listening."""
        self.probe.stop()
        self.meter.clear()

    def _microphone_picked(self) -> None:
        if self.probe.running:
            self.start_meter()

    def _show_microphone(self, value: Any) -> None:
        index = self.microphone.findData(value)
        if index < 0:
            self.microphone.addItem(f"{value} (not connected)", value)
            index = self.microphone.count() - 1
        self.microphone.setCurrentIndex(index)

    def _set_microphones(self, names: list[str]) -> None:
        chosen = self.microphone.currentData()
        self.microphone.blockSignals(True)
        try:
            self.microphone.clear()
            self.microphone.addItem(DEFAULT_MICROPHONE, None)
            for name in dict.fromkeys(names):
                self.microphone.addItem(name, name)
            if chosen is None:
                self.microphone.setCurrentIndex(0)
            else:
                self._show_microphone(chosen)
        finally:
            self.microphone.blockSignals(False)

    def _listing_failed(self, error: Exception) -> None:
        self.set_problem("microphones", f"The microphones could not be listed: {error}")


def live_text_page() -> Page:
    page = Page("live-text", "Live text")
    partials = page.check_box(
        "partials",
        "Show the words while I speak",
        "Live text appears in the caption as you speak; what is typed is decided when you stop.",
    )
    preset = page.choice(
        "partials_preset",
        "Live text speed",
        [
            ("auto", "Automatic — what this computer keeps up with"),
            ("low", "Fastest — words appear soonest"),
            ("economy", "Light — least work, for slow computers"),
            ("balanced", "Balanced"),
            ("quality", "Most accurate — words appear a little later"),
        ],
        "How quickly the live text follows your voice, against how often it corrects itself.",
    )
    partials.toggled.connect(preset.setEnabled)
    page.choice(
        "final_pass",
        "When you stop",
        [
            ("full", "Read the whole sentence again — most accurate"),
            ("streaming", "Keep the live text as it is — fastest"),
        ],
        "Reading each sentence again with all of it in view gives the best text; keeping the live text types "
        "it a moment sooner.",
    )
    return page


def typing_page() -> Page:
    page = Page("typing", "Typing")
    page.choice(
        "typing_strategy",
        "Put the text in by",
        [
            ("auto", "Automatic — typing where that works, pasting elsewhere"),
            ("type", "Typing it as key presses"),
            ("paste", "Pasting it (your clipboard is put back afterwards)"),
            ("clipboard", "Only copying it to the clipboard"),
        ],
        "How dictated text reaches the window you are working in. Pasting is quicker for long text; some "
        "programs accept only one of the two.",
    )
    page.check_box(
        "type_into_any_focus",
        "Type even where it is unclear whether text is accepted",
        "Normally Perch types only into places known to take text, and copies the text to the clipboard "
        "otherwise. Turn this on for programs it does not recognise.",
    )
    page.check_box(
        "smart_spacing",
        "Fit spaces and capitals to the text around it",
        "Adds a space before the new text, or starts it with a capital letter, when it continues what you "
        "dictated before.",
    )
    return page


def caption_page() -> Page:
    page = Page("caption", "Caption")
    page.check_box(
        "caption.show",
        "Show the caption while dictating",
        "A small window near the bottom of the screen shows the words as they are recognised.",
    )
    page.number("caption.font_size", "Text size", *FONT_SIZE_RANGE, "The size of the caption's text.", suffix=" pt")
    page.slider(
        "caption.opacity",
        "Opacity",
        OPACITY_RANGE,
        "How solid the caption is; fainter lets you see what is behind it.",
        ends=("Faint", "Solid"),
        show=lambda value: f"{value * 100:.0f} %",
    )
    page.check_box(
        "caption.click_through",
        "Let clicks pass through the caption",
        "Clicks on the caption go to the window below it; the caption cannot be moved while this is on.",
    )
    page.check_box(
        "caption.hide_when_idle",
        "Hide the caption when not dictating",
        "When off, the last text stays on screen, dimmed, until you dictate again.",
    )
    return page


def history_page() -> Page:
    page = Page("history", "History")
    enabled = page.check_box(
        "history_enabled",
        "Keep a history of what I dictate",
        "A list of your dictated text, so that you can copy something again later. It stays on this computer.",
    )
    days = page.number(
        "history_keep_days",
        "Keep entries for",
        0,
        3650,
        "Older entries are deleted. Forever keeps them all.",
        suffix=" days",
        zero_text="Forever",
    )
    enabled.toggled.connect(days.setEnabled)
    page.number(
        "keep_recordings",
        "Recordings kept",
        0,
        1000,
        "The sound of your last few dictations, so that one can be transcribed again. Recordings whose "
        "transcription failed are always kept.",
        zero_text="None",
    )
    return page


def startup_page() -> Page:
    page = Page("startup", "Start at login")
    page.check_box(
        "start_at_login",
        "Start Perch when I log in",
        "Perch starts in the background when you log in, so that dictation is ready when you need it.",
    )
    page.bindings[-1].effect = lambda enabled: autostart.set_start_at_login(bool(enabled))
    if sys.platform == "win32":
        where = "Perch adds itself to the programs Windows starts at login (Task Manager → Startup apps)."
    else:
        kind = "a login item" if sys.platform == "darwin" else "an autostart entry"
        where = f"Perch writes {kind}: {autostart.entry_path()}"
    note = QLabel(where)
    note.setWordWrap(True)
    page.form.addRow(note)
    return page
