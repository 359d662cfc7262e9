"""`perch doctor`: check that everything Perch needs works here, and say what to do where it does not.

It looks at the display and desktop, the hotkeys, typing (typed live into a test window of its own and read
back), the microphone (a one-second level test), the model and the device it would run on, and the shipped
voice-activity model. The settings decide what is checked; the model options and --mic override them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from app.commands.common import add_model_options, error, setup_logging

if TYPE_CHECKING:
    from app.doctor import Check, CheckSpec, DoctorContext


def add_parser(subparsers: Any) -> None:
    """Register `perch doctor`."""
    from app.doctor import AREAS

    parser = subparsers.add_parser(
        "doctor", help="check the setup: display, hotkeys, typing, microphone, model", description=__doc__
    )
    parser.add_argument(
        "areas", nargs="*", metavar="AREA", help=f"check only these: {', '.join(AREAS)} (all when none is given)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the details under each line")
    parser.add_argument("--full", action="store_true", help="also compare the sha256 of every model file (slow)")
    parser.add_argument("--load", action="store_true", help="load the model and time a 5 s transcription")
    parser.add_argument("--mic", "--input", dest="mic", metavar="NAME|INDEX", help="microphone (from the settings)")
    add_model_options(parser)
    # The settings decide unless an option is given.
    parser.set_defaults(func=run, model=None, quantization=None, device=None)


def _header() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        perch = version("perch-dictation")
    except PackageNotFoundError:
        perch = "source checkout"
    python = ".".join(str(part) for part in sys.version_info[:3])
    return f"Perch doctor (perch {perch}, Python {python}, {sys.platform})"


def run(args: argparse.Namespace) -> int:
    """Run the checks and print the report; exit 1 when any failed."""
    from app.doctor import AREAS, default_checks, load_context, to_json, worst
    from app.doctor.report import verdict

    setup_logging(args.debug)
    unknown = [area for area in args.areas if area not in AREAS]
    if unknown:
        error(f"unknown check {unknown[0]!r}; choose from {', '.join(AREAS)}")
        return 2
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    context = load_context(
        model=args.model,
        quantization=args.quantization,
        device=args.device,
        microphone=None if args.mic is None else str(args.mic),
        full_verify=args.full,
        load_model=args.load,
        areas=args.areas or None,
    )
    specs = default_checks(context)
    from stt.runtime import quiet_native_stderr  # keeps PortAudio's, ALSA's and ONNX Runtime's probing quiet

    quiet = contextlib.nullcontext() if args.debug else quiet_native_stderr()
    with quiet:
        checks = _report(context, specs, args)
    if args.json:
        print(to_json(checks))
    else:
        print(verdict(checks))
    return 1 if worst(checks) == "fail" else 0


def _report(context: DoctorContext, specs: list[CheckSpec], args: argparse.Namespace) -> list[Check]:
    """Run the checks, printing each line as soon as those before it are done; every result, in order."""
    from app.doctor import run_events
    from app.doctor.report import check_lines

    results: dict[int, list[Check]] = {index: [] for index in range(len(specs))}
    done: set[int] = set()
    printed = 0
    width = max(len(name) for spec in specs for name in (spec.title, *spec.expected))
    if not args.json:
        print(_header(), flush=True)
    for index, check in run_events(context, specs):
        if check is None:
            done.add(index)
        else:
            results[index].append(check)
        while not args.json and printed in done:  # keep the report order while results come in any order
            for item in results[printed]:
                print("\n".join(check_lines(item, width=width, details=args.verbose)), flush=True)
            printed += 1
    return [check for index in range(len(specs)) for check in results[index]]
