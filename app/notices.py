"""What a desktop notification says about a problem: its kind, a short title, and what happened and what to do.

The engine, the coordinator, typing, the hotkeys and the settings each report problems as text (or exceptions);
the functions here sort them into a few kinds by their type or their wording, so that the tray can show a
fitting title and advice, and `NoticeGate` can keep a device that comes and goes from flooding the desktop.
Nothing here needs Qt.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from app.injection.types import InjectionError
from stt.catalog import CATALOG
from stt.errors import (
    AudioError,
    DownloadError,
    MicrophoneError,
    ModelError,
    ModelFileError,
    ModelNotFoundError,
    NumericError,
    PerchError,
    TranscriptionError,
)

if TYPE_CHECKING:
    from app.injection.types import DeliveryResult

NoticeKind = Literal[
    "no-microphone",
    "microphone-permission",
    "microphone-lost",
    "model-missing",
    "model-corrupt",
    "model-failed",
    "cuda-fallback",
    "typing-failed",
    "typed-to-clipboard",
    "hotkeys-unavailable",
    "settings-reset",
    "transcription-failed",
    "service-unavailable",
    "other",
]

TITLES: dict[NoticeKind, str] = {
    "no-microphone": "No microphone",
    "microphone-permission": "Microphone access needed",
    "microphone-lost": "Microphone lost",
    "model-missing": "Speech model missing",
    "model-corrupt": "Speech model damaged",
    "model-failed": "Speech model not loaded",
    "cuda-fallback": "Running on the CPU",
    "typing-failed": "Text not typed",
    "typed-to-clipboard": "Text on the clipboard",
    "hotkeys-unavailable": "Hotkeys unavailable",
    "settings-reset": "Settings reset",
    "transcription-failed": "Transcription failed",
    "service-unavailable": "Other apps cannot use Perch",
    "other": "Perch",
}

GATE_SECONDS = 60.0
SETTINGS_MODEL = "open Settings ▸ Model to download or choose one"

# Wording of the problems raised in stt/ and app/, matched case-insensitively.
_PERMISSION = re.compile(
    r"permission|not permitted|not authori[sz]ed|access (?:is )?denied|EACCES|\berrno 13\b|\berror -13\b",
    re.IGNORECASE,
)
_NOT_THERE = re.compile(r"no input device (?:matches|number)", re.IGNORECASE)
_LOST = re.compile(r"stopped delivering audio|device (?:was )?(?:lost|removed|disconnected)", re.IGNORECASE)
_MODEL_MISSING = re.compile(
    r"is not downloaded|does not exist|unknown model|not a catalog name| lacks |has no \w+ variant|is not a model name"
)
_MODEL_CORRUPT = re.compile(
    r"is damaged|not a loadable onnx model|is empty|not valid json|sha256|must hold a json object|model_type is"
    r"|must be a positive integer|should be|is missing \(found|must have (?:a )?fixed|does not belong to this model"
    r"|logits, but vocab"
)
# A message that already says what to do has one of these verbs at the start of a clause.
_ADVICE = re.compile(
    r"(?:^|[.;:(]\s*|\bor\s+|,\s*|\band\s+)(?:run|install|check|connect|choose|open|set|add|allow|paste|restart|try|"
    r"replace|bind|place|unset|start|update|grant|use|select)\b",
    re.IGNORECASE,
)
_DOWNLOAD_COMMAND = re.compile(r"`perch models download ([^`\s]+)[^`]*`")
_EXPECTED_CLIPBOARD = re.compile(r"^the focus moved |^typing is set to clipboard only")
_deliveries = itertools.count()  # every text that missed its window gets a notice of its own


@dataclass(frozen=True)
class Notice:
    """One notification: `key` is equal for notices that repeat the same problem."""

    kind: NoticeKind
    title: str
    message: str
    error: bool
    key: str


def _notice(kind: NoticeKind, message: str, *, error: bool = True, key: str | None = None) -> Notice:
    return Notice(kind, TITLES[kind], message, error, key if key is not None else kind)


def _sentence(text: str) -> str:
    """First letter up, one full stop at the end."""
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if not text:
        return ""
    first = text.split(maxsplit=1)[0].rstrip(":,;")
    if first.isalpha():  # not a file name, a path or a command
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _with_advice(text: str, advice: str) -> str:
    """The message, plus `advice` unless it already says what to do."""
    message = _sentence(text)
    if _ADVICE.search(text) or "`perch " in text:
        return message
    return f"{message} {_sentence(advice)}".strip()


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


# The microphone.


def _permission_advice(platform: str) -> str:
    if platform == "darwin":
        return "Perch needs microphone access: System Settings ▸ Privacy & Security ▸ Microphone, then turn Perch on."
    if platform == "win32":
        return (
            "Perch needs microphone access: Settings ▸ Privacy & security ▸ Microphone, then turn on "
            '"Let desktop apps access your microphone".'
        )
    return (
        "Perch is not allowed to use the microphone: add yourself to the audio group (then log in again), or allow "
        "microphone access in your desktop's privacy settings."
    )


def _microphone(message: str, default: NoticeKind, platform: str) -> Notice:
    if _PERMISSION.search(message):
        return _notice("microphone-permission", f"{_permission_advice(platform)} The error was: {_sentence(message)}")
    if _LOST.search(message):
        # The reason (how long it was silent, …) varies while a device flaps; the key does not.
        advice = "Check that it is still connected; Perch reopens it when it comes back."
        return _notice("microphone-lost", _with_advice(message, advice))
    if _NOT_THERE.search(message):  # the microphone chosen in the settings
        return _notice("no-microphone", f"{_sentence(message)} Connect it, or choose another microphone in Settings.")
    kind: NoticeKind = "microphone-lost" if default == "microphone-lost" else "no-microphone"
    advice = (
        "Check that it is still connected; Perch reopens it when it comes back."
        if kind == "microphone-lost"
        else "Check that a microphone is connected and not used by another program; `perch devices` lists them."
    )
    return _notice(kind, _with_advice(message, advice))


# The model.


def _catalog_name(message: str, model: str | None) -> str | None:
    if model in CATALOG:
        return model
    command = _DOWNLOAD_COMMAND.search(message)
    if command and command.group(1) in CATALOG:
        return command.group(1)
    return next((name for name in CATALOG if re.search(rf"[/\\]{re.escape(name)}[/\\]", message)), None)


def _model_missing(message: str) -> Notice:
    if "disk space" in message:
        text = f"{_sentence(message)} Free some space, then download the model again."
    elif "perch models download" in message:
        text = f"{_sentence(message).rstrip('.')}, or {SETTINGS_MODEL}."
    else:
        text = f"{_sentence(message)} {_sentence(SETTINGS_MODEL)}"
    return _notice("model-missing", text)


def _model_corrupt(message: str, model: str | None) -> Notice:
    name = _catalog_name(message, model)
    if name is None:
        if _ADVICE.search(message):
            return _notice("model-corrupt", _sentence(message))
        advice = "Replace the file with a good copy, or choose another model in Settings ▸ Model."
        return _notice("model-corrupt", f"{_sentence(message)} {advice}")
    int8 = "(int8)" in message or ".int8.onnx" in message
    command = f"perch models download {name}{' --quantization int8' if int8 else ''} --force"
    detail = _DOWNLOAD_COMMAND.sub("", message).rstrip(" ;,")
    detail = re.sub(r"[;,]?\s*(?:run|or)\s*$", "", detail).rstrip(" ;,")
    return _notice("model-corrupt", f"{_sentence(detail)} Download it again: `{command}`.")


def _model_failed(message: str) -> Notice:
    advice = "Choose another model or device in Settings ▸ Model; the log has the details."
    return _notice("model-failed", _with_advice(f"The speech model could not be loaded: {message}", advice))


def _model(message: str, model: str | None) -> Notice:
    lowered = message.lower()
    if _MODEL_CORRUPT.search(lowered):
        return _model_corrupt(message, model)
    if _MODEL_MISSING.search(lowered) or "download" in lowered or "hugging face hub" in lowered:
        return _model_missing(message)
    return _model_failed(message)


# Transcription and typing.


def _transcription(message: str) -> Notice:
    advice = "Try again; if it keeps failing, choose another model or device in Settings ▸ Model."
    return _notice(
        "transcription-failed", _with_advice(message, advice), key=f"transcription-failed:{_digest(message)}"
    )


def _typing(message: str, key: str) -> Notice:
    return _notice("typing-failed", _with_advice(message, "Paste it yourself from the clipboard."), key=key)


def _paste_keys(platform: str) -> str:
    return "Cmd+V" if platform == "darwin" else "Ctrl+V"


# Public API.


def from_engine_error(kind: str, message: str, *, model: str | None = None, platform: str = sys.platform) -> Notice:
    """A notice for an engine `Error` event (model, microphone, device-lost, transcription, overload) or a
    coordinator `Notify` (model, microphone, transcription, typing); `model` is the configured model name."""
    if kind == "model":
        return _model(message, model)
    if kind in ("microphone", "device-lost"):
        return _microphone(message, "microphone-lost" if kind == "device-lost" else "no-microphone", platform)
    if kind == "transcription":
        return _transcription(message)
    if kind == "typing":
        return _typing(message, key=f"typing-failed:{_digest(message)}")
    if kind == "overload":
        advice = "Close other busy programs, or choose the int8 model or a faster device in Settings ▸ Model."
        return _notice("other", _with_advice(message, advice), key="overload")
    if kind == "vocabulary":
        return _notice("other", _with_advice(message, "Check the entries in Settings ▸ Vocabulary."), key="vocabulary")
    return _other(message)


def from_exception(exc: BaseException, *, model: str | None = None, platform: str = sys.platform) -> Notice:
    """A notice for an exception raised by the engine, the microphone, typing or anything else."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ModelNotFoundError):
        return _model_missing(message)
    if isinstance(exc, ModelFileError):  # ContractError included
        return _model_corrupt(message, model)
    if isinstance(exc, DownloadError):
        return _model_missing(message)
    if isinstance(exc, ModelError):
        return _model(message, model)
    if isinstance(exc, MicrophoneError) or type(exc).__name__ == "PortAudioError":
        return _microphone(message, "no-microphone", platform)
    if isinstance(exc, (AudioError, TranscriptionError, NumericError)):
        return _transcription(message)
    if isinstance(exc, InjectionError):
        return _typing(message, key=f"typing-failed:{_digest(message)}")
    if isinstance(exc, MemoryError):
        advice = "Close other programs, or choose the int8 model in Settings ▸ Model."
        return _notice("other", f"Perch ran out of memory. {advice}", key="memory")
    if isinstance(exc, PerchError):  # DeviceError: the inference device cannot be used
        return _model_failed(message)
    return _other(f"{type(exc).__name__}: {message}" if str(exc) else message)


@overload
def from_device_notes(
    device: str, notes: Sequence[str], /, *, gpu_present: bool | None = None, platform: str = ...
) -> Notice | None: ...


@overload
def from_device_notes(
    device: str, running_on: str, notes: Sequence[str], /, *, gpu_present: bool | None = None, platform: str = ...
) -> Notice | None: ...


def from_device_notes(
    device: str,
    *args: str | Sequence[str],
    gpu_present: bool | None = None,
    platform: str = sys.platform,
) -> Notice | None:
    """A notice when the model runs on a slower device than `device` (the setting: auto, cpu, cuda, tensorrt)
    asked for, from `Recognizer.report.notes` (optionally after `Recognizer.device`, what it runs on).

    None when all is as asked, or when `auto` chose the CPU on a computer without an NVIDIA GPU (`gpu_present`
    overrides that check).
    """
    running_on, notes = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    if isinstance(notes, str) or (running_on is not None and not isinstance(running_on, str)):
        raise TypeError("from_device_notes(device, [running_on,] notes): notes is a list of lines")
    if device == "cpu" or running_on == "tensorrt":
        return None
    fallback = next((n for n in notes if n.startswith("running on the CPU")), None)
    if running_on == "cpu" and fallback is None:
        fallback = "running on the CPU: CUDA could not be used (the log says why)"
    if fallback is not None and running_on != "cuda":
        if device == "auto" and not (nvidia_gpu_present(platform) if gpu_present is None else gpu_present):
            return None
        reason = fallback.partition(": ")[2] or fallback
        fix = "Install the NVIDIA driver and CUDA: pip install 'perch-dictation[cuda]'."
        text = _with_advice(f"The GPU cannot be used: {reason}", fix)
        return _notice(
            "cuda-fallback", f"{text} Dictation works on the CPU meanwhile, more slowly.", error=device != "auto"
        )
    tensorrt = next((n for n in notes if "without TensorRT" in n), None)
    if tensorrt is not None and device == "tensorrt":
        text = (
            f"{_sentence(tensorrt)} Install TensorRT for CUDA 13 to use it, or set the device to cuda in "
            "Settings ▸ Model."
        )
        return Notice("cuda-fallback", "Running without TensorRT", text, False, "cuda-fallback:tensorrt")
    return None


def from_delivery(result: DeliveryResult, *, platform: str = sys.platform) -> Notice | None:
    """A notice when dictated text did not go into the window: left on the clipboard, or lost."""
    key = f"{next(_deliveries)}:{_digest(result.text)}"
    if result.method == "copied":
        if _EXPECTED_CLIPBOARD.search(result.reason):
            text = f"The text is on the clipboard ({result.reason}); paste it with {_paste_keys(platform)}."
            return _notice("typed-to-clipboard", _sentence(text), error=False, key=f"typed-to-clipboard:{key}")
        text = (
            f"Perch could not type the text ({result.reason}). It is on the clipboard: paste it with "
            f"{_paste_keys(platform)}."
        )
        return _notice("typing-failed", _sentence(text), key=f"typing-failed:{key}")
    if result.method == "nothing" and result.reason:
        excerpt = result.text if len(result.text) <= 80 else result.text[:79] + "…"
        text = f'The text could not be typed or copied ({result.reason}). It was: "{excerpt}"'
        return _notice("typing-failed", _sentence(text), key=f"typing-failed:{key}")
    if result.delivered and not result.confirmed:
        text = (
            f"The window did not take the pasted text ({result.reason}). Try again, or set typing to "
            "type instead of paste in the settings."
        )
        return _notice("typing-failed", _sentence(text), key=f"typing-failed:{key}")
    return None


def from_hotkey_problem(text: str) -> Notice:
    """A notice for a problem the hotkey backend reported."""
    if re.search(r"cannot be used|could not be grabbed|already taken", text):
        advice = "Choose another hotkey in Settings; meanwhile a click on the tray icon starts and stops dictation."
    else:
        advice = "A click on the tray icon starts and stops dictation meanwhile; restarting Perch may bring them back."
    return _notice("hotkeys-unavailable", _with_advice(text, advice), key=f"hotkeys-unavailable:{_digest(text)}")


def from_settings_problem(text: str) -> Notice:
    """A notice for a setting that was replaced by its default, or a settings file that could not be used."""
    advice = "Open Settings to set it as you want it."
    return _notice("settings-reset", _with_advice(text, advice), key=f"settings-reset:{_digest(text)}")


def from_service_problem(text: str) -> Notice:
    """A notice for the API for other programs that could not start."""
    advice = "Choose another port in Settings ▸ Other apps."
    return _notice("service-unavailable", _with_advice(text, advice), key=f"service-unavailable:{_digest(text)}")


def _other(message: str) -> Notice:
    return _notice("other", _with_advice(message, "The log has the details."), key=f"other:{_digest(message)}")


def nvidia_gpu_present(platform: str = sys.platform) -> bool:
    """Whether an NVIDIA GPU with its driver seems to be installed (a cheap look at files, no CUDA call)."""
    if platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
    if platform == "win32":
        system = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32"
        return (system / "nvidia-smi.exe").exists() or shutil.which("nvidia-smi") is not None
    return False


class NoticeGate:
    """Lets a notice through unless one with the same key passed within the last `seconds`."""

    def __init__(self, seconds: float = GATE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._shown: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, notice: Notice) -> bool:
        """True when the notice should be shown now (and then remembered as shown)."""
        with self._lock:
            now = self._clock()
            self._shown = {key: at for key, at in self._shown.items() if now - at < self.seconds}
            if notice.key in self._shown:
                return False
            self._shown[notice.key] = now
            return True

    def forget(self, kinds: Iterable[str] = ()) -> None:
        """Let the next notice of these kinds (or of every kind) through, e.g. once the problem is fixed."""
        wanted = set(kinds)
        with self._lock:
            self._shown = {k: at for k, at in self._shown.items() if wanted and k.partition(":")[0] not in wanted}
