"""Which parts of the running app a settings change touches, so that each applies without a restart."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from app.settings import Settings


@dataclass(frozen=True)
class SettingsChange:
    """What must be redone after the settings went from one value to another."""

    model: bool = False
    """Load the speech model again (model, quantization or device)."""
    microphone: bool = False
    """Open another input device."""
    dictation: bool = False
    """Mode, pre-roll or VAD sensitivity: new dictation options between utterances."""
    worker: bool = False
    """Live text and final pass: new engine options from the next segment on."""
    hotkeys: bool = False
    typing: bool = False
    caption: bool = False
    sounds: bool = False
    history: bool = False
    """History turned on or off."""
    retention: bool = False
    autostart: bool = False
    service: bool = False
    """The API for other programs turned on or off, moved to another port, or Wyoming added or removed."""

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


_GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("model", "quantization", "device"),
    "microphone": ("microphone",),
    "dictation": ("mode", "preroll", "vad_threshold"),
    "worker": ("partials", "partials_preset", "final_pass", "vocabulary"),
    "hotkeys": ("ptt_hotkey", "toggle_hotkey"),
    "typing": ("typing_strategy", "type_into_any_focus", "smart_spacing"),
    "caption": ("caption",),
    "sounds": ("sound_cues",),
    "history": ("history_enabled",),
    "retention": ("history_keep_days", "keep_recordings"),
    "autostart": ("start_at_login",),
    "service": ("service_enabled", "service_port", "service_wyoming"),
}


def settings_change(old: Settings, new: Settings) -> SettingsChange:
    """The parts of the app that `new` changes compared with `old`."""
    # Where the caption window sits is saved by the window itself; only its look needs applying.
    old = replace(old, caption=replace(old.caption, geometry=None))
    new = replace(new, caption=replace(new.caption, geometry=None))
    touched = {
        group: any(getattr(old, name) != getattr(new, name) for name in names) for group, names in _GROUPS.items()
    }
    return SettingsChange(**touched)


def covered_settings() -> set[str]:
    """Every setting some group reacts to (a test checks that none is forgotten)."""
    return {name for names in _GROUPS.values() for name in names}
