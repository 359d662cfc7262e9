"""Screenshots of the app's windows for the README: written to docs/screenshots/ when PERCH_SCREENSHOTS=1."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QWidget

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def save_screenshot(widget: QWidget, name: str, scratch: Path) -> Path:
    """Grab `widget` as a PNG: docs/screenshots/NAME with PERCH_SCREENSHOTS=1, else `scratch`/NAME."""
    image = widget.grab()
    assert not image.isNull()
    target = (SCREENSHOTS if os.environ.get("PERCH_SCREENSHOTS") == "1" else scratch) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(target), "PNG")
    assert target.stat().st_size > 0
    return target
