"""Benchmark of file transcription beside dictation: `python -m pytest tests/bench_files.py -s`.

On the words model (fp32, CPU) with the live pipeline (Silero VAD, partials "low", push-to-talk) and a
10-minute file of espeak-ng talk, it prints:

- the file job's real-time factor alone (engine wall time / audio time);
- PERCH_BENCH_RUNS (10) push-to-talk dictations of a 10-word utterance fed at real-time speed, without and
  then with the file job running: stop→final p50 / p95 / max, and how often a file step was stopped for them;
- the file job's real-time factor while those dictations happened.

It is not part of the test run (the file name does not start with `test_`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.events import Final
from stt.filejob import FileJob, FileProgress, FileResult
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.vad import SileroVad
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .live import HandSource, Recorder, silence
from .longaudio import spaced_phrases, write_long_file

UTTERANCE = "hello world seven three five left right up down nine"
PHRASES = ["seven three five", "hello world", "left right up down", "yes no stop go"]
RUNS = int(os.environ.get("PERCH_BENCH_RUNS", "10"))
FILE_SECONDS = 600.0


class FileRunner:
    """Keeps one file job running on the worker (a new one when the last finishes); counts audio done."""

    def __init__(self, worker: EngineWorker, path: Path) -> None:
        self.worker, self.path = worker, path
        self.audio_done = 0.0
        self.interruptions = 0
        self.finished = threading.Event()
        self._last = 0.0
        self._job: FileJob | None = None
        self.running = True

    def start(self) -> None:
        self._last = 0.0
        self._job = FileJob(self.path, self._progress, self._done)
        self.worker.add_file(self._job)

    def stop(self) -> None:
        self.running = False
        if self._job is not None:
            self.worker.cancel_file(self._job)

    def _progress(self, progress: FileProgress) -> None:
        self.audio_done += progress.position_s - self._last
        self._last = progress.position_s

    def _done(self, result: FileResult) -> None:
        assert self._job is not None
        self.interruptions += self._job.interruptions
        self.finished.set()
        if self.running and result.state == "done":
            self.start()


def dictate(
    source: HandSource,
    dictation: Dictation,
    events: Recorder,
    speech: npt.NDArray[np.float32],
    index: int,
    *,
    check: bool = True,
) -> float:
    """One push-to-talk utterance fed at real-time speed; its stop→final in ms (`check`: and its words right)."""
    dictation.start()
    audio = np.concatenate([silence(0.3, index), speech, silence(0.3, index + 1)])
    started = time.perf_counter()
    for block, first in enumerate(range(0, len(audio), 1600)):
        source.push(audio[first : first + 1600])
        time.sleep(max(0.0, started + (block + 1) * 0.1 - time.perf_counter()))
    dictation.stop()
    final = events.wait_for(Final, count=index + 1, timeout=60)[index]
    assert not check or final.text.replace(",", "").replace(".", "") == UTTERANCE
    return final.timings.stop_to_final_ms


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


@pytest.mark.slow
def test_file_jobs_beside_dictation(words_model: Path, speak: Speak, tmp_path: Path) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))
    path = write_long_file(tmp_path / "talk.wav", FILE_SECONDS, spaced_phrases(speak, PHRASES * 100, every_s=6.0))
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
    worker.start()
    worker.ready.wait()

    runner = FileRunner(worker, path)
    runner.running = False
    began = time.perf_counter()
    runner.start()
    assert runner.finished.wait(600)
    alone_rtf = (time.perf_counter() - began) / FILE_SECONDS

    source = HandSource()
    dictation = Dictation(source, worker, events, DictationOptions(mode="ptt", preroll_ms=500), vad=SileroVad())
    dictation.open()
    speech = speak(UTTERANCE)
    idle = [dictate(source, dictation, events, speech, i) for i in range(RUNS)]

    runner.running, runner.audio_done = True, 0.0
    runner.finished.clear()
    runner.start()
    time.sleep(1.0)
    began = time.perf_counter()
    busy = [dictate(source, dictation, events, speech, RUNS + i) for i in range(RUNS)]
    beside_rtf = (time.perf_counter() - began) / max(runner.audio_done, 1e-9)
    runner.stop()
    dictation.close()
    worker.close()

    print()
    print(f"file job alone: {FILE_SECONDS:.0f} s of audio, RTF {alone_rtf:.4f} ({1 / alone_rtf:.0f}x real time)")
    print(
        f"stop->final without a file job: p50 {percentile(idle, 50):.1f} ms, p95 {percentile(idle, 95):.1f} ms, "
        f"max {max(idle):.1f} ms ({RUNS} dictations)"
    )
    print(
        f"stop->final during a file job:  p50 {percentile(busy, 50):.1f} ms, p95 {percentile(busy, 95):.1f} ms, "
        f"max {max(busy):.1f} ms; p95 difference {percentile(busy, 95) - percentile(idle, 95):+.1f} ms"
    )
    print(
        f"file job beside dictation: {runner.audio_done:.0f} s of audio in the dictation phase, RTF "
        f"{beside_rtf:.4f} ({1 / beside_rtf:.0f}x real time); file steps stopped for dictation: "
        f"{runner.interruptions}"
    )
