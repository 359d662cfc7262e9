"""Files that ship with Perch itself (not downloaded): the voice-activity model and its licence."""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    """The `resources` folder at the root of the source tree."""
    return Path(__file__).resolve().parents[1] / "resources"


def vad_model_path() -> Path:
    """The Silero VAD model (its sequence export, many frames per call)."""
    return resources_dir() / "vad" / "silero_vad_16k_sequence.onnx"
