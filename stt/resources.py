"""Files that ship with Perch itself (not downloaded): the voice-activity model and its licence."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def resources_dir() -> Path:
    """`resources/` of the source tree, else the installed `perch_resources` data package."""
    source = Path(__file__).resolve().parents[1] / "resources"
    if source.is_dir():
        return source
    spec = importlib.util.find_spec("perch_resources")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return source


def vad_model_path() -> Path:
    """The Silero VAD model (its sequence export, many frames per call)."""
    return resources_dir() / "vad" / "silero_vad_16k_sequence.onnx"
