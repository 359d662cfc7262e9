"""Download catalog models from the Hugging Face hub into Perch's model folder, and find them again."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import httpx2
from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.file_download import http_get

from stt.catalog import ModelFile, ModelSpec, Quantization, get_spec
from stt.errors import DownloadError, ModelFileError
from stt.modelstore import (
    ModelStatus,
    file_list,
    is_downloaded,
    list_models,
    marker_path,
    marker_problems,
    model_dir,
    placed_problems,
    read_marker,
    record,
    remove,
    resolve_model_dir,
    save_marker,
    sha256_of,
    verify,
)
from stt.paths import models_dir

__all__ = [
    "ModelStatus",
    "ProgressCallback",
    "download",
    "is_downloaded",
    "list_models",
    "marker_path",
    "model_dir",
    "remove",
    "resolve_model_dir",
    "verify",
]

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes total) over all files of the variant being downloaded."""

_PARTIAL_DIR = ".partial"
_LOCK_DIR = ".locks"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class _Remote:
    """Where one file is served and what the hub says about it."""

    file: ModelFile
    url: str
    etag: str
    size: int
    sha256: str | None


def download(
    name: str,
    quantization: Quantization = "fp32",
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download a variant into its model folder, resuming partial files, and return the folder."""
    spec = get_spec(name)
    directory = model_dir(name)
    if not force and is_downloaded(name, quantization):
        total = sum(read_marker(name, quantization)["files"][f.name]["size"] for f in spec.files[quantization])
        _report(progress, total, total)
        return directory
    if _offline():
        return _adopt_offline(spec, quantization, force=force)
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = models_dir() / _LOCK_DIR / f"{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with filelock.FileLock(lock_path, timeout=0):
            marker_path(name, quantization).unlink(missing_ok=True)
            if force:
                _delete_variant(spec, quantization)
            _fetch_variant(spec, quantization, progress)
    except filelock.Timeout:
        raise DownloadError(f"another download of {name} is already running into {directory}") from None
    except HfHubHTTPError as error:
        raise _http_error(spec, quantization, error) from error
    except (httpx2.HTTPError, OfflineModeIsEnabled) as error:
        raise _unreachable(spec, quantization, error) from error
    except DownloadError:
        raise
    except OSError as error:
        raise DownloadError(
            f"download of {name} ({quantization}) failed: {_one_line(error)}; run "
            f"`perch models download {name} --quantization {quantization}` again to resume"
        ) from error
    return directory


def _fetch_variant(spec: ModelSpec, quantization: Quantization, progress: ProgressCallback | None) -> None:
    directory = model_dir(spec.name)
    remotes, revision = _lookup(spec, quantization)
    partial_dir = directory / _PARTIAL_DIR
    partial_dir.mkdir(exist_ok=True)
    done = 0
    pending: list[tuple[_Remote, Path]] = []
    for remote in remotes:
        if _is_fetched(directory / remote.file.name, remote):
            done += remote.size
            continue
        part = partial_dir / f"{remote.file.name}.{hashlib.sha256(remote.etag.encode()).hexdigest()[:12]}.part"
        for stale in partial_dir.glob(f"{remote.file.name}.*.part"):
            if stale != part:
                stale.unlink()
        if part.exists() and part.stat().st_size > remote.size:
            part.unlink()
        done += part.stat().st_size if part.exists() else 0
        pending.append((remote, part))
    total = sum(remote.size for remote in remotes)
    needed = total - done
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space for {spec.name} ({quantization}): it needs {needed / 1e6:.0f} MB more "
            f"and {directory} has {free / 1e6:.0f} MB free"
        )
    tally = _Tally(done, total, progress)
    tally.add(0)
    for remote, part in pending:
        _fetch_file(remote, part, directory / remote.file.name, tally)
    tally.finish()
    _write_marker(spec, quantization, revision, remotes)
    _remove_if_empty(partial_dir)


def _lookup(spec: ModelSpec, quantization: Quantization) -> tuple[list[_Remote], str]:
    """Ask the hub where each file is and how big it is, pinned to one commit."""
    endpoint = os.environ.get("HF_ENDPOINT") or None
    revision = spec.revision
    remotes: list[_Remote] = []
    for file in spec.files[quantization]:
        url = hf_hub_url(spec.repo_id, file.name, revision=revision, endpoint=endpoint)
        meta = get_hf_file_metadata(url, library_name="perch", endpoint=endpoint)
        if meta.commit_hash is None or meta.etag is None:
            raise DownloadError(
                f"{url} did not answer like the Hugging Face hub (no commit or ETag header); "
                "check HF_ENDPOINT and any proxy"
            )
        revision = meta.commit_hash
        size = meta.size if meta.size is not None else file.size
        if size is None:
            raise DownloadError(f"the hub did not give the size of {file.name} in {spec.repo_id}")
        if file.size is not None and size != file.size:
            raise ModelFileError(
                f"{file.name} in {spec.repo_id} is {size} bytes on the hub but Perch expects {file.size}; "
                "the repo has changed, so update Perch or place the files by hand"
            )
        sha256 = file.sha256 or (meta.etag if _SHA256.fullmatch(meta.etag) else None)
        remotes.append(_Remote(file, meta.location, meta.etag, size, sha256))
    return remotes, revision


def _fetch_file(remote: _Remote, part: Path, destination: Path, tally: _Tally) -> None:
    """Download one file into `part`, continuing where an earlier attempt stopped, then move it in place."""
    resume = part.stat().st_size if part.exists() else 0
    with part.open("ab") as handle:
        http_get(
            remote.url,
            handle,
            resume_size=resume,
            expected_size=remote.size,
            displayed_filename=remote.file.name,
            tqdm_class=tally.bar_class(),
        )
    if remote.sha256 is not None and sha256_of(part) != remote.sha256:
        part.unlink()
        raise ModelFileError(
            f"{remote.file.name} was downloaded but does not match its sha256 hash, so it was deleted; "
            "run the download again, and report it if this repeats"
        )
    part.replace(destination)


def _is_fetched(path: Path, remote: _Remote) -> bool:
    if not path.is_file() or path.stat().st_size != remote.size:
        return False
    if remote.sha256 is not None and sha256_of(path) != remote.sha256:
        path.unlink()
        return False
    return True


class _Tally:
    """Sums byte counts of the files of one variant and forwards them to a progress callback."""

    def __init__(self, done: int, total: int, callback: ProgressCallback | None) -> None:
        self.done = done
        self.total = total
        self.callback = callback

    def add(self, count: int) -> None:
        self.done += count
        _report(self.callback, min(max(self.done, 0), self.total), self.total)

    def finish(self) -> None:
        self.done = self.total
        _report(self.callback, self.total, self.total)

    def bar_class(self) -> type[Any]:
        """A silent progress-bar class, shaped as huggingface_hub uses it, whose updates land here."""
        tally = self

        class _Bar:
            def __init__(self, **_: Any) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *_: object) -> None:
                pass

            def update(self, n: float | None = 1) -> None:
                tally.add(int(n or 0))

        return _Bar


def _report(callback: ProgressCallback | None, done: int, total: int) -> None:
    if callback is not None:
        callback(done, total)


def _adopt_offline(spec: ModelSpec, quantization: Quantization, *, force: bool) -> Path:
    """In offline mode, accept files placed by hand (writing their marker) or say what is missing."""
    directory = model_dir(spec.name)
    if force:
        problems = ["offline mode cannot download again"]
    elif marker_path(spec.name, quantization).exists():
        # A recorded download that no longer matches its record is damaged, not placed by hand.
        problems = marker_problems(spec, quantization)
    else:
        problems = placed_problems(spec, quantization, directory)
    if problems:
        raise DownloadError(
            f"offline mode is on (HF_HUB_OFFLINE) and model {spec.name} ({quantization}) cannot be downloaded "
            f"({'; '.join(problems)}); unset HF_HUB_OFFLINE and run "
            f"`perch models download {spec.name} --quantization {quantization}`, or place the files by hand in "
            f"{directory} ({file_list(spec, quantization)})"
        )
    files = spec.files[quantization]
    for file in files:
        if file.sha256 is not None and sha256_of(directory / file.name) != file.sha256:
            raise ModelFileError(f"{directory / file.name} does not match its sha256 hash; replace it")
    records = {file.name: record((directory / file.name).stat().st_size, file.sha256) for file in files}
    save_marker(spec, quantization, None, records)
    return directory


def _write_marker(spec: ModelSpec, quantization: Quantization, revision: str, remotes: Iterable[_Remote]) -> None:
    records = {remote.file.name: record(remote.size, remote.sha256) for remote in remotes}
    save_marker(spec, quantization, revision, records)


def _delete_variant(spec: ModelSpec, quantization: Quantization) -> None:
    directory = model_dir(spec.name)
    for file in spec.files[quantization]:
        (directory / file.name).unlink(missing_ok=True)
        for part in (directory / _PARTIAL_DIR).glob(f"{file.name}.*.part"):
            part.unlink()


def _remove_if_empty(directory: Path) -> None:
    with suppress(OSError):
        directory.rmdir()


def _offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; this also honours a later change.
    return hf_constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _one_line(error: BaseException) -> str:
    """A short reason: the status of an HTTP error, else the first 200 characters of the message."""
    if isinstance(error, HfHubHTTPError):
        response = error.response
        detail = error.server_message or response.reason_phrase
        return f"HTTP {response.status_code} {detail} from {response.url.host}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _unreachable(spec: ModelSpec, quantization: Quantization, error: BaseException) -> DownloadError:
    return DownloadError(
        f"cannot reach the Hugging Face hub to download {spec.name} ({_one_line(error)}); connect to the "
        f"internet and run `perch models download {spec.name} --quantization {quantization}`, or place the "
        f"files by hand in {model_dir(spec.name)} ({file_list(spec, quantization)})"
    )


def _http_error(spec: ModelSpec, quantization: Quantization, error: HfHubHTTPError) -> DownloadError:
    status = error.response.status_code
    if status >= 500 or status in {408, 429}:
        return _unreachable(spec, quantization, error)
    return DownloadError(
        f"the Hugging Face hub refused to serve {spec.name} from {spec.repo_id} ({_one_line(error)}); "
        f"check the repo still exists, or place the files by hand in {model_dir(spec.name)}"
    )
