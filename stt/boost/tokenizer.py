"""Vocabulary phrases split into the model's token ids as NeMo's `tokenizer.text_to_ids` splits them.

The published Parakeet folders hold `vocab.txt` but no `tokenizer.model`. A SentencePiece BPE model is described
by its pieces in id order (the trainer scores piece n of the merges -n, so the order is the merge priority), so one
is rebuilt from `vocab.txt` and run by SentencePiece itself, with the library's own `nmt_nfkc` normaliser, the
default of SentencePiece and of NeMo's tokenizer training.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import sentencepiece as spm

from stt.vocab import Vocabulary

log = logging.getLogger("perch.boost")

Method = Literal["sentencepiece model", "rebuilt BPE", "longest match"]
TOKENIZER_FILE = "tokenizer.model"
UNK_PIECE = "<unk>"

# Piece types and the BPE model type, as sentencepiece_model.proto numbers them.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
_BPE = 2
_CONTROL_PIECES = frozenset({"<s>", "</s>", "<pad>"})
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")


class PhraseTokenizer:
    """Splits a phrase into the model's token ids. `method` says how: "sentencepiece model" (the folder's own
    `tokenizer.model`), "rebuilt BPE" (exact for a SentencePiece BPE vocabulary) or "longest match" (approximate;
    `warning` says why)."""

    def __init__(self, method: Method, encode: Callable[[str], list[int]], warning: str | None = None) -> None:
        self.method: Method = method
        self.warning = warning
        self._encode = encode

    @classmethod
    def for_model(cls, model_dir: Path, vocab: Vocabulary) -> PhraseTokenizer:
        """The folder's `tokenizer.model` if it matches `vocab`, else a BPE model rebuilt from `vocab` if it is
        BPE-shaped, else longest match; logs one warning when it is not the folder's own model."""
        pieces = vocab.pieces[: vocab.blank_id]
        notes = []
        model_file = model_dir / TOKENIZER_FILE
        if model_file.is_file():
            processor, problem = _load_model_file(model_file, pieces)
            if processor is not None:
                return cls("sentencepiece model", _encoder(processor))
            notes.append(f"{TOKENIZER_FILE} is not used ({problem})")
        shape = bpe_problem(pieces)
        if shape is None:
            try:
                processor = spm.SentencePieceProcessor(model_proto=bpe_model_proto(pieces))
            except RuntimeError as exc:
                shape = f"SentencePiece refuses the model rebuilt from it: {exc}"
            else:
                return cls("rebuilt BPE", _encoder(processor), _warn(model_dir, notes))
        notes.append(
            f"its vocabulary is not SentencePiece BPE ({shape}): vocabulary phrases are split by longest match, "
            "which can differ from the model's own tokens"
        )
        return cls("longest match", LongestMatch(pieces).encode, _warn(model_dir, notes))

    def encode(self, phrase: str) -> list[int]:
        """The phrase's token ids (case-sensitive; [] when it is empty or only whitespace)."""
        return self._encode(phrase)


def _warn(model_dir: Path, notes: list[str]) -> str | None:
    """Log the notes as one warning naming the folder, and return it (None when there are none)."""
    if not notes:
        return None
    warning = f"phrase tokenizer for {model_dir}: {'; '.join(notes)}"
    log.info("%s", warning)
    return warning


def _encoder(processor: spm.SentencePieceProcessor) -> Callable[[str], list[int]]:
    return lambda phrase: [int(token) for token in processor.encode(phrase)]


def _load_model_file(path: Path, pieces: Sequence[str]) -> tuple[spm.SentencePieceProcessor | None, str]:
    """The SentencePiece model at `path` if its pieces are `pieces`, else None and why not."""
    try:
        processor = spm.SentencePieceProcessor(model_proto=path.read_bytes())
    except (OSError, RuntimeError) as exc:
        return None, f"it cannot be loaded: {exc}"
    if processor.get_piece_size() != len(pieces):
        return None, f"it has {processor.get_piece_size()} pieces, vocab.txt {len(pieces)} before <blk>"
    for token_id, piece in enumerate(pieces):
        if processor.id_to_piece(token_id) != piece:
            return None, f"its piece {token_id} is {processor.id_to_piece(token_id)!r}, vocab.txt's {piece!r}"
    return processor, ""


def piece_types(pieces: Sequence[str]) -> list[int]:
    """SentencePiece types: `<unk>`; control `<s>` `</s>` `<pad>`; byte `<0xNN>` (when all 256 are there);
    user-defined `<|…|>`, and any other piece ahead of the byte pieces (the trainer puts user-defined symbols, then
    the bytes, before the merges); normal for the rest."""
    has_bytes = sum(1 for piece in pieces if _BYTE_PIECE.fullmatch(piece)) == 256

    def kind(piece: str) -> int:
        if piece == UNK_PIECE:
            return UNKNOWN
        if piece in _CONTROL_PIECES:
            return CONTROL
        if len(piece) > 4 and piece.startswith("<|") and piece.endswith("|>"):
            return USER_DEFINED
        if has_bytes and _BYTE_PIECE.fullmatch(piece):
            return BYTE
        return NORMAL

    types = [kind(piece) for piece in pieces]
    head = max((i for i, kind in enumerate(types) if kind == BYTE), default=0)
    return [USER_DEFINED if kind == NORMAL and i < head else kind for i, kind in enumerate(types)]


def bpe_problem(pieces: Sequence[str]) -> str | None:
    """Why `pieces` (in id order) cannot be a SentencePiece BPE vocabulary, or None if they can.

    The BPE trainer appends each merge after the two symbols it joins, and the single characters last, so every
    normal piece of two or more characters is two pieces joined, each a single character or an earlier piece.
    """
    if UNK_PIECE not in pieces:
        return f"no {UNK_PIECE} piece"
    if len(set(pieces)) != len(pieces):
        return "a piece appears twice"
    byte_pieces = sum(1 for piece in pieces if _BYTE_PIECE.fullmatch(piece))
    if byte_pieces not in (0, 256):
        return f"{byte_pieces} of the 256 byte pieces"
    types = piece_types(pieces)
    if NORMAL not in types:
        return "no text pieces"
    known = {piece for piece, kind in zip(pieces, types, strict=True) if kind == NORMAL and len(piece) == 1}
    for token_id, (piece, kind) in enumerate(zip(pieces, types, strict=True)):
        if kind != NORMAL or len(piece) == 1:
            continue
        if not any(piece[:cut] in known and piece[cut:] in known for cut in range(1, len(piece))):
            return f"piece {token_id} {piece!r} is not two earlier pieces joined"
        known.add(piece)
    return None


def bpe_model_proto(pieces: Sequence[str]) -> bytes:
    """A serialized SentencePiece BPE `ModelProto` of these pieces in id order.

    Fields: pieces (1; each piece 1, score 2, type 3; normal piece n scores -n, the others 0, as the trainer writes
    them), trainer_spec (2; model_type 3 = BPE, vocab_size 4, byte_fallback 35) and normalizer_spec (3;
    SentencePiece's own `nmt_nfkc`, with the dummy prefix, whitespace clean-up and ▁ escaping on).
    """
    types = piece_types(pieces)
    proto = bytearray()
    normal = 0
    for piece, kind in zip(pieces, types, strict=True):
        score = 0.0
        if kind == NORMAL:
            score = -float(normal)
            normal += 1
        proto += _message(1, _message(1, piece.encode()) + _float(2, score) + _number(3, kind))
    proto += _message(2, _number(3, _BPE) + _number(4, len(pieces)) + _number(35, int(BYTE in types)))
    proto += _message(3, _nmt_nfkc_spec())
    return bytes(proto)


@functools.cache
def _default_model() -> bytes:
    """A throwaway one-character model from SentencePiece's trainer, for its default `nmt_nfkc` normaliser: NFKC,
    control characters dropped, other spaces made plain (not every sentencepiece 0.2 release hands it out
    otherwise)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a"]),
        model_writer=model,
        model_type="char",
        vocab_size=8,
        hard_vocab_limit=False,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=3,
    )
    return model.getvalue()


@functools.cache
def _normalizer() -> spm.SentencePieceProcessor:
    """Normalises as SentencePiece models do by default: `nmt_nfkc`, a ▁ in front, leading, trailing and repeated
    spaces dropped, spaces written as ▁."""
    return spm.SentencePieceProcessor(model_proto=_default_model())


def _nmt_nfkc_spec() -> bytes:
    """The serialized `NormalizerSpec` of `_default_model()` (its field 3), with add_dummy_prefix (3),
    remove_extra_whitespaces (4) and escape_whitespaces (5) set explicitly (a field's last value wins)."""
    data = _default_model()
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        wire = key & 7
        if wire == 0:
            _, at = _read_varint(data, at)
            continue
        if wire != 2:
            at += 4 if wire == 5 else 8
            continue
        size, at = _read_varint(data, at)
        if key >> 3 == 3:
            return data[at : at + size] + _number(3, 1) + _number(4, 1) + _number(5, 1)
        at += size
    raise RuntimeError("SentencePiece's trainer wrote a model without a normalizer spec")


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        shift += 7
        at += 1
        if byte < 0x80:
            return value, at


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _float(field: int, value: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", value)


def _message(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


class LongestMatch:
    """Greedy longest match over the `nmt_nfkc`-normalised phrase (spaces as ▁, one ▁ in front): at each position
    the longest normal or user-defined piece that is there. A character no piece covers becomes its UTF-8 byte
    pieces when the vocabulary has them, else `<unk>` (one per run, as SentencePiece does). Neither BPE nor unigram
    models choose this way, so the tokens can differ from the model's own."""

    def __init__(self, pieces: Sequence[str]) -> None:
        types = piece_types(pieces)
        self._ids = {piece: i for i, piece in enumerate(pieces) if types[i] in (NORMAL, USER_DEFINED)}
        self._longest = max(map(len, self._ids), default=1)
        self._bytes = {int(piece[3:5], 16): i for i, piece in enumerate(pieces) if types[i] == BYTE}
        self._unk = pieces.index(UNK_PIECE) if UNK_PIECE in pieces else None

    def encode(self, phrase: str) -> list[int]:
        """The phrase's token ids."""
        text: str = _normalizer().normalize(phrase)
        ids: list[int] = []
        at = 0
        unknown_run = False
        while at < len(text):
            size = min(self._longest, len(text) - at)
            while size and text[at : at + size] not in self._ids:
                size -= 1
            if size:
                ids.append(self._ids[text[at : at + size]])
                at += size
                unknown_run = False
                continue
            if self._bytes:
                ids.extend(self._bytes[byte] for byte in text[at].encode())
            elif self._unk is not None and not unknown_run:
                ids.append(self._unk)
            unknown_run = True
            at += 1
        return ids
