"""Files transcribed by the running app on an X server: `perch open` hands them over, the Transcribe window shows
them, `perch files` reports progress, memory stays bounded on an hour of audio, and a dictation made meanwhile is
typed as usual and comes first."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.pulse import PulseMic
from tests.xserver import TargetWindows, need_tools, push_to_talk

from .conftest import Speak
from .longaudio import spaced_phrases, write_long_file

PHRASES = ["seven three five", "hello world", "left right up down", "yes no stop go"]


Rows = list[dict[str, Any]]


def files(perch: App) -> Rows:
    done = perch.run("files")
    assert done.returncode == 0, done.stderr
    rows: Rows = json.loads(done.stdout)
    return rows


def wait_files(perch: App, ready: Callable[[Rows], bool], timeout: float = 60) -> Rows:
    deadline = time.monotonic() + timeout
    rows = files(perch)
    while not ready(rows):
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
        rows = files(perch)
    return rows


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def window_shown(display: str, title: str) -> bool:
    env = dict(os.environ, DISPLAY=display)
    done = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", title], env=env, capture_output=True, timeout=10, check=False
    )
    return done.returncode == 0 and bool(done.stdout.strip())


def test_an_hour_in_the_app_with_a_dictation_in_between(
    perch_app: Callable[..., App],
    pulse_mic: PulseMic,
    xvfb_display: str,
    tmp_path: Path,
    speak: Speak,
) -> None:
    need_tools("xdotool")
    talk = write_long_file(tmp_path / "talk.wav", 40, spaced_phrases(speak, PHRASES, every_s=8.0))
    hour = write_long_file(tmp_path / "hour.wav", 3600, spaced_phrases(speak, PHRASES * 150, every_s=6.0))
    perch = perch_app()
    perch.wait_status("idle")
    baseline = resident_bytes(perch.process.pid)
    opened = perch.run("open", str(talk), str(hour))
    assert opened.returncode == 0, opened.stderr
    deadline = time.monotonic() + 20
    while not window_shown(xvfb_display, "Perch — transcribe files"):
        assert time.monotonic() < deadline, "the Transcribe window never appeared"
        time.sleep(0.1)
    rows = wait_files(perch, lambda r: r[0]["history_id"] is not None)
    assert rows[0]["state"] == "done" and rows[0]["file"] == str(talk)
    peak = baseline
    while float(rows[1]["position_s"]) < 300:
        peak = max(peak, resident_bytes(perch.process.pid))
        rows = files(perch)
        time.sleep(0.05)
    assert rows[1]["state"] == "running" and rows[1]["duration_s"] == 3600
    at300 = resident_bytes(perch.process.pid)

    # A dictation now: typed as usual while the hour is being transcribed, which then carries on.
    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    try:
        targets.focus("main")
        clip = write_long_file(tmp_path / "stop-go.wav", 1.5, [(0.2, speak("stop go"))])
        push_to_talk(xvfb_display, perch, lambda: pulse_mic.play(clip))
        assert targets.wait_text("stop go", timeout=20) == "stop go"
    finally:
        targets.close()
    after = float(files(perch)[1]["position_s"])
    while float(rows[1]["position_s"]) < after + 120:
        peak = max(peak, resident_bytes(perch.process.pid))
        rows = files(perch)
        time.sleep(0.05)
    # Memory stays flat as the hour goes on (a dictation included); the whole hour as samples would be 230 MB.
    assert peak - at300 < 40e6, f"the app grew by {(peak - at300) / 1e6:.0f} MB while transcribing"
    assert peak - baseline < 230e6, f"the app grew by {(peak - baseline) / 1e6:.0f} MB"
    perch.run("quit")
    perch.process.wait(timeout=30)

    with sqlite3.connect(perch.home / "data" / "perch" / "history.sqlite3") as db:
        stored = db.execute("SELECT text, source_path FROM entries ORDER BY id").fetchall()
    assert (" ".join(PHRASES), str(talk)) in stored
    assert ("stop go", None) in stored
