"""How much phrase boosting helps on real speech: espeak-ng dictation of the words model's vocabulary, with noise
at several signal-to-noise ratios, transcribed with and without boosting a few phrases.

Measures, per strength α and SNR: the recall of boosted phrases that were said, the false-insertion rate of boosted
phrases that were not said, and the word error rate of the other words. Used by tests/test_boost_benefit.py (a
small run that fails if boosting stops helping) and tests/bench_vocabulary.py (the table in docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stt.boost.phrases import Phrase, compile_vocabulary
from stt.engine import Recognizer

WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "hello",
    "world",
    "yes",
    "no",
    "stop",
    "go",
    "left",
    "right",
    "up",
    "down",
]
TARGETS = ("seven three", "left up", "nine go", "yes down")
VOICES = ("en", "en-us", "en-gb-x-rp", "en+m3", "en+f2", "en-us+m5")


@dataclass(frozen=True)
class Utterance:
    words: tuple[str, ...]
    target: str | None
    """The boosted phrase said in it, if any."""
    audio: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Scores:
    """Shares in 0 … 1."""

    recall: float
    false_insertions: float
    other_wer: float


def corpus(speak: Callable[..., npt.NDArray[np.float32]], count: int, seed: int = 0) -> list[Utterance]:
    """`count` utterances of 4–6 words; half of them hold one boosted phrase."""
    rng = np.random.default_rng(seed)
    others = [w for w in WORDS if not any(w in t.split() for t in TARGETS)]
    made = []
    for index in range(count):
        words = [str(w) for w in rng.choice(others, size=int(rng.integers(3, 5)))]
        target = TARGETS[index % len(TARGETS)] if index % 2 == 0 else None
        if target is not None:
            at = int(rng.integers(0, len(words) + 1))
            words[at:at] = target.split()
        voice = VOICES[int(rng.integers(len(VOICES)))]
        audio = speak(" ".join(words), voice=voice, speed=int(rng.integers(140, 200)))
        made.append(Utterance(tuple(words), target, audio))
    return made


def with_noise(audio: npt.NDArray[np.float32], snr_db: float, seed: int) -> npt.NDArray[np.float32]:
    """White noise added at `snr_db` below the speech's power."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(np.square(audio[np.abs(audio) > 1e-3]))) if np.any(np.abs(audio) > 1e-3) else 1e-6
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), audio.size).astype(np.float32)
    mixed: npt.NDArray[np.float32] = (audio + noise).astype(np.float32)
    return mixed


def _contains(words: Sequence[str], phrase: str) -> bool:
    parts = phrase.split()
    return any(tuple(words[i : i + len(parts)]) == tuple(parts) for i in range(len(words) - len(parts) + 1))


def _without(words: Sequence[str], phrase: str | None) -> list[str]:
    if phrase is None:
        return list(words)
    parts = phrase.split()
    for i in range(len(words) - len(parts) + 1):
        if tuple(words[i : i + len(parts)]) == tuple(parts):
            return [*words[:i], *words[i + len(parts) :]]
    return list(words)


def _edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def score(recognizer: Recognizer, utterances: Sequence[Utterance], alpha: float, snr_db: float) -> Scores:
    """Transcribe every utterance with the boosted phrases at strength `alpha` (0: none) and score it."""
    phrases = [Phrase(t) for t in TARGETS]
    recognizer.boost = compile_vocabulary(phrases, recognizer.phrase_tokenizer().encode, alpha).boost
    said = found = absent = inserted = errors = total = 0
    try:
        for index, utterance in enumerate(utterances):
            heard = recognizer.transcribe(with_noise(utterance.audio, snr_db, index)).text.split()
            for target in TARGETS:
                if target == utterance.target:
                    said += 1
                    found += _contains(heard, target)
                elif not _contains(utterance.words, target):
                    absent += 1
                    inserted += _contains(heard, target)
            reference = _without(utterance.words, utterance.target)
            errors += _edits(reference, _without(heard, utterance.target))
            total += len(reference)
    finally:
        recognizer.boost = None
    return Scores(found / max(said, 1), inserted / max(absent, 1), errors / max(total, 1))
