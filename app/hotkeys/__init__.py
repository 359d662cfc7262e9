"""Global hotkeys with separate press and release, so push-to-talk works whichever window has the focus.

`parse_hotkey` reads the settings strings ("Ctrl+Alt+Space"); `choose_backend` picks the backend for this desktop:
X11 key grabs, the XDG GlobalShortcuts portal on Wayland, a low-level keyboard hook on Windows, a Quartz event tap
on macOS. Every backend follows the press/release rule described in `app.hotkeys.base` and calls back from a thread
of its own. Nothing here needs Qt, and each platform's libraries are loaded only when its backend runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from app.hotkeys.base import ACTIONS, Action, Callback, HotkeyBackend, PressTracker, UnavailableBackend
from app.hotkeys.keys import Hotkey, format_hotkey, parse_hotkey

__all__ = [
    "ACTIONS",
    "Action",
    "Callback",
    "Hotkey",
    "HotkeyBackend",
    "PressTracker",
    "UnavailableBackend",
    "choose_backend",
    "format_hotkey",
    "parse_hotkey",
]

XWAYLAND_LIMITATION = (
    "The hotkeys work only while an X11 (XWayland) window has the focus: X11 key grabs do not see keys typed into "
    "native Wayland windows."
)


def choose_backend(environ: Mapping[str, str] | None = None, platform: str | None = None) -> HotkeyBackend:
    """The hotkey backend for this desktop.

    Windows and macOS have one each. On Linux, a Wayland session (WAYLAND_DISPLAY) uses the GlobalShortcuts portal;
    without the portal it falls back to X11 grabs through XWayland when DISPLAY is set, which `register` reports
    as a limitation together with how to bind the keys in the desktop itself; with neither, the portal backend
    stays and its `problem()` says what to do. An X11 session (DISPLAY only) uses X11 grabs.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        from app.hotkeys.windows import WindowsBackend

        return WindowsBackend()
    if platform == "darwin":
        from app.hotkeys.macos import MacBackend

        return MacBackend()
    if env.get("WAYLAND_DISPLAY"):
        from app.hotkeys.wayland import PortalBackend

        portal = PortalBackend(env)
        if portal.problem() is None or not env.get("DISPLAY"):
            return portal
        from app.hotkeys.x11 import X11Backend

        return X11Backend(env["DISPLAY"], limitation=f"{XWAYLAND_LIMITATION} {portal.problem()}")
    if env.get("DISPLAY"):
        from app.hotkeys.x11 import X11Backend

        return X11Backend(env["DISPLAY"])
    return UnavailableBackend(
        "none",
        "there is no X11 or Wayland display, so there are no global hotkeys; bind `perch ptt press`, "
        "`perch ptt release` or `perch toggle` to keys some other way",
    )
