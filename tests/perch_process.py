"""`perch` as its own process on the test X server, with private settings, data, logs and a microphone.

Test modules get the `perch_app` fixture with `from tests.perch_process import perch_app_fixture  # noqa: F401`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.settings import Settings, SettingsStore
from tests.pulse import PulseMic

ROOT = Path(__file__).resolve().parents[1]


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


def private_home(home: Path, display: str, words_model: Path, **settings: object) -> dict[str, str]:
    """The environment of a `perch` with all its folders under `home`, on `display`, and settings written there:
    the words model on the CPU, the test microphone, no sound cues, and `settings` on top."""
    env = {
        **os.environ,
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
    }
    env.pop("WAYLAND_DISPLAY", None)
    (home / "runtime").mkdir(parents=True, mode=0o700)
    base = Settings(model=str(words_model), quantization="fp32", device="cpu", microphone="pulse", sound_cues=False)
    SettingsStore(home / "config" / "perch" / "settings.json").save(replace(base, **settings))  # type: ignore[arg-type]
    return env


@pytest.fixture(name="perch_app")
def perch_app_fixture(
    qt_xcb: str, pulse_mic: PulseMic, words_model: Path, tmp_path: Path
) -> Iterator[Callable[..., App]]:
    """Starts `perch` with the words model, the private microphone and the given settings on top."""
    started: list[App] = []

    def start(extra_env: dict[str, str] | None = None, home: Path | None = None, **settings: object) -> App:
        home = home or tmp_path / "home"
        env = private_home(home, qt_xcb, words_model, **settings)
        started.append(App(home, {**env, **(extra_env or {})}))
        return started[-1]

    yield start
    for instance in started:
        instance.close()
