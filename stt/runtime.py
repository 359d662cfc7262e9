"""ONNX Runtime sessions: device choice, CUDA diagnosis, the TensorRT cache and the weights-index cache."""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from stt import modelcache, paths
from stt.nativelog import stderr_to_log

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda", "tensorrt")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

ProviderChain = list[str | tuple[str, dict[str, Any]]]

log = logging.getLogger(__name__)

# ONNX Runtime's own log: errors and worse only; we translate what matters into one line.
ORT_LOG_ERROR = 3
ORT_LOG_FATAL = 4
ort.set_default_logger_severity(ORT_LOG_ERROR)


def physical_cores() -> int:
    """Physical core count (Linux reads sysfs; elsewhere half the logical count, at least 1)."""
    try:
        cores = set()
        for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
            core_id = (cpu / "topology/core_id").read_text().strip()
            package = (cpu / "topology/physical_package_id").read_text().strip()
            cores.add((package, core_id))
        if cores:
            return len(cores)
    except OSError:
        pass
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class RuntimeOptions:
    """How sessions are created."""

    device: Device = "auto"
    threads: int = 0
    """Intra-op threads; 0 means the physical core count."""
    cache_optimized: bool = True
    """After a load, write a weights index of the model in the background, and load from it on later starts."""


@dataclass(frozen=True)
class SessionInfo:
    """What a session actually runs on."""

    providers: tuple[str, ...]
    note: str
    """One line saying why an accelerator that was asked for is not in use ("" when all is well)."""

    @property
    def device(self) -> str:
        """'tensorrt', 'cuda' or 'cpu'."""
        first = self.providers[0] if self.providers else CPU
        return {TENSORRT: "tensorrt", CUDA: "cuda"}.get(first, "cpu")


_preloaded = False
_LIBRARY_NAME = re.compile(r"[\w.+-]+\.(?:so(?:\.[\d.]+)?|dll|dylib)")


def _preload_cuda() -> None:
    """Load CUDA/cuDNN from the pip `nvidia-*` packages, where onnxruntime offers it."""
    global _preloaded  # noqa: PLW0603
    if _preloaded:
        return
    _preloaded = True
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        # It prints each library it cannot find; the one line that matters comes from cuda_unavailable_reason.
        with contextlib.suppress(Exception), quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()):
            preload()


def quiet_native_stderr() -> contextlib.AbstractContextManager[None]:
    """ONNX Runtime's provider load failures and other native probing go to the debug log, not the terminal."""
    return stderr_to_log("native libraries")


def nvidia_present() -> bool:
    """Whether this machine has an NVIDIA GPU with its driver loaded (Linux), or nvidia-smi (elsewhere)."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def cuda_unavailable_reason() -> str:
    """Why the CUDA provider cannot run here, in one line."""
    if CUDA not in ort.get_available_providers():
        return (
            f"this onnxruntime build ({ort.__version__}) has no CUDA support; "
            "install onnxruntime-gpu (pip install 'perch-dictation[cuda]')"
        )
    library = (
        Path(ort.__file__).parent
        / "capi"
        / ("onnxruntime_providers_cuda.dll" if sys.platform == "win32" else "libonnxruntime_providers_cuda.so")
    )
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        missing = [name for name in _LIBRARY_NAME.findall(str(exc)) if "onnxruntime" not in name]
        detail = missing[0] if missing else str(exc)
        return (
            f"a CUDA library is missing ({detail}); install CUDA 13 and cuDNN 9, or pip install 'perch-dictation[cuda]'"
        )
    return "no usable NVIDIA GPU was found (check the driver with nvidia-smi)"


def cuda_problem() -> str | None:
    """None when ONNX Runtime runs sessions on an NVIDIA GPU here, else why not, in one line.

    Slow (it loads the CUDA libraries and runs a tiny session): call it off the GUI thread.
    """
    from stt.resources import vad_model_path

    provider_chain("cuda")  # loads CUDA from the pip packages where onnxruntime offers that
    if CUDA in ort.get_available_providers():
        try:
            with quiet_native_stderr():
                session = ort.InferenceSession(str(vad_model_path()), providers=[CUDA, CPU])
            if CUDA in session.get_providers():
                return None
        except Exception as exc:  # the reason below says what is missing
            log.debug("CUDA check: %s", exc)
    return cuda_unavailable_reason()


def _cuda_options() -> dict[str, Any]:
    # Variable-length audio: EXHAUSTIVE would re-benchmark conv algorithms for every new length.
    return {"cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": True}


def _tensorrt_options(profile: dict[str, str] | None) -> dict[str, Any]:
    cache = paths.tensorrt_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": False,
    }
    if profile:
        options |= profile
    return options


def provider_chain(device: Device, trt_profile: dict[str, str] | None = None) -> ProviderChain:
    """Providers to ask for, best first, always ending with the CPU."""
    if device == "cpu":
        return [CPU]
    _preload_cuda()
    chain: ProviderChain = []
    if device == "tensorrt":
        chain.append((TENSORRT, _tensorrt_options(trt_profile)))
    if device in ("auto", "cuda", "tensorrt"):
        chain.append((CUDA, _cuda_options()))
    chain.append(CPU)
    return chain


def _session_options(threads: int, chain: ProviderChain) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = ORT_LOG_ERROR
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads would keep the cores busy between runs, slowing features and the decode loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if _cpu_only(chain):
        # The planner's search for buffers to reuse takes about a second on the encoder's graph and, with its
        # dynamic shapes, changes neither the peak memory nor the speed on the CPU (untried on GPUs).
        options.enable_mem_reuse = False
    return options


def _cpu_only(chain: ProviderChain) -> bool:
    """Whether the session can only run on the CPU: asked for it, or this onnxruntime has no CUDA."""
    names = [p if isinstance(p, str) else p[0] for p in chain]
    return names == [CPU] or CUDA not in ort.get_available_providers()


_heap_tuned = False
M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter."""


def _return_freed_memory() -> None:
    """With glibc, serve blocks of 128 KiB and more from mmap, so that memory freed during a load goes back."""
    global _heap_tuned  # noqa: PLW0603
    if _heap_tuned or sys.platform != "linux":
        return
    _heap_tuned = True
    # glibc raises this threshold after the first large free (up to 32 MiB); the weights copied out of an
    # embedded model then land on the heap and stay resident after ONNX Runtime frees them: a first int8
    # load peaked at 1.0-1.35 GB, at 0.86 GB with the fixed threshold, equally fast to run.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def _build(model: Path, options: ort.SessionOptions, chain: ProviderChain) -> ort.InferenceSession:
    _return_freed_memory()
    wants_gpu = any((p if isinstance(p, str) else p[0]) != CPU for p in chain)
    quiet = quiet_native_stderr() if wants_gpu else contextlib.nullcontext()
    with quiet:
        return ort.InferenceSession(str(model), sess_options=options, providers=chain)


def _build_cached(model: Path, threads: int, chain: ProviderChain) -> ort.InferenceSession | None:
    """A session from the model's weights index, when one is cached (or, for a small model, can be made now)."""
    modelcache.index_if_small(model)
    index = modelcache.cached_index(model)
    if index is None:
        return None
    try:
        return _build(index, _session_options(threads, chain), chain)
    except MemoryError:
        raise
    except Exception as exc:  # ONNX Runtime's own error types; the model file itself says what is wrong, if anything
        log.debug("the weights index of %s did not load (%s); loading the model itself", model.name, exc)
        modelcache.discard(index)
        return None


def create_session(
    model: Path,
    options: RuntimeOptions,
    trt_profile: dict[str, str] | None = None,
    *,
    refresh_cache: bool = True,
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Create a session on the best device allowed, and say why when the asked-for one is not used.

    refresh_cache: write the model's weights index in the background now; a caller loading several models
    passes False and calls `modelcache.refresh_later` once they are all loaded, so that it never runs beside a load.
    """
    chain = provider_chain(options.device, trt_profile)
    cached = options.cache_optimized and options.device != "tensorrt"
    session = _build_cached(model, options.threads, chain) if cached else None
    if session is None:
        session = _build(model, _session_options(options.threads, chain), chain)
    if cached and refresh_cache:
        modelcache.refresh_later(model)
    used = tuple(session.get_providers())
    note = ""
    if options.device == "auto" and CUDA not in used and not nvidia_present():
        log.info("no NVIDIA GPU here: %s runs on the CPU", model.name)
    elif options.device != "cpu" and CUDA not in used:
        note = f"running on the CPU: {cuda_unavailable_reason()}"
    elif options.device == "tensorrt" and TENSORRT not in used:
        note = "running on CUDA without TensorRT: the TensorRT libraries were not found"
    return session, SessionInfo(used, note)
