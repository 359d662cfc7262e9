"""What the checks look at: the settings the app would use, the command line's overrides, and this session."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings, SettingsStore
from stt.quantization import QuantizationChoice

if TYPE_CHECKING:
    from stt.modelfiles import Quantization
    from stt.runtime import Device


@dataclass(frozen=True)
class DoctorContext:
    """Settings plus overrides; every check reads the values the app would really use from here."""

    settings: Settings = field(default_factory=Settings)
    model: str | None = None
    """`--model`: a catalog name or a model folder; None uses the settings."""
    quantization: Quantization | None = None
    """`--quantization`; None uses the settings (which may say `auto`)."""
    device: Device | None = None
    """`--device`; None uses the settings."""
    microphone: str | None = None
    """`--mic`: a name or index; None uses the settings."""
    full_verify: bool = False
    """Check the sha256 of every model file (slow for big models), not only the sizes."""
    load_model: bool = False
    """Load the model and transcribe a second of near-silence."""
    app_running: bool = False
    """The Perch app runs and holds the hotkeys, so they cannot (and need not) be grabbed again."""
    areas: frozenset[str] | None = None
    """Only these checks (`session`, `hotkeys`, `typing`, `microphone`, `model`, `vad`); None for all."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    platform: str = field(default_factory=lambda: sys.platform)
    vad_path: Path | None = None
    """The voice-activity model to check; None for the one that ships with Perch."""
    settings_path: Path | None = None
    """Where the settings were read from (None: not from a file)."""
    settings_problems: tuple[str, ...] = ()
    """What reading the settings file had to fix."""
    python: str = field(default_factory=lambda: sys.executable)
    """The interpreter that runs the typing test window."""

    @property
    def model_name(self) -> str:
        """The model the app would load: `--model`, else the settings."""
        return self.model or self.settings.model

    @property
    def device_choice(self) -> Device:
        """`--device`, else the settings."""
        return self.device or self.settings.device

    @property
    def quantization_choice(self) -> QuantizationChoice:
        """`--quantization`, else the settings (possibly `auto`)."""
        return self.quantization or self.settings.quantization

    @property
    def microphone_spec(self) -> str | int | None:
        """The input device as `stt.microphone.Microphone` takes it: None (default), an index or a name."""
        spec = self.microphone if self.microphone is not None else self.settings.microphone
        if spec is None or not spec.strip():
            return None
        return int(spec) if spec.isdigit() else spec

    def effective_settings(self) -> Settings:
        """The settings with the overrides applied (model, quantization, device, microphone)."""
        return replace(
            self.settings,
            model=self.model_name,
            quantization=self.quantization_choice,
            device=self.device_choice,
            microphone=self.microphone if self.microphone is not None else self.settings.microphone,
        )

    def wants(self, area: str) -> bool:
        """Whether this area is to be checked."""
        return self.areas is None or area in self.areas


def load_context(
    *,
    model: str | None = None,
    quantization: Quantization | None = None,
    device: Device | None = None,
    microphone: str | None = None,
    full_verify: bool = False,
    load_model: bool = False,
    app_running: bool | None = None,
    areas: Collection[str] | None = None,
    store: SettingsStore | None = None,
) -> DoctorContext:
    """A context from the settings file and these overrides (reads a file: call it off the GUI thread).

    `app_running=None` asks the local socket whether a Perch app answers.
    """
    store = store or SettingsStore()
    settings = store.load()
    if app_running is None:
        app_running = perch_is_running()
    return DoctorContext(
        settings=settings,
        model=model,
        quantization=quantization,
        device=device,
        microphone=microphone,
        full_verify=full_verify,
        load_model=load_model,
        app_running=app_running,
        areas=frozenset(areas) if areas is not None else None,
        settings_path=store.path,
        settings_problems=tuple(store.problems),
    )


def perch_is_running() -> bool:
    """Whether the Perch app of this user answers on its socket."""
    from app import ipc

    return ipc.send("status", timeout_ms=1000) is not None
