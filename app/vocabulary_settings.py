"""A person's vocabulary in the settings: phrases to boost (some "stronger"), the strength, and replacements."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app import settings_rules as rules
from stt.boost.phrases import DEFAULT_STRENGTH, MAX_PHRASES, Phrase
from stt.boost.replacements import Replacement

STRENGTH_RANGE = (0.0, 10.0)
"""The strengths the settings offer: 0 turns boosting off."""


@dataclass(frozen=True)
class VocabularyEntry:
    """A word or phrase to boost."""

    text: str
    stronger: bool = False
    """Boost it harder (for a name that still comes out wrong)."""


@dataclass(frozen=True)
class ReplacementEntry:
    """Say `spoken`, get `written`; `written` may span several lines (a snippet)."""

    spoken: str
    written: str
    case_sensitive: bool = False


@dataclass(frozen=True)
class VocabularySettings:
    """Settings ▸ Vocabulary."""

    phrases: tuple[VocabularyEntry, ...] = ()
    strength: float = DEFAULT_STRENGTH
    """α, how hard the phrases are boosted (0–10; 0 is off)."""
    replacements: tuple[ReplacementEntry, ...] = ()

    def boost_phrases(self) -> list[Phrase]:
        """The phrases as the engine takes them."""
        return [Phrase(e.text, e.stronger, where="Settings ▸ Vocabulary") for e in self.phrases]

    def replacement_rules(self) -> list[Replacement]:
        """The replacements as the text stage takes them."""
        return [Replacement(e.spoken, e.written, e.case_sensitive) for e in self.replacements]

    @classmethod
    def from_dict(cls, data: object, problems: list[str]) -> VocabularySettings:
        """From the stored form; each unusable entry is left out with a message in `problems`."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            problems.append(
                f'Setting "vocabulary" has the value {rules.show(data)}, which is not an object; it is empty.'
            )
            return cls()
        phrases = _entries(data.get("phrases", []), "vocabulary.phrases", problems, _phrase)
        replacements = _entries(data.get("replacements", []), "vocabulary.replacements", problems, _replacement)
        strength = data.get("strength", DEFAULT_STRENGTH)
        low, high = STRENGTH_RANGE
        usable = isinstance(strength, (int, float)) and not isinstance(strength, bool)
        if not usable or not math.isfinite(float(strength)) or not low <= float(strength) <= high:
            problems.append(
                f'Setting "vocabulary.strength" has the value {rules.show(strength)}, which is not a number from '
                f"{low:g} to {high:g}; using {DEFAULT_STRENGTH:g}."
            )
            strength = DEFAULT_STRENGTH
        return cls(tuple(phrases[:MAX_PHRASES]), float(strength), tuple(replacements))


def _entries(value: object, name: str, problems: list[str], parse: Any) -> list[Any]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        problems.append(f'Setting "{name}" has the value {rules.show(value)}, which is not a list; it is empty.')
        return []
    found = []
    for index, item in enumerate(value):
        entry = parse(item) if isinstance(item, Mapping) else None
        if entry is None:
            problems.append(f'Setting "{name}" entry {index + 1} ({rules.show(item)}) is not usable; it is left out.')
        else:
            found.append(entry)
    return found


def _phrase(item: Mapping[str, object]) -> VocabularyEntry | None:
    text, stronger = item.get("text"), item.get("stronger", False)
    if not isinstance(text, str) or not text.strip() or not isinstance(stronger, bool):
        return None
    return VocabularyEntry(" ".join(text.split()), stronger)


def _replacement(item: Mapping[str, object]) -> ReplacementEntry | None:
    spoken, written, case = item.get("spoken"), item.get("written"), item.get("case_sensitive", False)
    if not isinstance(spoken, str) or not spoken.strip() or not isinstance(written, str):
        return None
    if not isinstance(case, bool):
        return None
    return ReplacementEntry(" ".join(spoken.split()), written, case)
