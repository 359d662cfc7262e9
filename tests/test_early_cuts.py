"""Early cuts: a long segment ends at a short pause while the person goes on speaking, and costs no words."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stt.dictation import LIVE_VAD, Dictation, DictationOptions, Mode
from stt.engine import Recognizer
from stt.events import Final, Idle, Listening
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.segmenter import FRAME, SegmentEnded, Segmenter, SegmentEvent, SpeechEnded, SpeechStarted, VadOptions
from stt.vad import SileroVad
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .live import HandSource, Recorder, silence

WORDS = [
    "nine",
    "seven",
    "two",
    "stop",
    "no",
    "world",
    "three",
    "down",
    "left",
    "five",
    "zero",
    "go",
    "hello",
    "six",
    "four",
    "eight",
    "one",
    "up",
    "yes",
    "right",
]
CUTS = VadOptions(cut_after_s=2.0, cut_pause_ms=150)


def run(probabilities: list[float], options: VadOptions) -> list[tuple[int, SegmentEvent]]:
    """(frame index, event) for every event the segmenter gives, the end of the audio included."""
    segmenter = Segmenter(options)
    events = [(i, e) for i, p in enumerate(probabilities) for e in segmenter.push(p)]
    return events + [(len(probabilities), e) for e in segmenter.flush()]


def frames(seconds: float) -> int:
    return round(seconds * 16000 / FRAME)


# The segmenter.


def test_a_long_segment_is_cut_at_the_first_short_pause() -> None:
    speech, pause = frames(2.5), 6  # 192 ms
    probabilities = [0.9] * speech + [0.1] * pause + [0.9] * frames(1.0) + [0.1] * frames(1.0)
    events = run(probabilities, CUTS)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SegmentEnded", "SpeechStarted", "SegmentEnded"]
    (cut_at, cut), (_, resumed), (_, last) = events[1], events[2], events[3]
    assert isinstance(cut, SegmentEnded) and isinstance(resumed, SpeechStarted) and isinstance(last, SegmentEnded)
    assert cut.cut and not last.cut
    assert cut_at == speech + 3  # 2.5 s of speech needs 150 ms × 2 / 2.5 = 120 ms: the fourth quiet frame
    assert cut.end == speech * FRAME + round(CUTS.speech_pad_ms * 16)  # the pause start plus the padding
    # The next segment starts at its onset less the padding: nothing of the speech is lost or doubled.
    assert resumed.start == (speech + pause) * FRAME - round(CUTS.speech_pad_ms * 16)
    assert resumed.start >= cut.end


def test_no_cut_before_enough_speech_and_none_when_off() -> None:
    probabilities = [0.9] * frames(1.5) + [0.1] * 8 + [0.9] * frames(1.5) + [0.1] * frames(1.0)
    events = run(probabilities, CUTS)
    # The pause after 1.5 s of speech does not cut; the one after 3 s does, and then the speech ends.
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SegmentEnded", "SpeechEnded"]
    assert events[1][0] == frames(1.5) + 8 + frames(1.5) + 2  # 3.3 s in: 150 × 2 / 3.3 = 92 ms, three frames
    long = [0.9] * frames(3.0) + [0.1] * 8 + [0.9] * frames(1.0) + [0.1] * frames(1.0)
    off = run(long, replace(CUTS, cut_after_s=0.0))
    assert [type(e).__name__ for _, e in off] == ["SpeechStarted", "SegmentEnded"]
    assert [type(e).__name__ for _, e in run(long, CUTS)].count("SegmentEnded") == 2
    short = [0.9] * frames(1.5) + [0.1] * frames(1.0)
    assert [type(e).__name__ for _, e in run(short, CUTS)] == ["SpeechStarted", "SegmentEnded"]


def test_the_longer_the_segment_the_shorter_the_pause_it_is_cut_at() -> None:
    def cut_after_pause(speech_s: float, pause: int) -> bool:
        probabilities = [0.9] * frames(speech_s) + [0.1] * pause + [0.9] * frames(0.5)
        return any(isinstance(e, SegmentEnded) and e.cut for _, e in run(probabilities, CUTS))

    assert not cut_after_pause(2.5, 2) and not cut_after_pause(3.0, 2) and cut_after_pause(3.0, 4)
    assert cut_after_pause(6.0, 2)  # 150 × 2 / 6 = 50 ms, raised to the 64 ms floor
    assert not cut_after_pause(10.0, 1)  # a single quiet frame is never a cut


def test_a_pause_after_a_cut_that_lasts_ends_the_speech_once() -> None:
    speech = frames(2.5)
    probabilities = [0.9] * speech + [0.1] * frames(2.0)
    events = run(probabilities, CUTS)
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SegmentEnded", "SpeechEnded"]
    at, ended = events[2]
    assert isinstance(ended, SpeechEnded)
    # min_silence_ms after the pause began, as a segment without a cut would have ended.
    assert (at + 1 - speech) * FRAME >= CUTS.min_silence_ms * 16 > (at - speech) * FRAME
    assert ended.position == (at + 1) * FRAME


def test_cuts_never_change_the_audio_covered() -> None:
    """On random probabilities, the cut segments lie inside the uncut ones, in order (no long-speech splits)."""
    options = replace(CUTS, max_segment_s=600.0)
    rng = np.random.default_rng(3)
    for _ in range(50):
        runs = []
        for _ in range(40):
            runs += [float(rng.uniform(0.6, 1.0))] * int(rng.integers(1, 40))
            runs += [float(rng.uniform(0.0, 0.3))] * int(rng.integers(1, 12))
        with_cuts = [e for _, e in run(runs, options) if isinstance(e, SegmentEnded)]
        without = [e for _, e in run(runs, replace(options, cut_after_s=0.0)) if isinstance(e, SegmentEnded)]
        assert any(e.cut for e in with_cuts) or len(with_cuts) == len(without)
        for e in with_cuts:
            assert any(u.start <= e.start and e.end <= u.end + CUTS.speech_pad_ms * 16 for u in without)
        for a, b in itertools.pairwise(with_cuts):
            assert a.end <= b.start


def test_cut_options_are_checked() -> None:
    with pytest.raises(ValueError, match="cut_after_s"):
        VadOptions(cut_after_s=-1.0)
    with pytest.raises(ValueError, match="cut_pause_ms"):
        VadOptions(cut_pause_ms=-5)
    assert LIVE_VAD.cut_after_s > 0 and VadOptions().cut_after_s == 0  # files are never cut early


# Live dictation with the words model.


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


Dictate = Callable[..., tuple[Final, list[int]]]


@pytest.fixture
def dictate(recognizer: Recognizer, vad: SileroVad) -> Iterator[Dictate]:
    """One utterance through the whole live pipeline; the final and how many utterances were opened."""
    closing: list[Callable[[], None]] = []

    def _dictate(
        audio: npt.NDArray[np.float32], mode: Mode = "ptt", options: VadOptions = LIVE_VAD
    ) -> tuple[Final, list[int]]:
        events = Recorder()
        worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
        worker.start()
        source = HandSource(block=640)
        dictation = Dictation(source, worker, events, DictationOptions(mode=mode, vad=options), vad=vad)
        closing.extend([worker.close, dictation.close])
        dictation.open()
        source.push(silence(0.5))
        dictation.start()
        source.push(np.concatenate([silence(0.3, 1), audio, silence(0.2 if mode != "handsfree" else 1.0, 2)]))
        if mode != "handsfree":
            dictation.stop()
            source.push(silence(0.2, 3))
        final = events.wait_for(Final, timeout=60)[0]
        if mode == "handsfree":
            dictation.stop()
        events.wait_for(Idle)
        return final, [e.utterance for e in events.of(Listening)]

    yield _dictate
    for close in reversed(closing):
        close()


def dictation_text(rng: random.Random, count: int) -> tuple[str, list[str]]:
    """Words of the model in clauses of 3–8, joined by commas and full stops as a person dictates."""
    words = [rng.choice(WORDS) for _ in range(count)]
    text, clause = "", rng.randint(3, 8)
    for i, word in enumerate(words):
        text += (" " if i else "") + word
        clause -= 1
        if clause == 0 and i < count - 1:
            text += rng.choice([",", ",", "."])
            clause = rng.randint(3, 8)
    return text, words


def plain(text: str) -> list[str]:
    return text.replace(",", "").replace(".", "").lower().split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


@pytest.mark.parametrize("mode", ["ptt", "toggle", "handsfree"])
def test_no_word_is_split_or_doubled_at_any_cut(
    mode: Mode, dictate: Dictate, speak: Speak, recognizer: Recognizer
) -> None:
    text, reference = dictation_text(random.Random(11), 70)
    audio = speak(text)
    assert 20 <= len(audio) / 16000 <= 60
    final, utterances = dictate(audio, mode)
    assert len(utterances) == 1, "a cut must not end the utterance"
    cuts = [s.end for s in final.segments[:-1]]
    assert len(cuts) >= 4, f"only {len(cuts)} cuts in {len(audio) / 16000:.0f} s"
    assert plain(final.text) == reference
    # Where each word lies when the whole clip is transcribed at once, on the utterance's timeline.
    whole = recognizer.transcribe(audio, 0.5 + 0.3 - final.timeline_start)
    assert plain(whole.text) == reference
    for cut, before, after in zip(cuts, final.segments, final.segments[1:], strict=False):
        assert before.words and after.words, f"an empty piece at the cut at {cut:.2f} s"
        assert all(w.start < cut for w in before.words) and all(w.start >= cut - 0.08 for w in after.words)
        inside = [w for w in whole.words if w.start < cut - 0.08 and w.end > cut + 0.08]
        assert not inside, f"the cut at {cut:.2f} s falls inside {inside[0].text!r}"
        # The pieces meet where the words meet: the last word before and the first after are neighbours.
        index = len([w for s in final.segments if s.end <= cut for w in s.words])
        assert plain(before.text)[-1] == reference[index - 1] and plain(after.text)[0] == reference[index]


def test_word_error_rate_with_cuts_is_no_worse(dictate: Dictate, speak: Speak) -> None:
    rng = random.Random(5)
    clips = [dictation_text(rng, n) for n in (60, 100, 140)]
    errors = {True: 0, False: 0}
    cuts = 0
    for text, reference in clips:
        audio = speak(text)
        assert 20 <= len(audio) / 16000 <= 60
        for early in (True, False):
            options = LIVE_VAD if early else replace(LIVE_VAD, cut_after_s=0.0)
            final, _ = dictate(audio, "ptt", options)
            errors[early] += word_errors(reference, plain(final.text))
            cuts += len(final.segments) - 1 if early else 0
    assert cuts >= 10
    assert errors[True] <= errors[False]
