"""Tests for the random-weight Parakeet-TDT model builder."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from .modelgen import (
    CONFIG_FILE,
    DECODER_FILE,
    DECODER_INT8_FILE,
    ENCODER_DATA_FILE,
    ENCODER_FILE,
    ENCODER_INT8_FILE,
    VOCAB_FILE,
    ModelDims,
    build_model,
    decode_stats,
    nemo_features,
    summarize,
    synthetic_clip,
    typical_clips,
)

DIMS = ModelDims()
CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default small model with its int8 files."""
    return build_model(tmp_path_factory.mktemp("modelgen"), DIMS)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=CPU)


def _vocab(model_dir: Path) -> dict[int, str]:
    lines = (model_dir / VOCAB_FILE).read_text(encoding="utf-8").splitlines()
    return {int(i): token for token, i in (line.rsplit(" ", 1) for line in lines)}


def test_files_config_and_vocab(model: Path) -> None:
    names = {p.name for p in model.iterdir()}
    assert names == {ENCODER_FILE, DECODER_FILE, ENCODER_INT8_FILE, DECODER_INT8_FILE, VOCAB_FILE, CONFIG_FILE}
    assert (model / CONFIG_FILE).read_text() == (
        '{\n    "model_type": "nemo-conformer-tdt",\n    "features_size": 128,\n    "subsampling_factor": 8\n}'
    )
    vocab = _vocab(model)
    assert sorted(vocab) == list(range(DIMS.vocab_size + 1))
    assert vocab[0] == "<unk>" and vocab[DIMS.vocab_size] == "<blk>"
    tokens = set(vocab.values())
    assert len(tokens) == len(vocab)
    assert {"<pad>", "<|nospeech|>", ",", ".", "?", "<0xC3>", "<0xA9>"} <= tokens
    assert any(t.startswith("\u2581") for t in tokens)
    assert any(t.isalpha() and t.isascii() for t in tokens)  # a word piece


@pytest.mark.parametrize("name", [ENCODER_FILE, DECODER_FILE, ENCODER_INT8_FILE, DECODER_INT8_FILE])
def test_layout_matches_words_tdt(model: Path, words_model: Path, name: str) -> None:
    ours, theirs = onnx.load(model / name), onnx.load(words_model / name)
    assert ours.ir_version == theirs.ir_version
    assert {(o.domain, o.version) for o in ours.opset_import} == {(o.domain, o.version) for o in theirs.opset_import}
    for mine, ref in ((ours.graph.input, theirs.graph.input), (ours.graph.output, theirs.graph.output)):
        assert [v.name for v in mine] == [v.name for v in ref]
        for a, b in zip(mine, ref, strict=True):
            assert a.type.tensor_type.elem_type == b.type.tensor_type.elem_type, a.name
            dims_a, dims_b = a.type.tensor_type.shape.dim, b.type.tensor_type.shape.dim
            assert len(dims_a) == len(dims_b), a.name
            for da, db in zip(dims_a, dims_b, strict=True):
                assert da.dim_param == db.dim_param, a.name  # same dynamic axes, same names
                assert (da.dim_value > 0) == (db.dim_value > 0), a.name


def test_encoded_lengths_follow_nemo(model: Path) -> None:
    encoder = _session(model / ENCODER_FILE)
    rng = np.random.default_rng(1)
    for frames in range(1, 41):
        features = rng.standard_normal((1, DIMS.n_mels, frames)).astype(np.float32)
        outputs, lengths = encoder.run(None, {"audio_signal": features, "length": np.array([frames])})
        assert outputs.shape == (1, DIMS.enc_dim, math.ceil(frames / 8))
        assert lengths.tolist() == [math.ceil(frames / 8)]
    batch = rng.standard_normal((41, DIMS.n_mels, 40)).astype(np.float32)
    _, lengths = encoder.run(None, {"audio_signal": batch, "length": np.arange(41)})
    assert lengths.tolist() == [math.ceil(n / 8) for n in range(41)]  # and 0 for 0, as NeMo's formula gives


def test_padding_does_not_change_valid_frames(model: Path) -> None:
    encoder = _session(model / ENCODER_FILE)
    features, length = nemo_features(synthetic_clip("am_noise", 2.0, seed=3))
    alone, alone_len = encoder.run(None, {"audio_signal": features[None], "length": np.array([length])})
    padded = np.zeros((2, DIMS.n_mels, features.shape[1] + 37), np.float32)
    padded[0, :, : features.shape[1]] = features
    padded[1] = nemo_features(synthetic_clip("noise", (features.shape[1] + 37) / 100, seed=4))[0][:, : padded.shape[2]]
    batch, batch_len = encoder.run(None, {"audio_signal": padded, "length": np.array([length, padded.shape[2]])})
    n = int(alone_len[0])
    assert batch_len[0] == n
    np.testing.assert_allclose(batch[0, :, :n], alone[0, :, :n], atol=1e-4)
    assert np.std(alone[0, :, :n]) > 0.5  # the output follows the input, it does not collapse


def test_onnx_asr_loads_and_agrees(model: Path) -> None:
    onnx_asr = pytest.importorskip("onnx_asr")
    wave = synthetic_clip("noise", 3.0, seed=11)
    fp32 = onnx_asr.load_model("nemo-conformer-tdt", model, providers=CPU)
    int8 = onnx_asr.load_model("nemo-conformer-tdt", model, quantization="int8", providers=CPU)
    text = fp32.recognize(wave)
    assert isinstance(text, str) and text
    assert isinstance(int8.recognize(wave), str)
    stats = decode_stats(model, *nemo_features(wave))
    vocab = _vocab(model)
    joined = "".join(vocab[t].replace("\u2581", " ") for t in stats.tokens)
    assert text == re.sub(r"\A\s|\s\B|(\s)\b", r"\1", joined)  # onnx-asr's detokenisation of our tokens


def test_decodes_are_varied(model: Path) -> None:
    stats = [decode_stats(model, *nemo_features(wave)) for _, wave in typical_clips(6)]
    pooled = summarize(stats)
    assert 0.3 <= pooled.blank_fraction <= 0.7, pooled
    assert min(pooled.duration_fractions) >= 0.02, pooled
    assert pooled.longest_zero_run >= 10, pooled
    tokens = [t for s in stats for t in s.tokens]
    assert len(set(tokens)) >= DIMS.vocab_size // 2  # many different tokens, not one repeated
    for s in stats:
        assert len(s.tokens) == len(s.frames) == len(s.durations)
        assert sum(s.duration_histogram) == s.steps
        assert all(0 <= f < s.encoded_length for f in s.frames)


def test_int8_decodes_are_varied_too(model: Path) -> None:
    stats = [decode_stats(model, *nemo_features(wave), int8=True) for _, wave in typical_clips(6)]
    pooled = summarize(stats)
    assert 0.2 <= pooled.blank_fraction <= 0.8, pooled
    assert pooled.tokens > 20, pooled


def test_external_data_and_custom_vocab(tmp_path: Path) -> None:
    dims = ModelDims(vocab_size=16)
    vocab = ["<unk>", *(f"\u2581w{i}" for i in range(14)), "."]
    out = build_model(tmp_path, dims, seed=3, int8=False, external_data=True, vocab=vocab)
    assert {p.name for p in out.iterdir()} == {ENCODER_FILE, ENCODER_DATA_FILE, DECODER_FILE, VOCAB_FILE, CONFIG_FILE}
    assert (out / ENCODER_FILE).stat().st_size < (out / ENCODER_DATA_FILE).stat().st_size
    assert list(_vocab(out).values()) == [*vocab, "<blk>"]
    assert json.loads((out / CONFIG_FILE).read_text())["features_size"] == dims.n_mels
    features, length = nemo_features(synthetic_clip("mixture", 2.0, seed=5))
    assert decode_stats(out, features, length).steps > 0
    with pytest.raises(ValueError, match="vocab"):
        build_model(tmp_path / "bad", dims, int8=False, vocab=vocab[:-1])
