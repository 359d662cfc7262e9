"""Tests for reading and conditioning audio."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from stt.audio import TARGET_RATE, load_audio, read_audio, to_mono_16k, write_wav
from stt.errors import AudioError, AudioFileNotFoundError


def _sine(freq: float, seconds: float, rate: int, channels: int = 1) -> npt.NDArray[np.float32]:
    """A 0.5-amplitude sine, shape [frames] or [frames, channels]."""
    wave = 0.5 * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)
    if channels == 1:
        return wave.astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def _peak_hz(samples: npt.NDArray[np.float32]) -> float:
    """Frequency of the strongest spectral peak at TARGET_RATE."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / TARGET_RATE)[spectrum.argmax()])


def _check_mono_16k(samples: npt.NDArray[np.float32], frames: int, rate: int, freq: float) -> None:
    """Assert a loaded file is mono 16 kHz float32 of the right duration and pitch."""
    assert samples.ndim == 1
    assert samples.dtype == np.float32
    assert samples.flags.c_contiguous
    assert abs(samples.size - frames * TARGET_RATE / rate) <= 1
    assert abs(_peak_hz(samples) - freq) <= 2
    assert np.all(np.isfinite(samples))


@pytest.mark.parametrize(
    ("name", "fmt", "subtype", "rate", "channels", "freq"),
    [
        ("pcm16.wav", "WAV", "PCM_16", 44100, 2, 440.0),
        ("mono.flac", "FLAC", "PCM_16", 8000, 1, 1000.0),
        ("vorbis.ogg", "OGG", "VORBIS", 48000, 1, 660.0),
    ],
)
def test_formats_load_as_mono_16k(
    tmp_path: Path, name: str, fmt: str, subtype: str, rate: int, *, channels: int, freq: float
) -> None:
    path = tmp_path / name
    original = _sine(freq, 1.25, rate, channels)
    soundfile.write(path, original, rate, format=fmt, subtype=subtype)
    samples, file_rate = read_audio(path)
    assert file_rate == rate
    assert samples.shape == (original.shape[0], channels)
    assert samples.dtype == np.float32
    _check_mono_16k(load_audio(str(path)), original.shape[0], rate, freq)


def _make_mp3(path: Path, samples: npt.NDArray[np.float32], rate: int) -> None:
    """Write an MP3 with libsndfile, or else with sox or ffmpeg; skip when none can."""
    if "MP3" in soundfile.available_formats():
        soundfile.write(path, samples, rate, format="MP3", subtype="MPEG_LAYER_III")
        return
    wav = path.with_suffix(".wav")
    soundfile.write(wav, samples, rate)
    for tool, args in (("sox", [str(wav), str(path)]), ("ffmpeg", ["-loglevel", "error", "-i", str(wav), str(path)])):
        if shutil.which(tool) and subprocess.run([tool, *args], check=False).returncode == 0 and path.exists():
            return
    pytest.skip("this libsndfile cannot write MP3 and neither can sox or ffmpeg (apt-get install sox libsox-fmt-mp3)")


def test_mp3_loads_as_mono_16k(tmp_path: Path) -> None:
    path = tmp_path / "speech.mp3"
    _make_mp3(path, _sine(523.0, 1.25, 48000), 48000)
    samples = load_audio(path)
    # MP3 encoders may add a few priming frames; the duration must still be within 20 ms.
    assert abs(samples.size - 1.25 * TARGET_RATE) <= 320
    assert abs(_peak_hz(samples) - 523.0) <= 2


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioFileNotFoundError, match=r"nowhere\.wav") as info:
        load_audio(path)
    assert isinstance(info.value, FileNotFoundError)
    assert "not found" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="directory"):
        read_audio(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError, match=r"empty\.wav.* is empty"):
        read_audio(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match=r"noise\.wav") as info:
        read_audio(path)
    assert "Supported formats" in str(info.value)
    assert not isinstance(info.value, soundfile.SoundFileError)


def test_truncated_header(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    soundfile.write(good, _sine(440.0, 0.1, 16000), 16000)
    path = tmp_path / "truncated.wav"
    path.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioError, match=r"truncated\.wav.*Supported formats"):
        read_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(bad: float) -> None:
    samples = np.zeros((1000, 2), dtype=np.float32)
    samples[10, 1] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        to_mono_16k(samples, 16000)


def test_bad_shapes_and_rates() -> None:
    with pytest.raises(AudioError, match="3-D"):
        to_mono_16k(np.zeros((10, 2, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="sample rate"):
        to_mono_16k(np.zeros(10, dtype=np.float32), 0)
    with pytest.raises(AudioError, match="int16"):
        to_mono_16k(np.zeros(10, dtype=np.int16), 16000)


def test_downmix_and_passthrough() -> None:
    stereo = np.stack([np.ones(1600), -np.ones(1600) * 0.5], axis=1)
    mono = to_mono_16k(stereo, 16000)
    assert mono.dtype == np.float32
    np.testing.assert_allclose(mono, 0.25)
    assert to_mono_16k(np.zeros(0, dtype=np.float32), 44100).shape == (0,)


def test_write_wav_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "taps" / "nested" / "utterance.wav"
    samples = _sine(300.0, 0.5, TARGET_RATE)
    write_wav(path, samples)
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (TARGET_RATE, 1, "FLOAT")
    np.testing.assert_array_equal(load_audio(path), samples)
