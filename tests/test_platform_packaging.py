"""Windows and macOS packaging, read back: the Inno Setup script, Perch.app's Info.plist and entitlements, the icons.

None of these can be built here; what can be checked is that the installer writes the same login entry as the app,
that the plist keys and texts are there, and that the icon files hold what Windows and macOS look for.
"""

from __future__ import annotations

import importlib.util
import ntpath
import plistlib
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import platformdirs.windows
import pytest

import app
from app import autostart
from stt import paths

from .conftest import ROOT

PACKAGING = ROOT / "packaging"
ISS = PACKAGING / "windows" / "perch.iss"
ICO = PACKAGING / "windows" / "perch.ico"
ICNS = PACKAGING / "macos" / "perch.icns"
ENTITLEMENTS = PACKAGING / "macos" / "entitlements.plist"
INSTALL_DIR = r"C:\Users\Ada Lovelace\AppData\Local\Programs\Perch"
ICO_SIZES = {16, 24, 32, 48, 64, 256}
ICNS_SIZES = {
    "icp4": 16,
    "icp5": 32,
    "ic11": 32,
    "ic12": 64,
    "ic07": 128,
    "ic13": 256,
    "ic08": 256,
    "ic14": 512,
    "ic09": 512,
    "ic10": 1024,
}
TILE_RGB = (0x3B, 0x42, 0x52)
"""The colour of the rounded tile in perch-idle.svg."""


def load_script(path: Path) -> ModuleType:
    """A packaging script (not part of any package) imported as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The Inno Setup script.


class InnoScript:
    """perch.iss split into sections, with the preprocessor's #define values substituted."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text(encoding="utf-8")
        self.defines = dict(re.findall(r'^\s*#define (\w+) "([^"]*)"', self.text, re.MULTILINE))
        self.sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for raw in self.text.splitlines():
            line = raw.strip()
            header = re.fullmatch(r"\[(\w+)\]", line)
            if header:
                current = self.sections.setdefault(header.group(1), [])
            elif current is not None:
                current.append(raw)
        self.code = "\n".join(self.sections.get("Code", []))

    def expand(self, value: str) -> str:
        """`value` with `{#Name}` replaced by the #define values (names without one are left as they are)."""
        return re.sub(r"\{#(\w+)\}", lambda m: self.defines.get(m.group(1), m.group(0)), value)

    def lines(self, section: str) -> list[str]:
        """The section's entries: no blank lines, comments or preprocessor lines."""
        return [
            self.expand(line.strip())
            for line in self.sections[section]
            if line.strip() and not line.strip().startswith((";", "#"))
        ]

    def setup(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.lines("Setup"))

    def entries(self, section: str) -> list[dict[str, str]]:
        return [parse_entry(line) for line in self.lines(section)]


def parse_entry(line: str) -> dict[str, str]:
    """An entry line as a dict: `Name: value; Name: "quoted"`, where `""` inside quotes stands for one `"`."""
    params: dict[str, str] = {}
    for match in re.finditer(r'\s*(\w+):\s*("(?:[^"]|"")*"|[^;]*)\s*(?:;|$)', line):
        value = match.group(2).strip()
        if value.startswith('"'):
            value = value[1:-1].replace('""', '"')
        params[match.group(1)] = value
    return params


@pytest.fixture(scope="module")
def iss() -> InnoScript:
    return InnoScript(ISS)


def test_script_has_every_section(iss: InnoScript) -> None:
    expected = {"Setup", "Languages", "Tasks", "InstallDelete", "Files", "Icons", "Registry", "UninstallDelete", "Run"}
    assert expected | {"Code"} <= set(iss.sections)


def test_setup_identity_version_and_install_mode(iss: InnoScript) -> None:
    setup = iss.setup()
    # A fixed GUID (written with the doubled brace Inno needs); changing it would orphan earlier installations.
    assert re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["AppName"] == "Perch"
    assert setup["AppVersion"] == "{#AppVersion}"
    assert "{#AppVersion}" in setup["OutputBaseFilename"]
    # Compiling without /DAppVersion stops with an error instead of building an unversioned installer.
    assert re.search(r"^#ifndef AppVersion\s*\n\s*#error ", iss.text, re.MULTILINE)
    assert setup["PrivilegesRequired"] == "lowest"
    assert setup["PrivilegesRequiredOverridesAllowed"] == "dialog"
    assert setup["DefaultDirName"] == r"{autopf}\Perch"
    assert setup["ArchitecturesInstallIn64BitMode"] == "x64compatible"
    assert (ISS.parent / setup["SetupIconFile"]).resolve() == ICO
    assert setup["UninstallDisplayIcon"] == r"{app}\perchw.exe"


def test_files_come_from_the_one_folder_build(iss: InnoScript) -> None:
    assert iss.defines["DistDir"] == r"..\..\dist\perch"
    (files,) = iss.entries("Files")
    assert files["Source"] == r"..\..\dist\perch\*"
    assert files["DestDir"] == "{app}"
    assert {"recursesubdirs", "createallsubdirs"} <= set(files["Flags"].split())
    # The folder of an earlier version goes before the new files are copied, and with the uninstaller.
    assert {"Type": "filesandordirs", "Name": r"{app}\_internal"} in iss.entries("InstallDelete")
    assert {"Type": "filesandordirs", "Name": r"{app}\_internal"} in iss.entries("UninstallDelete")


def test_start_menu_and_desktop_shortcuts_open_the_tray_app(iss: InnoScript) -> None:
    assert iss.defines["GuiExe"] == "perchw.exe"
    assert iss.defines["CliExe"] == "perch.exe"
    icons = {entry["Name"]: entry for entry in iss.entries("Icons")}
    start_menu = icons[r"{autoprograms}\Perch"]
    assert start_menu["Filename"] == r"{app}\perchw.exe"
    assert "Tasks" not in start_menu
    desktop = icons[r"{autodesktop}\Perch"]
    assert desktop["Filename"] == r"{app}\perchw.exe"
    assert desktop["Tasks"] == "desktopicon"
    (launch,) = iss.entries("Run")
    assert launch["Filename"] == r"{app}\perchw.exe"
    assert {"postinstall", "nowait", "skipifsilent"} <= set(launch["Flags"].split())


def test_optional_tasks_start_unchecked(iss: InnoScript) -> None:
    tasks = {entry["Name"]: entry for entry in iss.entries("Tasks")}
    assert set(tasks) == {"desktopicon", "startatlogin"}
    assert all(task["Flags"] == "unchecked" for task in tasks.values())


def test_login_entry_is_the_one_the_app_writes(iss: InnoScript, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same key, same value name and the same command as app/autostart.py writes from the installed tray exe."""
    registry = {entry["Subkey"]: entry for entry in iss.entries("Registry")}
    run = registry[autostart.RUN_KEY]
    assert run["Root"] == "HKCU"
    assert run["ValueType"] == "string"
    assert run["ValueName"] == autostart.RUN_VALUE
    assert run["Tasks"] == "startatlogin"
    assert "uninsdeletevalue" in run["Flags"].split()

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", INSTALL_DIR + "\\" + iss.defines["GuiExe"])
    written_by_app = autostart.windows_command_line(autostart.launch_command())
    assert run["ValueData"].replace("{app}", INSTALL_DIR) == written_by_app

    # A switch-off once recorded by Task Manager is cleared, as the app does; the key is never created for it.
    approved = registry[autostart.APPROVED_KEY]
    assert approved["ValueName"] == autostart.RUN_VALUE
    assert approved["ValueType"] == "none"
    assert set(approved["Flags"].split()) == {"deletevalue", "dontcreatekey"}
    assert approved["Tasks"] == "startatlogin"


def code_constants(iss: InnoScript) -> dict[str, str]:
    block = re.search(r"^const\n(.*?)\n\n", iss.code, re.MULTILINE | re.DOTALL)
    assert block, "no const block in [Code]"
    return dict(re.findall(r"^\s*(\w+) = '([^']*)';", block.group(1), re.MULTILINE))


def test_uninstaller_removes_the_login_entry(iss: InnoScript) -> None:
    """Also when the app's own setting wrote it: [Code] deletes the value if it starts Perch from {app}."""
    constants = code_constants(iss)
    assert constants["RunKey"] == autostart.RUN_KEY
    assert constants["ApprovedKey"] == autostart.APPROVED_KEY
    assert constants["RunValue"] == autostart.RUN_VALUE
    uninstall = re.search(r"if CurUninstallStep = usUninstall then(.*?)\n  end\n", iss.code, re.DOTALL)
    assert uninstall, "no usUninstall step"
    step = uninstall.group(1)
    assert "if LoginEntryIsOurs() then" in step
    assert "RegDeleteValue(HKEY_CURRENT_USER, RunKey, RunValue)" in step
    assert "RegDeleteValue(HKEY_CURRENT_USER, ApprovedKey, RunValue)" in step
    assert "RegQueryStringValue(HKEY_CURRENT_USER, RunKey, RunValue, Command)" in iss.code


def test_uninstaller_keeps_user_data_unless_asked(iss: InnoScript, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder it offers to delete is where platformdirs puts every Perch file on Windows."""
    folder = code_constants(iss)["DataFolder"]
    assert folder == r"{localappdata}\perch"
    # Off Windows, platformdirs takes the folder from these variables.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\Ada Lovelace\AppData\Local")
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\Ada Lovelace\AppData\Local")
    local = platformdirs.windows.get_win_folder("CSIDL_LOCAL_APPDATA")
    dirs = platformdirs.windows.Windows(paths.APP_NAME, appauthor=False)
    data = ntpath.join(local, "perch")
    for where in (dirs.user_data_dir, dirs.user_config_dir, dirs.user_cache_dir, dirs.user_log_dir):
        assert ntpath.normpath(where) == data or ntpath.normpath(where).startswith(data + "\\")
    post = iss.code.split("usPostUninstall", 1)[1]
    assert "(not UninstallSilent())" in post
    # No is the default button, and only Yes deletes.
    assert "MB_YESNO or MB_DEFBUTTON2) = IDYES then" in post
    assert "DelTree(Data, True, True, True)" in post.split("= IDYES then", 1)[1]


# Perch.app's Info.plist and entitlements.


@pytest.fixture(scope="module")
def plist_module() -> ModuleType:
    return load_script(PACKAGING / "macos" / "info_plist.py")


def test_info_plist_round_trips_with_the_required_keys(plist_module: ModuleType) -> None:
    version = app.__version__
    info: dict[str, Any] = plistlib.loads(plistlib.dumps(plist_module.info_plist(version, "14.0")))
    assert info["CFBundleIdentifier"] == "io.github.perch.Perch"
    assert info["CFBundleName"] == info["CFBundleDisplayName"] == "Perch"
    assert info["CFBundleShortVersionString"] == info["CFBundleVersion"] == version
    assert info["LSMinimumSystemVersion"] == "14.0"
    assert info["LSUIElement"] is True
    assert info["NSHighResolutionCapable"] is True
    microphone = info["NSMicrophoneUsageDescription"]
    assert "microphone" in microphone and "dictate" in microphone
    accessibility = info["PerchAccessibilityUsageDescription"]
    assert "Accessibility" in accessibility and "System Settings" in accessibility
    # Perch sends no Apple events, so it declares no reason for them.
    assert "NSAppleEventsUsageDescription" not in info


def test_info_plist_script_prints_a_plist() -> None:
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "macos" / "info_plist.py"), "2.3.4"], capture_output=True, check=True
    )
    info = plistlib.loads(done.stdout)
    assert info["CFBundleShortVersionString"] == "2.3.4"
    assert re.fullmatch(r"\d+\.\d+", info["LSMinimumSystemVersion"])


@pytest.mark.parametrize(
    ("version", "expected"), [("0.1.0", "0.1.0"), ("1.2", "1.2.0"), ("3", "3.0.0"), ("1.4.2rc1", "1.4.2")]
)
def test_bundle_version_is_three_numbers(plist_module: ModuleType, version: str, expected: str) -> None:
    assert plist_module.bundle_version(version) == expected


def test_minimum_macos_is_what_the_most_demanding_wheel_needs(plist_module: ModuleType) -> None:
    wheels = [
        ["cp310-abi3-macosx_13_0_universal2"],  # PySide6-Essentials 6.11
        ["cp312-cp312-macosx_14_0_arm64"],  # onnxruntime 1.31
        ["py3-none-macosx_10_6_x86_64", "py3-none-macosx_10_6_universal2"],  # sounddevice
        ["py3-none-any"],
    ]
    assert plist_module.minimum_macos(wheels) == "14.0"
    # Several macOS tags on one wheel: it installs on the oldest of them.
    assert plist_module.minimum_macos([["cp312-cp312-macosx_15_0_arm64", "cp312-cp312-macosx_12_0_x86_64"]]) == "12.0"
    assert plist_module.minimum_macos([["py3-none-any"]]) == plist_module.MINIMUM_MACOS_FLOOR


def test_app_id_agrees_with_the_other_packaging(plist_module: ModuleType) -> None:
    """Every app id under packaging/ (spec, Linux desktop file and metainfo, their file names) is the bundle's.

    The developer id of the metainfo (`io.github.perch`, one part shorter) is not an app id.
    """
    app_id = re.compile(r"\bio\.github\.[\w-]+\.[\w.-]*\w")
    ids = set()
    for path in PACKAGING.rglob("*"):
        if path.is_file() and path.suffix in {".spec", ".desktop", ".xml", ".sh", ".py", ".in"}:
            ids |= set(app_id.findall(path.name)) | set(app_id.findall(path.read_text(errors="replace")))
    stems = {re.sub(r"(\.(desktop|metainfo|appdata|xml|svg|png|service))+$", "", found) for found in ids}
    assert stems <= {plist_module.BUNDLE_ID}


def test_entitlements_allow_the_microphone_and_nothing_unneeded() -> None:
    entitlements = plistlib.loads(ENTITLEMENTS.read_bytes())
    assert entitlements == {
        "com.apple.security.device.audio-input": True,
        # cffi's and ctypes' callbacks (the audio stream and the hotkey tap) are libffi closures.
        "com.apple.security.cs.allow-unsigned-executable-memory": True,
    }


# The icons.


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def read_ico(data: bytes) -> dict[int, tuple[str, bytes]]:
    """The images of an ICO file by size, each as ("png" or "bmp", bytes), after checking the directory."""
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1), "not an icon file"
    images: dict[int, tuple[str, bytes]] = {}
    for index in range(count):
        width, height, colours, _, planes, bits, size, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        side = width or 256
        assert height == width and colours == 0 and planes == 1 and bits == 32
        image = data[offset : offset + size]
        assert len(image) == size, "entry runs past the end of the file"
        if image.startswith(b"\x89PNG"):
            assert png_size(image) == (side, side)
            images[side] = ("png", image)
        else:
            header_size, bmp_width, bmp_height, _, bmp_bits = struct.unpack_from("<IiiHH", image)
            assert (header_size, bmp_width, bmp_height, bmp_bits) == (40, side, 2 * side, 32)
            mask_row = (side + 31) // 32 * 4
            assert size == 40 + 4 * side * side + mask_row * side
            images[side] = ("bmp", image)
    return images


def bmp_pixel(image: bytes, side: int, x: int, y: int) -> tuple[int, int, int, int]:
    """(r, g, b, a) of an icon bitmap's pixel, y counted from the top (the rows are stored bottom-up)."""
    b, g, r, a = image[40 + 4 * ((side - 1 - y) * side + x) :][:4]
    return r, g, b, a


def qt_pixel(png: bytes, x: int, y: int) -> tuple[int, int, int, int]:
    from PySide6.QtGui import QImage

    image = QImage.fromData(png)
    assert not image.isNull()
    colour = image.pixelColor(x, y)
    return colour.red(), colour.green(), colour.blue(), colour.alpha()


def read_icns(data: bytes) -> dict[str, bytes]:
    """The entries of an ICNS file by type, after checking the lengths add up."""
    assert data[:4] == b"icns", "not an ICNS file"
    (total,) = struct.unpack_from(">I", data, 4)
    assert total == len(data)
    entries: dict[str, bytes] = {}
    offset = 8
    while offset < total:
        kind = data[offset : offset + 4].decode("ascii")
        (length,) = struct.unpack_from(">I", data, offset + 4)
        assert length > 8 and offset + length <= total
        entries[kind] = data[offset + 8 : offset + length]
        offset += length
    return entries


def check_ico(data: bytes) -> None:
    images = read_ico(data)
    assert set(images) == ICO_SIZES
    assert {size for size, (kind, _) in images.items() if kind == "png"} == {256}
    for side, (kind, image) in images.items():

        def pixel(x: int, y: int, side: int = side, kind: str = kind, image: bytes = image) -> tuple[int, ...]:
            return bmp_pixel(image, side, x, y) if kind == "bmp" else qt_pixel(image, x, y)

        assert pixel(0, 0)[3] == 0, f"{side}px: the corner is not transparent"
        # The microphone's head, white, at (30, 22) of the 64-unit drawing; the tile to its left.
        assert pixel(side * 30 // 64, side * 22 // 64) == (255, 255, 255, 255), f"{side}px: no microphone"
        assert pixel(side * 10 // 64, side * 32 // 64) == (*TILE_RGB, 255), f"{side}px: no tile"


def check_icns(data: bytes) -> None:
    entries = read_icns(data)
    assert {kind: png_size(png)[0] for kind, png in entries.items()} == ICNS_SIZES
    assert all(png_size(png)[0] == png_size(png)[1] for png in entries.values())
    # Apple's grid: the tile spans 824 of 1024 pixels, so the edge stays clear and the tile starts near 100.
    largest = entries["ic10"]
    assert qt_pixel(largest, 60, 512)[3] == 0
    assert qt_pixel(largest, 130, 512) == (*TILE_RGB, 255)
    assert qt_pixel(largest, 512, 60)[3] == 0


def test_committed_ico_has_every_size(qapp: Any) -> None:
    check_ico(ICO.read_bytes())


def test_committed_icns_has_every_size(qapp: Any) -> None:
    check_icns(ICNS.read_bytes())


def test_icon_generators_write_what_the_readers_accept(qapp: Any, tmp_path: Path) -> None:
    ico = tmp_path / "perch.ico"
    load_script(PACKAGING / "windows" / "make_icon.py").write_icon(ico)
    check_ico(ico.read_bytes())
    icns = tmp_path / "perch.icns"
    load_script(PACKAGING / "macos" / "make_icns.py").write_icns(icns)
    check_icns(icns.read_bytes())
