"""`perch doctor` and the Check setup window: classification, the runner, and every check against the real thing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.doctor import Check, CheckSpec, DoctorContext, format_report, load_context, run_checks, to_json
from app.doctor.fixes import install_command, package_manager
from app.doctor.hotkeys import check_hotkeys
from app.doctor.microphone import check_microphone
from app.doctor.model import check_model
from app.doctor.session import check_settings, check_tray, detect_desktop, display_server, tray_fix
from app.doctor.typing_check import TEST_TEXT, check_typing, typing_fix
from app.doctor.vad import VAD_SHA256, check_vad
from app.gui.check_setup import CheckSetupWindow
from app.injection import ClipboardSnapshot, ClipData, X11Clipboard, text_formats
from app.settings import Settings, SettingsStore
from stt.resources import vad_model_path
from tests.pulse import PulseMic
from tests.screenshots import save_screenshot

from .conftest import ROOT

HEADLESS = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
"""This environment without a display."""
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian"}
FEDORA = {"ID": "fedora"}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def context(**values: object) -> DoctorContext:
    """A context on the default settings with some fields set; the environment is this process's unless given."""
    return DoctorContext(**values)  # type: ignore[arg-type]


# Classification.


@pytest.mark.parametrize(
    ("env", "server", "key", "label"),
    [
        (
            {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "ubuntu:GNOME"},
            "xwayland",
            "gnome",
            "GNOME",
        ),
        ({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/user/1000/sway-ipc.sock"}, "wayland", "sway", "Sway"),
        (
            {"WAYLAND_DISPLAY": "wayland-1", "HYPRLAND_INSTANCE_SIGNATURE": "abc", "XDG_CURRENT_DESKTOP": "Hyprland"},
            "wayland",
            "hyprland",
            "Hyprland",
        ),
        ({"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "KDE", "KDE_FULL_SESSION": "true"}, "x11", "kde", "KDE Plasma"),
        ({"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "X-Cinnamon"}, "x11", "other", "Cinnamon"),
        ({"DISPLAY": ":0", "XDG_SESSION_DESKTOP": "xfce"}, "x11", "other", "Xfce"),
        ({"WAYLAND_DISPLAY": "wayland-1", "NIRI_SOCKET": "/run/niri.sock"}, "wayland", "other", "niri"),
        ({"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "MyWM"}, "x11", "other", "MyWM"),
        ({}, "none", "other", "unknown"),
    ],
)
def test_display_server_and_desktop(env: dict[str, str], server: str, key: str, label: str) -> None:
    assert display_server(env, "linux") == server
    desktop = detect_desktop(env)
    assert (desktop.key, desktop.label) == (key, label)


def test_display_server_off_linux() -> None:
    assert display_server({"DISPLAY": ":0"}, "win32") == "windows"
    assert display_server({}, "darwin") == "macos"


@pytest.mark.parametrize(
    ("release", "manager"),
    [
        (UBUNTU, "apt"),
        ({"ID": "pop", "ID_LIKE": "ubuntu debian"}, "apt"),
        (FEDORA, "dnf"),
        ({"ID": "endeavouros", "ID_LIKE": "arch"}, "pacman"),
        ({"ID": "opensuse-tumbleweed"}, "zypper"),
        ({"ID": "gentoo"}, None),
        ({}, None),
    ],
)
def test_package_manager_from_os_release(release: dict[str, str], manager: str | None) -> None:
    assert package_manager(release) == manager


def test_install_commands_name_the_package_of_each_system() -> None:
    assert install_command("portaudio", UBUNTU) == "sudo apt-get install libportaudio2"
    assert install_command("portaudio", FEDORA) == "sudo dnf install portaudio"
    assert install_command("wl-clipboard", {"ID": "arch"}) == "sudo pacman -S wl-clipboard"
    assert install_command("xcb-cursor", FEDORA) == "sudo dnf install xcb-util-cursor"
    both = install_command("appindicator", {"ID": "gentoo"})
    assert "sudo apt-get install gnome-shell-extension-appindicator" in both and "sudo dnf install" in both


def test_typing_fix_names_the_tool_for_each_desktop() -> None:
    assert "wtype" in typing_fix("sway") and "ydotool" not in typing_fix("sway")
    gnome = typing_fix("gnome")
    assert "ydotool" in gnome and "ydotoold" in gnome and "/dev/uinput" in gnome and "wl-clipboard" in gnome
    other = typing_fix("other")
    assert "wtype" in other and "ydotool" in other


def test_tray_fix_gives_the_gnome_extension_hint() -> None:
    assert "AppIndicator" in tray_fix(detect_desktop({"XDG_CURRENT_DESKTOP": "GNOME"}))
    assert "gnome-shell-extension-appindicator" in tray_fix(detect_desktop({"XDG_CURRENT_DESKTOP": "GNOME"}))
    assert "Waybar" in tray_fix(detect_desktop({"SWAYSOCK": "/run/sway"}))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SWAYSOCK": "/run/sway.sock"}, ["bindsym --release Ctrl+Mod1+space exec perch ptt release"]),
        (
            {"HYPRLAND_INSTANCE_SIGNATURE": "x"},
            ["bindr = CTRL ALT, space, exec, perch ptt release", "xdg-desktop-portal-hyprland"],
        ),
        ({"XDG_CURRENT_DESKTOP": "GNOME"}, ["gsettings set", "perch toggle", "xdg-desktop-portal-gnome"]),
    ],
)
def test_wayland_without_portal_says_how_to_bind_the_keys(
    tmp_path: Path, env: dict[str, str], expected: list[str]
) -> None:
    # A Wayland session with no session bus, so no GlobalShortcuts portal, and no XWayland to fall back on.
    environ = {"WAYLAND_DISPLAY": "wayland-9", "XDG_RUNTIME_DIR": str(tmp_path), **env}
    check = check_hotkeys(context(environ=environ, platform="linux"))
    assert check.status == "warn"
    assert "no global shortcuts" in check.summary and "D-Bus" in check.summary
    for text in expected:
        assert text in check.fix


def test_settings_line_reports_what_reading_the_file_fixed(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"model": "words", "device": "quantum", "ptt_hotkey": "F9"}))
    store = SettingsStore(path)
    loaded = load_context(store=store, app_running=False, model="other", areas=["session"])
    assert (
        loaded.model_name == "other" and loaded.settings.ptt_hotkey == "F9" and loaded.areas == frozenset({"session"})
    )
    check = check_settings(loaded)
    assert check.status == "warn" and check.summary.startswith(str(path))
    assert any("quantum" in line for line in check.details) and "hotkeys F9 and Ctrl+Alt+D" in " ".join(check.details)
    assert "model other, quantization auto, device auto" in check.details
    assert check_settings(context()).summary == "defaults (no settings file yet)"


def test_hotkeys_that_cannot_be_read_or_are_missing() -> None:
    bad = check_hotkeys(context(settings=Settings(ptt_hotkey="Ctrl+Hyper+Q"), environ=HEADLESS, platform="linux"))
    assert bad.status == "fail" and "Ctrl+Hyper+Q" in bad.summary and "Settings › Hotkeys" in bad.fix
    none = check_hotkeys(context(settings=Settings(ptt_hotkey="", toggle_hotkey=""), environ=HEADLESS))
    assert none.status == "warn" and "perch toggle" in none.fix
    headless = check_hotkeys(context(environ=HEADLESS, platform="linux"))
    assert headless.status == "skip" and "perch ptt press" in headless.summary


# The runner and the report.


def test_runner_yields_results_as_they_finish_and_contains_failures() -> None:
    release = threading.Event()

    def slow(_: DoctorContext) -> Check:
        release.wait(5)
        return Check("Slow", "ok", "done")

    def several(_: DoctorContext) -> Iterator[Check]:
        yield Check("First", "ok", "one")
        yield Check("Second", "warn", "two", fix="do this")
        raise RuntimeError("broke after two")

    def broken(_: DoctorContext) -> Check:
        raise ValueError("no such thing")

    def hanging(_: DoctorContext) -> Check:
        time.sleep(3)
        return Check("Late", "ok", "too late")

    specs = [
        CheckSpec("slow", "Slow", slow, 10),
        CheckSpec("several", "Several", several, 10),
        CheckSpec("broken", "Broken", broken, 10),
        CheckSpec("hanging", "Hanging", hanging, 0.3),
    ]
    seen: list[Check] = []
    for check in run_checks(context(), specs):
        seen.append(check)
        if len(seen) == 5:  # everything but the slow one is in before it may finish
            release.set()
    names = [check.name for check in seen]
    assert names[-1] == "Slow" and set(names[:5]) == {"First", "Second", "Several", "Broken", "Hanging"}
    results = {check.name: check for check in seen}
    assert results["Several"].status == "fail" and "broke after two" in results["Several"].summary
    assert results["Broken"].status == "fail" and "no such thing" in results["Broken"].summary
    assert results["Broken"].fix and results["Broken"].area == "broken"
    assert results["Hanging"].status == "fail" and "did not finish within 0.3 s" in results["Hanging"].summary
    assert results["Second"].area == "several" and results["Second"].seconds >= 0


def test_report_text_and_json() -> None:
    checks = [
        Check("Display", "ok", "X11", ("DISPLAY=:0",)),
        Check("Microphone", "warn", "silent", (), "Unmute it.\nOr pick another."),
        Check("Model", "fail", "not downloaded", (), "perch models download x"),
        Check("Typing", "skip", "no display", (), "ignored for skips"),
    ]
    text = format_report(checks, details=True)
    lines = text.splitlines()
    assert lines[0].startswith("✓ Display") and lines[1].strip() == "· DISPLAY=:0"
    assert (
        lines[2].startswith("! Microphone") and lines[3] == "    → Unmute it." and lines[4] == "      Or pick another."
    )
    assert lines[5].startswith("✗ Model") and lines[6] == "    → perch models download x"
    assert lines[7].startswith("– Typing") and "ignored" not in text
    assert lines[-1].startswith("1 failed and 1 with warnings")
    data = json.loads(to_json(checks))
    assert data["ok"] is False and data["status"] == "fail"
    assert data["checks"][1] == {
        "area": "",
        "name": "Microphone",
        "status": "warn",
        "summary": "silent",
        "details": [],
        "fix": "Unmute it.\nOr pick another.",
        "seconds": 0.0,
    }


# `perch doctor` as a person runs it.


def perch_doctor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "doctor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_without_a_display_skips_typing_and_fails_for_a_missing_model() -> None:
    started = time.monotonic()
    done = perch_doctor("session", "hotkeys", "typing", "model", "vad", "--json", env=HEADLESS)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["Typing"]["status"] == "skip"
    assert "no X11 or Wayland display" in checks["Typing"]["summary"] and "not over SSH" in checks["Typing"]["fix"]
    assert checks["Display"]["status"] == "warn" and "perch listen" in checks["Display"]["fix"]
    assert checks["Model"]["status"] == "fail"
    assert "perch models download parakeet-tdt-0.6b-v3 --quantization int8" in checks["Model"]["fix"]
    assert checks["Voice detection"]["status"] == "ok"
    assert elapsed < 15


def test_cli_prints_marks_and_fixes_in_order_and_exits_0_without_failures(words_model: Path) -> None:
    done = perch_doctor("vad", "model", "session", "--model", str(words_model), "--device", "cpu", env=HEADLESS)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Perch doctor (perch ")
    names = [line.split()[1] for line in lines if line[:1] in "✓!✗–"]
    assert names == ["Display", "System", "Settings", "Device", "Model", "Voice"]  # report order, not argument order
    assert lines[1].startswith("! Display") and lines[2].startswith("    → The tray app")
    assert any(line.startswith("✓ Model") and "words-tdt (int8)" in line for line in lines)
    assert done.stderr == ""  # what native libraries print while probing stays off the terminal
    unknown = perch_doctor("nonsense", env=HEADLESS)
    assert unknown.returncode == 2 and "unknown check 'nonsense'" in unknown.stderr


# Model and device.


def test_model_check_with_the_words_model_and_a_load(words_model: Path) -> None:
    results = by_name(list(check_model(context(model=str(words_model), device="cpu", load_model=True))))
    assert results["Device"].status == "ok" and "the CPU" in results["Device"].summary
    model = results["Model"]
    assert model.status == "ok" and "(int8)" in model.summary and "is ready" in model.summary
    assert "quantization: auto → int8 (auto: the model runs on the CPU)" in model.details
    load = results["Model load"]
    assert load.status == "ok"
    assert re.fullmatch(r"loaded in \d+\.\d s on the CPU · runs \d+(\.\d)?× faster than real time", load.summary)
    assert "providers: CPUExecutionProvider" in load.details
    assert any(re.fullmatch(r"load \d+\.\d\d s; 5 s of audio took \d+ ms", line) for line in load.details)


def test_model_check_explains_the_device_fallback() -> None:
    device = next(iter(check_model(context(quantization="fp32", device="auto"))))
    assert device.name == "Device"
    if device.summary.startswith("the NVIDIA GPU"):
        pytest.skip("this machine runs CUDA")
    assert any(line.startswith("why not CUDA: ") for line in device.details)
    forced = next(iter(check_model(context(device="cuda"))))
    assert forced.status == "warn" and "cuda was asked for" in forced.summary and "pip install" in forced.fix


def test_model_check_for_missing_and_unknown_models() -> None:
    missing = by_name(list(check_model(context(model="parakeet-tdt-0.6b-v2", device="cpu"))))["Model"]
    assert missing.status == "fail" and missing.summary == "parakeet-tdt-0.6b-v2 (int8) is not downloaded"
    assert "`perch models download parakeet-tdt-0.6b-v2 --quantization int8`" in missing.fix
    unknown = by_name(list(check_model(context(model="parakeet-xl", device="cpu", load_model=True))))
    assert unknown["Model"].status == "fail" and "parakeet-tdt-0.6b-v3" in unknown["Model"].fix
    assert unknown["Model load"].status == "skip"


# Voice-activity model.


def test_vad_checksum_matches_and_a_tampered_copy_fails(tmp_path: Path) -> None:
    shipped = check_vad(context())
    assert shipped.status == "ok" and f"sha256: {VAD_SHA256}" in shipped.details
    tampered = tmp_path / "silero.onnx"
    data = bytearray(vad_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    check = check_vad(context(vad_path=tampered))
    assert check.status == "fail" and "does not match the checksum" in check.summary
    assert "reinstall Perch" in check.fix and f"expected: {VAD_SHA256}" in check.details
    gone = check_vad(context(vad_path=tmp_path / "missing.onnx"))
    assert gone.status == "fail" and "missing" in gone.summary


# On a real X server.


def keeper_processes() -> list[int]:
    """Clipboard keepers started by the typing check (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"app.doctor.clipboard_keeper" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.usefixtures("qt_xcb")  # the check opens its test window with Qt on the X server
def test_typing_check_types_into_its_window_and_puts_the_clipboard_back(xvfb_display: str) -> None:
    png = bytes(range(256)) * 40
    original = {**text_formats("the person's text ✓"), "image/png": ClipData("image/png", 8, png)}
    person = X11Clipboard(xvfb_display)
    try:
        person.offer(original)
        results = list(check_typing(context()))
        checks = by_name(results)
        assert [c.name for c in results] == ["Typing (keystrokes)", "Typing (paste)", "Clipboard"]
        for name in ("Typing (keystrokes)", "Typing (paste)", "Clipboard"):
            assert checks[name].status == "ok", checks[name]
            assert TEST_TEXT in checks[name].summary
        assert f"sent {TEST_TEXT!r}, the window holds {TEST_TEXT!r}" in checks["Typing (keystrokes)"].details
        assert f"sent {TEST_TEXT!r}, the window holds {TEST_TEXT!r}" in checks["Typing (paste)"].details
        assert "your clipboard was put back as it was" in checks["Clipboard"].details
        reader = X11Clipboard(xvfb_display)
        try:
            assert reader.snapshot().formats == original  # byte for byte, now served by the keeper
        finally:
            reader.close()
        assert keeper_processes()
        # Copying something else ends the keeper; then leave the clipboard empty for later tests.
        generation = person.offer(text_formats("new"))
        person.restore(ClipboardSnapshot({}), generation)
        deadline = time.monotonic() + 5
        while keeper_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not keeper_processes()
    finally:
        person.close()


@pytest.mark.usefixtures("qt_xcb")
def test_typing_check_with_an_empty_clipboard_leaves_it_empty(xvfb_display: str) -> None:
    results = by_name(list(check_typing(context(areas=frozenset({"typing"})))))
    assert results["Clipboard"].status == "ok"
    assert "the clipboard was empty before the check and is empty again" in results["Clipboard"].details
    reader = X11Clipboard(xvfb_display)
    try:
        assert reader.snapshot().formats == {}
    finally:
        reader.close()
    assert not keeper_processes()


def test_hotkey_check_on_x11(xvfb_display: str) -> None:
    from app.hotkeys import parse_hotkey
    from app.hotkeys.x11 import X11Backend

    free = check_hotkeys(context())
    assert free.status == "ok" and "can be registered (X11 key grab)" in free.summary
    assert "Ctrl+Alt+Space (push to talk) and Ctrl+Alt+D (start/stop)" in free.summary
    other = X11Backend(xvfb_display)
    assert other.register(parse_hotkey("Ctrl+Alt+Space"), None) == []
    try:
        taken = check_hotkeys(context())
        assert taken.status == "fail" and "Ctrl+Alt+Space is already taken" in taken.summary
        assert "Choose other hotkeys in Settings" in taken.fix
        held = check_hotkeys(context(app_running=True))
        assert held.status == "ok" and "registered by the running app" in held.summary
    finally:
        other.stop()


def test_tray_check_on_a_bare_x_server(xvfb_display: str, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CURRENT_DESKTOP": "GNOME", "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    check = check_tray(context(environ=env))
    assert check.status == "warn" and "AppIndicator" in check.fix


# On a real microphone.


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of a 440 Hz tone at half scale (-6 dBFS peak)."""
    rate = 48000
    t = np.arange(2 * rate) / rate
    path = tmp_path_factory.mktemp("tone") / "tone.wav"
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


TonePlayer = Callable[[], "subprocess.Popen[bytes]"]


@pytest.fixture
def tone_player(pulse_mic: PulseMic, tone: Path) -> TonePlayer:
    """Starts the tone playing into the microphone."""
    return lambda: pulse_mic.play_async(tone)


def peak(check: Check) -> float:
    found = re.search(r"peak (-?\d+\.\d) dBFS", check.summary)
    assert found, check.summary
    return float(found.group(1))


def test_microphone_check_hears_a_tone(tone_player: TonePlayer) -> None:
    player = tone_player()
    try:
        time.sleep(0.3)
        check = check_microphone(context())
    finally:
        player.wait(timeout=10)
    assert check.status == "ok", check
    assert peak(check) > -40
    assert "set in Settings: system default" in check.details


def test_microphone_check_warns_about_silence(pulse_mic: PulseMic) -> None:
    check = check_microphone(context())
    assert check.status == "warn" and "silent" in check.summary and "pick another microphone in Settings" in check.fix
    assert peak(check) < -60


def test_microphone_check_for_a_device_that_is_not_there(pulse_mic: PulseMic) -> None:
    check = check_microphone(context(microphone="no such microphone"))
    assert check.status == "fail" and "'no such microphone' from the settings is not connected" in check.summary
    assert "pick another microphone in Settings" in check.fix


# The window.


def wait_finished(window: CheckSetupWindow, qtbot: QtBot, timeout_ms: int = 30000) -> None:
    qtbot.waitUntil(lambda: not window.running, timeout=timeout_ms)


def test_window_shows_results_as_they_arrive_and_copies_the_report(qtbot: QtBot, words_model: Path) -> None:
    def factory() -> DoctorContext:
        return DoctorContext(
            model=str(words_model), device="cpu", environ=HEADLESS, areas=frozenset({"session", "model", "vad"})
        )

    window = CheckSetupWindow(factory)
    qtbot.addWidget(window)
    arrived: list[Check] = []
    window.check_arrived.connect(arrived.append)
    with qtbot.waitSignal(window.finished, timeout=30000):
        window.show()
        started = time.monotonic()
        assert window.run()  # returns at once: the checks run on a worker thread
        assert time.monotonic() - started < 0.2
        assert window.running and not window.run() and not window.run_button.isEnabled() and window.busy.isVisible()
    names = [check.name for check in window.checks]
    assert names == ["Display", "System tray", "Settings", "Device", "Model", "Voice detection"]
    assert sorted(c.name for c in arrived) == sorted(names)
    rows = window.rows()
    assert [row.title.text() for row in rows] == names
    model = next(row for row in rows if row.name == "Model")
    assert "words-tdt (int8)" in model.summary.text() and not model.fix.isVisibleTo(window)
    display = rows[0]
    assert display.check is not None and display.check.status == "warn"
    assert display.fix.isVisibleTo(window) and "perch listen" in display.fix.text()
    assert not display.details.isVisibleTo(window)
    display.toggle.click()
    assert display.details.isVisibleTo(window)
    assert window.run_button.isEnabled() and not window.busy.isVisible()
    assert "warning" in window.status.text()
    window.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied == window.report_text()
    assert copied.startswith("Perch setup check\n! Display")
    assert "✓ Voice detection" in copied and f"· sha256: {VAD_SHA256}" in copied
    with qtbot.waitSignal(window.finished, timeout=30000):
        window.run_button.click()
    assert [check.name for check in window.checks] == names


def test_window_reports_a_context_that_cannot_be_built(qtbot: QtBot) -> None:
    def factory() -> DoctorContext:
        raise OSError("settings unreadable")

    window = CheckSetupWindow(factory)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.finished, timeout=10000):
        window.show()  # the first show starts a run
    assert [(c.status, c.summary) for c in window.checks] == [
        ("fail", "the checks could not start: settings unreadable")
    ]


@pytest.mark.usefixtures("qt_xcb")
def test_window_screenshot_with_most_checks_passing(
    qtbot: QtBot, xvfb_display: str, tone_player: TonePlayer, words_model: Path, tmp_path: Path
) -> None:
    """All checks against Xvfb and the PulseAudio microphone; with PERCH_SCREENSHOTS=1 it refreshes
    docs/screenshots/check-setup.png for the README."""

    def factory() -> DoctorContext:
        return DoctorContext(model=str(words_model), device="auto")

    window = CheckSetupWindow(factory)
    qtbot.addWidget(window)
    window.resize(760, 780)
    player = tone_player()
    try:
        with qtbot.waitSignal(window.finished, timeout=60000):
            window.show()
    finally:
        player.wait(timeout=10)
    statuses = {check.name: check.status for check in window.checks}
    for name in (
        "Display",
        "Settings",
        "Hotkeys",
        "Typing (keystrokes)",
        "Typing (paste)",
        "Clipboard",
        "Microphone",
        "Device",
        "Model",
        "Voice detection",
    ):
        assert statuses[name] == "ok", (name, window.report_text())
    assert statuses["System tray"] == "warn"  # a bare X server has no tray
    next(row for row in window.rows() if row.name == "Typing (keystrokes)").toggle.click()
    qtbot.wait(50)
    save_screenshot(window, "check-setup.png", tmp_path)


def test_probe_window_needs_a_display() -> None:
    from app.doctor.probe import Probe, ProbeError

    with pytest.raises(ProbeError, match="typing test window"):
        Probe({**HEADLESS, "QT_QPA_PLATFORM": "xcb"}, sys.executable)
