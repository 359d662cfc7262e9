"""Regenerate tests/data/nemo-boost-tdt/ and tests/data/nemo-boost-tdt-tokenizer.model: a small random-weight TDT
model exported by NVIDIA NeMo, clips, and NeMo's own greedy output with phrase boosting (reference.json).

NeMo is never a Perch dependency: run this from a separate environment that has it (espeak-ng must be installed):

    python3 -m venv /path/to/nemo-env
    /path/to/nemo-env/bin/pip install torch 'nemo_toolkit[asr]==3.0.0'
    /path/to/nemo-env/bin/python tests/data/make_nemo_boost_reference.py

What it does: trains a SentencePiece BPE tokenizer of 1024 pieces with NeMo's own trainer (`create_spt_model`, as
NeMo's process_asr_text_tokenizer.py does: character coverage 1.0, no byte fallback, <unk> = 0, no bos/eos/pad) on
a generated English corpus that leaves out ø, ł, ß, ź and CJK, so phrases holding them tokenise with <unk>; builds
a seeded FastConformer TDT model (2 layers, d_model 64, 128 mels, x8 subsampling, durations 0-4) whose joint is
shaped so that about half the decode steps are blank, every duration is chosen and the non-blank choice is close
between candidates (the pieces of the phrase lists sit just below the top), so that boosting changes most clips,
and whose output biases are then moved (a linear programme) to widen the smallest margin of every decision taken;
exports it with NeMo's exporter in the published Parakeet ONNX layout; writes espeak-ng and noise clips; and records
NeMo's greedy TDT output for each clip without boosting and, configured as a user does
(`decoding.greedy.boosting_tree.key_phrases_list`, `decoding.greedy.boosting_tree_alpha`), for four phrase lists
and four alphas; plus each phrase's `tokenizer.text_to_ids`, and NeMo's boosting tree for one list (every node and
the scores and next states `advance` gives from a few states).

Every boosted decode is also replayed step by step with NeMo's modules and NeMo's tree (`GPUBoostingTreeModel.advance`)
to check the recorded ids and to measure how close each argmax was (the smallest top-2 gap) against the largest
difference between NeMo's (torch) logits and ONNX Runtime's on the exported files along the same steps.
The output is byte-for-byte reproducible on one machine; espeak-ng or library versions may change it elsewhere.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from make_nemo_text_reference import encode, model_config, shaped_noise  # siblings, on sys.path when run as above
from make_vad_reference import RATE, speak, write_pcm16

HERE = Path(__file__).resolve().parent
OUT = HERE / "nemo-boost-tdt"
CLIPS = OUT / "clips"
TOKENIZER = HERE / "nemo-boost-tdt-tokenizer.model"
VOCAB_SIZE = 1024
DURATIONS = [0, 1, 2, 3, 4]
ALPHAS = [1.0, 3.0, 6.0, 10.0]
TREE = {"context_score": 1.0, "depth_scaling": 2.0, "unk_score": 0.0}
SEED = 20250914
TARGET, QUANTILE, NEAR_FIRST, NEAR = (0.1, 0.4, 0.25, 0.15, 0.1), 0.2, 0.4, 1.2  # joint shaping, see shape_joint
UNKNOWN = "øØłŁßźŹ東京"  # kept out of the corpus: phrases holding them tokenise with <unk>

# ------------------------------------------------------------------------------------------ phrase lists


def words(text: str, sep: str = " ") -> list[str]:
    return text.split(sep)


LISTS: dict[str, list[str]] = {
    "prefixes": ["Okonkwo", "Okonkwo Adebayo", "Okafor", "Oklahoma"],
    "suffixes": ["Kubernetes", "netes", "Perch", "perch app", "app"],
    "unknown": ["Søren", "Łódź", "Straße", "東京"],
    "mixed": words(
        "Okonkwo|Adebayo|Nakamura|Siobhan|Nguyen|Kowalczyk|Dvořák|Tchaikovsky|Xiomara|Zürich|Reykjavík|"
        "Ouagadougou|Wrocław|Saskatchewan|Llanfair|Kubernetes|PostgreSQL|TensorRT|ONNX Runtime|Parakeet|"
        "FastConformer|SentencePiece|NeMo|PyTorch|gRPC|WebRTC|PipeWire|Wayland|systemd|kubectl apply|Perch|"
        "perch app|dictation mode|push to talk|Doctor Okonkwo|Professor Nakamura|acetaminophen|ibuprofen|"
        "myocardial infarction|tachycardia|subpoena|habeas corpus|amicus brief|escrow|amortization|EBITDA|"
        "quinoa|gnocchi|bouillabaisse|Worcestershire|Grünewald|Björk|Łukasz|Søndergaard|Straße|café au lait|"
        "São Paulo|Düsseldorf|Thessaloniki|Ljubljana",
        sep="|",
    ),
}
TREE_PHRASES = LISTS["prefixes"] + LISTS["suffixes"] + ["Adebayo"]  # "Adebayo": a fail link below depth one

# ------------------------------------------------------------------------------------------ tokenizer corpus

_FIRST = words(
    "Anna Ben Clara David Eve Frank Grace Henry Iris Jack Kofi Lena Mateo Nadia Omar Priya Quentin Rosa Sven "
    "Tariq Uma Victor Wen Yusuf Zoe José Renée François Chloé Inés Björn Jürgen Mónica Raúl Hélène"
)
_LAST = words(
    "Smith Garcia Okoro Kim Patel Müller Rossi Dubois Novak Haddad Silva Jensen Ivanova Tanaka Mensah Lopez "
    "Schmidt Núñez Peña Brontë Fernández Öztürk"
)
_PLACES = words(
    "London Lagos Paris Berlin Madrid Toronto Chicago Denver Austin Seattle Boston Nairobi Mumbai Lisbon Vienna "
    "Prague Oslo Dublin Zurich Montréal Bogotá Málaga Köln Genève Okayama Oakland Kyoto Osaka Accra Cairo"
)
_PRODUCTS = words(
    "laptop phone tablet router server cluster database browser keyboard headset monitor printer camera speaker "
    "charger container network kernel compiler backup dashboard firewall notebook app update release plugin "
    "driver widget microphone"
)
_NOUNS = words(
    "meeting report ticket invoice flight train doctor lawyer nurse teacher garden kitchen window letter coffee "
    "river bridge market museum hospital station office budget contract recipe concert festival weather morning "
    "evening"
)
_VERBS = words(
    "flew drove walked moved called wrote sent bought sold fixed opened closed checked started stopped visited "
    "signed booked cancelled installed deployed reviewed"
)
_ADJ = words("new old quiet busy broken early late cheap expensive simple strange fast")
_SYLLABLES = words("ka ro mi ta ne lu so ve di pa zo ri ba qu en or al")
_TEMPLATES = [
    "{F} {L} {v} to {P} on {d}.",
    "The {a} {p} in {P} costs ${n}.{c}.",
    "{F} said the {o} is {a} again.",
    "Call {F} at {t} about the {o}.",
    "We {v} {n} {p}s for the {o} in {P}.",
    "Did {F} {L} really move to {P}?",
    "The {o} starts at {t}, and {F} is {a}.",
    "{F}'s {p} was {a}, so {F2} {v} it.",
    "Order {n} units of the {a} {p} by {d}.",
    "Dr. {L} {v} the {o} report in {P}.",
    "Meet me near the {o} in {P} at {t}.",
    "{F} and {F2} {v} {n} miles to {P}.",
    "The {X} {p} from {P} is {a}.",
    "{X} {L} {v} the {p} on {d}.",
]
_DAYS = words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")


def corpus(lines: int = 4000) -> list[str]:
    """Deterministic English sentences: names, places, products, numbers, times, a few accents, coined names."""
    rng = random.Random(SEED)

    def coined() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()

    out = []
    for _ in range(lines):
        fill = {
            "F": rng.choice(_FIRST),
            "F2": rng.choice(_FIRST),
            "L": rng.choice(_LAST),
            "P": rng.choice(_PLACES),
            "p": rng.choice(_PRODUCTS),
            "o": rng.choice(_NOUNS),
            "v": rng.choice(_VERBS),
            "a": rng.choice(_ADJ),
            "d": rng.choice(_DAYS),
            "n": str(rng.choice([rng.randint(2, 99), rng.randint(100, 2999)])),
            "c": f"{rng.randint(0, 99):02d}",
            "t": f"{rng.randint(1, 12)}:{rng.choice(['00', '15', '30', '45'])}",
            "X": coined(),
        }
        out.append(rng.choice(_TEMPLATES).format(**fill))
    assert not set("".join(out)) & set(UNKNOWN)
    return out


def train_tokenizer(folder: Path) -> None:
    """NeMo's own SentencePiece trainer with the defaults of its ASR tokenizer script, BPE, 1024 pieces; writes
    tokenizer.model, tokenizer.vocab and NeMo's vocab.txt into `folder`."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    (folder / "corpus.txt").write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    null, saved, cwd = os.open(os.devnull, os.O_WRONLY), os.dup(2), Path.cwd()
    try:  # relative paths, which the model records, keep it reproducible; the trainer logs to stderr
        os.chdir(folder)
        os.dup2(null, 2)
        create_spt_model("corpus.txt", VOCAB_SIZE, -1, do_lower_case=False, tokenizer_type="bpe", output_dir=".")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
        os.chdir(cwd)


# ------------------------------------------------------------------------------------------ clips

_SPOKEN = [
    "Doctor Okonkwo flew to Zürich.",
    "Okafor met Adebayo in Oklahoma.",
    "The Kubernetes cluster is down again.",
    "Open the Perch app, then start dictation.",
    "Søren moved from Łódź to the Straße.",
    "Professor Nakamura ordered quinoa and gnocchi.",
]


def make_clips() -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Six espeak-ng phrases and two noise clips, 1-4 s each, written as 16-bit WAVs (decoded samples back)."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    raw: list[tuple[str, npt.NDArray[np.float32]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, text in enumerate(_SPOKEN):
            speech = speak(text, Path(tmp))[: 4 * RATE]
            raw.append((f"speech{k:02d}.wav", (0.5 * speech / np.abs(speech).max()).astype(np.float32)))
    raw += [(f"noise{k:02d}.wav", shaped_noise(k + 7, 1.5 + 1.5 * k)) for k in range(2)]
    return [(name, write_pcm16(CLIPS / name, samples)) for name, samples in raw]


# ------------------------------------------------------------------------------------------ model


def build_model(tokenizer_dir: Path) -> Any:
    """The seeded random-weight EncDecRNNTBPEModel, in eval mode on the CPU."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(SEED)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(model_config(tokenizer_dir)))
    return model.eval()


# ------------------------------------------------------------------------------------------ greedy TDT replay


class TorchSteps:
    """One clip's decode steps with NeMo's modules: raw joint logits per (frame, context); a context per token."""

    def __init__(self, model: Any, samples: npt.NDArray[np.float32]) -> None:
        import torch

        self.model, self.torch = model, torch
        assert not model.training and not model.encoder.training  # batch norm must use its running statistics
        with torch.no_grad():
            self.frames = model.joint.project_encoder(encode(model, samples))

    def __len__(self) -> int:
        return len(self.frames)

    def start(self) -> Any:
        return self.advance(None, self.model.decoder.blank_idx)  # NeMo's SOS is blank, with a zero state

    def advance(self, context: Any, token: int) -> Any:
        with self.torch.no_grad():
            g, state = self.model.decoder.predict(
                self.torch.tensor([[token]]), None if context is None else context[1], add_sos=False, batch_size=1
            )
            return self.model.joint.project_prednet(g)[0, 0], state

    def hidden(self, t: int, context: Any) -> npt.NDArray[np.float32]:
        """The joint's hidden layer (before its output layer)."""
        with self.torch.no_grad():
            out: npt.NDArray[np.float32] = self.model.joint.joint_net[:-1](self.frames[t] + context[0]).numpy()
        return out

    def logits(self, t: int, context: Any) -> npt.NDArray[np.float32]:
        with self.torch.no_grad():
            out: npt.NDArray[np.float32] = self.model.joint.joint_net(self.frames[t] + context[0]).numpy()
        return out


class OnnxSteps:
    """The same steps with ONNX Runtime on the exported files, fed NeMo's features, as onnx-asr runs them."""

    def __init__(self, model: Any, samples: npt.NDArray[np.float32], sessions: tuple[Any, Any]) -> None:
        import torch

        with torch.no_grad():
            audio, length = torch.from_numpy(samples)[None], torch.tensor([len(samples)])
            feats, lengths = model.preprocessor(input_signal=audio, length=length)
        encoder, self.decoder = sessions
        out, frames = encoder.run(None, {"audio_signal": feats.numpy(), "length": lengths.numpy()})
        self.frames = out[0, :, : int(frames[0])].T
        self.blank = model.decoder.blank_idx
        self.shape = next(i.shape for i in self.decoder.get_inputs() if i.name == "input_states_1")

    def __len__(self) -> int:
        return len(self.frames)

    def _run(self, t: int, context: Any) -> list[Any]:
        token, h, c = context
        feed = {
            "encoder_outputs": self.frames[t][None, :, None],
            "targets": np.array([[token]], np.int32),
            "target_length": np.array([1], np.int32),
            "input_states_1": h,
            "input_states_2": c,
        }
        return list(self.decoder.run(None, feed))

    def start(self) -> Any:
        zeros = np.zeros((self.shape[0], 1, self.shape[2]), np.float32)
        return self.blank, zeros, zeros

    def advance(self, context: Any, token: int) -> Any:
        out = self._run(0, context)
        return token, out[2], out[3]

    def logits(self, t: int, context: Any) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self._run(t, context)[0].reshape(-1)
        return out


def top2_gap(x: npt.NDArray[np.float32]) -> float:
    a, b = np.partition(x, -2)[-2:]
    return float(abs(a - b))


def replay(steps: Any, blank: int, tree: Any = None, alpha: float = 0.0, max_symbols: int = 10) -> dict[str, Any]:
    """Greedy TDT as NeMo's label looping runs it (tdt_label_looping.py, torch_impl), with its phrase boosting:
    where the argmax over tokens and blank is not blank, the token is re-chosen by `logit + alpha * score` over
    the non-blank tokens, the scores and next tree state coming from NeMo's tree model (`advance`).

    Returns ids, frames and durations, each step's logits and (emitting steps) alpha-scaled boost scores, and
    the smallest top-2 gaps of the decisions taken: blank or not, which token, which duration.
    """
    import torch

    ids: list[int] = []
    frames: list[int] = []
    durations: list[int] = []
    logs, boosts = [], {}
    gaps = {"blank": np.inf, "token": np.inf, "duration": np.inf}
    context, state, t, repeats = steps.start(), 0, 0, 0
    while t < len(steps):
        logits = steps.logits(t, context)
        logs.append(logits)
        tokens, dur = logits[: blank + 1], logits[blank + 1 :]
        k, d = int(tokens.argmax()), DURATIONS[int(dur.argmax())]
        gaps["blank"] = min(gaps["blank"], abs(float(tokens[blank] - tokens[:blank].max())))
        gaps["duration"] = min(gaps["duration"], top2_gap(dur))
        if k == blank:
            t += max(d, 1)
            continue
        boost = np.zeros(blank, np.float32)
        if tree is not None:
            with torch.no_grad():
                scores, targets = tree.advance(torch.tensor([state]))
            boost = np.float32(alpha) * scores[0].numpy()
            k = int((tokens[:blank] + boost).argmax())
            state = int(targets[0, k])
        boosts[len(logs) - 1] = boost
        gaps["token"] = min(gaps["token"], top2_gap(tokens[:blank] + boost))
        repeats = repeats + 1 if frames and frames[-1] == t else 1
        ids.append(k)
        frames.append(t)
        durations.append(d)
        context = steps.advance(context, k)
        t += d
        if d == 0 and repeats >= max_symbols:  # NeMo forces a step after max_symbols tokens on one frame
            t += 1
    return {
        "ids": ids,
        "frames": frames,
        "durations": durations,
        "logits": np.array(logs),
        "boosts": boosts,
        "gaps": gaps,
    }


# ------------------------------------------------------------------------------------------ shaping the joint


def decode_all(model: Any, clips: list[Any], trees: dict[str, Any] | None = None) -> dict[tuple[str, float], list[Any]]:
    """Replays of every clip: unboosted (key ("", 0.0)) and, with `trees`, for every list and alpha."""
    steps = [TorchSteps(model, samples) for _, samples in clips]
    blank = model.decoder.blank_idx
    runs = {("", 0.0): [replay(s, blank) for s in steps]}
    for name, tree in (trees or {}).items():
        for alpha in ALPHAS:
            runs[name, alpha] = [replay(s, blank, tree, alpha) for s in steps]
    return runs


def shape_joint(model: Any, clips: list[Any], phrase_tokens: list[int], first_tokens: list[int]) -> None:
    """Scale and bias the joint so that decoding the clips is varied and boosting matters: ~50% blank steps
    spread over every clip, every duration, many distinct tokens, and the phrases' pieces (their first pieces
    above all) close below the top, where a boost of alpha = 1 can lift them.

    A random FastConformer's output varies mostly within a clip; the joint's encoder projection standardises it,
    and the blank row of the output layer is set along the hidden direction whose variance is largest within clips
    relative to between clips, so that every clip has blanks and tokens. Then, in rounds of replayed decoding: a
    penalty on tokens chosen often (variety); every phrase piece moved until, on a QUANTILE of the token steps, it
    lies within NEAR_FIRST (a first piece) or NEAR (a later piece) of the best token; the blank bias at half of
    the steps (bisection); duration biases at the TARGET shares.
    """
    import scipy.linalg
    import torch

    blank = model.decoder.blank_idx
    joint, out = model.joint, model.joint.joint_net[-1]
    target = np.array(TARGET)
    feats = torch.cat([encode(model, samples) for _, samples in clips])
    mean, std = feats.mean(0), feats.std(0)
    with torch.no_grad():
        joint.enc.weight.mul_(1.7 / std[None, :])
        joint.enc.bias.copy_(-joint.enc.weight @ mean)
        joint.pred.weight.mul_(12.0)
        out.weight[:blank].mul_(4.0)
        out.weight[blank + 1 :].mul_(2.0)
        out.bias.zero_()
        hidden = []
        for _, samples in clips:
            steps = TorchSteps(model, samples)
            context = steps.start()
            hidden.append(np.array([steps.hidden(t, context) for t in range(len(steps))]))
        pooled = np.concatenate(hidden)
        within = sum((h - h.mean(0)).T @ (h - h.mean(0)) for h in hidden) / len(pooled)
        between = sum(len(h) * np.outer(h.mean(0) - pooled.mean(0), h.mean(0) - pooled.mean(0)) for h in hidden)
        between = between / len(pooled) + 1e-3 * np.trace(between) / len(pooled) / len(within) * np.eye(len(within))
        direction = scipy.linalg.eigh(within, between)[1][:, -1]
        out.weight[blank] = torch.from_numpy(
            (5.0 * direction / np.sqrt(direction @ within @ direction)).astype(np.float32)
        )

        base = np.zeros(blank + 1 + len(DURATIONS), np.float32)
        is_first = np.isin(phrase_tokens, first_tokens)
        penalty = np.zeros_like(base)
        out.bias.copy_(torch.from_numpy(base))
        for n in range(14):
            for_blank = out.bias.numpy().copy()
            lo, hi = -30.0, 30.0
            for _ in range(24):
                for_blank[blank] = (lo + hi) / 2
                out.bias.copy_(torch.from_numpy(for_blank))
                logits = np.concatenate([r["logits"] for r in decode_all(model, clips)["", 0.0]])
                lo, hi = (
                    (for_blank[blank], hi)
                    if np.mean(logits[:, : blank + 1].argmax(1) == blank) < 0.5
                    else (lo, for_blank[blank])
                )
            bias = for_blank
            tokens, durations = logits[:, : blank + 1], logits[:, blank + 1 :]
            picked = tokens.argmax(1)
            emitting = tokens[picked != blank, :blank]
            if n < 10:
                penalty[:blank] += 0.5 * np.log1p(np.bincount(picked[picked != blank], minlength=blank + 1)[:blank])
                bias[:blank] = base[:blank] - penalty[:blank]
                below = emitting.max(1, keepdims=True) - emitting[:, phrase_tokens]
                bias[phrase_tokens] += 0.5 * (
                    np.quantile(below, QUANTILE, axis=0) - np.where(is_first, NEAR_FIRST, NEAR)
                )
                base[phrase_tokens] = bias[phrase_tokens] + penalty[phrase_tokens]
            raw = durations - bias[blank + 1 :]
            for _ in range(200):
                counts = np.bincount((raw + bias[blank + 1 :]).argmax(1), minlength=len(DURATIONS))
                bias[blank + 1 :] += 0.2 * (np.log(target) - np.log((counts + 1) / (counts.sum() + len(DURATIONS))))
            out.bias.copy_(torch.from_numpy(bias))


def decisions(runs: dict[Any, list[Any]], blank: int, reach: float) -> dict[tuple[int, int], float]:
    """Every (winner, loser) pair of output units over all decisions the replays took, with the smallest margin,
    for the pairs closer than `reach`: blank or the top token; the (boosted) token; the duration."""
    pairs: dict[tuple[int, int], float] = {}

    def add(winner: int, losers: npt.NDArray[np.int64], margins: npt.NDArray[np.float32]) -> None:
        for loser, margin in zip(losers.tolist(), margins.tolist(), strict=True):
            if loser != winner and margin < pairs.get((winner, loser), reach):
                pairs[winner, loser] = margin

    for run in (r for decodes in runs.values() for r in decodes):
        for i, logits in enumerate(run["logits"]):
            tokens, durations = logits[: blank + 1], logits[blank + 1 :]
            if tokens.argmax() == blank:
                margin = tokens[blank] - tokens
                add(blank, np.flatnonzero(margin < reach), margin[margin < reach])
            else:
                add(int(tokens.argmax()), np.array([blank]), np.array([tokens.max() - tokens[blank]]))
                choice = tokens[:blank] + run["boosts"][i]
                margin = choice.max() - choice
                add(int(choice.argmax()), np.flatnonzero(margin < reach), margin[margin < reach])
            margin = durations.max() - durations
            add(blank + 1 + int(durations.argmax()), blank + 1 + np.flatnonzero(margin < reach), margin[margin < reach])
    return pairs


def widen_margins(model: Any, clips: list[Any], trees: dict[str, Any], cap: float = 0.4, most: float = 0.05) -> float:
    """Move the joint's output biases (each by at most `cap`) to the point that keeps every decision of every
    replayed decode (unboosted and boosted) and makes the smallest margin between a decision's winner and a
    loser as large as it can be (at most `most`): a linear programme. Returns that margin."""
    import scipy.optimize
    import scipy.sparse
    import torch

    blank = model.decoder.blank_idx
    before = decode_all(model, clips, trees)
    pairs = decisions(before, blank, reach=2 * cap + 2 * most)
    units = blank + 1 + len(DURATIONS)
    rows = np.repeat(np.arange(len(pairs)), 3)
    cols = np.array([[w, loser, units] for w, loser in pairs]).reshape(-1)
    values = np.tile([-1.0, 1.0, 1.0], len(pairs))  # -shift[w] + shift[loser] + margin <= current margin
    result = scipy.optimize.linprog(
        c=np.eye(units + 1)[units] * -1.0,
        A_ub=scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(pairs), units + 1)),
        b_ub=np.array(list(pairs.values())),
        bounds=[(-cap, cap)] * units + [(0.0, most)],
        method="highs",
    )
    assert result.status == 0, result.message
    out = model.joint.joint_net[-1]
    with torch.no_grad():
        out.bias.add_(torch.from_numpy(result.x[:units].astype(np.float32)))
    after = decode_all(model, clips, trees)
    for key, runs in before.items():
        for a, b in zip(runs, after[key], strict=True):
            assert (a["ids"], a["frames"], a["durations"]) == (b["ids"], b["frames"], b["durations"]), key
    return float(result.x[units])


# ------------------------------------------------------------------------------------------ NeMo's decoding


def nemo_decode(model: Any, files: list[Path], phrases: list[str] | None, alpha: float) -> tuple[list[Any], Any]:
    """NeMo's greedy TDT (greedy_batch, label looping) of the files, boosted as a user configures it; returns the
    hypotheses and the boosting tree model NeMo built (None without phrases)."""
    from nemo.collections.asr.parts.context_biasing.boosting_graph_batched import GPUBoostingTreeModel
    from omegaconf import open_dict

    cfg = copy.deepcopy(model.cfg.decoding)
    with open_dict(cfg):
        cfg.strategy = "greedy_batch"
        cfg.greedy.boosting_tree = {"key_phrases_list": phrases, **TREE} if phrases else {}
        cfg.greedy.boosting_tree_alpha = alpha
    model.change_decoding_strategy(cfg, verbose=False)
    computer = model.decoding.decoding.decoding_computer
    fused = list(zip(computer.fusion_models or [], computer.fusion_models_alpha or [], strict=True))
    if phrases:  # boosting engaged: one boosting tree, our alpha, every key of ours in the config NeMo uses
        assert len(fused) == 1 and isinstance(fused[0][0], GPUBoostingTreeModel) and fused[0][1] == alpha, fused
        used = model.cfg.decoding.greedy
        assert list(used.boosting_tree.key_phrases_list) == phrases and used.boosting_tree_alpha == alpha
        assert all(used.boosting_tree[key] == value for key, value in TREE.items())
    else:
        assert not fused, fused
    hyps = model.transcribe([str(f) for f in files], batch_size=1, return_hypotheses=True, verbose=False)
    model.eval()  # transcribe() ends by unfreezing encoder, decoder and joint, which puts them in training mode
    return hyps, fused[0][0] if fused else None


def build_tree(model: Any, phrases: list[str]) -> Any:
    """The boosting tree NeMo builds from a config (GPUBoostingTreeModel.from_config), for the replays."""
    from nemo.collections.asr.parts.context_biasing.boosting_graph_batched import (
        BoostingTreeModelConfig,
        GPUBoostingTreeModel,
    )
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(BoostingTreeModelConfig(key_phrases_list=phrases, **TREE))
    return GPUBoostingTreeModel.from_config(cfg, tokenizer=model.tokenizer)


def dump_tree(model: Any, phrases: list[str]) -> dict[str, Any]:
    """NeMo's tree for `phrases`: every node of its ContextGraph (built as from_config builds it) with its token path,
    token_score, node_score, is_end, fail path and backoff weight (BoostingTreeStorage's rule, checked against the
    GPU model's states), and `advance` from a few states: the score most tokens get (`default`, going
    back to the root), and every token whose score or next state differs from that."""
    import torch
    from nemo.collections.asr.parts.context_biasing.context_graph_universal import ContextGraph

    ids = {phrase: model.tokenizer.text_to_ids(phrase) for phrase in phrases}
    graph = ContextGraph(context_score=TREE["context_score"], depth_scaling=TREE["depth_scaling"])
    graph.build(token_ids=list(ids.values()), phrases=list(ids), scores=[0.0] * len(ids), uniform_weights=False)
    paths: dict[int, list[int]] = {graph.root.id: []}
    nodes, queue = [], [graph.root]
    while queue:
        node = queue.pop(0)
        for token, child in sorted(node.next.items()):
            paths[child.id] = paths[node.id] + [int(token)]
            queue.append(child)
        if node is not graph.root:
            nodes.append(node)
    gpu = build_tree(model, phrases)
    arcs = zip(gpu.from_states.tolist(), gpu.to_states.tolist(), gpu.ilabels.tolist(), strict=True)
    state_path: dict[int, list[int]] = {0: []}
    for source, dest, label in sorted(arcs, key=lambda arc: arc[1]):
        if dest != 0 and dest not in state_path:
            state_path[dest] = state_path[source] + [label]
    state_of = {tuple(path): state for state, path in state_path.items()}
    table = []
    for node in nodes:
        backoff = 0.0 if node.is_end else node.fail.node_score - node.node_score
        state = state_of[tuple(paths[node.id])]
        assert state_path[int(gpu.backoff_to_states[state])] == paths[node.fail.id]
        assert abs(float(gpu.backoff_weights[state]) - backoff) < 1e-6
        table.append(
            {
                "path": paths[node.id],
                "token_score": float(node.token_score),
                "node_score": float(node.node_score),
                "is_end": bool(node.is_end),
                "fail": paths[node.fail.id],
                "backoff": float(np.float32(backoff)),
            }
        )

    def advance(path: list[int]) -> dict[str, Any]:
        with torch.no_grad():
            scores, targets = gpu.advance(torch.tensor([state_of[tuple(path)]]))
        scores, targets = scores[0].numpy(), targets[0].numpy()
        default = float(np.median(scores))  # the backoff weights summed down to the root: most tokens go there
        differs = np.flatnonzero((scores != default) | (targets != 0))
        assert len(differs) < len(scores) // 2
        return {
            "state": path,
            "default": default,
            "arcs": {str(t): [float(scores[t]), state_path[int(targets[t])]] for t in differs.tolist()},
        }

    okonkwo, adebayo = ids["Okonkwo"], ids["Okonkwo Adebayo"]
    probes = [[], okonkwo[:2], okonkwo, adebayo[: len(okonkwo) + 2], ids["perch app"], ids["Oklahoma"]]
    return {
        "phrases": phrases,
        "token_ids": list(ids.values()),
        "nodes": table,
        "advance": [advance(path) for path in probes],
    }


# ------------------------------------------------------------------------------------------ main


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


def result(ids: list[int], frames: list[int], durations: list[int]) -> dict[str, list[int]]:
    return {"ids": [int(i) for i in ids], "frames": [int(i) for i in frames], "durations": [int(i) for i in durations]}


def main() -> None:
    logging.disable(logging.WARNING)
    import nemo
    import onnxruntime
    import sentencepiece
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer(Path(tmp))
        shutil.copyfile(Path(tmp) / "tokenizer.model", TOKENIZER)
        model = build_model(Path(tmp))
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(TOKENIZER))
    vocab = [pieces.id_to_piece(i) for i in range(len(pieces))]
    assert (
        len(vocab) == VOCAB_SIZE == model.decoder.blank_idx
        and pieces.unk_id() == 0
        and vocab == list(model.tokenizer.vocab)
    )
    token_ids = {name: [model.tokenizer.text_to_ids(p) for p in phrases] for name, phrases in LISTS.items()}
    assert len({ids[0] for ids in token_ids["prefixes"]}) == 1  # one shared first piece
    assert all(0 in ids for ids in token_ids["unknown"])  # <unk> in every phrase of list (c)
    clips = make_clips()
    trees = {name: build_tree(model, phrases) for name, phrases in LISTS.items()}
    every = sorted({i for lists in token_ids.values() for ids in lists for i in ids})
    shape_joint(model, clips, every, sorted({ids[0] for lists in token_ids.values() for ids in lists}))
    widened = widen_margins(model, clips, trees)
    export(model, vocab)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = tuple(
        onnxruntime.InferenceSession(str(OUT / f), options, providers=["CPUExecutionProvider"])
        for f in ("encoder-model.onnx", "decoder_joint-model.onnx")
    )
    files = [CLIPS / name for name, _ in clips]
    blank = model.decoder.blank_idx
    gaps = {"blank": np.inf, "token": np.inf, "duration": np.inf}
    error = 0.0

    def decode(phrases: list[str] | None, alpha: float) -> list[dict[str, list[int]]]:
        """NeMo's output, checked against the torch and ONNX Runtime replays with the tree NeMo built."""
        nonlocal error
        hyps, tree = nemo_decode(model, files, phrases, alpha)
        outputs = []
        for (_, samples), hyp in zip(clips, hyps, strict=True):
            nemo_out = result(hyp.y_sequence.tolist(), hyp.timestamp.tolist(), hyp.token_duration.tolist())
            ours = replay(TorchSteps(model, samples), blank, tree, alpha)
            onnx = replay(OnnxSteps(model, samples, sessions), blank, tree, alpha)
            assert result(ours["ids"], ours["frames"], ours["durations"]) == nemo_out, (ours["ids"], nemo_out)
            assert result(onnx["ids"], onnx["frames"], onnx["durations"]) == nemo_out, (onnx["ids"], nemo_out)
            error = max(error, float(np.abs(ours["logits"] - onnx["logits"]).max()))
            for key, gap in gaps.items():
                gaps[key] = min(gap, ours["gaps"][key])
            outputs.append(nemo_out)
        return outputs

    unboosted = decode(None, 0.0)
    boosted = {name: {alpha: decode(phrases, alpha) for alpha in ALPHAS} for name, phrases in LISTS.items()}
    print(f"{'list':<10}" + "".join(f"  alpha {a:g}" for a in ALPHAS) + "   (clips changed by boosting, of 8)")
    for name in LISTS:
        changed = [sum(b["ids"] != u["ids"] for b, u in zip(boosted[name][a], unboosted, strict=True)) for a in ALPHAS]
        print(f"{name:<10}" + "".join(f"{c:>9}" for c in changed))
        assert all(c > len(clips) // 2 for c in changed), (name, changed)
    steps = [len(u["ids"]) for u in unboosted]
    print(f"unboosted tokens per clip {steps}; widened margin {widened:.4f}")
    print("smallest top-2 gaps on the decodes: " + ", ".join(f"{k} {v:.5f}" for k, v in gaps.items()))
    print(f"largest |torch - ONNX Runtime| logit on the same steps: {error:.2e}")

    reference = {
        "nemo_version": nemo.__version__,
        **TREE,
        "alphas": ALPHAS,
        "durations": DURATIONS,
        "lists": {name: {"phrases": LISTS[name], "token_ids": token_ids[name]} for name in LISTS},
        "clips": [
            {
                "file": file.name,
                "unboosted": unboosted[k],
                "boosted": {name: {str(a): boosted[name][a][k] for a in ALPHAS} for name in LISTS},
            }
            for k, file in enumerate(files)
        ],
        "tree": dump_tree(model, TREE_PHRASES),
        "margins": {"smallest_top2_gap": gaps, "largest_onnx_logit_error": error},
    }
    text = json.dumps(reference, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    (OUT / "reference.json").write_text(text + "\n", encoding="utf-8")
    for path in [TOKENIZER, *sorted(OUT.rglob("*"))]:
        if path.is_file():
            print(f"{path.relative_to(HERE)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
