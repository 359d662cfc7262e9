"""The microphone: which device the app would record from, and a one-second level test on it."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.doctor.checks import Check
from app.doctor.context import DoctorContext
from app.doctor.fixes import install_command

NAME = "Microphone"
CAPTURE_S = 1.0
FIRST_AUDIO_TIMEOUT_S = 4.0
SILENT_DBFS = -60.0
"""A peak below this means nothing reaches the microphone."""
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Levels:
    """What a capture measured."""

    peak_dbfs: float
    mean_dbfs: float
    """The RMS level of the whole capture."""
    seconds: float


def dbfs(value: float) -> float:
    """An amplitude or RMS value in dBFS (-120 for silence)."""
    return 20 * math.log10(value) if value > 1e-6 else -120.0


def levels(samples: npt.NDArray[np.float32]) -> Levels:
    """Peak and mean (RMS) level of 16 kHz samples."""
    if samples.size == 0:
        return Levels(-120.0, -120.0, 0.0)
    peak = float(np.abs(samples).max())
    rms = math.sqrt(float(np.dot(samples, samples)) / samples.size)
    return Levels(dbfs(peak), dbfs(rms), samples.size / SAMPLE_RATE)


def record(spec: str | int | None, seconds: float = CAPTURE_S) -> tuple[npt.NDArray[np.float32], str]:
    """Record `seconds` from the device through `stt.microphone.Microphone`; the samples and the device name.

    Raises MicrophoneError when the device cannot be opened, and TimeoutError when no audio arrives.
    """
    from stt.microphone import Microphone
    from stt.sources import AudioBlock

    wanted = round(seconds * SAMPLE_RATE)
    blocks: list[npt.NDArray[np.float32]] = []
    count = 0
    enough = threading.Event()
    errors: list[str] = []

    def sink(block: AudioBlock) -> None:
        nonlocal count
        if count < wanted:
            blocks.append(block.samples)
            count += block.samples.size
        if count >= wanted:
            enough.set()

    def on_error(error: Exception) -> None:
        errors.append(str(error))
        enough.set()

    microphone = Microphone(spec)
    microphone.start(sink, on_error)
    try:
        enough.wait(seconds + FIRST_AUDIO_TIMEOUT_S)
    finally:
        microphone.stop()
    name = microphone.device.name if microphone.device is not None else str(spec or "default")
    if errors and count < wanted:
        raise TimeoutError(errors[0])
    if count == 0:
        raise TimeoutError(f"no audio arrived from {name!r} within {seconds + FIRST_AUDIO_TIMEOUT_S:g} s")
    samples = np.concatenate(blocks)[:wanted] if blocks else np.zeros(0, dtype=np.float32)
    return samples, name


def _unusable_fix(message: str) -> str:
    lower = message.lower()
    if "portaudio is not installed" in lower:
        return f"Install PortAudio: {install_command('portaudio')}, then start Perch again."
    if "permission" in lower or "denied" in lower or "not allowed" in lower:
        return (
            "Allow Perch to use the microphone: in a Flatpak or Snap, grant the audio/microphone permission; "
            "on macOS, System Settings › Privacy & Security › Microphone; elsewhere check that your user may "
            "use the sound devices (the `audio` group for plain ALSA)."
        )
    return (
        "Check that PipeWire or PulseAudio is running (`pactl info`) and that a microphone is connected; "
        "`perch devices` lists what Perch sees."
    )


def check_microphone(context: DoctorContext) -> Check:
    """List the inputs, resolve the configured one, record a second and judge its level."""
    from stt.errors import MicrophoneError
    from stt.microphone import choose_input, list_input_devices

    try:
        devices = list_input_devices()
    except MicrophoneError as exc:
        return Check(NAME, "fail", str(exc), (), _unusable_fix(str(exc)))
    if not devices:
        return Check(NAME, "fail", "no microphone found", (), _unusable_fix(""))
    default = next((d for d in devices if d.is_default), devices[0])
    spec = context.microphone_spec
    details = [f"system default: {default.name!r} ({default.host_api})"]
    details.append("set in Settings: system default" if spec is None else f"set in Settings: {spec!r}")
    try:
        chosen = choose_input(devices, spec)
    except MicrophoneError as exc:
        return Check(
            NAME,
            "fail",
            f"the microphone {spec!r} from the settings is not connected",
            (*details, str(exc)),
            "Connect it, or pick another microphone in Settings (System default follows your sound settings).",
        )
    details.append(f"device: {chosen.name!r}, {chosen.default_rate} Hz, {chosen.channels} channel(s)")
    try:
        samples, name = record(spec)
    except MicrophoneError as exc:
        return Check(NAME, "fail", str(exc), tuple(details), _unusable_fix(str(exc)))
    except TimeoutError as exc:
        return Check(
            NAME,
            "fail",
            str(exc),
            tuple(details),
            "The device may be in use by another program or broken: close other recording programs, or pick "
            "another microphone in Settings.",
        )
    level = levels(samples)
    summary = f"“{name}”: peak {level.peak_dbfs:.1f} dBFS, mean {level.mean_dbfs:.1f} dBFS over {level.seconds:.1f} s"
    if level.peak_dbfs < SILENT_DBFS:
        return Check(
            NAME,
            "warn",
            f"{summary}: silent (muted or wrong device?)",
            tuple(details),
            "Unmute the microphone or turn up its input volume in your sound settings, or pick another "
            "microphone in Settings; then run the check again while speaking.",
        )
    return Check(NAME, "ok", summary, tuple(details))
