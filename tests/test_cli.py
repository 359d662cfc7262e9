"""`perch transcribe` as a user runs it: real files, real processes, exit codes and output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from .conftest import ROOT, Speak


def perch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, speak: Speak) -> dict[str, Path]:
    """The same kind of speech in several containers, rates and channel counts."""
    folder = tmp_path_factory.mktemp("clips")
    out: dict[str, Path] = {}
    speech = speak("hello world")
    stereo_44k = soxr.resample(np.stack([speech, speech * 0.8], axis=1), 16000, 44100)
    out["wav"] = folder / "hello.wav"
    sf.write(out["wav"], speech, 16000, subtype="PCM_16")
    out["flac"] = folder / "seven.flac"
    sf.write(out["flac"], soxr.resample(speak("seven three five"), 16000, 8000), 8000)
    out["ogg"] = folder / "stereo.ogg"
    sf.write(out["ogg"], stereo_44k, 44100, format="OGG", subtype="VORBIS")
    if "MP3" in sf.available_formats():
        out["mp3"] = folder / "left.mp3"
        sf.write(out["mp3"], soxr.resample(speak("left right up down"), 16000, 48000), 48000, format="MP3")
    return out


EXPECTED = {"wav": "hello world", "flac": "seven three five", "ogg": "hello world", "mp3": "left right up down"}


def test_text_for_every_container(words_model: Path, clips: dict[str, Path]) -> None:
    kinds = sorted(clips)
    done = perch("transcribe", *(str(clips[k]) for k in kinds), "--model", str(words_model), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [EXPECTED[k] for k in kinds]
    assert done.stderr == ""


def test_json_lines(words_model: Path, clips: dict[str, Path]) -> None:
    done = perch(
        "transcribe", str(clips["flac"]), "--model", str(words_model), "--format", "json", "--quantization", "int8"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {
        "file",
        "text",
        "duration_s",
        "device",
        "quantization",
        "tokens",
        "token_starts_s",
        "token_durations_s",
        "words",
        "timings_ms",
    }
    assert record["file"] == str(clips["flac"])
    assert record["text"] == "seven three five"
    assert record["device"] == "cpu" and record["quantization"] == "int8"
    assert record["tokens"] == [2, 7, 10]
    assert len(record["token_starts_s"]) == len(record["token_durations_s"]) == 3
    assert all(round(s / 0.08, 6).is_integer() for s in record["token_starts_s"])
    assert [w["word"] for w in record["words"]] == ["seven", "three", "five"]
    assert all(w["start_s"] < w["end_s"] <= record["duration_s"] for w in record["words"])
    assert set(record["timings_ms"]) == {"features", "encoder", "decode", "total"}


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(words_model: Path, clips: dict[str, Path], fmt: str) -> None:
    done = perch("transcribe", str(clips["wav"]), "--model", str(words_model), "--format", fmt)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if fmt == "srt":
        assert lines[0] == "1" and " --> " in lines[1] and "," in lines[1] and lines[2] == "hello world"
    else:
        assert lines[0] == "WEBVTT" and " --> " in lines[2] and "." in lines[2] and lines[3] == "hello world"


def test_a_bad_file_does_not_stop_the_others(words_model: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    done = perch(
        "transcribe",
        str(tmp_path / "missing.wav"),
        str(empty),
        str(clips["wav"]),
        "--model",
        str(words_model),
        "--device",
        "cpu",
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["hello world"]
    errors = done.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("perch: error: ") for e in errors)
    assert "missing.wav" in errors[0] and "empty" in errors[1]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"RIFF\x10\x00\x00\x00WAVEfmt ", "Cannot decode"), (os.urandom(4000), "Cannot decode")],
)
def test_corrupt_audio(words_model: Path, tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    done = perch("transcribe", str(path), "--model", str(words_model), "--device", "cpu")
    assert done.returncode == 1 and match in done.stderr and "Traceback" not in done.stderr
    debug = perch("transcribe", str(path), "--model", str(words_model), "--debug")
    assert "Traceback" in debug.stderr


def test_silence_and_tiny_files_give_empty_text(words_model: Path, tmp_path: Path) -> None:
    silent, tiny, zero = tmp_path / "silent.wav", tmp_path / "tiny.wav", tmp_path / "zero.wav"
    sf.write(silent, np.zeros(48000, dtype=np.float32), 16000)
    sf.write(tiny, np.full(800, 0.2, dtype=np.float32), 16000)
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000)
    done = perch("transcribe", str(silent), str(tiny), str(zero), "--model", str(words_model), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["text"] for line in done.stdout.splitlines()] == ["", "", ""]


def test_nan_audio_is_a_clear_error(words_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    samples = np.zeros(16000, dtype=np.float32)
    samples[10] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    done = perch("transcribe", str(path), "--model", str(words_model))
    assert done.returncode == 1 and "NaN" in done.stderr


def test_missing_model_says_how_to_download(tmp_path: Path, clips: dict[str, Path]) -> None:
    done = perch("transcribe", str(clips["wav"]), env={"PERCH_MODELS_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1
    assert "perch models download parakeet-tdt-0.6b-v3" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_usage_errors_exit_2() -> None:
    assert perch("transcribe").returncode == 2
    assert perch("transcribe", "x.wav", "--device", "gpu").returncode == 2
    assert perch("transcribe", "x.wav", "--quantization", "fp16").returncode == 2


def test_auto_device_falls_back_to_cpu_and_says_why(words_model: Path, clips: dict[str, Path]) -> None:
    done = perch("transcribe", str(clips["wav"]), "--model", str(words_model), "--device", "cuda", "--format", "json")
    assert done.returncode == 0, done.stderr
    device = json.loads(done.stdout)["device"]
    if device == "cpu":
        notes = done.stderr.splitlines()
        assert notes and all(n.startswith("perch: ") and "running on the CPU: " in n for n in notes)
        assert len(notes) == 1


def test_help_lists_the_commands() -> None:
    done = perch("--help")
    assert done.returncode == 0
    for command in ("transcribe", "models", "bench"):
        assert command in done.stdout


def test_the_tray_app_without_a_display_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-m", "app"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "no display" in done.stderr and "perch listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_models_download_offline_says_how_with_the_auto_weights() -> None:
    """The README's first command, offline: one line that says how to get the model, exit 1; on a computer
    without a usable GPU `auto` means int8."""
    done = perch("models", "download", "--device", "cpu", env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--quantization int8" in lines[0] and "None" not in lines[0]


def test_a_long_file_shows_progress_on_a_terminal_only(words_model: Path, speak: Speak, tmp_path: Path) -> None:
    import pty

    from .longaudio import spaced_phrases, write_long_file

    path = write_long_file(tmp_path / "long.wav", 65, spaced_phrases(speak, ["hello world"] * 10, every_s=6.0))
    controller, terminal = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "app", "transcribe", str(path), "--model", str(words_model), "--device", "cpu"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        timeout=120,
        check=False,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert done.returncode == 0
    assert done.stdout.strip() == " ".join(["hello world"] * 10)
    text = shown.decode()
    assert "long.wav: 0:00 / 1:05" in text and "1:05 / 1:05 100%" in text and "real time" in text
    assert text.endswith("\r")  # the line is wiped at the end
    piped = perch("transcribe", str(path), "--model", str(words_model), "--device", "cpu")
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == done.stdout


def test_app_commands_without_a_running_app_say_so(tmp_path: Path) -> None:
    from app import ipc

    clip = tmp_path / "memo.wav"
    sf.write(clip, np.zeros(1600, dtype=np.float32), 16000)
    for args in (("open", str(clip)), ("files",), ("show", "history")):
        done = perch(*args)
        assert done.returncode == 1 and done.stderr == "perch: error: Perch is not running; start it with `perch`\n"
    done = perch("open", str(tmp_path / "missing.wav"))
    assert done.returncode == 1 and "no such file" in done.stderr
    assert "{" + ",".join(ipc.WINDOWS) + "}" in perch("show", "--help").stdout
