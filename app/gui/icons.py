"""The tray icons, one per state, drawn for Perch as SVG in resources/icons/."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from app.coordinator import Phase
from stt.resources import resources_dir


@cache
def state_icon(phase: Phase) -> QIcon:
    """The icon for a phase."""
    return QIcon(str(resources_dir() / "icons" / f"perch-{phase.value}.svg"))
