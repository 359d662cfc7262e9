"""The app's settings: one typed object with a schema version, kept as JSON in the config folder.

Nothing here needs Qt. Reading the file never raises on bad content: a value that does not fit is replaced by
its default and reported in `SettingsStore.problems`, and a file that cannot be used at all is moved aside
(never deleted) before the defaults take over. The engine modules are imported only by the option builders,
so reading settings stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app import settings_rules as rules
from app.files import aside_name
from app.settings_rules import Geometry
from app.vocabulary_settings import VocabularySettings
from stt import paths
from stt.catalog import DEFAULT_MODEL
from stt.quantization import QUANTIZATION_CHOICES, QuantizationChoice, WeightsChoice, choose_weights, held_variants

if TYPE_CHECKING:
    from stt.dictation import DictationOptions, Mode
    from stt.runtime import Device, RuntimeOptions
    from stt.worker import FinalChoice, WorkerOptions

log = logging.getLogger("perch.settings")

SCHEMA_VERSION = 1
"""The settings layout this code writes; files with an older version are upgraded through `MIGRATIONS`."""

SETTINGS_FILE = "settings.json"

PartialsPreset = Literal["auto", "low", "economy", "balanced", "quality"]
TypingStrategy = Literal["auto", "type", "paste", "clipboard"]

DEVICE_CHOICES: tuple[Device, ...] = ("auto", "cpu", "cuda", "tensorrt")
MODE_CHOICES: tuple[Mode, ...] = ("ptt", "toggle", "handsfree")
PARTIALS_PRESETS: tuple[PartialsPreset, ...] = ("auto", "low", "economy", "balanced", "quality")
FINAL_PASS_CHOICES: tuple[FinalChoice, ...] = ("full", "streaming")
TYPING_STRATEGIES: tuple[TypingStrategy, ...] = ("auto", "type", "paste", "clipboard")

VAD_THRESHOLD_RANGE = (0.1, 0.9)
OPACITY_RANGE = (0.2, 1.0)
FONT_SIZE_RANGE = (6, 96)
SERVICE_PORT_RANGE = (1024, 65535)
PREROLL_MS = 500
"""Audio kept from before the start of an utterance while the microphone stays open."""
EXIT_THRESHOLD_GAP = 0.15
"""How far below the VAD threshold a frame must fall to start a pause."""


@dataclass(frozen=True)
class CaptionSettings:
    """The floating caption that shows live text."""

    show: bool = True
    """Show the caption while dictating."""
    font_size: int = 18
    """Text size in points (6–96)."""
    opacity: float = 0.85
    """Window opacity from 0.2 (faint) to 1.0 (solid)."""
    click_through: bool = False
    """Let mouse clicks pass through the caption to the window below."""
    hide_when_idle: bool = True
    """Hide the caption when nothing is being dictated."""
    geometry: Geometry | None = None
    """Last position and size as (x, y, width, height); None places it automatically."""


@dataclass(frozen=True)
class Settings:
    """Everything a person can set; build changed copies with `dataclasses.replace`."""

    schema_version: int = SCHEMA_VERSION
    """Layout version of the stored form; always the current one in memory."""
    model: str = DEFAULT_MODEL
    """A catalog model name or the path of a model directory."""
    quantization: QuantizationChoice = "auto"
    """Model weights: `int8`, `fp32`, or `auto` for int8 on the CPU and fp32 on a CUDA GPU."""
    device: Device = "auto"
    """Where the model runs: `auto` (the best available), `cpu`, `cuda` or `tensorrt`."""
    mode: Mode = "ptt"
    """`ptt` records while the key is held, `toggle` between two presses, `handsfree` on detected speech."""
    ptt_hotkey: str = "Ctrl+Alt+Space"
    """Push-to-talk shortcut, as a Qt key sequence; empty for none."""
    toggle_hotkey: str = "Ctrl+Alt+D"
    """Shortcut that switches dictation on and off, as a Qt key sequence; empty for none."""
    microphone: str | None = None
    """Input device name; None follows the system default."""
    vad_threshold: float = 0.5
    """Speech probability (0.1–0.9) at which speech starts; higher ignores more background noise."""
    partials: bool = True
    """Show live text while speaking."""
    partials_preset: PartialsPreset = "auto"
    """Live-text trade-off: `low` latency, `balanced`, `quality`, or `auto` for what this device sustains."""
    final_pass: FinalChoice = "full"
    """`full` transcribes each segment again with its whole context; `streaming` keeps the live text (faster)."""
    typing_strategy: TypingStrategy = "auto"
    """How text reaches the focused window: `type` keystrokes, `paste` through the clipboard (restored
    afterwards), `clipboard` only copies it, `auto` types where that works and pastes elsewhere."""
    type_into_any_focus: bool = False
    """Type even when the focused widget is not known to accept text."""
    smart_spacing: bool = True
    """Add a space or capital letter when the text continues earlier text."""
    caption: CaptionSettings = field(default_factory=CaptionSettings)
    """The floating caption."""
    preroll: bool = True
    """Keep the microphone open so the first word is never clipped (the system shows it as in use)."""
    sound_cues: bool = True
    """Play a short sound when recording starts and stops."""
    history_enabled: bool = True
    """Keep a history of dictated text."""
    history_keep_days: int = 0
    """Days history entries are kept; 0 keeps them forever."""
    keep_recordings: int = 20
    """Recent recordings kept for re-transcription; 0 keeps none."""
    start_at_login: bool = False
    """Start Perch when the person logs in."""
    service_enabled: bool = False
    """Let programs on this computer transcribe through Perch's OpenAI-compatible API (loopback only)."""
    service_port: int = 8737
    """TCP port of that API on 127.0.0.1 (1024–65535)."""
    service_wyoming: bool = False
    """While serving, also serve the Wyoming protocol (Home Assistant) on 127.0.0.1:10300, without a token."""
    vocabulary: VocabularySettings = field(default_factory=VocabularySettings)
    """Words and phrases to boost, and replacements."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        data = dataclasses.asdict(self)
        geometry = data["caption"]["geometry"]
        if geometry is not None:
            data["caption"]["geometry"] = list(geometry)
        vocabulary = data["vocabulary"]
        vocabulary["phrases"], vocabulary["replacements"] = (
            list(vocabulary["phrases"]),
            list(vocabulary["replacements"]),
        )
        return data

    @classmethod
    def from_dict(cls, data: object) -> tuple[Settings, list[str]]:
        """Settings from their JSON form, with a message for each value that was replaced by its default."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            problems.append(f"The settings are not a JSON object ({rules.show(data)}); using the defaults.")
            return cls(), problems
        unknown = [
            str(key) for key in data if key not in _RULES and key not in ("schema_version", "caption", "vocabulary")
        ]
        if unknown:
            log.debug("ignoring unknown settings: %s", ", ".join(unknown))
        values = rules.read_group(cls, _RULES, data, "", problems)
        caption = data.get("caption")
        if caption is None:
            values["caption"] = CaptionSettings()
        elif isinstance(caption, Mapping):
            caption_values = rules.read_group(CaptionSettings, _CAPTION_RULES, caption, "caption.", problems)
            values["caption"] = CaptionSettings(**caption_values)
        else:
            problems.append(
                f'Setting "caption" has the value {rules.show(caption)}, which is not an object; using the defaults.'
            )
            values["caption"] = CaptionSettings()
        values["vocabulary"] = VocabularySettings.from_dict(data.get("vocabulary"), problems)
        return cls(**values), problems


# Validation rules for each setting (see app/settings_rules.py).

_RULES: dict[str, rules.Rule] = {
    "model": rules.text(empty=False),
    "quantization": rules.choice(QUANTIZATION_CHOICES),
    "device": rules.choice(DEVICE_CHOICES),
    "mode": rules.choice(MODE_CHOICES),
    "ptt_hotkey": rules.text(empty=True),
    "toggle_hotkey": rules.text(empty=True),
    "microphone": rules.device_name(),
    "vad_threshold": rules.number(*VAD_THRESHOLD_RANGE),
    "partials": rules.boolean(),
    "partials_preset": rules.choice(PARTIALS_PRESETS),
    "final_pass": rules.choice(FINAL_PASS_CHOICES),
    "typing_strategy": rules.choice(TYPING_STRATEGIES),
    "type_into_any_focus": rules.boolean(),
    "smart_spacing": rules.boolean(),
    "preroll": rules.boolean(),
    "sound_cues": rules.boolean(),
    "history_enabled": rules.boolean(),
    "history_keep_days": rules.integer(0),
    "keep_recordings": rules.integer(0),
    "start_at_login": rules.boolean(),
    "service_enabled": rules.boolean(),
    "service_port": rules.integer(*SERVICE_PORT_RANGE),
    "service_wyoming": rules.boolean(),
}

_CAPTION_RULES: dict[str, rules.Rule] = {
    "show": rules.boolean(),
    "font_size": rules.integer(*FONT_SIZE_RANGE),
    "opacity": rules.number(*OPACITY_RANGE),
    "click_through": rules.boolean(),
    "hide_when_idle": rules.boolean(),
    "geometry": rules.geometry(),
}


# Storage.

Migration = Callable[[dict[str, Any]], dict[str, Any]]

MIGRATIONS: dict[int, Migration] = {}
"""`MIGRATIONS[n]` turns the stored form of version n into that of version n + 1."""


class _UnusableFileError(Exception):
    """The file cannot be used at all; the message says why."""


def default_path() -> Path:
    """`<user config>/settings.json`."""
    return paths.config_dir() / SETTINGS_FILE


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a stored form to `SCHEMA_VERSION` one step at a time; raises `_UnusableFileError` when it cannot."""
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _UnusableFileError(f"its schema_version {rules.show(version)} is not a whole number")
    if version > SCHEMA_VERSION:
        raise _UnusableFileError(
            f"it was written by a newer version of Perch (settings version {version}; this one knows up to "
            f"{SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise _UnusableFileError(f"settings version {version} is too old to upgrade")
        try:
            data = step(dict(data))
        except Exception as exc:
            raise _UnusableFileError(f"upgrading it from settings version {version} failed: {exc}") from exc
        if not isinstance(data, dict):
            raise _UnusableFileError(f"upgrading it from settings version {version} did not give an object")
        version += 1
        data["schema_version"] = version
    return data


class SettingsStore:
    """Loads and saves `Settings` at one path and tells subscribers about each change."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_path()
        self.problems: list[str] = []
        """One line for the person per thing the last `load` had to fix."""
        self._current: Settings | None = None
        self._subscribers: list[Callable[[Settings, Settings], None]] = []
        self._lock = threading.RLock()

    @property
    def current(self) -> Settings:
        """The settings last loaded or saved; loaded on first use."""
        with self._lock:
            return self._current if self._current is not None else self.load()

    def load(self) -> Settings:
        """Read the file; a missing file gives the defaults and writes nothing."""
        with self._lock:
            self.problems = []
            settings = self._read()
            self._current = settings
            return settings

    def _read(self) -> Settings:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            self.problems.append(f"Perch could not read its settings file {self.path} ({exc}); using the defaults.")
            return Settings()
        try:
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise _UnusableFileError(f"it is not valid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise _UnusableFileError(f"it holds {rules.json_kind(data)} instead of a JSON object")
            data = _migrate(data)
        except _UnusableFileError as exc:
            self.problems.append(self._set_aside(str(exc)))
            return Settings()
        settings, problems = Settings.from_dict(data)
        self.problems.extend(problems)
        return settings

    def _set_aside(self, reason: str) -> str:
        """Move the unusable file to a free `settings.json.corrupt-<time>` name; the message for the person."""
        target = aside_name(self.path)
        try:
            self.path.rename(target)
        except OSError as exc:
            log.warning("could not move %s aside: %s", self.path, exc)
            return (
                f"Perch could not use its settings file {self.path} because {reason}, and could not move it "
                f"aside ({exc}); the default settings are in use."
            )
        log.warning("settings file %s is unusable (%s); moved to %s", self.path, reason, target)
        return (
            f"Perch could not use its settings file because {reason}; it was moved to {target} and the default "
            "settings are in use."
        )

    def save(self, settings: Settings) -> None:
        """Write the settings atomically, then call each subscriber with (old, new); invalid values raise ValueError."""
        data = settings.to_dict()
        checked, problems = Settings.from_dict(data)
        if problems or checked != settings:
            raise ValueError("invalid settings: " + " ".join(problems or ["they do not survive a round trip"]))
        with self._lock:
            old = self.current  # loading first sets an unusable file aside instead of overwriting it
            self._write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
            self._current = settings
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(old, settings)
            except Exception:
                log.exception("a settings subscriber failed")

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        temp = Path(name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            temp.replace(self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def subscribe(self, callback: Callable[[Settings, Settings], None]) -> Callable[[], None]:
        """Call `callback(old, new)` after each save; returns a function that stops it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe


# Engine options.


def dictation_options(settings: Settings) -> DictationOptions:
    """Mode, pre-roll and VAD thresholds for `stt.dictation.Dictation`."""
    from stt.dictation import LIVE_VAD, DictationOptions

    threshold = settings.vad_threshold
    vad = dataclasses.replace(
        LIVE_VAD, threshold=threshold, exit_threshold=max(0.01, round(threshold - EXIT_THRESHOLD_GAP, 6))
    )
    return DictationOptions(mode=settings.mode, preroll_ms=PREROLL_MS if settings.preroll else 0, vad=vad)


def worker_options(settings: Settings) -> WorkerOptions:
    """Live-text preset (`off` when disabled) and final pass for `stt.worker.EngineWorker`."""
    from stt.worker import WorkerOptions

    return WorkerOptions(
        partials=settings.partials_preset if settings.partials else "off",
        final=settings.final_pass,
        vocabulary=tuple(settings.vocabulary.boost_phrases()),
        boost_strength=settings.vocabulary.strength,
    )


def runtime_options(settings: Settings) -> RuntimeOptions:
    """The device for ONNX Runtime sessions."""
    from stt.runtime import RuntimeOptions

    return RuntimeOptions(device=settings.device)


def resolved_weights(settings: Settings, cuda_available: bool) -> WeightsChoice:
    """The weights to load for the settings' model, by the one rule (`stt.quantization.choose_weights`).

    A CUDA GPU is used when `cuda_available` and the device is not forced to `cpu`.
    """
    from stt.catalog import CATALOG
    from stt.modelstore import model_dir

    directory = model_dir(settings.model) if settings.model in CATALOG else Path(settings.model).expanduser()
    held = held_variants(directory) if directory.is_dir() else ()
    return choose_weights(settings.quantization, held, lambda: cuda_available and settings.device != "cpu")
