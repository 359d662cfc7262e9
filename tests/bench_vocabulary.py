"""How much phrase boosting helps, and what it costs: `python -m pytest tests/bench_vocabulary.py -s`.

With the words model (fp32, CPU): espeak-ng dictation of its 20 words in six voices, half of the utterances holding
one of four boosted two-word phrases, with white noise at several signal-to-noise ratios; for each strength α, the
recall of the boosted phrases that were said, the false-insertion rate of those that were not, and the word error
rate of the other words (tests/boost_benefit.py). Then the cost of a large list: the time to build 20,000 phrases
and the memory the tree holds, and the decode loop's time with 1,000 phrases beside none on the same encoder output.

Not part of the test run (the file name does not start with `test_`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from stt.bench import synthetic_clip
from stt.boost.phrases import Phrase
from stt.boost.tree import Boost, PhraseTree
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

from . import boost_benefit as bb
from .conftest import Speak
from .modelgen import ModelDims, build_model

UTTERANCES = int(os.environ.get("PERCH_BENCH_UTTERANCES", "96"))
ALPHAS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
SNRS = (20.0, 10.0, 5.0, 2.0, 0.0)


@pytest.mark.slow
def test_benefit_table(words_model: Path, speak: Speak) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))
    utterances = bb.corpus(speak, UTTERANCES, seed=1)
    print(f"\n{UTTERANCES} utterances; boosted phrases: {', '.join(bb.TARGETS)}")
    print("| SNR | α | recall of boosted phrases said | false insertions | WER of the other words |")
    print("|---|---|---|---|---|")
    for snr in SNRS:
        for alpha in ALPHAS:
            s = bb.score(recognizer, utterances, alpha, snr)
            print(
                f"| {snr:g} dB | {alpha:g} | {s.recall * 100:.1f} % | {s.false_insertions * 100:.1f} % | "
                f"{s.other_wer * 100:.1f} % |"
            )


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.slow
def test_cost_of_large_lists(words_model: Path) -> None:
    recognizer = Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    names = ["".join(rng.choice(letters, size=int(rng.integers(4, 12)))).capitalize() for _ in range(20_000)]
    phrases = [Phrase(f"{a} {b}") for a, b in zip(names, names[1:] + names[:1], strict=True)]
    encode = recognizer.phrase_tokenizer().encode
    began = time.perf_counter()
    token_ids = [encode(p.text) for p in phrases]
    tokenized = time.perf_counter() - began
    # A subword vocabulary of 8,192 pieces gives phrases of 3–8 tokens; the words model spells these by letter.
    subword = [list(rng.integers(0, 8192, size=int(rng.integers(3, 9)))) for _ in range(20_000)]
    for name, lists in (("8,192 subwords, 3-8 tokens", subword), ("words model, by letter", token_ids)):
        before = _peak_rss()
        began = time.perf_counter()
        tree = PhraseTree(lists)
        built = time.perf_counter() - began
        grown = _peak_rss() - before
        print(f"\n20,000 phrases ({name}): tree built in {built * 1000:.0f} ms, {len(tree):,} states, "
              f"{tree.nbytes / 1e6:.1f} MB of arrays, peak memory +{grown / 1e6:.0f} MB")  # fmt: skip
    print(f"tokenising them with the words model's tokenizer ({recognizer.phrase_tokenizer().method}): "
          f"{tokenized * 1000:.0f} ms")  # fmt: skip


@pytest.mark.slow
def test_decode_loop_cost_on_the_real_size_joint(tmp_path: Path) -> None:
    """The decoder+joint of the real size (2 x 640 LSTM, 8,192 tokens + blank + 5 durations) over the same
    encoder output, with no list and with 1,000 phrases."""
    folder = build_model(tmp_path / "real-joint", ModelDims(enc_dim=1024, pred_hidden=640, vocab_size=8192), int8=False)
    recognizer = Recognizer(ModelFiles.locate(folder, "fp32"), RuntimeOptions(device="cpu"))
    audio = synthetic_clip(60.0, seed=3)
    encoded, frames = recognizer.encode(audio)
    rng = np.random.default_rng(1)
    phrases = [list(rng.integers(0, 8192, size=int(rng.integers(2, 6)))) for _ in range(1000)]
    boosted = Boost(PhraseTree(phrases), 3.0)
    timings: dict[str, list[float]] = {"none": [], "1,000 phrases": []}
    for boost in (None, boosted):  # warm-up: first-call allocations, the tree states' arcs
        recognizer.boost = boost
        recognizer.decode_range(encoded, 0, frames, None)
    for _ in range(15):
        for name, boost in (("none", None), ("1,000 phrases", boosted)):
            recognizer.boost = boost
            began = time.perf_counter()
            hyp, _ = recognizer.decode_range(encoded, 0, frames, None)
            timings[name].append(time.perf_counter() - began)
    recognizer.boost = None
    plain, with_list = (float(np.median(timings[k])) for k in ("none", "1,000 phrases"))
    print(f"\ndecode loop, 60 s ({frames} frames, {len(hyp.ids)} tokens): no list {plain * 1000:.0f} ms, "
          f"1,000 phrases {with_list * 1000:.0f} ms, ratio {with_list / plain:.3f}")  # fmt: skip
