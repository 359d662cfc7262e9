"""Our tokens equal onnx-asr's on random-weight models of the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

from .modelgen import ModelDims, build_model

onnx_asr = pytest.importorskip("onnx_asr")
from onnx_asr.preprocessors.numpy_preprocessor import NemoPreprocessorNumpy  # noqa: E402


def clip(seed: int, seconds: float) -> npt.NDArray[np.float32]:
    """Noise and tones under a syllable-rate envelope, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 6) * t), 0, None) ** 2
    tone = np.sin(2 * np.pi * rng.uniform(100, 400) * t) + rng.normal(0, 0.5, t.size)
    return (rng.uniform(0.05, 0.5) * envelope * tone).astype(np.float32)


CLIPS = [(seed, seconds) for seed, seconds in enumerate([0.7, 1.9, 3.3, 5.0, 8.2, 12.5])]


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("random-tdt"), ModelDims(), seed=7)


def peer_tokens(model: Path, quantization: str, audio: npt.NDArray[np.float32], recognizer: Recognizer) -> list[int]:
    peer = onnx_asr.load_model(
        "nemo-conformer-tdt",
        model,
        quantization="int8" if quantization == "int8" else None,
        providers=["CPUExecutionProvider"],
    ).with_timestamps()
    result = peer.recognize(audio, sample_rate=16000)
    return [recognizer.vocab.pieces.index(t.replace(" ", "\u2581")) for t in result.tokens or []]


def longest_zero_duration_run(starts: list[float], durations: list[float]) -> int:
    best = run = 0
    for i, duration in enumerate(durations):
        run = run + 1 if duration == 0 and i and starts[i] == starts[i - 1] else (1 if duration == 0 else 0)
        best = max(best, run)
    return best


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_tokens_equal_onnx_asr_on_identical_features(random_model: Path, quantization: str) -> None:
    recognizer = Recognizer(ModelFiles.locate(random_model, quantization), RuntimeOptions(device="cpu"))  # type: ignore[arg-type]
    preprocess = NemoPreprocessorNumpy("nemo128")
    longest_run, emitted = 0, 0
    for seed, seconds in CLIPS:
        audio = clip(seed, seconds)
        features, lengths = preprocess(audio[None], np.array([audio.size], dtype=np.int64))
        ours = recognizer.recognize_features(features[0], int(lengths[0]))
        assert ours.token_ids == peer_tokens(random_model, quantization, audio, recognizer), (seed, seconds)
        emitted += len(ours.token_ids)
        longest_run = max(longest_run, longest_zero_duration_run(ours.token_starts, ours.token_durations))
    assert emitted > 50
    assert longest_run >= 10  # the ten-symbols-per-frame rule was exercised


def test_fp32_end_to_end_matches_onnx_asr(random_model: Path) -> None:
    recognizer = Recognizer(ModelFiles.locate(random_model, "fp32"), RuntimeOptions(device="cpu"))
    agreed = 0
    for seed, seconds in CLIPS:
        audio = clip(seed, seconds)
        agreed += recognizer.transcribe(audio).token_ids == peer_tokens(random_model, "fp32", audio, recognizer)
    # Our features differ from onnx-asr's by < 1e-4; a chaotic random model may flip a token on a clip or two.
    assert agreed >= len(CLIPS) - 1
