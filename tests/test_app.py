"""The tray app's controller offscreen: commands over the local socket, dictation through to the text."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QMenu
from pytestqt.qtbot import QtBot

from app import coordinator as co
from app import ipc
from app.gui.controller import AppOptions, Controller
from app.history import History
from stt.dictation import DictationOptions
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.worker import WorkerOptions

from .conftest import Speak
from .live import HandSource, silence


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


def test_menu_offers_start_mode_and_quit(controller: tuple[Controller, HandSource]) -> None:
    app, _ = controller
    app.tray.menu.aboutToShow.emit()
    texts = [a.text() for a in app.tray.menu.actions()]
    assert texts[0] == "Start dictation" and "Mode" in texts and texts[-1] == "Quit"
    mode_menu = next(a.menu() for a in app.tray.menu.actions() if a.text() == "Mode")
    assert isinstance(mode_menu, QMenu)
    hands_free = next(a for a in mode_menu.actions() if a.text() == "Hands-free")
    hands_free.trigger()
    assert app.dictation.options.mode == "handsfree"


def test_model_failure_shows_the_error(qtbot: QtBot) -> None:
    def broken() -> Recognizer:
        raise RuntimeError("no model here: run `perch models download`")

    options = AppOptions(
        load=broken,
        model_label="missing",
        source=HandSource,
        dictation=DictationOptions(),
        worker=WorkerOptions(partials="off"),
        ptt_hotkey="",
        toggle_hotkey="",
    )
    app = Controller(options)
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
