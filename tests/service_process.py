"""A `perch serve` subprocess for the service tests: a free port, and waiting on `/health` for the model."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


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
