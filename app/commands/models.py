"""`perch models`: list, download, verify and remove speech models."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from app.commands.common import error
from stt.catalog import DEFAULT_MODEL, Quantization
from stt.errors import PerchError
from stt.quantization import AUTO_RULE, QUANTIZATION_CHOICES, QuantizationChoice, resolve_weights
from stt.runtime import DEVICES

_MB = 1e6


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `perch models` and its subcommands."""
    parser = subparsers.add_parser("models", help="list, download, verify and remove models", description=__doc__)
    parser.set_defaults(func=run_list)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    listing = sub.add_parser("list", help="show every catalog model and whether it is downloaded")
    listing.set_defaults(func=run_list)

    download = sub.add_parser("download", help="download a model (resumes an interrupted download)")
    _add_name(download, optional=True)
    _add_quantization(download)
    download.add_argument("--force", action="store_true", help="delete the files and download them again")
    download.set_defaults(func=run_download)

    verify = sub.add_parser("verify", help="check a downloaded model's sizes and sha256 hashes")
    _add_name(verify, optional=True)
    _add_quantization(verify)
    verify.set_defaults(func=run_verify)

    remove = sub.add_parser("remove", help="delete a downloaded model, all quantizations")
    _add_name(remove, optional=False)
    remove.set_defaults(func=run_remove)


def _add_name(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    if optional:
        parser.add_argument("name", nargs="?", default=DEFAULT_MODEL, metavar="NAME", help=f"({DEFAULT_MODEL})")
    else:
        parser.add_argument("name", metavar="NAME", help="catalog name, as `perch models list` shows it")


def _add_quantization(parser: argparse.ArgumentParser) -> None:
    # No default here, so that `perch --quantization int8 models download` keeps the top-level choice.
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATION_CHOICES,
        default=argparse.SUPPRESS,
        help=f"weights (auto: {AUTO_RULE})",
    )
    parser.add_argument(
        "--device", choices=DEVICES, default=argparse.SUPPRESS, help="where it will run, for auto weights (auto)"
    )


def _quantization(args: argparse.Namespace) -> Quantization:
    choice: QuantizationChoice = getattr(args, "quantization", None) or "auto"
    return resolve_weights(choice, args.name, getattr(args, "device", None) or "auto").quantization


def run_list(args: argparse.Namespace) -> int:
    """Print a table of catalog models."""
    from stt import hub  # huggingface_hub and httpx: only for the commands that use them

    rows = [("NAME", "QUANTIZATION", "SIZE", "DOWNLOADED", "PATH")]
    rows += [
        (s.name, s.quantization, _size(s.approx_size), "yes" if s.downloaded else "no", str(s.path))
        for s in hub.list_models()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download one model variant with a progress display on stderr."""
    from stt import hub  # huggingface_hub and httpx: only for the commands that use them

    name: str = args.name
    quantization = _quantization(args)
    try:
        if not args.force and hub.is_downloaded(name, quantization):
            print(f"{name} ({quantization}) is already downloaded in {hub.model_dir(name)}")
            return 0
        bar = ProgressBar(sys.stderr, f"{name} ({quantization})")
        try:
            path = hub.download(name, quantization, force=args.force, progress=bar)
        finally:
            bar.close()
    except PerchError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail(
            f"download interrupted; run `perch models download {name} --quantization {quantization}` to resume"
        )
    print(f"{name} ({quantization}) is ready in {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Check a downloaded variant; exit 1 with the fix when it is broken."""
    from stt import hub  # huggingface_hub and httpx: only for the commands that use them

    name: str = args.name
    quantization = _quantization(args)
    try:
        problems = hub.verify(name, quantization)
    except PerchError as exc:
        return _fail(str(exc))
    if problems:
        force = " --force" if hub.marker_path(name, quantization).exists() else ""
        return _fail(
            f"{name} ({quantization}) is not usable: {'; '.join(problems)}; "
            f"run `perch models download {name} --quantization {quantization}{force}`"
        )
    print(f"{name} ({quantization}): OK")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Delete a model's folder."""
    from stt import hub  # huggingface_hub and httpx: only for the commands that use them

    try:
        path = hub.remove(args.name)
    except PerchError as exc:
        return _fail(str(exc))
    print(f"removed {path}")
    return 0


class ProgressBar:
    """Download progress: redrawn in place on a terminal, else one line per 10 %."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.started: float | None = None
        self.start_bytes = 0
        self.last_draw = 0.0
        self.last_decile = -1
        self.drawn = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started, self.start_bytes = now, done
        fraction = done / total if total else 1.0
        if self.tty:
            if now - self.last_draw < 0.1 and done < total:
                return
            self.last_draw = now
            line = self._line(done, total, fraction, now)
            # Pad over the previous line in case this one is shorter.
            self.stream.write("\r" + line.ljust(self.drawn))
            self.drawn = len(line)
        else:
            decile = int(fraction * 10)
            if decile <= self.last_decile:
                return
            self.last_decile = decile
            self.stream.write(self._line(done, total, fraction, now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the in-place line so that later output starts on a fresh one."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0

    def _line(self, done: int, total: int, fraction: float, now: float) -> str:
        elapsed = now - (self.started or now)
        rate = (done - self.start_bytes) / elapsed / _MB if elapsed > 0 else 0.0
        return f"{self.label}: {fraction * 100:5.1f}%  {done / _MB:,.1f}/{total / _MB:,.1f} MB  {rate:,.1f} MB/s"


def _size(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.2f} GB"
    return f"{count / _MB:.0f} MB" if count >= _MB else f"{count / 1e3:.0f} kB"


def _fail(message: str) -> int:
    error(message)
    return 1
