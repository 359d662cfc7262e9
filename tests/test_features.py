"""Tests for the NeMo-compatible log-mel frontend."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from stt.errors import AudioError
from stt.features import (
    HOP_LENGTH,
    SAMPLE_RATE,
    _log_mel_frames,
    batch_log_mel,
    log_mel,
    mel_filterbank,
)

LENGTHS = [0, 1, 159, 160, 161, 12345, 16000, 16001, 480000]
ONNX_ASR_ATOL = 5e-4


def _noise(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Gaussian noise at amplitude 0.1."""
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def _speech_like(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Noise under a syllable-rate envelope with quiet gaps, like speech."""
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.02 + np.sin(2 * np.pi * 2.5 * t) ** 4
    return (np.random.default_rng(seed).standard_normal(n) * 0.1 * envelope).astype(np.float32)


def _sine(freq: float, n: int) -> npt.NDArray[np.float32]:
    """A 0.5-amplitude sine at `freq` Hz."""
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)).astype(np.float32)


@pytest.mark.parametrize("signal", [_noise, _speech_like], ids=["noise", "speech_like"])
@pytest.mark.parametrize("n", LENGTHS)
def test_matches_onnx_asr(n: int, signal: object) -> None:
    numpy_preprocessor = pytest.importorskip("onnx_asr.preprocessors.numpy_preprocessor")
    reference = numpy_preprocessor.NemoPreprocessorNumpy("nemo128")
    assert callable(signal)
    x = signal(n, seed=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected, expected_lens = reference(x[None].copy(), np.array([n], dtype=np.int64))
    features, valid = log_mel(x)
    assert features.shape == expected.shape[1:]
    assert valid == int(expected_lens[0])
    # onnx-asr divides by n - 1 = 0 for a single valid frame; NeMo defines that std as 0, giving 0.
    finite = np.isfinite(expected[0])
    assert np.all(features[~finite] == 0)
    np.testing.assert_allclose(features[finite], expected[0][finite], rtol=0, atol=ONNX_ASR_ATOL)


def test_filterbank_matches_onnx_asr() -> None:
    resources = pytest.importorskip("importlib.resources")
    preprocessors = pytest.importorskip("onnx_asr.preprocessors")
    with (
        resources.as_file(resources.files(preprocessors).joinpath("data", "fbanks.npz")) as file,
        np.load(file) as data,
    ):
        expected = data["nemo128"]
    np.testing.assert_allclose(mel_filterbank(128), expected, rtol=0, atol=1e-7)
    assert mel_filterbank(80).shape == (257, 80)
    assert mel_filterbank(128) is mel_filterbank(128)


@pytest.mark.parametrize(("n", "frames", "valid"), [(0, 1, 0), (1, 1, 0), (159, 1, 0), (160, 2, 1), (161, 2, 1)])
def test_short_inputs_shapes(n: int, frames: int, valid: int) -> None:
    features, length = log_mel(_noise(n, seed=3))
    assert features.shape == (128, frames)
    assert features.dtype == np.float32
    assert features.flags.c_contiguous
    assert length == valid
    # Nothing is normalised from zero frames, and one frame normalises to exactly 0.
    assert np.all(features == 0)


@pytest.mark.parametrize("n", [16000, 16001, 16159, 12345])
def test_padded_frames_are_zero(n: int) -> None:
    features, valid = log_mel(_noise(n, seed=4), n_mels=80)
    assert features.shape == (80, n // HOP_LENGTH + 1)
    assert valid == n // HOP_LENGTH
    assert np.all(features[:, valid:] == 0)
    assert np.all(np.isfinite(features))
    # Per-feature normalisation: zero mean, unit (unbiased) std over the valid frames.
    np.testing.assert_allclose(features[:, :valid].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(features[:, :valid].std(axis=1, ddof=1), 1, atol=1e-3)


def test_batch_matches_rows() -> None:
    n = 16000
    lengths = np.array([n, 0, 12345, 159, 161, 8000], dtype=np.int64)
    # Samples past each row's length are garbage and must be ignored.
    batch = np.random.default_rng(5).uniform(-1, 1, (len(lengths), n)).astype(np.float32)
    features, valid = batch_log_mel(batch, lengths)
    assert features.shape == (len(lengths), 128, n // HOP_LENGTH + 1)
    assert features.dtype == np.float32
    assert valid.dtype == np.int64
    np.testing.assert_array_equal(valid, lengths // HOP_LENGTH)
    for row, size in enumerate(lengths):
        expected, _ = log_mel(batch[row, :size])
        np.testing.assert_array_equal(features[row, :, : expected.shape[1]], expected)
        assert np.all(features[row, :, expected.shape[1] :] == 0)


def test_batch_rejects_bad_lengths() -> None:
    batch = np.zeros((2, 320), dtype=np.float32)
    with pytest.raises(AudioError, match="length"):
        batch_log_mel(batch, np.array([320, 321], dtype=np.int64))
    with pytest.raises(AudioError, match="shape"):
        batch_log_mel(batch, np.array([320], dtype=np.int64))
    with pytest.raises(AudioError, match=r"\[B, N\]"):
        batch_log_mel(batch[0], np.array([320], dtype=np.int64))


def test_log_mel_rejects_multichannel() -> None:
    with pytest.raises(AudioError, match="mono"):
        log_mel(np.zeros((320, 2), dtype=np.float32))


@pytest.mark.parametrize("value", [0.0, 0.5, -1.0])
def test_constant_input_is_finite(value: float) -> None:
    features, valid = log_mel(np.full(16000, value, dtype=np.float32))
    assert valid == 100
    assert np.all(np.isfinite(features))


@pytest.mark.parametrize("mel_bin", [60, 80, 100, 120])
def test_sine_lands_in_its_mel_bin(mel_bin: int) -> None:
    # Slaney mel scale, written out independently: linear below 1 kHz, log above.
    def to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.where(mel < 15, mel * 200 / 3, 1000 * np.exp((mel - 15) * np.log(6.4) / 27))

    top = 15 + np.log(8000 / 1000) / (np.log(6.4) / 27)
    centres = to_hz(np.linspace(0, top, 130))[1:-1]
    # Filters of the lowest bins are narrower than one FFT bin, so pick mid/high bins.
    freq = float(centres[mel_bin])
    spectrogram = _log_mel_frames(_sine(freq, SAMPLE_RATE), 128)
    assert int(spectrogram[5:-5].mean(axis=0).argmax()) == mel_bin
