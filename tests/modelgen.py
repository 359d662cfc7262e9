"""Build Parakeet-TDT ONNX models with random weights in the published file layout.

The files mirror `istupakov/parakeet-tdt-0.6b-v3-onnx` and the words-tdt test model: the same file names,
tensor names, dtypes, dynamic dimension names, opset 17 and IR version 8; only the sizes are small and the
weights random. The joint is shaped so that greedy TDT decoding of noise-like audio is varied: about half the
steps are blank, every duration is chosen, and a few frames emit runs of zero-duration tokens that reach the
ten-symbols-per-frame limit.

How: the encoder ends by scaling every channel to zero mean and unit variance over the valid frames of each
utterance, so channels 0-3 are steady control signals whatever the audio. The joint reads them through
dedicated ReLU units (several per signal in large models, so that no weight stands out for int8): channel 0 is a
gate that, on the ~1.5% of frames where it is high, pushes blank down and duration 0 up, so those frames emit
tokens until the max-symbols rule; channel 1 (plus a little of the LSTM output) sets the blank logit; channels
2 and 3 (plus some LSTM output) pick durations 1-4 by angle; an LSTM direction alone raises duration 0, so
that runs on ungated frames stay short. The other "content" units mix the frame with the LSTM output and set
the token logits. The biases are calibrated at build time on a numpy replay of greedy decoding of 16 synthetic
clips.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
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
_BLANK_TARGET = 0.5  # fraction of decode steps whose token is blank
_GATE_RATE = 0.015  # fraction of frames on which the gate opens
_CALIBRATION_ROUNDS = 6
_CALIBRATION_CLIPS = 16
_CALIBRATION_SEED = 7919
_GATE_SLOPE = 4.0
_GATE_RAMP = 0.4  # the gate starts this far below its threshold, so that it is fully open at the threshold
_GATE_PUSH = 20.0  # logit change per unit of gate activation, on blank (down) and duration 0 (up)
_BLANK_SCALE = 6.0  # blank logit per unit of its direction
_DURATION_SCALE = 3.0
_STATE_NOISE = 0.5  # spread of the LSTM-dependent part of the duration signals (the frame part has spread 1)
_BLANK_STATE_NOISE = 0.2  # the same for the blank signal
_ZERO_SCALE = 9.0  # duration-0 logit per unit of its LSTM direction (positive part)
_ZERO_DURATION_TARGET = 0.1  # fraction of duration 0 among the steps the gate leaves alone
_TOKEN_SCALE = 1.0  # standard deviation of a token logit
_PRED_GAIN = 3.0  # weight of the LSTM output against the encoder frame in the content units
_FORGET_BIAS = -2.0
_CONTENT_GAIN = 3.0  # content-unit weight scale, so that the control weights do not stand out for int8
_INPUT_GAIN = 2.0  # encoder weight scales: high enough that nearby inputs give unrelated outputs
_CONV_GAIN = 2.5
_BLOCK_GAIN = 2.0


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


PARAKEET_DIMS = ModelDims(enc_dim=1024, pred_hidden=640, vocab_size=8192, encoder_layers=4)
"""The real v3 model's encoder, prediction-net and vocabulary sizes: a heavy model for benchmarks."""


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
    return np.asarray(rng.standard_normal(shape, dtype=np.float32) * np.float32(std), dtype=np.float32)


def _orthogonal(rng: np.random.Generator, rows: int, cols: int) -> npt.NDArray[np.float32]:
    """A rows x cols matrix with orthonormal columns (rows >= cols) or rows."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return (q if rows >= cols else q.T).astype(np.float32)


def _time_standardize(x: str, out: str) -> list[onnx.NodeProto]:
    """Nodes scaling each channel of x [B, T', C] to zero mean and unit variance over its valid frames.

    The valid frames are t < encoded_lengths, so padding never changes a frame of a shorter utterance in a batch.
    """
    p = "/encoder/time_norm/"
    return [
        helper.make_node("Shape", [x], [p + "Shape_output_0"]),
        helper.make_node("Gather", [p + "Shape_output_0", "time_norm.index"], [p + "Gather_output_0"]),
        helper.make_node("Squeeze", [p + "Gather_output_0"], [p + "Squeeze_output_0"]),
        helper.make_node("Range", ["time_norm.zero", p + "Squeeze_output_0", "time_norm.step"], [p + "Range_output_0"]),
        helper.make_node("Unsqueeze", ["encoded_lengths", "time_norm.axes"], [p + "Unsqueeze_output_0"]),
        helper.make_node("Less", [p + "Range_output_0", p + "Unsqueeze_output_0"], [p + "Less_output_0"]),
        helper.make_node("Cast", [p + "Less_output_0"], [p + "Cast_output_0"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", [p + "Cast_output_0", "axes.2"], [p + "mask"]),
        helper.make_node("ReduceSum", [p + "mask", "time_norm.axes"], [p + "count_raw"], keepdims=1),
        helper.make_node("Max", [p + "count_raw", "length.one"], [p + "count"]),
        helper.make_node("Mul", [x, p + "mask"], [p + "masked"]),
        helper.make_node("ReduceSum", [p + "masked", "time_norm.axes"], [p + "sum"], keepdims=1),
        helper.make_node("Div", [p + "sum", p + "count"], [p + "mean"]),
        helper.make_node("Sub", [x, p + "mean"], [p + "centred"]),
        helper.make_node("Mul", [p + "centred", p + "mask"], [p + "centred_masked"]),
        helper.make_node("Mul", [p + "centred_masked", p + "centred_masked"], [p + "square"]),
        helper.make_node("ReduceSum", [p + "square", "time_norm.axes"], [p + "square_sum"], keepdims=1),
        helper.make_node("Div", [p + "square_sum", p + "count"], [p + "var"]),
        helper.make_node("Add", [p + "var", "time_norm.eps"], [p + "var_eps"]),
        helper.make_node("Sqrt", [p + "var_eps"], [p + "std"]),
        helper.make_node("Div", [p + "centred", p + "std"], [out]),
    ]


def encoder_model(dims: ModelDims, rng: np.random.Generator) -> onnx.ModelProto:
    """Encoder: three stride-2 convs (x8 in time), residual tanh blocks, an orthogonal mix, a LayerNorm, and a
    per-channel standardisation over the valid frames.

    `encoded_lengths` follows NeMo's `calc_length` in float: each stage L -> floor((L - 1) / 2) + 1, so
    L' = ceil(L / 8) for L >= 1 and 0 for L = 0 (floor(-0.5) + 1 = 0).
    """
    c, m = dims.enc_dim, dims.n_mels
    inits = [
        _init("pre_encode.conv.0.weight", _normal(rng, (c, m, 3), _INPUT_GAIN / math.sqrt(3 * m))),
        _init("pre_encode.conv.0.bias", _normal(rng, (c,), 0.1)),
        _init("pre_encode.conv.2.weight", _normal(rng, (c, c, 3), _CONV_GAIN / math.sqrt(3 * c))),
        _init("pre_encode.conv.2.bias", _normal(rng, (c,), 0.1)),
        _init("pre_encode.conv.4.weight", _normal(rng, (c, c, 3), _CONV_GAIN / math.sqrt(3 * c))),
        _init("pre_encode.conv.4.bias", _normal(rng, (c,), 0.1)),
        _init("encoder.out.weight", _orthogonal(rng, c, c)),
        _init("encoder.norm.weight", np.ones(c)),
        _init("encoder.norm.bias", np.zeros(c)),
        _init("length.one", 1.0),
        _init("length.half", 0.5),
        _init("axes.2", [2], np.int64),
    ]
    nodes = []
    x = "audio_signal"
    for i, name in enumerate(("conv.0", "conv.2", "conv.4")):
        w, b = f"pre_encode.{name}.weight", f"pre_encode.{name}.bias"
        nodes.append(
            helper.make_node(
                "Conv", [x, w, b], [f"/pre_encode/{name}/Conv_output_0"], kernel_shape=[3], strides=[2], pads=[1, 1]
            )
        )
        nodes.append(helper.make_node("Tanh", [nodes[-1].output[0]], [f"/pre_encode/act{i}/Tanh_output_0"]))
        x = nodes[-1].output[0]
    nodes.append(helper.make_node("Transpose", [x], ["/encoder/Transpose_output_0"], perm=[0, 2, 1]))
    h = nodes[-1].output[0]
    for k in range(dims.encoder_layers):
        p = f"encoder.layers.{k}"
        inits += [
            _init(f"{p}.weight", _normal(rng, (c, c), _BLOCK_GAIN / math.sqrt(c * (1 + 0.5 * k)))),
            _init(f"{p}.bias", _normal(rng, (c,), 0.1)),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"{p}.weight"], [f"/{p}/MatMul_output_0"]),
            helper.make_node("Add", [f"/{p}/MatMul_output_0", f"{p}.bias"], [f"/{p}/Add_output_0"]),
            helper.make_node("Tanh", [f"/{p}/Add_output_0"], [f"/{p}/Tanh_output_0"]),
            helper.make_node("Add", [h, f"/{p}/Tanh_output_0"], [f"/{p}/Add_1_output_0"]),
        ]
        h = nodes[-1].output[0]
    nodes.append(helper.make_node("Cast", ["length"], ["/length/Cast_output_0"], to=TensorProto.FLOAT))
    length = "/length/Cast_output_0"
    for i in range(3):
        nodes += [
            helper.make_node("Sub", [length, "length.one"], [f"/length/Sub_{i}_output_0"]),
            helper.make_node("Mul", [f"/length/Sub_{i}_output_0", "length.half"], [f"/length/Mul_{i}_output_0"]),
            helper.make_node("Floor", [f"/length/Mul_{i}_output_0"], [f"/length/Floor_{i}_output_0"]),
            helper.make_node("Add", [f"/length/Floor_{i}_output_0", "length.one"], [f"/length/Add_{i}_output_0"]),
        ]
        length = nodes[-1].output[0]
    nodes += [
        helper.make_node("Cast", [length], ["encoded_lengths"], to=TensorProto.INT64),
        helper.make_node("MatMul", [h, "encoder.out.weight"], ["/encoder/out/MatMul_output_0"]),
        helper.make_node(
            "LayerNormalization",
            ["/encoder/out/MatMul_output_0", "encoder.norm.weight", "encoder.norm.bias"],
            ["/encoder/norm/LayerNormalization_output_0"],
            axis=-1,
            epsilon=1e-5,
        ),
    ]
    nodes += _time_standardize("/encoder/norm/LayerNormalization_output_0", "/encoder/time_norm/Div_output_0")
    nodes.append(helper.make_node("Transpose", ["/encoder/time_norm/Div_output_0"], ["outputs"], perm=[0, 2, 1]))
    inits += [
        _init("time_norm.index", [1], np.int64),
        _init("time_norm.zero", 0, np.int64),
        _init("time_norm.step", 1, np.int64),
        _init("time_norm.axes", [1], np.int64),
        _init("time_norm.eps", 1e-5),
    ]
    graph = helper.make_graph(
        nodes,
        "encoder",
        [
            _value(
                "audio_signal", TensorProto.FLOAT, ["audio_signal_dynamic_axes_1", m, "audio_signal_dynamic_axes_2"]
            ),
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
    """Prediction-net weights: embedding [V + 1, H] (blank row zero) and, per LSTM layer, ONNX W, R, B."""

    embed: npt.NDArray[np.float32]
    lstm: tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]], ...]

    def step(self, token: int, state: _LstmState) -> tuple[npt.NDArray[np.float32], _LstmState]:
        """Output and new (h, c) per layer after consuming `token`, with ONNX LSTM semantics (gates i, o, f, c)."""
        x = self.embed[token]
        new: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
        for (w, r, b), (h, c) in zip(self.lstm, state, strict=True):
            n = h.size
            gates = w[0] @ x + r[0] @ h + b[0, : 4 * n] + b[0, 4 * n :]
            i, o, f, g = np.split(gates, 4)
            cell = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            x = _sigmoid(o) * np.tanh(cell)
            new.append((x, cell))
        return x, tuple(new)

    def zero_state(self) -> _LstmState:
        """All-zero (h, c) for every layer."""
        n = self.embed.shape[1]
        return tuple((np.zeros(n, np.float32), np.zeros(n, np.float32)) for _ in self.lstm)


_LstmState = tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]], ...]


def _prednet(dims: ModelDims, rng: np.random.Generator) -> _Prednet:
    """Random prediction net whose output depends mostly on the last few tokens (a low forget-gate bias)."""
    h = dims.pred_hidden
    embed = _normal(rng, (dims.vocab_size + 1, h), 1.0)
    embed[dims.blank_id] = 0.0
    layers = []
    for _ in range(2):
        bias = _normal(rng, (1, 8 * h), 0.1)
        bias[0, 2 * h : 3 * h] += _FORGET_BIAS
        layers.append(
            (_normal(rng, (1, 4 * h, h), 1.5 / math.sqrt(h)), _normal(rng, (1, 4 * h, h), 1.5 / math.sqrt(h)), bias)
        )
    return _Prednet(embed, tuple(layers))


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


@dataclass
class _Joint:
    """Joint weights, as in the graph: relu(frame @ w_enc + b_enc + pred @ w_pred + b_pred) @ w_out + b_out."""

    w_enc: npt.NDArray[np.float32]
    b_enc: npt.NDArray[np.float32]
    w_pred: npt.NDArray[np.float32]
    b_pred: npt.NDArray[np.float32]
    w_out: npt.NDArray[np.float32]
    b_out: npt.NDArray[np.float32]

    def hidden(self, frames: npt.NDArray[np.float32], preds: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Joint hidden activations for matching rows of frames and prediction-net outputs."""
        return np.maximum(frames @ self.w_enc + self.b_enc + preds @ self.w_pred + self.b_pred, 0.0)


def _simulate_decode(
    dims: ModelDims, net: _Prednet, joint: _Joint, clips: Sequence[npt.NDArray[np.float32]]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Greedy TDT decode of encoder frames [T, E] in numpy; the frame and prediction-net output of every step."""
    blank = dims.blank_id
    frames: list[npt.NDArray[np.float32]] = []
    preds: list[npt.NDArray[np.float32]] = []
    for clip in clips:
        state = net.zero_state()
        pred, after = net.step(blank, state)
        t = emitted = 0
        while t < len(clip):
            frames.append(clip[t])
            preds.append(pred)
            logits = joint.hidden(clip[t], pred) @ joint.w_out + joint.b_out
            token = int(np.argmax(logits[: blank + 1]))
            duration = int(np.argmax(logits[blank + 1 :]))
            if token != blank:
                state = after
                pred, after = net.step(token, state)
                emitted += 1
            if duration > 0 or token == blank or emitted >= MAX_SYMBOLS_PER_FRAME:
                t += max(duration, 1)
                emitted = 0
    return np.array(frames, np.float32), np.array(preds, np.float32)


def _fit_biases(logits: npt.NDArray[np.float32], targets: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Biases that make each column the argmax of about `targets` of the rows (iterative proportional fit)."""
    bias = np.zeros(logits.shape[1], np.float32)
    if not len(logits):
        return bias
    for _ in range(200):
        rates = np.bincount((logits + bias).argmax(axis=1), minlength=logits.shape[1]) / len(logits)
        bias += (0.5 * np.log((targets + 1e-3) / (rates + 1e-3))).astype(np.float32)
    return np.asarray(bias - bias.mean(), dtype=np.float32)


def _joint_weights(
    dims: ModelDims, net: _Prednet, clips: Sequence[npt.NDArray[np.float32]], rng: np.random.Generator
) -> _Joint:
    """Joint weights laid out as in the module docstring and calibrated on encoder frames of typical audio."""
    e, h, v, nd = dims.enc_dim, dims.pred_hidden, dims.vocab_size, dims.num_durations
    blank, dur0 = v, v + 1
    k = max(1, h // 40)  # units per control signal, so that no single weight stands out for int8
    n_ctl = 8 * k
    content = slice(n_ctl, h)
    all_frames = np.concatenate(clips)
    # Encoder channels 0-3 (gate, blank, duration x, duration y) have zero mean and unit variance over the valid
    # frames of every utterance (see _time_standardize), so they are read directly.
    gate_threshold = float(np.quantile(all_frames[:, 0], 1.0 - _GATE_RATE))
    joint = _Joint(
        np.zeros((e, h), np.float32),
        np.zeros(h, np.float32),
        np.zeros((h, h), np.float32),
        np.zeros(h, np.float32),
        np.zeros((h, dims.joint_width), np.float32),
        np.zeros(dims.joint_width, np.float32),
    )
    angles = 2.0 * np.pi * np.arange(nd - 1) / (nd - 1)
    sectors = np.arange(dur0 + 1, dur0 + nd)
    signals: tuple[
        tuple[int | None, float, npt.NDArray[np.intp], npt.NDArray[np.float64] | float, tuple[float, ...]], ...
    ]
    signals = (  # frame channel (or none), spread of the LSTM part, output columns, readout weights, signs
        (1, _BLANK_STATE_NOISE, np.array([blank]), _BLANK_SCALE, (1.0, -1.0)),
        (2, _STATE_NOISE, sectors, _DURATION_SCALE * np.cos(angles), (1.0, -1.0)),
        (3, _STATE_NOISE, sectors, _DURATION_SCALE * np.sin(angles), (1.0, -1.0)),
        (None, 1.0, np.array([dur0]), _ZERO_SCALE, (1.0,)),
    )
    noise = _orthogonal(rng, h, len(signals))  # LSTM directions, scaled during calibration
    state_units: list[tuple[int, int, float, float]] = []  # (unit, signal, sign, spread)
    for block in range(k):
        u = block * 8  # gate: relu(slope * (x_g - threshold + ramp)), from the frame only
        joint.w_enc[0, u] = _GATE_SLOPE
        joint.b_enc[u] = -_GATE_SLOPE * (gate_threshold - _GATE_RAMP)
        joint.w_out[u, blank] = -_GATE_PUSH / k
        joint.w_out[u, dur0] = _GATE_PUSH / k
        for signal, (channel, spread, columns, weights, signs) in enumerate(signals):
            for sign in signs:  # relu(+s) - relu(-s) reads s out linearly; relu(+s) alone only its positive part
                u += 1
                state_units.append((u, signal, sign, spread))
                if channel is not None:
                    joint.w_enc[channel, u] = sign
                joint.w_out[u, columns] = sign * np.asarray(weights) / k
    joint.w_enc[:, content] = _normal(rng, (e, h - n_ctl), _CONTENT_GAIN / math.sqrt(e))
    joint.b_enc[content] = _normal(rng, (h - n_ctl,), 0.2)
    joint.w_pred[:, content] = _normal(rng, (h, h - n_ctl), _CONTENT_GAIN * _PRED_GAIN / math.sqrt(h))
    joint.w_out[content, :v] = _normal(rng, (h - n_ctl, v), 1.0)
    token_offsets = _normal(rng, (v,), 0.3 * _TOKEN_SCALE)
    duration_targets = np.full(nd, (1.0 - _ZERO_DURATION_TARGET) / (nd - 1))
    duration_targets[0] = _ZERO_DURATION_TARGET

    # Calibrate on the steps of a greedy decode of the clips, a few rounds as each round moves the path (the
    # first round uses random frames and tokens): the LSTM parts of the control signals to zero mean and their
    # spread, each token logit to _TOKEN_SCALE spread, then the blank and duration biases to the target rates.
    frames = all_frames[rng.integers(0, len(all_frames), 256)]
    preds = np.array([net.step(int(t), net.zero_state())[0] for t in rng.integers(0, v, 256)], np.float32)
    for round_ in range(_CALIBRATION_ROUNDS):
        if round_:
            frames, preds = _simulate_decode(dims, net, joint, clips)
        pred_mean = preds.mean(axis=0)
        actual = np.maximum(((preds - pred_mean) @ noise).std(axis=0), 1e-6)
        for u, signal, sign, spread in state_units:
            direction = noise[:, signal] * (spread / actual[signal])
            joint.w_pred[:, u] = sign * direction
            joint.b_pred[u] = -sign * float(pred_mean @ direction)
        hidden = joint.hidden(frames, preds)
        tokens = hidden[:, content] @ joint.w_out[content, :v]
        scale = _TOKEN_SCALE / np.maximum(tokens.std(axis=0), 1e-6)
        joint.w_out[content, :v] *= scale
        joint.b_out[:v] = token_offsets - scale * tokens.mean(axis=0)
        logits = hidden @ joint.w_out + joint.b_out
        margin = logits[:, :v].max(axis=1) - logits[:, blank]
        step = 1.0 if round_ < 2 else 0.5  # damped once close
        joint.b_out[blank] += step * float(np.quantile(margin, _BLANK_TARGET))
        ungated = logits[hidden[:, 0] <= 0.0, dur0:]
        joint.b_out[dur0:] += step * _fit_biases(ungated, duration_targets)
    return joint


def decoder_joint_model(
    dims: ModelDims, rng: np.random.Generator, clips: Sequence[npt.NDArray[np.float32]]
) -> onnx.ModelProto:
    """Prediction net (embedding, two ONNX LSTMs) and joint, with the words-tdt graph's inputs and outputs.

    `clips` are encoder outputs [T', E] of typical audio, on which the joint is calibrated.
    """
    h = dims.pred_hidden
    net = _prednet(dims, rng)
    joint = _joint_weights(dims, net, clips, rng)
    inits = [
        _init("decoder.prediction.embed.weight", net.embed),
        _init("joint.enc.weight", joint.w_enc),
        _init("joint.enc.bias", joint.b_enc),
        _init("joint.pred.weight", joint.w_pred),
        _init("joint.pred.bias", joint.b_pred),
        _init("joint.joint_net.2.weight", joint.w_out),
        _init("joint.joint_net.2.bias", joint.b_out),
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
        helper.make_node(
            "Transpose", ["/decoder/embed/Gather_output_0"], ["/decoder/Transpose_output_0"], perm=[1, 0, 2]
        ),
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
        helper.make_node(
            "Add", ["joint.joint_net.2.bias", "/joint/joint_net/joint_net.2/MatMul_output_0"], ["outputs"]
        ),
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


def calibration_frames(encoder: onnx.ModelProto, n_mels: int) -> list[npt.NDArray[np.float32]]:
    """Encoder outputs [T', E] of synthetic clips (1.5-7.5 s, every kind) for calibrating the joint."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(encoder.SerializeToString(), options, providers=["CPUExecutionProvider"])
    clips = []
    for i in range(_CALIBRATION_CLIPS):
        wave = synthetic_clip(CLIP_KINDS[i % len(CLIP_KINDS)], 1.5 + 1.5 * (i % 5), _CALIBRATION_SEED + i)
        features, length = nemo_features(wave, n_mels)
        outputs, lengths = session.run(
            ["outputs", "encoded_lengths"], {"audio_signal": features[None], "length": np.array([length])}
        )
        clips.append(np.ascontiguousarray(outputs[0].T[: int(lengths[0])]))
    return clips


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization with uint8 weights per tensor, as in the words-tdt int8 files."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # it advises pre-processing on every call
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QUInt8, per_channel=False)
    finally:
        logging.disable(logging.NOTSET)


def build_model(
    directory: Path,
    dims: ModelDims = ModelDims(),
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
    decoder = decoder_joint_model(dims, rng, calibration_frames(encoder, dims.n_mels))
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
def _sessions(
    model_dir: str, int8: bool, stamp: tuple[int, ...]
) -> tuple[ort.InferenceSession, ort.InferenceSession, int]:
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
    enc_out, enc_len = encoder.run(
        ["outputs", "encoded_lengths"], {"audio_signal": feats, "length": np.array([length], np.int64)}
    )
    frames = enc_out[0].T
    n_frames = int(enc_len[0])
    hidden = decoder.get_inputs()[3].shape[2]
    state1 = np.zeros((2, 1, hidden), np.float32)
    state2 = np.zeros((2, 1, hidden), np.float32)
    tokens: list[int] = []
    token_frames: list[int] = []
    durations: list[int] = []
    histogram: list[int] = []
    steps = blanks = longest = run = emitted = t = 0
    last = blank
    while t < n_frames:
        logits, new1, new2 = decoder.run(
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
    tones = sum(np.sin(2 * np.pi * rng.uniform(100, 3000) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
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
    """NeMo-style normalised log-mel features [n_mels, T] and the valid length, via onnx-asr's numpy frontend.

    Only 80 and 128 bins exist there; other sizes are interpolated from the 128 bins.
    """
    from onnx_asr.preprocessors.numpy_preprocessor import NemoPreprocessorNumpy

    bins = n_mels if n_mels in (80, 128) else 128
    features, lengths = NemoPreprocessorNumpy(f"nemo{bins}")(
        np.asarray(waveform, np.float32)[None], np.array([len(waveform)], np.int64)
    )
    out = features[0]
    if bins != n_mels:
        grid = np.linspace(0, bins - 1, n_mels)
        out = np.stack([np.interp(grid, np.arange(bins), column) for column in out.T], axis=1)
    return np.ascontiguousarray(out, dtype=np.float32), int(lengths[0])


def typical_clips(count: int = 6, seed: int = 0) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """`count` clips of 1-10 s cycling through the clip kinds."""
    rng = np.random.default_rng(seed)
    return [
        (CLIP_KINDS[i % len(CLIP_KINDS)], synthetic_clip(CLIP_KINDS[i % len(CLIP_KINDS)], rng.uniform(1, 10), seed + i))
        for i in range(count)
    ]


@dataclass(frozen=True)
class PooledStats:
    """Statistics pooled over the decodes of several utterances."""

    steps: int
    tokens: int
    blank_fraction: float
    duration_fractions: tuple[float, ...]
    longest_zero_run: int


def summarize(stats: Sequence[DecodeStats]) -> PooledStats:
    """Pool several decodes: blank fraction and duration fractions over all steps, the longest zero run."""
    steps = sum(s.steps for s in stats)
    histogram = np.sum([s.duration_histogram for s in stats], axis=0)
    return PooledStats(
        steps=steps,
        tokens=sum(len(s.tokens) for s in stats),
        blank_fraction=sum(s.blank_fraction * s.steps for s in stats) / max(steps, 1),
        duration_fractions=tuple(round(float(n) / max(steps, 1), 3) for n in histogram),
        longest_zero_run=max(s.longest_zero_run for s in stats),
    )


if __name__ == "__main__":
    import sys
    import tempfile

    big = sys.argv[1:] == ["big"]  # `python tests/modelgen.py [big]` prints build time, sizes and statistics
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = build_model(Path(tmp), PARAKEET_DIMS if big else ModelDims(), external_data=big)
        print(f"built in {time.perf_counter() - start:.1f} s")
        for f in sorted(out.iterdir()):
            print(f"  {f.name}: {f.stat().st_size:,} bytes")
        for int8 in (False, True):
            results = [decode_stats(out, *nemo_features(w), int8=int8) for _, w in typical_clips()]
            print("int8" if int8 else "fp32", summarize(results))
