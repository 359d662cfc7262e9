"""Install commands for what a check found missing, in the words of this system's package manager."""

from __future__ import annotations

import platform
from collections.abc import Mapping

PACKAGES: dict[str, dict[str, str]] = {
    # tool or library → package per package manager
    "wtype": {"apt": "wtype", "dnf": "wtype", "pacman": "wtype", "zypper": "wtype"},
    "ydotool": {"apt": "ydotool", "dnf": "ydotool", "pacman": "ydotool", "zypper": "ydotool"},
    "wl-clipboard": {"apt": "wl-clipboard", "dnf": "wl-clipboard", "pacman": "wl-clipboard", "zypper": "wl-clipboard"},
    "portaudio": {"apt": "libportaudio2", "dnf": "portaudio", "pacman": "portaudio", "zypper": "libportaudio2"},
    "xcb-cursor": {
        "apt": "libxcb-cursor0",
        "dnf": "xcb-util-cursor",
        "pacman": "xcb-util-cursor",
        "zypper": "libxcb-cursor0",
    },
    "appindicator": {
        "apt": "gnome-shell-extension-appindicator",
        "dnf": "gnome-shell-extension-appindicator",
        "pacman": "gnome-shell-extension-appindicator",
        "zypper": "gnome-shell-extension-appindicator",
    },
    "portal-gnome": {
        "apt": "xdg-desktop-portal-gnome",
        "dnf": "xdg-desktop-portal-gnome",
        "pacman": "xdg-desktop-portal-gnome",
        "zypper": "xdg-desktop-portal-gnome",
    },
    "portal-kde": {
        "apt": "xdg-desktop-portal-kde",
        "dnf": "xdg-desktop-portal-kde",
        "pacman": "xdg-desktop-portal-kde",
        "zypper": "xdg-desktop-portal-kde",
    },
    "portal-hyprland": {
        "apt": "xdg-desktop-portal-hyprland",
        "dnf": "xdg-desktop-portal-hyprland",
        "pacman": "xdg-desktop-portal-hyprland",
        "zypper": "xdg-desktop-portal-hyprland",
    },
}

INSTALL = {
    "apt": "sudo apt-get install {}",
    "dnf": "sudo dnf install {}",
    "pacman": "sudo pacman -S {}",
    "zypper": "sudo zypper install {}",
}

_FAMILIES = {
    "debian": "apt",
    "ubuntu": "apt",
    "linuxmint": "apt",
    "pop": "apt",
    "elementary": "apt",
    "raspbian": "apt",
    "fedora": "dnf",
    "rhel": "dnf",
    "centos": "dnf",
    "rocky": "dnf",
    "almalinux": "dnf",
    "nobara": "dnf",
    "arch": "pacman",
    "manjaro": "pacman",
    "endeavouros": "pacman",
    "cachyos": "pacman",
    "opensuse": "zypper",
    "opensuse-leap": "zypper",
    "opensuse-tumbleweed": "zypper",
    "suse": "zypper",
    "sles": "zypper",
}


def os_release() -> dict[str, str]:
    """/etc/os-release as a dict; empty where there is none (not Linux, or a minimal container)."""
    try:
        return dict(platform.freedesktop_os_release())
    except OSError:
        return {}


def package_manager(release: Mapping[str, str] | None = None) -> str | None:
    """`apt`, `dnf`, `pacman` or `zypper` from ID and ID_LIKE of os-release; None when unknown."""
    release = os_release() if release is None else release
    names = [release.get("ID", ""), *release.get("ID_LIKE", "").split()]
    for name in names:
        manager = _FAMILIES.get(name.strip().lower())
        if manager is not None:
            return manager
    return None


def install_command(what: str, release: Mapping[str, str] | None = None) -> str:
    """The command that installs `what` (a key of PACKAGES, or a package name used as is) on this system.

    Where the package manager is unknown, the Debian and Fedora commands both.
    """
    manager = package_manager(release)
    names = PACKAGES.get(what, {})
    if manager is not None:
        return INSTALL[manager].format(names.get(manager, what))
    apt, dnf = names.get("apt", what), names.get("dnf", what)
    return f"{INSTALL['apt'].format(apt)} (Debian, Ubuntu) or {INSTALL['dnf'].format(dnf)} (Fedora)"
