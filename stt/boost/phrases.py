"""A person's vocabulary: phrases read from a file or the settings, checked, and compiled into a boost."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stt.boost.tree import Boost, PhraseTree, TreeOptions
from stt.errors import PerchError

MAX_PHRASES = 50_000
"""More phrases than this are refused: the list is meant for names and jargon, not a dictionary."""
DEFAULT_STRENGTH = 3.0
"""α when none is given (chosen by measurement: docs/PERFORMANCE.md, "Vocabulary boosting")."""
STRONGER_CONTEXT_SCORE = 2.0
"""Context score of a phrase marked "stronger" (the others use `TreeOptions.context_score`, 1.0)."""


class VocabularyError(PerchError, ValueError):
    """A vocabulary file or setting that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Phrase:
    """One entry: its text, whether it is boosted harder, and where it came from (for messages)."""

    text: str
    stronger: bool = False
    where: str = ""


@dataclass(frozen=True)
class CompiledVocabulary:
    """The boost for the decoder (None when nothing is boosted), and a warning per phrase left out."""

    boost: Boost | None
    phrases: int
    strength: float
    warnings: list[str] = field(default_factory=list)


def parse_strength(value: str | float) -> float:
    """A boost strength α: a finite number of 0 or more."""
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        alpha = math.nan
    if not math.isfinite(alpha) or alpha < 0:
        raise VocabularyError(f"the boost strength must be a number of 0 or more (0 turns boosting off), got {value!r}")
    return alpha


def read_phrase_file(path: Path) -> list[Phrase]:
    """Phrases of a UTF-8 text file, one per line; blank lines and lines starting with `#` are ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise VocabularyError(f"vocabulary file {path} not found: check the path") from exc
    except OSError as exc:
        raise VocabularyError(f"cannot read the vocabulary file {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VocabularyError(
            f"{path} line {line} is not UTF-8 text: save the file as UTF-8 (one phrase per line)"
        ) from exc
    phrases = parse_phrases(text, str(path))
    if not phrases:
        raise VocabularyError(f"{path} holds no phrases: write one word or phrase per line")
    return phrases


def parse_phrases(text: str, source: str) -> list[Phrase]:
    """The phrases of a text, one per line, with `source:line` for messages; checks the count."""
    phrases = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = " ".join(line.split())
        if entry and not entry.startswith("#"):
            phrases.append(Phrase(entry, where=f"{source} line {number}"))
    if len(phrases) > MAX_PHRASES:
        raise VocabularyError(
            f"{source} has {len(phrases):,} phrases; Perch boosts at most {MAX_PHRASES:,}: keep the names and "
            "words the model gets wrong"
        )
    return phrases


def compile_vocabulary(
    phrases: Sequence[Phrase],
    encode: Callable[[str], list[int]],
    strength: float,
    options: TreeOptions | None = None,
) -> CompiledVocabulary:
    """Tokenise each phrase with the model's tokenizer (`encode`) and build the boost for strength α."""
    options = options or TreeOptions()
    token_ids: list[list[int]] = []
    scores: list[float] = []
    warnings = []
    seen: set[tuple[str, bool]] = set()
    for phrase in phrases:
        if (phrase.text, phrase.stronger) in seen:
            continue
        seen.add((phrase.text, phrase.stronger))
        tokens = encode(phrase.text)
        if not tokens:
            where = f"{phrase.where}: " if phrase.where else ""
            warnings.append(f"{where}{phrase.text!r} has nothing the model can spell; it is left out")
            continue
        token_ids.append(tokens)
        scores.append(STRONGER_CONTEXT_SCORE if phrase.stronger else 0.0)
    if strength == 0 or not token_ids:
        return CompiledVocabulary(None, len(token_ids), strength, warnings)
    tree = PhraseTree(token_ids, options, scores if any(scores) else None)
    return CompiledVocabulary(Boost(tree, strength), len(token_ids), strength, warnings)
