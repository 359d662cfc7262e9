"""Linux packaging: the desktop file, the AppStream metainfo, the icons, and the built bundle and .deb.

The fast checks always run. The built artefacts are checked only when named (build them with
packaging/linux/build-linux.sh first):

    PERCH_BUNDLE=dist/perch                            the PyInstaller one-folder app
    PERCH_DEB=dist/perch-dictation_VERSION_amd64.deb   the Debian package
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import app
from tests.perch_process import private_home
from tests.pulse import PulseMic
from tests.tray_host import embedded_icon, tray_host_fixture, tray_panel, x_display  # noqa: F401  (tray_host)
from tests.xserver import TargetWindows, need_tools, push_to_talk

from .conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LINUX = ROOT / "packaging" / "linux"
APP_ID = "io.github.perch.Perch"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
TILE_RGB = (0x3B, 0x42, 0x52)
"""The colour of the rounded tile in perch-idle.svg."""
BUNDLE_LIMIT_MB = 300
TRAY_LIMIT_S = 2.0
VERSION = app.__version__


def load(path: Path) -> ModuleType:
    """A packaging script as a module (packaging/ is no package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def desktop_groups(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return {name: dict(parser[name]) for name in parser.sections()}


# The files in the source tree.


def test_the_desktop_file_launches_perch_with_the_app_icon() -> None:
    groups = desktop_groups(DESKTOP)
    entry = groups["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Perch"
    assert entry["Exec"] == "perch"
    assert entry["TryExec"] == "perch"
    assert entry["Icon"] == APP_ID
    assert entry["Terminal"] == "false"
    for key in ("Categories", "Keywords", "Actions"):
        assert entry[key].endswith(";"), f"{key} is a list and ends with ';'"
    assert "Utility" in entry["Categories"].split(";")
    for action in filter(None, entry["Actions"].split(";")):
        group = groups[f"Desktop Action {action}"]
        assert group["Name"]
        assert group["Exec"] == f"perch {action}", "each action is the perch command of the same name"


def test_desktop_file_validate_accepts_the_desktop_file() -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    done = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_metainfo_describes_the_same_app() -> None:
    component = ET.parse(METAINFO).getroot()
    assert component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID
    assert component.findtext("launchable") == DESKTOP.name
    assert component.findtext("name") == "Perch"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert component.findtext("project_license") == pyproject["license"]
    assert [b.text for b in component.iter("binary")] == ["perch"]
    assert component.find("description") is not None


def test_appstreamcli_validates_the_metainfo() -> None:
    if shutil.which("appstreamcli") is None:
        pytest.skip("appstreamcli is not installed (apt-get install appstream)")
    done = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_app_id_everywhere() -> None:
    spec = (ROOT / "packaging" / "pyinstaller" / "perch.spec").read_text()
    assert f'APP_ID = "{APP_ID}"' in spec
    assert load(LINUX / "build_icons.py").APP_ID == APP_ID
    assert f"app_id={APP_ID}\n" in (LINUX / "build-linux.sh").read_text()


def test_the_icons_render_at_every_hicolor_size(qapp: Any, tmp_path: Path) -> None:
    # `qapp` first: a bare QGuiApplication made here would leave later widget tests without a QApplication.
    from PySide6.QtGui import QImage

    written = load(LINUX / "build_icons.py").build(tmp_path)
    hicolor = tmp_path / "hicolor"
    assert len(written) == len(ICON_SIZES) + 1
    for size in ICON_SIZES:
        path = hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        image = QImage(str(path))
        assert (image.width(), image.height()) == (size, size), path
        assert image.hasAlphaChannel()
        assert image.pixelColor(0, 0).alpha() == 0, "the corners outside the rounded tile are transparent"
        tile = image.pixelColor(round(size * 5 / 64), size // 2)
        assert tile.alpha() > 200
        rgb = (tile.red(), tile.green(), tile.blue())
        assert all(abs(a - b) <= 12 for a, b in zip(rgb, TILE_RGB, strict=True)), (size, rgb)
        white = image.pixelColor(size // 2, round(size * 20 / 64))
        assert min(white.red(), white.green(), white.blue()) > 180, f"the microphone is drawn at {size} px"
    scalable = hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    assert scalable.read_bytes() == (ROOT / "resources" / "icons" / "perch-idle.svg").read_bytes()


def test_the_frozen_entry_runs_perchs_own_modules_by_name() -> None:
    entry = load(ROOT / "packaging" / "pyinstaller" / "perch_entry.py")
    assert entry._module_to_run(["-m", "app.doctor.probe_window"]) == "app.doctor.probe_window"
    assert entry._module_to_run(["-m", "app"]) == "app"
    assert entry._module_to_run(["-m", "http.server"]) is None
    assert entry._module_to_run(["transcribe", "-m", "app"]) is None
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "pyinstaller" / "perch_entry.py"), "-m", "app", "--version"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"perch {VERSION}"


def test_the_debian_dependencies_come_from_what_the_files_link(tmp_path: Path) -> None:
    if shutil.which("objdump") is None or shutil.which("dpkg-query") is None:
        pytest.skip("needs objdump (apt-get install binutils) and dpkg-query (Debian)")
    tool = shutil.which("true")
    assert tool is not None
    shutil.copy(tool, tmp_path / "true")
    deps = load(LINUX / "debian_depends.py")
    assert set(deps.system_libraries(tmp_path)) >= {"libc.so.6"}
    listed = deps.depends(tmp_path)
    assert listed[0].startswith("libc6 (>= 2.")
    assert "libportaudio2" in listed and "libc6" not in listed


# The built bundle (PERCH_BUNDLE).


@pytest.fixture(scope="module")
def bundle() -> Path:
    if not os.environ.get("PERCH_BUNDLE"):
        pytest.skip("set PERCH_BUNDLE to a built bundle (packaging/linux/build-linux.sh makes dist/perch)")
    folder = Path(os.environ["PERCH_BUNDLE"]).resolve()
    assert (folder / "perch").is_file() and os.access(folder / "perch", os.X_OK), f"no executable {folder}/perch"
    return folder


def run_bundled(
    executable: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(executable), *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def check_contents(folder: Path) -> int:
    """Assert that nothing unwanted is bundled; the unpacked size in bytes."""
    size = 0
    models = []
    for path in folder.rglob("*"):
        parts = set(path.relative_to(folder).parts)
        assert not parts & {"torch", "tests", "pytest", "_pytest", "onnx_asr", "onnx"}, f"bundled: {path}"
        if path.is_file() and not path.is_symlink():
            size += path.stat().st_size
            if path.suffix == ".onnx":
                models.append(path.relative_to(folder).as_posix())
    assert models == ["_internal/perch_resources/vad/silero_vad_16k_sequence.onnx"], "only the VAD model ships"
    return size


def test_the_bundle_holds_no_test_code_torch_or_models_and_fits(bundle: Path) -> None:
    size = check_contents(bundle)
    cuda = list(bundle.rglob("libonnxruntime_providers_cuda.so"))
    print(f"bundle {bundle}: {size / 1e6:.0f} MB unpacked ({'GPU' if cuda else 'CPU'} ONNX Runtime)")
    assert size <= BUNDLE_LIMIT_MB * 1e6


def test_the_bundle_answers_version_and_help(bundle: Path) -> None:
    done = run_bundled(bundle / "perch", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"perch {VERSION}"
    done = run_bundled(bundle / "perch", "--help")
    assert done.returncode == 0 and "transcribe" in done.stdout, done.stderr


def test_the_bundle_transcribes_with_the_words_model(
    bundle: Path, words_model: Path, speech_file: Callable[..., Path]
) -> None:
    clip = speech_file("seven three five hello world")
    done = run_bundled(bundle / "perch", "transcribe", "--model", str(words_model), "--device", "cpu", str(clip))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "seven three five hello world"


PrivateEnv = Callable[..., dict[str, str]]


@pytest.fixture(name="private_env")
def private_env_fixture(qt_xcb: str, words_model: Path, tmp_path: Path) -> PrivateEnv:
    """Makes the environment of a bundled perch with its own folders under `tmp_path/name` and its own settings:
    the words model, the test microphone, and the given settings on top."""

    def make(name: str, **settings: object) -> dict[str, str]:
        return private_home(tmp_path / name, qt_xcb, words_model, **settings)

    return make


@pytest.mark.usefixtures("tray_host")
def test_perch_doctor_passes_from_the_bundle(
    bundle: Path, private_env: PrivateEnv, pulse_mic: PulseMic, speech_file: Callable[..., Path]
) -> None:
    env = private_env("home")
    # Speech in the test microphone for the length of the checks, so that its level test hears something.
    speech = pulse_mic.play_async(speech_file(" ".join(["one two three four five six seven eight nine"] * 4)))
    try:
        done = run_bundled(bundle / "perch", "doctor", "--json", env=env, timeout=180)
    finally:
        speech.terminate()
        speech.wait()
    report = json.loads(done.stdout)
    summary = {check["name"]: (check["status"], check["summary"]) for check in report["checks"]}
    print("\n".join(f"{name}: {status} ({text})" for name, (status, text) in summary.items()))
    assert done.returncode == 0, done.stderr
    assert report["status"] == "ok", "every check passes from the bundle"


class BundledApp:
    """The bundled `perch` tray app on the test display."""

    def __init__(self, executable: Path, env: dict[str, str], log: Path) -> None:
        self.executable = executable
        self.env = env
        self.started = time.monotonic()
        with log.open("wb") as stderr:
            self.process = subprocess.Popen([str(executable)], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.log = log

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_bundled(self.executable, *args, env=self.env, timeout=30)

    def wait_embedded(self, display: str) -> float:
        """Seconds from the launch until the tray icon is embedded in the tray host's panel."""
        x = x_display(display)
        try:
            panel = tray_panel(x)
            while embedded_icon(x, panel, self.process.pid) is None:
                assert self.process.poll() is None, self.log.read_text(errors="replace")
                assert time.monotonic() - self.started < 30, "the tray icon never embedded"
                time.sleep(0.005)
            return time.monotonic() - self.started
        finally:
            x.close()

    def wait_status(self, wanted: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.command("status").stdout.strip()
            if status == wanted:
                return
            time.sleep(0.1)
        raise AssertionError(f"the bundled app never became {wanted!r} (last {status!r})")

    def close(self) -> None:
        if self.process.poll() is None:
            self.command("quit")
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


StartBundled = Callable[..., BundledApp]


@pytest.fixture(name="start_bundled")
def start_bundled_fixture(bundle: Path, private_env: PrivateEnv) -> Iterator[StartBundled]:
    """Starts the bundled tray app with its own folders (`name`) and settings; quits them all at the end."""
    started: list[BundledApp] = []

    def start(name: str, **settings: object) -> BundledApp:
        env = private_env(name, **settings)
        started.append(BundledApp(bundle / "perch", env, Path(env["XDG_STATE_HOME"]).parent / "stderr.txt"))
        return started[-1]

    yield start
    for perch in started:
        perch.close()


@pytest.mark.usefixtures("tray_host", "pulse_mic")
def test_the_bundled_tray_icon_embeds_within_two_seconds(
    bundle: Path, xvfb_display: str, start_bundled: StartBundled
) -> None:
    times = []
    for run in range(3):
        perch = start_bundled(f"home{run}", start_at_login=True)
        times.append(perch.wait_embedded(xvfb_display))
        perch.wait_status("idle")
        # "Start at login" names the bundle's own executable.
        entry = Path(perch.env["XDG_CONFIG_HOME"]) / "autostart" / "perch.desktop"
        deadline = time.monotonic() + 10
        while not entry.is_file():
            assert time.monotonic() < deadline, "no autostart entry was written"
            time.sleep(0.05)
        assert desktop_groups(entry)["Desktop Entry"]["Exec"] == str(bundle / "perch")
        perch.close()
        assert perch.process.returncode == 0, perch.log.read_text(errors="replace")
    print("launch to tray icon embedded: " + ", ".join(f"{t * 1000:.0f} ms" for t in times))
    print(f"median {statistics.median(times) * 1000:.0f} ms")
    assert statistics.median(times) <= TRAY_LIMIT_S


def test_dictating_with_the_bundle_types_into_the_focused_window(
    start_bundled: StartBundled,
    pulse_mic: PulseMic,
    xvfb_display: str,
    speech_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    need_tools("xdotool")
    perch = start_bundled("dictation")
    perch.wait_status("idle")
    (tmp_path / "target").mkdir()
    targets = TargetWindows(xvfb_display, tmp_path / "target")
    try:
        targets.focus("main")
        # The bundle's global hotkey (Ctrl+Alt+Space, push to talk), its capture through PortAudio and its typing.
        push_to_talk(xvfb_display, perch, lambda: pulse_mic.play(speech_file("four two zero go")))
        typed = targets.wait_text("four two zero go", timeout=20)
    finally:
        targets.close()
    assert typed == "four two zero go"


# The Debian package (PERCH_DEB).


@pytest.fixture(scope="module")
def deb() -> Path:
    if not os.environ.get("PERCH_DEB"):
        pytest.skip("set PERCH_DEB to a built .deb (packaging/linux/build-linux.sh makes dist/perch-dictation_*.deb)")
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (apt-get install dpkg)")
    return Path(os.environ["PERCH_DEB"]).resolve()


def deb_fields(deb: Path) -> dict[str, str]:
    text = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(": ")
            fields[key] = value
    return fields


def test_the_deb_declares_perch_and_its_system_libraries(deb: Path) -> None:
    fields = deb_fields(deb)
    assert fields["Package"] == "perch-dictation"
    assert fields["Version"] == VERSION
    assert (
        fields["Architecture"]
        == subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    )
    depends = [d.strip() for d in fields["Depends"].split(",")]
    assert depends[0].startswith("libc6 (>= 2.")
    for package in ("libportaudio2", "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3", "libxcb1", "xkb-data"):
        assert package in depends, f"Depends lacks {package}"
    print(f"{deb.name}: {deb.stat().st_size / 1e6:.0f} MB; Depends: {fields['Depends']}")


def test_the_deb_installs_to_opt_with_the_desktop_integration(deb: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[5].removeprefix("."): line for line in listing.splitlines()}
    assert "/opt/perch/perch" in paths
    assert "-> /opt/perch/perch" in paths["/usr/bin/perch"]
    assert f"/usr/share/applications/{APP_ID}.desktop" in paths
    assert f"/usr/share/metainfo/{APP_ID}.metainfo.xml" in paths
    assert f"/usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg" in paths
    for size in ICON_SIZES:
        assert f"/usr/share/icons/hicolor/{size}x{size}/apps/{APP_ID}.png" in paths
    assert all(" root/root " in line for line in listing.splitlines()), "files belong to root"


@pytest.fixture(scope="module")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def test_the_unpacked_deb_runs_and_transcribes(
    unpacked: Path, words_model: Path, speech_file: Callable[..., Path]
) -> None:
    perch = unpacked / "opt" / "perch" / "perch"
    check_contents(perch.parent)
    done = run_bundled(perch, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"perch {VERSION}", done.stderr
    clip = speech_file("nine eight seven yes")
    done = run_bundled(perch, "transcribe", "--model", str(words_model), "--device", "cpu", str(clip))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nine eight seven yes"


def test_the_installed_desktop_files_validate(unpacked: Path) -> None:
    share = unpacked / "usr" / "share"
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(
            ["desktop-file-validate", str(share / "applications" / f"{APP_ID}.desktop")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout
    metainfo = share / "metainfo" / f"{APP_ID}.metainfo.xml"
    release = ET.parse(metainfo).getroot().find("releases/release")
    assert release is not None and release.get("version") == VERSION and release.get("date")
    if shutil.which("appstreamcli"):
        done = subprocess.run(
            ["appstreamcli", "validate", "--no-net", str(metainfo)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout


def test_the_deb_depends_on_every_library_the_bundle_takes_from_the_system(deb: Path, unpacked: Path) -> None:
    if shutil.which("objdump") is None or shutil.which("dpkg-query") is None:
        pytest.skip("needs objdump (apt-get install binutils) and dpkg-query (Debian)")
    listed = {entry.split()[0] for entry in deb_fields(deb)["Depends"].split(",")}
    deps = load(LINUX / "debian_depends.py")
    needed = {library: deps.package_of(library) for library in deps.system_libraries(unpacked / "opt" / "perch")}
    missing = {library: package for library, package in needed.items() if package not in listed}
    assert not missing, f"libraries whose packages are not in Depends: {missing}"
