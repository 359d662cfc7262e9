"""Running the helper programs that some typists rely on (wtype, ydotool, wl-paste, pbcopy, pbpaste)."""

from __future__ import annotations

import subprocess

from app.injection.types import InjectionError


def _run(command: list[str], stdin: str | None = None, timeout: float = 5.0) -> str:
    """Run a helper program; its failure becomes an InjectionError with its message."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InjectionError(f"{command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise InjectionError(f"{command[0]} failed: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout
