"""The live pipeline on the words model: modes, eager finals, partials, pre-roll, faults, nothing lost."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
import soundfile

from stt.dictation import Dictation, DictationOptions, Mode
from stt.engine import Recognizer
from stt.errors import MicrophoneError
from stt.events import Error, Final, Idle, Listening, Partial
from stt.modelfiles import ModelFiles
from stt.recordings import RecordingStore
from stt.runtime import RuntimeOptions
from stt.vad import SileroVad
from stt.worker import EngineWorker, GaveWayError, WorkerOptions

from .conftest import Speak
from .live import HandSource, Recorder, silence


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


class Rig:
    """A dictation pipeline fed by hand."""

    def __init__(
        self,
        recognizer: Recognizer,
        vad: SileroVad,
        folder: Path,
        *,
        mode: Mode = "ptt",
        worker_options: WorkerOptions | None = None,
        preroll_ms: int = 500,
        load: Callable[[], Recognizer] | None = None,
    ) -> None:
        self.events = Recorder()
        self.source = HandSource()
        self.store = RecordingStore(folder, keep=5)
        self.worker = EngineWorker(
            load or (lambda: recognizer), self.events, worker_options or WorkerOptions(partials="low"), self.store
        )
        self.worker.start()
        self.dictation = Dictation(
            self.source,
            self.worker,
            self.events,
            DictationOptions(mode=mode, preroll_ms=preroll_ms),
            vad=vad,
            store=self.store,
        )
        self.dictation.open()

    def close(self) -> None:
        self.dictation.close()
        self.worker.close()


@pytest.fixture
def rig(recognizer: Recognizer, vad: SileroVad, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**kwargs: object) -> Rig:
        made.append(Rig(recognizer, vad, tmp_path / f"recordings{len(made)}", **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for r in made:
        r.close()


def words(text: str) -> str:
    return text.replace(",", "").replace(".", "")


def test_push_to_talk_gives_one_final_and_keeps_the_recording(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    speech = speak("seven three five")
    r.source.push(silence(1.0))
    r.dictation.start()
    r.source.push(np.concatenate([silence(0.3, 1), speech, silence(0.3, 2)]))
    r.dictation.stop()
    r.source.push(silence(0.2, 3))
    final = r.events.wait_for(Final)[0]
    assert final.text == "seven three five"
    assert len(final.segments) == 1
    assert [w.text for w in final.words] == ["seven", "three", "five"]
    assert final.timings.final_at >= final.timings.stopped_at
    assert final.audio is not None and final.audio.exists()
    recorded, rate = soundfile.read(final.audio, dtype="float32")
    assert rate == 16000
    # The recording holds the pre-roll and everything up to the release.
    assert len(recorded) >= len(speech) + int(0.6 * 16000)
    assert r.events.of(Listening)[0].utterance == final.utterance
    r.events.wait_for(Idle)


def test_partials_grow_while_speaking(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    r.dictation.start()
    speech = speak("one two three four five six seven eight nine zero")
    for i in range(0, len(speech), 1600):
        r.source.push(speech[i : i + 1600])
        time.sleep(0.005)  # let the worker take its partial steps as it would live
    r.source.push(silence(0.3))
    r.events.wait_for(Partial, lambda p: len(p.text.split()) >= 3)
    r.dictation.stop()
    final = r.events.wait_for(Final)[0]
    assert final.text == "one two three four five six seven eight nine zero"
    partials = r.events.of(Partial)
    assert all(0 <= p.stable_chars <= len(p.text) for p in partials)
    assert any(0 < p.stable_chars < len(p.text) for p in partials)


def test_a_pause_makes_an_eager_final_before_the_release(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    r.dictation.start()
    r.source.push(np.concatenate([speak("hello world"), silence(1.2)]))
    # The first segment is transcribed while the key is still held.
    r.events.wait_for(Partial, lambda p: p.text == "hello world" and p.stable_chars == len("hello world"))
    assert not r.events.of(Final)
    r.source.push(np.concatenate([speak("left right"), silence(0.2)]))
    r.dictation.stop()
    final = r.events.wait_for(Final)[0]
    assert final.text == "hello world left right"
    assert [s.text for s in final.segments] == ["hello world", "left right"]
    assert final.segments[0].end < final.segments[1].start
    # Only the last segment was left when the key was released.
    assert final.timings.last_segment_ms < final.timings.engine_ms


def test_silence_and_clicks_give_no_text(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.dictation.start()
    click = np.zeros(1600, dtype=np.float32)
    click[100:140] = 0.8
    r.source.push(np.concatenate([silence(0.5), click, silence(0.5, 1)]))
    r.dictation.stop()
    r.events.wait_for(Idle)
    assert not r.events.of(Final)
    assert not r.events.of(Error)


def test_hands_free_makes_one_final_per_utterance(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig(mode="handsfree")
    r.dictation.start()
    r.source.push(silence(0.5))
    r.source.push(np.concatenate([speak("yes no"), silence(1.0, 1), speak("stop go"), silence(1.0, 2)]))
    finals = r.events.wait_for(Final, count=2)
    assert [f.text for f in finals] == ["yes no", "stop go"]
    assert len(r.events.of(Listening)) == 2
    assert finals[0].utterance != finals[1].utterance


def test_toggle_mode(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig(mode="toggle")
    r.dictation.toggle()
    r.source.push(np.concatenate([speak("up down"), silence(0.3)]))
    r.dictation.toggle()
    assert r.events.wait_for(Final)[0].text == "up down"


def test_pre_roll_keeps_the_first_word(rig: Callable[..., Rig], speak: Speak) -> None:
    speech = speak("four four four")
    early = int(0.25 * 16000)
    r = rig()
    r.source.push(silence(0.5))
    r.source.push(speech[:early])  # said just before the key went down
    r.dictation.start()
    r.source.push(np.concatenate([speech[early:], silence(0.3)]))
    r.dictation.stop()
    assert r.events.wait_for(Final)[0].text == "four four four"


def test_without_pre_roll_the_microphone_opens_per_utterance(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig(preroll_ms=0)
    assert not r.source.running
    r.dictation.start()
    assert r.source.running and r.dictation.open_seconds is not None
    r.source.push(np.concatenate([speak("nine"), silence(0.3)]))
    r.dictation.stop()
    assert r.events.wait_for(Final)[0].text == "nine"
    r.events.wait_for(Idle)
    deadline = time.monotonic() + 5
    while r.source.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not r.source.running


def test_cancel_drops_the_utterance_and_its_recording(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    r.dictation.start()
    r.source.push(np.concatenate([speak("zero one"), silence(0.3)]))
    r.dictation.cancel()
    r.events.wait_for(Idle)
    assert not r.events.of(Final)
    assert not list(r.store.folder.glob("*.wav"))


def test_engine_failure_keeps_the_audio(rig: Callable[..., Rig], speak: Speak, recognizer: Recognizer) -> None:
    class Failing:
        def __getattr__(self, name: str) -> object:
            return getattr(recognizer, name)

        def transcribe(self, samples: npt.NDArray[np.float32], offset: float = 0.0) -> object:
            raise RuntimeError("out of memory on the device")

    r = rig(load=Failing)
    r.dictation.start()
    r.source.push(np.concatenate([speak("two two"), silence(0.3)]))
    r.dictation.stop()
    error = r.events.wait_for(Error)[0]
    assert error.kind == "transcription"
    assert "out of memory" in error.message and "perch transcribe" in error.message
    assert error.audio is not None and error.audio.exists() and error.audio.name.endswith("-failed.wav")
    assert r.store.failed() == [error.audio]
    assert not r.events.of(Final)


def test_model_that_fails_to_load_reports_it_and_keeps_the_audio(rig: Callable[..., Rig], speak: Speak) -> None:
    def broken() -> Recognizer:
        raise MicrophoneError("never")  # any error while loading

    r = rig(load=broken)
    assert r.events.wait_for(Error)[0].kind == "model"
    r.dictation.start()
    r.source.push(np.concatenate([speak("one"), silence(0.3)]))
    r.dictation.stop()
    failed = r.events.wait_for(Error, lambda e: e.kind == "transcription")[0]
    assert failed.audio is not None and failed.audio.exists()


def test_device_lost_mid_utterance_keeps_what_was_said(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    r.dictation.start()
    r.source.push(speak("six six"))
    r.source.fail(MicrophoneError("the microphone was disconnected"))
    final = r.events.wait_for(Final)[0]
    assert final.text == "six six"
    assert r.events.wait_for(Error)[0].kind == "device-lost"


def test_streaming_finals(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig(worker_options=WorkerOptions(partials="low", final="streaming"))
    r.dictation.start()
    r.source.push(np.concatenate([speak("three two one go"), silence(0.3)]))
    r.dictation.stop()
    assert r.events.wait_for(Final)[0].text == "three two one go"


def test_finals_survive_an_overloaded_engine(rig: Callable[..., Rig], speak: Speak, recognizer: Recognizer) -> None:
    """With a slow engine partials thin out, but every utterance still gets its final."""

    class Slow:
        def __getattr__(self, name: str) -> object:
            return getattr(recognizer, name)

        def encode(self, samples: npt.NDArray[np.float32], run_options: ort.RunOptions | None = None) -> object:
            time.sleep(0.05)
            return recognizer.encode(samples, run_options)

    r = rig(load=Slow)
    phrases = ["one two", "three four", "five six"]
    for phrase in phrases:
        r.dictation.start()
        r.source.push(np.concatenate([speak(phrase), silence(0.3)]))
        r.dictation.stop()
        r.source.push(silence(0.1))
    finals = r.events.wait_for(Final, count=3)
    assert [f.text for f in finals] == phrases
    chunks = sum(len(speak(p)) for p in phrases) / 16000 / 0.24
    assert len(r.events.of(Partial)) < chunks  # partial steps were skipped or merged


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


@pytest.mark.slow
def test_ten_minutes_of_hands_free_dictation_keep_memory_flat(rig: Callable[..., Rig], speak: Speak) -> None:
    """Accelerated: ten minutes of audio fed as fast as the pipeline takes it, an utterance every 10 s."""
    r = rig(mode="handsfree")
    r.dictation.start()
    phrase = speak("hello world seven three five")
    gap = silence(10.0 - len(phrase) / 16000, 4)
    rss = []
    for minute in range(10):
        for _ in range(6):
            r.source.push(phrase)
            r.source.push(gap)
        r.events.wait_for(Final, count=6 * (minute + 1), timeout=120)
        rss.append(_rss_mb())
    finals = r.events.of(Final)
    assert len(finals) == 60 and {f.text for f in finals} == {"hello world seven three five"}
    # After the first minutes nothing accumulates: audio, streams and utterances are all released.
    assert rss[-1] - rss[2] < 15, rss
    assert len(list(r.store.folder.glob("*.wav"))) == r.store.keep


def test_replayed_files_through_the_pipeline(
    recognizer: Recognizer, vad: SileroVad, tmp_path: Path, speech_file: Callable[[str], Path]
) -> None:
    """The file source stands in for the microphone behind the same protocol, at full speed here."""
    from stt.filesource import FileSource

    phrases = ["zero one two", "stop go", "hello world"]
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
    worker.start()
    source = FileSource([speech_file(p) for p in phrases], speed=0, gap_s=1.0)
    dictation = Dictation(source, worker, events, DictationOptions(mode="handsfree"), vad=vad)
    dictation.start()  # opens the source once listening is on, so no block is missed
    try:
        finals = events.wait_for(Final, count=3)
    finally:
        dictation.close()
        worker.close()
    assert [f.text for f in finals] == phrases


def test_auto_preset_takes_the_lowest_latency_this_device_sustains(recognizer: Recognizer) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="auto"))
    worker.start()
    worker.ready.wait()
    worker.close()
    assert worker.preset is not None and worker.preset.name == "low"  # the words model is tiny


def test_a_quick_second_press_starts_a_new_utterance(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    r.dictation.start()
    r.dictation.start()  # a repeated press changes nothing
    r.source.push(np.concatenate([speak("one one"), silence(0.3)]))
    r.dictation.stop()
    r.dictation.start()  # pressed again at once, before the release settled
    r.source.push(np.concatenate([speak("two two"), silence(0.3)]))
    r.dictation.stop()
    r.source.push(silence(0.1))
    assert [f.text for f in r.events.wait_for(Final, count=2)] == ["one one", "two two"]


def test_options_change_between_utterances(rig: Callable[..., Rig], speak: Speak) -> None:
    r = rig()
    assert r.source.running  # pre-roll keeps the microphone open
    r.dictation.reconfigure(DictationOptions(mode="ptt", preroll_ms=0))
    assert not r.source.running
    r.dictation.start()
    with pytest.raises(RuntimeError):
        r.dictation.reconfigure(DictationOptions(mode="toggle"))
    r.source.push(np.concatenate([speak("nine"), silence(0.3)]))
    r.dictation.stop()
    assert r.events.wait_for(Final)[0].text == "nine"
    r.events.wait_for(Idle)
    r.dictation.reconfigure(DictationOptions(mode="handsfree", preroll_ms=500))
    assert r.source.running and r.dictation.options.mode == "handsfree"


def test_worker_options_change_while_it_runs(recognizer: Recognizer) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    worker.ready.wait()
    assert worker.preset is None
    worker.set_options(WorkerOptions(partials="quality", final="streaming"))
    worker.close()  # the queued options are applied before it stops
    assert worker.preset is not None and worker.preset.name == "quality"
    assert worker.options.final == "streaming"


def test_work_submitted_to_the_engine_thread(recognizer: Recognizer, speak: Speak) -> None:
    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    speech = speak("hello world")
    text = worker.submit(lambda r: r.transcribe(speech).text).result(timeout=20)
    assert text == "hello world"
    failing = worker.submit(lambda r: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=20)
    worker.close()
    with pytest.raises(RuntimeError):
        worker.submit(lambda r: 0).result(timeout=1)


def test_work_submitted_without_a_model_fails_with_the_load_error() -> None:
    def broken() -> Recognizer:
        raise OSError("no such model")

    worker = EngineWorker(broken, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    with pytest.raises(Exception, match="no such model"):
        worker.submit(lambda r: 0).result(timeout=10)
    worker.close()


def test_dictation_goes_before_submitted_work_that_waits(recognizer: Recognizer, speak: Speak) -> None:
    """Work from other programs (the speech service) waits while the person's dictation is transcribed."""
    order: list[str] = []
    events = Recorder()

    def emit(event: object) -> None:
        if isinstance(event, Final):
            order.append("final")
        events(event)  # type: ignore[arg-type]

    worker = EngineWorker(lambda: recognizer, emit, WorkerOptions(partials="off"))
    worker.start()
    worker.ready.wait()
    gate = threading.Event()
    try:
        running = worker.submit(lambda _r: gate.wait(10))
        queued = [worker.submit(functools.partial(lambda name, _r: order.append(name), f"api{i}")) for i in range(3)]
        speech = speak("stop go")
        worker.open_segment(1, 0, 0.0)
        worker.close_segment(1, 0, speech, offset=0.0, start=0.0, end=len(speech) / 16000)
        worker.end_utterance(1, time.monotonic(), None)
        gate.set()
        running.result(10)
        for future in queued:
            future.result(10)
    finally:
        worker.close()
    assert order == ["final", "api0", "api1", "api2"]
    assert events.of(Final)[0].text == "stop go"


def _dictate(worker: EngineWorker, speech: npt.NDArray[np.float32]) -> None:
    worker.open_segment(1, 0, 0.0)
    worker.close_segment(1, 0, speech, offset=0.0, start=0.0, end=len(speech) / 16000)
    worker.end_utterance(1, time.monotonic(), None)


def test_running_submitted_work_gives_way_to_a_dictation_final(recognizer: Recognizer, speak: Speak) -> None:
    """A request's model run in progress is stopped by ONNX Runtime when the person's final needs the engine,
    and done again right after it."""
    order: list[str] = []
    runs: list[int] = []
    started = threading.Event()
    request = speak("hello world")

    def emit(event: object) -> None:
        if isinstance(event, Final):
            order.append("final")

    def long_request(r: Recognizer, run: ort.RunOptions) -> str:
        runs.append(len(runs))
        started.set()
        while len(runs) == 1:  # the first run keeps the model busy until it is stopped
            r.transcribe_segment(request, 0.0, run)
        text = r.transcribe_segment(request, 0.0, run).text
        order.append("request")
        return text

    worker = EngineWorker(lambda: recognizer, emit, WorkerOptions(partials="off"))
    worker.start()
    try:
        future = worker.submit_yielding(long_request)
        assert started.wait(20)
        _dictate(worker, speak("stop go"))
        assert future.result(20) == "hello world"
    finally:
        worker.close()
    assert order == ["final", "request"]
    assert runs == [0, 1]


def test_the_persons_partials_go_before_submitted_work(recognizer: Recognizer, speak: Speak) -> None:
    """A due partial step of the caption runs before work other programs submitted (which fills the gaps)."""
    order: list[str] = []

    def emit(event: object) -> None:
        if isinstance(event, Partial):
            order.append("partial")

    worker = EngineWorker(lambda: recognizer, emit, WorkerOptions(partials="quality"))
    worker.start()
    worker.ready.wait()
    try:
        worker.open_segment(1, 0, 0.0)
        worker.audio(1, 0, speak("hello world seven three five"))
        def request(_r: Recognizer) -> None:
            time.sleep(0.05)
            order.append("api")

        requests = [worker.submit(request) for _ in range(10)]
        for future in requests:
            future.result(20)
        worker.cancel_utterance(1)
    finally:
        worker.close()
    assert order.count("api") == 10
    assert "partial" in order[: order.index("api") + 1], order


@pytest.mark.parametrize("by", ["dictation", "request"])
def test_a_preview_that_gave_way_is_not_run_again(recognizer: Recognizer, speak: Speak, by: str) -> None:
    """A preview (a service session's partial) stops for a dictation final, and for any other work at all."""
    started = threading.Event()
    runs: list[int] = []
    speech = speak("hello world")

    def preview(r: Recognizer, run: ort.RunOptions) -> None:
        runs.append(1)
        started.set()
        for _ in range(2000):  # until stopped
            r.transcribe_segment(speech, 0.0, run)

    worker = EngineWorker(lambda: recognizer, Recorder(), WorkerOptions(partials="off"))
    worker.start()
    try:
        future = worker.submit_yielding(preview, redo=False)
        assert started.wait(20)
        if by == "dictation":
            _dictate(worker, speak("stop go"))
        else:
            assert worker.submit(lambda r: r.transcribe_segment(speech).text).result(20) == "hello world"
        with pytest.raises(GaveWayError):
            future.result(20)
    finally:
        worker.close()
    assert runs == [1]
