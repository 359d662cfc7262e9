"""The weights index: a graph whose tensors point into the model's own file loads bit-identically; the cache
writes it in the background after a first load, uses it later, and falls back to the model whenever it is unsound."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from stt import modelcache, paths, runtime
from stt.runtime import RuntimeOptions, create_session
from stt.weights_index import UnindexableModelError, build_index

from .modelgen import DECODER_FILE, DECODER_INT8_FILE, ENCODER_INT8_FILE, ModelDims, build_model

DIMS = ModelDims(enc_dim=256, encoder_layers=2)
"""Large enough that the weights dominate the int8 encoder, as in the real model."""
CPU = RuntimeOptions(device="cpu")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published-layout model with int8 files (weights embedded) and an fp32 encoder with external data."""
    return build_model(tmp_path_factory.mktemp("index-model"), DIMS, external_data=True)


@pytest.fixture(scope="module")
def mixed_model(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int8 encoder with half its large tensors in a data file beside it, half embedded (like the fp32
    export, whose weights are external but whose Constant nodes are not)."""
    proto = onnx.load(model_dir / ENCODER_INT8_FILE)
    large = [t for t in proto.graph.initializer if len(t.raw_data) >= 1024]
    for tensor in large[::2]:
        set_external_data(tensor, "mixed.onnx.data")
    path = tmp_path_factory.mktemp("mixed") / "mixed.onnx"
    onnx.save(proto, path)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache of our own; every model pays for an index."""
    assert modelcache.wait_idle(30)  # work left by an earlier test would write into the cache of this one
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(modelcache, "MIN_GAIN_BYTES", 0)
    monkeypatch.setattr(modelcache, "_cleaned", False)
    yield paths.optimized_models_dir()
    assert modelcache.wait_idle(30)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every file a session is built from, in order."""
    names: list[str] = []
    build = runtime._build

    def recording(path: Path, *args: object) -> ort.InferenceSession:
        names.append(path.name)
        return build(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime, "_build", recording)
    return names


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _encode(session: ort.InferenceSession, frames: int = 203) -> list[npt.NDArray[np.float32]]:
    features = np.random.default_rng(frames).normal(0, 1, (1, DIMS.n_mels, frames)).astype(np.float32)
    return [np.asarray(o) for o in session.run(None, {"audio_signal": features, "length": np.array([frames])})]


def _same(a: list[npt.NDArray[np.float32]], b: list[npt.NDArray[np.float32]]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_index_points_at_each_tensors_bytes_in_the_model_file(model_dir: Path) -> None:
    model = model_dir / ENCODER_INT8_FILE
    index = build_index(model)
    assert index.files == {model.name}
    assert len(index.graph) < 0.1 * model.stat().st_size
    original = {t.name: t.raw_data for t in onnx.load(model).graph.initializer}
    data = model.read_bytes()
    moved = [t for t in onnx.load_from_string(index.graph).graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert moved
    for tensor in moved:
        where = {entry.key: entry.value for entry in tensor.external_data}
        offset, length = int(where["offset"]), int(where["length"])
        assert where["location"] == model.name and length >= 1024 and not tensor.raw_data
        assert data[offset : offset + length] == original[tensor.name]


def test_the_index_gives_bit_identical_outputs(model_dir: Path, cache: Path) -> None:
    model = model_dir / ENCODER_INT8_FILE
    index = modelcache.write_index(model)
    assert index is not None and modelcache.cached_index(model) == index
    folder = index.parent
    assert folder.parent == cache
    assert {p.name for p in folder.iterdir()} == {model.name, modelcache.INDEX_FILE, modelcache.KEY_FILE}
    assert (folder / model.name).samefile(model)
    assert _same(_encode(_session(model)), _encode(_session(index)))
    onnx.load(model)  # the hard link does not bother the onnx package: the weights are inside the model file


def test_models_with_external_data_get_no_index(mixed_model: Path, cache: Path) -> None:
    """They map their weights already; a hard link to their data file would make onnx.load refuse them."""
    with pytest.raises(UnindexableModelError, match="external data"):
        build_index(mixed_model)
    assert modelcache.write_index(mixed_model) is None
    onnx.load(mixed_model)


def test_constant_nodes_move_out_too(tmp_path: Path) -> None:
    weight = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 1000
    constant = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weight, "w"))
    bias = numpy_helper.from_array(np.linspace(-1, 1, 64, dtype=np.float32), "b")
    graph = helper.make_graph(
        [constant, helper.make_node("MatMul", ["x", "w"], ["y0"]), helper.make_node("Add", ["y0", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [bias],
    )
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), model)
    index = build_index(model)
    node = onnx.load_from_string(index.graph).graph.node[0]
    assert node.attribute[0].t.data_location == TensorProto.EXTERNAL
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "g.onnx").write_bytes(index.graph)
    os.link(model, tmp_path / "index" / model.name)
    x = {"x": np.linspace(0, 1, 64, dtype=np.float32)[None]}
    assert np.array_equal(_session(model).run(None, x)[0], _session(tmp_path / "index" / "g.onnx").run(None, x)[0])


def test_subgraphs_and_damaged_files_are_not_indexed(tmp_path: Path) -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["z"])],
        "b",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, [1]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with_subgraph = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph), with_subgraph)
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"\x3a\xff\xff\xff\x0f" + b"\0" * 64)  # a graph field longer than the file
    for path in (with_subgraph, damaged):
        with pytest.raises(UnindexableModelError):
            build_index(path)


def test_models_whose_index_would_not_pay_get_none(
    model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert modelcache.write_index(model_dir / DECODER_INT8_FILE) is None  # the graph is most of this small file
    monkeypatch.setattr(modelcache, "MIN_GAIN_BYTES", 32 * 2**20)
    assert modelcache.write_index(model_dir / DECODER_FILE) is None
    assert not cache.exists() or not any(cache.iterdir())


def test_first_load_is_plain_and_later_loads_use_the_index(
    model_dir: Path, cache: Path, built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modelcache, "SMALL_MODEL_BYTES", 0)  # as large as the real encoder
    model = model_dir / ENCODER_INT8_FILE
    first, _ = create_session(model, CPU)
    assert modelcache.wait_idle(30)
    second, _ = create_session(model, CPU)
    assert built == [model.name, modelcache.INDEX_FILE]  # one session each: nothing is built twice
    assert _same(_encode(first), _encode(second))
    assert modelcache.wait_idle(30)
    assert [p.name for p in cache.iterdir()] == [modelcache.index_folder(model).name]


def test_a_damaged_index_falls_back_and_is_written_again(
    model_dir: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = model_dir / ENCODER_INT8_FILE
    index = modelcache.write_index(model)
    assert index is not None
    index.write_bytes(b"\x0a\x05bogus" * 10)
    with caplog.at_level(logging.DEBUG, logger="stt.runtime"):
        session, _ = create_session(model, CPU)
    assert any("did not load" in r.getMessage() for r in caplog.records)
    assert all(r.levelno < logging.WARNING for r in caplog.records)
    assert modelcache.wait_idle(30)
    assert modelcache.cached_index(model) == index
    assert _same(_encode(session), _encode(_session(index)))


def test_a_changed_model_is_loaded_itself_and_its_stale_index_cleared(
    model_dir: Path, cache: Path, tmp_path: Path
) -> None:
    model = tmp_path / ENCODER_INT8_FILE
    model.write_bytes((model_dir / ENCODER_INT8_FILE).read_bytes())
    old = modelcache.write_index(model)
    assert old is not None
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert modelcache.cached_index(model) is None
    new = modelcache.write_index(model)
    assert new is not None and new != old
    size = model.stat().st_size
    assert modelcache.clean() < size / 10  # the stale index's link to a file that lives on frees nothing
    assert not old.parent.exists() and new.is_file()
    model.unlink()
    assert modelcache.clean() > size  # the index's link was the last name of the model's data
    assert not any(cache.iterdir())


def test_no_index_across_file_systems(model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(*_: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    assert modelcache.write_index(model_dir / ENCODER_INT8_FILE) is None
    assert not any(cache.iterdir())


def test_old_full_copies_are_removed_in_the_background(
    model_dir: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = cache / "encoder-model.int8-1809aef0f25da5d91257"
    old.mkdir(parents=True)
    (old / "model.onnx").write_bytes(b"\0" * 1000)
    (old / "model.onnx.data").write_bytes(b"\0" * 3_000_000)
    abandoned = cache / "encoder-model.int8-0123.tmp999"
    abandoned.mkdir()
    os.utime(abandoned, (0, 0))
    with caplog.at_level(logging.INFO, logger="stt.modelcache"):
        create_session(model_dir / ENCODER_INT8_FILE, CPU)
        assert modelcache.wait_idle(30)
    assert not old.exists() and not abandoned.exists()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "removed old optimised models from the cache: 3 MB freed"
    ]


def test_no_cache_means_no_files(model_dir: Path, cache: Path) -> None:
    create_session(model_dir / ENCODER_INT8_FILE, RuntimeOptions(device="cpu", cache_optimized=False))
    assert modelcache.wait_idle(30)
    assert not cache.exists()


def test_removing_a_model_removes_its_index(
    model_dir: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stt import modelstore

    monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
    copy = tmp_path / "models" / "mine"
    copy.mkdir(parents=True)
    (copy / ENCODER_INT8_FILE).write_bytes((model_dir / ENCODER_INT8_FILE).read_bytes())
    assert modelcache.write_index(copy / ENCODER_INT8_FILE) is not None
    modelstore.remove("mine")
    assert not copy.exists()
    assert not any(cache.iterdir())  # its hard link went too, so the disk space is back


def test_a_recognizer_indexes_its_models_once_both_are_loaded(
    model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stt.engine import Recognizer
    from stt.modelfiles import ModelFiles

    queued: list[tuple[Path, ...]] = []
    refresh = modelcache.refresh_later

    def recording(*models: Path) -> None:
        queued.append(models)
        refresh(*models)

    monkeypatch.setattr(modelcache, "refresh_later", recording)
    Recognizer(ModelFiles.locate(model_dir, "int8"), CPU)
    assert queued == [(model_dir / ENCODER_INT8_FILE, model_dir / DECODER_INT8_FILE)]  # one call, after both loads
    assert modelcache.wait_idle(30)
    assert modelcache.cached_index(model_dir / ENCODER_INT8_FILE) is not None


def test_a_small_model_is_indexed_before_its_first_load(model_dir: Path, cache: Path, built: list[str]) -> None:
    model = model_dir / ENCODER_INT8_FILE
    assert model.stat().st_size <= modelcache.SMALL_MODEL_BYTES
    create_session(model, CPU)
    assert built == [modelcache.INDEX_FILE]  # the first load maps the weights already
    assert modelcache.cached_index(model) is not None
