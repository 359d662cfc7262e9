"""The sound cues: the WAV files themselves, a player that never blocks, and real playback through PulseAudio."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from app.sounds import CUES, FADE_S, Cue, SoundCues, load_cues, sounds_dir
from stt.microphone import _PortAudio
from tests.pulse import SOURCE, PulseMic

from .conftest import ROOT

Samples = npt.NDArray[np.float32]


# The files.


@pytest.mark.parametrize("name", CUES)
def test_cue_file_is_short_quiet_and_clean(name: Cue) -> None:
    path = sounds_dir() / f"{name}.wav"
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) in {(48000, 1, "PCM_16"), (44100, 1, "PCM_16")}
    samples, rate = soundfile.read(str(path), dtype="float64")
    assert 0.06 <= len(samples) / rate < 0.2
    peak_db = 20 * np.log10(np.abs(samples).max())
    assert -15 < peak_db < -6
    assert abs(samples.mean()) < 1e-3  # no DC offset
    assert abs(samples[0]) < 1e-3 and abs(samples[-1]) < 1e-3  # starts and ends at rest
    assert np.abs(np.diff(samples)).max() < 0.1  # no step anywhere inside either


def test_the_generator_writes_the_shipped_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "make_sounds.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in CUES:
        made, _ = soundfile.read(str(tmp_path / f"{name}.wav"), dtype="int16")
        shipped, _ = soundfile.read(str(sounds_dir() / f"{name}.wav"), dtype="int16")
        assert made.shape == shipped.shape
        assert np.abs(made.astype(int) - shipped).max() <= 1  # rounding may differ between numpy builds


# The player, on stand-in devices.


class PacedStream:
    """An output device in real time: pulls 5 ms blocks from the callback on a thread and keeps them."""

    def __init__(self, *, samplerate: int, channels: int, callback: Any, open_delay: float = 0.0, **_: Any) -> None:
        time.sleep(open_delay)
        self.rate = samplerate
        self.channels = channels
        self.callback = callback
        self.blocks: list[Samples] = []
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abort(self) -> None:
        self.closed.set()
        if self._thread.is_alive():
            self._thread.join()

    def close(self) -> None:
        self.closed.set()

    def written(self) -> Samples:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)

    def _pump(self) -> None:
        frames = self.rate // 200
        due = time.monotonic()
        while not self.closed.is_set():
            out = np.full((frames, self.channels), np.nan, np.float32)
            self.callback(out, frames, None, None)
            self.blocks.append(out[:, 0].copy())
            due += frames / self.rate
            self.closed.wait(max(0.0, due - time.monotonic()))


class Devices:
    """A stream factory that keeps every stream it opened."""

    def __init__(self, open_delay: float = 0.0) -> None:
        self.open_delay = open_delay
        self.streams: list[PacedStream] = []

    def __call__(self, **kwargs: Any) -> PacedStream:
        stream = PacedStream(open_delay=self.open_delay, **kwargs)
        self.streams.append(stream)
        return stream


@pytest.fixture
def cues_on() -> Iterator[list[SoundCues]]:
    """Closes every SoundCues a test makes."""
    made: list[SoundCues] = []
    yield made
    for cues in made:
        cues.close()


def wait_until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_play_returns_at_once_while_the_device_is_slow_to_open(cues_on: list[SoundCues]) -> None:
    devices = Devices(open_delay=0.5)
    cues = SoundCues(stream_factory=devices)
    cues_on.append(cues)
    spent = []
    for name in ("start", "stop", "error", "start"):
        began = time.perf_counter()
        cues.play(name)
        spent.append(time.perf_counter() - began)
        time.sleep(0.02)
    assert max(spent) < 0.02  # the 0.5 s the device takes to open is not waited for
    assert cues.wait_idle(3)
    # Only one stream was opened, and the last cue asked for is the one written.
    assert len(devices.streams) == 1
    start = load_cues(sounds_dir())[0]["start"]
    written = devices.streams[0].written()
    assert np.count_nonzero(written) == np.count_nonzero(start)
    began = time.perf_counter()
    cues.close()
    assert time.perf_counter() - began < 0.5


def test_a_new_cue_cuts_the_one_playing(cues_on: list[SoundCues]) -> None:
    devices = Devices()
    cues = SoundCues(stream_factory=devices, linger_s=5)
    cues_on.append(cues)
    cues.play("start")
    wait_until(lambda: cues.latency_s is not None)
    time.sleep(0.03)
    cues.play("error")
    assert cues.wait_idle(3)
    out = devices.streams[0].written()
    assert not np.isnan(out).any()  # every block was filled
    samples, rate = load_cues(sounds_dir())
    start, error = samples["start"], samples["error"]
    lead = int(np.flatnonzero(start)[0])
    at = int(np.flatnonzero(out)[0]) - lead  # where the start cue begins in the output
    cut = int(np.flatnonzero(np.abs(out[at : at + len(start)] - start) > 1e-7)[0])
    assert rate * 0.02 < cut < len(start) - rate * 0.02  # cut off part way through
    fade = round(FADE_S * rate)
    ramp = np.linspace(1, 0, fade + 1, dtype=np.float32)[1:]
    mixed = out[at + cut : at + cut + fade]
    np.testing.assert_allclose(mixed, error[:fade] + start[cut : cut + fade] * ramp, atol=1e-6)
    np.testing.assert_array_equal(out[at + cut + fade : at + cut + len(error)], error[fade:])
    assert not out[at + cut + len(error) :].any()  # silence after it


def test_the_stream_is_closed_after_the_cue(cues_on: list[SoundCues]) -> None:
    devices = Devices()
    counted = _PortAudio.open_streams
    cues = SoundCues(stream_factory=devices, linger_s=0.1)
    cues_on.append(cues)
    cues.play("stop")
    wait_until(lambda: devices.streams and _PortAudio.open_streams == counted + 1)
    assert devices.streams[0].closed.wait(2)  # cue (128 ms) + linger (100 ms), then closed
    wait_until(lambda: _PortAudio.open_streams == counted)
    cues.play("start")  # a later cue opens a fresh stream
    wait_until(lambda: len(devices.streams) == 2)


def test_a_missing_device_is_logged_once_and_silent(cues_on: list[SoundCues], caplog: pytest.LogCaptureFixture) -> None:
    cues = SoundCues(device="no such loudspeaker")
    cues_on.append(cues)
    with caplog.at_level(logging.DEBUG, logger="perch.sounds"):
        for _ in range(3):
            cues.play("error")
            assert cues.wait_idle(5)
    assert cues.problem is not None and "sound cues are off" in cues.problem
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings


def test_missing_files_make_no_sound_and_no_error(cues_on: list[SoundCues], tmp_path: Path) -> None:
    devices = Devices()
    cues = SoundCues(folder=tmp_path, stream_factory=devices)
    cues_on.append(cues)
    cues.play("start")
    assert cues.wait_idle(3)
    assert not devices.streams


# Real playback: the private PulseAudio daemon's null sink is the default output; its monitor is recorded.


class Monitor:
    """Records the null sink's monitor as 48 kHz mono float32 with parec."""

    RATE = 48000

    def __init__(self, pulse: PulseMic) -> None:
        command = ["parec", "--raw", "--format=float32le", f"--rate={self.RATE}", "--channels=1", "--latency-msec=10"]
        self._process = subprocess.Popen(
            [*command, f"--device={SOURCE}"],
            env=pulse.env,
            stdout=subprocess.PIPE,
        )
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_until(lambda: len(self._data) > 0, timeout=5)

    def _read(self) -> None:
        assert self._process.stdout is not None
        while chunk := self._process.stdout.read1(4096):  # type: ignore[attr-defined]
            with self._lock:
                self._data += chunk

    def stop(self) -> Samples:
        self._process.terminate()
        self._process.wait(timeout=5)
        self._thread.join(timeout=5)
        with self._lock:
            usable = len(self._data) // 4 * 4
            return np.frombuffer(bytes(self._data[:usable]), dtype="<f4").astype(np.float32)


def heard(pulse: PulseMic, cues: SoundCues, name: Cue) -> Samples:
    monitor = Monitor(pulse)
    time.sleep(0.05)
    cues.play(name)
    assert cues.wait_idle(3)
    time.sleep(0.3)  # the sink's latency
    return monitor.stop()


def match(recording: Samples, cue: Samples) -> float:
    """Highest correlation between the cue and any stretch of the recording."""
    size = len(recording) + len(cue)
    spectrum = np.fft.rfft(recording, size) * np.conj(np.fft.rfft(cue, size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: len(recording) - len(cue) + 1]))
    return float(np.corrcoef(recording[lag : lag + len(cue)], cue)[0, 1])


def test_cues_are_heard_on_the_default_output(pulse_mic: PulseMic, cues_on: list[SoundCues]) -> None:
    cues = SoundCues(linger_s=5)
    cues_on.append(cues)
    samples, rate = load_cues(sounds_dir())
    assert rate == Monitor.RATE
    # A new stream makes PulseAudio rewind the sink, and the monitor can miss the first milliseconds of what it
    # plays (paplay's too); a cue on the stream that is still open arrives sample for sample.
    first = heard(pulse_mic, cues, "start")
    assert cues.problem is None
    assert match(first, samples["start"]) > 0.85
    assert cues.latency_s is not None and cues.latency_s < 0.1
    second = heard(pulse_mic, cues, "error")
    assert match(second, samples["error"]) > 0.99
    assert -12.5 < 20 * np.log10(np.abs(second).max()) < -11.5  # the cue's own level: nothing lost or added
    assert cues.latency_s is not None and cues.latency_s < 0.1


def test_disabled_cues_are_not_heard(pulse_mic: PulseMic, cues_on: list[SoundCues]) -> None:
    cues = SoundCues(enabled=False, linger_s=0.3)
    cues_on.append(cues)
    assert np.abs(heard(pulse_mic, cues, "start")).max() < 1e-4
    cues.enabled = True
    samples, _ = load_cues(sounds_dir())
    assert match(heard(pulse_mic, cues, "stop"), samples["stop"]) > 0.85
