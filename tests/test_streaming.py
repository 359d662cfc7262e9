"""Buffered streaming: equal to offline with whole-clip context; every frame decoded once otherwise."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stt.decoding import StepTrace
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.streaming import FRAME_SAMPLES, PRESETS, StreamingDecoder, StreamingPreset

from .conftest import Speak
from .modelgen import ModelDims, build_model, synthetic_clip

WHOLE = 1000.0  # seconds of context: more than any clip here


@pytest.fixture(scope="module")
def random_recognizer(tmp_path_factory: pytest.TempPathFactory) -> Recognizer:
    folder = build_model(tmp_path_factory.mktemp("stream-tdt"), ModelDims(), seed=11)
    return Recognizer(ModelFiles.locate(folder, "fp32"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def words_recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


def stream_all(
    recognizer: Recognizer,
    audio: npt.NDArray[np.float32],
    preset: StreamingPreset,
    block: int | None = None,
    trace: list[StepTrace] | None = None,
) -> StreamingDecoder:
    """Feed in blocks (all at once when None), stepping one chunk at a time, then finish."""
    stream = StreamingDecoder(recognizer, preset, trace=trace.append if trace is not None else None)
    if block is None:
        stream.feed(audio)
        stream.end_input()
        while stream.step(catch_up=False):
            pass
    else:
        for i in range(0, len(audio), block):
            stream.feed(audio[i : i + block])
            while stream.step(catch_up=False):
                pass
    stream.finish()
    return stream


@pytest.mark.parametrize("chunk_s", [0.08, 0.25, 0.5, 1.0])
def test_whole_clip_context_gives_offline_tokens(random_recognizer: Recognizer, chunk_s: float) -> None:
    preset = StreamingPreset("whole", WHOLE, chunk_s, WHOLE)
    emitted = 0
    for seed, kind in enumerate(["mixture", "am_noise", "am_sine", "mixture"]):
        audio = synthetic_clip(kind, 3.0 + seed * 1.7, seed=seed)
        offline = random_recognizer.transcribe(audio)
        stream = stream_all(random_recognizer, audio, preset)
        assert stream.hypothesis.ids == offline.token_ids, (kind, seed)
        starts = [f * random_recognizer.frame_seconds for f in stream.hypothesis.frames]
        assert starts == pytest.approx(offline.token_starts)
        assert len(stream.steps) > 3  # the state really was carried over several chunks
        emitted += len(offline.token_ids)
    assert emitted > 100


def test_whole_clip_context_words_model(words_recognizer: Recognizer, speak: Speak) -> None:
    audio = speak("hello world, seven three five. yes no stop go left right up down")
    offline = words_recognizer.transcribe(audio)
    stream = stream_all(words_recognizer, audio, StreamingPreset("whole", WHOLE, 0.25, WHOLE))
    assert stream.hypothesis.ids == offline.token_ids
    assert stream.text().text == offline.text == "hello world seven three five yes no stop go left right up down"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_frame_decoded_once_with_finite_context(random_recognizer: Recognizer, name: str) -> None:
    preset = PRESETS[name]
    audio = synthetic_clip("mixture", 14.3, seed=5)
    trace: list[StepTrace] = []
    stream = stream_all(random_recognizer, audio, preset, block=160, trace=trace)
    # The chunks tile the stream's frames: no gap, no overlap.
    total = -(-len(audio) // FRAME_SAMPLES)
    ranges = [(s.first_frame, s.last_frame) for s in stream.steps]
    assert ranges[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert total - 1 <= ranges[-1][1] <= total
    assert all(s.last_frame - s.first_frame == preset.chunk for s in stream.steps[:-1])
    # The decoder walks the frames by TDT's rules across chunk boundaries: each step moves by its
    # duration (a blank at least one frame; ten tokens on a frame then one frame), never back.
    frames = [t.frame for t in trace]
    assert frames == sorted(frames)
    on_frame = 0
    for previous, current in itertools.pairwise(trace):
        blank = previous.token == random_recognizer.vocab.blank_id
        expected = max(previous.duration, 1) if blank else previous.duration
        if not blank and previous.duration == 0:
            on_frame += 1
            if on_frame >= 10:
                expected, on_frame = 1, 0
        else:
            on_frame = 0
        assert current.frame - previous.frame == expected
    assert trace[0].frame == 0
    assert trace[-1].frame >= ranges[-1][1] - 5


def test_streaming_equals_offline_decode_of_the_stitched_chunks(random_recognizer: Recognizer) -> None:
    """Decoding chunk by chunk with carried state equals one decode over the chunks' encoder frames."""
    preset = PRESETS["low"]
    audio = synthetic_clip("mixture", 12.1, seed=3)
    stream = stream_all(random_recognizer, audio, preset, block=480)
    pieces = []
    for step in stream.steps:
        end = len(audio) if step.final else (step.last_frame + preset.right) * FRAME_SAMPLES
        encoded, _ = random_recognizer.encode(audio[step.window_start_frame * FRAME_SAMPLES : end])
        first = step.first_frame - step.window_start_frame
        pieces.append(encoded[:, first : first + step.last_frame - step.first_frame])
    stitched = np.concatenate(pieces, axis=1)
    hyp, _ = random_recognizer.decode_range(stitched, 0, stitched.shape[1], None)
    assert hyp.ids == stream.hypothesis.ids
    assert hyp.frames == stream.hypothesis.frames
    assert hyp.durations == stream.hypothesis.durations
    assert len(hyp.ids) > 20


def test_presets_follow_the_seed_numbers() -> None:
    assert [(p.left, p.chunk, p.right) for p in PRESETS.values()] == [(25, 3, 3), (12, 6, 3), (62, 6, 6), (125, 12, 12)]
    assert PRESETS["low"].latency_s == pytest.approx(0.48)


def test_words_model_streams_right_with_every_preset(words_recognizer: Recognizer, speak: Speak) -> None:
    phrase = "seven three five nine. hello world, left right up down zero one two"
    audio = speak(phrase)
    for preset in PRESETS.values():
        stream = stream_all(words_recognizer, audio, preset, block=160)
        assert stream.text().text == "seven three five nine hello world left right up down zero one two"


def test_catch_up_decodes_every_pending_chunk_in_one_pass(words_recognizer: Recognizer, speak: Speak) -> None:
    audio = speak("one two three four five six")
    stream = StreamingDecoder(words_recognizer, PRESETS["low"])
    stream.feed(audio)
    step = stream.step()
    assert step is not None
    assert step.last_frame - step.first_frame > PRESETS["low"].chunk
    assert not stream.ready()
    stream.finish()
    assert stream.text().text == words_recognizer.transcribe(audio).text


def test_stable_prefix_excludes_the_last_word(words_recognizer: Recognizer, speak: Speak) -> None:
    audio = speak("hello world seven three")
    stream = StreamingDecoder(words_recognizer, PRESETS["low"])
    stream.feed(audio[: len(audio) * 3 // 4])
    stream.step()
    partial = stream.text()
    assert partial.stable_chars < len(partial.text)
    assert partial.text[: partial.stable_chars] == partial.text.rsplit(" ", 1)[0]
    with pytest.raises(RuntimeError):
        stream.finish()
        stream.feed(audio)


def test_old_audio_is_released(random_recognizer: Recognizer) -> None:
    preset = PRESETS["low"]
    stream = StreamingDecoder(random_recognizer, preset)
    audio = synthetic_clip("noise", 20.0, seed=1)
    for i in range(0, len(audio), 1600):
        stream.feed(audio[i : i + 1600])
        stream.step()
    held = stream._audio.size + sum(b.size for b in stream._incoming)
    assert held <= preset.window_samples + 2 * preset.chunk * FRAME_SAMPLES + 1600
