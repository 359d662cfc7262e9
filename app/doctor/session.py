"""The session: operating system, display server, desktop, system tray, and the settings file."""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from app.doctor.checks import Check
from app.doctor.context import DoctorContext
from app.doctor.fixes import install_command, os_release
from app.settings import Settings

DisplayServer = Literal["x11", "wayland", "xwayland", "none", "windows", "macos"]

DISPLAY_LABELS: dict[DisplayServer, str] = {
    "x11": "X11",
    "wayland": "Wayland (no XWayland)",
    "xwayland": "Wayland, with XWayland for X11 programs",
    "none": "no display",
    "windows": "Windows",
    "macos": "macOS",
}

SNI_WATCHER = "org.kde.StatusNotifierWatcher"


@dataclass(frozen=True)
class Desktop:
    """The desktop or compositor, as far as the environment tells."""

    key: str
    """`gnome`, `kde`, `sway`, `hyprland` or `other`: the names `app.hotkeys.wayland` gives instructions for."""
    label: str
    """For people: "GNOME", "KDE Plasma", "Sway", "Xfce", or the raw XDG_CURRENT_DESKTOP."""


# Markers checked in order: (environment variable that only this compositor sets, key, label).
_COMPOSITOR_VARIABLES = (
    ("HYPRLAND_INSTANCE_SIGNATURE", "hyprland", "Hyprland"),
    ("SWAYSOCK", "sway", "Sway"),
    ("NIRI_SOCKET", "other", "niri"),
    ("WAYFIRE_SOCKET", "other", "Wayfire"),
    ("LABWC_PID", "other", "labwc"),
    ("I3SOCK", "other", "i3"),
    ("KDE_FULL_SESSION", "kde", "KDE Plasma"),
    ("GNOME_SHELL_SESSION_MODE", "gnome", "GNOME"),
)
# Names in XDG_CURRENT_DESKTOP (lower case) → key and label.
_DESKTOP_NAMES = {
    "gnome": ("gnome", "GNOME"),
    "ubuntu": ("gnome", "GNOME"),
    "unity": ("gnome", "Unity"),
    "pop": ("gnome", "COSMIC (GNOME)"),
    "kde": ("kde", "KDE Plasma"),
    "plasma": ("kde", "KDE Plasma"),
    "sway": ("sway", "Sway"),
    "hyprland": ("hyprland", "Hyprland"),
    "xfce": ("other", "Xfce"),
    "x-cinnamon": ("other", "Cinnamon"),
    "cinnamon": ("other", "Cinnamon"),
    "mate": ("other", "MATE"),
    "lxqt": ("other", "LXQt"),
    "lxde": ("other", "LXDE"),
    "budgie": ("other", "Budgie"),
    "cosmic": ("other", "COSMIC"),
    "deepin": ("other", "Deepin"),
    "niri": ("other", "niri"),
    "wayfire": ("other", "Wayfire"),
    "labwc": ("other", "labwc"),
    "river": ("other", "river"),
    "i3": ("other", "i3"),
}


def display_server(environ: Mapping[str, str], platform_name: str) -> DisplayServer:
    """Which display server programs of this session talk to."""
    if platform_name == "win32":
        return "windows"
    if platform_name == "darwin":
        return "macos"
    wayland, x11 = bool(environ.get("WAYLAND_DISPLAY")), bool(environ.get("DISPLAY"))
    if wayland:
        return "xwayland" if x11 else "wayland"
    return "x11" if x11 else "none"


def detect_desktop(environ: Mapping[str, str]) -> Desktop:
    """The desktop from XDG_CURRENT_DESKTOP (then XDG_SESSION_DESKTOP, DESKTOP_SESSION) and compositor variables."""
    for variable, key, label in _COMPOSITOR_VARIABLES:
        if environ.get(variable):
            return Desktop(key, label)
    raw = ""
    for variable in ("XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION"):
        raw = environ.get(variable, "").strip()
        if raw:
            break
    for part in raw.lower().replace(";", ":").split(":"):
        known = _DESKTOP_NAMES.get(part.strip())
        if known is None and "plasma" in part:
            known = _DESKTOP_NAMES["plasma"]
        if known is not None:
            return Desktop(*known)
    return Desktop("other", raw or "unknown")


def os_label(platform_name: str) -> str:
    """The system's name and version: `Ubuntu 24.04.1 LTS`, `Windows 11`, `macOS 14.5`."""
    if platform_name.startswith("linux"):
        release = os_release()
        return release.get("PRETTY_NAME") or release.get("NAME") or f"Linux {platform.release()}"
    if platform_name == "darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    if platform_name == "win32":
        return f"Windows {platform.release()}"
    return platform_name


def check_display(context: DoctorContext) -> Check:
    """Display server, desktop and operating system."""
    env, name = context.environ, "Display"
    server = display_server(env, context.platform)
    system = os_label(context.platform)
    if server in ("windows", "macos"):
        return Check(name, "ok", system)
    desktop = detect_desktop(env)
    details = tuple(
        f"{key}={env[key]}"
        for key in ("XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP", "DISPLAY", "WAYLAND_DISPLAY")
        if env.get(key)
    )
    if server == "none":
        return Check(
            name,
            "warn",
            f"no graphical session ({system}): DISPLAY and WAYLAND_DISPLAY are not set",
            details,
            "The tray app, the hotkeys and typing need a desktop session: run Perch from a terminal inside it "
            "(not over SSH). In a plain terminal `perch listen` dictates without them.",
        )
    where = f"{desktop.label} on {DISPLAY_LABELS[server]}" if desktop.label != "unknown" else DISPLAY_LABELS[server]
    if desktop.label == "unknown":
        details = (*details, "no desktop environment was recognised (XDG_CURRENT_DESKTOP is not set)")
    return Check(name, "ok", f"{where} · {system}", details)


# System tray.


def _sni_watcher(environ: Mapping[str, str]) -> bool | None:
    """Whether a StatusNotifierItem host listens on the session bus; None when there is no bus."""
    from app.hotkeys.dbus import BUS_NAME, BUS_PATH, Connection, DBusError, session_bus_address

    address = session_bus_address(environ)
    if address is None:
        return None
    try:
        connection = Connection(address, timeout=2.0)
    except (DBusError, OSError):
        return None
    try:
        reply = connection.call(
            BUS_NAME, BUS_PATH, BUS_NAME, "NameHasOwner", signature="s", body=(SNI_WATCHER,), timeout=2.0
        )
        return bool(reply.body[0])
    except (DBusError, OSError):
        return None
    finally:
        connection.close()


def _xembed_tray(environ: Mapping[str, str]) -> bool:
    """Whether an X11 system tray (the freedesktop XEmbed one) owns its selection on the first screen."""
    display_name = environ.get("DISPLAY")
    if not display_name:
        return False
    try:
        import Xlib.display
        import Xlib.error
        from Xlib import X
    except ImportError:
        return False
    try:
        display = Xlib.display.Display(display_name)
    except (Xlib.error.DisplayError, OSError):
        return False
    try:
        owner = display.get_selection_owner(display.intern_atom(f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}"))
        return owner != X.NONE and not (isinstance(owner, int) and owner == 0)
    finally:
        display.close()


def tray_fix(desktop: Desktop) -> str:
    """How to get a system tray on this desktop."""
    if desktop.key == "gnome":
        return (
            "GNOME shows tray icons only with the AppIndicator extension: "
            f"{install_command('appindicator')}, then turn on “AppIndicator and KStatusNotifierItem Support” in "
            "the Extensions app and log out and in. Perch works without a tray too: use the hotkeys, or "
            "`perch toggle`."
        )
    if desktop.key in ("sway", "hyprland") or desktop.label in ("niri", "river", "labwc", "Wayfire"):
        return (
            f"{desktop.label} has no tray of its own: run a bar with a tray, such as Waybar with its `tray` module "
            "(or swaybar built with tray support). Perch works without a tray too: use the hotkeys, or "
            "`perch toggle`."
        )
    return (
        "No system tray was found: add a tray (notification area) to your panel. Perch works without one too: "
        "use the hotkeys, or `perch toggle`."
    )


def check_tray(context: DoctorContext) -> Check:
    """Whether the tray icon will show."""
    name, env = "System tray", context.environ
    server = display_server(env, context.platform)
    if server in ("windows", "macos"):
        return Check(name, "ok", "the system tray (menu bar on macOS) is always there")
    if server == "none":
        return Check(name, "skip", "no graphical session, so no tray")
    sni = _sni_watcher(env)
    if sni:
        return Check(name, "ok", "available (StatusNotifierItem host on the session bus)")
    if server == "x11" and _xembed_tray(env):
        return Check(name, "ok", "available (X11 system tray)")
    desktop = detect_desktop(env)
    details = ("there is no D-Bus session bus",) if sni is None else (f"nobody owns {SNI_WATCHER} on the session bus",)
    return Check(name, "warn", "no system tray found: the Perch icon will not show", details, tray_fix(desktop))


def check_settings(context: DoctorContext) -> Check:
    """Where the settings come from, the main choices, and what reading them had to fix."""
    settings = context.effective_settings()
    path = context.settings_path
    if path is not None and path.exists():
        source = str(path)
    else:
        source = "defaults (no settings file yet)" if context.settings == Settings() else "the settings in use"
    hotkeys = " and ".join(h for h in (settings.ptt_hotkey, settings.toggle_hotkey) if h) or "none"
    details = (
        f"mode {settings.mode}, hotkeys {hotkeys}",
        f"model {settings.model}, quantization {settings.quantization}, device {settings.device}",
        f"microphone {settings.microphone or 'system default'}, typing {settings.typing_strategy}",
    )
    if context.settings_problems:
        return Check(
            "Settings",
            "warn",
            f"{source}: some values could not be used and the defaults stand in",
            (*context.settings_problems, *details),
            "Open Settings and choose those values again; saving writes a clean file.",
        )
    return Check("Settings", "ok", source, details)


def check_session(context: DoctorContext) -> Iterator[Check]:
    """Display, system tray and settings, in that order."""
    yield check_display(context)
    yield check_tray(context)
    yield check_settings(context)
