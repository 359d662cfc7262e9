"""Build Parakeet-TDT ONNX models with random weights in the published file layout.

The files mirror `istupakov/parakeet-tdt-0.6b-v3-onnx` (and the words-tdt test model): the same file names,
tensor names, dtypes, dynamic dimension names, opset 17 and IR version 8; only the dimensions are small and the
weights random. The joint is shaped so that greedy TDT decoding of noise-like audio is varied: about half the
steps are blank, every duration is chosen, and a few frames emit runs of zero-duration tokens that reach the
ten-symbols-per-frame limit.

How the joint is steered: the encoder ends in an orthogonal projection and a LayerNorm, so any fixed unit
direction of its output is roughly standard normal across frames. The joint reads four such directions through
dedicated ReLU units ("control" units, several per signal so that no weight is an outlier for int8): one sets the
blank logit, two pick the duration by angle (five equal sectors), and one is a gate that, on frames where it is
high, pushes the blank logit down and duration 0 up. The remaining "content" units mix the encoder frame with
the LSTM output and set the token logits. The blank bias is calibrated at build time from a numpy simulation of
the content units.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
MAX_SYMBOLS_PER_FRAME = 10
SUBSAMPLING_FACTOR = 8
SAMPLE_RATE = 16000

ENCODER_FILE = "encoder-model.onnx"
DECODER_FILE = "decoder_joint-model.onnx"
ENCODER_INT8_FILE = "encoder-model.int8.onnx"
DECODER_INT8_FILE = "decoder_joint-model.int8.onnx"
ENCODER_DATA_FILE = "encoder-model.onnx.data"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "config.json"
BLANK_TOKEN = "<blk>"

# Tuning of the joint (see the module docstring).
_BLANK_TARGET = 0.5  # P(blank wins) on frames the gate leaves alone
_GATE_THRESHOLD = 1.9  # the gate opens where its direction exceeds this (about 3% of frames)
_GATE_SLOPE = 3.0
_GATE_PUSH = 12.0  # logit change per unit of gate activation, on blank (down) and duration 0 (up)
_BLANK_SCALE = 3.0  # blank logit per unit of its direction
_DURATION_SCALE = 3.0
_TOKEN_SCALE = 1.0  # standard deviation of a token logit
_PRED_GAIN = 3.0  # weight of the LSTM output against the encoder frame in the content units


@dataclass(frozen=True)
class ModelDims:
    """Dimensions of a generated model; the defaults are small, the real model is (1024, 640, 8192)."""

    n_mels: int = 128
    enc_dim: int = 32  # encoder output channels ("1024" in the real model)
    pred_hidden: int = 16  # LSTM hidden ("640" in the real model), 2 layers; also the joint's hidden width
    vocab_size: int = 40  # SentencePiece tokens, WITHOUT blank; blank id == vocab_size
    num_durations: int = 5  # durations [0, 1, 2, 3, 4]
    encoder_layers: int = 1  # extra MatMul+activation blocks in the encoder

    def __post_init__(self) -> None:
        """Reject dimensions too small to carry the control signals."""
        if self.n_mels < 1 or self.enc_dim < 8 or self.pred_hidden < 10:
            raise ValueError("need n_mels >= 1, enc_dim >= 8 and pred_hidden >= 10")
        if self.vocab_size < 16 or self.num_durations < 2 or self.encoder_layers < 0:
            raise ValueError("need vocab_size >= 16, num_durations >= 2 and encoder_layers >= 0")

    @property
    def blank_id(self) -> int:
        """Id of `<blk>`, the last token."""
        return self.vocab_size

    @property
    def joint_width(self) -> int:
        """Width of the joint output: tokens, blank, then durations."""
        return self.vocab_size + 1 + self.num_durations


@dataclass(frozen=True)
class DecodeStats:
    """Result of a reference greedy TDT decode of one utterance, with statistics over its steps."""

    tokens: tuple[int, ...]
    frames: tuple[int, ...]  # encoder frame of each token
    durations: tuple[int, ...]  # chosen duration of each token
    steps: int  # decoder+joint calls
    blank_fraction: float  # fraction of steps whose token argmax was blank
    duration_histogram: tuple[int, ...]  # steps per chosen duration (argmax, before any forced advance)
    longest_zero_run: int  # most consecutive duration-0 tokens emitted on one frame
    encoded_length: int = 0
    duration_fractions: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        """Derive the duration fractions."""
        total = max(self.steps, 1)
        object.__setattr__(self, "duration_fractions", tuple(n / total for n in self.duration_histogram))


# --------------------------------------------------------------------------------------------- vocabulary

_SPECIAL_HEAD = (
    "<unk>",
    "<|nospeech|>",
    "<pad>",
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|pnc|>",
    "<|nopnc|>",
)
_BYTE_TOKENS = ("<0xC3>", "<0xA9>")
_PUNCTUATION = (",", ".", "?")
_WORDS = ("the", "and", "to", "of", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are")
_PIECES = ("s", "ing", "ed", "er", "ly", "t", "re", "in", "al", "on", "es", "an")
_ONSETS = ("", "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "ch", "sh", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "s", "t", "l", "m", "nd", "st")


def _syllables() -> Iterator[str]:
    """Made-up syllables, then two-syllable combinations, without end."""
    single = ["".join(p) for p in itertools.product(_ONSETS, _VOWELS, _CODAS)]
    yield from single
    for a, b in itertools.product(single, repeat=2):
        yield a + b


def default_vocab(vocab_size: int) -> list[str]:
    """A SentencePiece-like vocabulary of `vocab_size` tokens (without `<blk>`), v3-style head first."""
    head = [*_SPECIAL_HEAD, *_BYTE_TOKENS, *_PUNCTUATION]
    seen = set(head)
    tokens = list(head)
    known = iter([*("\u2581" + w for w in _WORDS), *_PIECES])
    made = _syllables()
    while len(tokens) < vocab_size:
        token = next(known, None)
        if token is None:
            syllable = next(made)
            token = ("\u2581" + syllable) if len(tokens) % 3 else syllable
        if token and token not in seen:
            seen.add(token)
            tokens.append(token)
    return tokens[:vocab_size]


def _checked_vocab(vocab: Sequence[str] | None, vocab_size: int) -> list[str]:
    """Validate a caller's vocabulary (a trailing `<blk>` is accepted) or make the default one."""
    if vocab is None:
        return default_vocab(vocab_size)
    tokens = list(vocab)
    if tokens and tokens[-1] == BLANK_TOKEN:
        tokens.pop()
    if len(tokens) != vocab_size:
        raise ValueError(f"vocab has {len(tokens)} tokens, dims.vocab_size is {vocab_size}")
    if any(not t or any(c.isspace() for c in t) for t in tokens) or BLANK_TOKEN in tokens:
        raise ValueError("vocab tokens must be non-empty, without whitespace, and must not contain <blk>")
    return tokens


# --------------------------------------------------------------------------------------------- graphs


def _value(name: str, elem: int, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def _init(name: str, array: npt.ArrayLike, dtype: type = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(np.asarray(array, dtype=dtype)), name)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="perch-tests-modelgen"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _normal(rng: np.random.Generator, shape: Sequence[int], std: float) -> npt.NDArray[np.float32]:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)


def _orthogonal(rng: np.random.Generator, rows: int, cols: int) -> npt.NDArray[np.float32]:
    """A rows x cols matrix with orthonormal columns (rows >= cols) or rows."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return (q if rows >= cols else q.T).astype(np.float32)


def encoder_model(dims: ModelDims, rng: np.random.Generator) -> onnx.ModelProto:
    """Encoder: three stride-2 convs (x8 in time), residual tanh blocks, orthogonal mix, LayerNorm.

    `encoded_lengths` follows NeMo's `calc_length` in float: each stage L -> floor((L - 1) / 2) + 1, so
    L' = ceil(L / 8) for L >= 1 and 0 for L = 0 (floor(-0.5) + 1 = 0).
    """
    c, m = dims.enc_dim, dims.n_mels
    inits = [
        _init("pre_encode.conv.0.weight", _normal(rng, (c, m, 3), 2.0 / math.sqrt(3 * m))),
        _init("pre_encode.conv.0.bias", _normal(rng, (c,), 0.1)),
        _init("pre_encode.conv.2.weight", _normal(rng, (c, c, 3), 2.5 / math.sqrt(3 * c))),
        _init("pre_encode.conv.2.bias", _normal(rng, (c,), 0.1)),
        _init("pre_encode.conv.4.weight", _normal(rng, (c, c, 3), 2.5 / math.sqrt(3 * c))),
        _init("pre_encode.conv.4.bias", _normal(rng, (c,), 0.1)),
        _init("encoder.out.weight", _orthogonal(rng, c, c)),
        _init("encoder.norm.weight", np.ones(c)),
        _init("encoder.norm.bias", np.zeros(c)),
        _init("length.one", 1.0),
        _init("length.half", 0.5),
    ]
    conv = {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}
    nodes = []
    x = "audio_signal"
    for i, name in enumerate(("conv.0", "conv.2", "conv.4")):
        w, b = f"pre_encode.{name}.weight", f"pre_encode.{name}.bias"
        nodes.append(helper.make_node("Conv", [x, w, b], [f"/pre_encode/{name}/Conv_output_0"], **conv))
        nodes.append(helper.make_node("Tanh", [nodes[-1].output[0]], [f"/pre_encode/act{i}/Tanh_output_0"]))
        x = nodes[-1].output[0]
    nodes.append(helper.make_node("Transpose", [x], ["/encoder/Transpose_output_0"], perm=[0, 2, 1]))
    h = nodes[-1].output[0]
    for k in range(dims.encoder_layers):
        p = f"encoder.layers.{k}"
        inits += [
            _init(f"{p}.weight", _normal(rng, (c, c), 2.0 / math.sqrt(c * (1 + 0.5 * k)))),
            _init(f"{p}.bias", _normal(rng, (c,), 0.1)),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"{p}.weight"], [f"/{p}/MatMul_output_0"]),
            helper.make_node("Add", [f"/{p}/MatMul_output_0", f"{p}.bias"], [f"/{p}/Add_output_0"]),
            helper.make_node("Tanh", [f"/{p}/Add_output_0"], [f"/{p}/Tanh_output_0"]),
            helper.make_node("Add", [h, f"/{p}/Tanh_output_0"], [f"/{p}/Add_1_output_0"]),
        ]
        h = nodes[-1].output[0]
    nodes += [
        helper.make_node("MatMul", [h, "encoder.out.weight"], ["/encoder/out/MatMul_output_0"]),
        helper.make_node(
            "LayerNormalization",
            ["/encoder/out/MatMul_output_0", "encoder.norm.weight", "encoder.norm.bias"],
            ["/encoder/norm/LayerNormalization_output_0"],
            axis=-1,
            epsilon=1e-5,
        ),
        helper.make_node("Transpose", ["/encoder/norm/LayerNormalization_output_0"], ["outputs"], perm=[0, 2, 1]),
        helper.make_node("Cast", ["length"], ["/length/Cast_output_0"], to=TensorProto.FLOAT),
    ]
    length = "/length/Cast_output_0"
    for i in range(3):
        nodes += [
            helper.make_node("Sub", [length, "length.one"], [f"/length/Sub_{i}_output_0"]),
            helper.make_node("Mul", [f"/length/Sub_{i}_output_0", "length.half"], [f"/length/Mul_{i}_output_0"]),
            helper.make_node("Floor", [f"/length/Mul_{i}_output_0"], [f"/length/Floor_{i}_output_0"]),
            helper.make_node("Add", [f"/length/Floor_{i}_output_0", "length.one"], [f"/length/Add_{i}_output_0"]),
        ]
        length = nodes[-1].output[0]
    nodes.append(helper.make_node("Cast", [length], ["encoded_lengths"], to=TensorProto.INT64))
    graph = helper.make_graph(
        nodes,
        "encoder",
        [
            _value("audio_signal", TensorProto.FLOAT, ["audio_signal_dynamic_axes_1", m, "audio_signal_dynamic_axes_2"]),
            _value("length", TensorProto.INT64, ["length_dynamic_axes_1"]),
        ],
        [
            _value("outputs", TensorProto.FLOAT, ["Transposeoutputs_dim_0", c, "Transposeoutputs_dim_2"]),
            _value("encoded_lengths", TensorProto.INT64, ["length_dynamic_axes_1"]),
        ],
        inits,
    )
    return _model(graph)


@dataclass(frozen=True)
class _Prednet:
    embed: npt.NDArray[np.float32]  # [V + 1, H], blank row zero
    lstm: tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]], ...]  # W, R, B


def _prednet(dims: ModelDims, rng: np.random.Generator) -> _Prednet:
    h = dims.pred_hidden
    embed = _normal(rng, (dims.vocab_size + 1, h), 1.0)
    embed[dims.blank_id] = 0.0
    lstm = tuple(
        (
            _normal(rng, (1, 4 * h, h), 1.5 / math.sqrt(h)),
            _normal(rng, (1, 4 * h, h), 1.5 / math.sqrt(h)),
            _normal(rng, (1, 8 * h), 0.1),
        )
        for _ in range(2)
    )
    return _Prednet(embed, lstm)


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _simulate_prednet(net: _Prednet, rng: np.random.Generator, steps: int) -> npt.NDArray[np.float32]:
    """LSTM outputs (ONNX gate order i, o, f, c) over a random token sequence, shape [steps, H]."""
    hid = net.embed.shape[1]
    hs = [np.zeros(hid, np.float32) for _ in range(2)]
    cs = [np.zeros(hid, np.float32) for _ in range(2)]
    out = np.empty((steps, hid), np.float32)
    tokens = rng.integers(0, net.embed.shape[0] - 1, steps)
    for s, tok in enumerate(tokens):
        x = net.embed[tok]
        for layer, (w, r, b) in enumerate(net.lstm):
            gates = w[0] @ x + r[0] @ hs[layer] + b[0, : 4 * hid] + b[0, 4 * hid :]
            i, o, f, g = np.split(gates, 4)
            cs[layer] = _sigmoid(f) * cs[layer] + _sigmoid(i) * np.tanh(g)
            hs[layer] = _sigmoid(o) * np.tanh(cs[layer])
            x = hs[layer]
        out[s] = x
    return out


def _normal_cdf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _joint_weights(
    dims: ModelDims, net: _Prednet, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], ...]:
    """Joint weights (enc W, enc b, pred W, pred b, out W, out b) shaped as described in the module docstring."""
    e, h, v, nd = dims.enc_dim, dims.pred_hidden, dims.vocab_size, dims.num_durations
    blank, dur0 = v, v + 1
    k = max(1, h // 40)  # units per control signal
    n_ctl = 7 * k
    n_content = h - n_ctl
    directions = _orthogonal(rng, e, 4)  # gate, blank, duration x, duration y
    w_enc = np.zeros((e, h), np.float32)
    b_enc = np.zeros(h, np.float32)
    w_out = np.zeros((h, dims.joint_width), np.float32)
    angles = 2.0 * np.pi * np.arange(nd) / nd
    units = iter(range(n_ctl))
    for _ in range(k):
        u = next(units)  # gate: relu(slope * (x_g - threshold))
        w_enc[:, u] = _GATE_SLOPE * directions[:, 0]
        b_enc[u] = -_GATE_SLOPE * _GATE_THRESHOLD
        w_out[u, blank] = -_GATE_PUSH / k
        w_out[u, dur0] = _GATE_PUSH / k
        for sign in (1.0, -1.0):  # blank: relu(x_b) - relu(-x_b)
            u = next(units)
            w_enc[:, u] = sign * directions[:, 1]
            w_out[u, blank] = sign * _BLANK_SCALE / k
        for axis, trig in ((2, np.cos(angles)), (3, np.sin(angles))):  # durations by angle of (x, y)
            for sign in (1.0, -1.0):
                u = next(units)
                w_enc[:, u] = sign * directions[:, axis]
                w_out[u, dur0 : dur0 + nd] = sign * _DURATION_SCALE * trig / k
    content = slice(n_ctl, h)
    w_enc[:, content] = _normal(rng, (e, n_content), 1.0 / math.sqrt(e))
    b_enc[content] = _normal(rng, (n_content,), 0.2)
    w_pred = np.zeros((h, h), np.float32)
    w_pred[:, content] = _normal(rng, (h, n_content), _PRED_GAIN / math.sqrt(h))
    b_pred = np.zeros(h, np.float32)
    w_out[content, :v] = _normal(rng, (n_content, v), 1.0 / math.sqrt(n_content))
    b_out = np.zeros(dims.joint_width, np.float32)
    b_out[:v] = _normal(rng, (v,), 0.3)

    # Scale the token logits to _TOKEN_SCALE and calibrate the blank bias, on simulated frames and states.
    samples = 256
    pred = _simulate_prednet(net, rng, samples)
    frames = rng.standard_normal((samples, e)).astype(np.float32)
    hidden = np.maximum(frames @ w_enc[:, content] + b_enc[content] + pred @ w_pred[:, content], 0.0)
    logits = hidden @ w_out[content, :v]
    scale = _TOKEN_SCALE / max(float(logits.std()), 1e-6)
    w_out[content, :v] *= scale
    best = (logits * scale + b_out[:v]).max(axis=1).astype(np.float64)
    lo, hi = float(best.min()) - 10 * _BLANK_SCALE, float(best.max()) + 10 * _BLANK_SCALE
    for _ in range(60):  # P(blank) = mean over samples of P(x_b > (best - bias) / scale), x_b ~ N(0, 1)
        mid = 0.5 * (lo + hi)
        p = float(np.mean(_normal_cdf((mid - best) / _BLANK_SCALE)))
        lo, hi = (lo, mid) if p > _BLANK_TARGET else (mid, hi)
    b_out[blank] = 0.5 * (lo + hi)
    return w_enc, b_enc, w_pred, b_pred, w_out, b_out


def decoder_joint_model(dims: ModelDims, rng: np.random.Generator) -> onnx.ModelProto:
    """Prediction net (embedding, two ONNX LSTMs) and joint, with the words-tdt graph's inputs and outputs."""
    h = dims.pred_hidden
    net = _prednet(dims, rng)
    w_enc, b_enc, w_pred, b_pred, w_out, b_out = _joint_weights(dims, net, rng)
    inits = [
        _init("decoder.prediction.embed.weight", net.embed),
        _init("joint.enc.weight", w_enc),
        _init("joint.enc.bias", b_enc),
        _init("joint.pred.weight", w_pred),
        _init("joint.pred.bias", b_pred),
        _init("joint.joint_net.2.weight", w_out),
        _init("joint.joint_net.2.bias", b_out),
        _init("axes.0", [0], np.int64),
        _init("axes.1", [1], np.int64),
        _init("axes.2", [2], np.int64),
        _init("slice.end.2", [2], np.int64),
    ]
    nodes = [
        helper.make_node("Cast", ["targets"], ["/decoder/Cast_output_0"], to=TensorProto.INT64),
        helper.make_node(
            "Gather", ["decoder.prediction.embed.weight", "/decoder/Cast_output_0"], ["/decoder/embed/Gather_output_0"]
        ),
        helper.make_node("Transpose", ["/decoder/embed/Gather_output_0"], ["/decoder/Transpose_output_0"], perm=[1, 0, 2]),
    ]
    x = "/decoder/Transpose_output_0"
    h_out, c_out = [], []
    for layer, (w, r, b) in enumerate(net.lstm):
        p = f"decoder.dec_rnn.lstm.{layer}"
        start, end = ("axes.0", "axes.1") if layer == 0 else ("axes.1", "slice.end.2")
        inits += [_init(f"{p}.W", w), _init(f"{p}.R", r), _init(f"{p}.B", b)]
        nodes += [
            helper.make_node("Slice", ["input_states_1", start, end, "axes.0"], [f"/{p}/Slice_h_output_0"]),
            helper.make_node("Slice", ["input_states_2", start, end, "axes.0"], [f"/{p}/Slice_c_output_0"]),
            helper.make_node(
                "LSTM",
                [x, f"{p}.W", f"{p}.R", f"{p}.B", "", f"/{p}/Slice_h_output_0", f"/{p}/Slice_c_output_0"],
                [f"/{p}/LSTM_output_0", f"/{p}/LSTM_output_1", f"/{p}/LSTM_output_2"],
                hidden_size=h,
            ),
            helper.make_node("Squeeze", [f"/{p}/LSTM_output_0", "axes.1"], [f"/{p}/Squeeze_output_0"]),
        ]
        x = f"/{p}/Squeeze_output_0"
        h_out.append(f"/{p}/LSTM_output_1")
        c_out.append(f"/{p}/LSTM_output_2")
    nodes += [
        helper.make_node("Concat", h_out, ["output_states_1"], axis=0),
        helper.make_node("Concat", c_out, ["output_states_2"], axis=0),
        helper.make_node("Transpose", ["encoder_outputs"], ["/joint/Transpose_output_0"], perm=[0, 2, 1]),
        helper.make_node("Transpose", [x], ["/joint/Transpose_1_output_0"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["/joint/Transpose_output_0", "joint.enc.weight"], ["/joint/enc/MatMul_output_0"]),
        helper.make_node("Add", ["joint.enc.bias", "/joint/enc/MatMul_output_0"], ["/joint/enc/Add_output_0"]),
        helper.make_node(
            "MatMul", ["/joint/Transpose_1_output_0", "joint.pred.weight"], ["/joint/pred/MatMul_output_0"]
        ),
        helper.make_node("Add", ["joint.pred.bias", "/joint/pred/MatMul_output_0"], ["/joint/pred/Add_output_0"]),
        helper.make_node("Unsqueeze", ["/joint/enc/Add_output_0", "axes.2"], ["/joint/Unsqueeze_output_0"]),
        helper.make_node("Unsqueeze", ["/joint/pred/Add_output_0", "axes.1"], ["/joint/Unsqueeze_1_output_0"]),
        helper.make_node("Add", ["/joint/Unsqueeze_output_0", "/joint/Unsqueeze_1_output_0"], ["/joint/Add_output_0"]),
        helper.make_node("Relu", ["/joint/Add_output_0"], ["/joint/joint_net/joint_net.0/Relu_output_0"]),
        helper.make_node(
            "MatMul",
            ["/joint/joint_net/joint_net.0/Relu_output_0", "joint.joint_net.2.weight"],
            ["/joint/joint_net/joint_net.2/MatMul_output_0"],
        ),
        helper.make_node("Add", ["joint.joint_net.2.bias", "/joint/joint_net/joint_net.2/MatMul_output_0"], ["outputs"]),
        helper.make_node("Identity", ["target_length"], ["prednet_lengths"]),
    ]
    graph = helper.make_graph(
        nodes,
        "decoder_joint",
        [
            _value(
                "encoder_outputs",
                TensorProto.FLOAT,
                ["encoder_outputs_dynamic_axes_1", dims.enc_dim, "encoder_outputs_dynamic_axes_2"],
            ),
            _value("targets", TensorProto.INT32, ["targets_dynamic_axes_1", "targets_dynamic_axes_2"]),
            _value("target_length", TensorProto.INT32, ["target_length_dynamic_axes_1"]),
            _value("input_states_1", TensorProto.FLOAT, [2, "input_states_1_dynamic_axes_1", h]),
            _value("input_states_2", TensorProto.FLOAT, [2, "input_states_2_dynamic_axes_1", h]),
        ],
        [
            _value(
                "outputs",
                TensorProto.FLOAT,
                ["Addoutputs_dim_0", "Addoutputs_dim_1", "Addoutputs_dim_2", dims.joint_width],
            ),
            _value("prednet_lengths", TensorProto.INT32, ["target_length_dynamic_axes_1"]),
            _value("output_states_1", TensorProto.FLOAT, [2, "Concatoutput_states_1_dim_1", h]),
            _value("output_states_2", TensorProto.FLOAT, [2, "Concatoutput_states_2_dim_1", h]),
        ],
        inits,
    )
    return _model(graph)


# --------------------------------------------------------------------------------------------- files


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization with uint8 weights, per tensor, as the published int8 files are."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QUInt8, per_channel=False)


def build_model(
    directory: Path,
    dims: ModelDims = ModelDims(),  # noqa: B008 - frozen dataclass
    *,
    seed: int = 0,
    int8: bool = True,
    external_data: bool = False,
    vocab: list[str] | None = None,
) -> Path:
    """Write a random-weight Parakeet-TDT model in the published layout into `directory` and return it.

    `vocab` lists the `dims.vocab_size` tokens in id order (a trailing `<blk>` is optional); by default a
    SentencePiece-like vocabulary is made. With `external_data` the fp32 encoder keeps its weights in
    `encoder-model.onnx.data`, as the real v3 export does.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = _checked_vocab(vocab, dims.vocab_size)
    rng = np.random.default_rng(seed)
    encoder = encoder_model(dims, rng)
    decoder = decoder_joint_model(dims, rng)
    encoder_path = directory / ENCODER_FILE
    if external_data:
        (directory / ENCODER_DATA_FILE).unlink(missing_ok=True)
        onnx.save_model(
            encoder,
            encoder_path,
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=ENCODER_DATA_FILE,
            size_threshold=1024,
        )
    else:
        onnx.save_model(encoder, encoder_path)
    onnx.save_model(decoder, directory / DECODER_FILE)
    if int8:
        _quantize(encoder_path, directory / ENCODER_INT8_FILE)
        _quantize(directory / DECODER_FILE, directory / DECODER_INT8_FILE)
    lines = [f"{token} {i}" for i, token in enumerate([*tokens, BLANK_TOKEN])]
    (directory / VOCAB_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"model_type": "nemo-conformer-tdt", "features_size": dims.n_mels, "subsampling_factor": 8}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=4), encoding="utf-8")
    return directory


# --------------------------------------------------------------------------------------------- reference decode


@lru_cache(maxsize=4)
def _sessions(model_dir: str, int8: bool, stamp: tuple[int, ...]) -> tuple[object, object, int]:
    import onnxruntime as ort

    del stamp  # part of the cache key only
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    names = (ENCODER_INT8_FILE, DECODER_INT8_FILE) if int8 else (ENCODER_FILE, DECODER_FILE)
    providers = ["CPUExecutionProvider"]
    encoder = ort.InferenceSession(str(Path(model_dir) / names[0]), options, providers=providers)
    decoder = ort.InferenceSession(str(Path(model_dir) / names[1]), options, providers=providers)
    lines = (Path(model_dir) / VOCAB_FILE).read_text(encoding="utf-8").splitlines()
    blank = next(int(line.rsplit(" ", 1)[1]) for line in lines if line.rsplit(" ", 1)[0] == BLANK_TOKEN)
    return encoder, decoder, blank


def decode_stats(
    model_dir: Path,
    features: npt.NDArray[np.float32],
    length: int,
    *,
    int8: bool = False,
    max_symbols: int = MAX_SYMBOLS_PER_FRAME,
) -> DecodeStats:
    """Greedy TDT decode of one utterance (features [n_mels, T] or [1, n_mels, T]) with onnxruntime.

    Rules as in NeMo and onnx-asr: the token argmax includes blank; the LSTM state and last token change
    only on a non-blank; a duration > 0 advances by it; a blank with duration 0 advances 1; after
    `max_symbols` tokens on one frame the decoder advances 1.
    """
    model_dir = Path(model_dir)
    names = (ENCODER_INT8_FILE, DECODER_INT8_FILE) if int8 else (ENCODER_FILE, DECODER_FILE)
    stamp = tuple((model_dir / n).stat().st_mtime_ns for n in names)
    encoder, decoder, blank = _sessions(str(model_dir.resolve()), int8, stamp)
    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim == 2:
        feats = feats[None]
    enc_out, enc_len = encoder.run(  # type: ignore[attr-defined]
        ["outputs", "encoded_lengths"], {"audio_signal": feats, "length": np.array([length], np.int64)}
    )
    frames = enc_out[0].T
    n_frames = int(enc_len[0])
    hidden = decoder.get_inputs()[3].shape[2]  # type: ignore[attr-defined]
    state1 = np.zeros((2, 1, hidden), np.float32)
    state2 = np.zeros((2, 1, hidden), np.float32)
    tokens: list[int] = []
    token_frames: list[int] = []
    durations: list[int] = []
    histogram: list[int] = []
    steps = blanks = longest = run = emitted = t = 0
    last = blank
    while t < n_frames:
        logits, new1, new2 = decoder.run(  # type: ignore[attr-defined]
            ["outputs", "output_states_1", "output_states_2"],
            {
                "encoder_outputs": frames[t][None, :, None],
                "targets": np.array([[last]], np.int32),
                "target_length": np.array([1], np.int32),
                "input_states_1": state1,
                "input_states_2": state2,
            },
        )
        logits = logits.reshape(-1)
        if not histogram:
            histogram = [0] * (logits.size - blank - 1)
        token = int(np.argmax(logits[: blank + 1]))
        duration = int(np.argmax(logits[blank + 1 :]))
        steps += 1
        histogram[duration] += 1
        if token == blank:
            blanks += 1
        else:
            tokens.append(token)
            token_frames.append(t)
            durations.append(duration)
            state1, state2, last = new1, new2, token
            emitted += 1
            run = run + 1 if duration == 0 else 0
            longest = max(longest, run)
        if duration > 0:
            t += duration
        elif token == blank or emitted >= max_symbols:
            t += 1
        if duration > 0 or token == blank or emitted >= max_symbols:
            emitted = run = 0
    return DecodeStats(
        tokens=tuple(tokens),
        frames=tuple(token_frames),
        durations=tuple(durations),
        steps=steps,
        blank_fraction=blanks / max(steps, 1),
        duration_histogram=tuple(histogram),
        longest_zero_run=longest,
        encoded_length=n_frames,
    )


# --------------------------------------------------------------------------------------------- test audio

CLIP_KINDS = ("noise", "am_noise", "am_sine", "mixture")


def synthetic_clip(kind: str, seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Noise-like 16 kHz test audio: white noise, amplitude-modulated noise or sines, or a mixture."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    noise = rng.standard_normal(n)
    envelope = 0.05 + np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, np.pi)) ** 2
    tones = sum(
        np.sin(2 * np.pi * rng.uniform(100, 3000) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3)
    )
    if kind == "noise":
        wave = 0.1 * noise
    elif kind == "am_noise":
        wave = 0.1 * noise * envelope
    elif kind == "am_sine":
        wave = 0.2 * tones * envelope + 0.005 * noise
    elif kind == "mixture":
        wave = (0.15 * tones * envelope + 0.05 * noise) * (0.5 + 0.5 * np.cos(2 * np.pi * 0.7 * t) ** 2)
    else:
        raise ValueError(f"unknown clip kind {kind!r}; use one of {CLIP_KINDS}")
    return np.asarray(wave, dtype=np.float32)


def nemo_features(waveform: npt.NDArray[np.float32], n_mels: int = 128) -> tuple[npt.NDArray[np.float32], int]:
    """NeMo-style normalised log-mel features [n_mels, T] and the valid length, via onnx-asr's numpy frontend."""
    from onnx_asr.preprocessors.numpy_preprocessor import NemoPreprocessorNumpy

    features, lengths = NemoPreprocessorNumpy(f"nemo{n_mels}")(
        np.asarray(waveform, np.float32)[None], np.array([len(waveform)], np.int64)
    )
    return features[0].astype(np.float32), int(lengths[0])


def typical_clips(count: int = 6, seed: int = 0) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """`count` clips of 1-10 s cycling through the clip kinds."""
    rng = np.random.default_rng(seed)
    return [
        (CLIP_KINDS[i % len(CLIP_KINDS)], synthetic_clip(CLIP_KINDS[i % len(CLIP_KINDS)], rng.uniform(1, 10), seed + i))
        for i in range(count)
    ]


def summarize(stats: Sequence[DecodeStats]) -> dict[str, object]:
    """Pooled statistics over several decodes: blank fraction, duration fractions, longest zero run."""
    steps = sum(s.steps for s in stats)
    hist = np.sum([s.duration_histogram for s in stats], axis=0)
    return {
        "steps": steps,
        "tokens": sum(len(s.tokens) for s in stats),
        "blank_fraction": sum(s.blank_fraction * s.steps for s in stats) / max(steps, 1),
        "duration_fractions": [round(float(x) / max(steps, 1), 3) for x in hist],
        "longest_zero_run": max(s.longest_zero_run for s in stats),
    }


if __name__ == "__main__":
    import sys
    import tempfile

    big = len(sys.argv) > 1 and sys.argv[1] == "big"
    dims = ModelDims(enc_dim=1024, pred_hidden=640, vocab_size=8192, encoder_layers=4) if big else ModelDims()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = build_model(Path(tmp), dims)
        print(f"built in {time.perf_counter() - start:.1f} s")
        for f in sorted(out.iterdir()):
            print(f"  {f.name}: {f.stat().st_size:,} bytes")
        for int8 in (False, True):
            results = [decode_stats(out, *nemo_features(w), int8=int8) for _, w in typical_clips()]
            print("int8" if int8 else "fp32", summarize(results))
