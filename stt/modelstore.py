"""Models on disk: where each catalog model lives, its completeness record, checks and removal."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stt import modelcache
from stt.catalog import CATALOG, QUANTIZATIONS, ModelSpec, Quantization, get_spec, variant_size
from stt.errors import ModelFileError, ModelNotFoundError
from stt.paths import models_dir

_HASH_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelStatus:
    """One catalog model in one quantization, and whether it is on disk."""

    name: str
    quantization: Quantization
    approx_size: int
    downloaded: bool
    path: Path


def model_dir(name: str) -> Path:
    """The folder that holds the files of catalog model `name`."""
    return models_dir() / name


def marker_path(name: str, quantization: Quantization) -> Path:
    """The file whose presence says that a variant was downloaded completely."""
    return model_dir(name) / f".perch-{quantization}.json"


def is_downloaded(name: str, quantization: Quantization) -> bool:
    """Whether the variant's marker exists and every file has the size it records."""
    return not marker_problems(get_spec(name), quantization)


def verify(name: str, quantization: Quantization) -> list[str]:
    """What is wrong with a downloaded variant, checking sizes and sha256 hashes; empty when it is sound."""
    spec = get_spec(name)
    problems = marker_problems(spec, quantization)
    if problems:
        return problems
    recorded = read_marker(spec.name, quantization)["files"]
    directory = model_dir(name)
    for file in spec.files[quantization]:
        expected = file.sha256 or recorded[file.name].get("sha256")
        if expected and sha256_of(directory / file.name) != expected:
            problems.append(f"{file.name} does not match its sha256 hash")
    return problems


def resolve_model_dir(model: str, quantization: Quantization = "fp32") -> Path:
    """The folder to load `model` from: a catalog name that is on disk, or any existing folder."""
    if model not in CATALOG:
        path = Path(model).expanduser()
        if path.is_dir():
            return path
        raise ModelNotFoundError(
            f"unknown model {model!r}: not a catalog name and not a folder; known models: {', '.join(CATALOG)}"
        )
    spec = CATALOG[model]
    directory = model_dir(model)
    if marker_path(model, quantization).exists():
        problems = marker_problems(spec, quantization)
        if problems:
            raise ModelFileError(
                f"model {model} ({quantization}) is damaged ({'; '.join(problems)}); "
                f"run `perch models download {model} --quantization {quantization} --force`"
            )
        return directory
    if not placed_problems(spec, quantization, directory):
        return directory
    raise ModelNotFoundError(
        f"model {model} ({quantization}) is not downloaded; run "
        f"`perch models download {model} --quantization {quantization}`, or place its files "
        f"({file_list(spec, quantization)}) in {directory}"
    )


def list_models() -> list[ModelStatus]:
    """Every catalog model in every quantization, with its download state."""
    return [
        ModelStatus(
            spec.name,
            quantization,
            variant_size(spec, quantization),
            is_downloaded(spec.name, quantization),
            model_dir(spec.name),
        )
        for spec in CATALOG.values()
        for quantization in QUANTIZATIONS
        if quantization in spec.files
    ]


def remove(name: str) -> Path:
    """Delete a downloaded model's folder, all quantizations included."""
    if name in {"", ".", ".."} or Path(name).name != name:
        raise ModelNotFoundError(f"{name!r} is not a model name")
    directory = model_dir(name)
    if not directory.is_dir():
        raise ModelNotFoundError(f"model {name} is not downloaded (no folder {directory})")
    shutil.rmtree(directory)
    modelcache.clean()  # its weights indexes hold hard links to the files just removed
    return directory


def record(size: int, sha256: str | None) -> dict[str, Any]:
    """One file's entry in a completeness record."""
    return {"size": size, "sha256": sha256} if sha256 else {"size": size}


def save_marker(
    spec: ModelSpec, quantization: Quantization, revision: str | None, records: dict[str, dict[str, Any]]
) -> None:
    """Write the completeness record of a variant, atomically."""
    marker = marker_path(spec.name, quantization)
    content = {"repo_id": spec.repo_id, "revision": revision, "quantization": quantization, "files": records}
    temporary = marker.with_suffix(".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    temporary.replace(marker)


def read_marker(name: str, quantization: Quantization) -> dict[str, Any]:
    """A variant's completeness record; ValueError when it is malformed."""
    content = json.loads(marker_path(name, quantization).read_text(encoding="utf-8"))
    if not isinstance(content, dict) or not isinstance(content.get("files"), dict):
        raise ValueError("marker has no file list")
    return content


def marker_problems(spec: ModelSpec, quantization: Quantization) -> list[str]:
    """What keeps a variant from counting as downloaded, judged by its marker and file sizes."""
    if quantization not in spec.files:
        raise ModelNotFoundError(f"model {spec.name} has no {quantization} variant")
    if not marker_path(spec.name, quantization).is_file():
        return ["not downloaded"]
    try:
        recorded = read_marker(spec.name, quantization)["files"]
    except (OSError, ValueError):
        return ["its download record is unreadable"]
    directory = model_dir(spec.name)
    problems = []
    for file in spec.files[quantization]:
        entry = recorded.get(file.name)
        path = directory / file.name
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
            problems.append(f"{file.name} is not in the download record")
        elif not path.is_file():
            problems.append(f"{file.name} is missing")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{file.name} is {path.stat().st_size} bytes instead of {entry['size']}")
    return problems


def placed_problems(spec: ModelSpec, quantization: Quantization, directory: Path) -> list[str]:
    """What is wrong with files placed by hand: missing ones, or sizes that differ from the catalog's."""
    missing = [file.name for file in spec.files[quantization] if not (directory / file.name).is_file()]
    problems = [f"missing {', '.join(missing)}"] if missing else []
    for file in spec.files[quantization]:
        path = directory / file.name
        if file.size is not None and path.is_file() and path.stat().st_size != file.size:
            problems.append(f"{file.name} is {path.stat().st_size} bytes instead of {file.size}")
    return problems


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_list(spec: ModelSpec, quantization: Quantization) -> str:
    """The variant's file names, for messages."""
    return ", ".join(file.name for file in spec.files[quantization])
