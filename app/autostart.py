"""Start Perch when the person logs in: an XDG autostart entry, a Windows Run value or a macOS LaunchAgent.

Nothing here needs Qt. Every change raises OSError with a message that says what went wrong and what to do.
"""

from __future__ import annotations

import configparser
import importlib
import os
import plistlib
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from stt.resources import resources_dir

APP_NAME = "Perch"
DESKTOP_FILE = "perch.desktop"
DESKTOP_MARKER = "X-Perch-Autostart"
"""Key that marks an autostart entry as written by Perch, so that only ours is ever removed."""
MACOS_LABEL = "io.github.perch.Perch"
"""The LaunchAgent label: the app's bundle identifier."""
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
"""Where Windows records that a Run entry was switched off in Task Manager or the Settings app."""
RUN_VALUE = APP_NAME
COMMENT = "Offline dictation: hold a key, speak, and the words are typed for you"

_EXEC_RESERVED = re.compile(r"""[\s"'\\><~|&;$*?#()`]""")
_WINDOWS_NEEDS_QUOTES = re.compile(r'[\s"]')


# Platforms and the launch command.


def _kind(platform: str | None) -> str:
    name = sys.platform if platform is None else platform
    if name.startswith("win"):
        return "windows"
    return "macos" if name == "darwin" else "xdg"


def launch_command() -> list[str]:
    """How a login session starts Perch: a frozen executable, the `perch` script beside Python, or `python -m app`."""
    executable = Path(sys.executable)
    if getattr(sys, "frozen", False):
        appimage = os.environ.get("APPIMAGE")
        if appimage:  # sys.executable sits in a mount that moves with every start
            return [appimage]
        # The Windows bundle has a console `perch.exe` and the windowed `perchw.exe`; logins start the latter.
        windowed = executable.with_name("perchw.exe")
        return [str(windowed if sys.platform == "win32" and windowed.is_file() else executable)]
    windows = sys.platform == "win32"
    for name in ("perch.exe", "perch") if windows else ("perch",):
        script = executable.parent / name
        if script.is_file():
            return [str(script)]
    if windows:
        # pythonw runs without a console window, which would otherwise open at every login.
        quiet = executable.with_name("pythonw.exe")
        if quiet.is_file():
            executable = quiet
    return [str(executable), "-m", "app"]


# Linux and other XDG desktops.


def desktop_exec(argv: Sequence[str]) -> str:
    """An Exec value (already escaped as a desktop-entry string) that launchers split back into `argv`."""
    parts = []
    for arg in argv:
        quoted = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"' if not arg or _EXEC_RESERVED.search(arg) else arg
        parts.append(quoted.replace("%", "%%"))
    return _escape_string(" ".join(parts))


def _escape_string(value: str) -> str:
    """The Desktop Entry escapes for a string value: backslash, newline, tab, carriage return."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def desktop_entry(argv: Sequence[str]) -> str:
    """The text of Perch's autostart entry."""
    icon = resources_dir() / "icons" / "perch-idle.svg"
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        f"Name={APP_NAME}",
        f"Comment={COMMENT}",
        f"Exec={desktop_exec(argv)}",
        f"Icon={_escape_string(str(icon))}",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        f"{DESKTOP_MARKER}=true",
    ]
    return "\n".join(lines) + "\n"


def _read_entry(path: Path) -> dict[str, str] | None:
    """The keys of a desktop entry's main group; None when there is no file, {} when it cannot be read."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return dict(parser["Desktop Entry"]) if parser.has_section("Desktop Entry") else {}


def _entry_enabled(keys: dict[str, str]) -> bool:
    return (
        bool(keys)
        and keys.get("Hidden", "false").strip() != "true"
        and keys.get("X-GNOME-Autostart-enabled", "true").strip() != "false"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _set_xdg(enabled: bool, command: Sequence[str]) -> None:
    path = entry_path("linux")
    if enabled:
        try:
            _write_atomically(path, desktop_entry(command).encode("utf-8"))
        except OSError as exc:
            raise OSError(
                f"Perch could not write its autostart entry {path} ({exc.strerror or exc}); "
                f"check that {path.parent} is writable."
            ) from exc
        return
    keys = _read_entry(path)
    if keys is None or not _entry_enabled(keys):
        return
    if keys.get(DESKTOP_MARKER) != "true":
        raise OSError(
            f"The autostart entry {path} was not written by Perch, so Perch leaves it alone; "
            "delete it or turn it off in your desktop's startup settings."
        )
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OSError(
            f"Perch could not remove its autostart entry {path} ({exc.strerror or exc}); delete the file yourself."
        ) from exc


# macOS.


def launch_agent(argv: Sequence[str]) -> dict[str, Any]:
    """The LaunchAgent property list that starts Perch at login."""
    return {"Label": MACOS_LABEL, "ProgramArguments": list(argv), "RunAtLoad": True, "ProcessType": "Interactive"}


def _read_agent(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as file:
            data = plistlib.load(file)
    except FileNotFoundError:
        return None
    except (OSError, plistlib.InvalidFileException, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _set_macos(enabled: bool, command: Sequence[str]) -> None:
    path = entry_path("darwin")
    if enabled:
        try:
            _write_atomically(path, plistlib.dumps(launch_agent(command)))
        except OSError as exc:
            raise OSError(
                f"Perch could not write its login item {path} ({exc.strerror or exc}); "
                f"check that {path.parent} is writable."
            ) from exc
        return
    agent = _read_agent(path)
    if agent is None:
        return
    if agent.get("Label") != MACOS_LABEL:
        raise OSError(f"{path} was not written by Perch, so Perch leaves it alone; delete it yourself.")
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OSError(
            f"Perch could not remove its login item {path} ({exc.strerror or exc}); delete it yourself."
        ) from exc


# Windows.


class Registry(Protocol):
    """The few registry operations needed, on keys under HKEY_CURRENT_USER."""

    def get(self, key: str, name: str) -> object | None:
        """The value's data, None when the key or value does not exist."""
        ...

    def set_string(self, key: str, name: str, value: str) -> None:
        """Create or replace a REG_SZ value, creating the key when needed."""
        ...

    def delete(self, key: str, name: str) -> None:
        """Remove a value; nothing happens when it does not exist."""
        ...


def _winreg() -> Any:
    """The winreg module, imported only on Windows (typed loosely: its stubs exist only there)."""
    return importlib.import_module("winreg")


class WindowsRegistry:
    """`Registry` on the real HKEY_CURRENT_USER through winreg."""

    def get(self, key: str, name: str) -> object | None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                data: object = winreg.QueryValueEx(handle, name)[0]
        except FileNotFoundError:
            return None
        return data

    def set_string(self, key: str, name: str, value: str) -> None:
        winreg = _winreg()
        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete(self, key: str, name: str) -> None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            pass


def windows_command_line(argv: Sequence[str]) -> str:
    """`argv` as one command line that Windows splits back the same way; the program is always quoted."""
    parts = []
    for index, arg in enumerate(argv):
        if index > 0 and arg and not _WINDOWS_NEEDS_QUOTES.search(arg):
            parts.append(arg)
            continue
        # Backslashes are literal except before a quote: double those, and the ones before the closing quote.
        escaped = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', arg)
        escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
        parts.append(f'"{escaped}"')
    return " ".join(parts)


def _approved_off(data: object) -> bool:
    """Whether a StartupApproved value says the entry was switched off (an odd first byte)."""
    return isinstance(data, (bytes, bytearray)) and len(data) > 0 and data[0] % 2 == 1


def _set_windows(enabled: bool, command: Sequence[str], registry: Registry) -> None:
    try:
        if enabled:
            registry.set_string(RUN_KEY, RUN_VALUE, windows_command_line(command))
        else:
            registry.delete(RUN_KEY, RUN_VALUE)
        # A switch-off recorded by Task Manager would outlive a new Run value; the person's choice here is newer.
        registry.delete(APPROVED_KEY, RUN_VALUE)
    except OSError as exc:
        action = "add itself to" if enabled else "remove itself from"
        raise OSError(
            f"Perch could not {action} the programs started at login (HKEY_CURRENT_USER\\{RUN_KEY}: {exc}); "
            "use Task Manager's Startup apps page instead."
        ) from exc


# Public interface.


def entry_path(platform: str | None = None) -> Path:
    """The file that makes Perch start at login: the XDG autostart entry or the macOS LaunchAgent."""
    kind = _kind(platform)
    if kind == "windows":
        raise ValueError("on Windows Perch starts at login through a registry value, not a file")
    if kind == "macos":
        return Path.home() / "Library" / "LaunchAgents" / f"{MACOS_LABEL}.plist"
    config = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
    return base / "autostart" / DESKTOP_FILE


def set_start_at_login(
    enabled: bool,
    *,
    platform: str | None = None,
    command: list[str] | None = None,
    registry: Registry | None = None,
) -> None:
    """Make Perch start at login, or stop it; doing it twice changes nothing. Raises OSError with what to do."""
    argv = command if command is not None else launch_command()
    kind = _kind(platform)
    if kind == "windows":
        _set_windows(enabled, argv, registry if registry is not None else WindowsRegistry())
    elif kind == "macos":
        _set_macos(enabled, argv)
    else:
        _set_xdg(enabled, argv)


def start_at_login_enabled(*, platform: str | None = None, registry: Registry | None = None) -> bool:
    """Whether Perch starts at login now (an entry of its own or one placed by hand)."""
    kind = _kind(platform)
    if kind == "windows":
        reg = registry if registry is not None else WindowsRegistry()
        try:
            return reg.get(RUN_KEY, RUN_VALUE) is not None and not _approved_off(reg.get(APPROVED_KEY, RUN_VALUE))
        except OSError:
            return False
    if kind == "macos":
        agent = _read_agent(entry_path("darwin"))
        return agent is not None and agent.get("RunAtLoad") is True and agent.get("Disabled") is not True
    keys = _read_entry(entry_path("linux"))
    return keys is not None and _entry_enabled(keys)
