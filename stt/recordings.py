"""Each utterance's audio on disk before it is transcribed, with a retention rule."""

from __future__ import annotations

import logging
import threading
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stt import paths

log = logging.getLogger("perch.recordings")

FAILED_SUFFIX = "-failed.wav"


def recordings_dir() -> Path:
    """Where utterance recordings live: `<user data>/recordings`."""
    return paths.data_dir() / "recordings"


class RecordingWriter:
    """A 16 kHz mono 16-bit WAV written block by block; the header is valid after every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wave = wave.open(str(path), "wb")  # noqa: SIM115 - closed by close()
        self._wave.setnchannels(1)
        self._wave.setsampwidth(2)
        self._wave.setframerate(16000)
        self.samples = 0

    def write(self, samples: npt.NDArray[np.float32]) -> None:
        """Append float samples in [-1, 1]; the stdlib writer patches the header on each write."""
        if len(samples):
            pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
            self._wave.writeframes(pcm.tobytes())
            self.samples += len(samples)

    def close(self) -> None:
        """Finish the file."""
        self._wave.close()


class RecordingStore:
    """Keeps the last `keep` recordings (0: none once transcribed); failed ones are always kept."""

    def __init__(self, folder: Path | None = None, keep: int = 20) -> None:
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, got {keep}")
        self.folder = folder or recordings_dir()
        self.keep = keep
        self._open: set[Path] = set()
        self._lock = threading.Lock()

    def create(self, utterance: int) -> RecordingWriter:
        """A writer for a new utterance."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{time.monotonic_ns() % 1_000_000:06d}-{utterance}.wav"
        with self._lock:
            self._open.add(path)
        return RecordingWriter(path)

    def finished(self, path: Path, ok: bool) -> Path | None:
        """Apply retention after an utterance; a failed one is renamed and kept. Returns where it lies, if kept."""
        with self._lock:
            self._open.discard(path)
        if not path.exists():
            return None
        if not ok:
            kept = path.with_name(path.stem + FAILED_SUFFIX)
            path.rename(kept)
            log.warning("transcription failed; the audio is kept at %s", kept)
            return kept
        self.prune()
        return path if path.exists() else None

    def discard(self, path: Path) -> None:
        """Remove a recording nobody wants (a cancelled utterance)."""
        with self._lock:
            self._open.discard(path)
        path.unlink(missing_ok=True)

    def prune(self) -> None:
        """Delete the oldest successful recordings beyond `keep`."""
        with self._lock:
            busy = set(self._open)
        done = sorted(
            (p for p in self.folder.glob("*.wav") if not p.name.endswith(FAILED_SUFFIX) and p not in busy),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for old in done[: max(0, len(done) - self.keep)]:
            old.unlink(missing_ok=True)

    def failed(self) -> list[Path]:
        """Recordings whose transcription failed, oldest first."""
        return sorted(self.folder.glob(f"*{FAILED_SUFFIX}"))
