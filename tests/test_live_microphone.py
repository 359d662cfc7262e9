"""The whole live pipeline on a real microphone: espeak-ng speech played into a PulseAudio null sink."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from stt.audio import load_audio
from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.events import Error, Final
from stt.microphone import Microphone
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.sources import AudioBlock, AudioSink, CaptureStats, ErrorSink
from stt.worker import EngineWorker, WorkerOptions
from tests.pulse import PulseMic

from .live import Recorder

RATE = 16000
PHRASES = ("seven three five", "hello world", "left right up down")


class Tap:
    """Passes a source through, keeping every block it delivered."""

    def __init__(self, inner: Microphone) -> None:
        self.inner = inner
        self.blocks: list[npt.NDArray[np.float32]] = []

    @property
    def stats(self) -> CaptureStats:
        return self.inner.stats

    @property
    def running(self) -> bool:
        return self.inner.running

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None:
        def keep(block: AudioBlock) -> None:
            self.blocks.append(block.samples)
            sink(block)

        self.inner.start(keep, on_error)

    def stop(self) -> None:
        self.inner.stop()

    def audio(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.blocks)


def speech_bounds(audio: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
    """Where each phrase really starts and ends (10 ms energy above -50 dBFS, gaps over 0.6 s split)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(10 * np.log10((frames**2).mean(axis=1) + 1e-12) > -50)
    runs: list[list[int]] = [[int(loud[0]), int(loud[0])]]
    for i in loud[1:]:
        if i - runs[-1][1] > 60:
            runs.append([int(i), int(i)])
        runs[-1][1] = int(i)
    return [(a * 0.01, (b + 1) * 0.01) for a, b in runs]


@pytest.fixture
def program(tmp_path: Path) -> Iterator[Path]:
    """The phrases with 1.5 s pauses, as one WAV at espeak-ng's own rate."""
    parts = []
    rate = 22050
    for i, phrase in enumerate(PHRASES):
        path = tmp_path / f"p{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), phrase], check=True)
        samples, rate = soundfile.read(path, dtype="float32")
        parts += [np.zeros(int(1.5 * rate), np.float32), samples]
    parts.append(np.zeros(int(1.5 * rate), np.float32))
    out = tmp_path / "program.wav"
    soundfile.write(out, np.concatenate(parts), rate)
    yield out


def test_hands_free_on_a_real_microphone(pulse_mic: PulseMic, words_model: Path, program: Path) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
    worker.start()
    tap = Tap(Microphone("pulse"))
    dictation = Dictation(tap, worker, events, DictationOptions(mode="handsfree"))
    dictation.open()
    dictation.start()
    try:
        pulse_mic.play(program)
        finals = events.wait_for(Final, count=len(PHRASES), timeout=30)
    finally:
        dictation.close()
        worker.close()
    assert [f.text for f in finals] == list(PHRASES)
    assert tap.stats.dropped_blocks == 0 and tap.stats.overflows == 0

    # Find the played program in what the microphone heard, then compare the segment boundaries with the truth.
    played = load_audio(program)
    heard = tap.audio()
    correlation = np.correlate(heard, played[: RATE * 3], mode="valid")
    offset = int(np.argmax(np.abs(correlation)))
    truth = [(offset / RATE + a, offset / RATE + b) for a, b in speech_bounds(played)]
    assert len(truth) == len(PHRASES)
    for final, (true_start, true_end) in zip(finals, truth, strict=True):
        (segment,) = final.segments
        start, end = final.timeline_start + segment.start, final.timeline_start + segment.end
        print(f"{final.text}: start {1000 * (start - true_start):+.0f} ms, end {1000 * (end - true_end):+.0f} ms")
        assert abs(start - true_start) <= 0.15, (final.text, start, true_start)
        assert abs(end - true_end) <= 0.15, (final.text, end, true_end)


def test_push_to_talk_on_a_real_microphone(pulse_mic: PulseMic, words_model: Path, tmp_path: Path) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "int8"), RuntimeOptions(device="cpu"))
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="off"))
    worker.start()
    dictation = Dictation(Microphone("pulse"), worker, events, DictationOptions(mode="ptt"))
    dictation.open()
    path = tmp_path / "nine.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "nine eight seven"], check=True)
    try:
        dictation.start()
        pulse_mic.play(path)
        dictation.stop()
        final = events.wait_for(Final, timeout=30)[0]
    finally:
        dictation.close()
        worker.close()
    assert final.text == "nine eight seven"


def test_microphone_lost_mid_utterance(pulse_mic: PulseMic, words_model: Path, tmp_path: Path) -> None:
    """What was said before the device went away is transcribed; dictation works again once it is back."""
    recognizer = Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
    worker.start()
    microphone = Microphone("pulse", reopen_interval_s=0.2)
    dictation = Dictation(microphone, worker, events, DictationOptions(mode="ptt"))
    dictation.open()
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"
    subprocess.run(["espeak-ng", "-w", str(first), "three three"], check=True)
    subprocess.run(["espeak-ng", "-w", str(second), "four four"], check=True)
    try:
        dictation.start()
        pulse_mic.play(first)
        try:
            pulse_mic.remove_sink()  # unplugged with the key still down
            error = events.wait_for(Error, timeout=10)[0]
            final = events.wait_for(Final, timeout=10)[0]
        finally:
            pulse_mic.add_sink()
        assert error.kind == "device-lost"
        assert final.text == "three three"
        assert not dictation.recording
        deadline = time.monotonic() + 10
        while microphone.stats.reopened < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert microphone.stats.reopened == 1
        dictation.start()
        pulse_mic.play(second)
        dictation.stop()
        finals = events.wait_for(Final, count=2, timeout=10)
    finally:
        dictation.close()
        worker.close()
    assert finals[1].text == "four four"
