"""One rule for `--quantization auto|int8|fp32`, the same in every command and the app."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from app.settings import Settings, resolved_weights
from stt.errors import ModelNotFoundError
from stt.modelfiles import ModelFiles
from stt.quantization import choose_weights, held_variants, resolve_weights

from .test_cli import perch

COMMON = ("vocab.txt", "config.json")
FP32 = ("encoder-model.onnx", "decoder_joint-model.onnx")
INT8 = ("encoder-model.int8.onnx", "decoder_joint-model.int8.onnx")


def folder_with(source: Path, target: Path, names: tuple[str, ...]) -> Path:
    """A model folder holding only `names` (plus the vocabulary and config) from `source`."""
    target.mkdir()
    for name in (*COMMON, *names):
        shutil.copy(source / name, target / name)
    return target


def never(_: object = None) -> bool:
    raise AssertionError("the device was asked although the folder decides")


@pytest.mark.parametrize(
    ("choice", "held", "gpu", "expected", "reason"),
    [
        ("auto", ("fp32",), False, "fp32", "only variant"),
        ("auto", ("int8",), True, "int8", "only variant"),
        ("auto", ("fp32", "int8"), False, "int8", "CPU"),
        ("auto", ("fp32", "int8"), True, "fp32", "GPU"),
        ("auto", (), False, "int8", "CPU"),
        ("auto", (), True, "fp32", "GPU"),
        ("int8", ("fp32",), True, "int8", "chosen"),
        ("fp32", ("int8",), False, "fp32", "chosen"),
    ],
)
def test_the_rule(choice: str, held: tuple[str, ...], gpu: bool, expected: str, reason: str) -> None:
    decided = choose_weights(choice, held, lambda: gpu)  # type: ignore[arg-type]
    assert decided.quantization == expected
    assert reason in decided.describe() and decided.describe().startswith(expected)


def test_a_folder_decides_without_asking_for_the_device(words_model: Path, tmp_path: Path) -> None:
    only_fp32 = folder_with(words_model, tmp_path / "fp32", FP32)
    only_int8 = folder_with(words_model, tmp_path / "int8", INT8)
    assert held_variants(only_fp32) == ("fp32",) and held_variants(words_model) == ("fp32", "int8")
    assert resolve_weights("auto", str(only_fp32), "auto", cuda_check=never).quantization == "fp32"
    assert resolve_weights("auto", str(only_int8), "cuda", cuda_check=never).quantization == "int8"
    assert resolve_weights("auto", str(words_model), "auto", cuda_check=lambda: False).quantization == "int8"
    assert resolve_weights("auto", str(words_model), "cpu", cuda_check=never).quantization == "int8"


def test_the_app_settings_follow_the_same_rule(words_model: Path, tmp_path: Path) -> None:
    only_fp32 = folder_with(words_model, tmp_path / "fp32", FP32)
    settings = dataclasses.replace(Settings(), model=str(only_fp32), quantization="auto", device="auto")
    assert resolved_weights(settings, cuda_available=False).quantization == "fp32"
    both = dataclasses.replace(settings, model=str(words_model))
    assert resolved_weights(both, cuda_available=False).quantization == "int8"
    assert resolved_weights(both, cuda_available=True).quantization == "fp32"


def test_an_explicit_choice_the_folder_lacks_is_a_clear_error(words_model: Path, tmp_path: Path) -> None:
    only_fp32 = folder_with(words_model, tmp_path / "fp32", FP32)
    with pytest.raises(ModelNotFoundError, match=r"lacks encoder-model\.int8\.onnx"):
        ModelFiles.locate(only_fp32, resolve_weights("int8", str(only_fp32), "cpu").quantization)
    done = perch("transcribe", str(tmp_path / "x.wav"), "--model", str(only_fp32), "--quantization", "int8")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "lacks encoder-model.int8.onnx" in done.stderr


def test_transcribe_and_listen_load_an_fp32_only_folder(words_model: Path, tmp_path: Path, speech_file: object) -> None:
    only_fp32 = folder_with(words_model, tmp_path / "fp32", FP32)
    clip = speech_file("seven three five")  # type: ignore[operator]
    done = perch("transcribe", str(clip), "--model", str(only_fp32), "--format", "json", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["quantization"] == "fp32" and record["text"] == "seven three five"
    done = perch("listen", "--file", str(clip), "--mode", "handsfree", "--model", str(only_fp32), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "seven three five" in done.stdout


def test_help_says_what_auto_means() -> None:
    for command in ((), ("transcribe",), ("listen",), ("bench",), ("doctor",), ("models", "download")):
        done = perch(*command, "--help")
        assert done.returncode == 0
        text = " ".join(done.stdout.split())
        assert "{auto,int8,fp32}" in text and "only variant the model folder holds" in text, command
