"""`perch ptt press|release`, `perch toggle`, `perch cancel`, `perch quit`: drive the running app."""

from __future__ import annotations

from typing import Any

from app.commands.common import error


def add_parsers(subparsers: Any) -> None:
    """Register the commands."""
    ptt = subparsers.add_parser("ptt", help="push-to-talk key for desktop key bindings: press or release")
    ptt.add_argument("action", choices=("press", "release"))
    ptt.set_defaults(func=lambda a: _send(f"ptt {a.action}"))
    status = subparsers.add_parser("status", help="the running app's state: loading, idle, recording, …")
    status.set_defaults(func=lambda _a: _send("status", show=True))
    for name, text in (
        ("toggle", "start or stop dictation in the running app"),
        ("cancel", "drop the utterance being recorded"),
        ("quit", "quit the running app"),
    ):
        sub = subparsers.add_parser(name, help=text, description=text)
        sub.set_defaults(func=lambda _a, n=name: _send(n))


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
