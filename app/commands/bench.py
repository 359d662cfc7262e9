"""`perch bench`: speed and memory of the engine beside onnx-asr on the same model files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.common import (
    add_model_options,
    add_vocabulary_options,
    apply_vocabulary,
    error,
    model_files,
    read_vocabulary,
    runtime_options,
    setup_logging,
)


def add_parser(subparsers: Any) -> None:
    """Register the command."""
    parser = subparsers.add_parser("bench", help="benchmark the engine against onnx-asr", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="audio files (default: synthetic clips)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 60.0], help="synthetic clip lengths")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per clip (median)")
    parser.add_argument("--no-peer", action="store_true", help="skip onnx-asr")
    startup = parser.add_argument_group("start-up")
    startup.add_argument(
        "--startup",
        action="store_true",
        help="time `perch transcribe FILE` in fresh processes (empty cache, then warm) beside onnx-asr",
    )
    startup.add_argument("--rounds", type=int, default=3, help="start-up rounds (3)")
    live = parser.add_argument_group("live pipeline")
    live.add_argument("--live", action="store_true", help="replay FILES through the whole live pipeline")
    live.add_argument("--speed", type=float, default=1.0, help="replay speed (1: real time; 0: full speed)")
    live.add_argument(
        "--partials", choices=("auto", "low", "economy", "balanced", "quality", "off"), default="auto", help="(auto)"
    )
    live.add_argument("--idle-seconds", type=float, default=10.0, help="silence to measure idle CPU on (10)")
    live.add_argument("--mic", metavar="NAME|INDEX", help="measure idle CPU on this microphone, not the replay")
    add_model_options(parser)
    add_vocabulary_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, time, print."""
    from stt.audio import load_audio
    from stt.bench import format_report, run_bench, synthetic_clip
    from stt.engine import Recognizer
    from stt.errors import PerchError

    setup_logging(args.debug)
    if args.live:
        return _run_live(args)
    if args.startup:
        return _run_startup(args)
    try:
        chosen = read_vocabulary(args)
        recognizer = Recognizer(model_files(args), runtime_options(args))
        apply_vocabulary(recognizer, chosen)
        clips = [(p.name, load_audio(p)) for p in args.files] or [
            (f"synthetic {s:g} s", synthetic_clip(s, seed=i)) for i, s in enumerate(args.seconds)
        ]
    except PerchError as exc:
        error(str(exc))
        return 1
    report = run_bench(recognizer, clips, repeat=args.repeat, threads=args.threads, with_peer=not args.no_peer)
    print(format_report(report))
    return 0


def _run_live(args: argparse.Namespace) -> int:
    from stt.audio import load_audio
    from stt.engine import Recognizer
    from stt.errors import PerchError
    from stt.livebench import format_live_report, run_live_bench

    if not args.files:
        error("--live needs speech files to replay, e.g. perch bench --live clip1.wav clip2.wav")
        return 2
    try:
        chosen = read_vocabulary(args)
        recognizer = Recognizer(model_files(args), runtime_options(args))
        apply_vocabulary(recognizer, chosen)
        clips = [(p.name, load_audio(p)) for p in args.files]
    except PerchError as exc:
        error(str(exc))
        return 1
    microphone = None
    if args.mic is not None:
        from stt.microphone import Microphone

        microphone = Microphone(int(args.mic) if args.mic.isdigit() else args.mic)
    try:
        report = run_live_bench(
            recognizer,
            clips,
            speed=args.speed,
            partials=args.partials,
            idle_seconds=args.idle_seconds,
            microphone=microphone,
        )
    except PerchError as exc:
        error(str(exc))
        return 1
    print(format_live_report(report))
    return 0


def _run_startup(args: argparse.Namespace) -> int:
    from stt.errors import PerchError
    from stt.startbench import format_startup_report, run_startup_bench

    if len(args.files) != 1:
        error("--startup needs one speech file to transcribe, e.g. perch bench --startup clip.wav --model DIR")
        return 2
    try:
        files = model_files(args)
    except PerchError as exc:
        error(str(exc))
        return 1
    try:
        report = run_startup_bench(
            files.directory, files.quantization, args.files[0], rounds=args.rounds, with_peer=not args.no_peer
        )
    except RuntimeError as exc:
        error(str(exc))
        return 1
    print(format_startup_report(report))
    return 0
