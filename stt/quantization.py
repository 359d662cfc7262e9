"""Which weights to load: an explicit choice, or `auto`, decided the same way by every command and the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stt.modelfiles import QUANTIZATIONS, Quantization, model_file_names

QuantizationChoice = Literal["auto", "int8", "fp32"]
QUANTIZATION_CHOICES: tuple[QuantizationChoice, ...] = ("auto", "int8", "fp32")

AUTO_RULE = "the only variant the model folder holds, otherwise int8 on the CPU and fp32 on CUDA/TensorRT"
"""What `auto` means, for help texts."""


@dataclass(frozen=True)
class WeightsChoice:
    """The weights chosen and why, e.g. `int8` because `auto` runs on the CPU."""

    quantization: Quantization
    choice: QuantizationChoice
    reason: str

    def describe(self) -> str:
        """'int8 (auto: the CPU runs the model)' or 'fp32 (chosen)'."""
        return f"{self.quantization} ({self.reason})"


def held_variants(directory: Path) -> tuple[Quantization, ...]:
    """The variants whose encoder and decoder+joint files `directory` holds."""
    return tuple(q for q in QUANTIZATIONS if all((directory / name).is_file() for name in model_file_names(q)))


def device_runs_on_gpu(device: str, cuda_works: Callable[[], bool]) -> bool:
    """Whether sessions for `device` will run on an NVIDIA GPU: never for `cpu`, else when CUDA works here
    (`cuda`/`tensorrt` fall back to the CPU when it does not)."""
    return device != "cpu" and cuda_works()


def choose_weights(
    choice: QuantizationChoice, held: tuple[Quantization, ...], on_gpu: Callable[[], bool]
) -> WeightsChoice:
    """Apply the rule: an explicit choice stands; `auto` takes the only variant held, else int8 on the CPU and
    fp32 on a GPU. `on_gpu` is called only when the device decides."""
    if choice != "auto":
        return WeightsChoice(choice, choice, "chosen")
    if len(held) == 1:
        return WeightsChoice(held[0], choice, "auto: the only variant in the model folder")
    if on_gpu():
        return WeightsChoice("fp32", choice, "auto: the model runs on an NVIDIA GPU")
    return WeightsChoice("int8", choice, "auto: the model runs on the CPU")


def cuda_works() -> bool:
    """Whether ONNX Runtime runs on an NVIDIA GPU here (slow the first time: call it off the GUI thread)."""
    from stt.runtime import cuda_problem

    return cuda_problem() is None


def resolve_weights(
    choice: QuantizationChoice, model: str, device: str, cuda_check: Callable[[], bool] = cuda_works
) -> WeightsChoice:
    """The weights for a catalog model name or a model folder on `device`."""
    from stt.catalog import CATALOG
    from stt.modelstore import model_dir

    directory = model_dir(model) if model in CATALOG else Path(model).expanduser()
    held = held_variants(directory) if directory.is_dir() else ()
    return choose_weights(choice, held, lambda: device_runs_on_gpu(device, cuda_check))
