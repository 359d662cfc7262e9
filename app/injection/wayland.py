"""Wayland: typing through wtype or ydotool, pasting through wl-copy and putting the old clipboard back."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from app import injection  # PASTE_SETTLE_S and _run are looked up on the package, where tests replace them
from app.injection.timing import KEYSTROKE_S, TYPE_SETUP_S, time_budget
from app.injection.types import InjectionError, Method, WindowRef, normalize_newlines


def _wl_copy(data: bytes, mime: str | None = None) -> None:
    """Offer data with wl-copy, which forks a server of its own that serves it until something else is copied."""
    command = ["wl-copy", *(["--type", mime] if mime else [])]
    try:
        subprocess.run(command, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InjectionError(f"wl-copy failed: {exc}") from exc


def ydotool_socket(environ: Mapping[str, str] | None = None) -> str | None:
    """The ydotoold socket if the daemon seems to be running."""
    env = os.environ if environ is None else environ
    candidates = [env.get("YDOTOOL_SOCKET", "")]
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(str(Path(runtime) / ".ydotool_socket"))
    candidates.append("/tmp/.ydotool_socket")
    return next((path for path in candidates if path and Path(path).exists()), None)


class _WaylandTypist:
    """Shared paste for Wayland: wl-copy, the shortcut, and after PASTE_SETTLE_S the old clipboard back.

    Wayland does not tell other programs when a paste has been fetched (`wl-copy --paste-once` would be
    taken by a clipboard manager first), so the wait is a fixed one.
    """

    name = "Wayland"

    def problem(self) -> str | None:
        """Missing programs."""
        missing = [tool for tool in self._tools() if shutil.which(tool) is None]
        if missing:
            return f"typing on Wayland needs {' and '.join(missing)}; install them"
        return None

    def _tools(self) -> list[str]:
        return ["wl-copy", "wl-paste"]

    def focused_window(self) -> WindowRef | None:
        """Wayland does not tell other programs which window has the focus."""
        return None

    def copy(self, text: str) -> None:
        """wl-copy."""
        _wl_copy(text.encode())

    def paste(self, text: str) -> bool:
        """Put the text on the clipboard, press the shortcut, wait PASTE_SETTLE_S, put the old contents back."""
        previous = self._previous_clipboard()
        _wl_copy(normalize_newlines(text).encode())
        try:
            self._press_paste()
            time.sleep(injection.PASTE_SETTLE_S)
        finally:
            if previous is not None:
                with contextlib.suppress(InjectionError):
                    _wl_copy(previous[1], previous[0])
        return True

    def _previous_clipboard(self) -> tuple[str, bytes] | None:
        """The first format on the clipboard (wl-copy can offer only one when putting it back)."""
        try:
            types = injection._run(["wl-paste", "--list-types"]).split()
        except InjectionError:
            return None
        if not types:
            return None
        mime = next((t for t in types if t.startswith("text/plain")), types[0])
        done = subprocess.run(["wl-paste", "--no-newline", "--type", mime], capture_output=True, timeout=5, check=False)
        return (mime, done.stdout) if done.returncode == 0 else None

    def _press_paste(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to undo."""


class WtypeTypist(_WaylandTypist):
    """wtype: the virtual-keyboard protocol of wlroots compositors, with any Unicode character."""

    name = "Wayland (wtype)"

    def _tools(self) -> list[str]:
        return ["wtype", *super()._tools()]

    def type_text(self, text: str) -> None:
        """wtype -- TEXT."""
        injection._run(["wtype", "--", normalize_newlines(text)], timeout=10 + 0.01 * len(text))

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type unless the text is long (wtype is about as fast as XTEST)."""
        return "type" if TYPE_SETUP_S + KEYSTROKE_S * len(text) <= time_budget(text) else "paste"

    def _press_paste(self) -> None:
        injection._run(["wtype", "-M", "ctrl", "-k", "v", "-m", "ctrl"])


class YdotoolTypist(_WaylandTypist):
    """ydotool: kernel uinput through ydotoold, so it works on any compositor; keys follow a US layout."""

    name = "Wayland (ydotool)"
    KEY_LEFTCTRL = 29
    KEY_V = 47

    def _tools(self) -> list[str]:
        return ["ydotool", *super()._tools()]

    def problem(self) -> str | None:
        """Also the daemon."""
        missing = super().problem()
        if missing is None and ydotool_socket() is None:
            return "ydotool needs its daemon: start ydotoold (it needs access to /dev/uinput)"
        return missing

    def type_text(self, text: str) -> None:
        """ydotool type (right for US-layout ASCII only; `auto` pastes everything else)."""
        injection._run(["ydotool", "type", "--", normalize_newlines(text)], timeout=10 + 0.02 * len(text))

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Always paste: ydotool types key positions, which give other characters on other layouts."""
        return "paste"

    def _press_paste(self) -> None:
        ctrl, v = self.KEY_LEFTCTRL, self.KEY_V
        injection._run(["ydotool", "key", f"{ctrl}:1", f"{v}:1", f"{v}:0", f"{ctrl}:0"])
