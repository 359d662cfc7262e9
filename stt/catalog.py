"""The models Perch can download: repos, files, sizes and hashes."""

from __future__ import annotations

from dataclasses import dataclass

from stt.errors import ModelNotFoundError
from stt.modelfiles import QUANTIZATIONS, Quantization

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "QUANTIZATIONS",
    "ModelFile",
    "ModelSpec",
    "Quantization",
    "get_spec",
    "variant_size",
]


@dataclass(frozen=True)
class ModelFile:
    """One file of a model repo; `size` and `sha256` are set only where known exactly."""

    name: str
    size: int | None
    sha256: str | None
    approx_size: int


@dataclass(frozen=True)
class ModelSpec:
    """A downloadable model: its Hugging Face repo and the files each quantization needs."""

    name: str
    repo_id: str
    languages: str
    description: str
    files: dict[Quantization, tuple[ModelFile, ...]]
    revision: str = "main"


def _exact(name: str, size: int, sha256: str | None = None) -> ModelFile:
    return ModelFile(name, size, sha256, size)


def _approx(name: str, approx_size: int) -> ModelFile:
    return ModelFile(name, None, None, approx_size)


# Both repos ship the same 97-byte config.json.
_CONFIG = _exact("config.json", 97, "666903c76b9798caf2c210afd4f6cd60b08a8dbf9800ec8d7a3bc0d2148ac466")

_V3_LANGUAGES = "bg hr cs da nl en et fi fr de el hu it lv lt mt pl pt ro sk sl es sv ru uk"

_V3 = ModelSpec(
    name="parakeet-tdt-0.6b-v3",
    repo_id="istupakov/parakeet-tdt-0.6b-v3-onnx",
    languages=_V3_LANGUAGES,
    description="NVIDIA Parakeet-TDT 0.6B v3: 25 European languages, punctuation and capitals",
    files={
        "fp32": (
            _CONFIG,
            _exact("vocab.txt", 93_939),
            _approx("encoder-model.onnx", 41_800_000),
            _approx("encoder-model.onnx.data", 2_440_000_000),
            _approx("decoder_joint-model.onnx", 72_500_000),
        ),
        "int8": (
            _CONFIG,
            _exact("vocab.txt", 93_939),
            _exact("encoder-model.int8.onnx", 652_183_999),
            _exact("decoder_joint-model.int8.onnx", 18_202_004),
        ),
    },
)

_V2 = ModelSpec(
    name="parakeet-tdt-0.6b-v2",
    repo_id="istupakov/parakeet-tdt-0.6b-v2-onnx",
    languages="en",
    description="NVIDIA Parakeet-TDT 0.6B v2: English only, punctuation and capitals",
    files={
        "fp32": (
            _CONFIG,
            _exact("vocab.txt", 9_384),
            _exact("encoder-model.onnx", 41_770_866),
            _exact("encoder-model.onnx.data", 2_435_420_160),
            _exact("decoder_joint-model.onnx", 35_792_059),
        ),
        # The v2 int8 sizes are not published; these are scaled from the v3 files.
        "int8": (
            _CONFIG,
            _exact("vocab.txt", 9_384),
            _approx("encoder-model.int8.onnx", 652_000_000),
            _approx("decoder_joint-model.int8.onnx", 9_000_000),
        ),
    },
)

DEFAULT_MODEL = _V3.name

# A plain dict so that tests can register a model served by a local hub.
CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in (_V3, _V2)}


def get_spec(name: str) -> ModelSpec:
    """The catalog entry called `name`."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelNotFoundError(f"unknown model {name!r}; known models: {', '.join(CATALOG)}") from None


def variant_size(spec: ModelSpec, quantization: Quantization) -> int:
    """Approximate total size in bytes of the files one quantization needs."""
    return sum(file.approx_size for file in spec.files[quantization])
