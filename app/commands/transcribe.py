"""`perch transcribe`: audio files to text, JSON, SRT or WebVTT."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any

from app import formats
from app.commands.common import add_model_options, error, model_files, runtime_options, setup_logging, weights


def add_parser(subparsers: Any) -> None:
    """Register the command."""
    parser = subparsers.add_parser("transcribe", help="transcribe audio files", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="WAV, FLAC, OGG or MP3, any rate")
    parser.add_argument("--format", choices=("text", "json", "srt", "vtt"), default="text", help="output (text)")
    add_model_options(parser)
    parser.set_defaults(func=run)


def _render(fmt: str, path: Path, transcript: Any, quantization: str) -> str:
    if fmt == "json":
        return formats.to_json(path, transcript, quantization)
    if fmt == "srt":
        return formats.to_srt(transcript)
    if fmt == "vtt":
        return formats.to_vtt(transcript)
    return str(transcript.text)


def run(args: argparse.Namespace) -> int:
    """Load the model once, then transcribe each file; a failing file does not stop the others."""
    from stt.audiostream import stream_audio
    from stt.engine import Recognizer
    from stt.errors import PerchError

    setup_logging(args.debug)
    try:
        recognizer = Recognizer(model_files(args), runtime_options(args))
    except PerchError as exc:
        error(str(exc))
        if args.debug:
            traceback.print_exc()
        return 1
    report = recognizer.report
    for note in report.notes:
        print(f"perch: {note}", file=sys.stderr)
    if args.debug:
        print(
            f"perch: {recognizer.files.directory.name}, {weights(args).describe()} on {report.device}: "
            f"load {report.load_seconds:.2f} s, warm-up {report.warmup_seconds:.2f} s",
            file=sys.stderr,
        )
    status = 0
    for path in args.files:
        try:
            transcript = recognizer.transcribe_stream(stream_audio(path))
        except PerchError as exc:
            error(str(exc))
            if args.debug:
                traceback.print_exc()
            status = 1
            continue
        print(_render(args.format, path, transcript, recognizer.files.quantization), flush=True)
    return status
