"""Global hotkeys: which backend the app will use and whether it can take the configured keys right now."""

from __future__ import annotations

from dataclasses import dataclass

from app.doctor.checks import Check
from app.doctor.context import DoctorContext
from app.doctor.fixes import install_command
from app.hotkeys import Hotkey, HotkeyBackend, UnavailableBackend, choose_backend, parse_hotkey

NAME = "Hotkeys"
SPARE_COMBINATION = Hotkey("F12", frozenset({"ctrl", "alt", "shift", "super"}))
"""Grabbed for a moment to see that key grabs work while the running app holds the configured keys."""

PORTAL_PACKAGES = {"gnome": "portal-gnome", "kde": "portal-kde", "hyprland": "portal-hyprland"}


@dataclass(frozen=True)
class Wanted:
    """The configured hotkeys, how to name them, and the lines every result carries."""

    ptt: Hotkey | None
    toggle: Hotkey | None
    keys: str
    details: tuple[str, ...]


def configured(ptt_text: str, toggle_text: str) -> tuple[Hotkey | None, Hotkey | None, list[str]]:
    """The push-to-talk and toggle hotkeys of the settings, and a line for each that cannot be read."""
    keys: list[Hotkey | None] = []
    problems: list[str] = []
    for label, text in (("push-to-talk", ptt_text), ("toggle", toggle_text)):
        try:
            keys.append(parse_hotkey(text))
        except ValueError as exc:
            keys.append(None)
            problems.append(f"the {label} hotkey {text!r} cannot be used: {exc}")
    return keys[0], keys[1], problems


def describe(ptt: Hotkey | None, toggle: Hotkey | None) -> str:
    """The hotkeys in words: `Ctrl+Alt+Space (push to talk) and Ctrl+Alt+D (start/stop)`."""
    parts = [f"{ptt} (push to talk)" if ptt else "", f"{toggle} (start/stop)" if toggle else ""]
    return " and ".join(part for part in parts if part)


def check_hotkeys(context: DoctorContext) -> Check:
    """Pick the backend as the app does and try the keys (unless the running app holds them)."""
    settings = context.effective_settings()
    ptt, toggle, unreadable = configured(settings.ptt_hotkey, settings.toggle_hotkey)
    if unreadable:
        return Check(
            NAME,
            "fail",
            "; ".join(unreadable),
            (),
            "Set the hotkey again in Settings › Hotkeys (for example Ctrl+Alt+Space), or clear it.",
        )
    if ptt is None and toggle is None:
        return Check(
            NAME,
            "warn",
            "no hotkeys are set",
            (),
            "Set a push-to-talk key in Settings › Hotkeys, or bind `perch toggle` to a key in your desktop's "
            "keyboard settings; the tray icon also starts and stops dictation.",
        )
    backend = choose_backend(context.environ, context.platform)
    details = (f"backend: {backend.name}", f"mode: {settings.mode}")
    if isinstance(backend, UnavailableBackend):
        return Check(NAME, "skip", backend.reason, details)
    wanted = Wanted(ptt, toggle, describe(ptt, toggle), details)
    from app.hotkeys.x11 import X11Backend

    if isinstance(backend, X11Backend):
        return _x11(context, backend, wanted)
    from app.hotkeys.wayland import PortalBackend

    if isinstance(backend, PortalBackend):
        return _portal(context, backend, wanted)
    return _native(context, backend, wanted)


def _x11(context: DoctorContext, backend: HotkeyBackend, wanted: Wanted) -> Check:
    """X11 (or XWayland): grab the keys and let go at once; with the app running, a spare combination instead."""
    limitation = getattr(backend, "limitation", None)
    ptt, toggle, keys, details = wanted.ptt, wanted.toggle, wanted.keys, wanted.details
    try:
        problems = backend.register(*((SPARE_COMBINATION, None) if context.app_running else (ptt, toggle)))
    finally:
        backend.stop()
    trouble = [problem for problem in problems if problem != limitation]
    via = "X11 key grab through XWayland" if limitation else "X11 key grab"
    if context.app_running and trouble:
        return Check(
            NAME,
            "warn",
            f"{keys} are held by the running app, but a test grab failed: {trouble[0]}",
            details,
            "If the hotkeys do not react, quit Perch and run `perch doctor hotkeys` to see which key is taken.",
        )
    if trouble:
        taken = any("already taken" in problem for problem in trouble)
        fix = (
            "Choose other hotkeys in Settings › Hotkeys: another program (a desktop shortcut, another dictation "
            "tool, a second Perch) already uses these."
            if taken
            else "Check that the X server answers (`xdpyinfo`) and that python-xlib is installed."
        )
        return Check(NAME, "fail", "; ".join(trouble), details, fix)
    summary = (
        f"{keys}: registered by the running app ({via})" if context.app_running else f"{keys} can be registered ({via})"
    )
    if limitation:
        return Check(NAME, "warn", f"{summary}; they work only while an X11 window has the focus", details, limitation)
    return Check(NAME, "ok", summary, details)


def _portal(context: DoctorContext, backend: HotkeyBackend, wanted: Wanted) -> Check:
    """Wayland: is there a GlobalShortcuts portal? Without one, how to bind the keys in the desktop."""
    from app.hotkeys.wayland import PortalBackend, binding_instructions, desktop_name

    assert isinstance(backend, PortalBackend)
    ptt, toggle, keys, details = wanted.ptt, wanted.toggle, wanted.keys, wanted.details
    missing = backend.portal_missing()
    if missing is None:
        if context.app_running:
            return Check(NAME, "ok", f"{keys}: registered by the running app (GlobalShortcuts portal)", details)
        return Check(
            NAME,
            "ok",
            f"the desktop's GlobalShortcuts portal is there; it binds {keys} when Perch starts",
            (*details, "the desktop may ask you to confirm the keys the first time"),
        )
    desktop = desktop_name(context.environ)
    fix = binding_instructions(desktop, ptt, toggle)
    package = PORTAL_PACKAGES.get(desktop)
    if package is not None:
        fix = f"{fix}\nFor the portal instead: {install_command(package)}, then log out and in."
    return Check(
        NAME,
        "warn",
        f"no global shortcuts on this Wayland desktop ({missing}): bind the keys in the desktop itself",
        details,
        fix,
    )


def _native(context: DoctorContext, backend: HotkeyBackend, wanted: Wanted) -> Check:
    """Windows and macOS: the backend's own problem (permissions), then a trial registration."""
    keys, details = wanted.keys, wanted.details
    problem = backend.problem()
    if problem is not None:
        return Check(NAME, "fail", f"global hotkeys cannot work: {problem}", details, problem)
    if context.app_running:
        return Check(NAME, "ok", f"{keys}: registered by the running app ({backend.name})", details)
    try:
        problems = backend.register(wanted.ptt, wanted.toggle)
    finally:
        backend.stop()
    if problems:
        return Check(NAME, "fail", "; ".join(problems), details, "Choose other hotkeys in Settings › Hotkeys.")
    return Check(NAME, "ok", f"{keys} can be registered ({backend.name})", details)
