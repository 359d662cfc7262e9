"""Adding one phrase to the vocabulary in the settings (from a history text selection or the caption)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.launch import LaunchSettings
from app.vocabulary_settings import VocabularyEntry
from stt.boost.phrases import MAX_PHRASES


@dataclass(frozen=True)
class Addition:
    """What came of adding a phrase, and the line that tells the person."""

    message: str
    added: bool = False
    failed: bool = False


def add_to_vocabulary(settings: LaunchSettings, text: str) -> Addition:
    """Save `text` (whitespace collapsed) as a phrase unless it is empty, already listed, or the list is full."""
    phrase = " ".join(text.split())
    if not phrase:
        return Addition("Nothing to add: select a word or phrase first.")
    vocabulary = settings.current().vocabulary
    if any(entry.text == phrase for entry in vocabulary.phrases):
        return Addition(f"“{phrase}” is already in the vocabulary.")
    if len(vocabulary.phrases) >= MAX_PHRASES:
        return Addition(
            f"The vocabulary already holds {MAX_PHRASES:,} phrases, the most Perch boosts; remove some in "
            "Settings ▸ Vocabulary first.",
            failed=True,
        )
    try:
        settings.update(vocabulary=replace(vocabulary, phrases=(*vocabulary.phrases, VocabularyEntry(phrase))))
    except (OSError, ValueError) as exc:
        return Addition(f"“{phrase}” could not be added: {exc}", failed=True)
    return Addition(f"Added “{phrase}” to the vocabulary; it applies from the next dictation.", added=True)
