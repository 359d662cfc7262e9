"""The model cache: weights indexes, written in the background after a load, and old caches cleared away.

Each index lives in `optimized_models_dir()/<stem>-<key>/`: the index graph, a hard link to each file it reads
(ONNX Runtime refuses external data outside the graph's folder, a symbolic link included), and the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

from stt import paths
from stt.weights_index import build_index

log = logging.getLogger(__name__)

INDEX_FILE = "perch-index.onnx"
KEY_FILE = "perch-index.json"
MAX_SHARE = 0.10
"""An index larger than this share of its model is not kept."""
MIN_GAIN_BYTES = 32 * 2**20
"""Models that embed less than this load as fast from the file itself; they get no index."""
SMALL_MODEL_BYTES = 128 * 2**20
"""A model this small is indexed at once, before its first load (about 20 ms for the 72 MB fp32 decoder+joint):
the first load then maps its weights too, which keeps the first run's peak memory as low as later runs'."""
STAGING_MAX_AGE_S = 600.0
"""A staging folder older than this was left by a process that stopped while writing."""


def _key(model: Path) -> dict[str, Any]:
    stat = model.stat()
    return {
        "model": str(model.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "onnxruntime": ort.__version__,
    }


def index_folder(model: Path) -> Path:
    """Where the index of `model`, as it is now, lives."""
    digest = hashlib.sha256(json.dumps(_key(model), sort_keys=True).encode()).hexdigest()[:20]
    return paths.optimized_models_dir() / f"{model.stem}-{digest}"


def _sound(folder: Path, model: Path | None = None) -> bool:
    """Whether the index in `folder` belongs to its model as it is now, and its links are that model's files."""
    try:
        saved = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
        model = model or Path(saved["key"]["model"])
        return bool(
            saved["key"] == _key(model)
            and (folder / INDEX_FILE).is_file()
            and all((folder / name).samefile(model.parent / name) for name in saved["files"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def index_if_small(model: Path) -> None:
    """Write the index of a small model now when it has none (a large one is indexed after its load instead)."""
    try:
        small = model.stat().st_size <= SMALL_MODEL_BYTES
    except OSError:
        return
    if small and cached_index(model) is None:
        write_index(model)


def cached_index(model: Path) -> Path | None:
    """The index to load in place of `model`, when a sound one is cached."""
    folder = index_folder(model)
    if _sound(folder, model):
        return folder / INDEX_FILE
    if folder.exists():
        log.debug("the weights index of %s is damaged; loading the model itself", model.name)
    return None


def discard(index: Path) -> None:
    """Remove an index that ONNX Runtime could not load."""
    shutil.rmtree(index.parent, ignore_errors=True)


def write_index(model: Path) -> Path | None:
    """Write the index of `model` into the cache; None where it would not pay or cannot be made."""
    key = _key(model)
    try:
        if key["size"] < MIN_GAIN_BYTES:
            return None
        index = build_index(model)
    except (OSError, ValueError) as exc:  # UnindexableModelError is a ValueError, as is mmap's on an empty file
        log.debug("no weights index for %s: %s", model.name, exc)
        return None
    size = len(index.graph)
    if size > MAX_SHARE * key["size"] or key["size"] - size < MIN_GAIN_BYTES or {INDEX_FILE, KEY_FILE} & index.files:
        log.debug("no weights index for %s: it would be %d of %d bytes", model.name, size, key["size"])
        return None
    folder = index_folder(model)
    staging = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in index.files:
            os.link(model.parent / name, staging / name)
        (staging / INDEX_FILE).write_bytes(index.graph)
        (staging / KEY_FILE).write_text(json.dumps({"key": key, "files": sorted(index.files)}), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    except OSError as exc:  # another file system (no hard link), a full disk, or another process won the race
        log.debug("no weights index for %s: %s", model.name, exc)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.debug("wrote the weights index of %s (%d bytes)", model.name, size)
    return folder / INDEX_FILE


def _freed(folder: Path) -> int:
    """Bytes that removing `folder` gives back (a hard link to a file that lives on frees nothing)."""
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            stat = path.lstat()
            if path.is_file() and stat.st_nlink == 1:
                total += stat.st_size
    return total


def _size(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def clean(root: Path | None = None) -> int:
    """Remove old-style caches (full optimised copies), stale indexes and abandoned staging folders; bytes freed."""
    root = root or paths.optimized_models_dir()
    if not root.is_dir():
        return 0
    freed = 0
    for folder in root.iterdir():
        try:
            if not folder.is_dir():
                continue
            if folder.suffix.startswith(".tmp"):
                stale = time.time() - folder.stat().st_mtime > STAGING_MAX_AGE_S
            elif (folder / KEY_FILE).is_file():
                stale = not _sound(folder)
            else:
                stale = True  # a full copy from the old cache, or something unknown in our folder
        except OSError:
            continue
        if stale:
            freed += _freed(folder)
            shutil.rmtree(folder, ignore_errors=True)
    return freed


_lock = threading.Condition()
_queue: list[Path] = []
_busy = False
_cleaned = False


def refresh_later(*models: Path) -> None:
    """After a load: in a background thread, clear old caches (once) and write each model's index if it lacks one."""
    global _busy  # noqa: PLW0603
    with _lock:
        _queue.extend(models)
        if _busy:
            return
        _busy = True
    threading.Thread(target=_work, name="perch-model-cache", daemon=True).start()


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until the background work is done (for tests); False on timeout."""
    with _lock:
        return _lock.wait_for(lambda: not _busy, timeout)


def _work() -> None:
    global _busy, _cleaned  # noqa: PLW0603
    if sys.platform == "linux":  # the nice value is per thread on Linux
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    while True:
        with _lock:
            if not _queue:
                _busy = False
                _lock.notify_all()
                return
            model = _queue.pop(0)
        try:  # a cache must never take the app down
            if not _cleaned:
                _cleaned = True
                freed = clean()
                if freed:
                    log.info("removed old optimised models from the cache: %s freed", _size(freed))
            if cached_index(model) is None:
                write_index(model)
        except Exception:
            log.debug("model cache work failed", exc_info=True)
