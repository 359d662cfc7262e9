"""`perch listen`: dictate from the microphone in a terminal (Enter starts and stops)."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import asdict
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
    parser = subparsers.add_parser("listen", help="dictate from the microphone in the terminal", description=__doc__)
    parser.add_argument("--mic", "--input", dest="mic", metavar="NAME|INDEX", help="input device (system default)")
    parser.add_argument(
        "--mode", choices=("ptt", "toggle", "handsfree"), default="ptt", help="(ptt; in a terminal Enter starts/stops)"
    )
    parser.add_argument("--partials", action="store_true", help="show live text while speaking")
    parser.add_argument(
        "--preset",
        choices=("auto", "low", "economy", "balanced", "quality"),
        default="auto",
        help="partials latency (auto)",
    )
    parser.add_argument("--final", choices=("full", "streaming"), default="full", help="how finals are made (full)")
    parser.add_argument("--preroll-ms", type=int, default=500, help="audio kept from before the start (500; 0: off)")
    parser.add_argument("--keep", type=int, default=20, metavar="N", help="recordings to keep (20; 0: none)")
    parser.add_argument("--json", action="store_true", help="one JSON event per line")
    parser.add_argument("--levels", action="store_true", help="with --json, include input level events")
    parser.add_argument("--stats", action="store_true", help="print latency percentiles at the end")
    parser.add_argument("--file", dest="files", type=Path, action="append", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--for", dest="duration", type=float, metavar="SECONDS", help="stop after this long")
    add_model_options(parser)
    add_vocabulary_options(parser)
    parser.set_defaults(func=run)


def _mic_spec(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def event_json(event: Any) -> str:
    """One event as a JSON line: its fields plus `"event": "<type>"`."""
    fields = asdict(event)
    for key, value in list(fields.items()):
        if isinstance(value, Path):
            fields[key] = str(value)
    if type(event).__name__ == "Final":
        fields["timings"]["stop_to_final_ms"] = round(event.timings.stop_to_final_ms, 1)
    return json.dumps({"event": type(event).__name__.lower(), **fields}, ensure_ascii=False)


class _Printer:
    """Partials on one line rewritten in place (on a terminal), finals on their own lines."""

    def __init__(self, partials: bool) -> None:
        self.partials = partials
        self.tty = sys.stdout.isatty()
        self._shown = False
        self._last = ""

    def partial(self, text: str) -> None:
        if not self.partials or text == self._last:
            return
        self._last = text
        if self.tty:
            width = 200
            sys.stdout.write("\r\x1b[K" + text[-width:])
            self._shown = True
        else:
            sys.stdout.write(f"… {text}\n")
        sys.stdout.flush()

    def final(self, text: str) -> None:
        self._last = ""
        if self._shown:
            sys.stdout.write("\r\x1b[K")
            self._shown = False
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """Load the model on the engine thread, open the microphone, print events until Ctrl+C or end of input."""
    from stt.dictation import Dictation, DictationOptions
    from stt.engine import Recognizer
    from stt.errors import PerchError
    from stt.events import Error, Event, Final, Level, Listening, Partial
    from stt.latency import LatencyLog
    from stt.recordings import RecordingStore
    from stt.sources import AudioSource
    from stt.worker import EngineWorker, PartialsChoice, WorkerOptions

    setup_logging(args.debug)
    events: queue.Queue[Event | None] = queue.Queue()
    try:
        files = model_files(args)
        chosen = read_vocabulary(args)
    except PerchError as exc:
        error(str(exc))
        return 1
    options = runtime_options(args)

    def load() -> Recognizer:
        recognizer = Recognizer(files, options)
        apply_vocabulary(recognizer, chosen)
        return recognizer

    partials: PartialsChoice = args.preset if args.partials or args.final == "streaming" else "off"
    worker = EngineWorker(
        load,
        events.put,
        WorkerOptions(partials=partials, final=args.final),
        store := RecordingStore(keep=args.keep),
    )
    source: AudioSource
    if args.files:
        from stt.filesource import FileSource

        source = FileSource(args.files, speed=1.0)
    else:
        from stt.microphone import Microphone

        source = Microphone(_mic_spec(args.mic))
    dictation = Dictation(
        source, worker, events.put, DictationOptions(mode=args.mode, preroll_ms=args.preroll_ms), store=store
    )
    print("perch: loading the model…", file=sys.stderr)
    worker.start()
    worker.ready.wait()
    if worker.load_error is not None:
        error(worker.load_error)
        return 1
    assert worker.recognizer is not None
    for note in worker.recognizer.report.notes:
        print(f"perch: {note}", file=sys.stderr)
    try:
        dictation.open()
        if args.mode == "handsfree" or args.files:
            dictation.start()
    except PerchError as exc:
        error(str(exc))
        worker.close()
        return 1
    device = worker.recognizer.report.device
    if args.mode == "handsfree":
        print(f"perch: listening hands-free on {device}; Ctrl+C to quit", file=sys.stderr)
    elif not args.files:
        print(f"perch: ready on {device}: press Enter to start and stop dictating, Ctrl+C to quit", file=sys.stderr)
        threading.Thread(target=_read_enter, args=(dictation, events), daemon=True).start()
    if args.duration is not None:
        timer = threading.Timer(args.duration, events.put, (None,))
        timer.daemon = True
        timer.start()
    if args.files:
        threading.Thread(target=_end_of_files, args=(source, dictation, events), daemon=True).start()

    latency = LatencyLog()
    printer = _Printer(args.partials)
    status = 0
    try:
        while True:
            event = events.get()
            if event is None:
                break
            if args.json:
                if not isinstance(event, Level) or args.levels:
                    print(event_json(event), flush=True)
            elif isinstance(event, Partial):
                printer.partial(event.text)
            elif isinstance(event, Final):
                printer.final(event.text)
            elif isinstance(event, Error):
                error(event.message)
            elif isinstance(event, Listening) and args.mode != "handsfree":
                print("perch: recording… (Enter to stop)", file=sys.stderr)
            if isinstance(event, Final):
                latency.add_final(event)
            if isinstance(event, Error) and event.kind == "microphone":
                status = 1
    except KeyboardInterrupt:
        pass
    finally:
        dictation.close()
        _drain(worker, events, args, printer, latency)
        worker.close()
    if args.stats:
        print(json.dumps(latency.summary()) if args.json else latency.format(), file=sys.stderr)
    return status


def _read_enter(dictation: Any, events: queue.Queue[Any]) -> None:
    """Each Enter toggles dictation; end of input quits."""
    for _line in sys.stdin:
        dictation.toggle()
    events.put(None)


def _end_of_files(source: Any, dictation: Any, events: queue.Queue[Any]) -> None:
    """Replayed files (a hidden testing aid): stop once they have played."""
    source.finished.wait()
    time.sleep(0.1)
    dictation.stop()
    events.put(None)


def _drain(worker: Any, events: queue.Queue[Any], args: argparse.Namespace, printer: _Printer, latency: Any) -> None:
    """Print the finals still being made after the stop."""
    from stt.events import Final, Idle, Level

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            if worker.pending() == 0 and not worker.busy:
                return
            continue
        if event is None or isinstance(event, Level):
            continue
        if args.json:
            print(event_json(event), flush=True)
        elif isinstance(event, Final):
            printer.final(event.text)
        if isinstance(event, Final):
            latency.add_final(event)
        if isinstance(event, Idle) and worker.pending() == 0:
            return
