"""Transcript output formats: plain text, JSON lines, SRT and WebVTT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stt.boost.replacements import Replaced
from stt.results import Transcript, Word

MAX_CUE_CHARS = 84
MAX_CUE_SECONDS = 6.0
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")


def clock(seconds: float) -> str:
    """A duration as 1:02:03, or 2:03 under an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def to_json(
    path: Path,
    transcript: Transcript,
    quantization: str = "",
    vocabulary: dict[str, float] | None = None,
    replaced: Replaced | None = None,
) -> str:
    """One JSON object on one line; `quantization` names the weights that made it, `vocabulary` the boost
    (`{"phrases": N, "strength": α}`), `replaced` the text after replacements (the words stay the model's)."""
    return json.dumps(
        {
            "file": str(path),
            "text": transcript.text,
            "duration_s": round(transcript.duration, 4),
            "device": transcript.device,
            **({"quantization": quantization} if quantization else {}),
            **({"vocabulary": vocabulary} if vocabulary is not None else {}),
            **({"replaced": _replaced(replaced)} if replaced is not None and replaced.spans else {}),
            "tokens": transcript.token_ids,
            "token_starts_s": [round(t, 4) for t in transcript.token_starts],
            "token_durations_s": [round(t, 4) for t in transcript.token_durations],
            "words": [
                {
                    "word": w.text,
                    "start_s": round(w.start, 4),
                    "end_s": round(w.end, 4),
                    "confidence": round(w.confidence, 4),
                }
                for w in transcript.words
            ],
            "timings_ms": {
                "features": round(transcript.timings.features, 3),
                "encoder": round(transcript.timings.encoder, 3),
                "decode": round(transcript.timings.decode, 3),
                "total": round(transcript.timings.total, 3),
            },
        },
        ensure_ascii=False,
    )


def _replaced(replaced: Replaced) -> dict[str, object]:
    return {
        "text": replaced.text,
        "spans": [
            {"spoken": s.spoken, "written": s.written, "start_s": round(s.start, 4), "end_s": round(s.end, 4)}
            for s in replaced.spans
        ],
    }


def cues(words: Sequence[Word]) -> list[list[Word]]:
    """Group words into subtitle cues: a sentence end, ~2 lines of text or 6 s closes a cue."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current:
            length = sum(len(w.text) + 1 for w in current) + len(word.text)
            if length > MAX_CUE_CHARS or word.end - current[0].start > MAX_CUE_SECONDS:
                groups.append(current)
                current = []
        current.append(word)
        if word.text.endswith(_SENTENCE_END):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_end(group: list[Word]) -> float:
    return max(group[-1].end, group[0].start + 0.1)


def to_srt(transcript: Transcript) -> str:
    """SubRip subtitles."""
    blocks = []
    for index, group in enumerate(cues(transcript.words), start=1):
        timing = f"{_clock(group[0].start, ',')} --> {_clock(_cue_end(group), ',')}"
        blocks.append(f"{index}\n{timing}\n{' '.join(w.text for w in group)}\n")
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT subtitles."""
    blocks = ["WEBVTT\n"]
    for group in cues(transcript.words):
        timing = f"{_clock(group[0].start, '.')} --> {_clock(_cue_end(group), '.')}"
        blocks.append(f"{timing}\n{' '.join(w.text for w in group)}\n")
    return "\n".join(blocks)
