"""Errors the engine raises; each message says what to do next."""

from __future__ import annotations


class PerchError(Exception):
    """Base of every error the engine raises on purpose."""


class ModelError(PerchError):
    """A model could not be found, read or used."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model or one of its files is not on disk."""


class ModelFileError(ModelError, ValueError):
    """A model file is present but corrupt, truncated or inconsistent."""


class ContractError(ModelFileError):
    """A model file's inputs or outputs do not match the Parakeet-TDT contract."""


class DownloadError(ModelError, OSError):
    """A model download failed or cannot run (offline, hub unreachable)."""


class AudioError(PerchError, ValueError):
    """Audio could not be read or is not usable."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """An audio file does not exist."""


class DeviceError(PerchError, RuntimeError):
    """The requested inference device cannot be used."""


class NumericError(PerchError, FloatingPointError):
    """A stage produced NaN or Inf values."""


class MicrophoneError(AudioError):
    """No usable input device, or the device failed while capturing."""


class TranscriptionError(PerchError, RuntimeError):
    """Recognition of captured audio failed; the audio is kept on disk."""
