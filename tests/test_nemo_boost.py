"""Phrase boosting equals NeMo 3.0's GPU-PB on reference outputs NeMo made itself
(`tests/data/make_nemo_boost_reference.py`): a NeMo-exported TDT model with a NeMo-trained 1,024-piece BPE
tokenizer, four phrase lists (shared prefixes, suffixes of other phrases, characters the vocabulary lacks, and
60 mixed phrases), α ∈ {1, 3, 6, 10}, eight clips; and NeMo's own tree for a small list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stt.audio import load_audio
from stt.boost.phrases import Phrase, compile_vocabulary
from stt.boost.tree import ROOT, PhraseTree, TreeOptions
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

MODEL = Path(__file__).resolve().parent / "data" / "nemo-boost-tdt"
REFERENCE: dict[str, Any] = json.loads((MODEL / "reference.json").read_text(encoding="utf-8"))
OPTIONS = TreeOptions(REFERENCE["context_score"], REFERENCE["depth_scaling"], REFERENCE["unk_score"])


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(ModelFiles.locate(MODEL, "fp32"), RuntimeOptions(device="cpu", cache_optimized=False))


@pytest.fixture(scope="module")
def audio() -> dict[str, Any]:
    return {clip["file"]: load_audio(MODEL / "clips" / clip["file"]) for clip in REFERENCE["clips"]}


def test_phrases_tokenise_as_nemo_does(recognizer: Recognizer) -> None:
    tokenizer = recognizer.phrase_tokenizer()
    assert tokenizer.method == "rebuilt BPE"  # the folder has vocab.txt only, as the published ones do
    for name, entry in REFERENCE["lists"].items():
        assert [tokenizer.encode(p) for p in entry["phrases"]] == entry["token_ids"], name


@pytest.mark.parametrize("name", list(REFERENCE["lists"]))
def test_boosted_tokens_equal_nemos_on_every_clip_and_strength(
    recognizer: Recognizer, audio: dict[str, Any], name: str
) -> None:
    phrases = [Phrase(p) for p in REFERENCE["lists"][name]["phrases"]]
    changed = 0
    try:
        for alpha in REFERENCE["alphas"]:
            compiled = compile_vocabulary(phrases, recognizer.phrase_tokenizer().encode, alpha, OPTIONS)
            recognizer.boost = compiled.boost
            for clip in REFERENCE["clips"]:
                expected = clip["boosted"][name][f"{float(alpha)}"]
                transcript = recognizer.transcribe(audio[clip["file"]])
                assert transcript.token_ids == expected["ids"], (name, alpha, clip["file"])
                assert [round(t / 0.08) for t in transcript.token_starts] == expected["frames"]
                changed += expected["ids"] != clip["unboosted"]["ids"]
    finally:
        recognizer.boost = None
    # Boosting changes most clips, so equal tokens are a strict test.
    assert changed >= len(REFERENCE["alphas"]) * len(REFERENCE["clips"]) * 3 // 4


def test_unboosted_tokens_equal_nemos(recognizer: Recognizer, audio: dict[str, Any]) -> None:
    for clip in REFERENCE["clips"]:
        assert recognizer.transcribe(audio[clip["file"]]).token_ids == clip["unboosted"]["ids"]


def path_to(tree: PhraseTree, path: list[int]) -> int:
    state = ROOT
    for token in path:
        tokens, nodes = tree.children(state)
        state = int(nodes[tokens.tolist().index(token)])
    return state


def test_the_tree_equals_nemos() -> None:
    reference = REFERENCE["tree"]
    tree = PhraseTree(reference["token_ids"], OPTIONS)
    assert len(tree) == len(reference["nodes"]) + 1  # NeMo lists every node but the root
    for node in reference["nodes"]:
        state = path_to(tree, node["path"])
        assert tree.token_score[state] == pytest.approx(node["token_score"], abs=1e-6)
        assert tree.node_score[state] == pytest.approx(node["node_score"], abs=1e-5)
        assert bool(tree.is_end[state]) == node["is_end"]
        assert tree.fail[state] == path_to(tree, node["fail"])
        assert tree.backoff[state] == pytest.approx(node["backoff"], abs=1e-5)
    for entry in reference["advance"]:
        arcs = tree.arcs(path_to(tree, entry["state"]))
        assert arcs.default == pytest.approx(entry["default"], abs=1e-5)
        ours = {int(t): (float(s), int(n)) for t, s, n in zip(arcs.tokens, arcs.scores, arcs.targets, strict=True)}
        for token, (score, target) in entry["arcs"].items():
            found = ours.get(int(token), (arcs.default, ROOT))
            assert found[0] == pytest.approx(score, abs=1e-5), (entry["state"], token)
            assert found[1] == path_to(tree, target), (entry["state"], token)


def test_the_tree_state_carries_across_chunks(recognizer: Recognizer, audio: dict[str, Any]) -> None:
    """Decoding in pieces (as streaming does, the carry holding the LSTM and tree states) gives the tokens of one
    pass over the same encoder output."""
    phrases = [Phrase(p) for p in REFERENCE["lists"]["mixed"]["phrases"]]
    compiled = compile_vocabulary(phrases, recognizer.phrase_tokenizer().encode, 6.0, OPTIONS)
    recognizer.boost = compiled.boost
    try:
        for samples in audio.values():
            encoded, frames = recognizer.encode(samples)
            whole, _ = recognizer.decode_range(encoded, 0, frames, None)
            for cut in (frames // 3, frames // 2, 2 * frames // 3):
                first, carry = recognizer.decode_range(encoded, 0, cut, None)
                second, _ = recognizer.decode_range(encoded, cut, frames, carry)
                assert first.ids + second.ids == whole.ids
    finally:
        recognizer.boost = None
