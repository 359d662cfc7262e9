"""Trying a vocabulary on past recordings: each one transcribed without it and with it, on the engine thread.

Nothing here needs Qt; the settings page runs `Candidate.compare` through `EngineWorker.submit`, one recording
per job, so dictation waits for at most one of them.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from pathlib import Path

from app.history import History
from app.vocabulary_settings import VocabularySettings
from stt.audio import load_audio
from stt.boost.phrases import CompiledVocabulary, compile_vocabulary
from stt.boost.replacements import apply_replacements
from stt.engine import Recognizer

TRIAL_COUNT = 10
"""How many recent recordings a trial transcribes."""
MAX_TRIAL_SECONDS = 60.0
"""Longer recordings are left out, so that no single job keeps dictation waiting for long."""
SCAN_LIMIT = 200
"""How many recent history entries are looked through for recordings."""


@dataclass(frozen=True)
class Recording:
    """A history entry whose audio is on disk."""

    entry_id: int
    created: float
    path: Path


@dataclass(frozen=True)
class Comparison:
    """A recording's text without the vocabulary and with it."""

    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def recent_recordings(history: History, count: int = TRIAL_COUNT) -> list[Recording]:
    """The newest `count` entries whose recording exists and lasts at most `MAX_TRIAL_SECONDS` (reads files:
    call it off the GUI thread)."""
    found = []
    for entry in history.recent(SCAN_LIMIT):
        path = None if entry.input_path is None else Path(entry.input_path)
        if path is None or entry.duration_s > MAX_TRIAL_SECONDS or not path.is_file():
            continue
        found.append(Recording(entry.id, entry.created, path))
        if len(found) == count:
            break
    return found


class Candidate:
    """A vocabulary to try; its boost is compiled for the loaded model on first use, on the engine thread."""

    def __init__(self, vocabulary: VocabularySettings) -> None:
        self.vocabulary = vocabulary
        self._compiled: tuple[Recognizer, CompiledVocabulary] | None = None

    def compiled(self, recognizer: Recognizer) -> CompiledVocabulary:
        """The boost for `recognizer` (compiled again if the model changed since)."""
        if self._compiled is None or self._compiled[0] is not recognizer:
            phrases = self.vocabulary.boost_phrases()
            encode = recognizer.phrase_tokenizer().encode
            self._compiled = (recognizer, compile_vocabulary(phrases, encode, self.vocabulary.strength))
        return self._compiled[1]

    @property
    def warnings(self) -> list[str]:
        """Why phrases were left out when last compiled (read it once a comparison is done)."""
        return [] if self._compiled is None else self._compiled[1].warnings

    def compare(self, recognizer: Recognizer, path: Path) -> Comparison:
        """On the engine thread: transcribe `path` without any boost and with this vocabulary (its replacements
        applied); the recognizer's own boost is put back afterwards, whatever happens."""
        samples = load_audio(path)
        boost = self.compiled(recognizer).boost
        previous = recognizer.boost
        try:
            recognizer.boost = None
            before = recognizer.transcribe(samples).text
            recognizer.boost = boost
            after = recognizer.transcribe(samples).text
        finally:
            recognizer.boost = previous
        after = apply_replacements(after, [], self.vocabulary.replacement_rules()).text
        return Comparison(before, after)


def marked_difference(before: str, after: str) -> tuple[str, str]:
    """Both texts as HTML, the words that differ wrapped in <s> (gone from `before`) and <b> (new in `after`)."""
    old, new = before.split(" "), after.split(" ")
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        gone = html.escape(" ".join(old[i1:i2]))
        came = html.escape(" ".join(new[j1:j2]))
        if tag == "equal":
            left.append(gone)
            right.append(came)
            continue
        if gone:
            left.append(f"<s>{gone}</s>")
        if came:
            right.append(f"<b>{came}</b>")
    return _joined(left), _joined(right)


def _joined(parts: list[str]) -> str:
    return " ".join(p for p in parts if p).replace("\n", "<br>")
