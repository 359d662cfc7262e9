"""A system tray on the test X server (Debian's trayer), and reading windows and pixels off that server.

Test modules get the `tray_host` fixture with `from tests.tray_host import tray_host_fixture  # noqa: F401`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.screenshots import SCREENSHOTS
from tests.xserver import need_tools


def x_display(name: str) -> Any:
    import Xlib.display

    return Xlib.display.Display(name)


def walk(window: Any) -> Iterator[Any]:
    yield window
    for child in window.query_tree().children:
        yield from walk(child)


def window_pid(display: Any, window: Any) -> int | None:
    atom = display.intern_atom("_NET_WM_PID")
    try:
        prop = window.get_full_property(atom, 0)
    except Exception:
        return None
    return int(prop.value[0]) if prop is not None and len(prop.value) else None


def tray_panel(display: Any) -> Any | None:
    for window in display.screen().root.query_tree().children:
        try:
            wm_class = window.get_wm_class()
        except Exception:
            continue
        if wm_class is not None and wm_class[0] == "panel":
            return window
    return None


def embedded_icon(display: Any, panel: Any, pid: int) -> Any | None:
    """The window of process `pid` inside the tray panel, once it is there."""
    for window in walk(panel):
        if window != panel and window_pid(display, window) == pid:
            return window
    return None


def mapped_windows_of(display: Any, pid: int) -> list[Any]:
    mapped = []
    for window in display.screen().root.query_tree().children:
        try:
            viewable = window.get_attributes().map_state == 2  # IsViewable
        except Exception:
            continue
        if viewable and window_pid(display, window) == pid:
            mapped.append(window)
    return mapped


def screenshot(display: Any, name: str, box: tuple[int, int, int, int]) -> None:
    """Save part of the X screen as docs/screenshots/NAME (only with PERCH_SCREENSHOTS=1)."""
    if os.environ.get("PERCH_SCREENSHOTS") != "1":
        return
    import Xlib.X
    from PySide6.QtGui import QImage

    x, y, width, height = box
    raw = display.screen().root.get_image(x, y, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF)
    image = QImage(raw.data, width, height, width * 4, QImage.Format.Format_RGB32)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert image.copy().save(str(SCREENSHOTS / name))


@pytest.fixture(name="tray_host")
def tray_host_fixture(xvfb_display: str) -> Iterator[subprocess.Popen[bytes]]:
    """trayer docked at the top right of the test display."""
    need_tools("trayer")
    env = dict(os.environ, DISPLAY=xvfb_display)
    command = ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32"]
    host = subprocess.Popen([*command, "--SetDockType", "true"], env=env, stderr=subprocess.DEVNULL)
    display = x_display(xvfb_display)
    deadline = time.monotonic() + 10
    while tray_panel(display) is None:
        assert host.poll() is None, "trayer exited"
        assert time.monotonic() < deadline, "trayer never showed its panel"
        time.sleep(0.05)
    display.close()
    yield host
    host.terminate()
    host.wait(timeout=10)


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True, timeout=10)
