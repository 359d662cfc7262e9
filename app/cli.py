"""The `perch` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.commands import bench, control, devices, doctor, listen, models, serve, transcribe
from app.commands.common import add_model_options


def build_parser() -> argparse.ArgumentParser:
    """All commands and their options."""
    parser = argparse.ArgumentParser(
        prog="perch",
        description=(
            "Offline dictation with NVIDIA Parakeet-TDT. With no command, start the tray app; "
            "`perch COMMAND -h` for help on a command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"perch {__version__}")
    add_model_options(parser)
    app = parser.add_argument_group("app")
    app.add_argument("--mic", metavar="NAME|INDEX", help="microphone (system default)")
    app.add_argument("--mode", choices=("ptt", "toggle", "handsfree"), help="dictation mode (from the settings)")
    # With no command the settings decide; options given on the command line win for this run.
    parser.set_defaults(model=None, quantization=None, device=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    transcribe.add_parser(sub)
    listen.add_parser(sub)
    devices.add_parser(sub)
    models.add_parser(sub)
    bench.add_parser(sub)
    doctor.add_parser(sub)
    serve.add_parser(sub)
    control.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failure, 2 usage)."""
    _give_windowed_runs_a_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui.main import run

        if isinstance(args.mic, str) and args.mic.isdigit():
            args.mic = int(args.mic)
        return run(args)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("perch: interrupted", file=sys.stderr)
        return 130


def _give_windowed_runs_a_stderr() -> None:
    """A windowed executable (Windows `perchw.exe`) starts without stdout and stderr; printing must not fail."""
    if sys.stdout is None or sys.stderr is None:
        sink = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115  (lives as long as the process)
        sys.stdout = sys.stdout or sink
        sys.stderr = sys.stderr or sink


if __name__ == "__main__":
    sys.exit(main())
