"""Start at login: the XDG autostart file, the macOS LaunchAgent and the Windows Run value, read back."""

from __future__ import annotations

import configparser
import plistlib
import re
import sys
from pathlib import Path

import pytest

from app import autostart
from app.autostart import (
    APPROVED_KEY,
    RUN_KEY,
    entry_path,
    launch_command,
    set_start_at_login,
    start_at_login_enabled,
    windows_command_line,
)

AWKWARD = ["/opt/My Apps/perch env/bin/perch", "--flag=a b", 'say "hi"', "cost $5 `x` \\n", "100%", "~/x;y", ""]


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def read_desktop_entry(path: Path) -> dict[str, str]:
    """The [Desktop Entry] keys with the string escapes undone."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("="))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return {
        key: re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), value)
        for key, value in parser["Desktop Entry"].items()
    }


def exec_argv(value: str) -> list[str]:
    """Split an Exec value as the Desktop Entry specification describes: spaces separate, double quotes group,
    and inside them a backslash escapes `"`, backtick, `$` and backslash; `%%` is a literal %."""
    args: list[str] = []
    current: list[str] = []
    started = quoted = False
    i = 0
    while i < len(value):
        char = value[i]
        if quoted and char == "\\" and i + 1 < len(value) and value[i + 1] in '"`$\\':
            current.append(value[i + 1])
            i += 1
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
        i += 1
    assert not quoted, f"unbalanced quotes in {value!r}"
    if started:
        args.append("".join(current))
    return [arg.replace("%%", "%") for arg in args]


# Linux.


def test_linux_entry_parses_back_to_the_same_command(config_home: Path) -> None:
    set_start_at_login(True, platform="linux", command=AWKWARD)
    path = config_home / "autostart" / "perch.desktop"
    assert entry_path("linux") == path
    keys = read_desktop_entry(path)
    assert exec_argv(keys["Exec"]) == AWKWARD
    assert keys["Type"] == "Application"
    assert keys["Name"] == "Perch"
    assert keys["Terminal"] == "false"
    assert keys["X-GNOME-Autostart-enabled"] == "true"
    assert keys["Comment"]
    assert Path(keys["Icon"]).is_file()
    assert start_at_login_enabled(platform="linux")


def test_linux_exec_quotes_only_what_needs_it(config_home: Path) -> None:
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    assert read_desktop_entry(entry_path("linux"))["Exec"] == "/usr/bin/perch"
    raw = entry_path("linux").read_text(encoding="utf-8")
    set_start_at_login(True, platform="linux", command=["/a b/python", "-m", "app"])
    assert 'Exec="/a b/python" -m app\n' in entry_path("linux").read_text(encoding="utf-8")
    assert "Exec=/usr/bin/perch\n" in raw
    set_start_at_login(True, platform="linux", command=["/a\\b/perch"])
    # One literal backslash: escaped for the quoting, then again as a string value.
    assert 'Exec="/a\\\\\\\\b/perch"\n' in entry_path("linux").read_text(encoding="utf-8")
    assert exec_argv(read_desktop_entry(entry_path("linux"))["Exec"]) == ["/a\\b/perch"]


def test_linux_enable_twice_then_disable(config_home: Path) -> None:
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    first = entry_path("linux").read_bytes()
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    assert entry_path("linux").read_bytes() == first
    assert [p.name for p in (config_home / "autostart").iterdir()] == ["perch.desktop"]
    set_start_at_login(False, platform="linux")
    assert not entry_path("linux").exists()
    assert not start_at_login_enabled(platform="linux")
    set_start_at_login(False, platform="linux")  # nothing left to remove
    assert not start_at_login_enabled(platform="linux")


def test_linux_leaves_an_entry_it_did_not_write(config_home: Path) -> None:
    path = config_home / "autostart" / "perch.desktop"
    path.parent.mkdir(parents=True)
    path.write_text("[Desktop Entry]\nType=Application\nName=Perch\nExec=perch\n")
    assert start_at_login_enabled(platform="linux")
    with pytest.raises(OSError, match="not written by Perch"):
        set_start_at_login(False, platform="linux")
    assert path.exists()
    # A hand-made entry that hides a system-wide one is already off: nothing to do.
    path.write_text("[Desktop Entry]\nType=Application\nName=Perch\nExec=perch\nHidden=true\n")
    assert not start_at_login_enabled(platform="linux")
    set_start_at_login(False, platform="linux")
    assert path.exists()
    # Turning it on replaces it with Perch's own.
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    assert start_at_login_enabled(platform="linux")
    assert "Hidden" not in read_desktop_entry(path)


def test_linux_gnome_switch_off_counts_as_off(config_home: Path) -> None:
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    path = entry_path("linux")
    path.write_text(path.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert not start_at_login_enabled(platform="linux")


def test_linux_without_xdg_config_home_uses_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert entry_path("linux") == tmp_path / ".config" / "autostart" / "perch.desktop"
    set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])
    assert (tmp_path / ".config" / "autostart" / "perch.desktop").is_file()


def test_linux_failure_says_where_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not a folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    with pytest.raises(OSError, match=r"could not write its autostart entry .*check that .* is writable"):
        set_start_at_login(True, platform="linux", command=["/usr/bin/perch"])


# macOS.


def test_macos_launch_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    command = ["/Applications/Perch.app/Contents/MacOS/Perch", "--flag=a b"]
    set_start_at_login(True, platform="darwin", command=command)
    path = entry_path("darwin")
    assert path.parent == tmp_path / "Library" / "LaunchAgents"
    assert path.name == f"{autostart.MACOS_LABEL}.plist"
    with path.open("rb") as file:
        agent = plistlib.load(file)
    assert agent == {
        "Label": autostart.MACOS_LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        "ProcessType": "Interactive",
    }
    assert start_at_login_enabled(platform="darwin")
    first = path.read_bytes()
    set_start_at_login(True, platform="darwin", command=command)
    assert path.read_bytes() == first
    set_start_at_login(False, platform="darwin")
    assert not path.exists()
    assert not start_at_login_enabled(platform="darwin")
    set_start_at_login(False, platform="darwin")


# Windows.


class FakeRegistry:
    """HKEY_CURRENT_USER in a dict: (key, value name) → data."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], object] = {}

    def get(self, key: str, name: str) -> object | None:
        return self.values.get((key, name))

    def set_string(self, key: str, name: str, value: str) -> None:
        assert isinstance(value, str)
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> None:
        self.values.pop((key, name), None)


def split_windows(line: str) -> list[str]:
    """Split a command line by the Microsoft C runtime's rules (the program name is taken up to its closing quote)."""
    args: list[str] = []
    i = 0
    if line.startswith('"'):
        end = line.index('"', 1)
        args.append(line[1:end])
        i = end + 1
    else:
        end = line.find(" ")
        end = len(line) if end < 0 else end
        args.append(line[:end])
        i = end
    while i < len(line):
        while i < len(line) and line[i] in " \t":
            i += 1
        if i >= len(line):
            break
        current, quoted = [], False
        while i < len(line) and (quoted or line[i] not in " \t"):
            slashes = 0
            while i < len(line) and line[i] == "\\":
                slashes += 1
                i += 1
            if i < len(line) and line[i] == '"':
                current.append("\\" * (slashes // 2))
                if slashes % 2:
                    current.append('"')
                else:
                    quoted = not quoted
                i += 1
            else:
                current.append("\\" * slashes)
                if i < len(line) and (quoted or line[i] not in " \t"):
                    current.append(line[i])
                    i += 1
        args.append("".join(current))
    return args


def test_windows_run_value_is_the_quoted_command_line() -> None:
    registry = FakeRegistry()
    set_start_at_login(True, platform="win32", command=[r"C:\Program Files\Perch\perch.exe"], registry=registry)
    assert registry.values == {(RUN_KEY, "Perch"): r'"C:\Program Files\Perch\perch.exe"'}
    assert start_at_login_enabled(platform="win32", registry=registry)
    set_start_at_login(True, platform="win32", command=[r"C:\Program Files\Perch\perch.exe"], registry=registry)
    assert registry.values == {(RUN_KEY, "Perch"): r'"C:\Program Files\Perch\perch.exe"'}
    set_start_at_login(False, platform="win32", registry=registry)
    assert registry.values == {}
    assert not start_at_login_enabled(platform="win32", registry=registry)


def test_windows_python_fallback_command() -> None:
    registry = FakeRegistry()
    command = [r"C:\Users\Ann Lee\venv\Scripts\pythonw.exe", "-m", "app"]
    set_start_at_login(True, platform="win32", command=command, registry=registry)
    assert registry.values[(RUN_KEY, "Perch")] == r'"C:\Users\Ann Lee\venv\Scripts\pythonw.exe" -m app'


@pytest.mark.parametrize(
    "argv",
    [
        [r"C:\Perch\perch.exe", "plain", "two words", 'say "hi"', "ends with \\", 'a\\"b', "", "tab\there"],
        [r"C:\Perch\perch.exe", "C:\\dir with space\\"],
    ],
)
def test_windows_command_line_splits_back(argv: list[str]) -> None:
    assert split_windows(windows_command_line(argv)) == argv


def test_windows_task_manager_switch_off() -> None:
    registry = FakeRegistry()
    set_start_at_login(True, platform="win32", command=[r"C:\Perch\perch.exe"], registry=registry)
    registry.values[(APPROVED_KEY, "Perch")] = bytes([3]) + bytes(11)
    assert not start_at_login_enabled(platform="win32", registry=registry)
    set_start_at_login(True, platform="win32", command=[r"C:\Perch\perch.exe"], registry=registry)
    assert start_at_login_enabled(platform="win32", registry=registry)
    assert (APPROVED_KEY, "Perch") not in registry.values


def test_windows_registry_failure_is_an_os_error_with_advice() -> None:
    class Broken(FakeRegistry):
        def set_string(self, key: str, name: str, value: str) -> None:
            raise PermissionError(5, "Access is denied")

    with pytest.raises(OSError, match="Task Manager"):
        set_start_at_login(True, platform="win32", command=[r"C:\Perch\perch.exe"], registry=Broken())


def test_entry_path_has_no_file_on_windows() -> None:
    with pytest.raises(ValueError, match="registry"):
        entry_path("win32")


# The launch command.


def test_launch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "env dir" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(sys, "platform", "linux")
    assert launch_command() == [str(python), "-m", "app"]
    (bin_dir / "perch").write_text("")
    assert launch_command() == [str(bin_dir / "perch")]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launch_command() == [str(python)]


def test_launch_command_on_windows_prefers_a_windowless_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "python.exe"
    python.write_text("")
    (tmp_path / "pythonw.exe").write_text("")
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(sys, "platform", "win32")
    assert launch_command() == [str(tmp_path / "pythonw.exe"), "-m", "app"]
    (tmp_path / "perch.exe").write_text("")
    assert launch_command() == [str(tmp_path / "perch.exe")]


def test_the_windows_bundle_starts_its_windowed_executable_at_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = tmp_path / "perch.exe"
    console.write_text("")
    monkeypatch.setattr(sys, "executable", str(console))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launch_command() == [str(console)]
    (tmp_path / "perchw.exe").write_text("")
    assert launch_command() == [str(tmp_path / "perchw.exe")]


def test_an_appimage_starts_itself_at_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/tmp/.mount_PerchXYZ/usr/bin/perch")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("APPIMAGE", str(tmp_path / "Perch-x86_64.AppImage"))
    assert launch_command() == [str(tmp_path / "Perch-x86_64.AppImage")]


def test_a_windowed_run_without_stderr_can_still_print(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main

    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert main(["ptt", "press"]) == 1  # prints "not running" to the missing stderr


def test_default_command_is_used(config_home: Path) -> None:
    set_start_at_login(True, platform="linux")
    assert exec_argv(read_desktop_entry(entry_path("linux"))["Exec"]) == launch_command()
