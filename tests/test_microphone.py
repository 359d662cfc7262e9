"""Microphone capture: real audio through a private PulseAudio daemon, and faults through a fake stream."""

from __future__ import annotations

import argparse
import ctypes.util
import importlib.abc
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from stt.audio import load_audio
from stt.errors import AudioError, MicrophoneError
from stt.microphone import InputDevice, Microphone, choose_input, list_input_devices
from stt.sources import AudioBlock, AudioSource
from tests.pulse import PulseMic

from .conftest import ROOT

needs_portaudio = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None, reason="PortAudio is not installed (apt-get install libportaudio2)"
)


class Recorder:
    """A sink and error handler that keep everything, in order."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.blocks: list[AudioBlock] = []
        self.errors: list[AudioError] = []
        self.samples_at_error: list[int] = []
        self.delay_s = delay_s
        self.changed = threading.Condition()

    def sink(self, block: AudioBlock) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.changed:
            self.blocks.append(block)
            self.changed.notify_all()

    def on_error(self, error: AudioError) -> None:
        with self.changed:
            self.errors.append(error)
            self.samples_at_error.append(self.total())
            self.changed.notify_all()

    def total(self) -> int:
        return sum(len(b.samples) for b in self.blocks)

    def audio(self) -> npt.NDArray[np.float32]:
        return np.concatenate([b.samples for b in self.blocks]) if self.blocks else np.zeros(0, np.float32)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def align(captured: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]) -> tuple[int, float, float]:
    """Where the reference sits in the capture: (offset, normalised correlation, level ratio)."""
    size = 1 << int(np.ceil(np.log2(len(captured) + len(reference))))
    spectrum = np.fft.rfft(captured, size) * np.conj(np.fft.rfft(reference, size))
    lags = np.fft.irfft(spectrum, size)[: len(captured) - len(reference) + 1]
    offset = int(np.argmax(lags))
    segment = captured[offset : offset + len(reference)]
    correlation = float(np.dot(segment, reference) / (np.linalg.norm(segment) * np.linalg.norm(reference)))
    return offset, correlation, float(np.linalg.norm(segment) / np.linalg.norm(reference))


def test_protocol() -> None:
    source: AudioSource = Microphone(stream_factory=FakeDevice())
    assert not source.running


# Real capture through PulseAudio.


def test_lists_the_pulse_input(pulse_mic: PulseMic) -> None:
    devices = list_input_devices()
    pulse = next(d for d in devices if d.name == "pulse")
    assert pulse.host_api == "ALSA" and pulse.channels >= 1 and pulse.default_rate >= 8000
    assert sum(d.is_default for d in devices) == 1


@pytest.mark.parametrize("rate", [None, 48000])
def test_captures_speech_played_into_the_sink(
    pulse_mic: PulseMic, speech_file: Callable[[str], Path], rate: int | None
) -> None:
    path = speech_file("seven three five")
    reference = load_audio(path)
    recorder = Recorder()
    mic = Microphone("pulse", sample_rate=rate)
    mic.start(recorder.sink, recorder.on_error)
    try:
        assert mic.running
        assert recorder.wait_for(lambda: len(recorder.blocks) > 0, 3.0), "no audio within 3 s of opening"
        pulse_mic.play(path)
        time.sleep(0.2)
    finally:
        mic.stop()
    assert not mic.running
    assert mic.device is not None and mic.device.name == "pulse"
    assert 0 < mic.last_open_seconds < 2
    captured = recorder.audio()
    assert len(captured) > len(reference)
    offset, correlation, ratio = align(captured, reference)
    assert correlation > 0.9, f"speech found at {offset / 16000:.2f} s with correlation {correlation:.3f} only"
    assert 0.5 < ratio < 2.0
    assert max(b.level_db for b in recorder.blocks) > -40
    assert min(b.level_db for b in recorder.blocks) < -60
    times = [b.captured for b in recorder.blocks]
    assert times == sorted(times)
    assert mic.stats.dropped_blocks == 0 and mic.stats.overflows == 0 and mic.stats.reopened == 0
    assert mic.stats.blocks == len(recorder.blocks)
    assert recorder.errors == []


def test_start_and_stop_repeatedly(pulse_mic: PulseMic) -> None:
    mic = Microphone()
    for _ in range(3):
        recorder = Recorder()
        mic.start(recorder.sink, recorder.on_error)
        assert recorder.wait_for(lambda: recorder.total() >= 1600, 3.0)  # noqa: B023
        mic.stop()
        assert recorder.errors == [] and mic.stats.blocks == len(recorder.blocks)
    assert mic.device is not None and mic.device.is_default


def test_unknown_device_names_the_inputs(pulse_mic: PulseMic) -> None:
    mic = Microphone("no such microphone")
    with pytest.raises(MicrophoneError, match="No input device matches 'no such microphone'") as caught:
        mic.start(Recorder().sink, Recorder().on_error)
    assert "'pulse'" in str(caught.value) and "perch devices" in str(caught.value)
    assert not mic.running


def test_real_device_loss_is_reported_and_reopened(pulse_mic: PulseMic) -> None:
    recorder = Recorder()
    mic = Microphone("pulse", reopen_interval_s=0.2)
    mic.start(recorder.sink, recorder.on_error)
    try:
        assert recorder.wait_for(lambda: recorder.total() >= 3200, 3.0)
        pulse_mic.remove_sink()
        assert recorder.wait_for(lambda: len(recorder.errors) == 1, 3.0), "the lost device was not reported"
        assert "stopped delivering audio" in str(recorder.errors[0])
        assert mic.running
        time.sleep(0.5)  # a few reopen attempts fail while the sink is gone
        assert mic.stats.reopened == 0
        before = recorder.total()
    finally:
        pulse_mic.add_sink()
    try:
        assert wait_until(lambda: mic.stats.reopened == 1, 5.0), "the device was not reopened"
        assert recorder.wait_for(lambda: recorder.total() >= before + 3200, 3.0), "no audio after reopening"
    finally:
        mic.stop()
    assert len(recorder.errors) == 1


def test_real_stall_is_reported_and_recovered(pulse_mic: PulseMic) -> None:
    recorder = Recorder()
    mic = Microphone("pulse", reopen_interval_s=0.2)
    mic.start(recorder.sink, recorder.on_error)
    try:
        assert recorder.wait_for(lambda: recorder.total() >= 1600, 3.0)
        pulse_mic.suspend(True)
        try:
            assert recorder.wait_for(lambda: len(recorder.errors) == 1, 3.0), "the stalled device was not reported"
            assert "no audio arrived" in str(recorder.errors[0])
            before = recorder.total()
        finally:
            pulse_mic.suspend(False)
        assert recorder.wait_for(lambda: recorder.total() >= before + 3200, 5.0), "no audio after resuming"
        assert mic.stats.reopened == 1
    finally:
        began = time.monotonic()
        mic.stop()
    assert time.monotonic() - began < 1.0
    assert len(recorder.errors) == 1


def test_stop_during_a_stall_does_not_hang(pulse_mic: PulseMic) -> None:
    recorder = Recorder()
    mic = Microphone("pulse")
    mic.start(recorder.sink, recorder.on_error)
    try:
        assert recorder.wait_for(lambda: recorder.total() >= 1600, 3.0)
        pulse_mic.suspend(True)
        time.sleep(0.3)  # stalled, not yet declared lost
        began = time.monotonic()
        mic.stop()
        assert time.monotonic() - began < 1.0
    finally:
        pulse_mic.suspend(False)
        mic.stop()
    assert recorder.errors == []


# Faults through a fake stream.


class Flags:
    def __init__(self, overflow: bool = False) -> None:
        self.input_overflow = overflow


class FakeStream:
    """Stands in for sounddevice.InputStream; the test calls `push` where PortAudio would call back."""

    def __init__(self, callback: Callable[..., None], samplerate: float = 16000, channels: int = 2) -> None:
        self.callback = callback
        self.samplerate = samplerate
        self.channels = channels
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True

    def push(self, block: npt.NDArray[np.float32], overflow: bool = False) -> None:
        self.callback(block, len(block), None, Flags(overflow))


class FakeDevice:
    """A stream factory whose opens can be made to fail."""

    def __init__(self, samplerate: float = 16000, channels: int = 2, failures: int = 0, dead: int = 0) -> None:
        self.samplerate = samplerate
        self.channels = channels
        self.failures = failures
        self.dead = dead  # reopened streams that open but stop at once
        self.streams: list[FakeStream] = []
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> FakeStream:
        self.calls.append(kwargs)
        if self.streams and self.failures > 0:
            self.failures -= 1
            raise OSError("device unavailable")
        stream = FakeStream(kwargs["callback"], self.samplerate, self.channels)
        if self.streams and self.dead > 0:
            self.dead -= 1
            stream.start = lambda: None  # type: ignore[method-assign]
        self.streams.append(stream)
        return stream


def stereo_blocks(count: int, frames: int, seed: int = 0) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, (frames, 2)).astype(np.float32) for _ in range(count)]


def mono(blocks: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    return np.concatenate([b.mean(axis=1) for b in blocks]).astype(np.float32)


@pytest.mark.parametrize("how", ["inactive", "stalled"])
def test_device_loss_delivers_queued_audio_then_reports_once_and_reopens(how: str) -> None:
    device = FakeDevice(failures=2)
    recorder = Recorder(delay_s=0.002)
    mic = Microphone(stream_factory=device, reopen_interval_s=0.05)
    mic.start(recorder.sink, recorder.on_error)
    try:
        before = stereo_blocks(50, 160, seed=1)
        for block in before:
            device.streams[0].push(block)
        if how == "inactive":
            device.streams[0].active = False  # PortAudio's thread ended
        # else: the stream claims to run but no callback comes any more
        assert recorder.wait_for(lambda: len(recorder.errors) == 1, 3.0)
        assert recorder.samples_at_error == [50 * 160], "queued audio must be delivered before the error"
        assert isinstance(recorder.errors[0], MicrophoneError)
        assert device.streams[0].closed
        assert wait_until(lambda: len(device.streams) == 2, 3.0)
        assert device.failures == 0 and mic.stats.reopened == 0  # reopened counts once audio flows again
        after = stereo_blocks(10, 160, seed=2)
        for block in after:
            device.streams[1].push(block)
        assert recorder.wait_for(lambda: recorder.total() == 60 * 160, 3.0)
        assert mic.stats.reopened == 1
    finally:
        mic.stop()
    assert len(recorder.errors) == 1
    np.testing.assert_array_equal(recorder.audio(), mono(before + after))
    assert mic.stats.reopened == 1 and mic.stats.dropped_blocks == 0


def test_a_reopened_stream_that_fails_again_is_not_reported_again() -> None:
    device = FakeDevice(dead=2)
    recorder = Recorder()
    mic = Microphone(stream_factory=device, reopen_interval_s=0.05)
    mic.start(recorder.sink, recorder.on_error)
    try:
        device.streams[0].push(stereo_blocks(1, 160)[0])
        device.streams[0].active = False
        assert wait_until(lambda: len(device.streams) == 4, 3.0)
        device.streams[3].push(stereo_blocks(1, 160)[0])
        assert recorder.wait_for(lambda: recorder.total() == 320, 3.0)
    finally:
        mic.stop()
    assert len(recorder.errors) == 1 and mic.stats.reopened == 1
    assert all(stream.closed for stream in device.streams)


def test_overflow_drops_blocks_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    device = FakeDevice()
    recorder = Recorder(delay_s=0.005)
    mic = Microphone(stream_factory=device, queue_blocks=4)
    caplog.set_level(logging.WARNING, logger="perch.audio")
    mic.start(recorder.sink, recorder.on_error)
    try:
        for index, block in enumerate(stereo_blocks(200, 160)):
            device.streams[0].push(block, overflow=index % 50 == 0)
    finally:
        mic.stop()
    stats = mic.stats
    assert stats.dropped_blocks > 100
    assert stats.overflows == 4
    assert len(recorder.blocks) + stats.dropped_blocks == 200
    assert recorder.errors == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "perch.audio" and r.levelno == logging.WARNING]
    assert warnings and "dropped block" in warnings[-1] and f"{stats.dropped_blocks} in all" in warnings[-1]


def test_resamples_to_16k_and_flushes_on_stop() -> None:
    device = FakeDevice(samplerate=48000, channels=1)
    recorder = Recorder()
    mic = Microphone(stream_factory=device)
    mic.start(recorder.sink, recorder.on_error)
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    try:
        for start in range(0, len(tone), 480):
            device.streams[0].push(tone[start : start + 480, None])
    finally:
        mic.stop()
    captured = recorder.audio()
    assert len(captured) == 16000
    expected = soxr.resample(tone, 48000, 16000, quality="HQ")
    np.testing.assert_allclose(captured, expected, atol=1e-3)
    assert all(b.samples.dtype == np.float32 for b in recorder.blocks)
    assert abs(max(b.level_db for b in recorder.blocks) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.5


def test_start_while_running_is_refused() -> None:
    mic = Microphone(stream_factory=FakeDevice())
    recorder = Recorder()
    mic.start(recorder.sink, recorder.on_error)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            mic.start(recorder.sink, recorder.on_error)
    finally:
        mic.stop()
    mic.stop()  # a second stop does nothing


def test_open_failure_is_a_microphone_error() -> None:
    def broken(**_: Any) -> FakeStream:
        raise OSError("Device unavailable")

    with pytest.raises(MicrophoneError, match="Device unavailable"):
        Microphone("usb", stream_factory=broken).start(Recorder().sink, Recorder().on_error)


# Choosing a device, and PortAudio missing.

DEVICES = [
    InputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", "ALSA", 2, 48000, False),
    InputDevice(3, "USB Mic", "ALSA", 1, 44100, False),
    InputDevice(4, "usb mic (hw:2,0)", "ALSA", 1, 44100, False),
    InputDevice(7, "default", "ALSA", 32, 44100, True),
]


def test_choose_input() -> None:
    assert choose_input(DEVICES, None).index == 7
    assert choose_input(DEVICES, 3).name == "USB Mic"
    assert choose_input(DEVICES, "usb mic").index == 3  # exact, case-insensitive, beats the substring match
    assert choose_input(DEVICES, "HW:2").index == 4
    assert choose_input(DEVICES, "alc257").index == 0
    with pytest.raises(MicrophoneError, match=r"number 5\. Available inputs: 'HDA"):
        choose_input(DEVICES, 5)
    with pytest.raises(MicrophoneError, match=r"No microphone found: connect one"):
        choose_input([], None)


@needs_portaudio
def test_no_input_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import stt.microphone

    monkeypatch.setattr(stt.microphone, "_query_inputs", lambda sd: [])
    with pytest.raises(MicrophoneError, match=r"No microphone found.*perch devices"):
        Microphone().start(Recorder().sink, Recorder().on_error)


class _NoPortAudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(MicrophoneError, match="libportaudio2"):
        list_input_devices()
    with pytest.raises(MicrophoneError, match="libportaudio2"):
        Microphone().start(Recorder().sink, Recorder().on_error)


# `perch devices`, through its own parser (the same one app.cli registers).


def devices_command(*argv: str) -> int:
    from app.commands import devices

    parser = argparse.ArgumentParser(prog="perch")
    devices.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["devices", *argv])
    return int(args.func(args))


def test_devices_command_lists_inputs(pulse_mic: PulseMic, capsys: pytest.CaptureFixture[str]) -> None:
    assert devices_command() == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["INDEX", "NAME", "HOST", "API", "RATE", "CHANNELS"]
    assert any(line.split()[1:3] == ["pulse", "ALSA"] for line in lines[1:-1] if not line.startswith("*"))
    assert sum(line.startswith("*") for line in lines[1:-1]) == 1
    assert devices_command("--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"index", "name", "host_api", "channels", "default_rate", "is_default"} == set(listed[0])
    assert "pulse" in [d["name"] for d in listed]


def test_devices_command_without_devices(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import app.commands.devices

    monkeypatch.setattr(app.commands.devices, "list_input_devices", list)
    assert devices_command() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("perch: error: no microphone found")


def test_devices_command_without_portaudio(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    assert devices_command("--json") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "libportaudio2" in err


@needs_portaudio
@pytest.mark.skipif(Path("/dev/snd").exists(), reason="this machine has a sound card, so it always has inputs")
def test_devices_command_with_no_sound_server(tmp_path: Path) -> None:
    code = "from tests.test_microphone import devices_command; raise SystemExit(devices_command())"
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/nothing-here", "PULSE_CLIENTCONFIG": str(tmp_path / "c")}
    (tmp_path / "c").write_text("autospawn = no\n")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("perch: error: no microphone found")
