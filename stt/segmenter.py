"""Speech segments from per-frame speech probabilities: onset, hysteresis, pauses, padding and long-speech splits.

Positions are sample indices at 16 kHz; frame `i` covers samples `[i * FRAME, (i + 1) * FRAME)`.

- Speech starts at a frame with probability ≥ `threshold`; the segment's start is that frame's start minus
  the padding, but not before 0 or the end of the previous kept segment.
- Inside speech, a frame below `exit_threshold` starts a pause, which lasts until the next frame ≥ `threshold`
  (frames in between keep whatever state they find). A pause that reaches `min_silence_ms` ends the segment at
  the pause start plus the padding, but not past the audio seen so far.
- A segment with less than `min_speech_ms` of speech (padding not counted) is dropped: SpeechDiscarded; not
  one that follows an early cut, which holds the end of the speech before it (a last short word).
- Early cuts (live dictation): once the open segment holds `cut_after_s` of speech, a pause of `cut_pause_ms`
  ends it there; the pause needed shrinks as the segment grows (`cut_pause_ms × cut_after_s / speech`, never
  under `cut_min_pause_ms`) (SegmentEnded with `cut=True`, at the pause start plus the padding) so that it can be
  transcribed while the person goes on speaking. Speech that resumes opens the next segment as usual; if the
  pause instead reaches `min_silence_ms`, SpeechEnded says the speech is over.
- A segment may not pass `max_segment_s`. When the next frame would take it past the limit it is split in the
  middle of its longest pause of at least `split_pause_ms` and the next segment starts right there; if that pause
  is the one in progress, the segment ends at its start plus padding instead; with no such pause it is cut hard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

SAMPLE_RATE = 16000
FRAME = 512
"""Samples per speech probability (32 ms)."""


def _samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


@dataclass(frozen=True)
class VadOptions:
    """Every voice-activity setting in one place."""

    threshold: float = 0.5
    """Speech starts at the first frame whose probability is at least this."""
    exit_threshold: float = 0.35
    """Inside speech, a frame below this starts a pause."""
    min_speech_ms: int = 250
    """Segments with less speech than this (padding not counted) are dropped."""
    min_silence_ms: int = 500
    """A pause this long ends a segment (and, hands-free, the utterance)."""
    speech_pad_ms: int = 30
    """Added before the onset and after the last speech frame."""
    lookback_ms: int = 300
    """Audio before a segment's start that is handed to the recogniser too; not part of the reported boundaries."""
    max_segment_s: float = 20.0
    """Longer speech is split in the middle of its longest pause, or cut hard at the limit when it has none."""
    split_pause_ms: int = 100
    """Shortest pause a long segment may be split at."""
    cut_after_s: float = 0.0
    """Early cuts: a segment with at least this much speech ends at the next pause of `cut_pause_ms` (0: never)."""
    cut_pause_ms: int = 200
    """Early cuts: the pause that ends a segment past `cut_after_s`; shorter than `min_silence_ms` to be of use."""
    cut_min_pause_ms: int = 64
    """Early cuts: the shortest pause a long segment is cut at (the gap between two words)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"VAD threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.exit_threshold <= self.threshold:
            raise ValueError(
                f"VAD exit_threshold must be between 0 and threshold ({self.threshold}), got {self.exit_threshold}"
            )
        for name in (
            "min_speech_ms",
            "min_silence_ms",
            "speech_pad_ms",
            "lookback_ms",
            "split_pause_ms",
            "cut_pause_ms",
            "cut_min_pause_ms",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"VAD {name} must be a number of milliseconds ≥ 0, got {value!r}")
        shortest = 1.0 + 2 * self.speech_pad_ms / 1000
        if not (math.isfinite(self.max_segment_s) and self.max_segment_s >= shortest):
            raise ValueError(
                f"VAD max_segment_s must be at least 1 s plus twice speech_pad_ms ({shortest:g} s), "
                f"got {self.max_segment_s}"
            )
        if not (math.isfinite(self.cut_after_s) and self.cut_after_s >= 0):
            raise ValueError(f"VAD cut_after_s must be a number of seconds ≥ 0, got {self.cut_after_s!r}")
        if self.min_speech_ms >= self.max_segment_s * 1000:
            raise ValueError(
                f"VAD min_speech_ms ({self.min_speech_ms}) must be shorter than max_segment_s ({self.max_segment_s} s)"
            )


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began at sample `start` (padded); a consumer may start streaming from here."""

    start: int


@dataclass(frozen=True)
class SpeechDiscarded:
    """The segment announced at `start` held too little speech and is dropped."""

    start: int


@dataclass(frozen=True)
class SegmentEnded:
    """A kept segment: speech in `[start, end)` with padding; the recogniser's audio begins at `audio_start`.

    `cut`: ended early at a short pause; the speech may go on (SpeechEnded follows if it does not).
    """

    start: int
    end: int
    audio_start: int
    cut: bool = False


@dataclass(frozen=True)
class SpeechEnded:
    """After an early cut, the pause reached `min_silence_ms` at sample `position`: the speech is over."""

    position: int


SegmentEvent = SpeechStarted | SpeechDiscarded | SegmentEnded | SpeechEnded


class Segmenter:
    """Turns one speech probability per frame into segment events, as the audio arrives."""

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()
        o = self.options
        self._min_speech = max(_samples(o.min_speech_ms), 1)
        self._min_silence = _samples(o.min_silence_ms)
        self._pad = _samples(o.speech_pad_ms)
        self._lookback = _samples(o.lookback_ms)
        self._max = round(o.max_segment_s * SAMPLE_RATE)
        self._split_pause = _samples(o.split_pause_ms)
        self._cut_after = round(o.cut_after_s * SAMPLE_RATE)
        self._cut_pause = _samples(o.cut_pause_ms)
        self._cut_min_pause = _samples(min(o.cut_min_pause_ms, o.cut_pause_ms))
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next probability belongs to frame 0."""
        self._frames = 0
        self._previous_end = 0  # end of the last kept segment
        self._open = False
        self._start = 0  # padded start of the open segment
        self._speech_start = 0  # its start without padding: the onset, or where a long segment was split
        self._first_frame = 0  # first frame of the open segment; pauses before it are not split candidates
        self._pause: int | None = None  # first frame of the pause in progress
        self._pauses: list[tuple[int, int]] = []  # finished pauses in the open segment: (first frame, frames)
        self._cut_pause_from: int | None = None  # after an early cut: first frame of the pause it was cut at
        self._follows_cut = False  # the open segment began after an early cut: it is kept however short

    def push(self, probability: float) -> list[SegmentEvent]:
        """Take the probability of the next frame; return what it ends or starts."""
        o = self.options
        index = self._frames
        self._frames += 1
        position = self._frames * FRAME
        if not self._open:
            if probability >= o.threshold:
                follows_cut, self._cut_pause_from = self._cut_pause_from is not None, None
                start = max(index * FRAME - self._pad, self._previous_end, 0)
                began = self._begin(start, index * FRAME, index)
                self._follows_cut = follows_cut
                return [began]
            if self._cut_pause_from is not None and position - self._cut_pause_from * FRAME >= self._min_silence:
                self._cut_pause_from = None
                return [SpeechEnded(position)]
            return []
        if self._pause is not None and probability >= o.threshold:
            if self._pause >= self._first_frame:
                self._pauses.append((self._pause, index - self._pause))
            self._pause = None
        elif self._pause is None and probability < o.exit_threshold:
            self._pause = index
        if self._pause is not None and position - self._pause * FRAME >= self._min_silence:
            return [self._close(self._pause * FRAME, position)]
        if self._cut_due(position):
            assert self._pause is not None
            pause = self._pause
            ended = self._close(pause * FRAME, position)
            if isinstance(ended, SegmentEnded):
                self._cut_pause_from = pause
                return [SegmentEnded(ended.start, ended.end, ended.audio_start, cut=True)]
            return [ended]
        if position - self._start > self._max - FRAME:  # the next frame would take it past the limit
            return self._split(index)
        return []

    def _cut_due(self, position: int) -> bool:
        """An early cut: enough speech in the open segment, and a pause in it long enough."""
        if not self._cut_after or self._pause is None or self._pause < self._first_frame:
            return False
        speech = self._pause * FRAME - self._speech_start
        if speech < self._cut_after:
            return False
        needed = max(self._cut_min_pause, self._cut_pause * self._cut_after // speech)
        return position - self._pause * FRAME >= needed

    def flush(self, total_samples: int | None = None) -> list[SegmentEvent]:
        """End of audio: close the open segment, clamped to `total_samples` when given. Call reset() to reuse."""
        self._cut_pause_from = None
        if not self._open:
            return []
        audio_end = self._frames * FRAME
        if total_samples is not None:
            audio_end = min(audio_end, total_samples)
        speech_end = audio_end if self._pause is None else self._pause * FRAME
        return [self._close(min(speech_end, audio_end), audio_end)]

    def _begin(self, start: int, speech_start: int, first_frame: int) -> SpeechStarted:
        self._open = True
        self._follows_cut = False
        self._start, self._speech_start, self._first_frame = start, speech_start, first_frame
        self._pauses = []
        return SpeechStarted(start)

    def _finish(self, speech_end: int, end: int) -> SpeechDiscarded | SegmentEnded:
        """Keep or drop the open segment, which ends at `end` (padded) and `speech_end` (unpadded)."""
        self._open = False
        if speech_end - self._speech_start < self._min_speech and not (
            self._follows_cut and speech_end > self._speech_start
        ):
            return SpeechDiscarded(self._start)
        audio_start = max(self._start - self._lookback, self._previous_end, 0)
        self._previous_end = end
        return SegmentEnded(self._start, end, audio_start)

    def _close(self, speech_end: int, audio_end: int) -> SpeechDiscarded | SegmentEnded:
        """End the open segment at a pause (or the end of audio); the detector returns to silence."""
        self._pause = None
        return self._finish(speech_end, min(speech_end + self._pad, audio_end))

    def _split(self, index: int) -> list[SegmentEvent]:
        """The open segment is as long as allowed: end it at its longest pause, or cut it here."""
        candidates = list(self._pauses)
        if self._pause is not None and self._pause >= self._first_frame:
            candidates.append((self._pause, index + 1 - self._pause))
        ongoing = len(candidates) > len(self._pauses)
        best: int | None = None
        for i, (_, frames) in enumerate(candidates):
            if frames * FRAME >= self._split_pause and (best is None or frames >= candidates[best][1]):
                best = i  # the latest of equally long pauses: the longest first part
        position = (index + 1) * FRAME
        if best is None:
            # Any pause in progress goes on into the new segment, which is dropped if nothing but pause follows.
            return [self._finish(position, position), self._begin(position, position, index + 1)]
        first, frames = candidates[best]
        if ongoing and best == len(candidates) - 1:
            # The pause in progress is the best place: end here as if it had lasted min_silence.
            return [self._close(first * FRAME, position)]
        middle = first + (frames + 1) // 2  # rounded up, so the pause is not a candidate in the new segment
        later = self._pauses[best + 1 :]
        events: list[SegmentEvent] = [self._finish(middle * FRAME, middle * FRAME)]
        events.append(self._begin(middle * FRAME, middle * FRAME, middle))
        self._pauses = later
        return events


def speech_segments(
    probabilities: Iterable[float],
    options: VadOptions | None = None,
    total_samples: int | None = None,
) -> list[tuple[int, int]]:
    """Kept segments `(start, end)` in samples, for the probabilities of a whole recording."""
    segmenter = Segmenter(options)
    events: list[SegmentEvent] = []
    for probability in probabilities:
        events.extend(segmenter.push(float(probability)))
    events.extend(segmenter.flush(total_samples))
    return [(e.start, e.end) for e in events if isinstance(e, SegmentEnded)]
