"""A `perch serve` subprocess for the service tests: a free port, and waiting on `/health` for the model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openai import OpenAI

from app.service.token import token_path

from .conftest import ROOT


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def has_ipv6_loopback() -> bool:
    """Whether this machine can listen on ::1 (the service then listens there too)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def health(base: str) -> int:
    """The status of `GET /health`, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_until_healthy(process: subprocess.Popen[str], base: str, output: Path, seconds: float = 60) -> None:
    """Poll `/health` (as a client waits for the model) until it answers 200; fail if the process ends first."""
    deadline = time.monotonic() + seconds
    while health(base) != 200:
        assert process.poll() is None, output.read_text()
        assert time.monotonic() < deadline, output.read_text()
        time.sleep(0.1)


@dataclass
class ServeProcess:
    """A running `perch serve`: its process, port, token and output file."""

    process: subprocess.Popen[str]
    port: int
    token: str
    output: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def openai(self) -> OpenAI:
        return OpenAI(base_url=f"{self.base}/v1", api_key=self.token, max_retries=0, timeout=60)

    def stop(self) -> str:
        """Ctrl+C, and everything it printed."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=30) == 0, self.output.read_text()
        return self.output.read_text()


@contextmanager
def serving(model: Path, folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """`perch serve --model MODEL --device cpu --port P ARGS` once the model has loaded, with its output in
    `folder`/stdout.txt and the token it generated (the tests' config folder is their own); killed at the end."""
    port = free_port()
    output = folder / "stdout.txt"
    command = [sys.executable, "-m", "app", "serve", "--model", str(model), "--device", "cpu", "--port", str(port)]
    with output.open("w") as log:
        process = subprocess.Popen(
            [*command, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env or dict(os.environ)
        )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", output)
        yield ServeProcess(process, port, token_path().read_text().strip(), output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
