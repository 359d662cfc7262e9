"""The input/output contract of Parakeet-TDT ONNX files, checked on the loaded sessions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stt.errors import ContractError


class _Arg(Protocol):
    name: str
    type: str
    shape: list[int | str | None]


class _Session(Protocol):
    def get_inputs(self) -> list[_Arg]: ...
    def get_outputs(self) -> list[_Arg]: ...


@dataclass(frozen=True)
class TensorSpec:
    """Expected name, element type and rank of one tensor."""

    name: str
    dtype: str
    rank: int


ENCODER_INPUTS = (TensorSpec("audio_signal", "tensor(float)", 3), TensorSpec("length", "tensor(int64)", 1))
ENCODER_OUTPUTS = (TensorSpec("outputs", "tensor(float)", 3), TensorSpec("encoded_lengths", "tensor(int64)", 1))
DECODER_INPUTS = (
    TensorSpec("encoder_outputs", "tensor(float)", 3),
    TensorSpec("targets", "tensor(int32)", 2),
    TensorSpec("target_length", "tensor(int32)", 1),
    TensorSpec("input_states_1", "tensor(float)", 3),
    TensorSpec("input_states_2", "tensor(float)", 3),
)
DECODER_OUTPUTS = (
    TensorSpec("outputs", "tensor(float)", 4),
    TensorSpec("prednet_lengths", "tensor(int32)", 1),
    TensorSpec("output_states_1", "tensor(float)", 3),
    TensorSpec("output_states_2", "tensor(float)", 3),
)


@dataclass(frozen=True)
class ModelShape:
    """Sizes read from the files: encoder channels, LSTM state shape and joint width."""

    encoder_channels: int
    state_layers: int
    state_hidden: int
    joint_width: int | None


def _fixed(dim: int | str | None) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _check(path: Path, kind: str, found: list[_Arg], expected: tuple[TensorSpec, ...]) -> dict[str, _Arg]:
    by_name = {arg.name: arg for arg in found}
    for spec in expected:
        arg = by_name.get(spec.name)
        if arg is None:
            names = ", ".join(sorted(by_name)) or "none"
            raise ContractError(f"{path.name}: {kind} {spec.name!r} is missing (found: {names})")
        if arg.type != spec.dtype:
            raise ContractError(f"{path.name}: {kind} {spec.name!r} should be {spec.dtype}, found {arg.type}")
        if len(arg.shape) != spec.rank:
            raise ContractError(
                f"{path.name}: {kind} {spec.name!r} should have rank {spec.rank}, found shape {arg.shape}"
            )
    return by_name


def _pin(path: Path, what: str, found: int | str | None, expected: int) -> None:
    size = _fixed(found)
    if size is not None and size != expected:
        raise ContractError(f"{path.name}: {what} should be {expected}, found {size}")


def check_contract(
    encoder: _Session,
    encoder_path: Path,
    decoder: _Session,
    decoder_path: Path,
    *,
    features_size: int,
    vocab_size: int,
    num_durations: int,
) -> ModelShape:
    """Check names, dtypes, ranks and cross-file sizes; raise ContractError naming file and tensor."""
    enc_in = _check(encoder_path, "input", encoder.get_inputs(), ENCODER_INPUTS)
    enc_out = _check(encoder_path, "output", encoder.get_outputs(), ENCODER_OUTPUTS)
    dec_in = _check(decoder_path, "input", decoder.get_inputs(), DECODER_INPUTS)
    dec_out = _check(decoder_path, "output", decoder.get_outputs(), DECODER_OUTPUTS)

    _pin(
        encoder_path,
        "input 'audio_signal' axis 1 (features_size in config.json)",
        enc_in["audio_signal"].shape[1],
        features_size,
    )
    channels = _fixed(enc_out["outputs"].shape[1]) or _fixed(dec_in["encoder_outputs"].shape[1])
    if channels is None:
        raise ContractError(f"{encoder_path.name}: output 'outputs' axis 1 (channels) must have a fixed size")
    _pin(
        decoder_path,
        f"input 'encoder_outputs' axis 1 (= {encoder_path.name} output channels)",
        dec_in["encoder_outputs"].shape[1],
        channels,
    )
    _pin(decoder_path, "input 'encoder_outputs' axis 2", dec_in["encoder_outputs"].shape[2], 1)

    states = dec_in["input_states_1"].shape
    layers, hidden = _fixed(states[0]), _fixed(states[2])
    if layers is None or hidden is None:
        raise ContractError(f"{decoder_path.name}: input 'input_states_1' must have fixed axes 0 and 2, found {states}")
    for name in ("input_states_2", "output_states_1", "output_states_2"):
        shape = (dec_in | dec_out)[name].shape
        _pin(decoder_path, f"'{name}' axis 0", shape[0], layers)
        _pin(decoder_path, f"'{name}' axis 2", shape[2], hidden)

    width = _fixed(dec_out["outputs"].shape[3])
    if width is not None and width != vocab_size + num_durations:
        raise ContractError(
            f"{decoder_path.name}: output 'outputs' has {width} logits, but vocab.txt has {vocab_size} tokens "
            f"(with blank) + {num_durations} durations = {vocab_size + num_durations}; "
            "the vocabulary does not belong to this model"
        )
    return ModelShape(channels, layers, hidden, width)
