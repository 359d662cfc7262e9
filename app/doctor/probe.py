"""Starting the typing test window (`app.doctor.probe_window`) and talking to it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from app.doctor.fixes import install_command

START_TIMEOUT_S = 15.0
ANSWER_TIMEOUT_S = 5.0
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds the `app` package, so that the window's process finds it in a source checkout too."""
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


class ProbeError(Exception):
    """The test window could not be started or stopped answering; the message says what to do."""


def child_environment(environ: Mapping[str, str], platform_plugin: str | None = None) -> dict[str, str]:
    """The test window's environment: on a real screen, with `app` importable."""
    env = dict(environ)
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] in HEADLESS_PLATFORMS:
        del env["QT_QPA_PLATFORM"]
    if platform_plugin is not None:
        env["QT_QPA_PLATFORM"] = platform_plugin
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), path) if p)
    return env


class Probe:
    """The test window in its own process; use as a context manager, which closes it."""

    def __init__(self, environ: Mapping[str, str], python: str, platform_plugin: str | None = None) -> None:
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
        self._lines: queue.Queue[str | None] = queue.Queue()
        try:
            self.process = subprocess.Popen(
                [python, "-m", "app.doctor.probe_window"],
                env=child_environment(environ, platform_plugin),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
            )
        except OSError as exc:
            self._log.close()
            raise ProbeError(f"the typing test window could not be started: {exc}") from exc
        threading.Thread(target=self._read, name="perch-probe-reader", daemon=True).start()
        started = time.monotonic()
        try:
            hello = self._answer(START_TIMEOUT_S)
        except ProbeError as exc:
            problem = self._startup_problem(str(exc))
            self.close()
            raise ProbeError(problem) from None
        self.start_seconds = time.monotonic() - started
        if not isinstance(hello.get("window"), int) or not isinstance(hello.get("pid"), int):
            self.close()
            raise ProbeError(f"the typing test window did not say which window it is ({hello})")
        self.window = int(hello["window"])
        self.pid = int(hello["pid"])

    def __enter__(self) -> Probe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for raw in stdout:
            self._lines.put(raw.decode("utf-8", "replace").strip())
        self._lines.put(None)

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ProbeError(f"the typing test window did not answer within {timeout:g} s") from None
        if line is None:
            raise ProbeError("the typing test window closed")
        try:
            reply = json.loads(line)
        except ValueError:
            raise ProbeError(f"the typing test window said {line[:200]!r}") from None
        if not isinstance(reply, dict):
            raise ProbeError(f"the typing test window said {line[:200]!r}")
        return reply

    def _startup_problem(self, reason: str) -> str:
        """Why the window did not come up, with the fix for the usual causes."""
        log = self.stderr()
        if 'platform plugin "xcb"' in log or "xcb-cursor" in log:
            return (
                "the typing test window cannot open: Qt's X11 platform plugin is missing libraries; "
                f"{install_command('xcb-cursor')} (and the other libxcb-* libraries Qt needs)"
            )
        if "could not connect to display" in log.lower() or "failed to create wl_display" in log.lower():
            return f"the typing test window cannot reach the display ({log.strip().splitlines()[-1]})"
        last = log.strip().splitlines()[-1] if log.strip() else reason
        return f"the typing test window did not start: {last}"

    def stderr(self) -> str:
        """What the window's process wrote to stderr so far (the last few kB)."""
        try:
            self._log.seek(0)
            return self._log.read().decode(errors="replace")[-4000:]
        except (OSError, ValueError):
            return ""

    def request(self, command: str, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
        """Send one command and return its answer."""
        stdin = self.process.stdin
        if stdin is None or self.process.poll() is not None:
            raise ProbeError("the typing test window has closed")
        try:
            stdin.write(command.encode() + b"\n")
            stdin.flush()
        except OSError as exc:
            raise ProbeError(f"the typing test window has closed: {exc}") from exc
        return self._answer(timeout)

    def state(self) -> tuple[bool, str]:
        """Whether the window has the focus, and the field's text."""
        reply = self.request("state")
        return bool(reply.get("active")), str(reply.get("text", ""))

    def clear(self) -> None:
        """Empty the field (and ask for the focus again)."""
        self.request("clear")

    def clipboard(self) -> str:
        """The clipboard's text as the window's toolkit reads it."""
        return str(self.request("clipboard").get("clipboard", ""))

    def wait_text(self, expected: str, timeout: float) -> str:
        """Poll the field until it holds `expected` or has not changed for a while; what it holds then."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            _, text = self.state()
            now = time.monotonic()
            if text == expected or now >= deadline:
                return text
            if text != last:
                last, since = text, now
            elif text and now - since > 0.5:  # something arrived and then nothing more for half a second
                return text
            time.sleep(0.02)

    def wait_active(self, timeout: float) -> bool:
        """Wait until the window has the focus."""
        deadline = time.monotonic() + timeout
        while True:
            active, _ = self.state()
            if active or time.monotonic() >= deadline:
                return active
            time.sleep(0.02)

    def close(self) -> None:
        """Ask the window to quit; kill it if it does not."""
        if self.process.poll() is None and self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.write(b"quit\n")
                self.process.stdin.flush()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            self._log.close()
