"""Shared fixtures: isolated Perch directories, the words model, espeak-ng speech."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.pulse import pulse_mic_fixture  # noqa: F401  (the `pulse_mic` fixture: a private PulseAudio microphone)
from tests.xserver import (  # noqa: F401  (the `xvfb_display` fixture: a private Xvfb; `qt_xcb`: Qt windows on it)
    qt_xcb_fixture,
    xvfb_display_fixture,
)

# Qt widgets in tests draw offscreen unless a test starts its own X server.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
EVERYWHERE = {"PySide6.QtGui": "libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3", "soundfile": "libsndfile1"}
"""Modules that most test modules import (and pytest-qt at start-up), with the Debian packages they load."""
WORDS_MODEL = Path(os.environ.get("PERCH_WORDS_MODEL") or ROOT / ".." / "shared" / "models" / "words-tdt").resolve()
"""The 20-word recogniser the model tests use; PERCH_WORDS_MODEL puts it elsewhere (a folder without it: they skip)."""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Stop before anything else, naming the packages to install, when a library every run needs cannot load."""
    for module, packages in EVERYWHERE.items():
        try:
            importlib.import_module(module)
        except (ImportError, OSError) as exc:
            pytest.exit(f"{module} cannot load ({exc}): apt-get install {packages}")


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point every platformdirs location at a temporary home for the whole run."""
    base = tmp_path_factory.mktemp("xdg")
    keys = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    for key in saved:
        os.environ[key] = str(base / key.lower())
    (base / "xdg_runtime_dir").mkdir(mode=0o700)
    os.environ.pop("PERCH_MODELS_DIR", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def words_model() -> Path:
    """The 20-word recogniser in the published layout."""
    if not (WORDS_MODEL / "encoder-model.onnx").is_file():
        pytest.skip(f"the words model is not at {WORDS_MODEL} (set PERCH_WORDS_MODEL to where it is)")
    return WORDS_MODEL


Speak = Callable[..., npt.NDArray[np.float32]]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    """espeak-ng speech of a phrase as 16 kHz mono float32 (and optionally the WAV path)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")
    counter = iter(range(1_000_000))

    def _speak(text: str, voice: str = "en", speed: int = 160) -> npt.NDArray[np.float32]:
        from stt.audio import load_audio

        path = folder / f"clip{next(counter)}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
        return load_audio(path)

    return _speak


@pytest.fixture(scope="session")
def speech_file(tmp_path_factory: pytest.TempPathFactory, speak: Speak) -> Callable[[str], Path]:
    """espeak-ng speech written to a WAV file at its native rate."""
    folder = tmp_path_factory.mktemp("speechfiles")
    counter = iter(range(1_000_000))

    def _file(text: str, voice: str = "en") -> Path:
        path = folder / f"file{next(counter)}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return path

    return _file
