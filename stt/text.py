"""From token ids to text, timed tokens and words."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from stt.results import Token, Word
from stt.vocab import Vocabulary

# Punctuation that attaches to the word before it, with no space.
_CLOSING = frozenset(",.?!;:…%)]}»、。，？！：；")
_SPACE_BEFORE_CLOSING = re.compile(r"\s+(?=[" + re.escape("".join(sorted(_CLOSING))) + "])")


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


def _word_from(vocab: Vocabulary, group: list[Token]) -> Word:
    raw = b"".join(vocab.piece_bytes(t.id) for t in group)
    text = _SPACE_BEFORE_CLOSING.sub("", raw.decode("utf-8", errors="replace")).strip()
    confidence = sum(t.probability for t in group) / len(group)
    return Word(text, group[0].start, max(t.end for t in group), confidence)


def words_from_tokens(vocab: Vocabulary, tokens: Sequence[Token]) -> list[Word]:
    """Group tokens into words: a word mark starts a word, closing punctuation joins the one before."""
    groups: list[list[Token]] = []
    for token in tokens:
        opens = vocab.starts_word(token.id)
        piece = vocab.piece_bytes(token.id).decode("utf-8", errors="replace").strip()
        closing = bool(piece) and piece[0] in _CLOSING
        if groups and (not opens or closing):
            groups[-1].append(token)
        else:
            groups.append([token])
    words = [_word_from(vocab, group) for group in groups]
    return [w for w in words if w.text]


def join_words(words: Sequence[Word]) -> str:
    """The transcript text: words separated by single spaces."""
    return " ".join(w.text for w in words)
