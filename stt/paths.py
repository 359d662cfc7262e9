"""Where Perch keeps its files; every location comes from platformdirs or an override variable."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "perch"


def _dirs() -> platformdirs.PlatformDirs:
    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def models_dir() -> Path:
    """Downloaded models: `PERCH_MODELS_DIR`, else `<user cache>/models`."""
    override = os.environ.get("PERCH_MODELS_DIR")
    return Path(override).expanduser() if override else cache_dir() / "models"


def cache_dir() -> Path:
    """Regenerable data: models, weights indexes, TensorRT engines."""
    return Path(_dirs().user_cache_dir)


def optimized_models_dir() -> Path:
    """Weights indexes: small graph-only copies of a model whose weights are hard links to its own file."""
    return cache_dir() / "optimized"


def tensorrt_cache_dir() -> Path:
    """TensorRT engine and timing caches."""
    return cache_dir() / "tensorrt"


def config_dir() -> Path:
    """Settings."""
    return Path(_dirs().user_config_dir)


def data_dir() -> Path:
    """Data the user would miss (history, recordings kept on failure)."""
    return Path(_dirs().user_data_dir)


def log_dir() -> Path:
    """Log files."""
    return Path(_dirs().user_log_dir)
