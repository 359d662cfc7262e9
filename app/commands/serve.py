"""`perch serve`: an OpenAI-compatible transcription API on this machine, until Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from app.commands.common import add_model_options, error, model_files, runtime_options, setup_logging


def add_parser(subparsers: Any) -> None:
    """Register the command."""
    from app.service.server import DEFAULT_HOST, DEFAULT_PORT

    parser = subparsers.add_parser("serve", help="serve the OpenAI-compatible transcription API", description=__doc__)
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST}: this machine only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port ({DEFAULT_PORT})")
    parser.add_argument("--token", help="bearer token clients must send (default: one generated and kept for you)")
    parser.add_argument("--max-sessions", type=int, default=4, metavar="N", help="transcriptions at once (4)")
    parser.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME", help="another Host name clients may use"
    )
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model on the engine thread and serve until interrupted."""
    from app.service.recognition import WorkerTranscriber
    from app.service.server import ServiceOptions, build_server, is_loopback
    from app.service.token import load_or_create_token, token_path
    from stt.engine import Recognizer
    from stt.errors import PerchError
    from stt.events import Error, Event
    from stt.worker import EngineWorker, WorkerOptions

    setup_logging(args.debug)
    if args.max_sessions < 1 or not 0 < args.port < 65536:
        error("--max-sessions must be 1 or more and --port between 1 and 65535")
        return 2
    if not is_loopback(args.host):
        print(
            f"perch: warning: listening on {args.host}: other machines can reach the service; "
            "they need the token, and the audio travels unencrypted",
            file=sys.stderr,
        )
    try:
        files = model_files(args)
        token = args.token or load_or_create_token()
    except (PerchError, OSError) as exc:
        error(str(exc))
        if args.debug:
            traceback.print_exc()
        return 1

    def report(event: Event) -> None:
        if isinstance(event, Error):
            error(event.message)

    options = runtime_options(args)
    worker = EngineWorker(lambda: Recognizer(files, options), report, WorkerOptions(partials="off"))
    name = Path(args.model).name if Path(args.model).is_dir() else str(args.model)
    service = ServiceOptions(
        token=token,
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        allowed_hosts=tuple(args.allow_host),
        debug=args.debug,
    )
    server = build_server(WorkerTranscriber(worker, name), service)
    where = "given with --token" if args.token else f"in {token_path()}"
    print(f"perch: serving {name} at {service.url} (token {where}); Ctrl+C stops", flush=True)
    failed = threading.Event()

    def stop_if_the_model_fails() -> None:
        worker.ready.wait()
        if worker.load_error is not None:
            failed.set()
            server.should_exit = True

    worker.start()
    threading.Thread(target=stop_if_the_model_fails, name="perch-serve-load", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn has shut down cleanly and re-raises the signal it caught
    finally:
        worker.close()
    logging.getLogger("perch.service").info("stopped")
    if failed.is_set() or not server.started:
        return 1
    print("perch: stopped", file=sys.stderr)
    return 0
