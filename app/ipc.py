"""One Perch per user: a local socket that takes commands (`perch toggle`, `perch ptt press`, …) from outside."""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("perch.ipc")

COMMANDS = ("ptt press", "ptt release", "toggle", "cancel", "quit", "show", "status", "files")
WITH_ARGUMENT = ("transcribe", "show")
"""Commands followed by a space and their argument: `transcribe` takes a JSON list of file paths, `show` a
window's name (`WINDOWS`)."""
WINDOWS = ("settings", "history", "transcribe", "check-setup")
"""What the running app accepts, one per line; it answers `ok` or `error: <why>`."""


def socket_path() -> str:
    """The socket (a named pipe name on Windows) the running app listens on, private to this user."""
    if os.name == "nt":
        return f"perch-{os.environ.get('USERNAME', 'user')}"
    fallback = Path(tempfile.gettempdir()) / f"perch-{os.getuid()}"
    runtime = fallback
    if sys.platform == "darwin" or os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(platformdirs.user_runtime_dir("perch", appauthor=False))
    try:
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        runtime = fallback
        runtime.mkdir(exist_ok=True, mode=0o700)
    return str(runtime / "perch.sock")


def send(command: str, timeout_ms: int = 2000) -> str | None:
    """Send one command to the running app; its answer, or None when no Perch is running.

    Plain sockets (a named pipe on Windows), so that any process or thread can send without Qt.
    """
    path = socket_path()
    try:
        if os.name == "nt":
            with Path(rf"\\.\pipe\{path}").open("r+b", buffering=0) as pipe:
                pipe.write(command.encode() + b"\n")
                answer = pipe.readline()
        else:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(timeout_ms / 1000)
                client.connect(path)
                client.sendall(command.encode() + b"\n")
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
    except OSError:
        return None
    return answer.decode(errors="replace").strip() or None


class CommandServer(QObject):
    """Listens on the socket and hands each command line to `handle`, which returns the answer."""

    def __init__(self, handle: Callable[[str], str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handle = handle
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)

    def listen(self) -> bool:
        """Start listening, replacing a socket file left behind by a crashed instance."""
        path = socket_path()
        if self._server.listen(path):
            return True
        QLocalServer.removeServer(path)
        if self._server.listen(path):
            return True
        log.error("cannot listen on %s: %s", path, self._server.errorString())
        return False

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._server.close()

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            connection.readyRead.connect(partial(self._read, connection))
            connection.disconnected.connect(connection.deleteLater)
            self._read(connection)  # the command may have arrived with the connection

    def _read(self, connection: QLocalSocket) -> None:
        if not connection.canReadLine():
            return
        line = bytes(connection.readLine().data()).decode(errors="replace").strip()
        if line in COMMANDS or line.partition(" ")[0] in WITH_ARGUMENT:
            try:
                answer = self._handle(line)
            except Exception as exc:  # a command must never take the app down
                log.exception("command %r failed", line)
                answer = f"error: {exc}"
        else:
            answer = f"error: unknown command {line!r}; known: {', '.join(COMMANDS)}"
        connection.write(answer.encode() + b"\n")
        connection.flush()
