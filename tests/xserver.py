"""A private X server (Xvfb, no window manager) and text windows in other processes to type into.

Tests get the `xvfb_display` fixture, and `qt_xcb` (that display, skipping the test when Qt's X11 platform plugin
cannot load here) for tests that show Qt windows on it, from tests/conftest.py. `TargetWindows` starts
tests/target_window.py on that display.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0
QT_XCB_PACKAGES = (
    "libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
    "libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1"
)
"""The Debian packages Qt's xcb platform plugin loads beyond libxcb itself (as .ci/run installs them)."""
QT_XCB_PROBE = "from PySide6.QtGui import QGuiApplication; QGuiApplication([]); print('ok')"


def _tied(command: list[str]) -> list[str]:
    """The command set to get SIGTERM when the test process dies, so that no server outlives a killed run."""
    return ["setpriv", "--pdeathsig", "TERM", "--", *command] if shutil.which("setpriv") else command


def _read_line(stream: int, timeout: float) -> str:
    """One line from a pipe, or what arrived before the timeout or end of file."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
            break
        chunk = os.read(stream, 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _answers(display: str) -> bool:
    """Whether the X server on `display` answers a client."""
    env = dict(os.environ, DISPLAY=display)
    if shutil.which("xdpyinfo"):
        done = subprocess.run(["xdpyinfo"], env=env, capture_output=True, timeout=10, check=False)
        return done.returncode == 0
    import Xlib.display
    import Xlib.error

    try:
        Xlib.display.Display(display).close()
    except (Xlib.error.DisplayError, OSError):
        return False
    return True


@pytest.fixture(scope="session", name="xvfb_display")
def xvfb_display_fixture() -> Iterator[str]:
    """An Xvfb display (1280x800, 24 bits) for the session; DISPLAY points at it while it runs."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    with tempfile.TemporaryFile() as log:
        read, write = os.pipe()
        command = ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"]
        server = subprocess.Popen(_tied(command), pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=log)
        os.close(write)
        try:
            number = _read_line(read, START_TIMEOUT_S)
        finally:
            os.close(read)
        display = f":{number}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while number and not _answers(display) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not number or server.poll() is not None or not _answers(display):
            server.kill()
            server.wait()
            log.seek(0)
            pytest.fail(f"Xvfb did not start: {log.read().decode(errors='replace')[-2000:]}")
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("DISPLAY", display)
                patch.delenv("WAYLAND_DISPLAY", raising=False)
                yield display
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@functools.cache
def qt_xcb_missing(display: str) -> str | None:
    """Why Qt's xcb platform plugin cannot start on `display`, with the packages to install; None when it can.

    Probed once per display, in a subprocess, since a plugin that cannot load aborts the process.
    """
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", QT_DEBUG_PLUGINS="1")
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-c", QT_XCB_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode == 0:
        return None
    if 'platform plugin "xcb"' not in done.stderr:
        raise RuntimeError(f"Qt could not start on {display} for another reason: {done.stderr[-2000:]}")
    library = re.search(r"libqxcb\.so: \(?(?:[^:\s]*/)?([^:/\s(]+): ", done.stderr)
    missing = f" ({library.group(1)}: cannot load)" if library else ""
    return f"Qt's xcb platform plugin cannot load{missing}: apt-get install {QT_XCB_PACKAGES}"


def need_qt_xcb(display: str) -> None:
    """Skip the test, naming the packages, when Qt windows cannot open on `display`."""
    reason = qt_xcb_missing(display)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(name="qt_xcb")
def qt_xcb_fixture(xvfb_display: str) -> str:
    """The Xvfb display, for a test that shows Qt windows on it (platform xcb); skips when Qt cannot."""
    need_qt_xcb(xvfb_display)
    return xvfb_display


class TargetWindows:
    """tests/target_window.py in its own process: editors "main" and "other" that mirror their text to files."""

    def __init__(self, display: str, folder: Path) -> None:
        need_qt_xcb(display)
        self.display = display
        self.folder = folder
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
        self.process = subprocess.Popen(
            _tied([sys.executable, "-m", "tests.target_window", str(folder)]),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        line = self._reply(START_TIMEOUT_S)
        if not line.startswith("{"):
            message = self.stderr()
            self.close()
            raise RuntimeError(f"the target windows did not start: {message}")
        self.ids: dict[str, int] = json.loads(line)

    def stderr(self) -> str:
        """What the process wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def _reply(self, timeout: float = 10.0) -> str:
        assert self.process.stdout is not None
        return _read_line(self.process.stdout.fileno(), timeout)

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Send one command (see tests/target_window.py) and return its one-line answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        reply = self._reply(timeout)
        if not reply:
            raise RuntimeError(f"no answer to {line!r}: {self.stderr()}")
        return reply

    def text(self, name: str = "main") -> str:
        """What the editor holds now."""
        return (self.folder / f"{name}.txt").read_text(encoding="utf-8")

    def wait_text(self, expected: str, name: str = "main", timeout: float = 5.0) -> str:
        """Wait until the editor holds `expected` (or the timeout); the text it holds then."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(name)
            if text == expected or time.monotonic() >= deadline:
                return text
            time.sleep(0.005)

    def settle(self, name: str = "main", quiet: float = 0.2, timeout: float = 5.0) -> str:
        """Wait until the editor's text has not changed for `quiet` seconds; that text."""
        deadline = time.monotonic() + timeout
        text, since = self.text(name), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.01)
            now = self.text(name)
            if now != text:
                text, since = now, time.monotonic()
        return text

    def focus(self, name: str = "main") -> int:
        """Give the window the input focus (there is no window manager) and check that it has it."""
        window = self.ids[name]
        env = dict(os.environ, DISPLAY=self.display)
        for _ in range(20):
            subprocess.run(["xdotool", "windowfocus", "--sync", str(window)], env=env, check=True, timeout=10)
            done = subprocess.run(
                ["xdotool", "getwindowfocus"], env=env, capture_output=True, text=True, check=True, timeout=10
            )
            if int(done.stdout.strip() or 0) == window:
                return window
            time.sleep(0.05)
        raise RuntimeError(f"window {name} ({window:#x}) did not get the focus")

    def close(self) -> None:
        """Quit the process."""
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.write(b"quit\n")
                self.process.stdin.flush()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()


def need_tools(*tools: str) -> None:
    """Skip the test, naming the Debian package, when a command-line tool is missing."""
    packages = {"xdotool": "xdotool", "setxkbmap": "x11-xkb-utils", "xdpyinfo": "x11-utils"}
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {packages.get(tool, tool)})")


def push_to_talk(display: str, app: Any, speak: Callable[[], object]) -> None:
    """Hold the push-to-talk hotkey (Ctrl+Alt+Space) on `display` with xdotool, wait until `app` records,
    run `speak` (which plays the speech), and let go."""
    keys = dict(os.environ, DISPLAY=display)
    subprocess.run(["xdotool", "keydown", "ctrl+alt+space"], env=keys, check=True, timeout=10)
    try:
        app.wait_status("recording")
        speak()
    finally:
        subprocess.run(["xdotool", "keyup", "space", "alt", "ctrl"], env=keys, check=True, timeout=10)
