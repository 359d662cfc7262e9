"""Transcripts as OpenAI's response formats: json, text, srt, vtt and verbose_json."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

from app import formats
from stt.results import Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def segments(transcript: Transcript) -> list[dict[str, Any]]:
    """The transcript's words grouped as subtitle cues, in the shape of OpenAI's `TranscriptionSegment`."""
    result = []
    for index, group in enumerate(formats.cues(transcript.words)):
        confidence = sum(w.confidence for w in group) / len(group)
        result.append(
            {
                "id": index,
                "seek": 0,
                "start": round(group[0].start, 3),
                "end": round(group[-1].end, 3),
                "text": " ".join(w.text for w in group),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": round(math.log(max(confidence, 1e-9)), 4),
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
        )
    return result


def verbose(transcript: Transcript, language: str, granularities: Iterable[str]) -> dict[str, Any]:
    """OpenAI's `TranscriptionVerbose`; top-level `words` only when the word granularity is asked for."""
    wanted = set(granularities)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": segments(transcript),
    }
    if "word" in wanted:
        body["words"] = [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in transcript.words]
    return body


def render(fmt: str, transcript: Transcript, language: str, granularities: Iterable[str]) -> Response:
    """The HTTP response for `response_format` (one of RESPONSE_FORMATS)."""
    if fmt == "text":
        return PlainTextResponse(transcript.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(formats.to_srt(transcript), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(formats.to_vtt(transcript), media_type="text/vtt")
    if fmt == "verbose_json":
        return JSONResponse(verbose(transcript, language, granularities))
    return JSONResponse({"text": transcript.text})


def sse_event(event: dict[str, Any]) -> bytes:
    """One Server-Sent Event, named after its `type` as OpenAI's stream events are."""
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
