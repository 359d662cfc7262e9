"""Replacements and snippets: a spoken form becomes the written one ("perch dot app" → "perch.app", "sign off" →
a multi-line signature), whole words only, after recognition."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from stt.results import Word

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Replacement:
    """Say `spoken`, get `written` (which may span several lines: a snippet)."""

    spoken: str
    written: str
    case_sensitive: bool = False

    def pattern(self) -> re.Pattern[str]:
        """The spoken words as whole words, any run of spaces between them."""
        words = self.spoken.split()
        body = r"\s+".join(re.escape(w) for w in words)
        return re.compile(rf"(?<!\w){body}(?!\w)", 0 if self.case_sensitive else re.IGNORECASE)


@dataclass(frozen=True)
class ReplacedSpan:
    """One replacement made: what the model said, what was written, and when it was said."""

    spoken: str
    written: str
    start: float
    end: float


@dataclass(frozen=True)
class Replaced:
    """A text after replacements, and each replacement made in it (in order)."""

    text: str
    spans: list[ReplacedSpan]


def apply_replacements(text: str, words: Sequence[Word], rules: Sequence[Replacement]) -> Replaced:
    """Apply `rules` in order to `text`, whose whitespace-separated runs are `words` (for the times); a longer
    spoken form is tried before a shorter one that it contains."""
    if not rules or not text:
        return Replaced(text, [])
    runs = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    timed = len(runs) == len(words)
    spans: list[ReplacedSpan] = []
    # Find every match on the original text first, so a written form is never replaced again.
    found: list[tuple[int, int, Replacement]] = []
    for rule in sorted((r for r in rules if r.spoken.split()), key=lambda r: -len(r.spoken)):
        for match in rule.pattern().finditer(text):
            if all(match.end() <= s or match.start() >= e for s, e, _ in found):
                found.append((match.start(), match.end(), rule))
    if not found:
        return Replaced(text, [])
    found.sort(key=lambda item: item[0])
    pieces = []
    at = 0
    for start, end, rule in found:
        pieces.append(text[at:start])
        pieces.append(rule.written)
        at = end
        inside = [i for i, (s, e) in enumerate(runs) if s < end and e > start]
        begin = words[inside[0]].start if timed and inside else 0.0
        finish = words[inside[-1]].end if timed and inside else 0.0
        spans.append(ReplacedSpan(text[start:end], rule.written, begin, finish))
    pieces.append(text[at:])
    return Replaced("".join(pieces), spans)


def replace_partial(text: str, stable: int, rules: Sequence[Replacement]) -> tuple[str, int]:
    """Live text with the replacements applied, and how much of it is settled (its first `stable` characters
    were)."""
    if not rules:
        return text, stable
    shown = apply_replacements(text, [], rules).text
    settled = apply_replacements(text[:stable], [], rules).text
    return shown, len(settled) if shown.startswith(settled) else 0
