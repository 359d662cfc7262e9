"""The whole product: `perch` as its own process on an X server, a PulseAudio microphone, a target window."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.pulse import PulseMic
from tests.xserver import TargetWindows, need_tools, push_to_talk


def test_push_to_talk_types_into_the_focused_window(
    perch_app: Callable[..., App],
    pulse_mic: PulseMic,
    xvfb_display: str,
    tmp_path: Path,
    speech_file: Callable[[str], Path],
) -> None:
    need_tools("xdotool")
    perch = perch_app()
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
        # The push-to-talk hotkey of the settings (Ctrl+Alt+Space), pressed and released for real.
        push_to_talk(xvfb_display, perch, lambda: pulse_mic.play(clip))
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
    # Nothing printed by the audio libraries reaches the terminal; with --debug it is in the log, marked as theirs.
    stderr = (perch.home / "stderr.txt").read_text(errors="replace")
    assert "ALSA lib" not in stderr and "Cannot connect to server" not in stderr


def test_the_vocabulary_makes_the_words_come_out_right(
    perch_app: Callable[..., App], pulse_mic: PulseMic, xvfb_display: str, tmp_path: Path
) -> None:
    """A voice the words model often mishears: "yes down" comes out right far more often with it in the
    vocabulary. The same clip is dictated three times into an app without a vocabulary and one with it."""
    need_tools("xdotool", "espeak-ng")
    from app.vocabulary_settings import VocabularyEntry, VocabularySettings

    said = "yes down four hello yes down four hello yes down four hello"
    clip = tmp_path / "klatt.wav"
    subprocess.run(["espeak-ng", "-v", "en+klatt2", "-s", "280", "-w", str(clip), said], check=True)
    found: dict[str, list[int]] = {}
    boosted = VocabularySettings((VocabularyEntry("yes down"),))
    for name, vocabulary in (("without", VocabularySettings()), ("with", boosted)):
        home = tmp_path / name
        perch = perch_app(home=home, vocabulary=vocabulary, smart_spacing=False)
        perch.wait_status("idle")
        (home / "target").mkdir(parents=True)
        targets = TargetWindows(xvfb_display, home / "target")
        found[name] = []
        try:
            targets.focus("main")
            for run in range(3):
                targets.command("clear")
                push_to_talk(xvfb_display, perch, lambda: pulse_mic.play(clip))
                deadline = time.monotonic() + 20
                while len(perch.history()) <= run and time.monotonic() < deadline:
                    time.sleep(0.05)
                text = perch.history()[run][0]
                assert targets.wait_text(text, timeout=20) == text  # what was typed is the final
                found[name].append(text.count("yes down"))
                perch.wait_status("idle")
        finally:
            targets.close()
            perch.close()
    print(f"'yes down' found of 3 per dictation: {found}")
    assert sum(found["with"]) > sum(found["without"]), found
    assert sum(found["with"]) >= 5, found
