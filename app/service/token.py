"""The service's bearer token: generated once, kept private in the config directory, reused on later starts."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from stt.paths import config_dir

TOKEN_FILE = "service-token"


def token_path() -> Path:
    """Where the token is kept."""
    return config_dir() / TOKEN_FILE


def load_or_create_token(path: Path | None = None) -> str:
    """The stored token, or a new `secrets.token_urlsafe(32)` written with mode 0600 when there is none."""
    path = path or token_path()
    with contextlib.suppress(FileNotFoundError):
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
        path.unlink()  # an empty file is no token: make a new one
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start, so the token is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def replace_token(path: Path | None = None) -> str:
    """A new token in place of the stored one (clients holding the old one are refused from then on)."""
    path = path or token_path()
    path.unlink(missing_ok=True)
    return load_or_create_token(path)
