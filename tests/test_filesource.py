"""FileSource: exact samples, deadline pacing, simulated device loss."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from stt.audio import load_audio
from stt.errors import AudioError, AudioFileNotFoundError, MicrophoneError
from stt.filesource import FileSource
from stt.sources import AudioBlock, AudioSource


class Collector:
    def __init__(self) -> None:
        self.blocks: list[AudioBlock] = []
        self.errors: list[AudioError] = []
        self.threads: set[int] = set()

    def sink(self, block: AudioBlock) -> None:
        self.threads.add(threading.get_ident())
        self.blocks.append(block)

    def on_error(self, error: AudioError) -> None:
        self.errors.append(error)

    def audio(self) -> npt.NDArray[np.float32]:
        return np.concatenate([b.samples for b in self.blocks]) if self.blocks else np.zeros(0, np.float32)


def noise(seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, round(seconds * 16000)).astype(np.float32)


def run(source: FileSource, timeout: float = 10.0) -> Collector:
    collector = Collector()
    source.start(collector.sink, collector.on_error)
    assert source.finished.wait(timeout)
    source.stop()
    return collector


def test_files_and_arrays_with_gaps_are_delivered_exactly(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(22050) / 22050)
    sf.write(wav, np.stack([tone, tone * 0.5], axis=1), 22050)  # stereo 22.05 kHz, 1 s
    array = noise(0.25)
    source = FileSource([wav, array], speed=0, gap_s=0.1)
    collector = run(source)
    gap = np.zeros(1600, np.float32)
    expected = np.concatenate([gap, load_audio(wav), gap, array, gap])
    np.testing.assert_array_equal(collector.audio(), expected)
    assert all(len(b.samples) == 160 for b in collector.blocks[:-1]) and 0 < len(collector.blocks[-1].samples) <= 160
    assert source.stats.blocks == len(collector.blocks)
    assert collector.errors == [] and not source.running
    assert collector.threads and threading.get_ident() not in collector.threads
    assert collector.blocks[0].level_db == -120.0
    assert max(b.level_db for b in collector.blocks) > -20
    times = [b.captured for b in collector.blocks]
    assert times == sorted(times)


def test_real_time_pacing_does_not_drift() -> None:
    source = FileSource(noise(1.0), block_ms=10)
    collector = Collector()
    began = time.monotonic()
    source.start(collector.sink, collector.on_error)
    assert source.running
    assert source.finished.wait(5)
    elapsed = time.monotonic() - began
    source.stop()
    assert 0.97 < elapsed < 1.3, elapsed
    assert len(collector.blocks) == 100
    # Each block arrives when its last sample would have been captured, not earlier.
    lateness = [b.captured - began - (i + 1) * 0.01 for i, b in enumerate(collector.blocks)]
    assert min(lateness) >= -0.002 and np.median(lateness) < 0.01


def test_speed_up_and_as_fast_as_possible() -> None:
    audio = noise(2.0)
    began = time.monotonic()
    run(FileSource(audio, speed=4.0))
    assert 0.45 < time.monotonic() - began < 1.0
    began = time.monotonic()
    collector = run(FileSource(audio, speed=0))
    assert time.monotonic() - began < 0.3
    np.testing.assert_array_equal(collector.audio(), audio)


def test_fail_after_simulates_device_loss() -> None:
    audio = noise(1.0)
    source = FileSource(audio, speed=0, fail_after_s=0.255)
    collector = run(source)
    np.testing.assert_array_equal(collector.audio(), audio[:4080])
    assert len(collector.errors) == 1
    assert isinstance(collector.errors[0], MicrophoneError) and "device lost" in str(collector.errors[0])


def test_loop_repeats_until_stopped() -> None:
    audio = noise(0.05)
    source = FileSource(audio, speed=0, loop=True, fail_after_s=0.5)
    collector = run(source)
    np.testing.assert_array_equal(collector.audio(), np.tile(audio, 10))
    looping = FileSource(audio, speed=1.0, loop=True)
    collector = Collector()
    looping.start(collector.sink, collector.on_error)
    time.sleep(0.2)
    assert looping.running and not looping.finished.is_set()
    looping.stop()
    assert looping.finished.is_set() and not looping.running
    assert 10 <= len(collector.blocks) <= 25


def test_stop_interrupts_a_slow_replay_and_restart_begins_again() -> None:
    source: AudioSource = FileSource(noise(10.0, seed=3))
    collector = Collector()
    source.start(collector.sink, collector.on_error)
    time.sleep(0.1)
    began = time.monotonic()
    source.stop()
    assert time.monotonic() - began < 0.1
    assert not source.running
    first = collector.blocks[0].samples.copy()
    collector.blocks.clear()
    source.start(collector.sink, collector.on_error)
    time.sleep(0.05)
    source.stop()
    np.testing.assert_array_equal(collector.blocks[0].samples, first)


def test_bad_inputs() -> None:
    with pytest.raises(AudioFileNotFoundError):
        FileSource("/nonexistent/file.wav").start(Collector().sink, Collector().on_error)
    with pytest.raises(AudioError, match="1-D 16 kHz float"):
        FileSource(np.zeros((10, 2), np.float32)).start(Collector().sink, Collector().on_error)
    with pytest.raises(ValueError, match="block_ms"):
        FileSource(noise(0.1), block_ms=0)
