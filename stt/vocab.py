"""The model's token vocabulary (`vocab.txt`)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from stt.errors import ModelFileError, ModelNotFoundError

WORD_MARK = "\u2581"
BLANK_PIECE = "<blk>"
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_HIDDEN_PIECES = frozenset({"<unk>", "<pad>", "<s>", "</s>", BLANK_PIECE})


@dataclass(frozen=True)
class Vocabulary:
    """SentencePiece pieces in id order; the blank is `<blk>`, the last id."""

    pieces: tuple[str, ...]
    blank_id: int
    punctuation: frozenset[str] = field(default=frozenset())
    """Marks that lose the space before them, as NeMo finds them in the vocabulary (`punctuation_marks`)."""

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read `vocab.txt` ("<piece> <id>" per line), checking ids run 0..N-1 with `<blk>` last."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"{path} is missing") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path} cannot be read ({exc})") from exc
        by_id: dict[int, str] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            piece, sep, raw_id = line.rpartition(" ")
            if not sep or not piece or not raw_id.isdigit():
                raise ModelFileError(f"{path} line {number} is not '<token> <id>': {line!r}")
            by_id[int(raw_id)] = piece
        if not by_id:
            raise ModelFileError(f"{path} holds no tokens")
        if sorted(by_id) != list(range(len(by_id))):
            raise ModelFileError(f"{path}: token ids are not the contiguous range 0..{len(by_id) - 1}")
        pieces = tuple(by_id[i] for i in range(len(by_id)))
        if pieces[-1] != BLANK_PIECE:
            raise ModelFileError(f"{path}: the last token must be {BLANK_PIECE}, found {pieces[-1]!r}")
        return cls(pieces, len(pieces) - 1, punctuation_marks(pieces))

    def __len__(self) -> int:
        return len(self.pieces)

    def is_hidden(self, token_id: int) -> bool:
        """Whether a token never reaches the text (control tokens, `<unk>`, `<pad>`)."""
        piece = self.pieces[token_id]
        return piece in _HIDDEN_PIECES or (piece.startswith("<|") and piece.endswith("|>"))

    def piece_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes a token stands for, with the word mark as a space."""
        piece = self.pieces[token_id]
        match = _BYTE_PIECE.fullmatch(piece)
        if match:
            return bytes([int(match.group(1), 16)])
        return piece.replace(WORD_MARK, " ").encode("utf-8")

    def starts_word(self, token_id: int) -> bool:
        """Whether a token begins a new word."""
        return self.pieces[token_id].startswith(WORD_MARK)


_SPECIAL_PIECE = re.compile(r"^\[.*\]$|^<.*>$|^##|^" + WORD_MARK + r"|^\s*$")


def punctuation_marks(pieces: tuple[str, ...]) -> frozenset[str]:
    """Every punctuation character (Unicode category P) of a piece that is not special: not `[…]`, `<…>`,
    `##…`, a word-start piece or blank. NeMo removes one space before each of these in its text."""
    return frozenset(
        char
        for piece in pieces
        if not _SPECIAL_PIECE.match(piece)
        for char in piece
        if unicodedata.category(char).startswith("P")
    )
