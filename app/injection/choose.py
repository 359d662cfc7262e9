"""Choosing the typist for this desktop, and the clipboard-only fallback where none can type."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping

from app.injection.macos import MacTypist
from app.injection.portal import PortalTypist, remote_desktop_missing
from app.injection.types import InjectionError, Method, Typist, WindowRef, normalize_newlines
from app.injection.wayland import WtypeTypist, YdotoolTypist, _wl_copy, ydotool_socket
from app.injection.windows import WindowsTypist
from app.injection.x11_clipboard import X11Clipboard
from app.injection.x11_clipboard_formats import text_formats
from app.injection.x11_typist import X11Typist


def choose_typist(
    strategy: str = "auto",
    copy: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> Typist:
    """The typist for this desktop; `copy` (a Qt clipboard setter, say) serves the clipboard-only fallback.

    On Wayland: wtype, else ydotool with its daemon, else the RemoteDesktop portal where the session bus has one
    (asked with a short timeout), else copying only.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if strategy == "clipboard":
        return ClipboardOnlyTypist("typing is set to clipboard only", copy, env)
    if platform == "win32":
        return WindowsTypist()
    if platform == "darwin":
        return MacTypist()
    if env.get("WAYLAND_DISPLAY"):
        if shutil.which("wtype"):
            return WtypeTypist()
        if shutil.which("ydotool") and ydotool_socket(env) is not None:
            return YdotoolTypist()
        missing = remote_desktop_missing(env)
        if missing is None:
            return PortalTypist(env, copy=copy)
        return ClipboardOnlyTypist(
            "typing into Wayland windows needs wtype (Sway, Hyprland and other wlroots desktops), ydotool with "
            "its ydotoold daemon running, or the remote desktop portal of GNOME or KDE; install one of them (the "
            f"portal cannot be used: {missing})",
            copy,
            env,
        )
    if env.get("DISPLAY"):
        return X11Typist(env["DISPLAY"])
    return ClipboardOnlyTypist("there is no X11 or Wayland display to type into", copy, env)


class ClipboardOnlyTypist:
    """Only copies: the fallback where no way of typing is available."""

    name = "clipboard only"

    def __init__(
        self, reason: str, copy: Callable[[str], None] | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self.reason = reason
        self._copy = copy
        self._env = dict(os.environ if environ is None else environ)
        self._x11: X11Clipboard | None = None

    def problem(self) -> str | None:
        """Always the reason this typist was chosen."""
        return self.reason

    def focused_window(self) -> WindowRef | None:
        """Unknown."""
        return None

    def type_text(self, text: str) -> None:
        """Cannot type."""
        raise InjectionError(self.reason)

    def paste(self, text: str) -> bool:
        """Cannot paste."""
        raise InjectionError(self.reason)

    def copy(self, text: str) -> None:
        """Through the given function, else wl-copy on Wayland, else the X11 CLIPBOARD."""
        if self._copy is not None:
            self._copy(text)
        elif self._env.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
            _wl_copy(text.encode())
        elif self._env.get("DISPLAY"):
            if self._x11 is None:
                self._x11 = X11Clipboard(self._env["DISPLAY"])
            self._x11.offer(text_formats(normalize_newlines(text)))
        else:
            raise InjectionError("no clipboard is available")

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Irrelevant: nothing can be typed."""
        return "paste"

    def close(self) -> None:
        """Hand an X11 clipboard over to a clipboard manager."""
        if self._x11 is not None:
            self._x11.close()
