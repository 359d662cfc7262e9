"""Broken or mismatched model files fail at load with an error naming the file and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

from stt.engine import Recognizer
from stt.errors import ContractError, ModelFileError, ModelNotFoundError
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

CPU = RuntimeOptions(device="cpu", cache_optimized=False)


@pytest.fixture
def model_copy(words_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(words_model, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def load(directory: Path, quantization: str = "fp32") -> Recognizer:
    return Recognizer(ModelFiles.locate(directory, quantization, "FIX-HINT"), CPU, warm_up=False)  # type: ignore[arg-type]


def test_the_copy_loads(model_copy: Path) -> None:
    assert load(model_copy).shape.encoder_channels == 144


def test_missing_file(model_copy: Path) -> None:
    (model_copy / "decoder_joint-model.int8.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match=r"decoder_joint-model\.int8\.onnx.*FIX-HINT"):
        load(model_copy, "int8")


def test_empty_file(model_copy: Path) -> None:
    (model_copy / "vocab.txt").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"vocab\.txt is empty; FIX-HINT"):
        load(model_copy)


@pytest.mark.parametrize("name", ["encoder-model.onnx", "decoder_joint-model.onnx"])
def test_truncated_onnx(model_copy: Path, name: str) -> None:
    path = model_copy / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ModelFileError, match=rf"{name} is not a loadable ONNX model .*FIX-HINT"):
        load(model_copy)


def test_garbage_onnx(model_copy: Path) -> None:
    (model_copy / "encoder-model.onnx").write_bytes(b"this is not a protobuf" * 100)
    with pytest.raises(ModelFileError, match=r"encoder-model\.onnx"):
        load(model_copy)


def test_vocab_that_does_not_match_the_joint(model_copy: Path) -> None:
    lines = (model_copy / "vocab.txt").read_text(encoding="utf-8").splitlines()
    shorter = [*lines[:-2], f"<blk> {len(lines) - 2}"]
    (model_copy / "vocab.txt").write_text("\n".join(shorter) + "\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"47 logits, but vocab.txt has 41 tokens.*does not belong"):
        load(model_copy)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"features_size": "128"}', '{"features_size": 0}', '{"model_type": "whisper"}'],
)
def test_malformed_config(model_copy: Path, content: str) -> None:
    (model_copy / "config.json").write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"config\.json"):
        load(model_copy)


def test_features_size_must_match_the_encoder(model_copy: Path) -> None:
    (model_copy / "config.json").write_text('{"features_size": 80}', encoding="utf-8")
    with pytest.raises(ContractError, match=r"encoder-model\.onnx: input 'audio_signal' axis 1.*80, found 128"):
        load(model_copy)


def _rename_input(path: Path, old: str, new: str) -> None:
    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    onnx.save(model, str(path))


def test_renamed_tensor_names_file_and_tensor(model_copy: Path) -> None:
    _rename_input(model_copy / "decoder_joint-model.onnx", "targets", "labels")
    with pytest.raises(ContractError, match=r"decoder_joint-model\.onnx: input 'targets' is missing \(found: .*labels"):
        load(model_copy)


def test_wrong_dtype_is_reported(model_copy: Path) -> None:
    path = model_copy / "decoder_joint-model.onnx"
    model = onnx.load(str(path))
    graph_input = next(v for v in model.graph.input if v.name == "target_length")
    graph_input.type.tensor_type.elem_type = onnx.TensorProto.INT64
    cast = onnx.helper.make_node("Cast", ["target_length"], ["target_length_i32"], to=onnx.TensorProto.INT32)
    for node in model.graph.node:
        node.input[:] = ["target_length_i32" if n == "target_length" else n for n in node.input]
    model.graph.node.insert(0, cast)
    onnx.save(model, str(path))
    with pytest.raises(ContractError, match=r"'target_length' should be tensor\(int32\), found tensor\(int64\)"):
        load(model_copy)
