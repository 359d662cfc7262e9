"""The recogniser end to end on the real 20-word model and espeak-ng speech."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stt import modelcache
from stt.engine import LoadReport, Recognizer
from stt.errors import AudioError, NumericError
from stt.features import log_mel
from stt.instrument import Instrumentation
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

from .conftest import Speak

PHRASES = [
    "seven three five",
    "hello world",
    "yes no stop go",
    "left right up down",
    "zero one two three four five six seven eight nine",
]


@pytest.fixture(scope="module", params=["fp32", "int8"])
def recognizer(request: pytest.FixtureRequest, words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, request.param), RuntimeOptions(device="cpu"))


@pytest.mark.parametrize("phrase", PHRASES)
def test_espeak_words_come_back(recognizer: Recognizer, speak: Speak, phrase: str) -> None:
    result = recognizer.transcribe(speak(phrase))
    assert result.text == phrase
    assert [w.text for w in result.words] == phrase.split()


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 130), ("en+f3", 210), ("en-gb", 175)])
def test_other_voices_and_speeds(recognizer: Recognizer, speak: Speak, voice: str, speed: int) -> None:
    assert recognizer.transcribe(speak("six eight go left", voice, speed)).text == "six eight go left"


def test_word_times_follow_the_speech(recognizer: Recognizer, speak: Speak) -> None:
    audio = speak("one two three")
    pad = np.zeros(16000, dtype=np.float32)
    result = recognizer.transcribe(np.concatenate([pad, audio]))
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert 0.9 <= starts[0] <= 1.5
    assert result.words[-1].end <= result.duration
    assert all(0.0 < w.confidence <= 1.0 for w in result.words)
    assert len(result.token_ids) == len(result.token_starts) == len(result.token_durations)


def test_long_audio_is_cut_at_pauses_and_keeps_the_timeline(words_model: Path, speak: Speak) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "int8"), RuntimeOptions(device="cpu"))
    assert recognizer.max_segment_seconds == 20.0
    gap = np.zeros(int(1.2 * 16000), dtype=np.float32)
    phrases = [PHRASES[i % len(PHRASES)] for i in range(12)]
    pieces, starts, at = [], [], 0
    for phrase in phrases:
        clip = speak(phrase)
        starts.append(at / 16000)
        pieces += [clip, gap]
        at += len(clip) + len(gap)
    audio = np.concatenate(pieces)
    assert len(audio) / 16000 > 30  # two cuts at least
    result = recognizer.transcribe_stream(np.array_split(audio, 17))
    assert result.text == " ".join(phrases)
    assert result.duration == pytest.approx(len(audio) / 16000)
    last_phrase_words = len(phrases[-1].split())
    assert result.words[-last_phrase_words].start == pytest.approx(starts[-1], abs=0.6)


@pytest.mark.parametrize("samples", [0, 1, 800, 1599])
def test_too_short_gives_empty_text(recognizer: Recognizer, samples: int) -> None:
    result = recognizer.transcribe(np.full(samples, 0.1, dtype=np.float32))
    assert result.text == "" and result.words == []


@pytest.mark.parametrize("seconds", [0.5, 3.0, 30.0])
def test_silence_invents_nothing(recognizer: Recognizer, seconds: float) -> None:
    assert recognizer.transcribe(np.zeros(int(seconds * 16000), dtype=np.float32)).text == ""


def test_nan_samples_are_refused(recognizer: Recognizer, speak: Speak) -> None:
    audio = speak("go")
    audio[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        recognizer.transcribe(audio)


def test_nan_guard_names_the_stage() -> None:
    guard = Instrumentation(nan_guard=True)
    guard.check("features", np.zeros(4, dtype=np.float32))
    with pytest.raises(NumericError, match="encoder output"):
        guard.check("encoder output", np.array([0.0, np.inf], dtype=np.float32))


def test_audio_tap_and_decode_log(
    words_model: Path, speak: Speak, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instrumentation = Instrumentation(tap_dir=tmp_path / "tap", nan_guard=True, debug_decode=True)
    recognizer = Recognizer(
        ModelFiles.locate(words_model, "fp32"),
        RuntimeOptions(device="cpu"),
        instrumentation=instrumentation,
        warm_up=False,
    )
    audio = speak("stop")
    with caplog.at_level(logging.INFO, logger="perch.decode"):
        assert recognizer.transcribe(audio).text == "stop"
    wavs = sorted((tmp_path / "tap").glob("*.wav"))
    assert len(wavs) == 1
    tapped, rate = sf.read(wavs[0], dtype="float32")
    assert rate == 16000 and np.array_equal(tapped, audio)
    assert np.array_equal(np.load(wavs[0].with_suffix(".npy")), log_mel(audio)[0])
    steps = [r.getMessage() for r in caplog.records if r.name == "perch.decode"]
    assert steps and all(s.startswith("frame=") for s in steps)
    assert any("token=4 " in s for s in steps)  # "▁stop" is id 4


def test_environment_switches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERCH_AUDIO_TAP", str(tmp_path))
    monkeypatch.setenv("PERCH_NAN_GUARD", "1")
    monkeypatch.setenv("PERCH_DEBUG_DECODE", "1")
    assert Instrumentation.from_env() == Instrumentation(tmp_path, True, True)
    monkeypatch.setenv("PERCH_NAN_GUARD", "0")
    assert not Instrumentation.from_env().nan_guard


def test_load_report(words_model: Path, speak: Speak) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "int8"), RuntimeOptions(device="cpu"))
    report = recognizer.report
    assert report.device == "cpu" and report.providers == ("CPUExecutionProvider",)
    assert report.notes == ()
    assert report.load_seconds > 0 and report.warmup_seconds == 0  # a first run on the CPU needs no warm-up
    assert report.realtime_factor is None and report.summary() == f"loaded in {report.load_seconds:.1f} s"
    audio = speak("hello world")
    took = recognizer.transcribe(audio).timings.total / 1000
    assert recognizer.speed.audio_seconds == pytest.approx(len(audio) / 16000)
    assert 0 < recognizer.speed.busy_seconds <= took
    factor = recognizer.report.realtime_factor
    assert factor == recognizer.speed.audio_seconds / recognizer.speed.busy_seconds
    assert re.fullmatch(r"loaded in \d+\.\d s · runs \d+(\.\d)?× faster than real time", recognizer.report.summary())
    recognizer.transcribe(np.zeros(16000, dtype=np.float32))  # silence is skipped, and does not count
    assert recognizer.report.realtime_factor == factor


@pytest.mark.parametrize(
    ("factor", "text"),
    [
        (None, "loaded in 1.7 s"),
        (14.4, "loaded in 1.7 s · runs 14× faster than real time"),
        (2.46, "loaded in 1.7 s · runs 2.5× faster than real time"),
        (0.62, "loaded in 1.7 s · runs at 0.6× real time, slower than speech"),
    ],
)
def test_load_summary(factor: float | None, text: str) -> None:
    assert LoadReport("cpu", (), (), 1.2, 0.5, factor).summary() == text


def test_weights_index_is_written_after_the_first_load_and_used_by_later_ones(
    words_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert modelcache.wait_idle(30)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(modelcache, "MIN_GAIN_BYTES", 0)
    files = ModelFiles.locate(words_model, "int8")
    first = Recognizer(files, RuntimeOptions(device="cpu"))
    assert modelcache.wait_idle(30)
    index = modelcache.cached_index(files.encoder)
    assert index is not None and index.stat().st_size < files.encoder.stat().st_size / 10
    second = Recognizer(files, RuntimeOptions(device="cpu"))
    assert modelcache.wait_idle(30)
    audio = np.random.default_rng(3).normal(0, 0.1, 32000).astype(np.float32)
    assert np.array_equal(first.encode(audio)[0], second.encode(audio)[0])
    assert first.transcribe(audio).token_ids == second.transcribe(audio).token_ids
    assert not list((tmp_path / "perch" / "optimized").glob("*.tmp*"))
