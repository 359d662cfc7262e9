"""`perch ptt press|release`, `perch toggle`, `perch cancel`, `perch quit`, `perch open`, `perch files`: drive the
running app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.commands.common import error


def add_parsers(subparsers: Any) -> None:
    """Register the commands."""
    ptt = subparsers.add_parser("ptt", help="push-to-talk key for desktop key bindings: press or release")
    ptt.add_argument("action", choices=("press", "release"))
    ptt.set_defaults(func=lambda a: _send(f"ptt {a.action}"))
    status = subparsers.add_parser("status", help="the running app's state: loading, idle, recording, …")
    status.set_defaults(func=lambda _a: _send("status", show=True))
    opener = subparsers.add_parser(
        "open",
        help="transcribe audio files in the running app (its Transcribe window)",
        description="Hand audio files to the running app, which transcribes them after any dictation.",
    )
    opener.add_argument("files", nargs="+", type=Path, metavar="FILE")
    opener.set_defaults(func=_open)
    show = subparsers.add_parser("show", help="open one of the running app's windows")
    show.add_argument("window", choices=("settings", "history", "transcribe", "check-setup"))
    show.set_defaults(func=lambda a: _send(f"show {a.window}"))
    files = subparsers.add_parser("files", help="the running app's file transcriptions, as JSON")
    files.set_defaults(func=lambda _a: _send("files", show=True))
    for name, text in (
        ("toggle", "start or stop dictation in the running app"),
        ("cancel", "drop the utterance being recorded"),
        ("quit", "quit the running app"),
    ):
        sub = subparsers.add_parser(name, help=text, description=text)
        sub.set_defaults(func=lambda _a, n=name: _send(n))


def _open(args: Any) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        error(f"no such file: {', '.join(missing)}")
        return 1
    return _send("transcribe " + json.dumps([str(p.resolve()) for p in args.files]))


def _send(command: str, *, show: bool = False) -> int:
    from app import ipc

    answer = ipc.send(command)
    if answer is None:
        error("Perch is not running; start it with `perch`")
        return 1
    if answer.startswith("error: "):
        error(answer.removeprefix("error: "))
        return 1
    if show:
        print(answer)
    return 0
