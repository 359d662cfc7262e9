"""Reading audio files and turning them into mono 16 kHz float32 waveforms."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from stt.errors import AudioError, AudioFileNotFoundError
from stt.nativelog import stderr_to_log

TARGET_RATE = 16000

SUPPORTED_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF and the other formats libsndfile reads"


def _check_file(file: Path) -> None:
    if not file.exists():
        raise AudioFileNotFoundError(f"Audio file not found: {file}. Check the path and try again.")
    if file.is_dir():
        raise AudioError(f"{file} is a directory, not an audio file. Give the path of a file inside it.")
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise AudioError(f"Cannot read {file}: {exc.strerror or exc}. Check that you may read it.") from exc
    if size == 0:
        raise AudioError(f"Audio file {file} is empty (0 bytes). Record or export it again.")


@contextlib.contextmanager
def _decode_errors(file: Path) -> Iterator[None]:
    """Turn soundfile's failures into AudioError naming the file and the supported formats."""
    try:
        yield
    except soundfile.LibsndfileError as exc:
        reason = str(exc.error_string).rstrip(".")
        if "not a regular file" in reason and file.is_file():  # libsndfile's words when no decoder knows it
            reason = "no decoder recognises its contents"
        raise AudioError(
            f"Cannot decode {file}: the file is corrupt or not in a supported format ({reason}). "
            f"Supported formats: {SUPPORTED_FORMATS}."
        ) from exc
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"Cannot decode {file}: {exc}. Supported formats: {SUPPORTED_FORMATS}.") from exc
    except OSError as exc:
        raise AudioError(f"Cannot read {file}: {exc.strerror or exc}. Check that you may read it.") from exc


@contextlib.contextmanager
def open_audio(path: str | os.PathLike[str]) -> Iterator[soundfile.SoundFile]:
    """Open an audio file for block reads; every failure while open becomes an AudioError."""
    file = Path(path)
    _check_file(file)
    with _decode_errors(file):
        with stderr_to_log(f"decoding {file.name}"):  # the MP3 decoder prints its resync notes
            handle = soundfile.SoundFile(file)
        with handle:
            yield handle


def read_block(handle: soundfile.SoundFile, frames: int = -1) -> npt.NDArray[np.float32]:
    """Up to `frames` frames (all that are left with -1) as float32 [frames, channels]."""
    with stderr_to_log(f"decoding {Path(handle.name).name}"):
        block: npt.NDArray[np.float32] = handle.read(frames, dtype="float32", always_2d=True)
    return block


def read_audio(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float32], int]:
    """Read an audio file into float32 samples [frames, channels] and return them with its sample rate."""
    with open_audio(path) as handle:
        data = read_block(handle)
        rate = handle.samplerate
    samples: npt.NDArray[np.float32] = np.ascontiguousarray(data, dtype=np.float32)
    return samples, int(rate)


def read_audio_bytes(data: bytes, name: str = "upload") -> tuple[npt.NDArray[np.float32], int]:
    """Decode an audio file held in memory (it is never written to disk): float32 [frames, channels] and its rate;
    `name` only appears in messages."""
    if not data:
        raise AudioError(f"Audio file {name} is empty (0 bytes). Record or export it again.")
    with _decode_errors(Path(name)), stderr_to_log(f"decoding {name}"):
        data_2d, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    samples: npt.NDArray[np.float32] = np.ascontiguousarray(data_2d, dtype=np.float32)
    return samples, int(rate)


def to_mono_16k(samples: npt.NDArray[np.floating], sample_rate: int) -> npt.NDArray[np.float32]:
    """Downmix [frames] or [frames, channels] samples to mono and resample them to 16 kHz float32."""
    array = np.asarray(samples)
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioError(
            f"Expected floating-point samples in [-1, 1], got dtype {array.dtype}; "
            "scale integer PCM to float first (e.g. divide int16 by 32768)."
        )
    if array.ndim not in (1, 2):
        raise AudioError(
            f"Expected samples of shape [frames] or [frames, channels], got {array.ndim}-D shape {array.shape}."
        )
    if array.ndim == 2 and array.shape[1] == 0:
        raise AudioError("The audio has no channels; expected shape [frames, channels] with channels >= 1.")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AudioError(f"The sample rate must be a positive whole number of Hz, got {sample_rate}.")
    if not np.isfinite(array).all():
        raise AudioError("The audio contains NaN or infinite samples; it cannot be transcribed.")
    mono = array.mean(axis=1) if array.ndim == 2 else array
    mono = np.asarray(mono, dtype=np.float32)
    if int(sample_rate) != TARGET_RATE and mono.size:
        mono = soxr.resample(mono, int(sample_rate), TARGET_RATE, quality="HQ")
    result: npt.NDArray[np.float32] = np.ascontiguousarray(mono, dtype=np.float32)
    return result


def load_audio(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """Read an audio file as a mono 16 kHz float32 waveform."""
    samples, rate = read_audio(path)
    return to_mono_16k(samples, rate)


def write_wav(path: str | os.PathLike[str], samples_16k: npt.NDArray[np.float32]) -> None:
    """Write a mono 16 kHz waveform as a 32-bit float WAV file, creating parent folders."""
    samples = np.asarray(samples_16k, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(f"write_wav expects a 1-D mono waveform, got shape {samples.shape}.")
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(file, samples, TARGET_RATE, subtype="FLOAT", format="WAV")
    except (soundfile.SoundFileError, OSError) as exc:
        raise AudioError(f"Cannot write {file}: {exc}. Check the folder exists and is writable.") from exc
