"""How history entries read in the history window: times, lengths, latencies, counts and retention."""

from __future__ import annotations

import html
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from app.history import HistoryEntry

ONE_LINE_LIMIT = 400
"""Characters of an entry shown in its row; the view elides further to the column width."""

_DEVICES = {"cuda": "CUDA", "tensorrt": "TensorRT", "cpu": "CPU"}
_SPACES = re.compile(r"\s+")


def plural(count: int, word: str) -> str:
    """`1 dictation`, `1,234 dictations`."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def when(created: float, now: float | None = None) -> str:
    """A short local time: `14:03` today, `Yesterday 14:03`, `Mon 14:03` this week, then dates."""
    moment = datetime.fromtimestamp(created)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    clock = f"{moment:%H:%M}"
    day = moment.date()
    if day == today:
        return clock
    if day == today - timedelta(days=1):
        return f"Yesterday {clock}"
    if today - timedelta(days=7) < day < today:
        return f"{moment:%a} {clock}"
    if day.year == today.year:
        return f"{moment.day} {moment:%b} {clock}"
    return f"{moment.day} {moment:%b %Y} {clock}"


def full_when(created: float) -> str:
    """The whole local date and time: `Tuesday 12 March 2024, 14:03:22`."""
    moment = datetime.fromtimestamp(created)
    return f"{moment:%A} {moment.day} {moment:%B %Y}, {moment:%H:%M:%S}"


def duration_text(seconds: float) -> str:
    """`3.2 s` under a minute, `1:05` above; `–` when unknown."""
    if seconds <= 0:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def latency_text(ms: float | None) -> str:
    """`180 ms`, `1.4 s`; `–` when unknown."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def device_text(device: str) -> str:
    """`CUDA`, `CPU`, … as people write them."""
    return _DEVICES.get(device.lower(), device)


def model_text(entry: HistoryEntry) -> str:
    """`parakeet-tdt-0.6b-v3 · CUDA`."""
    return " · ".join(part for part in (entry.model, device_text(entry.device)) if part)


def one_line(text: str, limit: int = ONE_LINE_LIMIT) -> str:
    """The text on one line (runs of whitespace and line breaks become one space), cut at `limit` characters."""
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def text_tooltip(text: str) -> str:
    """The whole text as a tooltip that wraps and shows every character literally."""
    return f"<p style='white-space: pre-wrap'>{html.escape(text)}</p>"


def latency_tooltip(entry: HistoryEntry) -> str:
    """What the latency column means for this entry."""
    parts = []
    if entry.stop_to_typed_ms is not None:
        parts.append(f"Typed {latency_text(entry.stop_to_typed_ms)} after you stopped speaking.")
    if entry.stop_to_final_ms is not None:
        parts.append(f"The text was ready after {latency_text(entry.stop_to_final_ms)}.")
    return " ".join(parts) or "Not typed (no latency was recorded)."


def meta_line(entry: HistoryEntry) -> str:
    """One line about an entry for the detail pane."""
    parts = [full_when(entry.created)]
    if entry.source_path is not None:
        parts.append(f"file {Path(entry.source_path).name}")
    if entry.duration_s > 0:
        parts.append(f"{duration_text(entry.duration_s)} of {'audio' if entry.source_path else 'speech'}")
    if entry.stop_to_typed_ms is not None:
        parts.append(f"typed {latency_text(entry.stop_to_typed_ms)} after you stopped")
    elif entry.stop_to_final_ms is not None:
        parts.append(f"text ready {latency_text(entry.stop_to_final_ms)} after you stopped")
    if entry.model:
        device = device_text(entry.device)
        parts.append(f"{entry.model} on {device}" if device else entry.model)
    return " · ".join(parts)


def count_text(total: int, shown: int, more: bool, searching: bool) -> str:
    """`1,234 dictations`, or while searching `3 found in 1,234 dictations` (`100+` when more pages match)."""
    if not searching:
        return plural(total, "dictation")
    found = f"{shown:,}+" if more else f"{shown:,}"
    return f"{found} found in {plural(total, 'dictation')}"


def retention_text(keep_days: int, keep_recordings: int) -> str:
    """`History kept forever; 20 recordings`, `History kept 30 days; no recordings`."""
    kept = "kept forever" if keep_days <= 0 else f"kept {plural(keep_days, 'day')}"
    recordings = "no recordings" if keep_recordings <= 0 else plural(keep_recordings, "recording")
    return f"History {kept}; {recordings}"


def retention_tooltip(keep_days: int, keep_recordings: int) -> str:
    """The retention rules in full."""
    age = (
        "Dictations are kept until you delete them."
        if keep_days <= 0
        else f"Dictations older than {plural(keep_days, 'day')} are deleted with their recordings."
    )
    audio = (
        "No recordings of successful dictations are kept"
        if keep_recordings <= 0
        else f"The recordings of the newest {plural(keep_recordings, 'dictation')} are kept for re-transcribing"
    )
    return f"{age} {audio}; failed dictations always keep theirs."


def failure_text(entry: HistoryEntry, has_audio: bool) -> str | None:
    """Why a dictation failed and what can be done about it; None when it did not fail."""
    if entry.status != "failed":
        return None
    reason = entry.error or "no reason was recorded"
    if has_audio:
        return f"This dictation failed: {reason}. Its recording is kept; re-transcribe it to get the text."
    return f"This dictation failed: {reason}. Its recording is gone, so it cannot be transcribed again."


def retranscribe_failure_text(error: Exception, recording: Path | None) -> str:
    """What a failed re-transcription tells the person."""
    where = f" ({recording})" if recording is not None else ""
    return (
        f"Re-transcribing failed: {str(error) or type(error).__name__}. The dictation and its recording{where} are "
        "unchanged; try again, or open the audio folder to play the recording."
    )
