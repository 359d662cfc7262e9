"""`perch transcribe`: audio files to text, JSON, SRT or WebVTT."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from app import formats
from app.commands.common import (
    add_model_options,
    add_vocabulary_options,
    apply_vocabulary,
    error,
    model_files,
    read_vocabulary,
    replacement_rules,
    runtime_options,
    setup_logging,
    weights,
)


def add_parser(subparsers: Any) -> None:
    """Register the command."""
    parser = subparsers.add_parser("transcribe", help="transcribe audio files", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="WAV, FLAC, OGG or MP3, any rate")
    parser.add_argument("--format", choices=("text", "json", "srt", "vtt"), default="text", help="output (text)")
    add_model_options(parser)
    add_vocabulary_options(parser)
    parser.set_defaults(func=run)


def _render(
    fmt: str,
    path: Path,
    transcript: Any,
    quantization: str,
    *,
    vocabulary: dict[str, float] | None = None,
    rules: list[Any] | None = None,
) -> str:
    from stt.boost.replacements import apply_replacements

    replaced = apply_replacements(transcript.text, transcript.words, rules or [])
    if fmt == "json":
        return formats.to_json(path, transcript, quantization, vocabulary, replaced)
    if fmt == "srt":
        return formats.to_srt(transcript)
    if fmt == "vtt":
        return formats.to_vtt(transcript)
    return replaced.text


PROGRESS_AFTER_S = 30.0
"""Files at least this long show a progress line on a terminal."""


class FileProgressLine:
    """A progress line on stderr, redrawn in place, for a long file when stderr is a terminal; nothing otherwise."""

    def __init__(self, name: str, duration: float, stream: TextIO) -> None:
        self.name, self.duration, self.stream = name, duration, stream
        self.started = time.perf_counter()
        self.drawn = 0

    @classmethod
    def for_file(cls, path: Path, stream: TextIO | None = None) -> contextlib.AbstractContextManager[Any]:
        """A context giving the `progress` callable for `Recognizer.transcribe_stream`, or None."""
        from stt.errors import PerchError
        from stt.filejob import audio_duration

        stream = stream or sys.stderr
        if not stream.isatty():
            return contextlib.nullcontext(None)
        try:
            duration = audio_duration(path)
        except PerchError:
            return contextlib.nullcontext(None)  # the transcription reports the problem
        if duration < PROGRESS_AFTER_S:
            return contextlib.nullcontext(None)
        return cls(path.name, duration, stream)

    def __enter__(self) -> FileProgressLine:
        self(0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.write("\r" + " " * self.drawn + "\r")
        self.stream.flush()

    def __call__(self, done_s: float) -> None:
        elapsed = time.perf_counter() - self.started
        fraction = min(1.0, done_s / self.duration) if self.duration else 1.0
        line = f"{self.name}: {formats.clock(done_s)} / {formats.clock(self.duration)} {fraction * 100:3.0f}%"
        if done_s > 0 and elapsed > 0:
            speed = done_s / elapsed
            line += f", {speed:.1f}x real time, {formats.clock(max(0.0, self.duration - done_s) / speed)} left"
        self.stream.write("\r" + line.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(line)


def run(args: argparse.Namespace) -> int:
    """Load the model once, then transcribe each file; a failing file does not stop the others."""
    from stt.audiostream import stream_audio
    from stt.engine import Recognizer
    from stt.errors import PerchError

    setup_logging(args.debug)
    try:
        chosen = read_vocabulary(args)
        recognizer = Recognizer(model_files(args), runtime_options(args))
        vocabulary = apply_vocabulary(recognizer, chosen)
        rules = replacement_rules()
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
            with FileProgressLine.for_file(path) as progress:
                transcript = recognizer.transcribe_stream(stream_audio(path), progress=progress)
        except PerchError as exc:
            error(str(exc))
            if args.debug:
                traceback.print_exc()
            status = 1
            continue
        quantization = recognizer.files.quantization
        shown = _render(args.format, path, transcript, quantization, vocabulary=vocabulary, rules=rules)
        print(shown, flush=True)
    return status
