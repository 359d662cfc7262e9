"""Files transcribed on the engine worker, one segment per step, after dictation's work and never before it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from stt.engine import Recognizer
from stt.events import Final
from stt.filejob import FileJob, FileProgress, FileResult
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .live import Recorder, silence
from .longaudio import spaced_phrases, write_long_file

PHRASES = ["seven three five", "hello world", "left right up down", "yes no stop go", "zero one two"] * 6
EVERY_S = 6.0


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory, speak: Speak) -> Path:
    """Three minutes of talk: a phrase every 6 s."""
    path = tmp_path_factory.mktemp("files") / "three-minutes.wav"
    return write_long_file(path, 182, spaced_phrases(speak, PHRASES, every_s=EVERY_S))


class Outcome:
    """A file job's progress reports and its result."""

    def __init__(self) -> None:
        self.progress: list[FileProgress] = []
        self.result: FileResult | None = None
        self.done = threading.Event()

    def on_progress(self, progress: FileProgress) -> None:
        self.progress.append(progress)

    def on_done(self, result: FileResult) -> None:
        self.result = result
        self.done.set()

    def job(self, path: Path, **kwargs: float) -> FileJob:
        return FileJob(path, self.on_progress, self.on_done, **kwargs)


def test_a_long_file_comes_out_whole_with_progress(recognizer: Recognizer, long_file: Path) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    outcome = Outcome()
    worker.add_file(outcome.job(long_file))
    assert outcome.done.wait(120)
    worker.close()
    result = outcome.result
    assert result is not None and result.state == "done" and result.transcript is not None
    assert result.transcript.text == " ".join(PHRASES)
    assert result.transcript.duration == pytest.approx(182, abs=0.01)
    positions = [p.position_s for p in outcome.progress]
    assert positions == sorted(positions) and len(positions) >= 6  # one report per 30 s segment, at least
    assert outcome.progress[-1].fraction == pytest.approx(1.0) and outcome.progress[-1].speed > 1
    firsts = [w.start for w in result.transcript.words if w.text in {p.split()[0] for p in PHRASES}]
    for index, start in enumerate(firsts):
        assert 2.0 + EVERY_S * index - 0.3 <= start <= 2.0 + EVERY_S * index + 1.0


def test_dictation_goes_first_and_the_file_result_is_unchanged(
    recognizer: Recognizer, long_file: Path, speak: Speak
) -> None:
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="off"))
    worker.start()
    worker.ready.wait()
    outcome = Outcome()
    job = outcome.job(long_file, segment_seconds=10.0)
    worker.add_file(job)
    speech = np.concatenate([speak("stop go"), silence(0.2)])
    for utterance in range(1, 4):
        while not outcome.progress or outcome.progress[-1].position_s < 20 * utterance:
            assert not outcome.done.wait(0.005)
        worker.open_segment(utterance, 0, 0.0)
        worker.close_segment(utterance, 0, speech, offset=0.0, start=0.0, end=len(speech) / 16000)
        worker.end_utterance(utterance, stopped_at=0.0, audio=None)
        final = events.wait_for(Final, lambda f, u=utterance: f.utterance == u)[0]  # type: ignore[misc]
        assert final.text == "stop go"
    assert outcome.done.wait(120)
    worker.close()
    assert outcome.result is not None and outcome.result.transcript is not None
    assert outcome.result.transcript.text == " ".join(PHRASES)


def test_cancel_stops_within_one_segment(recognizer: Recognizer, long_file: Path) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    outcome = Outcome()
    job = outcome.job(long_file, segment_seconds=10.0)
    worker.add_file(job)
    while not outcome.progress or outcome.progress[-1].position_s < 30:
        assert not outcome.done.wait(0.005)
    at_cancel = outcome.progress[-1].position_s
    worker.cancel_file(job)
    assert outcome.done.wait(10)
    worker.close()
    assert outcome.result is not None and outcome.result.state == "cancelled"
    assert outcome.progress[-1].position_s <= at_cancel + 10.0 + 1e-6


def test_a_waiting_job_is_cancelled_at_once_and_bad_files_fail_in_one_line(
    recognizer: Recognizer, long_file: Path, tmp_path: Path
) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    first, second, bad = Outcome(), Outcome(), Outcome()
    text = tmp_path / "notes.mp3"
    text.write_text("not audio\n" * 20)
    first_job, second_job = first.job(long_file), second.job(long_file)
    worker.add_file(first_job)
    worker.add_file(second_job)
    worker.add_file(bad.job(text))
    worker.cancel_file(second_job)
    assert second.done.wait(5) and second.result is not None and second.result.state == "cancelled"
    assert not second.progress
    assert bad.done.wait(120) and first.done.is_set()
    worker.close()
    assert first.result is not None and first.result.state == "done"
    assert bad.result is not None and bad.result.state == "failed" and bad.result.error is not None
    assert "notes.mp3" in bad.result.error and "\n" not in bad.result.error


def test_jobs_fail_cleanly_when_the_model_did_not_load(tmp_path: Path) -> None:
    def broken() -> Recognizer:
        raise RuntimeError("no model")

    worker = EngineWorker(broken, Recorder(), WorkerOptions(partials="off"))
    outcome = Outcome()
    worker.add_file(outcome.job(tmp_path / "x.wav"))
    worker.start()
    assert outcome.done.wait(10)
    worker.close()
    assert outcome.result is not None and outcome.result.state == "failed"
    assert "not loaded" in (outcome.result.error or "")
