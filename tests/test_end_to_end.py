"""The whole product: `perch` as its own process on an X server, a PulseAudio microphone, a target window."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.settings import Settings, SettingsStore
from tests.pulse import PulseMic
from tests.xserver import TargetWindows, need_tools

from .conftest import ROOT


class App:
    """`perch` running with private settings, data and logs."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "--debug"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(home / "stderr.txt").open("wb"),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `perch` command against this app."""
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def wait_status(self, wanted: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.home / "stderr.txt").read_text()
            status = self.run("status").stdout.strip()
            if status == wanted:
                return
            time.sleep(0.1)
        raise AssertionError(f"the app never became {wanted!r} (last {status!r})")

    def history(self) -> list[tuple[str, float | None, float | None]]:
        path = self.home / "data" / "perch" / "history.sqlite3"
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT text, stop_to_final_ms, stop_to_typed_ms FROM entries ORDER BY id").fetchall()
        return [(str(r[0]), r[1], r[2]) for r in rows]

    def log(self) -> str:
        return (self.home / "state" / "perch" / "log" / "perch.log").read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.run("quit")
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def app(xvfb_display: str, pulse_mic: PulseMic, words_model: Path, tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def start(**settings: object) -> App:
        home = tmp_path / "home"
        env = {
            **os.environ,
            "DISPLAY": xvfb_display,
            "QT_QPA_PLATFORM": "xcb",
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_RUNTIME_DIR": str(home / "runtime"),
        }
        env.pop("WAYLAND_DISPLAY", None)
        (home / "runtime").mkdir(parents=True, mode=0o700)
        base = Settings(model=str(words_model), quantization="fp32", device="cpu", microphone="pulse")
        SettingsStore(home / "config" / "perch" / "settings.json").save(replace(base, **settings))  # type: ignore[arg-type]
        started.append(App(home, env))
        return started[-1]

    yield start
    for instance in started:
        instance.close()


def test_push_to_talk_types_into_the_focused_window(
    app: Callable[..., App],
    pulse_mic: PulseMic,
    xvfb_display: str,
    tmp_path: Path,
    speech_file: Callable[[str], Path],
) -> None:
    need_tools("xdotool")
    perch = app()
    perch.wait_status("idle")
    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    try:
        window = targets.focus("main")
        focus_seen: set[str] = set()
        stop = threading.Event()

        def watch_focus() -> None:
            env = dict(os.environ, DISPLAY=xvfb_display)
            while not stop.is_set():
                done = subprocess.run(
                    ["xdotool", "getwindowfocus"], env=env, capture_output=True, text=True, timeout=10, check=False
                )
                focus_seen.add(done.stdout.strip())
                stop.wait(0.05)

        watcher = threading.Thread(target=watch_focus)
        watcher.start()
        clip = speech_file("hello world seven three five")
        keys = dict(os.environ, DISPLAY=xvfb_display)
        # The push-to-talk hotkey of the settings (Ctrl+Alt+Space), pressed and released for real.
        subprocess.run(["xdotool", "keydown", "ctrl+alt+space"], env=keys, check=True, timeout=10)
        perch.wait_status("recording")
        pulse_mic.play(clip)
        subprocess.run(["xdotool", "keyup", "space", "alt", "ctrl"], env=keys, check=True, timeout=10)
        typed = targets.wait_text("hello world seven three five", timeout=20)
        stop.set()
        watcher.join()
    finally:
        targets.close()
    assert typed == "hello world seven three five"
    deadline = time.monotonic() + 10  # the app writes its history on a thread of its own
    while not any(row[2] is not None for row in perch.history()) and time.monotonic() < deadline:
        time.sleep(0.05)
    ((text, stop_to_final, stop_to_typed),) = perch.history()
    assert text == typed  # exactly the final the app recorded
    assert stop_to_final is not None and stop_to_typed is not None and stop_to_typed >= stop_to_final
    assert focus_seen == {str(window)}  # the focus never left the target window
    assert "caption shows partial" in perch.log()
