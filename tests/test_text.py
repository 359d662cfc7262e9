"""Vocabulary loading, detokenisation, timestamps and words."""

from __future__ import annotations

from pathlib import Path

import pytest

from stt.errors import ModelFileError
from stt.results import Word
from stt.text import TokenTrack, render, timed_tokens
from stt.vocab import Vocabulary, punctuation_marks

PIECES = [
    "<unk>",
    "<|nospeech|>",
    "<pad>",
    "▁He",
    "▁said",
    '▁"',
    "hi",
    '"',
    ".",
    ",",
    "?",
    "▁caf",
    "<0xC3>",
    "<0xA9>",
    "▁ok",
    "▁",
    "5",
    "<blk>",
]


@pytest.fixture
def vocab(tmp_path: Path) -> Vocabulary:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{p} {i}\n" for i, p in enumerate(PIECES)), encoding="utf-8")
    return Vocabulary.load(path)


def ids(*pieces: str) -> list[int]:
    return [PIECES.index(p) for p in pieces]


def text_of(vocab: Vocabulary, pieces: list[str], frames: list[int] | None = None) -> tuple[str, list[Word]]:
    token_ids = [vocab.pieces.index(p) for p in pieces]
    frames = frames or list(range(len(token_ids)))
    track = TokenTrack(token_ids, frames, [1] * len(token_ids), [0.5] * len(token_ids))
    rendered = render(vocab, timed_tokens(vocab, track, 0.08))
    return rendered.text, rendered.words


def test_blank_is_last_and_specials_hidden(vocab: Vocabulary) -> None:
    assert vocab.blank_id == len(PIECES) - 1
    assert vocab.is_hidden(0) and vocab.is_hidden(1) and vocab.is_hidden(2)
    assert not vocab.is_hidden(3)


def test_quotes_keep_their_space_and_punctuation_attaches(vocab: Vocabulary) -> None:
    text, _ = text_of(vocab, ["▁He", "▁said", '▁"', "hi", '"', "."])
    assert text == 'He said "hi".'


def test_no_space_before_comma_or_question_mark(vocab: Vocabulary) -> None:
    text, _ = text_of(vocab, ["▁ok", ",", "▁ok", "?"])
    assert text == "ok, ok?"


def test_byte_fallback_decodes_utf8(vocab: Vocabulary) -> None:
    text, words = text_of(vocab, ["▁caf", "<0xC3>", "<0xA9>", "▁ok"])
    assert text == "café ok"
    assert [w.text for w in words] == ["café", "ok"]


def test_special_tokens_never_reach_text(vocab: Vocabulary) -> None:
    text, _ = text_of(vocab, ["<|nospeech|>", "▁ok", "<pad>", "<unk>", "▁ok"])
    assert text == "ok ok"


def test_lone_word_mark_starts_a_word(vocab: Vocabulary) -> None:
    text, _ = text_of(vocab, ["▁ok", "▁", "5"])
    assert text == "ok 5"


def test_timestamps_and_punctuation_snap(vocab: Vocabulary) -> None:
    track = TokenTrack(ids("▁He", "▁said", "."), [2, 5, 9], [3, 2, 1], [0.9, 0.6, 0.3])
    tokens = timed_tokens(vocab, track, 0.08, offset=10.0)
    assert tokens[0].start == pytest.approx(10.16) and tokens[0].end == pytest.approx(10.40)
    assert tokens[1].start == pytest.approx(10.40) and tokens[1].end == pytest.approx(10.56)
    # The full stop was predicted late (frame 9) but belongs at the end of "said".
    assert tokens[2].start == pytest.approx(tokens[1].end) and tokens[2].duration == 0
    words = render(vocab, tokens).words
    assert [(w.text, round(w.start, 2), round(w.end, 2)) for w in words] == [
        ("He", 10.16, 10.4),
        ("said.", 10.4, 10.56),
    ]
    assert words[1].confidence == pytest.approx(0.45)


@pytest.mark.parametrize(
    "content",
    ["", "a 0\nb 2\n<blk> 3\n", "a 0\n<blk> 1\nb 2\n", "a zero\n", "just-one-field\n"],
)
def test_malformed_vocab_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"vocab\.txt"):
        Vocabulary.load(path)


def vocabulary(tmp_path: Path, pieces: list[str]) -> Vocabulary:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{p} {i}\n" for i, p in enumerate([*pieces, "<blk>"])), encoding="utf-8")
    return Vocabulary.load(path)


def test_marks_come_from_pieces_that_do_not_start_a_word() -> None:
    pieces = ("<unk>", "<0x2D>", "[x.]", "##!", "▁(", "▁-", "--", "a,", "b", "’s", "▁", "<blk>")
    assert punctuation_marks(pieces) == {"-", ",", "’"}


def test_a_mark_only_in_word_start_pieces_keeps_its_space(tmp_path: Path) -> None:
    vocab = vocabulary(tmp_path, ["<unk>", "▁as", "▁-", "▁x"])
    assert vocab.punctuation == frozenset()
    assert text_of(vocab, ["▁as", "▁-", "▁x"])[0] == "as - x"


def test_a_mark_in_a_word_piece_loses_one_space(tmp_path: Path) -> None:
    vocab = vocabulary(tmp_path, ["<unk>", "▁as", "▁-", "--", "▁x", "▁"])
    text, words = text_of(vocab, ["▁as", "▁-", "--", "--", "▁x"])
    assert text == "as----- x"
    assert [w.text for w in words] == ["as-----", "x"]
    assert words[0].start == 0 and words[0].end == pytest.approx(0.08)  # marks snap to the word before them
    # Two spaces before a mark lose one, as NeMo's one-character pattern does.
    assert text_of(vocab, ["▁as", "▁", "▁-", "▁x"])[0] == "as - x"


def test_opening_marks_of_word_start_pieces_keep_their_space(tmp_path: Path) -> None:
    vocab = vocabulary(tmp_path, ["<unk>", "▁callback", "▁(", "(", "1", ")", '▁"', '"', "hi", "▁", "▁f"])
    assert {"(", ")", '"'} <= vocab.punctuation
    assert text_of(vocab, ["▁callback", "▁(", "1", ")"])[0] == "callback (1)"
    assert text_of(vocab, ["▁callback", "(", "1", ")"])[0] == "callback(1)"
    assert text_of(vocab, ["▁f", '▁"', "hi", '"'])[0] == 'f "hi"'
    # A lone word mark is a piece of its own: the space is not the opening piece's, so it goes.
    assert text_of(vocab, ["▁f", "▁", "("])[0] == "f("
    # NeMo's rule without the exception.
    token_ids = [vocab.pieces.index(p) for p in ["▁callback", "▁(", "1"]]
    track = TokenTrack(token_ids, [0, 1, 2], [1, 1, 1], [0.5, 0.5, 0.5])
    plain = render(vocab, timed_tokens(vocab, track, 0.08), keep_space_before_opening=False)
    assert plain.text == "callback(1"


def test_words_and_spans_follow_the_text(tmp_path: Path) -> None:
    vocab = vocabulary(tmp_path, ["<unk>", "▁a", "▁b", ",", "▁c", "▁"])
    token_ids = [vocab.pieces.index(p) for p in ["▁a", "▁", "▁b", ",", "▁c"]]
    track = TokenTrack(token_ids, [0, 1, 2, 3, 4], [1] * 5, [0.2, 0.4, 0.6, 0.8, 1.0])
    rendered = render(vocab, timed_tokens(vocab, track, 0.08))
    assert rendered.text == "a  b, c"  # NeMo keeps the double space a lone word mark makes
    assert [rendered.text[a:b] for a, b in rendered.spans] == [w.text for w in rendered.words] == ["a", "b,", "c"]
    assert rendered.stable_chars == rendered.text.index(",") + 1
    assert rendered.words[1].confidence == pytest.approx(0.7)
