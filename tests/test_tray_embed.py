"""The tray icon on a real X server: it embeds in a tray host (Debian's trayer), its menu opens, clicks toggle.

Without a tray host, the control window appears instead.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.tray_host import (
    embedded_icon,
    mapped_windows_of,
    screenshot,
    tray_host_fixture,  # noqa: F401  (the `tray_host` fixture)
    tray_panel,
    x_display,
    xdotool,
)
from tests.xserver import need_tools


def test_the_tray_icon_embeds_and_its_menu_and_click_work(
    tray_host: subprocess.Popen[bytes], perch_app: Callable[..., App], xvfb_display: str
) -> None:
    need_tools("xdotool")
    started = time.monotonic()
    perch = perch_app(mode="toggle")
    display = x_display(xvfb_display)
    panel = tray_panel(display)
    icon = None
    while icon is None:
        assert perch.process.poll() is None, (perch.home / "stderr.txt").read_text()
        assert time.monotonic() - started < 20, "the tray icon never embedded"
        icon = embedded_icon(display, panel, perch.process.pid)
        time.sleep(0.01)
    print(f"tray icon embedded {(time.monotonic() - started) * 1000:.0f} ms after the process started")
    perch.wait_status("idle")
    geometry = icon.get_geometry()
    position = icon.translate_coords(display.screen().root, 0, 0)
    x, y = -position.x + geometry.width // 2, -position.y + geometry.height // 2

    # The context menu: a popup window of the app appears next to the icon.
    before = {w.id for w in mapped_windows_of(display, perch.process.pid)}
    xdotool(xvfb_display, "mousemove", str(x), str(y), "click", "3")
    deadline = time.monotonic() + 10
    popups: list[Any] = []
    while not popups:
        assert time.monotonic() < deadline, "the tray menu never opened"
        popups = [w for w in mapped_windows_of(display, perch.process.pid) if w.id not in before]
        time.sleep(0.05)
    time.sleep(0.3)  # let it paint
    menu = popups[0].get_geometry()
    menu_at = popups[0].translate_coords(display.screen().root, 0, 0)
    left = max(0, min(-menu_at.x, x) - 20)
    right = min(display.screen().width_in_pixels, max(-menu_at.x + menu.width, x) + 20)
    screenshot(display, "tray-menu.png", (left, 0, right - left, min(800, -menu_at.y + menu.height + 20)))
    xdotool(xvfb_display, "key", "Escape")

    # A left click toggles dictation.
    xdotool(xvfb_display, "mousemove", str(x), str(y), "click", "1")
    perch.wait_status("recording")
    xdotool(xvfb_display, "click", "1")
    perch.wait_status("idle")
    display.close()


def test_without_a_tray_host_a_control_window_appears(perch_app: Callable[..., App], xvfb_display: str) -> None:
    perch = perch_app()  # the tray_host fixture's trayer is gone by now
    perch.wait_status("idle")
    display = x_display(xvfb_display)
    deadline = time.monotonic() + 10
    titles: list[str] = []
    while not any(title.startswith("Perch") for title in titles):
        assert time.monotonic() < deadline, f"no control window (windows: {titles})"
        titles = [str(w.get_wm_name() or "") for w in mapped_windows_of(display, perch.process.pid)]
        time.sleep(0.05)
    display.close()
    assert "no system tray is available" in perch.log()


def test_each_click_of_a_quick_pair_toggles(qtbot: Any) -> None:
    """Qt reports the second of two quick clicks as a double click: it must toggle too, or a quick start-and-stop
    leaves dictation on."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QSystemTrayIcon

    from app.gui.tray import Tray

    clicks: list[int] = []
    tray = Tray(QIcon(), lambda menu: None, lambda: clicks.append(1))
    reason = QSystemTrayIcon.ActivationReason
    for each in (reason.Trigger, reason.DoubleClick, reason.Context, reason.MiddleClick):
        tray.icon.activated.emit(each)
    assert len(clicks) == 2
