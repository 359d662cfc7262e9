"""Native libraries (ALSA, JACK, PortAudio, the MP3 decoder, ONNX Runtime) never print to the terminal: stderr
holds Perch's own lines, and with --debug what the libraries said is in the debug log."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stt.nativelog import stderr_to_log
from tests.pulse import PulseMic

from .conftest import ROOT
from .test_cli import perch

LISTEN = (sys.executable, "-m", "app", "listen")


def own_lines_only(stderr: str) -> None:
    """Every line is Perch's: its `perch:` prefix, or a traceback under --debug."""
    for line in stderr.splitlines():
        assert line.startswith(("perch:", "Traceback", "  ", "The above", "During handling", "{")) or ":" in line[:60]
        assert "ALSA lib" not in line and "Cannot connect to server" not in line and "Note: " not in line


def bad_inputs(folder: Path, words_model: Path) -> dict[str, Path]:
    speech = np.sin(np.linspace(0, 2000, 32000)).astype(np.float32) * 0.3
    files: dict[str, Path] = {}
    files["text.mp3"] = folder / "text.mp3"
    files["text.mp3"].write_text("hello, this is text and not sound\n" * 3)
    files["garbage.mp3"] = folder / "garbage.mp3"
    files["garbage.mp3"].write_bytes(bytes(range(256)) * 40)
    for kind, fmt in (("wav", "WAV"), ("flac", "FLAC"), ("ogg", "OGG")):
        good = folder / f"good.{kind}"
        sf.write(good, speech, 16000, format=fmt)
        data = good.read_bytes()
        files[f"truncated.{kind}"] = folder / f"truncated.{kind}"
        files[f"truncated.{kind}"].write_bytes(data[: len(data) // 3])
        files[f"header.{kind}"] = folder / f"header.{kind}"
        files[f"header.{kind}"].write_bytes(data[:8] + b"\xff" * 64 + data[72:])
    return files


def test_bad_audio_gives_one_line_and_nothing_native(words_model: Path, tmp_path: Path) -> None:
    for name, path in bad_inputs(tmp_path, words_model).items():
        done = perch("transcribe", str(path), "--model", str(words_model), "--device", "cpu")
        lines = done.stderr.splitlines()
        if done.returncode == 0:  # a truncated file whose first part decodes is transcribed, quietly
            assert lines == [], (name, done.stderr)
            continue
        assert done.returncode == 1, name
        assert len(lines) == 1 and lines[0].startswith("perch: error: "), (name, done.stderr)
        own_lines_only(done.stderr)


def test_debug_keeps_what_the_decoder_said(words_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "text.mp3"
    path.write_text("hello, this is text and not sound\n" * 3)
    done = perch("transcribe", str(path), "--model", str(words_model), "--device", "cpu", "--debug")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    native = [line for line in done.stderr.splitlines() if "perch.native" in line]
    assert any("Illegal Audio-MPEG-Header" in line for line in native), done.stderr
    assert not any(line.startswith("Note: ") for line in done.stderr.splitlines())


def test_a_truncated_model_gives_one_line(words_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(words_model, folder)
    data = (folder / "encoder-model.onnx").read_bytes()
    (folder / "encoder-model.onnx").write_bytes(data[: len(data) // 2])
    clip = tmp_path / "x.wav"
    sf.write(clip, np.zeros(16000, dtype=np.float32), 16000)
    done = perch("transcribe", str(clip), "--model", str(folder), "--quantization", "fp32", "--device", "cpu")
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("perch: error: "), done.stderr


def test_no_sound_server_gives_perch_lines_only(words_model: Path, tmp_path: Path) -> None:
    env = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket", "JACK_NO_START_SERVER": ""}
    for args in (("devices",), ("listen", "--model", str(words_model), "--device", "cpu", "--for", "1")):
        done = perch(*args, env=env)
        assert done.returncode == 1, done.stderr
        own_lines_only(done.stderr)
        assert "microphone" in done.stderr.splitlines()[-1].lower()


def test_the_pulse_microphone_is_quiet(pulse_mic: PulseMic, words_model: Path, speech_file: object) -> None:
    done = perch("devices")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    clip = speech_file("seven three five")  # type: ignore[operator]
    process = subprocess.Popen(
        [*LISTEN, "--model", str(words_model), "--mic", "pulse", "--mode", "handsfree", "--for", "4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "listening" in line:
            break
    pulse_mic.play(clip)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "seven three five" in out
    own_lines_only(err)


def test_the_native_helper_logs_and_restores(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    import ctypes
    import logging

    libc = ctypes.CDLL(None)
    caplog.set_level(logging.DEBUG, logger="perch.native")
    with stderr_to_log("probe"), stderr_to_log("nested"):
        libc.write(2, b"\x1b[1;31mnative noise\x1b[m\n", 25)
    libc.write(2, b"after\n", 6)
    assert "probe: native noise" in caplog.text
    assert capfd.readouterr().err == "after\n"


AUDIO_LIBRARY_ERRORS = """
import ctypes, ctypes.util, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
from stt.nativelog import route_audio_library_messages
route_audio_library_messages()
alsa = ctypes.CDLL(ctypes.util.find_library("asound"))
pcm = ctypes.c_void_p()
assert alsa.snd_pcm_open(ctypes.byref(pcm), b"no-such-pcm", 1, 0) < 0
jack_name = ctypes.util.find_library("jack")
if jack_name:
    jack = ctypes.CDLL(jack_name)
    jack.jack_client_open.restype = ctypes.c_void_p
    status = ctypes.c_int()
    assert not jack.jack_client_open(b"perch-test", 1, ctypes.byref(status))  # 1: do not start a server
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ALSA is Linux's")
def test_alsa_and_jack_errors_go_to_the_log(tmp_path: Path) -> None:
    import ctypes.util

    if ctypes.util.find_library("asound") is None:
        pytest.skip("libasound is not installed (apt-get install libasound2)")
    done = subprocess.run(
        [sys.executable, "-c", AUDIO_LIBRARY_ERRORS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JACK_NO_START_SERVER": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "ALSA lib" not in done.stderr and "Cannot connect to server" not in done.stderr, done.stderr
    assert "perch.native ALSA pcm.c" in done.stdout and "Unknown PCM" in done.stdout
    if ctypes.util.find_library("jack"):
        assert "perch.native JACK: Cannot connect to server" in done.stdout


def test_the_app_without_a_sound_server_prints_only_its_own_lines(
    xvfb_display: str, words_model: Path, tmp_path: Path
) -> None:
    from tests.perch_process import App, private_home
    from tests.xserver import need_qt_xcb

    need_qt_xcb(xvfb_display)
    env = private_home(tmp_path / "home", xvfb_display, words_model)
    env["PULSE_SERVER"] = f"unix:{tmp_path}/no-such-socket"
    perch = App(tmp_path / "home", env)
    try:
        log = perch.home / "state" / "perch" / "log" / "perch.log"
        deadline = time.monotonic() + 30
        while not log.is_file() or "No microphone found" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the app never reported the missing microphone"
            assert perch.process.poll() is None, (perch.home / "stderr.txt").read_text(errors="replace")
            time.sleep(0.1)
    finally:
        perch.close()
    stderr = (perch.home / "stderr.txt").read_text(errors="replace")
    assert "ALSA lib" not in stderr and "Cannot connect to server" not in stderr and "jack server" not in stderr
    assert stderr.strip(), "the app logs to stderr under --debug"
