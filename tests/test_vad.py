"""Silero VAD: the shipped model, probability parity with two other runners, and the segmentation rules."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import soundfile
from onnx import TensorProto, helper

from stt.errors import ModelFileError
from stt.resources import resources_dir, vad_model_path
from stt.segmenter import SpeechEnded
from stt.vad import (
    FRAME,
    SegmentEnded,
    Segmenter,
    SegmentEvent,
    SileroVad,
    SpeechDiscarded,
    SpeechStarted,
    VadOptions,
    speech_segments,
)

from .conftest import Speak

DATA = Path(__file__).resolve().parent / "data"
MODEL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"
"""silero_vad/data/silero_vad_16k_sequence.onnx of the silero-vad 6.2.3 wheel."""
FRAME_MODEL = DATA / "silero_vad.onnx"
"""The same wheel's one-frame model (sha256 1a153a22…788e3), which the reference wrappers run."""
RATE = 16000
HIGH, MID, LOW = 0.9, 0.4, 0.1
"""Scripted probabilities: above threshold, between the thresholds, below exit_threshold (defaults)."""


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def clip() -> npt.NDArray[np.float32]:
    samples, rate = soundfile.read(DATA / "vad_clip.wav", dtype="float32")
    assert rate == RATE and samples.ndim == 1
    return np.asarray(samples, dtype=np.float32)


@pytest.fixture(scope="module")
def clip_probs() -> npt.NDArray[np.float32]:
    return np.asarray(np.load(DATA / "vad_reference_probs.npy"), dtype=np.float32)


def silence(seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Faint deterministic noise (about -60 dBFS)."""
    return np.random.default_rng(seed).normal(0.0, 0.001, int(seconds * RATE)).astype(np.float32)


# --- the shipped model ---------------------------------------------------------------------------------------


def test_model_file_is_the_pinned_silero_release() -> None:
    path = vad_model_path()
    assert path == resources_dir() / "vad" / "silero_vad_16k_sequence.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256
    licence = (path.parent / "LICENSE").read_text()
    assert "MIT License" in licence and "Silero Team" in licence


def test_missing_model_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "silero_vad.onnx"
    with pytest.raises(ModelFileError, match=r"silero_vad\.onnx is missing.*reinstall Perch"):
        SileroVad(path)


def test_corrupt_model_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "silero_vad.onnx"
    path.write_bytes(vad_model_path().read_bytes()[:5000])
    with pytest.raises(ModelFileError, match=r"silero_vad\.onnx is not a loadable ONNX model.*reinstall Perch"):
        SileroVad(path)


def test_wrong_model_names_the_tensors(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "not-silero",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 576])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 576])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    with pytest.raises(ModelFileError, match=r"other\.onnx is not the Silero sequence VAD.*speech_probs.*reinstall"):
        SileroVad(path)


# --- probabilities -------------------------------------------------------------------------------------------


def test_probabilities_match_the_silero_reference_wrapper(vad: SileroVad, clip: npt.NDArray[np.float32]) -> None:
    """vad_reference_probs.npy comes from silero_vad.utils_vad.OnnxWrapper (see data/make_vad_reference.py)."""
    reference = np.load(DATA / "vad_reference_probs.npy")
    ours = vad.probabilities(clip)
    assert ours.dtype == np.float32 and ours.shape == reference.shape == (-(-len(clip) // FRAME),)
    assert float(np.abs(ours - reference).max()) <= 1e-5
    assert reference.max() > 0.9 and reference.min() < 0.05  # the clip holds both speech and silence


def onnx_asr_probabilities(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    from onnx_asr.models.silero import SileroVad as OnnxAsrSilero

    model = OnnxAsrSilero({"model": FRAME_MODEL}, {})
    frames = list(model._encode(samples[None], RATE, FRAME, 64))
    return np.concatenate(frames).astype(np.float32)


def test_probabilities_match_onnx_asr(vad: SileroVad, speak: Speak) -> None:
    speech = np.concatenate([silence(0.3), speak("open the window, then close the door"), silence(0.5)])
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, RATE * 2 + 123).astype(np.float32)
    for samples in (speech, noise):
        ours = vad.probabilities(samples)
        theirs = onnx_asr_probabilities(samples)
        assert ours.shape == theirs.shape
        assert float(np.abs(ours - theirs).max()) <= 1e-5


def test_frame_by_frame_equals_whole_recording(vad: SileroVad, clip: npt.NDArray[np.float32]) -> None:
    whole = vad.probabilities(clip)
    padded = np.pad(clip, (0, -len(clip) % FRAME))
    vad.reset()
    stepped = np.array([vad.probability(padded[i : i + FRAME]) for i in range(0, len(padded), FRAME)], np.float32)
    assert np.array_equal(stepped, whole)
    vad.reset()
    assert vad.probability(padded[:FRAME]) == whole[0]
    assert vad.probabilities(np.zeros(0, np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="512 samples"):
        vad.probability(np.zeros(480, np.float32))


def test_vad_speed_report(vad: SileroVad, clip: npt.NDArray[np.float32]) -> None:
    """Not an assertion on time: prints how many times faster than real time the model runs on one thread."""
    audio = np.resize(clip, 60 * RATE)
    vad.probabilities(audio[: 10 * FRAME])
    best = min(_timed(vad, audio) for _ in range(2))
    print(f"\nSilero VAD on one thread: 60 s of audio in {best * 1000:.0f} ms = {60 / best:.0f}x real time")


def _timed(vad: SileroVad, audio: npt.NDArray[np.float32]) -> float:
    started = time.perf_counter()
    vad.probabilities(audio)
    return time.perf_counter() - started


# --- an independent offline statement of the segmentation rules -----------------------------------------------


def reference_segments(
    probs: Sequence[float] | npt.NDArray[np.float32], o: VadOptions, total: int | None = None
) -> list[tuple[int, int]]:
    """The rules computed over the whole recording: label frames, find runs, group, split, pad."""
    n = len(probs)

    def ms(value: float) -> int:
        return round(value * RATE / 1000)

    pad, min_speech, split_pause = ms(o.speech_pad_ms), max(ms(o.min_speech_ms), 1), ms(o.split_pause_ms)
    limit = round(o.max_segment_s * RATE)
    quiet_frames = max(1, -(-ms(o.min_silence_ms) // FRAME))  # frames of pause that end a segment

    # 1. Hysteresis label per frame.
    labels: list[bool] = []
    speaking = False
    for p in probs:
        speaking = p >= (o.exit_threshold if speaking else o.threshold)
        labels.append(speaking)
    # 2. Runs of speech frames [a, b).
    runs: list[tuple[int, int]] = []
    for i, label in enumerate(labels):
        if label and (i == 0 or not labels[i - 1]):
            runs.append((i, i + 1))
        elif label:
            runs[-1] = (runs[-1][0], i + 1)
    # 3. Runs separated by gaps shorter than the pause that ends a segment belong together.
    groups: list[list[tuple[int, int]]] = []
    for run in runs:
        if groups and run[0] - groups[-1][-1][1] < quiet_frames:
            groups[-1].append(run)
        else:
            groups.append([run])

    kept: list[tuple[int, int]] = []
    previous_end = 0

    def emit(start: int, end: int, speech_start: int, speech_end: int) -> None:
        nonlocal previous_end
        if speech_end - speech_start >= min_speech:
            kept.append((start, end))
            previous_end = end

    for group in groups:
        last = group[-1][1]
        quiet_end = n - last >= quiet_frames
        final_frame = last + quiet_frames - 1 if quiet_end else n  # a segment closed by silence closes here
        gaps = [(b, a) for (_, b), (a, _) in itertools.pairwise(group)]
        gaps.append((last, last + quiet_frames if quiet_end else n))  # the trailing pause
        onset = group[0][0]
        start, speech_start, first = max(onset * FRAME - pad, previous_end, 0), onset * FRAME, onset
        i = onset
        closed = False
        while True:
            # 4. Does this piece reach the length limit before it closes?
            while i < final_frame and (i + 1) * FRAME - start <= limit - FRAME:
                i += 1
            if i >= final_frame:
                break
            here = (i + 1) * FRAME
            pauses = [(g0, min(g1, i + 1) - g0, g1 > i) for g0, g1 in gaps if first <= g0 <= i]
            usable = [p for p in pauses if p[1] * FRAME >= split_pause]
            best = max(usable, key=lambda p: (p[1], p[0]), default=None)
            if best is None:  # hard cut
                emit(start, here, speech_start, here)
                start = speech_start = here
                first = i + 1
            elif best[2]:  # the pause in progress: end there; a new segment starts when speech resumes
                emit(start, min(best[0] * FRAME + pad, here), speech_start, best[0] * FRAME)
                resume = next((a for a, _ in group if a > best[0]), None)
                if resume is None:
                    closed = True
                    break
                start, speech_start, first = max(resume * FRAME - pad, previous_end, 0), resume * FRAME, resume
                i = resume
                continue
            else:  # the middle of the longest finished pause
                middle = best[0] - (-best[1] // 2)
                emit(start, middle * FRAME, speech_start, middle * FRAME)
                start = speech_start = middle * FRAME
                first = middle
            i += 1
        if closed:
            continue
        # 5. Close: at the pause start plus padding, clamped to the audio seen.
        if quiet_end:
            audio_end = (last + quiet_frames) * FRAME
            speech_end = last * FRAME
        else:
            audio_end = n * FRAME if total is None else min(n * FRAME, total)
            speech_end = min(last * FRAME if last < n else audio_end, audio_end)
        emit(start, min(speech_end + pad, audio_end), speech_start, speech_end)
    return kept


def events_of(probs: Sequence[float], options: VadOptions | None = None) -> list[SegmentEvent]:
    segmenter = Segmenter(options)
    return [event for p in probs for event in segmenter.push(p)] + segmenter.flush()


def check_events(events: list[SegmentEvent]) -> None:
    """Every SpeechStarted is followed by exactly one SegmentEnded or SpeechDiscarded with the same start."""
    open_start: int | None = None
    last_end = 0
    for event in events:
        assert not isinstance(event, SpeechEnded), "no early cuts without cut_after_s"
        if isinstance(event, SpeechStarted):
            assert open_start is None
            open_start = event.start
        else:
            assert open_start == event.start
            open_start = None
            if isinstance(event, SegmentEnded):
                assert last_end <= event.audio_start <= event.start < event.end
                last_end = event.end
    assert open_start is None


def random_probabilities(rng: np.random.Generator) -> list[float]:
    """Stretches of speech, silence and in-between values, some long enough to need splitting."""
    probs: list[float] = []
    for _ in range(rng.integers(1, 12)):
        kind = rng.integers(0, 4)
        length = int(rng.integers(1, 60 if kind < 3 else 200))
        if kind == 0:
            probs += rng.uniform(0.0, 0.3, length).tolist()
        elif kind == 1:
            probs += rng.uniform(0.3, 0.6, length).tolist()
        else:
            probs += rng.uniform(0.45, 1.0, length).tolist()
    return probs


def random_options(rng: np.random.Generator) -> VadOptions:
    threshold = float(rng.uniform(0.4, 0.7))
    pad = int(rng.integers(0, 200))
    return VadOptions(
        threshold=threshold,
        exit_threshold=float(rng.uniform(0.2, threshold)),
        min_speech_ms=int(rng.integers(0, 500)),
        min_silence_ms=int(rng.integers(0, 900)),
        speech_pad_ms=pad,
        lookback_ms=int(rng.integers(0, 500)),
        max_segment_s=float(rng.uniform(1.0 + pad / 500, 4.0)),
        split_pause_ms=int(rng.integers(0, 300)),
    )


def test_segments_match_the_reference_on_random_probabilities() -> None:
    rng = np.random.default_rng(2024)
    splits = 0
    for case in range(400):
        probs = random_probabilities(rng)
        options = VadOptions(max_segment_s=float(rng.uniform(1.1, 3.0))) if case % 4 == 0 else random_options(rng)
        total = None if case % 3 else len(probs) * FRAME - int(rng.integers(0, FRAME))
        expected = reference_segments(probs, options, total)
        assert speech_segments(probs, options, total) == expected, (case, options)
        check_events(events_of(probs, options))
        limit = round(options.max_segment_s * RATE)
        assert all(end - start <= limit for start, end in expected)
        splits += sum(a[1] == b[0] for a, b in itertools.pairwise(expected))
    assert splits > 50  # many segments were long enough to be split


def test_segments_match_the_reference_on_speech(
    clip_probs: npt.NDArray[np.float32], vad: SileroVad, speak: Speak
) -> None:
    parts = [speak("this is a long sentence that goes on and on, with a comma here and there")]
    parts += [silence(0.2, 1), speak("and some more words after a short breath, one two three four five six")]
    long_speech = np.concatenate(parts * 3)  # about 25 s with short pauses only
    long_probs = vad.probabilities(long_speech)
    assert len(long_probs) * FRAME > 21 * RATE
    for probs in (clip_probs, long_probs):
        for options in (
            VadOptions(),
            VadOptions(min_silence_ms=100, speech_pad_ms=60),
            VadOptions(max_segment_s=2.0, split_pause_ms=64),
            VadOptions(max_segment_s=1.5, min_speech_ms=500, lookback_ms=0),
        ):
            expected = reference_segments(probs, options, len(probs) * FRAME - 100)
            assert speech_segments(probs, options, len(probs) * FRAME - 100) == expected
            assert expected
    long_segments = speech_segments(long_probs)
    assert len(long_segments) >= 2 and all(end - start <= 20 * RATE for start, end in long_segments)


# --- each rule on scripted probabilities ----------------------------------------------------------------------


def timeline(probs: Sequence[float], options: VadOptions | None = None) -> list[tuple[int, SegmentEvent]]:
    """(frame index at which it was emitted, event); flush events get index len(probs)."""
    segmenter = Segmenter(options)
    out = [(i, event) for i, p in enumerate(probs) for event in segmenter.push(p)]
    return out + [(len(probs), event) for event in segmenter.flush()]


PAD = 480
LOOKBACK = 4800


def test_onset_and_end_after_min_silence() -> None:
    probs = [LOW] * 10 + [HIGH] * 20 + [LOW] * 20
    start = 10 * FRAME - PAD
    assert timeline(probs) == [
        (10, SpeechStarted(start)),
        (45, SegmentEnded(start, 30 * FRAME + PAD, 0)),  # the 16th quiet frame makes 512 ms ≥ 500 ms
    ]


def test_a_shorter_pause_does_not_end_the_segment() -> None:
    probs = [HIGH] * 10 + [LOW] * 15 + [HIGH] * 10 + [LOW] * 16
    assert timeline(probs) == [(0, SpeechStarted(0)), (50, SegmentEnded(0, 35 * FRAME + PAD, 0))]


def test_hysteresis() -> None:
    assert timeline([MID] * 40) == []  # between the thresholds: never starts speech
    # Inside speech, in-between frames keep speaking: the pause starts at the first LOW frame.
    assert timeline([HIGH] * 10 + [MID] * 30 + [LOW] * 20)[1] == (55, SegmentEnded(0, 40 * FRAME + PAD, 0))
    # In a pause, in-between frames keep the pause going ...
    assert timeline([HIGH] * 10 + [LOW] * 5 + [MID] * 15)[1] == (25, SegmentEnded(0, 10 * FRAME + PAD, 0))
    # ... and only a frame at the threshold cancels it.
    probs = [HIGH] * 10 + [LOW] * 10 + [MID] * 3 + [0.5] + [HIGH] * 9 + [LOW] * 20
    assert timeline(probs)[1] == (48, SegmentEnded(0, 33 * FRAME + PAD, 0))


def test_too_little_speech_is_discarded() -> None:
    probs = [LOW] * 3 + [HIGH] * 7 + [LOW] * 20  # 224 ms of speech
    assert timeline(probs) == [(3, SpeechStarted(3 * FRAME - PAD)), (25, SpeechDiscarded(3 * FRAME - PAD))]
    probs = [LOW] * 3 + [HIGH] * 8 + [LOW] * 20  # 256 ms
    assert timeline(probs)[1] == (26, SegmentEnded(3 * FRAME - PAD, 11 * FRAME + PAD, 0))


def test_padding_is_clamped_to_zero_the_previous_segment_and_the_audio() -> None:
    assert timeline([HIGH] * 10 + [LOW] * 16)[0] == (0, SpeechStarted(0))
    options = VadOptions(speech_pad_ms=300, min_silence_ms=400)  # 13 quiet frames end a segment
    probs = [LOW] * 20 + [HIGH] * 10 + [LOW] * 13 + [HIGH] * 10 + [LOW] * 13
    first_end = 30 * FRAME + 4800
    assert [e for _, e in timeline(probs, options)] == [
        SpeechStarted(20 * FRAME - 4800),
        SegmentEnded(20 * FRAME - 4800, first_end, 20 * FRAME - 9600),
        SpeechStarted(first_end),  # 43 * FRAME - 4800 would overlap the first segment
        SegmentEnded(first_end, 53 * FRAME + 4800, first_end),
    ]
    # Padding longer than the pause that ends the segment stops at the audio seen so far.
    options = VadOptions(speech_pad_ms=600)
    assert timeline([HIGH] * 10 + [LOW] * 16, options)[1] == (25, SegmentEnded(0, 26 * FRAME, 0))
    # At the end of the audio, the end is clamped to the real length.
    segmenter = Segmenter()
    for p in [LOW] * 5 + [HIGH] * 20:
        segmenter.push(p)
    total = 25 * FRAME - 100
    assert segmenter.flush(total) == [SegmentEnded(5 * FRAME - PAD, total, 0)]


def test_lookback_sets_where_the_recogniser_audio_starts() -> None:
    probs = [LOW] * 100 + [HIGH] * 10 + [LOW] * 18 + [HIGH] * 10 + [LOW] * 16
    ends = [e for _, e in timeline(probs) if isinstance(e, SegmentEnded)]
    first_start, second_start = 100 * FRAME - PAD, 128 * FRAME - PAD
    assert ends == [
        SegmentEnded(first_start, 110 * FRAME + PAD, first_start - LOOKBACK),
        SegmentEnded(second_start, 138 * FRAME + PAD, second_start - LOOKBACK),
    ]
    no_lookback = VadOptions(lookback_ms=0)
    assert timeline(probs, no_lookback)[1][1] == SegmentEnded(first_start, 110 * FRAME + PAD, first_start)
    # The lookback never reaches back into the previous segment.
    probs = [LOW] * 100 + [HIGH] * 10 + [LOW] * 16 + [HIGH] * 10 + [LOW] * 16
    ends = [e for _, e in timeline(probs, VadOptions(lookback_ms=600)) if isinstance(e, SegmentEnded)]
    assert ends[1] == SegmentEnded(126 * FRAME - PAD, 136 * FRAME + PAD, 110 * FRAME + PAD)


TWO_SECONDS = VadOptions(max_segment_s=2.0)
"""32000 samples: a segment starting at 0 reaches the limit at frame 61 (the next frame would pass it)."""


def test_long_speech_is_split_in_the_middle_of_its_longest_pause() -> None:
    probs = [HIGH] * 10 + [LOW] * 4 + [HIGH] * 10 + [LOW] * 6 + [HIGH] * 40 + [LOW] * 16
    middle = (24 + 3) * FRAME
    assert timeline(probs, TWO_SECONDS) == [
        (0, SpeechStarted(0)),
        (61, SegmentEnded(0, middle, 0)),
        (61, SpeechStarted(middle)),  # immediately, at the split point
        (85, SegmentEnded(middle, 70 * FRAME + PAD, middle)),
    ]
    # Of equally long pauses, the later one; a pause shorter than 100 ms is no place to split.
    probs = [HIGH] * 10 + [LOW] * 5 + [HIGH] * 10 + [LOW] * 5 + [HIGH] * 10 + [LOW] * 3 + [HIGH] * 40
    assert timeline(probs, TWO_SECONDS)[1] == (61, SegmentEnded(0, (25 + 3) * FRAME, 0))


def test_long_speech_without_a_pause_is_cut_hard() -> None:
    probs = [HIGH] * 10 + [LOW] * 3 + [HIGH] * 150
    assert timeline(probs, TWO_SECONDS) == [
        (0, SpeechStarted(0)),
        (61, SegmentEnded(0, 62 * FRAME, 0)),
        (61, SpeechStarted(62 * FRAME)),
        (123, SegmentEnded(62 * FRAME, 124 * FRAME, 62 * FRAME)),
        (123, SpeechStarted(124 * FRAME)),
        (163, SegmentEnded(124 * FRAME, 163 * FRAME, 124 * FRAME)),  # flush
    ]


def test_a_long_segment_reaching_the_limit_in_a_pause_ends_there() -> None:
    probs = [HIGH] * 56 + [LOW] * 14 + [HIGH] * 20 + [LOW] * 16
    assert timeline(probs, TWO_SECONDS) == [
        (0, SpeechStarted(0)),
        (61, SegmentEnded(0, 56 * FRAME + PAD, 0)),
        (70, SpeechStarted(70 * FRAME - PAD)),
        (105, SegmentEnded(70 * FRAME - PAD, 90 * FRAME + PAD, 70 * FRAME - PAD - LOOKBACK)),
    ]


def test_flush_closes_the_open_segment() -> None:
    assert timeline([LOW] * 5 + [HIGH] * 20)[-1] == (25, SegmentEnded(5 * FRAME - PAD, 25 * FRAME, 0))
    # In a pause at the end: the end is the pause start plus padding.
    assert timeline([HIGH] * 20 + [LOW] * 5)[-1] == (25, SegmentEnded(0, 20 * FRAME + PAD, 0))
    assert timeline([HIGH] * 5)[-1] == (5, SpeechDiscarded(0))
    segmenter = Segmenter()
    assert segmenter.flush() == []
    segmenter.push(HIGH)
    segmenter.reset()
    assert segmenter.flush() == []
    assert segmenter.push(HIGH) == [SpeechStarted(0)]


def test_options_are_validated() -> None:
    VadOptions()
    with pytest.raises(ValueError, match="threshold"):
        VadOptions(threshold=1.5)
    with pytest.raises(ValueError, match="exit_threshold"):
        VadOptions(exit_threshold=0.6)
    with pytest.raises(ValueError, match="min_silence_ms"):
        VadOptions(min_silence_ms=-1)
    with pytest.raises(ValueError, match="max_segment_s"):
        VadOptions(max_segment_s=0.5)
    with pytest.raises(ValueError, match="max_segment_s"):
        VadOptions(max_segment_s=float("nan"))
    with pytest.raises(ValueError, match="min_speech_ms"):
        VadOptions(min_speech_ms=3000, max_segment_s=2.0)


# --- real speech ----------------------------------------------------------------------------------------------


def true_bounds(samples: npt.NDArray[np.float32]) -> tuple[int, int]:
    """First and last sample of the 10 ms windows louder than -40 dB below the peak."""
    window = RATE // 100
    frames = samples[: len(samples) // window * window].reshape(-1, window)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > np.abs(samples).max() * 0.01)
    return int(loud[0]) * window, (int(loud[-1]) + 1) * window


def test_espeak_speech_is_found_within_150_ms(vad: SileroVad, speak: Speak) -> None:
    first = speak("please send the report to the team before noon")
    second = speak("thank you very much")
    lead, gap, tail = silence(1.0, 1), silence(1.5, 2), silence(1.0, 3)
    audio = np.concatenate([lead, first, gap, second, tail])
    truth = []
    for offset, phrase in ((len(lead), first), (len(lead) + len(first) + len(gap), second)):
        start, end = true_bounds(phrase)
        truth.append((offset + start, offset + end))
    segments = speech_segments(vad.probabilities(audio), VadOptions(), len(audio))
    assert len(segments) == 2
    for (start, end), (true_start, true_end) in zip(segments, truth, strict=True):
        assert abs(start - true_start) <= 0.15 * RATE, (start, true_start)
        assert abs(end - true_end) <= 0.15 * RATE, (end, true_end)
