"""The README's pictures of the app's windows, from a real run: `docs/make-screenshots.sh` runs this with
PERCH_SCREENSHOTS=1.

`perch` runs as its own process on a private X server with a tray (trayer) and the PulseAudio test microphone,
with the 20-word test model on the CPU. It takes real push-to-talk dictations typed into a window of another
process, photographs the caption while one is spoken, then opens History and transcribes a file, and photographs
those windows. Every entry shown was made here by that run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.pulse import PulseMic
from tests.tray_host import mapped_windows_of, screenshot, tray_host_fixture, x_display  # noqa: F401
from tests.xserver import TargetWindows, need_tools, push_to_talk

from .conftest import Speak
from .longaudio import spaced_phrases, write_long_file

DICTATIONS = ["seven three five", "hello world", "yes no stop go", "left right up down"]
SPOKEN_WHILE_PHOTOGRAPHED = "one two three four five six seven eight nine zero"


def app_window(display: Any, pid: int, title: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        for window in mapped_windows_of(display, pid):
            if window_title(display, window) == title:
                return window
        assert time.monotonic() < deadline, f"no window {title!r}"
        time.sleep(0.1)


def window_title(display: Any, window: Any) -> str:
    """The window's UTF-8 title (_NET_WM_NAME)."""
    prop = window.get_full_property(display.intern_atom("_NET_WM_NAME"), display.intern_atom("UTF8_STRING"))
    value = b"" if prop is None else prop.value
    return value.decode() if isinstance(value, bytes) else str(value)


def photograph(display: Any, window: Any, name: str) -> None:
    geometry = window.get_geometry()
    at = window.translate_coords(display.screen().root, 0, 0)
    screenshot(display, name, (-at.x, -at.y, geometry.width, geometry.height))


def test_screenshots_of_a_real_run(
    tray_host: subprocess.Popen[bytes],
    *,
    perch_app: Callable[..., App],
    pulse_mic: PulseMic,
    xvfb_display: str,
    tmp_path: Path,
    speak: Speak,
) -> None:
    need_tools("xdotool")
    perch = perch_app()
    perch.wait_status("idle")
    display = x_display(xvfb_display)
    keys = dict(os.environ, DISPLAY=xvfb_display)
    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    typed = ""
    try:
        targets.focus("main")
        for index, text in enumerate([*DICTATIONS, SPOKEN_WHILE_PHOTOGRAPHED]):
            clip = write_long_file(tmp_path / f"clip{index}.wav", len(speak(text)) / 16000 + 0.6, [(0.3, speak(text))])
            last = text == SPOKEN_WHILE_PHOTOGRAPHED

            def photograph_caption(last: bool = last) -> None:
                if last:
                    time.sleep(2.6)  # most of the words are in the caption by now
                    photograph(display, app_window(display, perch.process.pid, "Perch caption"), "caption.png")

            def speak_it(clip: Path = clip, during: Callable[[], None] = photograph_caption) -> None:
                player = pulse_mic.play_async(clip)
                during()
                player.wait(timeout=60)

            push_to_talk(xvfb_display, perch, speak_it)
            typed = (typed + " " + text).strip()
            assert targets.wait_text(typed, timeout=20) == typed
            perch.wait_status("idle")
    finally:
        targets.close()

    talk = write_long_file(tmp_path / "meeting.wav", 50, spaced_phrases(speak, DICTATIONS * 2, every_s=6.0))
    assert perch.run("open", str(talk)).returncode == 0
    window = app_window(display, perch.process.pid, "Perch — transcribe files")
    deadline = time.monotonic() + 60
    while '"history_id": null' in perch.run("files").stdout or '"state": "done"' not in perch.run("files").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    photograph(display, window, "transcribe.png")

    assert perch.run("show", "history").returncode == 0
    window = app_window(display, perch.process.pid, "Perch history")
    time.sleep(1.0)
    at = window.translate_coords(display.screen().root, 0, 0)
    subprocess.run(["xdotool", "mousemove", str(-at.x + 300), str(-at.y + 70), "click", "1"], env=keys, check=True)
    time.sleep(0.5)
    photograph(display, window, "history.png")
    display.close()
