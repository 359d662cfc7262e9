"""A model directory in the published Parakeet-TDT ONNX layout, located and checked before loading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stt.errors import ModelFileError, ModelNotFoundError

Quantization = Literal["fp32", "int8"]
QUANTIZATIONS: tuple[Quantization, ...] = ("fp32", "int8")


def model_file_names(quantization: Quantization) -> tuple[str, str]:
    """Encoder and decoder+joint file names of a quantization."""
    suffix = ".int8" if quantization == "int8" else ""
    return f"encoder-model{suffix}.onnx", f"decoder_joint-model{suffix}.onnx"


@dataclass(frozen=True)
class ModelConfig:
    """The keys of `config.json` the engine uses."""

    features_size: int = 128
    subsampling_factor: int = 8
    max_tokens_per_step: int = 10

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        """Parse `config.json`, naming the file and the key on any problem."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path} is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ModelFileError(f"{path} must hold a JSON object, found {type(raw).__name__}")
        model_type = raw.get("model_type", "nemo-conformer-tdt")
        if model_type != "nemo-conformer-tdt":
            raise ModelFileError(f"{path}: model_type is {model_type!r}; Perch runs 'nemo-conformer-tdt' models")
        values: dict[str, int] = {}
        for key, default in (
            ("features_size", cls.features_size),
            ("subsampling_factor", cls.subsampling_factor),
            ("max_tokens_per_step", cls.max_tokens_per_step),
        ):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelFileError(f"{path}: {key} must be a positive integer, found {value!r}")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one model variant's files; `fix` tells the user how to repair a bad file."""

    directory: Path
    quantization: Quantization
    encoder: Path
    decoder_joint: Path
    vocab: Path
    config: Path
    fix: str

    @classmethod
    def locate(cls, directory: Path, quantization: Quantization, fix: str = "") -> ModelFiles:
        """Find the variant's files in `directory`; each must exist and be non-empty."""
        encoder_name, decoder_name = model_file_names(quantization)
        fix = fix or f"replace it with a good copy in {directory}"
        if not directory.is_dir():
            raise ModelNotFoundError(f"model directory {directory} does not exist")
        paths = [directory / name for name in (encoder_name, decoder_name, "vocab.txt", "config.json")]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise ModelNotFoundError(f"{directory} lacks {', '.join(missing)} for the {quantization} model; {fix}")
        for path in paths:
            if path.stat().st_size == 0:
                raise ModelFileError(f"{path} is empty; {fix}")
        encoder, decoder, vocab, config = paths
        return cls(directory, quantization, encoder, decoder, vocab, config, fix)
