"""`perch devices`: list the microphones (input devices) Perch can record from."""

from __future__ import annotations

import argparse
import dataclasses
import json

from app.commands.common import error
from stt.errors import MicrophoneError
from stt.microphone import list_input_devices


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `perch devices`."""
    parser = subparsers.add_parser("devices", help="list the input devices (microphones)", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the input devices; exit 1 with the fix when there are none or PortAudio is missing."""
    try:
        devices = list_input_devices()
    except MicrophoneError as exc:
        error(str(exc))
        return 1
    if not devices:
        error("no microphone found: connect one, or check that PipeWire/PulseAudio is running")
        return 1
    if args.json:
        print(json.dumps([dataclasses.asdict(d) for d in devices], indent=2))
        return 0
    rows = [("", "INDEX", "NAME", "HOST API", "RATE", "CHANNELS")]
    rows += [
        ("*" if d.is_default else "", str(d.index), d.name, d.host_api, str(d.default_rate), str(d.channels))
        for d in devices
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print("* default input")
    return 0
