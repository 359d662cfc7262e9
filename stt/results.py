"""Result types of a transcription."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Token:
    """One emitted token; times are seconds on the input's timeline."""

    id: int
    text: str
    start: float
    duration: float
    probability: float

    @property
    def end(self) -> float:
        """End time in seconds."""
        return self.start + self.duration


@dataclass(frozen=True)
class Word:
    """A word made of tokens, with the mean token probability as confidence."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass
class Timings:
    """Wall-clock time of each stage, in milliseconds."""

    features: float = 0.0
    encoder: float = 0.0
    decode: float = 0.0
    total: float = 0.0

    def add(self, other: Timings) -> None:
        """Accumulate another segment's timings."""
        self.features += other.features
        self.encoder += other.encoder
        self.decode += other.decode
        self.total += other.total


@dataclass
class Transcript:
    """The recognised text of one input, its tokens, words and timings."""

    text: str
    duration: float
    tokens: list[Token] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    device: str = "cpu"
    token_ids: list[int] = field(default_factory=list)
    """Every non-blank token the decoder emitted, special ones included, in order."""
    token_starts: list[float] = field(default_factory=list)
    """Start of each of `token_ids` in seconds (frame x frame length)."""
    token_durations: list[float] = field(default_factory=list)
    """Duration of each of `token_ids` in seconds."""
