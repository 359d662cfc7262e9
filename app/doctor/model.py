"""Model and device: where ONNX Runtime would run, which model files the app would load, and optionally a load."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.doctor.checks import Check
from app.doctor.context import DoctorContext
from app.settings import resolved_weights
from stt.runtime import nvidia_present

if TYPE_CHECKING:
    from stt.modelfiles import ModelFiles
    from stt.quantization import WeightsChoice
    from stt.runtime import Device

DEVICE_LABELS = {"cuda": "the NVIDIA GPU (CUDA)", "tensorrt": "the NVIDIA GPU (TensorRT)", "cpu": "the CPU"}
NEAR_SILENCE_RMS = 0.003
"""Quiet noise (about -50 dBFS): loud enough that the engine does not skip it as silence, too quiet for words."""
SPEED_CLIP_SECONDS = 5
"""Audio the load check times: long enough that the fixed cost of a call does not hide the speed."""


@dataclass(frozen=True)
class DeviceProbe:
    """Where a session asked for `device` really ran."""

    device: str
    """`cuda` or `cpu`."""
    reason: str
    """Why not CUDA, when CUDA was wanted; empty otherwise."""
    providers: tuple[str, ...] = ()


def gpu_names() -> list[str]:
    """The NVIDIA GPUs nvidia-smi lists; empty when it is missing or fails."""
    if shutil.which("nvidia-smi") is None:
        return []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if done.returncode == 0:
            return [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return []


def probe_device(choice: Device, model: Path) -> DeviceProbe:
    """Open a small session (`model`, the VAD file) the way the app opens the model's, and see where it runs."""
    from stt.runtime import RuntimeOptions, create_session, cuda_unavailable_reason

    if choice == "cpu":
        return DeviceProbe("cpu", "")
    # TensorRT builds engines per model on the first load; the probe asks for CUDA, which TensorRT runs on.
    try:
        _, info = create_session(model, RuntimeOptions(device="cuda", threads=1, cache_optimized=False))
    except Exception as exc:
        return DeviceProbe("cpu", f"{cuda_unavailable_reason()} ({exc})")
    if info.device == "cpu":
        return DeviceProbe(
            "cpu", info.note.removeprefix("running on the CPU: ") or cuda_unavailable_reason(), info.providers
        )
    return DeviceProbe(info.device, "", info.providers)


def tensorrt_problem() -> str | None:
    """Why TensorRT cannot run (its provider or libraries are missing); None when it can be loaded."""
    import onnxruntime as ort

    from stt.runtime import TENSORRT

    if TENSORRT not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no TensorRT provider"
    name = "onnxruntime_providers_tensorrt.dll" if sys.platform == "win32" else "libonnxruntime_providers_tensorrt.so"
    try:
        ctypes.CDLL(str(Path(ort.__file__).parent / "capi" / name))
    except OSError as exc:
        return f"the TensorRT libraries are missing ({str(exc).split(':')[0]})"
    return None


def cuda_fix(reason: str, python: str) -> str:
    """What to do about the reason CUDA cannot run."""
    if getattr(sys, "frozen", False) and "no NVIDIA GPU" not in reason:
        return (
            "This Perch bundle runs on the CPU only. For an NVIDIA GPU, install Perch with pip or pipx and the "
            "`cuda` extra: `pipx install 'perch-dictation[cuda]'`."
        )
    pip = f"`{python} -m pip install 'perch-dictation[cuda]'`"
    if "no CUDA support" in reason:
        return f"Install the GPU build of ONNX Runtime with CUDA and cuDNN: {pip}; then restart Perch."
    if "library is missing" in reason:
        return (
            f"Install CUDA 13 and cuDNN 9 into Perch's environment: {pip} (or the system packages); then restart Perch."
        )
    return (
        "Check the NVIDIA driver with `nvidia-smi`. Without an NVIDIA GPU, set Device to “cpu” in Settings so that "
        "Perch does not look for one."
    )


def check_device(context: DoctorContext, probe: DeviceProbe) -> Check:
    """Where the model would run, and why not on the GPU when it would not."""
    import onnxruntime as ort

    choice = context.device_choice
    name = "Device"
    details = [
        f"device: {choice}" + (" (--device)" if context.device else " (Settings)"),
        f"onnxruntime {ort.__version__}",
    ]
    if probe.providers:
        details.append(f"providers: {', '.join(probe.providers)}")
    if choice == "cpu":
        return Check(name, "ok", "the CPU (the device is set to cpu)", tuple(details))
    gpus = gpu_names()
    if gpus:
        details.append(f"GPU: {', '.join(gpus)}")
    if probe.device != "cpu":
        summary = f"{DEVICE_LABELS.get(probe.device, probe.device)}" + (f": {gpus[0]}" if gpus else "")
        if choice == "tensorrt":
            problem = tensorrt_problem()
            if problem is not None:
                return Check(
                    name,
                    "warn",
                    f"CUDA without TensorRT: {problem}",
                    tuple(details),
                    "Install TensorRT 10 for CUDA 13 (pip install tensorrt-cu13), or set Device to “auto” in Settings.",
                )
            summary = f"{DEVICE_LABELS['tensorrt']}" + (f": {gpus[0]}" if gpus else "")
            details.append("TensorRT builds its engines on the first load, which takes minutes once")
        return Check(name, "ok", summary, tuple(details))
    details.append(f"why not CUDA: {probe.reason}")
    fix = cuda_fix(probe.reason, context.python)
    if choice in ("cuda", "tensorrt"):
        return Check(name, "warn", f"the CPU: {choice} was asked for but {probe.reason}", tuple(details), fix)
    if nvidia_present():
        return Check(name, "warn", f"the CPU, although there is an NVIDIA GPU: {probe.reason}", tuple(details), fix)
    return Check(name, "ok", "the CPU (no NVIDIA GPU with CUDA here)", tuple(details))


def _size(count: float) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def check_model_files(context: DoctorContext, weights: WeightsChoice) -> tuple[Check, ModelFiles | None]:
    """Whether the model the app would load is on disk and sound; the files when it is."""
    from stt.catalog import CATALOG, QUANTIZATIONS, variant_size
    from stt.errors import ModelFileError, ModelNotFoundError
    from stt.hub import is_downloaded, marker_path, resolve_model_dir, verify
    from stt.modelfiles import ModelConfig, ModelFiles

    name, quantization = context.model_name, weights.quantization
    title = "Model"
    label = f"{name} ({quantization})"
    details = [f"quantization: {weights.choice} → {weights.describe()}"]
    spec = CATALOG.get(name)
    download = f"perch models download {name} --quantization {quantization}"
    try:
        directory = resolve_model_dir(name, quantization)
    except ModelNotFoundError as exc:
        if spec is None:
            return Check(
                title,
                "fail",
                str(exc),
                tuple(details),
                f"Choose a model in Settings ({', '.join(CATALOG)}), or give the folder of a model in the published "
                "layout.",
            ), None
        others = [q for q in QUANTIZATIONS if q != quantization and q in spec.files and is_downloaded(name, q)]
        if others:
            details.append(
                f"the {others[0]} variant is downloaded: set Quantization to {others[0]} in Settings to use it"
            )
        details.append(str(exc))
        size = _size(variant_size(spec, quantization))
        return Check(
            title, "fail", f"{label} is not downloaded", tuple(details), f"Download it (about {size}): `{download}`"
        ), None
    except ModelFileError as exc:
        return Check(
            title, "fail", f"{label} is damaged", (*details, str(exc)), f"Download it again: `{download} --force`"
        ), None
    fix = f"`{download} --force`" if spec is not None else f"replace the broken file with a good copy in {directory}"
    try:
        files = ModelFiles.locate(directory, quantization, fix)
        ModelConfig.load(files.config)
    except (ModelNotFoundError, ModelFileError) as exc:
        return Check(title, "fail", str(exc), tuple(details), f"Repair it: {fix}"), None
    paths = [files.encoder, files.decoder_joint, files.vocab, files.config]
    paths += [p for p in (files.encoder.with_name(files.encoder.name + ".data"),) if p.is_file()]
    total = sum(p.stat().st_size for p in paths)
    details.append(f"folder: {directory}")
    if spec is None:
        details.append("a model folder has no published hashes; its files are present and readable")
    elif not marker_path(name, quantization).exists():
        details.append("placed by hand: the files have the catalog's sizes (there is no download record to hash)")
    elif context.full_verify:
        problems = verify(name, quantization)
        if problems:
            return Check(
                title, "fail", f"{label}: {'; '.join(problems)}", tuple(details), f"Download it again: {fix}"
            ), None
        details.append("sizes and sha256 hashes match the download record")
    else:
        details.append("sizes match the download record; `perch doctor --full` also compares the sha256 hashes")
    return Check(title, "ok", f"{label}, {_size(total)}, is ready", tuple(details)), files


def check_load(context: DoctorContext, files: ModelFiles, device: Device) -> Check:
    """Load the model as the app does and time it on a few seconds of near-silence."""
    import numpy as np

    from stt.engine import SAMPLE_RATE, Recognizer
    from stt.errors import PerchError
    from stt.runtime import RuntimeOptions

    title = "Model load"
    noise = np.random.default_rng(0).normal(0.0, NEAR_SILENCE_RMS, SPEED_CLIP_SECONDS * SAMPLE_RATE)
    try:
        recognizer = Recognizer(files, RuntimeOptions(device=device))
        transcript = recognizer.transcribe(noise.astype(np.float32))
    except PerchError as exc:
        return Check(title, "fail", str(exc), (), f"Repair the model: {files.fix}")
    report = recognizer.report
    warm_up = f", warm-up {report.warmup_seconds:.2f} s" if report.warmup_seconds else ""
    details = [
        f"providers: {', '.join(report.providers)}",
        f"load {report.load_seconds:.2f} s{warm_up}; {SPEED_CLIP_SECONDS} s of audio took "
        f"{transcript.timings.total:.0f} ms",
        f"text from the near-silence: {transcript.text!r}" if transcript.text else "no text from the near-silence",
        *report.notes,
    ]
    summary = report.summary(f" on {DEVICE_LABELS.get(report.device, report.device)}")
    wanted_gpu = device in ("cuda", "tensorrt") or (device == "auto" and nvidia_present())
    if report.notes and wanted_gpu:
        return Check(title, "warn", summary, tuple(details), cuda_fix(" ".join(report.notes), context.python))
    return Check(title, "ok", summary, tuple(details))


def check_model(context: DoctorContext) -> Iterator[Check]:
    """Device first (the `auto` quantization depends on it), then the files, then a load if asked."""
    from stt.resources import vad_model_path

    device = context.device_choice
    probe = probe_device(device, context.vad_path or vad_model_path())
    yield check_device(context, probe)
    cuda = probe.device != "cpu"
    weights = resolved_weights(context.effective_settings(), cuda_available=cuda)
    check, files = check_model_files(context, weights)
    yield check
    if context.load_model:
        if files is None:
            yield Check("Model load", "skip", "the model files are not usable, so it was not loaded")
        else:
            yield check_load(context, files, device)
