"""The Info.plist keys of Perch.app, for the PyInstaller spec's BUNDLE(info_plist=...).

PyInstaller fills in the keys that describe the bundle's layout (CFBundleExecutable, CFBundleIconFile,
CFBundlePackageType, CFBundleInfoDictionaryVersion); these are the ones about Perch. Run
`python packaging/macos/info_plist.py VERSION` to print them as an Info.plist.
"""

from __future__ import annotations

import importlib.metadata
import plistlib
import re
import sys
from collections.abc import Iterable
from typing import Any

BUNDLE_ID = "io.github.perch.Perch"
"""The same reverse-DNS id as the Linux desktop file and metainfo."""
MINIMUM_MACOS_FLOOR = "11.0"
"""The lowest value ever written: macOS 11 is the first on Apple silicon (the wheels usually ask for more)."""
MICROPHONE_USAGE = (
    "Perch listens to the microphone only while you dictate, and turns your speech into text on this Mac. "
    "Nothing you say leaves your computer."
)
ACCESSIBILITY_USAGE = (
    "Perch types the recognised text into the window you are working in and listens for its hotkeys while other "
    "apps are in front. macOS allows both only to apps you trust: turn Perch on in System Settings › Privacy & "
    "Security › Accessibility (and Input Monitoring, where it is listed), then start Perch again."
)
"""Shown by Perch itself: macOS has no Info.plist key for the Accessibility permission, so it is kept here too."""

_MACOS_TAG = re.compile(r"macosx_(\d+)_(\d+)_")


def bundle_version(version: str) -> str:
    """The project version as the three numbers macOS expects ("1.2.0rc1" gives "1.2.0")."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version.strip())
    if match is None:
        raise ValueError(f"{version!r} does not start with a version number")
    return ".".join(part or "0" for part in match.groups())


def minimum_macos(wheel_tags: Iterable[Iterable[str]]) -> str:
    """The newest macOS that any of the installed wheels asks for (each item: one wheel's tags), at least the floor.

    A wheel with several macOS tags (one per architecture) installs on the oldest of them.
    """
    newest = tuple(int(part) for part in MINIMUM_MACOS_FLOOR.split("."))
    for tags in wheel_tags:
        versions = [(int(m[1]), int(m[2])) for tag in tags for m in _MACOS_TAG.finditer(tag)]
        if versions:
            newest = max(newest, min(versions))
    return f"{newest[0]}.{newest[1]}"


def installed_wheel_tags() -> list[list[str]]:
    """The `Tag` lines of every distribution installed in this environment (the one being bundled)."""
    found = []
    for dist in importlib.metadata.distributions():
        text = dist.read_text("WHEEL") or ""
        found.append([line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")])
    return found


def info_plist(version: str, minimum_system: str | None = None) -> dict[str, Any]:
    """Perch's Info.plist keys for `version`; the minimum macOS is read from the installed wheels unless given."""
    number = bundle_version(version)
    return {
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleName": "Perch",
        "CFBundleDisplayName": "Perch",
        "CFBundleShortVersionString": number,
        "CFBundleVersion": number,
        "CFBundleDevelopmentRegion": "en",
        "LSApplicationCategoryType": "public.app-category.productivity",
        "LSMinimumSystemVersion": minimum_system or minimum_macos(installed_wheel_tags()),
        # A menu bar app: no Dock icon and no menu bar of its own.
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": "Copyright © 2026 The Perch authors. MIT License.",
        "NSMicrophoneUsageDescription": MICROPHONE_USAGE,
        "PerchAccessibilityUsageDescription": ACCESSIBILITY_USAGE,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python packaging/macos/info_plist.py VERSION")
    sys.stdout.buffer.write(plistlib.dumps(info_plist(sys.argv[1])))
