"""Small file helpers shared by the settings and the history."""

from __future__ import annotations

import time
from pathlib import Path


def aside_name(path: Path) -> Path:
    """A free `<name>.corrupt-<time>[-n]` path beside `path`, where an unusable file is kept instead of deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    return target
