"""The phrase tokenizer against SentencePiece itself: BPE models rebuilt from vocab.txt give the trained models' ids."""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pytest

spm = pytest.importorskip("sentencepiece")

from stt.boost.tokenizer import (  # noqa: E402  (after the skip: sentencepiece is needed)
    BYTE,
    CONTROL,
    NORMAL,
    UNKNOWN,
    USER_DEFINED,
    LongestMatch,
    PhraseTokenizer,
    bpe_model_proto,
    bpe_problem,
    piece_types,
)
from stt.vocab import Vocabulary  # noqa: E402

DATA = Path(__file__).parent / "data"
NEMO_FOLDER = DATA / "nemo-boost-tdt"
NEMO_MODEL = DATA / "nemo-boost-tdt-tokenizer.model"

_NAMES = [
    "Anna", "Okonkwo", "Nakamura", "Siobhan", "Nguyen", "Renée", "François", "Jürgen", "Mónica", "Björk", "Zoë",
    "Chloé", "Raúl", "Núñez", "Brontë", "Öztürk", "Adebayo", "Kowalczyk", "Tchaikovsky", "Xiomara",
]  # fmt: skip
_PLACES = ["London", "Lagos", "Zürich", "Málaga", "Köln", "Genève", "Bogotá", "Montréal", "Reykjavík", "Oklahoma"]
_WORDS = [
    "the", "meeting", "report", "ticket", "invoice", "flight", "doctor", "kitchen", "coffee", "river", "market",
    "cluster", "database", "browser", "kernel", "compiler", "dictation", "microphone", "release", "update", "please",
    "again", "about", "moved", "called", "wrote", "booked", "deployed", "quickly", "tomorrow", "café", "naïve",
]  # fmt: skip
_TEMPLATES = [
    "{N} {w} the {w} in {P} on Monday.",
    "Call {N} at {d}:{m} about the {w}.",
    "Did {N} really move to {P}?",
    "The {w} costs ${d}.{m}, said {N}.",
    '"{w}," {N} said, "the {w} is {w}."',
    "Dr. {N} {w} {d} {w}s (about {m}% off).",
    "{N}'s {w} -- {w}, {w}; {w}!",
]


def corpus(lines: int = 3000) -> list[str]:
    """Deterministic sentences with names, places, numbers, punctuation and a few accents."""
    rng = random.Random(20250915)
    out = []
    for _ in range(lines):
        fill = {"N": rng.choice(_NAMES), "P": rng.choice(_PLACES), "d": str(rng.randint(1, 999))}
        fill["m"] = f"{rng.randint(0, 59):02d}"
        text = rng.choice(_TEMPLATES)
        while "{w}" in text:
            text = text.replace("{w}", rng.choice(_WORDS), 1)
        out.append(text.format(**fill))
    return out


NEMO_LIKE = {"model_type": "bpe", "character_coverage": 1.0, "bos_id": -1, "eos_id": -1, "hard_vocab_limit": False}
CONFIGS: dict[str, dict[str, Any]] = {
    "bpe-100": {**NEMO_LIKE, "vocab_size": 100, "ascii": True},
    "bpe-500": {**NEMO_LIKE, "vocab_size": 500},
    "bpe-1000": {**NEMO_LIKE, "vocab_size": 1000},
    "bpe-1000-spm-defaults": {"model_type": "bpe", "vocab_size": 1000},
    "bpe-600-byte-fallback": {**NEMO_LIKE, "vocab_size": 600, "byte_fallback": True},
    "bpe-600-specials": {
        **NEMO_LIKE,
        "vocab_size": 600,
        "pad_id": 1,
        "byte_fallback": True,
        "user_defined_symbols": ["<|pnc|>", "<|nopnc|>", "▁«"],
    },
}


def train(vocab_size: int, ascii: bool = False, **options: Any) -> bytes:
    """A SentencePiece model trained on `corpus()` (ASCII letters and punctuation only when `ascii`)."""
    lines = corpus()
    if ascii:
        lines = ["".join(c for c in line if c.isascii() and (c.isalpha() or c in " .,'")) for line in lines]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, minloglevel=3, **options
    )
    return model.getvalue()


def write_folder(folder: Path, model: bytes, with_model: bool = False) -> Vocabulary:
    """A model folder as published: vocab.txt ("<piece> <id>" lines, then <blk>), and tokenizer.model if asked."""
    processor = spm.SentencePieceProcessor(model_proto=model)
    pieces = [processor.id_to_piece(i) for i in range(len(processor))] + ["<blk>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("".join(f"{p} {i}\n" for i, p in enumerate(pieces)), encoding="utf-8")
    if with_model:
        (folder / "tokenizer.model").write_bytes(model)
    return Vocabulary.load(folder / "vocab.txt")


def phrases(count: int = 400) -> list[str]:
    """Hand-picked awkward phrases, then generated ones: names, mixed case, numbers, punctuation, unknown characters."""
    fixed = [
        "Søren", "Łódź", "東京", "Straße", "Zürich", "Dr. Okonkwo", "Okonkwo Adebayo", "ﬁsh ﬁle", "ﬀ", "Ｈｅｌｌｏ",
        "ＡＢＣ １２３", "½ cup", "¼", "x²", "Ⅳ", "№ 5", "™", "…", "e\u0301te\u0301", "Å", "Ω", "  New   York  ",
        "\tTab\tand\nnewline ", "zero\u200bwidth", "no\u00a0break", "ideographic\u3000space", "\u2581mark",
        "soft\u00adhyphen", "«quote»", "¿Qué?", "C++", "e-mail", "3.14159", "$5", "100%", "O'Brien", "rock 'n' roll",
        "PERCH", "perch", "PeRcH", "iPhone", "McDonald", "NASA", "a", "I", ".", "--", "😀", "Ⓐ", "ＴＥＳＴ", "ｶﾀｶﾅ",
        "<unk>", "<s>", "<|pnc|>", "<0x41>", "▁«Bonjour»", "\x07bell", "\ufeffbom",
    ]  # fmt: skip
    rng = random.Random(7)
    odd = "ØøŁłßźŹ東京ﬁﬂ½²ＡｂΩ€£¥–—“”‘’…"
    out = list(fixed)
    while len(out) < count:
        kind = rng.randrange(5)
        if kind == 0:
            out.append(" ".join(rng.choice(_NAMES + _PLACES) for _ in range(rng.randint(1, 3))))
        elif kind == 1:
            word = rng.choice(_WORDS + _NAMES)
            out.append("".join(c.upper() if rng.random() < 0.3 else c for c in word))
        elif kind == 2:
            out.append(f"{rng.randint(0, 99999)} {rng.choice(_WORDS)}{rng.choice('.,;:!?')}")
        elif kind == 3:
            chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-'\"()&/" + odd
            out.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 14))))
        else:
            words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 4))]
            out.append((" " * rng.randint(0, 3)).join(words) + " " * rng.randint(0, 2))
    return out


PHRASES = phrases()


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return {name: train(**options) for name, options in CONFIGS.items()}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rebuilt_bpe_encodes_as_the_trained_model(name: str, models: dict[str, bytes], tmp_path: Path) -> None:
    vocab = write_folder(tmp_path, models[name])
    tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.method == "rebuilt BPE"
    assert tokenizer.warning is None
    original = spm.SentencePieceProcessor(model_proto=models[name])
    expected = [original.encode(phrase) for phrase in PHRASES]
    assert [tokenizer.encode(phrase) for phrase in PHRASES] == expected
    assert len(PHRASES) >= 400
    # Unknown characters were among them: <unk>, or byte pieces with byte fallback.
    assert any(original.is_unknown(i) or original.is_byte(i) for ids in expected for i in ids)


def test_trained_piece_types_and_scores_are_what_the_rebuild_writes(models: dict[str, bytes]) -> None:
    pb = pytest.importorskip("sentencepiece.sentencepiece_model_pb2")
    for name, blob in models.items():
        trained = pb.ModelProto.FromString(blob)
        pieces = [p.piece for p in trained.pieces]
        assert piece_types(pieces) == [p.type for p in trained.pieces], name
        rebuilt = pb.ModelProto.FromString(bpe_model_proto(pieces))
        assert [(p.piece, p.score, p.type) for p in rebuilt.pieces] == [
            (p.piece, p.score, p.type) for p in trained.pieces
        ], name
        assert rebuilt.trainer_spec.model_type == trained.trainer_spec.model_type == pb.TrainerSpec.BPE
        assert rebuilt.trainer_spec.byte_fallback == trained.trainer_spec.byte_fallback
        assert rebuilt.normalizer_spec.name == "nmt_nfkc"
        assert rebuilt.normalizer_spec.precompiled_charsmap == trained.normalizer_spec.precompiled_charsmap
        spec = rebuilt.normalizer_spec
        assert spec.add_dummy_prefix and spec.remove_extra_whitespaces and spec.escape_whitespaces


def test_piece_types_by_name_and_position() -> None:
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    pieces = ["<unk>", "<s>", "</s>", "<pad>", "<|pnc|>", "▁«", *byte_pieces, "▁t", "he", "<|late|>", "t", "h"]
    kinds = piece_types(pieces)
    assert kinds[:6] == [UNKNOWN, CONTROL, CONTROL, CONTROL, USER_DEFINED, USER_DEFINED]
    assert set(kinds[6:262]) == {BYTE}
    # Pieces after the bytes are normal, but "<|…|>" is user-defined wherever it is.
    assert kinds[262:] == [NORMAL, NORMAL, USER_DEFINED, NORMAL, NORMAL]
    # Without all 256 bytes, "<0x41>" is an ordinary piece.
    assert piece_types(["<unk>", "<0x41>", "a"]) == [UNKNOWN, NORMAL, NORMAL]


def test_folder_tokenizer_model_is_used(models: dict[str, bytes], tmp_path: Path) -> None:
    blob = models["bpe-500"]
    vocab = write_folder(tmp_path, blob, with_model=True)
    tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.method == "sentencepiece model"
    assert tokenizer.warning is None
    original = spm.SentencePieceProcessor(model_proto=blob)
    assert [tokenizer.encode(p) for p in PHRASES[:100]] == [original.encode(p) for p in PHRASES[:100]]


def test_a_unigram_tokenizer_model_is_used_as_it_is(tmp_path: Path) -> None:
    blob = train(500, model_type="unigram", character_coverage=1.0)
    vocab = write_folder(tmp_path, blob, with_model=True)
    tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.method == "sentencepiece model"
    original = spm.SentencePieceProcessor(model_proto=blob)
    assert [tokenizer.encode(p) for p in PHRASES] == [original.encode(p) for p in PHRASES]


def test_a_tokenizer_model_of_another_vocabulary_is_not_used(
    models: dict[str, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vocab = write_folder(tmp_path, models["bpe-500"])
    (tmp_path / "tokenizer.model").write_bytes(models["bpe-1000"])
    with caplog.at_level(logging.INFO, logger="perch.boost"):
        tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.method == "rebuilt BPE"
    assert tokenizer.warning is not None
    assert str(tmp_path) in tokenizer.warning and "tokenizer.model is not used" in tokenizer.warning
    assert [r.getMessage() for r in caplog.records] == [tokenizer.warning]
    original = spm.SentencePieceProcessor(model_proto=models["bpe-500"])
    assert [tokenizer.encode(p) for p in PHRASES[:100]] == [original.encode(p) for p in PHRASES[:100]]


def test_a_unigram_vocabulary_falls_back_to_longest_match(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blob = train(500, model_type="unigram", character_coverage=1.0)
    vocab = write_folder(tmp_path, blob)
    assert bpe_problem(vocab.pieces[: vocab.blank_id]) is not None
    with caplog.at_level(logging.INFO, logger="perch.boost"):
        tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
        for phrase in PHRASES:
            tokenizer.encode(phrase)
    assert tokenizer.method == "longest match"
    assert tokenizer.warning is not None
    assert str(tmp_path) in tokenizer.warning and "longest match" in tokenizer.warning
    assert "\n" not in tokenizer.warning
    assert [r.getMessage() for r in caplog.records] == [tokenizer.warning]  # said once, not per phrase
    # The pieces spell the normalised phrase (dummy prefix, ▁ for spaces); unknown runs are one <unk>.
    original = spm.SentencePieceProcessor(model_proto=blob)
    for phrase in ["Dr. Okonkwo", "Zürich  café", "ﬁsh"]:
        assert "".join(vocab.pieces[i] for i in tokenizer.encode(phrase)) == original.normalize(phrase)
    assert 0 in tokenizer.encode("Łódź")
    assert tokenizer.encode("東京").count(0) == 1


def test_longest_match_by_hand() -> None:
    pieces = ["<unk>", "▁a", "ab", "▁", "a", "b", "c", "abc"]
    match = LongestMatch(pieces)
    # "▁abc": "▁a" (longest at 0), then "bc" is not a piece: "b", "c".
    assert match.encode("abc") == [1, 5, 6]
    assert match.encode("b  abc") == [3, 5, 1, 5, 6]
    assert match.encode("xyz b") == [3, 0, 3, 5]  # one <unk> for the run "xyz"
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    with_bytes = LongestMatch(["<unk>", *byte_pieces, "▁", "a"])
    assert with_bytes.encode("aé") == [257, 258, 1 + 0xC3, 1 + 0xA9]


@pytest.mark.parametrize("name", ["bpe-500", "bpe-600-byte-fallback"])
def test_bpe_vocabularies_have_the_bpe_shape(name: str, models: dict[str, bytes]) -> None:
    processor = spm.SentencePieceProcessor(model_proto=models[name])
    pieces = [processor.id_to_piece(i) for i in range(len(processor))]
    assert bpe_problem(pieces) is None
    # The trainer puts the single characters after every merge.
    normal = [p for p, kind in zip(pieces, piece_types(pieces), strict=True) if kind == NORMAL]
    first_char = next(i for i, p in enumerate(normal) if len(p) == 1)
    assert all(len(p) == 1 for p in normal[first_char:])


def test_shape_problems_are_named() -> None:
    assert bpe_problem(["<unk>", "▁t", "▁", "t"]) is None
    assert bpe_problem(["<unk>", "▁th", "▁t", "▁", "t", "h"]) == "piece 1 '▁th' is not two earlier pieces joined"
    assert bpe_problem(["▁", "a"]) == "no <unk> piece"
    assert bpe_problem(["<unk>", "a", "a"]) == "a piece appears twice"
    assert bpe_problem(["<unk>", "<0x41>", "<0x42>", "a"]) is not None  # 'a', not bytes: "<0x41>" is text
    assert bpe_problem(["<unk>", "<s>", "</s>"]) == "no text pieces"


@pytest.mark.parametrize("name", ["bpe-500", "bpe-600-byte-fallback"])
def test_empty_and_blank_phrases_give_nothing(name: str, models: dict[str, bytes], tmp_path: Path) -> None:
    vocab = write_folder(tmp_path / "rebuilt", models[name])
    rebuilt = PhraseTokenizer.for_model(tmp_path / "rebuilt", vocab)
    write_folder(tmp_path / "own", models[name], with_model=True)
    own = PhraseTokenizer.for_model(tmp_path / "own", vocab)
    longest = PhraseTokenizer("longest match", LongestMatch(vocab.pieces).encode)
    for tokenizer in (rebuilt, own, longest):
        for phrase in ["", " ", "   ", "\t\n", "\u3000", "\u200b"]:
            assert tokenizer.encode(phrase) == [], (tokenizer.method, phrase)


def test_phrases_are_case_sensitive(models: dict[str, bytes], tmp_path: Path) -> None:
    vocab = write_folder(tmp_path, models["bpe-1000"])
    tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.encode("Okonkwo") != tokenizer.encode("okonkwo")
    assert tokenizer.encode("Okonkwo")[0] != 0
    assert vocab.pieces[tokenizer.encode("Okonkwo")[0]].startswith("▁")


def _nemo_reference() -> dict[str, Any]:
    needed = (NEMO_MODEL, NEMO_FOLDER / "vocab.txt", NEMO_FOLDER / "reference.json")
    if not all(path.is_file() for path in needed):
        pytest.skip("the NeMo boosting reference (tests/data/nemo-boost-tdt) has not been generated")
    reference: dict[str, Any] = json.loads((NEMO_FOLDER / "reference.json").read_text(encoding="utf-8"))
    return reference


def test_nemo_trained_tokenizer_is_rebuilt_exactly(tmp_path: Path) -> None:
    reference = _nemo_reference()
    shutil.copy(NEMO_FOLDER / "vocab.txt", tmp_path / "vocab.txt")
    vocab = Vocabulary.load(tmp_path / "vocab.txt")
    tokenizer = PhraseTokenizer.for_model(tmp_path, vocab)
    assert tokenizer.method == "rebuilt BPE"
    assert tokenizer.warning is None
    nemo = spm.SentencePieceProcessor(model_file=str(NEMO_MODEL))
    assert [nemo.id_to_piece(i) for i in range(len(nemo))] == list(vocab.pieces[: vocab.blank_id])
    # NeMo trains with remove_extra_whitespaces=false, so it keeps runs of spaces that SentencePiece's default
    # removes. Perch collapses whitespace in every phrase before encoding (stt.boost.phrases), where both agree.
    # A literal word mark (U+2581) and invisible format characters (a BOM, a zero-width space) become spaces only
    # inside the tokenizer, where such a model keeps them; phrases a person types have neither.
    phrases = [
        " ".join(p.split())
        for p in PHRASES
        if "\u2581" not in p and not any(unicodedata.category(c) == "Cf" for c in p)
    ]
    assert [tokenizer.encode(p) for p in phrases] == [nemo.encode(p) for p in phrases]
    lists = reference["lists"]
    assert lists
    for name, entry in lists.items():
        assert len(entry["phrases"]) == len(entry["token_ids"]), name
        for phrase, token_ids in zip(entry["phrases"], entry["token_ids"], strict=True):
            assert tokenizer.encode(phrase) == token_ids, (name, phrase)
