"""The `perch` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.commands import bench, devices, listen, models, transcribe
from app.commands.common import add_model_options


def build_parser() -> argparse.ArgumentParser:
    """All commands and their options."""
    parser = argparse.ArgumentParser(
        prog="perch",
        description="Offline dictation with NVIDIA Parakeet-TDT. Run a command below; `perch COMMAND -h` for help.",
    )
    add_model_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    transcribe.add_parser(sub)
    listen.add_parser(sub)
    devices.add_parser(sub)
    models.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("perch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
