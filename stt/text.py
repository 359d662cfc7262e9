"""From token ids to text, timed tokens and words."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stt.results import Token, Word
from stt.vocab import Vocabulary

_NON_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class TokenTrack:
    """Decoder output for one input: token ids with frame, duration (frames) and probability."""

    ids: Sequence[int]
    frames: Sequence[int]
    durations: Sequence[int]
    probabilities: Sequence[float]


def _is_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(unicodedata.category(ch).startswith("P") for ch in stripped)


def timed_tokens(vocab: Vocabulary, track: TokenTrack, frame_seconds: float, offset: float = 0.0) -> list[Token]:
    """Visible tokens with times in seconds; punctuation snaps to the previous token's end."""
    tokens: list[Token] = []
    for token_id, frame, duration, prob in zip(
        track.ids, track.frames, track.durations, track.probabilities, strict=True
    ):
        if vocab.is_hidden(token_id):
            continue
        text = vocab.piece_bytes(token_id).decode("utf-8", errors="replace")
        start = offset + frame * frame_seconds
        length = duration * frame_seconds
        if tokens and _is_punctuation(text):
            start, length = tokens[-1].end, 0.0
        tokens.append(Token(token_id, text, start, length, prob))
    return tokens


OPENING = frozenset('([{"«“‘¿¡„‚')
"""Opening marks: a word-start piece that begins with one keeps the space before it."""


@dataclass(frozen=True)
class Rendered:
    """The text of some tokens, its words, and where each word stands in the text."""

    text: str
    words: list[Word]
    spans: list[tuple[int, int]]
    """Character range [start, end) of each word in `text`."""

    @property
    def stable_chars(self) -> int:
        """Characters up to the end of the word before the last: what a later token cannot change."""
        return self.spans[-2][1] if len(self.spans) > 1 else 0


def render(vocab: Vocabulary, tokens: Sequence[Token], *, keep_space_before_opening: bool = True) -> Rendered:
    """The text NeMo prints for `tokens`, and its words.

    SentencePiece's decode (word marks become spaces, byte pieces join into UTF-8, the first leading space
    goes), then NeMo's rule: one whitespace character before a mark of `vocab.punctuation` is removed. The
    one exception, on by default: a word-start piece whose first visible character is an opening mark keeps
    its space (`He said "hi"`, `call me (maybe)`). Words are the runs of the text between whitespace, timed
    by the tokens whose characters they hold.
    """
    chars: list[str] = []
    owners: list[int] = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for index, token in enumerate(tokens):
        for char in decoder.decode(vocab.piece_bytes(token.id)):
            chars.append(char)
            owners.append(index)
    if chars and chars[0].isspace():
        del chars[0], owners[0]
    keep = [True] * len(chars)
    for i in range(len(chars) - 1):
        if chars[i].isspace() and chars[i + 1] in vocab.punctuation:
            starts_piece = owners[i] == owners[i + 1] and vocab.starts_word(tokens[owners[i]].id)
            keep[i] = keep_space_before_opening and starts_piece and chars[i + 1] in OPENING
    kept = [(c, o) for c, o, k in zip(chars, owners, keep, strict=True) if k]
    text = "".join(c for c, _ in kept)
    words: list[Word] = []
    spans: list[tuple[int, int]] = []
    for match in _NON_SPACE.finditer(text):
        held = sorted({kept[i][1] for i in range(match.start(), match.end())})
        group = [tokens[i] for i in held]
        confidence = sum(t.probability for t in group) / len(group)
        words.append(Word(match.group(), group[0].start, max(t.end for t in group), confidence))
        spans.append((match.start(), match.end()))
    return Rendered(text, words, spans)


def join_texts(parts: Iterable[str]) -> str:
    """Texts of consecutive segments, one space between them."""
    return " ".join(part for part in parts if part)
