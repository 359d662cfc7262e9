"""The settings dialog on a real settings file: each control saves at once, outside changes show, hotkeys are
recorded from real key events, and the level meter listens to a real (PulseAudio) microphone."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QComboBox, QMessageBox, QSlider, QSpinBox
from pytestqt.qtbot import QtBot

from app.gui.hotkey_edit import NAMED_KEYS, HotkeyEdit, hotkey_problem, key_name
from app.gui.mic_level import MicLevelProbe
from app.gui.model_page import CUSTOM
from app.gui.settings_dialog import DEBOUNCE_MS, SettingsDialog
from app.gui.settings_form import value_of, with_value
from app.hotkeys.keys import format_hotkey, parse_hotkey
from app.settings import CaptionSettings, Settings, SettingsStore
from stt import catalog
from stt.catalog import ModelFile, ModelSpec
from stt.modelstore import model_dir, save_marker
from tests.pulse import PulseMic
from tests.screenshots import save_screenshot

ROOT = Path(__file__).resolve().parents[1]
SAVED = DEBOUNCE_MS * 10
"""How long to wait for a debounced save."""
CTRL = Qt.KeyboardModifier.ControlModifier
ALT = Qt.KeyboardModifier.AltModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
NOMOD = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    return SettingsStore(tmp_path / "settings.json")


@pytest.fixture
def dialog(qtbot: QtBot, store: SettingsStore) -> SettingsDialog:
    window = SettingsDialog(store)
    qtbot.addWidget(window)
    return window


def stored(store: SettingsStore) -> dict[str, Any]:
    """The settings file as JSON."""
    return dict(json.loads(store.path.read_text(encoding="utf-8")))


def stored_value(store: SettingsStore, path: str) -> Any:
    data = stored(store) if store.path.exists() else {}
    for part in path.split("."):
        data = data.get(part, {}) if isinstance(data, dict) else {}
    return data


# Every setting, one control each.

EDITABLE = {f.name for f in fields(Settings)} - {"schema_version", "caption", "vocabulary"} | {
    f"caption.{f.name}" for f in fields(CaptionSettings) if f.name != "geometry"
}

CHANGES: dict[str, Any] = {
    "model": "parakeet-tdt-0.6b-v2",
    "quantization": "fp32",
    "device": "cpu",
    "mode": "handsfree",
    "vad_threshold": 0.7,
    "partials": False,
    "partials_preset": "quality",
    "final_pass": "streaming",
    "typing_strategy": "paste",
    "type_into_any_focus": True,
    "smart_spacing": False,
    "preroll": False,
    "sound_cues": False,
    "caption.show": False,
    "caption.font_size": 24,
    "caption.opacity": 0.5,
    "caption.click_through": True,
    "caption.hide_when_idle": False,
    "history_enabled": False,
    "history_keep_days": 30,
    "keep_recordings": 5,
    "start_at_login": True,
    "service_enabled": True,
    "service_port": 9100,
    "service_wyoming": True,
}


def operate(control: Any, value: Any) -> None:
    """Change a control the way a person would end up changing it."""
    if isinstance(control, QCheckBox):
        assert control.isChecked() != value
        control.click()
    elif isinstance(control, QComboBox):
        index = control.findData(value)
        assert index >= 0, f"{value!r} is not offered"
        control.setCurrentIndex(index)
    elif isinstance(control, QSpinBox):
        control.setValue(value)
    elif isinstance(control, QSlider):
        control.setValue(round(value * 100))
    else:
        raise AssertionError(f"no way to operate {control!r}")


def test_every_setting_has_a_control_with_a_tooltip(dialog: SettingsDialog) -> None:
    assert set(dialog.controls) == EDITABLE
    for path, control in dialog.controls.items():
        assert control.toolTip(), f"{path} has no tooltip"
    assert set(CHANGES) | {"ptt_hotkey", "toggle_hotkey", "microphone"} == EDITABLE


@pytest.mark.parametrize("path", sorted(CHANGES))
def test_control_round_trips_to_the_file(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore, path: str) -> None:
    value = CHANGES[path]
    assert value_of(store.current, path) != value
    operate(dialog.controls[path], value)
    qtbot.waitUntil(lambda: stored_value(store, path) == value, timeout=SAVED)
    expected = with_value(Settings(), path, value)
    assert SettingsStore(store.path).load() == expected
    assert store.current == expected
    if path == "start_at_login":
        from app.autostart import entry_path, start_at_login_enabled

        assert start_at_login_enabled()
        operate(dialog.controls[path], False)
        qtbot.waitUntil(lambda: stored_value(store, path) is False, timeout=SAVED)
        assert not entry_path().exists()


def test_dependent_controls_follow(dialog: SettingsDialog) -> None:
    preset = dialog.controls["partials_preset"]
    days = dialog.controls["history_keep_days"]
    assert preset.isEnabled() and days.isEnabled()
    operate(dialog.controls["partials"], False)
    operate(dialog.controls["history_enabled"], False)
    assert not preset.isEnabled() and not days.isEnabled()


def test_debounced_controls_save_once_after_a_pause(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    saves: list[Settings] = []
    store.subscribe(lambda _old, new: saves.append(new))
    slider = dialog.controls["caption.opacity"]
    assert isinstance(slider, QSlider)
    for step in (80, 70, 60, 50):
        slider.setValue(step)
    assert saves == []
    qtbot.waitUntil(lambda: len(saves) == 1, timeout=SAVED)
    qtbot.wait(DEBOUNCE_MS + 100)
    assert [s.caption.opacity for s in saves] == [0.5]


def test_closing_saves_what_is_pending(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    dialog.show()
    operate(dialog.controls["caption.font_size"], 40)
    dialog.close()
    assert stored_value(store, "caption.font_size") == 40


def test_microphone_choice_round_trips(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    store.save(replace(store.current, microphone="USB Headset"))
    combo = dialog.dictation_page.microphone
    assert combo.currentText() == "USB Headset (not connected)"
    operate(combo, None)
    qtbot.waitUntil(lambda: store.path.exists() and stored(store)["microphone"] is None, timeout=SAVED)
    operate(combo, "USB Headset")
    qtbot.waitUntil(lambda: stored(store)["microphone"] == "USB Headset", timeout=SAVED)
    assert SettingsStore(store.path).load().microphone == "USB Headset"


# The model.


def test_model_folder_is_a_custom_entry(
    qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore, tmp_path: Path
) -> None:
    page = dialog.model_page
    folder = tmp_path / "my model"
    folder.mkdir()
    store.save(replace(store.current, model=str(folder)))
    assert page.model_combo.currentData() == CUSTOM
    assert page.folder_edit.text() == str(folder)
    assert "from this folder" in page.status.text()
    assert page.download_button.isHidden()
    operate(page.model_combo, "parakeet-tdt-0.6b-v3")
    qtbot.waitUntil(lambda: stored(store)["model"] == "parakeet-tdt-0.6b-v3", timeout=SAVED)
    operate(page.model_combo, CUSTOM)  # the last folder is still in the field
    qtbot.waitUntil(lambda: stored(store)["model"] == str(folder), timeout=SAVED)


def test_typed_folder_is_saved_and_a_blank_one_is_refused(
    qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore, tmp_path: Path
) -> None:
    page = dialog.model_page
    dialog.show()
    operate(page.model_combo, CUSTOM)
    assert not page.folder_edit.isHidden()
    assert not store.path.exists()  # no folder yet, nothing to save
    QTest.keyClicks(page.folder_edit, "   ")
    qtbot.waitUntil(lambda: "Not saved" in page.problem_text(), timeout=SAVED)
    assert not store.path.exists()
    assert store.current.model == catalog.DEFAULT_MODEL
    page.folder_edit.clear()
    QTest.keyClicks(page.folder_edit, str(tmp_path))
    qtbot.waitUntil(lambda: store.path.exists() and stored(store)["model"] == str(tmp_path), timeout=SAVED)
    assert page.problem_text() == ""


TINY = "tiny-test-model"


@pytest.fixture
def tiny_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A catalog model whose int8 variant is on disk and whose fp32 variant is not."""
    monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
    spec = ModelSpec(
        name=TINY,
        repo_id="example/tiny",
        languages="en",
        description="A tiny model for tests",
        files={"int8": (ModelFile("m.int8.onnx", 3, None, 3),), "fp32": (ModelFile("m.onnx", 4, None, 4_000_000),)},
    )
    monkeypatch.setitem(catalog.CATALOG, TINY, spec)
    model_dir(TINY).mkdir(parents=True)
    (model_dir(TINY) / "m.int8.onnx").write_bytes(b"abc")
    save_marker(spec, "int8", None, {"m.int8.onnx": {"size": 3}})
    return TINY


def test_download_button_asks_for_a_missing_variant(qtbot: QtBot, store: SettingsStore, tiny_model: str) -> None:
    store.save(replace(Settings(), model=tiny_model, quantization="int8"))
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    page = dialog.model_page
    assert page.status.text() == "The int8 weights are downloaded."
    assert not page.download_button.isEnabled()
    assert "fp32 — 0.00 GB" in page.quantization.itemText(page.quantization.findData("fp32"))
    operate(page.quantization, "fp32")
    assert page.download_button.isEnabled()
    assert "not downloaded" in page.status.text()
    with qtbot.waitSignal(dialog.download_requested, timeout=1000) as signal:
        page.download_button.click()
    assert signal.args == [tiny_model, "fp32"]


def test_catalog_sizes_are_shown(dialog: SettingsDialog) -> None:
    combo = dialog.model_page.quantization
    assert combo.itemText(combo.findData("int8")).startswith("int8 — 0.67 GB")
    assert combo.itemText(combo.findData("fp32")).startswith("fp32 — 2.55 GB")


def test_device_page_says_whether_cuda_works(qtbot: QtBot, dialog: SettingsDialog) -> None:
    status = dialog.device_page.status
    qtbot.waitUntil(lambda: dialog.device_page.cuda_available is not None, timeout=30_000)
    if dialog.device_page.cuda_available:
        assert status.text().startswith("CUDA works")
    else:
        assert status.text().startswith("CUDA cannot be used here")
    # Automatic weights now name the variant that would be loaded.
    assert "weights are" in dialog.model_page.status.text()


# Changes made elsewhere.


def test_outside_change_updates_controls_without_saving_again(
    qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore
) -> None:
    saves: list[Settings] = []
    store.subscribe(lambda _old, new: saves.append(new))
    changed = replace(
        store.current, mode="toggle", ptt_hotkey="F8", caption=replace(store.current.caption, font_size=30)
    )
    store.save(changed)
    assert dialog.controls["mode"].currentData() == "toggle"  # type: ignore[attr-defined]
    assert dialog.dictation_page.ptt_hotkey.hotkey() == "F8"
    assert dialog.controls["caption.font_size"].value() == 30  # type: ignore[attr-defined]
    qtbot.wait(DEBOUNCE_MS + 200)
    assert saves == [changed]


def test_outside_change_from_another_thread(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    saves: list[Settings] = []
    store.subscribe(lambda _old, new: saves.append(new))
    thread = threading.Thread(target=store.save, args=(replace(store.current, typing_strategy="clipboard"),))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: dialog.controls["typing_strategy"].currentData() == "clipboard")  # type: ignore[attr-defined]
    qtbot.wait(DEBOUNCE_MS + 200)
    assert len(saves) == 1


def test_outside_change_keeps_an_edit_in_progress(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    dialog.controls["vad_threshold"].setValue(80)  # type: ignore[attr-defined]
    store.save(replace(store.current, mode="handsfree"))
    assert dialog.controls["vad_threshold"].value() == 80  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: store.path.exists() and stored(store)["vad_threshold"] == 0.8, timeout=SAVED)
    assert stored(store)["mode"] == "handsfree"


def test_destroyed_dialog_unsubscribes(qtbot: QtBot, store: SettingsStore) -> None:
    before = len(store._subscribers)
    window = SettingsDialog(store)
    assert len(store._subscribers) == before + 1
    reference = weakref.ref(window)
    window.deleteLater()
    del window
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    assert len(store._subscribers) == before
    store.save(replace(store.current, mode="toggle"))  # no subscriber left to fail
    assert reference() is None  # the store did not keep it alive


# Hotkeys.


@pytest.fixture
def shown(qtbot: QtBot, dialog: SettingsDialog) -> SettingsDialog:
    dialog.show_page("dictation")
    dialog.dictation_page.probe.stop()
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def capture(edit: HotkeyEdit) -> None:
    QTest.mouseClick(edit.button, Qt.MouseButton.LeftButton)
    assert edit.capturing


def test_hotkey_is_recorded_from_key_presses(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.ptt_hotkey
    with qtbot.waitSignal(shown.hotkey_capture_changed) as started:
        capture(edit)
    assert started.args == [True]
    QTest.keyPress(edit.button, Qt.Key.Key_Control)
    QTest.keyPress(edit.button, Qt.Key.Key_Shift, CTRL)
    assert edit.button.text() == "Ctrl+Shift+…"
    QTest.keyClick(edit.button, Qt.Key.Key_F9, CTRL | SHIFT)
    assert not edit.capturing
    assert edit.button.text() == "Ctrl+Shift+F9"
    assert stored(store)["ptt_hotkey"] == "Ctrl+Shift+F9"
    assert format_hotkey(parse_hotkey("Ctrl+Shift+F9")) == "Ctrl+Shift+F9"
    assert SettingsStore(store.path).load().ptt_hotkey == "Ctrl+Shift+F9"


def test_shifted_symbol_names_its_key(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.toggle_hotkey
    capture(edit)
    QTest.keyClick(edit.button, Qt.Key.Key_Exclam, CTRL | SHIFT)  # Shift+1 on a US layout
    assert stored(store)["toggle_hotkey"] == "Ctrl+Shift+1"


def test_escape_cancels_and_dialog_stays_open(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.ptt_hotkey
    capture(edit)
    QTest.keyClick(edit.button, Qt.Key.Key_Escape)
    assert not edit.capturing
    assert edit.button.text() == "Ctrl+Alt+Space"
    assert shown.isVisible()
    assert not store.path.exists()


def test_clear_sets_no_hotkey(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.toggle_hotkey
    QTest.mouseClick(edit.clear_button, Qt.MouseButton.LeftButton)
    assert stored(store)["toggle_hotkey"] == ""
    assert edit.button.text() == "None"


def test_modifiers_alone_are_refused(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.ptt_hotkey
    capture(edit)
    QTest.keyPress(edit.button, Qt.Key.Key_Control)
    QTest.keyPress(edit.button, Qt.Key.Key_Alt, CTRL)
    QTest.keyRelease(edit.button, Qt.Key.Key_Alt, CTRL | ALT)
    QTest.keyRelease(edit.button, Qt.Key.Key_Control, CTRL)
    assert "Ctrl+Alt has no key" in edit.message.text()
    assert not edit.message.isHidden()
    assert edit.capturing  # still listening for a proper combination
    QTest.keyClick(edit.button, Qt.Key.Key_Escape)
    assert not store.path.exists()


def test_the_other_hotkey_is_refused(qtbot: QtBot, shown: SettingsDialog, store: SettingsStore) -> None:
    edit = shown.dictation_page.ptt_hotkey
    capture(edit)
    QTest.keyClick(edit.button, Qt.Key.Key_D, CTRL | ALT)
    assert "already the toggle hotkey" in edit.message.text()
    assert edit.button.text() == "Ctrl+Alt+Space"
    assert not store.path.exists()
    capture(edit)
    QTest.keyClick(edit.button, Qt.Key.Key_D)
    assert "alone would stop that key from typing" in edit.message.text()
    capture(edit)
    QTest.keyClick(edit.button, Qt.Key.Key_Pause)
    assert edit.message.isHidden()
    assert stored(store)["ptt_hotkey"] == "Pause"


def test_every_recordable_key_parses_back() -> None:
    keys = [*range(Qt.Key.Key_A, Qt.Key.Key_Z + 1), *range(Qt.Key.Key_0, Qt.Key.Key_9 + 1)]
    keys += [*range(Qt.Key.Key_F1, Qt.Key.Key_F24 + 1), *NAMED_KEYS]
    for key in keys:
        name = key_name(key)
        assert name is not None
        for text in (f"Ctrl+Alt+{name}", f"Ctrl+Alt+Shift+Super+{name}"):
            assert format_hotkey(parse_hotkey(text)) == text
    assert key_name(Qt.Key.Key_Control) is None


def test_hotkey_rules() -> None:
    assert hotkey_problem("", "Ctrl+Alt+D", "toggle hotkey") is None
    assert hotkey_problem("F9", "", "toggle hotkey") is None
    assert hotkey_problem("Shift+A", "", "toggle hotkey") is not None
    assert "already" in (hotkey_problem("ctrl+alt+d", "Ctrl+Alt+D", "toggle hotkey") or "")
    assert "unknown key" in (hotkey_problem("Ctrl+Nope", "", "toggle hotkey") or "")


# Reset and pages.


def test_reset_to_defaults_after_confirmation(qtbot: QtBot, dialog: SettingsDialog, store: SettingsStore) -> None:
    changed = replace(
        store.current,
        mode="toggle",
        toggle_hotkey="F7",
        caption=replace(store.current.caption, font_size=40, geometry=(10, 20, 300, 80)),
    )
    store.save(changed)
    dialog.show()
    QTest.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    box = dialog.reset_box
    assert box is not None and box.isVisible()
    QTest.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert store.current == changed
    QTest.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    box = dialog.reset_box
    assert box is not None
    QTest.mouseClick(box.button(QMessageBox.StandardButton.Reset), Qt.MouseButton.LeftButton)
    expected = replace(Settings(), caption=replace(CaptionSettings(), geometry=(10, 20, 300, 80)))
    assert SettingsStore(store.path).load() == expected
    assert dialog.controls["mode"].currentData() == "ptt"  # type: ignore[attr-defined]
    assert dialog.dictation_page.toggle_hotkey.hotkey() == "Ctrl+Alt+D"
    assert dialog.controls["caption.font_size"].value() == 18  # type: ignore[attr-defined]


def test_show_page(dialog: SettingsDialog) -> None:
    for name in ("caption", "History", "start at login", "live_text", "device"):
        dialog.show_page(name)
        assert dialog.current_page().key == {"start at login": "startup", "live_text": "live-text"}.get(
            name, name.lower()
        )
    with pytest.raises(ValueError, match="no settings page"):
        dialog.show_page("nonsense")


# The level meter.


def tone(path: Path, seconds: float, amplitude: float) -> Path:
    rate = 48000
    t = np.arange(int(rate * seconds)) / rate
    soundfile.write(path, (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def recorders(pulse_mic: PulseMic) -> int:
    """Streams recording from the PulseAudio daemon now."""
    return len(pulse_mic.pactl("list", "short", "source-outputs").strip().splitlines())


def test_level_meter_hears_the_microphone(
    qtbot: QtBot, pulse_mic: PulseMic, store: SettingsStore, tmp_path: Path
) -> None:
    baseline = recorders(pulse_mic)
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    page = dialog.dictation_page
    levels: list[float] = []
    page.probe.level.connect(levels.append)
    dialog.show()
    assert not page.probe.running  # not on the microphone's page
    dialog.show_page("dictation")
    assert page.probe.running
    qtbot.waitUntil(lambda: page.microphone.findData("pulse") >= 0, timeout=10_000)
    with qtbot.waitSignal(page.probe.opened, timeout=10_000) as opened:
        operate(page.microphone, "pulse")  # the meter follows the choice
    assert opened.args == ["pulse"]
    assert stored_value(store, "microphone") == "pulse"
    levels.clear()
    qtbot.waitUntil(lambda: len(levels) >= 5, timeout=10_000)
    assert max(levels) < -30  # the null sink is silent
    qtbot.waitUntil(lambda: recorders(pulse_mic) <= baseline + 1, timeout=5000)  # the default device was closed
    player = pulse_mic.play_async(tone(tmp_path / "tone.wav", seconds=1.5, amplitude=0.5))
    try:
        qtbot.waitUntil(lambda: max(levels) > -30, timeout=10_000)
        assert page.meter.bar.target > 0.5
        assert page.meter.level_text.endswith("dBFS")
    finally:
        player.wait(timeout=30)
    qtbot.waitUntil(lambda: levels[-1] < -30, timeout=10_000)
    dialog.hide()
    assert not page.probe.running
    assert page.probe.wait(5)
    qtbot.waitUntil(lambda: recorders(pulse_mic) <= baseline, timeout=5000)


def test_missing_microphone_says_why(qtbot: QtBot, store: SettingsStore) -> None:
    store.save(replace(Settings(), microphone="No Such Microphone 42"))
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show_page("dictation")
    dialog.show()
    meter = dialog.dictation_page.meter
    qtbot.waitUntil(lambda: not meter.message.isHidden(), timeout=15_000)
    assert meter.message.text()
    assert dialog.dictation_page.microphone.currentText() == "No Such Microphone 42 (not connected)"
    dialog.close()
    assert dialog.dictation_page.probe.wait(5)


def test_probe_reports_a_missing_device(qtbot: QtBot) -> None:
    probe = MicLevelProbe()
    with qtbot.waitSignal(probe.failed, timeout=15_000) as failure:
        probe.start("No Such Microphone 42")
    assert isinstance(failure.args[0], str) and failure.args[0]
    probe.stop()
    assert probe.wait(5)


# The README's picture.


def test_screenshot(qtbot: QtBot, store: SettingsStore, tmp_path: Path) -> None:
    """Renders the Dictation page; with PERCH_SCREENSHOTS=1 it refreshes docs/screenshots/settings.png."""
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.resize(760, 440)
    dialog.show_page("dictation")
    meter = dialog.dictation_page.meter
    meter.show_level(-16)
    qtbot.waitUntil(lambda: meter.bar.value == meter.bar.target, timeout=3000)
    save_screenshot(dialog, "settings.png", tmp_path)
