"""The app's log: a rotating file in the platformdirs log directory, and stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from stt import paths


def setup_app_logging(debug: bool) -> None:
    """Rotating `perch.log` (5 × 1 MB) with everything at INFO (DEBUG under --debug); warnings on stderr."""
    folder = paths.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    file = logging.handlers.RotatingFileHandler(folder / "perch.log", maxBytes=1_000_000, backupCount=5)
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else logging.WARNING)
    console.setFormatter(logging.Formatter("perch: %(name)s: %(message)s"))
    root.handlers[:] = [file, console]
