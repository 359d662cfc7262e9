"""The tray app's controller offscreen: commands over the local socket, dictation through to the text."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QInputDialog, QMenu
from pytestqt.qtbot import QtBot

from app import coordinator as co
from app import ipc
from app.gui.caption_parts import STATE_COLOR, WARNING_COLOR
from app.gui.controller import AppOptions, Controller
from app.history import History
from app.injection import X11Clipboard, text_formats
from app.launch import LaunchSettings
from app.service.token import replace_token, token_path
from app.settings import SettingsStore, dictation_options
from app.vocabulary_settings import ReplacementEntry, VocabularyEntry, VocabularySettings
from stt.boost.replacements import Replacement
from stt.dictation import DictationOptions
from stt.engine import Recognizer
from stt.errors import MicrophoneError
from stt.modelfiles import ModelFiles
from stt.quantization import WeightsChoice
from stt.runtime import RuntimeOptions
from stt.worker import WorkerOptions

from .conftest import Speak
from .live import HandSource, silence
from .service_process import free_port, health
from .xserver import TargetWindows, need_tools


@pytest.fixture
def controller(qtbot: QtBot, words_model: Path, tmp_path: Path) -> Iterator[tuple[Controller, HandSource]]:
    source = HandSource()
    options = AppOptions(
        load=lambda: Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu")),
        model_label="words-tdt (fp32)",
        source=lambda: source,
        dictation=DictationOptions(mode="ptt"),
        worker=WorkerOptions(partials="low"),
        history=History(tmp_path / "history.sqlite3"),
        typing_strategy="clipboard",
        ptt_hotkey="",
        toggle_hotkey="",
    )
    app = Controller(options)
    app.start()
    qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
    yield app, source
    app.close()


def test_tray_comes_up_loading_then_idle(controller: tuple[Controller, HandSource]) -> None:
    app, _ = controller
    assert app.state.model_ready
    assert "Perch: idle" in app.tray.icon.toolTip() and "words-tdt" in app.tray.icon.toolTip()
    assert re.search(r"^loaded in \d+\.\d s$", app.tray.icon.toolTip(), re.MULTILINE)


def test_push_to_talk_over_the_socket_gives_the_text(
    controller: tuple[Controller, HandSource], qtbot: QtBot, speak: Speak
) -> None:
    app, source = controller
    answers: list[str | None] = []

    def press_speak_release() -> None:
        answers.append(ipc.send("ptt press"))
        source.push(np.concatenate([speak("seven three five"), silence(0.3)]))
        answers.append(ipc.send("ptt release"))
        source.push(silence(0.2))

    worker = threading.Thread(target=press_speak_release)
    worker.start()  # the app answers from its event loop, which runs while qtbot waits
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    worker.join(5)
    assert answers == ["ok", "ok"]
    assert app.typed == [(1, "seven three five")]
    assert app.state.phase is co.Phase.IDLE
    assert QApplication.clipboard().text() == "seven three five"
    assert "seven three five" in app.caption.text_label.text()  # the caption showed the final
    assert "after release" in app.caption.latency_label.text()
    assert re.search(r"^loaded in \d+\.\d s · runs \d+× faster than real time$", app.tray.icon.toolTip(), re.M)
    history = app.options.history
    assert history is not None
    # The history is written on its own thread, after the text was delivered.
    qtbot.waitUntil(lambda: any(e.stop_to_typed_ms is not None for e in history.recent()), timeout=5000)
    (entry,) = history.recent()
    assert entry.text == "seven three five" and entry.model == "words-tdt (fp32)" and entry.device == "cpu"
    assert entry.stop_to_final_ms is not None and entry.stop_to_typed_ms is not None
    assert entry.stop_to_typed_ms >= entry.stop_to_final_ms
    assert entry.audio_path is not None and Path(entry.audio_path).is_file()


def test_unknown_command_is_refused(controller: tuple[Controller, HandSource], qtbot: QtBot) -> None:
    answer: list[str | None] = []
    thread = threading.Thread(target=lambda: answer.append(ipc.send("format the disk")))
    thread.start()
    qtbot.waitUntil(lambda: bool(answer), timeout=5000)
    assert answer[0] is not None and answer[0].startswith("error: unknown command")


def test_menu_offers_start_mode_and_quit(controller: tuple[Controller, HandSource], qtbot: QtBot) -> None:
    app, _ = controller
    app.tray.menu.aboutToShow.emit()
    texts = [a.text() for a in app.tray.menu.actions()]
    assert texts[0] == "Start dictation" and "Mode" in texts and texts[-1] == "Quit"
    mode_menu = next(a.menu() for a in app.tray.menu.actions() if a.text() == "Mode")
    assert isinstance(mode_menu, QMenu)
    hands_free = next(a for a in mode_menu.actions() if a.text() == "Hands-free")
    hands_free.trigger()
    qtbot.waitUntil(lambda: app.dictation.options.mode == "handsfree", timeout=5000)


def _plain_options(
    load: Callable[[], Recognizer],
    label: str,
    settings: LaunchSettings | None = None,
    source: HandSource | None = None,
) -> AppOptions:
    """A controller's options with no hotkeys, no live text and a microphone the test feeds by hand (`source`,
    or a new one each time the microphone opens)."""
    return AppOptions(
        load=load,
        model_label=label,
        source=HandSource if source is None else lambda: source,
        dictation=DictationOptions(),
        worker=WorkerOptions(partials="off"),
        ptt_hotkey="",
        toggle_hotkey="",
        settings=settings,
    )


def test_model_failure_shows_the_error(qtbot: QtBot) -> None:
    def broken() -> Recognizer:
        raise RuntimeError("no model here: run `perch models download`")

    app = Controller(_plain_options(broken, "missing"))
    app.start()
    try:
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.ERROR, timeout=10000)
        assert "perch models download" in app.tray.icon.toolTip()
        app.toggle()
        assert not app.state.capturing
    finally:
        app.close()


def test_no_running_app_answers_none() -> None:
    assert ipc.send("toggle", timeout_ms=300) is None


def test_one_instance_per_user_and_quit_from_the_command_line(words_model: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}

    def perch(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)

    first = subprocess.Popen(
        [sys.executable, "-m", "app", "--model", str(words_model)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while ipc.send("show", timeout_ms=200) is None:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the app never answered on its socket"
            time.sleep(0.05)
        second = perch("--model", str(words_model))
        assert second.returncode == 0 and "already running" in second.stderr
        toggled = perch("toggle")
        assert toggled.returncode == 0, toggled.stderr
        assert perch("quit").returncode == 0
        assert first.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
    gone = perch("toggle")
    assert gone.returncode == 1 and "not running" in gone.stderr


@pytest.fixture
def configured(
    qtbot: QtBot, words_model: Path, tmp_path: Path
) -> Iterator[tuple[Controller, LaunchSettings, list[HandSource], list[str]]]:
    """A controller that follows a settings file; counts the models it loads and the microphones it opens."""
    store = SettingsStore(tmp_path / "settings.json")
    store.save(replace(store.load(), sound_cues=False, ptt_hotkey="", toggle_hotkey="", typing_strategy="clipboard"))
    launch = LaunchSettings(store, {"mode": "toggle"})
    sources: list[HandSource] = []
    loads: list[str] = []

    def load() -> Recognizer:
        loads.append(launch.current().quantization)
        return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))

    def source() -> HandSource:
        sources.append(HandSource())
        return sources[-1]

    current = launch.current()
    options = AppOptions(
        load=load,
        model_label="words-tdt (fp32)",
        source=source,
        dictation=dictation_options(current),
        worker=WorkerOptions(partials="low"),
        typing_strategy="clipboard",
        ptt_hotkey="",
        toggle_hotkey="",
        settings=launch,
    )
    app = Controller(options)
    app.start()
    qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
    yield app, launch, sources, loads
    app.close()
    launch.close()


def test_command_line_choices_hold_until_that_setting_changes(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    launch = LaunchSettings(store, {"mode": "handsfree", "device": None})
    assert launch.current().mode == "handsfree" and store.current.mode == "ptt"
    store.save(replace(store.current, caption=replace(store.current.caption, font_size=30)))
    assert launch.current().mode == "handsfree"  # another setting changed: the override holds
    launch.update(mode="ptt")  # the same value as stored, chosen explicitly
    assert launch.current().mode == "ptt"
    launch.close()


def test_settings_changes_apply_without_a_restart(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]], qtbot: QtBot
) -> None:
    app, launch, sources, loads = configured
    assert app.dictation.options.mode == "toggle" and len(sources) == 1 and loads == ["auto"]

    launch.update(mode="handsfree", vad_threshold=0.7)
    qtbot.waitUntil(lambda: app.dictation.options.mode == "handsfree", timeout=5000)
    assert app.dictation.options.vad.threshold == 0.7 and len(sources) == 1

    launch.update(caption=replace(launch.current().caption, font_size=31, opacity=0.5))
    assert app.caption.windowOpacity() == pytest.approx(0.5, abs=0.01)
    assert app.options.caption.font_size == 31

    launch.update(partials_preset="quality")
    qtbot.waitUntil(lambda: app.worker.preset is not None and app.worker.preset.name == "quality", timeout=5000)

    launch.update(microphone="USB headset")
    qtbot.waitUntil(lambda: len(sources) == 2 and sources[1].running, timeout=5000)
    assert not sources[0].running and loads == ["auto"]

    launch.update(quantization="int8")
    qtbot.waitUntil(lambda: loads == ["auto", "int8"] and app.state.phase is co.Phase.IDLE, timeout=20000)
    assert len(sources) == 3 and sources[2].running


def _models_status(base: str, token: str) -> int:
    request = urllib.request.Request(f"{base}/v1/models", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # restarting


def test_settings_turn_the_service_for_other_apps_on_and_off(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]], qtbot: QtBot
) -> None:
    app, launch, _sources, loads = configured
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    assert app.service.url == "" and health(base) == 0
    launch.update(service_enabled=True, service_port=port)
    qtbot.waitUntil(lambda: f"Serving other apps at {base}/v1" in app._tooltip(), timeout=5000)
    assert app.service.worker is app.worker and health(base) == 200

    launch.update(quantization="int8")  # a new model: the service follows it onto the new worker
    qtbot.waitUntil(lambda: loads == ["auto", "int8"] and app.state.phase is co.Phase.IDLE, timeout=20000)
    qtbot.waitUntil(lambda: app.service.worker is app.worker, timeout=5000)
    assert health(base) == 200

    old = token_path().read_text(encoding="utf-8").strip()
    new = replace_token()  # as Regenerate in Settings does
    app.sync_service(restart=True)
    qtbot.waitUntil(lambda: _models_status(base, new) == 200, timeout=5000)
    assert _models_status(base, old) == 401

    launch.update(service_enabled=False)
    qtbot.waitUntil(lambda: app.service.url == "", timeout=5000)
    assert health(base) == 0 and "Serving other apps" not in app._tooltip()


def test_a_taken_port_for_other_apps_is_a_notice(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]],
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, launch, _sources, _loads = configured
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.tray, "notify", lambda title, message, error: shown.append((title, message)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        launch.update(service_enabled=True, service_port=port)
        qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    ((title, message),) = shown
    assert title == "Other apps cannot use Perch"
    assert message.startswith(f"Cannot listen on 127.0.0.1:{port} (") and message.endswith("choose another port.")
    assert app.service.url == "" and "Serving other apps" not in app._tooltip()


def test_settings_wait_for_the_utterance_in_progress(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]], qtbot: QtBot, speak: Speak
) -> None:
    app, launch, sources, loads = configured
    app.toggle()
    # Started on the control thread, and the utterance it opened known here: a stop before that ends nothing.
    qtbot.waitUntil(lambda: app.dictation.recording and app.state.utterance is not None, timeout=5000)
    launch.update(device="cpu")
    sources[0].push(np.concatenate([speak("hello world"), silence(0.3)]))
    assert loads == ["auto"]  # not while recording
    app.toggle()
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    assert app.typed == [(1, "hello world")]
    qtbot.waitUntil(lambda: len(loads) == 2 and app.state.phase is co.Phase.IDLE, timeout=20000)


def test_tray_menu_changes_settings(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]], qtbot: QtBot
) -> None:
    app, launch, _sources, _loads = configured
    app.tray.menu.aboutToShow.emit()
    texts = [a.text() for a in app.tray.menu.actions()]
    items = ("Mode", "Microphone", "Model", "Show captions", "Transcribe files…", "History…", "Settings…")
    for item in (*items, "Check setup…", "Quit"):
        assert item in texts
    model_menu = next(a.menu() for a in app.tray.menu.actions() if a.text() == "Model")
    assert isinstance(model_menu, QMenu)
    labels = [a.text() for a in model_menu.actions()]
    assert any("v3" in label and "25" in label for label in labels) and any("v2" in label for label in labels)
    status = model_menu.actions()[0]
    assert re.fullmatch(r"Loaded in \d+\.\d s", status.text()) and not status.isEnabled()
    assert "Automatic (int8 on CPU, fp32 on GPU)" in labels
    app.options.weights = WeightsChoice("int8", "auto", "auto: the model runs on the CPU")
    app.tray.menu.aboutToShow.emit()
    model_menu = next(a.menu() for a in app.tray.menu.actions() if a.text() == "Model")
    assert isinstance(model_menu, QMenu)
    assert "Automatic (int8 on CPU, fp32 on GPU): int8 in use" in [a.text() for a in model_menu.actions()]
    cpu = next(a for a in model_menu.actions() if a.text() == "CPU")
    cpu.trigger()
    assert launch.current().device == "cpu" and launch.store.load().device == "cpu"
    mic_menu = next(a.menu() for a in app.tray.menu.actions() if a.text() == "Microphone")
    assert isinstance(mic_menu, QMenu)
    assert mic_menu.actions()[0].text() == "System default" and mic_menu.actions()[0].isChecked()


def test_caption_and_tray_lead_to_the_vocabulary(
    configured: tuple[Controller, LaunchSettings, list[HandSource], list[str]], qtbot: QtBot
) -> None:
    app, launch, _sources, _loads = configured
    app.caption.show_final("seven   three")
    app.caption.add_to_vocabulary.emit(app.caption.text())  # the caption menu's "Add to vocabulary…"
    asked = app.windows.vocabulary_input
    assert isinstance(asked, QInputDialog) and asked.isVisible() and asked.textValue() == "seven three"
    asked.setTextValue("seven three")
    asked.accept()
    assert launch.current().vocabulary.phrases == (VocabularyEntry("seven three"),)
    recognizer = app.worker.recognizer
    assert recognizer is not None
    qtbot.waitUntil(lambda: recognizer.boost is not None and recognizer.boost.tree.phrases == 1, timeout=5000)

    app.caption.add_to_vocabulary.emit("seven three")
    again = app.windows.vocabulary_input
    assert isinstance(again, QInputDialog) and again is not asked
    again.accept()
    assert launch.current().vocabulary.phrases == (VocabularyEntry("seven three"),)  # not twice

    app.tray.menu.aboutToShow.emit()
    item = next(a for a in app.tray.menu.actions() if a.text() == "Vocabulary…")
    item.trigger()
    dialog = app.windows.settings
    assert dialog.isVisible() and dialog.current_page() is dialog.vocabulary_page
    assert dialog.vocabulary_page.count.text() == "1 phrase" and dialog.vocabulary_page.try_button.isEnabled()


def test_first_run_waits_for_the_download_dialog(qtbot: QtBot, words_model: Path, tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    launch = LaunchSettings(store)
    apps: list[Controller] = []
    asked: list[tuple[str, str]] = []

    def load() -> Recognizer:
        chosen = apps[0].live.await_download("parakeet-tdt-0.6b-v3", "auto", False)
        if chosen is None:
            raise RuntimeError("no speech model is downloaded yet")
        asked.append(chosen)
        return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))

    app = Controller(_plain_options(load, "words-tdt", settings=launch))
    apps.append(app)
    app.start()
    try:
        qtbot.waitUntil(lambda: app.windows.first_run is not None and app.windows.first_run.isVisible(), timeout=5000)
        assert app.state.phase is co.Phase.LOADING and "waiting for the model download" in app.tray.icon.toolTip()
        app.windows.first_run.model_ready.emit("parakeet-tdt-0.6b-v2", "int8")  # as after a finished download
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
        assert asked == [("parakeet-tdt-0.6b-v2", "int8")]
        saved = store.load()
        assert (saved.model, saved.quantization) == ("parakeet-tdt-0.6b-v2", "int8")
        qtbot.wait(300)
        assert app.worker.recognizer is not None and asked == [("parakeet-tdt-0.6b-v2", "int8")]  # loaded once
    finally:
        app.close()
        launch.close()


def test_closing_the_download_dialog_leaves_a_clear_error(qtbot: QtBot, tmp_path: Path) -> None:
    launch = LaunchSettings(SettingsStore(tmp_path / "settings.json"))
    apps: list[Controller] = []

    def load() -> Recognizer:
        if apps[0].live.await_download("parakeet-tdt-0.6b-v3", "auto", False) is None:
            raise RuntimeError("no speech model is downloaded yet: choose one in Settings ▸ Model")
        raise AssertionError("the dialog was closed")

    app = Controller(_plain_options(load, "parakeet", settings=launch))
    apps.append(app)
    app.start()
    try:
        qtbot.waitUntil(lambda: app.windows.first_run is not None and app.windows.first_run.isVisible(), timeout=5000)
        app.windows.first_run.close()
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.ERROR, timeout=10000)
        assert "Settings ▸ Model" in app.tray.icon.toolTip()
    finally:
        app.close()
        launch.close()


# The caption's state line follows the coordinator, as the tray icon does.


def caption_line(app: Controller) -> str:
    """What the caption's state line says."""
    return app.caption.state_label.full_text()


def tray_phase(app: Controller) -> str:
    """The first line of the tray's tooltip ("Perch: idle")."""
    return app.tray.icon.toolTip().splitlines()[0]


def caption_warns(app: Controller) -> bool:
    """Whether the state line is in the warning colour."""
    style = app.caption.state_label.styleSheet()
    assert WARNING_COLOR in style or STATE_COLOR in style, style
    return WARNING_COLOR in style


def press(app: Controller, qtbot: QtBot) -> None:
    """Push-to-talk down, until the pipeline has opened the utterance."""
    assert app.command("ptt press") == "ok"
    assert (caption_line(app), tray_phase(app)) == ("Listening…", "Perch: recording")
    assert app.caption.isVisible()
    qtbot.waitUntil(lambda: app.state.utterance is not None and app.dictation.recording, timeout=5000)
    assert caption_line(app) == "Listening…"


def release(app: Controller) -> None:
    """Push-to-talk up: the utterance is being transcribed."""
    assert app.command("ptt release") == "ok"
    assert (caption_line(app), tray_phase(app)) == ("Transcribing…", "Perch: transcribing")


@pytest.fixture
def typing_app(
    qtbot: QtBot, words_model: Path, xvfb_display: str, tmp_path: Path
) -> Iterator[tuple[Controller, HandSource, TargetWindows]]:
    """A push-to-talk controller that types with XTest into text windows on an Xvfb display."""
    need_tools("xdotool")
    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    source = HandSource()
    load = lambda: Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))  # noqa: E731
    app = Controller(_plain_options(load, "words-tdt (fp32)", source=source))
    app.start()
    try:
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
        yield app, source, targets
    finally:
        app.close()
        targets.close()


def test_caption_follows_a_dictation_typed_into_a_window(
    typing_app: tuple[Controller, HandSource, TargetWindows], qtbot: QtBot, speak: Speak
) -> None:
    app, source, targets = typing_app
    targets.focus("main")
    press(app, qtbot)
    source.push(np.concatenate([speak("seven three five"), silence(0.3)]))
    typing = threading.Event()
    app._typing_thread.submit(typing.wait, 20)  # typing waits until the test has seen "Typing…"
    release(app)
    qtbot.waitUntil(lambda: app.state.phase is not co.Phase.TRANSCRIBING, timeout=20000)
    assert (caption_line(app), tray_phase(app)) == ("Typing…", "Perch: typing")
    typing.set()
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    assert targets.wait_text("seven three five") == "seven three five"
    line = caption_line(app)
    assert re.fullmatch(r"Typed (\d+ ms|\d+\.\d s) after release", line), line
    assert tray_phase(app) == "Perch: idle" and not caption_warns(app)
    # The latency is not said twice; it comes back beside the next utterance's state.
    assert app.caption.latency_label.text() == "t" + line[1:] and app.caption.latency_label.isHidden()
    press(app, qtbot)
    assert not app.caption.latency_label.isHidden()
    assert app.caption.text_label.text() == ""  # a new utterance: the last one's text is gone
    assert app.command("cancel") == "ok"
    assert (caption_line(app), tray_phase(app)) == ("Cancelled", "Perch: idle")


def test_caption_says_why_the_text_was_left_on_the_clipboard(
    typing_app: tuple[Controller, HandSource, TargetWindows], qtbot: QtBot, speak: Speak, xvfb_display: str
) -> None:
    app, source, targets = typing_app
    targets.focus("main")
    press(app, qtbot)
    source.push(np.concatenate([speak("seven three five"), silence(0.3)]))
    targets.focus("other")  # the person moved on during dictation: the text is not typed there
    release(app)
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    line = caption_line(app)
    assert line.startswith("Left on the clipboard: the focus moved from ") and line.endswith(" during dictation")
    assert tray_phase(app) == "Perch: idle" and not caption_warns(app)  # an expected fallback, not a failure
    assert targets.text("main") == targets.text("other") == ""
    reader = X11Clipboard(xvfb_display)
    try:
        formats = reader.snapshot().formats
    finally:
        reader.close()
    assert formats["UTF8_STRING"] == text_formats("seven three five")["UTF8_STRING"]


def test_caption_says_the_text_went_to_the_clipboard_only(
    controller: tuple[Controller, HandSource], qtbot: QtBot, speak: Speak
) -> None:
    app, source = controller
    press(app, qtbot)
    source.push(np.concatenate([speak("seven three five"), silence(0.3)]))
    release(app)
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    assert caption_line(app) == "Left on the clipboard: typing is set to clipboard only"
    assert tray_phase(app) == "Perch: idle" and not caption_warns(app)
    assert QApplication.clipboard().text() == "seven three five"
    assert app.caption.latency_label.text().startswith("typed ") and not app.caption.latency_label.isHidden()


def test_caption_says_when_no_speech_was_heard(controller: tuple[Controller, HandSource], qtbot: QtBot) -> None:
    app, source = controller
    press(app, qtbot)
    source.push(silence(1.0))
    release(app)
    qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
    assert (caption_line(app), tray_phase(app)) == ("No speech heard", "Perch: idle")
    assert not caption_warns(app) and app.typed == []


def test_caption_says_cancelled_while_recording_and_while_transcribing(
    controller: tuple[Controller, HandSource], qtbot: QtBot, speak: Speak
) -> None:
    app, source = controller
    speech = np.concatenate([speak("seven three five"), silence(0.3)])
    press(app, qtbot)
    source.push(speech)
    assert app.command("cancel") == "ok"
    assert (caption_line(app), tray_phase(app)) == ("Cancelled", "Perch: idle")
    press(app, qtbot)
    source.push(speech)
    release(app)
    assert app.command("cancel") == "ok"
    assert (caption_line(app), tray_phase(app)) == ("Cancelled", "Perch: idle")
    qtbot.wait(1500)  # long enough for the words model to have finished the dropped utterance
    assert app.typed == [] and caption_line(app) == "Cancelled" and tray_phase(app) == "Perch: idle"


def test_caption_shows_a_microphone_lost_while_recording(
    controller: tuple[Controller, HandSource], qtbot: QtBot
) -> None:
    app, source = controller
    press(app, qtbot)
    source.fail(MicrophoneError("the microphone was unplugged"))
    qtbot.waitUntil(lambda: caption_line(app) == "the microphone was unplugged", timeout=5000)
    assert tray_phase(app) == "Perch: idle" and caption_warns(app)
    assert not app.state.capturing


def test_caption_shows_a_transcription_that_failed(qtbot: QtBot, speak: Speak) -> None:
    loading = threading.Event()

    def load() -> Recognizer:
        loading.wait(20)
        raise RuntimeError("the model file is damaged")

    source = HandSource()
    app = Controller(_plain_options(load, "damaged", source=source))
    app.start()
    try:
        assert app.state.phase is co.Phase.LOADING
        press(app, qtbot)  # recording may start before the model is ready
        source.push(np.concatenate([speak("seven three five"), silence(0.3)]))
        release(app)
        loading.set()
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.ERROR, timeout=20000)
        line = caption_line(app)
        assert line.startswith("transcription failed: the model is not loaded (the model file is damaged)"), line
        assert tray_phase(app) == "Perch: error" and caption_warns(app)
    finally:
        loading.set()
        app.close()


def test_replacements_apply_to_the_caption_the_typed_text_and_the_history(
    controller: tuple[Controller, HandSource], qtbot: QtBot, speak: Speak
) -> None:
    app, source = controller
    app.options.replacements = [Replacement("seven three", "73"), Replacement("go", "Best,\nAda")]
    press(app, qtbot)
    source.push(np.concatenate([speak("seven three five go"), silence(0.3)]))
    release(app)
    source.push(silence(0.2))
    qtbot.waitUntil(lambda: bool(app.typed), timeout=20000)
    assert app.typed == [(1, "73 five Best,\nAda")]
    assert QApplication.clipboard().text() == "73 five Best,\nAda"
    assert "73 five" in app.caption.text_label.text()
    history = app.options.history
    assert history is not None
    qtbot.waitUntil(lambda: bool(history.recent()), timeout=5000)
    assert history.recent()[0].text == "73 five Best,\nAda"


def test_the_vocabulary_setting_reaches_the_engine(qtbot: QtBot, words_model: Path, tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    launch = LaunchSettings(store)
    app = Controller(
        _plain_options(
            lambda: Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu")),
            "words-tdt",
            settings=launch,
        )
    )
    app.start()
    try:
        qtbot.waitUntil(lambda: app.state.phase is co.Phase.IDLE, timeout=20000)
        assert app.worker.recognizer is not None and app.worker.recognizer.boost is None
        vocabulary = VocabularySettings((VocabularyEntry("seven three"),), 5.0, (ReplacementEntry("go", "GO"),))
        store.save(dataclasses.replace(store.current, vocabulary=vocabulary))
        recognizer = app.worker.recognizer
        qtbot.waitUntil(lambda: recognizer.boost is not None, timeout=5000)
        assert recognizer.boost is not None and recognizer.boost.alpha == 5.0 and recognizer.boost.tree.phrases == 1
        assert app.options.replacements == [Replacement("go", "GO")]
        store.save(dataclasses.replace(store.current, vocabulary=VocabularySettings()))
        qtbot.waitUntil(lambda: recognizer.boost is None, timeout=5000)
    finally:
        app.close()
        launch.close()
