"""Regenerate tests/data/nemo-text-tdt/: a small random-weight TDT model exported by NVIDIA NeMo, clips, and
NeMo's own transcripts and detokenised text (reference.json).

NeMo is never a Perch dependency: run this from a separate environment that has it (espeak-ng must be installed):

    python3 -m venv /path/to/nemo-env
    /path/to/nemo-env/bin/pip install torch 'nemo_toolkit[asr]==3.0.0'
    /path/to/nemo-env/bin/python tests/data/make_nemo_text_reference.py

What it does: trains a SentencePiece BPE tokenizer (byte fallback; 640 pieces, 256 of them bytes) on a generated
corpus of prose and code-like text rich in punctuation; builds a seeded FastConformer TDT model (2 layers,
d_model 64, 128 mels, x8 subsampling, durations 0-4) whose joint output layer is scaled and biased so that
on the clips about half the decode steps are blank, every duration is chosen and punctuation pieces are
frequent; exports it with NeMo's exporter in the published Parakeet ONNX layout; writes espeak-ng and
noise clips; and records NeMo's greedy TDT tokens and text for each clip, plus NeMo's text and the plain
SentencePiece decode of crafted token sequences, NeMo's supported punctuation set and NeMo's version.
The encoder's relative-position table holds 1000 frames (pos_emb_max_len), so the model takes at most 80 s of audio.
The output is byte-for-byte reproducible on one machine; espeak-ng or library versions may change it elsewhere.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from make_vad_reference import RATE, speak, write_pcm16  # the sibling script, on sys.path when run as above

HERE = Path(__file__).resolve().parent
OUT = HERE / "nemo-text-tdt"
CLIPS = OUT / "clips"
VOCAB_SIZE = 640  # 256 byte pieces + <unk> + 2 user symbols + BPE pieces
DURATIONS = [0, 1, 2, 3, 4]
OPENING_ONLY = ["\u2581\u00ab", "\u2581\u00bf"]  # "▁«", "▁¿": these characters exist only in word-start pieces
SEED = 20240611

# ------------------------------------------------------------------------------------------ tokenizer corpus

_WORDS = {
    "N": ["Anna", "Ben", "Clara", "David", "Eve", "Frank", "Grace", "Henry", "Iris", "Jack"],
    "n": ["book", "car", "window", "garden", "letter", "table", "river", "phone", "ticket", "coffee", "server"],
    "a": ["ready", "broken", "open", "late", "early", "cold", "quiet", "simple", "strange", "done"],
    "v": ["open", "close", "read", "write", "send", "build", "check", "start", "stop", "run"],
    "i": ["parse", "load", "value", "count", "items", "config", "result", "token", "buffer", "index"],
}
_PROSE = [
    'He said "{n} is {a}" and left.',
    "Call me (maybe) tomorrow, {N}.",
    "It's {N}'s {n}, isn't it?",
    '{N} asked, "Is the {n} {a}?"',
    "We paid $5 for the {n} (about {p}% off).",
    "The {n} was {a}, so we {v} it again.",
    "Why is the {n} {a}? Nobody knows.",
    '"{a}," she said, "the {n} is {a}."',
    "They wrote \u00ab{n}\u00bb on the {n}.",
    "\u00bf{a}? {N} asked in Spanish class.",
    "Don't {v} the {n} (it's {a}), please.",
    "Well -- the {n} is {a}, isn't it?",
]
_CODE = [
    "def {i}(a, b) -> int: return a - b  # {v} the {n}",
    '{i} = {i}("{n}")  # {a}',
    "## {N}'s notes: {v} the {n}",
    "# {v} {i} -> {i}",
    "run --{i} --{i}-{v} {p}",
    'print("{i}: %d%%" % {i})',
    "cost: ${p} ({p}%) -> {i}",
    "#define CAT(a, b) a##b  // {i}##{i}",
    "x-{i} y--{i} z->{n}",
    "if ({i} > {p}) {{ {i} = {i}; }}",
    '{i}("{n}", {p}) -> {i}: ok',
]


def corpus(lines: int = 600) -> list[str]:
    """Deterministic prose (two lines in three) and code-like text."""
    rng = random.Random(SEED)
    out = []
    for k in range(lines):
        template = rng.choice(_PROSE if k % 3 else _CODE)
        out.append(
            template.replace("{p}", str(rng.randint(1, 99))).format(**{key: rng.choice(w) for key, w in _WORDS.items()})
        )
    return out


def train_tokenizer(folder: Path) -> None:
    """SentencePiece BPE with byte fallback, written to `folder` as NeMo's tokenizer config expects."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        vocab_size=VOCAB_SIZE,
        model_type="bpe",
        character_coverage=1.0,
        byte_fallback=True,
        user_defined_symbols=OPENING_ONLY,
        bos_id=-1,
        eos_id=-1,
        remove_extra_whitespaces=False,
        minloglevel=2,
    )
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=model.getvalue())
    # NeMo registers a vocab.txt beside the model as an artifact; it does not read it for decoding.
    (folder / "vocab.txt").write_text("".join(f"{pieces.id_to_piece(i)}\n" for i in range(len(pieces))), "utf-8")


# ------------------------------------------------------------------------------------------ model


def model_config(tokenizer_dir: Path) -> dict[str, Any]:
    """A Parakeet-TDT-style config, shrunk: FastConformer 2 x 64, LSTM 2 x 64, joint 64."""
    return {
        "sample_rate": RATE,
        "model_defaults": {"enc_hidden": 64, "pred_hidden": 64, "joint_hidden": 64},
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": RATE,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": 128,
            "n_fft": 512,
            "log": True,
            "frame_splicing": 1,
            "dither": 1e-5,
            "pad_to": 0,
            "pad_value": 0.0,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 128,
            "n_layers": 2,
            "d_model": 64,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": 64,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": 4,
            "att_context_size": [-1, -1],
            "pos_emb_max_len": 1000,
            "conv_kernel_size": 9,
            "dropout": 0.0,
            "dropout_pre_encoder": 0.0,
            "dropout_emb": 0.0,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "blank_as_pad": True,
            "prednet": {"pred_hidden": 64, "pred_rnn_layers": 2, "dropout": 0.0},
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "num_extra_outputs": len(DURATIONS),
            "jointnet": {"joint_hidden": 64, "activation": "relu", "dropout": 0.0},
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": DURATIONS,
            "tdt_include_token_duration": True,
            "greedy": {"max_symbols": 10},
        },
        "validation_ds": {
            "manifest_filepath": None,
            "sample_rate": RATE,
            "batch_size": 1,
            "shuffle": False,
            "use_start_end_token": False,
        },
        "loss": {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1}},
    }


def build_model(tokenizer_dir: Path) -> Any:
    """The seeded random-weight EncDecRNNTBPEModel, in eval mode on the CPU."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(SEED)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(model_config(tokenizer_dir)))
    return model.eval()


def boosted_pieces(vocab: list[str]) -> list[int]:
    """Ids of pieces that exercise the punctuation-space rule: lone or leading-punctuation pieces."""
    ids = []
    for i, piece in enumerate(vocab):
        body = piece.removeprefix("\u2581")
        if piece == "\u2581" or (body and not piece.startswith("<") and unicodedata.category(body[0])[0] in "PS"):
            ids.append(i)
    return ids


def encode(model: Any, samples: npt.NDArray[np.float32]) -> Any:
    """NeMo's features and encoder output [T', D] for one clip."""
    import torch

    with torch.no_grad():
        audio = torch.from_numpy(samples)[None]
        feats, lengths = model.preprocessor(input_signal=audio, length=torch.tensor([len(samples)]))
        encoded, enc_len = model.encoder(audio_signal=feats, length=lengths)
    return encoded[0, :, : int(enc_len[0])].T


def replay(model: Any, clips: list[npt.NDArray[np.float32]]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Greedy TDT decode of the clips (NeMo's rules) with the joint's raw output: logits of every step."""
    import torch

    blank = model.decoder.blank_idx
    steps = []
    with torch.no_grad():
        for samples in clips:
            frames = model.joint.project_encoder(encode(model, samples))
            g, state = model.decoder.predict(None, None, add_sos=False, batch_size=1)
            t = emitted = 0
            while t < len(frames):
                logits = model.joint.joint_net(frames[t] + model.joint.project_prednet(g)[0, 0])
                steps.append(logits.numpy())
                token = int(logits[: blank + 1].argmax())
                duration = DURATIONS[int(logits[blank + 1 :].argmax())]
                if token != blank:
                    g, state = model.decoder.predict(torch.tensor([[token]]), state, add_sos=False, batch_size=1)
                    emitted += 1
                if duration > 0 or token == blank or emitted >= 10:
                    t, emitted = t + max(duration, 1), 0
    logits = np.array(steps)
    return logits[:, : blank + 1], logits[:, blank + 1 :]


def shape_joint(model: Any, clips: list[npt.NDArray[np.float32]], vocab: list[str]) -> None:
    """Scale and bias the joint so that decoding the clips is varied: ~50% blank steps, every duration, and
    frequent punctuation pieces.

    A random FastConformer's output hardly changes over time (each channel sits near its own offset), so the
    joint's encoder projection first standardises every channel over the clips' frames; the prediction-net
    projection is scaled up so that the last token matters. Then, in a few rounds of replayed decoding, the
    output biases are set: a common boost for punctuation pieces, the blank bias at the median margin, and
    duration biases that reach the target shares.
    """
    import torch

    blank = model.decoder.blank_idx
    joint = model.joint
    boosted = boosted_pieces(vocab)
    mask = np.isin(np.arange(blank), boosted).astype(np.float32)
    target = np.array([0.15, 0.35, 0.2, 0.15, 0.15])
    frames = torch.cat([encode(model, samples) for samples in clips])
    mean, std = frames.mean(0), frames.std(0)
    with torch.no_grad():
        joint.enc.weight.mul_(1.7 / std[None, :])
        joint.enc.bias.copy_(-joint.enc.weight @ mean)
        joint.pred.weight.mul_(12.0)
        out = joint.joint_net[-1]
        out.weight.mul_(2.0)
        out.bias.zero_()
        out.bias[[i for i, p in enumerate(vocab) if p.startswith("<")]] = -30.0  # <unk>, bytes: crafted only
        penalty = np.zeros(blank, np.float32)  # grows on tokens chosen often, for variety
        boost = 0.0
        for round in range(12):  # the last four rounds only settle the blank and duration biases
            tokens, durations = replay(model, clips)
            picked = tokens.argmax(1)
            penalty += (round < 8) * 0.5 * np.log1p(np.bincount(picked[picked != blank], minlength=blank + 1)[:blank])
            bias = out.bias.numpy().copy()
            base = np.where(bias[:blank] < -20, bias[:blank], -penalty)
            raw = tokens[:, :blank] - bias[:blank] + base
            boost = boost if round >= 8 else 0.0  # the smallest boost giving ~30% punctuation pieces
            while round < 8 and boost < 10 and np.isin((raw + boost * mask).argmax(1), boosted).mean() < 0.3:
                boost += 0.25
            bias[:blank] = base + boost * mask
            top = (raw + boost * mask).max(1)
            bias[blank] = float(np.median(top - (tokens[:, blank] - bias[blank])))
            raw_durations = durations - bias[blank + 1 :]
            for _ in range(200):
                counts = np.bincount((raw_durations + bias[blank + 1 :]).argmax(1), minlength=len(DURATIONS))
                bias[blank + 1 :] += 0.2 * (np.log(target) - np.log((counts + 1) / (counts.sum() + len(DURATIONS))))
            out.bias.copy_(torch.from_numpy(bias))
    tokens, durations = replay(model, clips)
    picked = tokens.argmax(1)
    emitted = picked[picked != blank]
    shares = np.bincount(durations.argmax(1), minlength=len(DURATIONS)) / len(durations)
    margin = min(float(np.min(np.diff(np.sort(x, 1)[:, -2:], axis=1))) for x in (tokens, durations))
    print(
        f"joint: {len(tokens)} steps, blank {np.mean(picked == blank):.2f}, durations {np.round(shares, 2).tolist()}, "
        f"{len(emitted)} tokens ({len(set(emitted.tolist()))} distinct), "
        f"punctuation {np.isin(emitted, boosted).mean():.2f}, smallest top-2 logit margin {margin:.4f}"
    )


# ------------------------------------------------------------------------------------------ export and clips


def export(model: Any, vocab: list[str]) -> None:
    """NeMo's exporter writes encoder-model.onnx and decoder_joint-model.onnx; then vocab.txt and config.json."""
    model.export(str(OUT / "model.onnx"))
    lines = [f"{piece} {i}" for i, piece in enumerate([*vocab, "<blk>"])]
    (OUT / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "model_type": "nemo-conformer-tdt",
        "features_size": 128,
        "subsampling_factor": 8,
        "max_tokens_per_step": 10,
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")


_SPOKEN = [
    'He said "hello" and left.',
    "Call me, maybe, tomorrow.",
    "It's Anna's book, isn't it?",
    "Why is the window open? Nobody knows.",
    "Well, the garden is quiet.",
    "Run the parser, then check the result.",
    "We paid five dollars for the ticket.",
    "Stop! Read the letter again.",
]


def shaped_noise(seed: int, seconds: float) -> npt.NDArray[np.float32]:
    """Noise and tones under a syllable-rate envelope, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 6) * t), 0, None) ** 2
    tone = np.sin(2 * np.pi * rng.uniform(100, 400) * t) + rng.normal(0, 0.5, t.size)
    wave: npt.NDArray[np.float32] = (rng.uniform(0.05, 0.5) * envelope * tone).astype(np.float32)
    return wave


def make_clips() -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Eight espeak-ng phrases and four noise clips, 1-4 s each, written as 16-bit WAVs (decoded samples back)."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    raw: list[tuple[str, npt.NDArray[np.float32]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, text in enumerate(_SPOKEN):
            speech = speak(text, Path(tmp))[: 4 * RATE]
            raw.append((f"speech{k:02d}.wav", (0.5 * speech / np.abs(speech).max()).astype(np.float32)))
    raw += [(f"noise{k:02d}.wav", shaped_noise(k, 1.0 + 0.9 * k)) for k in range(4)]
    return [(name, write_pcm16(CLIPS / name, samples)) for name, samples in raw]


# ------------------------------------------------------------------------------------------ references


def crafted_sequences(vocab: list[str]) -> list[list[int]]:
    """About fifty id sequences for the detokenisation rules.

    Marks after a word, inside and at the start of pieces (`▁(`, `▁"`, `▁-`); one or two lone `▁` pieces before
    a mark, at the start and at the end; `<unk>`; byte pieces; characters outside NeMo's punctuation set
    (`$ > = { }` are symbols, `«` and `¿` exist only in word-start pieces).
    """
    ids = {piece: i for i, piece in enumerate(vocab)}

    def seq(*pieces: str) -> list[int]:
        return [ids[p] for p in pieces]

    word, other, lone = "\u2581said", "\u2581the", "\u2581"
    return [
        seq(word, ","),
        seq(word, "."),
        seq(word, "?"),
        seq(word, ",", other, "."),
        seq(word, "'", "s"),
        seq(word, ":"),
        seq(word, ";"),
        seq(word, "%"),
        seq(word, ")"),
        seq(word, "-", "-"),
        seq(word, "--"),
        seq(word, "->"),
        seq(word, "\u2581("),
        seq(word, '\u2581"'),
        seq(word, "\u2581-"),
        seq(word, "\u2581--"),
        seq(word, "\u2581->"),
        seq(word, "\u2581#"),
        seq(word, "\u2581##"),
        seq(word, "\u2581$"),
        seq(word, "\u2581$5"),
        seq(word, "\u2581%"),
        seq(word, "\u2581\u00ab"),
        seq(word, "\u2581\u00bf"),
        seq(word, "\u00bb"),
        seq(word, lone, "\u2581-"),
        seq(word, lone, "\u2581("),
        seq(word, lone, ","),
        seq(word, lone, lone, "."),
        seq(lone, word),
        seq(lone, "\u2581("),
        seq(lone, ","),
        seq(word, lone),
        seq(word, lone, lone),
        seq(lone, lone, word),
        seq(word, "##"),
        seq(word, '("'),
        seq(word, "\u2581//"),
        seq(word, "\u2581>"),
        seq(word, lone, "\u2581%"),
        seq(word, lone, "\u2581\u00ab"),
        seq(word, lone, "\u00bb"),
        seq(word, "<unk>", other),
        seq(word, "<unk>", "\u2581("),
        seq(word, "<unk>", "."),
        seq("<unk>", word),
        seq(word, "<0xC3>", "<0xA9>", other),
        seq(word, "\u2581", "<0xC2>", "<0xBF>"),
        seq(word, ">", "=", "{", "}", "$"),
        seq("\u2581(", word, ")", "."),
        seq('\u2581"', word, '"', ","),
    ]


def main() -> None:
    logging.disable(logging.WARNING)
    import nemo
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer(Path(tmp))
        model = build_model(Path(tmp))
    vocab: list[str] = list(model.tokenizer.vocab)
    clips = make_clips()
    shape_joint(model, [samples for _, samples in clips], vocab)
    export(model, vocab)
    hypotheses = model.transcribe([str(CLIPS / name) for name, _ in clips], batch_size=1, return_hypotheses=True)
    decoding = model.decoding
    reference = {
        "nemo_version": nemo.__version__,
        "punctuation": sorted(decoding.supported_punctuation),
        "durations": DURATIONS,
        "clips": [
            {
                "file": name,
                "token_ids": [int(i) for i in hyp.y_sequence],
                "frames": [int(i) for i in hyp.timestamp],
                "durations": [int(i) for i in hyp.token_duration],
                "text": hyp.text,
            }
            for (name, _), hyp in zip(clips, hypotheses, strict=True)
        ],
        "crafted": [
            {
                "ids": ids,
                "pieces": [vocab[i] for i in ids],
                "plain": model.tokenizer.ids_to_text(ids),
                "nemo": decoding.decode_tokens_to_str_with_strip_punctuation(ids),
            }
            for ids in crafted_sequences(vocab)
        ],
    }
    text = json.dumps(reference, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    (OUT / "reference.json").write_text(text + "\n", encoding="utf-8")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(HERE)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
