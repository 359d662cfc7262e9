"""NeMo-compatible (≥ 2.5) normalised log-mel features computed with numpy."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from stt.errors import AudioError

SAMPLE_RATE = 16000
HOP_LENGTH = 160
WIN_LENGTH = 400
N_FFT = 512
PREEMPHASIS = 0.97
LOG_GUARD = 2.0**-24
NORM_EPS = 1e-5

_PAD = N_FFT // 2
# The window sits centred in the FFT frame; only its 400 non-zero samples are read, which leaves the
# power spectrum unchanged (a circular shift only changes the phase).
_WIN_OFFSET = (N_FFT - WIN_LENGTH) // 2

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_MEL_F_SP = 200.0 / 3.0
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Convert frequencies in Hz to the Slaney mel scale."""
    linear = hz / _MEL_F_SP
    log = _MEL_MIN_LOG_MEL + np.log(np.maximum(hz, _MEL_MIN_LOG_HZ) / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return np.where(hz >= _MEL_MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Convert Slaney mel values back to Hz."""
    linear = mel * _MEL_F_SP
    log = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (np.maximum(mel, _MEL_MIN_LOG_MEL) - _MEL_MIN_LOG_MEL))
    return np.where(mel >= _MEL_MIN_LOG_MEL, log, linear)


@lru_cache(maxsize=8)
def mel_filterbank(n_mels: int = 128) -> npt.NDArray[np.float32]:
    """Slaney-normalised triangular mel filterbank, shape (N_FFT//2 + 1, n_mels), read-only."""
    if n_mels < 1:
        raise ValueError(f"n_mels must be at least 1, got {n_mels}")
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges_mel = np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2)
    edges_hz = _mel_to_hz(edges_mel)
    widths = np.diff(edges_hz)
    # distance[i, k]: how far edge i lies above FFT bin k, in Hz.
    distance = edges_hz[:, None] - fft_hz[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Area normalisation: each filter integrates to the same value whatever its width.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    bank = np.ascontiguousarray(weights.T, dtype=np.float32)
    bank.flags.writeable = False
    return bank


@lru_cache(maxsize=1)
def _window() -> npt.NDArray[np.float32]:
    """Symmetric Hann window of WIN_LENGTH samples."""
    window = np.hanning(WIN_LENGTH).astype(np.float32)
    window.flags.writeable = False
    return window


def _as_mono(waveform: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Return the waveform as a 1-D float32 array or raise AudioError."""
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(f"log_mel expects a 1-D mono waveform, got shape {samples.shape}; downmix it first")
    return samples


def _log_mel_frames(samples: npt.NDArray[np.float32], n_mels: int) -> npt.NDArray[np.float32]:
    """Un-normalised log-mel spectrogram, shape (N//HOP_LENGTH + 1, n_mels)."""
    n = samples.shape[0]
    n_frames = n // HOP_LENGTH + 1
    padded = np.zeros(n + 2 * _PAD, dtype=np.float32)
    if n:
        padded[_PAD] = samples[0]
        np.subtract(samples[1:], np.float32(PREEMPHASIS) * samples[:-1], out=padded[_PAD + 1 : _PAD + n])
    tail = padded[_WIN_OFFSET:]
    frames = as_strided(
        tail, shape=(n_frames, WIN_LENGTH), strides=(HOP_LENGTH * tail.strides[0], tail.strides[0]), writeable=False
    )
    spectrum = np.fft.rfft(frames * _window(), n=N_FFT)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    mel = power @ mel_filterbank(n_mels)
    mel += np.float32(LOG_GUARD)
    return np.log(mel, out=mel)


def _normalise(frames: npt.NDArray[np.float32], valid: int) -> npt.NDArray[np.float32]:
    """Per-feature normalisation over the first `valid` frames; returns (n_mels, T) with padded frames 0."""
    out = np.zeros((frames.shape[1], frames.shape[0]), dtype=np.float32)
    if valid == 0:
        return out
    head = frames[:valid]
    mean = head.mean(axis=0, dtype=np.float64)
    centred = head - mean.astype(np.float32)
    # Unbiased std, which NeMo defines as 0 for a single frame; the epsilon is added to the std.
    std = np.zeros_like(mean)
    if valid > 1:
        std = np.sqrt(np.square(centred).sum(axis=0, dtype=np.float64) / (valid - 1))
    centred *= (1.0 / (std + NORM_EPS)).astype(np.float32)
    out[:, :valid] = centred.T
    return out


def log_mel(waveform: npt.NDArray[np.float32], n_mels: int = 128) -> tuple[npt.NDArray[np.float32], int]:
    """Normalised log-mel features (n_mels, N//160 + 1) of one mono 16 kHz waveform and the valid length."""
    samples = _as_mono(waveform)
    valid = samples.shape[0] // HOP_LENGTH
    return _normalise(_log_mel_frames(samples, n_mels), valid), valid


def batch_log_mel(
    waveforms: npt.NDArray[np.float32], lengths: npt.NDArray[np.int64], n_mels: int = 128
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Features [B, n_mels, N//160 + 1] and valid lengths of a zero-padded batch with per-row lengths."""
    batch = np.asarray(waveforms, dtype=np.float32)
    sizes = np.asarray(lengths, dtype=np.int64)
    if batch.ndim != 2:
        raise AudioError(f"batch_log_mel expects waveforms of shape [B, N], got {batch.shape}")
    if sizes.shape != (batch.shape[0],):
        raise AudioError(f"lengths must have shape ({batch.shape[0]},) to match the batch, got {sizes.shape}")
    if sizes.size and (sizes.min() < 0 or sizes.max() > batch.shape[1]):
        raise AudioError(f"every length must lie in [0, {batch.shape[1]}], got {sizes.tolist()}")
    n_frames = batch.shape[1] // HOP_LENGTH + 1
    out = np.zeros((batch.shape[0], n_mels, n_frames), dtype=np.float32)
    # Row by row: samples past a row's length never reach its features, and no work goes to padding.
    for row, size in enumerate(sizes.tolist()):
        features, _ = log_mel(batch[row, :size], n_mels)
        out[row, :, : features.shape[1]] = features
    return out, sizes // HOP_LENGTH
