"""`perch listen`, `perch devices` and `perch bench --live` as a user runs them, on a real (PulseAudio) microphone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.pulse import PulseMic

from .conftest import ROOT
from .test_cli import perch


def start_listen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "listen", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def wait_for_line(process: subprocess.Popen[str], needle: str) -> list[str]:
    """Read stderr until a line containing `needle` (the process prints it when ready)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never printed; stderr: {''.join(seen)}")


def test_hands_free_json_events(pulse_mic: PulseMic, words_model: Path, speech_file: Callable[[str], Path]) -> None:
    clip = speech_file("hello world seven")
    process = start_listen(
        "--model", str(words_model), "--mic", "pulse", "--mode", "handsfree", "--json", "--stats", "--for", "5"
    )
    wait_for_line(process, "listening hands-free")
    pulse_mic.play(clip)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    finals = [e for e in events if e["event"] == "final"]
    assert [f["text"] for f in finals] == ["hello world seven"]
    assert finals[0]["timings"]["stop_to_final_ms"] >= 0
    assert Path(finals[0]["audio"]).is_file()  # the utterance's recording
    assert {"listening", "final", "idle"} <= {e["event"] for e in events}
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["utterances"] == 1 and stats["stop_to_final_ms_p95"] >= stats["stop_to_final_ms_p50"]


def test_enter_starts_and_stops(pulse_mic: PulseMic, words_model: Path, speech_file: Callable[[str], Path]) -> None:
    clip = speech_file("left right up down")
    process = start_listen("--model", str(words_model), "--mic", "pulse", "--mode", "ptt", "--partials")
    assert process.stdin is not None
    wait_for_line(process, "press Enter")
    process.stdin.write("\n")
    process.stdin.flush()
    wait_for_line(process, "recording")
    pulse_mic.play(clip)
    # The second Enter stops; the end of input that follows quits once the final is printed.
    out, err = process.communicate(input="\n", timeout=60)
    assert process.returncode == 0, err
    assert out.splitlines()[-1] == "left right up down"


def test_unknown_microphone_is_one_clear_error(pulse_mic: PulseMic, words_model: Path) -> None:
    result = perch("listen", "--model", str(words_model), "--mic", "no such microphone")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "no such microphone" in lines[-1] and "pulse" in lines[-1]
    assert "Traceback" not in result.stderr


def test_listen_without_a_model_says_how_to_get_one() -> None:
    result = perch("listen", "--model", "parakeet-tdt-0.6b-v2", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert "perch models download" in result.stderr


def test_devices_lists_the_pulse_input(pulse_mic: PulseMic) -> None:
    result = perch("devices", "--json")
    assert result.returncode == 0, result.stderr
    names = [d["name"] for d in json.loads(result.stdout)]
    assert "pulse" in names


def test_bench_live_reports_latency(words_model: Path, speech_file: Callable[[str], Path]) -> None:
    clips = [str(speech_file(text)) for text in ("seven three five", "yes no stop go")]
    result = perch("bench", "--live", "--model", str(words_model), *clips, "--speed", "0", "--idle-seconds", "1")
    assert result.returncode == 0, result.stderr
    assert "utterances: 2" in result.stdout
    assert "| stop → final |" in result.stdout and "CPU while listening" in result.stdout
    assert perch("bench", "--live", "--model", str(words_model)).returncode == 2
