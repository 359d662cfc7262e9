"""Build a random-weight model of the real Parakeet-TDT 0.6B v3 size and export it in the published ONNX layout.

For benchmarks: the weights are random, the architecture and tensor sizes are those of Parakeet-TDT 0.6B v3
(FastConformer 24 x 1024, 8 heads, x8 dw_striding subsampling with 256 channels, conv kernel 9, ff x4, 128 mels;
2 x 640 LSTM prediction net; joint 640; 8192 BPE pieces + blank + durations 0-4 = 8198 joint outputs).

NeMo is never a Perch dependency: run this from a separate environment that has it (espeak-ng must be installed):

    python3 -m venv /path/to/nemo-env
    /path/to/nemo-env/bin/pip install torch 'nemo_toolkit[asr]==3.0.0'
    /path/to/nemo-env/bin/python bench/make_real_size_model.py [OUTPUT_DIR]

OUTPUT_DIR defaults to ~/.cache/perch-bench/real-size-model.

Writes encoder-model.onnx + encoder-model.onnx.data (fp32, external data in one file), decoder_joint-model.onnx,
vocab.txt, config.json, and the dynamically quantised encoder-model.int8.onnx and decoder_joint-model.int8.onnx
(QUInt8 encoder, QInt8 decoder+joint, as sherpa-onnx's Parakeet export does; what the published onnx-asr files
use is not known). The joint's biases are shaped so that about half the steps on an espeak-ng clip are blank and
every duration occurs. Prints each stage's time and every file's size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
from make_nemo_text_reference import encode  # test-data helpers, reused
from make_nemo_text_reference import model_config as small_config
from make_vad_reference import RATE, speak

VOCAB_SIZE = 8192
DURATIONS = [0, 1, 2, 3, 4]
DURATION_SHARES = [0.1, 0.4, 0.25, 0.15, 0.1]
SEED = 20251203
CONFIG = {"model_type": "nemo-conformer-tdt", "features_size": 128, "subsampling_factor": 8}


@contextmanager
def stage(name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"[{time.perf_counter() - start:8.1f} s] {name}", flush=True)


# ------------------------------------------------------------------------------------------ tokenizer


def words(text: str) -> list[str]:
    return text.split()


_SYLLABLES = words(
    "ka ro mi ta ne lu so ve di pa zo ri ba qu en or al str tch sch ph th gh ck ng ea ou ie ai au "
    "é è ê ü ö ä ñ ç å ø ł ž š č ő ą ę ó ú í à ß ka ki ko ku ke"
)
_WORDS = words(
    "the a of to and in is was for on with that this it by at from be are as an or not have has "
    "meeting report ticket invoice flight train doctor river bridge market museum station office budget contract "
    "laptop phone server cluster database browser keyboard camera kernel compiler backup network update release "
    "Monday Tuesday Friday London Paris Berlin Madrid Lagos Tokyo Zurich Warszawa Kraków München Sevilla Porto"
)


def corpus(lines: int = 40000) -> Iterator[str]:
    """Deterministic multilingual-looking text: common words mixed with coined words of accented syllables, so that
    BPE finds enough merges for 8192 pieces."""
    rng = random.Random(SEED)
    for _ in range(lines):
        line: list[str] = []
        for _ in range(rng.randint(6, 16)):
            if rng.random() < 0.5:
                line.append(rng.choice(_WORDS))
            else:
                word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
                line.append(word.capitalize() if rng.random() < 0.2 else word)
        if rng.random() < 0.2:
            line.append(str(rng.randint(0, 9999)))
        yield " ".join(line) + rng.choice([".", ",", "?", "!", ""])


def train_tokenizer(folder: Path) -> None:
    """NeMo's own SentencePiece trainer (BPE, 8192 pieces, NeMo's ASR tokenizer defaults) into `folder`."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    (folder / "corpus.txt").write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        create_spt_model("corpus.txt", VOCAB_SIZE, -1, do_lower_case=False, tokenizer_type="bpe", output_dir=".")
    finally:
        os.chdir(cwd)


# ------------------------------------------------------------------------------------------ model


def model_config(tokenizer_dir: Path) -> dict[str, Any]:
    """Parakeet-TDT 0.6B v3's architecture (random weights): the test models' config at the real size."""
    config: dict[str, Any] = small_config(tokenizer_dir)
    config["model_defaults"] = {"enc_hidden": 1024, "pred_hidden": 640, "joint_hidden": 640}
    config["encoder"].update(
        n_layers=24,
        d_model=1024,
        subsampling_conv_channels=256,
        causal_downsampling=False,
        n_heads=8,
        xscaling=True,
        untie_biases=True,
        pos_emb_max_len=5000,
        conv_norm_type="batch_norm",
        dropout_att=0.0,
    )
    config["decoder"]["prednet"]["pred_hidden"] = 640
    config["joint"]["jointnet"]["joint_hidden"] = 640
    return config


def build_model(tokenizer_dir: Path) -> Any:
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(SEED)
    return EncDecRNNTBPEModel(cfg=OmegaConf.create(model_config(tokenizer_dir))).eval()


def shape_joint(model: Any, samples: np.ndarray) -> None:
    """Standardise the joint's encoder projection over the clip's frames, then bias the blank output to win on
    about half the frames and the duration outputs to reach DURATION_SHARES (logits taken with the start context;
    a simplification of tests/data/make_nemo_boost_reference.py's shaping, with no margins sought)."""
    import torch

    blank = model.decoder.blank_idx
    joint, out = model.joint, model.joint.joint_net[-1]
    with torch.no_grad():
        frames = encode(model, samples)
        mean, std = frames.mean(0), frames.std(0) + 1e-6
        joint.enc.weight.mul_(1.7 / std[None, :])
        joint.enc.bias.copy_(-joint.enc.weight @ mean)
        joint.pred.weight.mul_(12.0)
        out.weight[:blank].mul_(4.0)
        out.weight[blank + 1 :].mul_(2.0)
        out.bias.zero_()
        g, _ = model.decoder.predict(None, None, add_sos=False, batch_size=1)
        logits = joint.joint_net(joint.project_encoder(frames) + joint.project_prednet(g)[0, 0]).numpy()
        bias = np.zeros(logits.shape[1], np.float32)
        tokens, durations = logits[:, : blank + 1], logits[:, blank + 1 :]
        bias[blank] = float(np.median(tokens[:, :blank].max(1) - tokens[:, blank]))
        for _ in range(300):
            counts = np.bincount((durations + bias[blank + 1 :]).argmax(1), minlength=len(DURATIONS))
            bias[blank + 1 :] += 0.2 * (np.log(DURATION_SHARES) - np.log((counts + 1) / (counts.sum() + 5)))
        out.bias.copy_(torch.from_numpy(bias))
    shaped = logits + bias
    blanks = np.mean(shaped[:, : blank + 1].argmax(1) == blank)
    shares = np.bincount(shaped[:, blank + 1 :].argmax(1), minlength=len(DURATIONS)) / len(shaped)
    print(f"joint shaped on {len(shaped)} frames: blank {blanks:.2f}, durations {np.round(shares, 2).tolist()}")


# ------------------------------------------------------------------------------------------ export


def export(model: Any, vocab: list[str], out: Path) -> None:
    """NeMo's exporter, into a scratch folder (the torch exporter writes one file per tensor above 2 GB), then
    the encoder re-saved with all its weights in encoder-model.onnx.data; vocab.txt and config.json."""
    import onnx

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        model.export(str(Path(tmp) / "model.onnx"))
        encoder = onnx.load(str(Path(tmp) / "encoder-model.onnx"))  # loads the external tensors too
        onnx.save_model(
            encoder,
            str(out / "encoder-model.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="encoder-model.onnx.data",
            size_threshold=1024,
        )
        (out / "encoder-model.onnx.data").chmod(0o644)  # onnx creates it owner-only
        del encoder
        shutil.move(str(Path(tmp) / "decoder_joint-model.onnx"), out / "decoder_joint-model.onnx")
    lines = [f"{piece} {i}" for i, piece in enumerate([*vocab, "<blk>"])]
    (out / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps(CONFIG, indent=4), encoding="utf-8")


def quantize(out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name, weight_type in (("encoder-model", QuantType.QUInt8), ("decoder_joint-model", QuantType.QInt8)):
        with stage(f"quantize {name} ({weight_type.name})"):
            quantize_dynamic(out / f"{name}.onnx", out / f"{name}.int8.onnx", weight_type=weight_type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path.home() / ".cache" / "perch-bench" / "real-size-model"
    parser.add_argument("output", nargs="?", type=Path, default=default)
    out: Path = parser.parse_args().output.resolve()
    logging.disable(logging.WARNING)
    import sentencepiece
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    total = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        with stage("train tokenizer (8192 BPE pieces)"):
            train_tokenizer(Path(tmp))
        with stage("build model"):
            model = build_model(Path(tmp))
        pieces = sentencepiece.SentencePieceProcessor(model_file=str(Path(tmp) / "tokenizer.model"))
        vocab = [pieces.id_to_piece(i) for i in range(len(pieces))]
        assert len(vocab) == VOCAB_SIZE == model.decoder.blank_idx, (len(vocab), model.decoder.blank_idx)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"parameters: {params:.1f} M (encoder {sum(p.numel() for p in model.encoder.parameters()) / 1e6:.1f} M)")
        with stage("shape joint on a 10 s espeak-ng clip"):
            samples = speak(
                "The quick brown fox jumps over the lazy dog. Perch transcribes speech offline on this machine, "
                "and the benchmark measures how long the encoder takes.",
                Path(tmp),
            )[: 10 * RATE]
            shape_joint(model, samples)
    with stage("export (NeMo) + merge encoder weights into encoder-model.onnx.data"):
        export(model, vocab, out)
    del model
    quantize(out)
    print(f"[{time.perf_counter() - total:8.1f} s] total")
    for path in sorted(out.iterdir()):
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
