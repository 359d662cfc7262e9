"""The voice-activity model that ships with Perch: its checksum against the pinned one, and a trial frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.doctor.checks import Check
from app.doctor.context import DoctorContext

VAD_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"
"""silero_vad_16k_sequence.onnx of the silero-vad 6.2.3 wheel, as resources/vad/README.md records it."""
NAME = "Voice detection"
REINSTALL = (
    "The file ships with Perch: reinstall Perch (`pip install --force-reinstall perch-dictation`, or pull a clean "
    "copy of the source) to restore it."
)


def check_vad(context: DoctorContext) -> Check:
    """Hash the model, then load it and score one frame of silence."""
    from stt.errors import ModelFileError
    from stt.modelstore import sha256_of
    from stt.resources import vad_model_path
    from stt.vad import FRAME, SileroVad

    path: Path = context.vad_path or vad_model_path()
    if not path.is_file():
        return Check(NAME, "fail", f"the Silero VAD model is missing ({path})", (), REINSTALL)
    digest = sha256_of(path)
    details = [f"file: {path}", f"sha256: {digest}"]
    if digest != VAD_SHA256:
        return Check(
            NAME,
            "fail",
            "the Silero VAD model does not match the checksum Perch ships with (damaged or replaced)",
            (*details, f"expected: {VAD_SHA256}"),
            REINSTALL,
        )
    try:
        vad = SileroVad(path)
        silence = vad.probability(np.zeros(FRAME, dtype=np.float32))
    except ModelFileError as exc:
        return Check(NAME, "fail", str(exc), tuple(details), REINSTALL)
    details.append(f"speech probability of a silent frame: {silence:.3f}")
    return Check(NAME, "ok", f"Silero VAD v6 checksum matches ({digest[:12]}…); it loads and runs", tuple(details))
