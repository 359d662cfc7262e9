"""`perch serve`: an OpenAI-compatible transcription API on this machine, until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.commands.common import add_model_options, error, model_files, runtime_options, setup_logging

if TYPE_CHECKING:
    from app.service.wyoming_server import WyomingOptions


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
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web page origin allowed to call the API (e.g. http://localhost:3000; it still needs the token)",
    )
    add_wyoming_options(parser)
    add_model_options(parser)
    parser.set_defaults(func=run)


def add_wyoming_options(parser: argparse.ArgumentParser) -> None:
    """`--wyoming` and where it listens."""
    from app.service.wyoming_server import DEFAULT_WYOMING_HOST, DEFAULT_WYOMING_PORT

    group = parser.add_argument_group("Wyoming (Home Assistant)")
    group.add_argument("--wyoming", action="store_true", help="also serve the Wyoming protocol (no authentication)")
    group.add_argument(
        "--wyoming-port", type=int, default=DEFAULT_WYOMING_PORT, metavar="PORT", help=f"({DEFAULT_WYOMING_PORT})"
    )
    group.add_argument(
        "--wyoming-host", default=DEFAULT_WYOMING_HOST, metavar="ADDR", help=f"({DEFAULT_WYOMING_HOST}: this machine)"
    )
    group.add_argument(
        "--wyoming-allow",
        nargs="+",
        action="extend",
        default=[],
        metavar="ADDR",
        help="client addresses or networks let in besides this machine (needed with another --wyoming-host)",
    )


def wyoming_options(args: argparse.Namespace) -> WyomingOptions | None:
    """The Wyoming options, None without `--wyoming`; raises ValueError with what to do."""
    from app.service.server import is_loopback
    from app.service.wyoming_server import WyomingOptions, parse_allowed

    if not args.wyoming:
        return None
    if not 0 < args.wyoming_port < 65536:
        raise ValueError("--wyoming-port must be between 1 and 65535")
    try:
        allowed = parse_allowed(args.wyoming_allow)
    except ValueError as exc:
        raise ValueError(f"--wyoming-allow: {exc}") from None
    if not is_loopback(args.wyoming_host) and not allowed:
        raise ValueError(
            f"Wyoming has no authentication: to listen on {args.wyoming_host}, name the clients allowed with "
            "--wyoming-allow ADDR (e.g. Home Assistant's address)"
        )
    return WyomingOptions(host=args.wyoming_host, port=args.wyoming_port, allowed=allowed, debug=args.debug)


def web_origin(value: str) -> str:
    """`--allow-origin` as browsers send it (`scheme://host[:port]`); raises ValueError with what to do."""
    scheme, sep, rest = value.strip().rstrip("/").lower().partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
        raise ValueError(f"--allow-origin {value!r}: give an origin such as http://localhost:3000 (no path)")
    return f"{scheme}://{rest}"


def run(args: argparse.Namespace) -> int:
    """Load the model on the engine thread and serve until interrupted."""
    from app.service.recognition import WorkerTranscriber
    from app.service.server import ServiceOptions, ServiceStartError, build_server, is_loopback
    from app.service.token import load_or_create_token, token_path
    from app.service.wyoming_server import WyomingStartError, serve_with
    from stt.engine import Recognizer
    from stt.errors import PerchError
    from stt.events import Error, Event
    from stt.worker import EngineWorker, WorkerOptions

    setup_logging(args.debug)
    if args.max_sessions < 1 or not 0 < args.port < 65536:
        error("--max-sessions must be 1 or more and --port between 1 and 65535")
        return 2
    try:
        wyoming = wyoming_options(args)
        origins = tuple(web_origin(o) for o in args.allow_origin)
    except ValueError as exc:
        error(str(exc))
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
        allowed_origins=origins,
        allowed_hosts=tuple(args.allow_host),
        debug=args.debug,
    )
    try:
        server = build_server(WorkerTranscriber(worker, name), service)
    except ServiceStartError as exc:
        error(str(exc))
        return 1
    where = "given with --token" if args.token else f"in {token_path()}"
    print(f"perch: serving {name} at {service.url} (token {where}); Ctrl+C stops", flush=True)
    wyoming_server = None
    if wyoming is not None:
        from app import __version__
        from app.service.wyoming_server import WyomingServer

        wyoming_server = WyomingServer(WorkerTranscriber(worker, name), wyoming, __version__)
        if not args.debug:  # refused and dropped clients are worth seeing; the log never holds audio or text
            logging.getLogger("perch.service.wyoming").setLevel(logging.INFO)
        print(f"perch: Wyoming for Home Assistant at {wyoming_server.uri}", flush=True)
    failed = threading.Event()

    def stop_if_the_model_fails() -> None:
        worker.ready.wait()
        if worker.load_error is not None:
            failed.set()
            server.should_exit = True

    worker.start()
    threading.Thread(target=stop_if_the_model_fails, name="perch-serve-load", daemon=True).start()
    try:
        if wyoming_server is None:
            server.run()
        else:
            asyncio.run(serve_with(server, wyoming_server))
    except KeyboardInterrupt:
        pass  # uvicorn has shut down cleanly and re-raises the signal it caught
    except WyomingStartError as exc:
        error(f"{exc} (choose another --wyoming-port)")
        failed.set()
    finally:
        server.close_sockets()
        worker.close()
    logging.getLogger("perch.service").info("stopped")
    if failed.is_set() or not server.started:
        return 1
    print("perch: stopped", file=sys.stderr)
    return 0
