"""Benchmark of the desktop app as a person uses it: `python -m pytest tests/bench_app.py -s`.

`perch` runs as its own process on a private X server with a system tray (trayer) and a PulseAudio null sink as
the microphone. The benchmark measures, and prints:

- how long after the process starts the tray icon is embedded in the tray;
- the app's CPU use while idle with the microphone open (push-to-talk with pre-roll, the default);
- for PERCH_BENCH_RUNS (20) push-to-talk dictations of a 10-word utterance into a text window of another
  process (xdotool holds the hotkey while espeak-ng speech plays into the sink): stop→final and stop→typed,
  p50 and p95, from the app's own history;
- the longest time the app's GUI thread was blocked during all of this (its PERCH_GUI_PROBE timer probe).

It is not part of the test run (the file name does not start with `test_`); it needs what the end-to-end tests
need, plus trayer.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.pulse import PulseMic
from tests.tray_host import embedded_icon, tray_host_fixture, tray_panel, x_display  # noqa: F401
from tests.xserver import TargetWindows, need_tools, push_to_talk

UTTERANCE = "hello world seven three five left right up down nine"
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


@pytest.mark.usefixtures("tray_host")
def test_desktop_app_benchmark(
    perch_app: Callable[..., App],
    pulse_mic: PulseMic,
    xvfb_display: str,
    tmp_path: Path,
    speech_file: Callable[[str], Path],
) -> None:
    need_tools("xdotool")
    runs = int(os.environ.get("PERCH_BENCH_RUNS", "20"))
    idle_seconds = float(os.environ.get("PERCH_BENCH_IDLE_SECONDS", "20"))
    results: dict[str, float] = {}

    started = time.monotonic()
    perch = perch_app(extra_env={"PERCH_GUI_PROBE": "1"})
    display = x_display(xvfb_display)
    panel = tray_panel(display)
    while embedded_icon(display, panel, perch.process.pid) is None:
        assert perch.process.poll() is None, (perch.home / "stderr.txt").read_text()
        assert time.monotonic() - started < 20, "the tray icon never embedded"
        time.sleep(0.005)
    results["tray_embedded_ms"] = (time.monotonic() - started) * 1000
    display.close()
    perch.wait_status("idle")

    time.sleep(3)  # let start-up work settle
    cpu_before, wall_before = _cpu_seconds(perch.process.pid), time.monotonic()
    time.sleep(idle_seconds)
    cpu = _cpu_seconds(perch.process.pid) - cpu_before
    results["idle_cpu_percent"] = 100 * cpu / (time.monotonic() - wall_before)

    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    clip = speech_file(UTTERANCE)
    try:
        targets.focus("main")
        for run in range(runs):
            targets.command("clear")
            push_to_talk(xvfb_display, perch, lambda: pulse_mic.play(clip))
            # Later runs start with a space: smart spacing cannot see that the field was emptied in between.
            typed = targets.wait_text(UTTERANCE if run == 0 else " " + UTTERANCE, timeout=20)
            assert typed.strip() == UTTERANCE, f"run {run}: typed {typed!r}"
            perch.wait_status("idle")
    finally:
        targets.close()
    deadline = time.monotonic() + 10
    while sum(row[2] is not None for row in perch.history()) < runs and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = perch.history()
    finals = [float(row[1]) for row in rows if row[1] is not None]
    typed_ms = [float(row[2]) for row in rows if row[2] is not None]
    assert len(finals) == len(typed_ms) == runs, rows
    results["stop_to_final_p50_ms"], results["stop_to_final_p95_ms"] = _percentiles(finals)
    results["stop_to_typed_p50_ms"], results["stop_to_typed_p95_ms"] = _percentiles(typed_ms)
    results["typed_minus_final_p95_ms"] = results["stop_to_typed_p95_ms"] - results["stop_to_final_p95_ms"]

    perch.close()
    stalls = re.findall(r"GUI thread probe \(exit\): longest stall ([\d.]+) ms, (\d+) stalls", perch.log())
    assert stalls, "the GUI probe reported nothing"
    results["gui_longest_stall_ms"] = float(stalls[-1][0])
    results["gui_stalls_over_50ms"] = float(stalls[-1][1])

    print()
    print(f"desktop app benchmark ({runs} dictations of {len(UTTERANCE.split())} words, words model, CPU):")
    for name, value in results.items():
        print(f"  {name:28s} {value:8.1f}")
    out = os.environ.get("PERCH_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(results, indent=2) + "\n")
