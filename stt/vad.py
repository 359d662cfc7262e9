"""Silero voice-activity model: one speech probability per 32 ms frame of 16 kHz audio, on one CPU thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.errors import ModelFileError
from stt.resources import vad_model_path
from stt.runtime import CPU, ORT_LOG_ERROR
from stt.segmenter import (
    FRAME,
    SAMPLE_RATE,
    SegmentEnded,
    Segmenter,
    SegmentEvent,
    SpeechDiscarded,
    SpeechStarted,
    VadOptions,
    speech_segments,
)

__all__ = [
    "CONTEXT",
    "FRAME",
    "SAMPLE_RATE",
    "SegmentEnded",
    "SegmentEvent",
    "Segmenter",
    "SileroVad",
    "SpeechDiscarded",
    "SpeechStarted",
    "VadOptions",
    "speech_segments",
]

CONTEXT = 64
"""Samples of the previous frame fed again in front of each frame."""
STATE_SHAPE = (1, 1, 128)
MAX_BATCH = 512
"""Frames the sequence model takes in one call."""
_INPUTS = {"input": "tensor(float)", "h": "tensor(float)", "c": "tensor(float)"}
_OUTPUTS = {"speech_probs": "tensor(float)", "hn": "tensor(float)", "cn": "tensor(float)"}
_REINSTALL = "the file ships with Perch, so reinstall Perch to restore it"


def _session(path: Path) -> ort.InferenceSession:
    """Open the model on the CPU with one thread, and check that it is the Silero sequence VAD."""
    if not path.is_file():
        raise ModelFileError(f"the voice-activity model {path} is missing; {_REINSTALL}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = ORT_LOG_ERROR
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    except Exception as exc:  # ONNX Runtime raises its own untyped errors for unreadable graphs.
        if isinstance(exc, MemoryError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"the voice-activity model {path} is not a loadable ONNX model ({first[:200]}); {_REINSTALL}"
        ) from exc
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: o.type for o in session.get_outputs()}
    if inputs != _INPUTS or outputs != _OUTPUTS:
        found = ", ".join(f"{k}: {v}" for k, v in (inputs | outputs).items())
        wanted = ", ".join(f"{k}: {v}" for k, v in (_INPUTS | _OUTPUTS).items())
        raise ModelFileError(
            f"the voice-activity model {path} is not the Silero sequence VAD: its tensors are ({found}) instead "
            f"of ({wanted}); {_REINSTALL}"
        )
    return session


class SileroVad:
    """Silero VAD v6 with its recurrent state, run on one CPU thread. Not thread-safe: one per audio stream.

    The shipped file is Silero's sequence export: each row of its input is one 512-sample frame
    behind the last 64 samples of the frame before it, and it takes many frames per call, giving
    the same probabilities as the one-frame model bit for bit at a fraction of the call overhead.
    """

    FRAME = FRAME
    CONTEXT = CONTEXT

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or vad_model_path()
        self._session = _session(self.path)
        self._rows = np.zeros((MAX_BATCH, CONTEXT + FRAME), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)

    def reset(self) -> None:
        """Start a new stream: zero state and context."""
        self._context.fill(0.0)
        self._h.fill(0.0)
        self._c.fill(0.0)

    def probability(self, frame: npt.ArrayLike) -> float:
        """Speech probability of the next 512-sample frame of the stream."""
        samples = np.asarray(frame, dtype=np.float32)
        if samples.shape != (FRAME,):
            raise ValueError(f"SileroVad.probability takes {FRAME} samples at 16 kHz, got shape {samples.shape}")
        return float(self.frames(samples)[0])

    def frames(self, samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Probabilities of the next whole frames of the stream (a multiple of 512 samples)."""
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if audio.size % FRAME:
            raise ValueError(f"SileroVad.frames takes whole {FRAME}-sample frames, got {audio.size} samples")
        count = audio.size // FRAME
        result = np.empty(count, dtype=np.float32)
        for first in range(0, count, MAX_BATCH):
            rows = self._rows[: min(MAX_BATCH, count - first)]
            block = audio[first * FRAME : (first + len(rows)) * FRAME].reshape(len(rows), FRAME)
            rows[:, CONTEXT:] = block
            rows[0, :CONTEXT] = self._context
            rows[1:, :CONTEXT] = block[:-1, -CONTEXT:]
            self._context[:] = block[-1, -CONTEXT:]
            probs, self._h, self._c = self._session.run(None, {"input": rows, "h": self._h, "c": self._c})
            result[first : first + len(rows)] = probs
        return result

    def probabilities(self, samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Probabilities of every frame of a recording (the last one zero-padded), from a fresh state."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"SileroVad.probabilities takes a 1-D waveform, got shape {audio.shape}")
        self.reset()
        return self.frames(np.pad(audio, (0, -len(audio) % FRAME)))
