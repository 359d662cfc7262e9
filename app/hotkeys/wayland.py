"""Wayland: the XDG GlobalShortcuts portal, and what to set up by hand where the desktop has none.

Wayland lets no program grab keys; the desktop binds them. The portal (org.freedesktop.portal.GlobalShortcuts,
in xdg-desktop-portal with the KDE, GNOME 48+ or Hyprland backends) takes a session, the shortcuts with their
preferred triggers (`BindShortcuts`; the desktop may ask the person to confirm or pick other keys), then sends
`Activated` when a shortcut's keys go down and `Deactivated` when they go up: press and release. Requests answer
through a `Request::Response` signal on a path derived from our bus name and a token, so the match for it is added
before each call.

The conversation runs on a thread of its own over `app.hotkeys.dbus` (PySide6's QtDBus cannot send the portal's
`a(sa{sv})` argument). Where the portal is missing, `problem()` says how to bind `perch ptt press` and `perch ptt
release` (or `perch toggle`) in the desktop's own key settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from app.hotkeys.base import ACTION_LABELS, Action, Callback, PressTracker, bindings
from app.hotkeys.dbus import METHOD_CALL, NO_REPLY_EXPECTED, SIGNAL, Connection, DBusError, Message, Variant
from app.hotkeys.keys import Hotkey, parse_hotkey

log = logging.getLogger("perch.hotkeys")

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SESSION = "org.freedesktop.portal.Session"
REGISTRY = "org.freedesktop.host.portal.Registry"
PROPERTIES = "org.freedesktop.DBus.Properties"
CHECK_TIMEOUT_S = 3.0
"""How long the check for the portal waits (a portal started on demand may take a moment)."""

TRIGGER_MODIFIERS = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "super": "LOGO"}
"""Modifier names of the freedesktop shortcuts specification (xkbcommon's XKB_MOD_NAME_*)."""
DEFAULT_PTT = "Ctrl+Alt+Space"
DEFAULT_TOGGLE = "Ctrl+Alt+D"


def preferred_trigger(hotkey: Hotkey) -> str:
    """The hotkey as the shortcuts specification writes it: `CTRL+ALT+space`, `LOGO+F9`."""
    order = ("ctrl", "alt", "shift", "super")
    return "+".join([*(TRIGGER_MODIFIERS[m] for m in order if m in hotkey.modifiers), hotkey.keysym_name])


def shortcut_list(chosen: Mapping[Action, Hotkey]) -> list[tuple[str, dict[str, Variant]]]:
    """The `shortcuts` argument of BindShortcuts: (id, {description, preferred_trigger}) for each hotkey."""
    return [
        (
            action,
            {
                "description": Variant("s", f"Perch: {ACTION_LABELS[action]}"),
                "preferred_trigger": Variant("s", preferred_trigger(hotkey)),
            },
        )
        for action, hotkey in chosen.items()
    ]


def request_path(unique_name: str, token: str) -> str:
    """The object path of the Request a call with this handle_token answers on."""
    sender = unique_name.lstrip(":").replace(".", "_")
    return f"{PORTAL_PATH}/request/{sender}/{token}"


def new_token() -> str:
    """A handle token: a valid object path element, unique enough for one process."""
    return f"perch_{secrets.token_hex(6)}"


class PortalRefusedError(Exception):
    """A portal request ended with a response other than success."""

    def __init__(self, code: int) -> None:
        super().__init__("cancelled" if code == 1 else f"failed (response {code})")
        self.code = code


# Desktops without the portal.


def desktop_name(environ: Mapping[str, str]) -> str:
    """`sway`, `hyprland`, `gnome`, `kde` or `other`, from the session's environment."""
    names = ":".join(
        environ.get(key, "") for key in ("XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION")
    ).lower()
    if environ.get("SWAYSOCK") or "sway" in names:
        return "sway"
    if environ.get("HYPRLAND_INSTANCE_SIGNATURE") or "hyprland" in names:
        return "hyprland"
    if environ.get("KDE_FULL_SESSION") or "kde" in names or "plasma" in names:
        return "kde"
    if "gnome" in names or "unity" in names:
        return "gnome"
    return "other"


def _modifier_words(hotkey: Hotkey, names: Mapping[str, str]) -> list[str]:
    return [names[m] for m in ("super", "ctrl", "alt", "shift") if m in hotkey.modifiers]


def _sway_combo(hotkey: Hotkey) -> str:
    names = {"ctrl": "Ctrl", "alt": "Mod1", "shift": "Shift", "super": "Mod4"}
    return "+".join([*_modifier_words(hotkey, names), hotkey.keysym_name])


def _hyprland_mods(hotkey: Hotkey) -> str:
    return " ".join(_modifier_words(hotkey, {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "super": "SUPER"}))


def _gnome_accelerator(hotkey: Hotkey) -> str:
    names = {"ctrl": "<Control>", "alt": "<Alt>", "shift": "<Shift>", "super": "<Super>"}
    return "".join(_modifier_words(hotkey, names)) + hotkey.keysym_name


def binding_instructions(desktop: str, ptt: Hotkey | None, toggle: Hotkey | None) -> str:
    """How to bind Perch's commands to keys in this desktop's own settings."""
    ptt = ptt or parse_hotkey(DEFAULT_PTT)
    toggle = toggle or parse_hotkey(DEFAULT_TOGGLE)
    assert ptt is not None and toggle is not None
    if desktop == "sway":
        return (
            "Sway: add to ~/.config/sway/config, then reload (Mod+Shift+C):\n"
            f"  bindsym {_sway_combo(ptt)} exec perch ptt press\n"
            f"  bindsym --release {_sway_combo(ptt)} exec perch ptt release\n"
            f"  bindsym {_sway_combo(toggle)} exec perch toggle\n"
            "Release bindings fire when the key goes up while its modifiers are still held; a single key such as "
            "F9 or Pause avoids the question."
        )
    if desktop == "hyprland":
        return (
            "Hyprland: add to ~/.config/hypr/hyprland.conf (or install xdg-desktop-portal-hyprland for the "
            "portal):\n"
            f"  bind = {_hyprland_mods(ptt)}, {ptt.keysym_name}, exec, perch ptt press\n"
            f"  bindr = {_hyprland_mods(ptt)}, {ptt.keysym_name}, exec, perch ptt release\n"
            f"  bind = {_hyprland_mods(toggle)}, {toggle.keysym_name}, exec, perch toggle"
        )
    if desktop == "gnome":
        base = "org.gnome.settings-daemon.plugins.media-keys"
        path = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/perch-toggle/"
        return (
            "GNOME 48 or newer offers the shortcuts portal (install xdg-desktop-portal-gnome). Older GNOME runs a "
            "command only when a key goes down, so push to talk cannot hear the release: use toggle mode and bind "
            "`perch toggle` in Settings › Keyboard › Custom Shortcuts, or with gsettings (this replaces your list "
            f"of custom shortcuts; add {path!r} to it instead if you have some):\n"
            f"  gsettings set {base} custom-keybindings \"['{path}']\"\n"
            f"  gsettings set {base}.custom-keybinding:{path} name 'Perch toggle'\n"
            f"  gsettings set {base}.custom-keybinding:{path} command 'perch toggle'\n"
            f"  gsettings set {base}.custom-keybinding:{path} binding '{_gnome_accelerator(toggle)}'"
        )
    if desktop == "kde":
        return (
            "KDE Plasma 5.27 or newer offers the shortcuts portal (install xdg-desktop-portal-kde). Without it, "
            "custom shortcuts run a command only when a key goes down: use toggle mode and add `perch toggle` in "
            f"System Settings › Keyboard › Shortcuts › Add New › Command or Script, on {toggle}."
        )
    return (
        "Bind keys in your desktop's settings: `perch ptt press` when the push-to-talk key goes down and "
        f"`perch ptt release` when it goes up ({ptt}), or `perch toggle` ({toggle}) where the desktop runs "
        "commands only on key presses (then use toggle mode)."
    )


# The backend.


class PortalBackend:
    """Global hotkeys through the XDG GlobalShortcuts portal on the session bus."""

    name = "XDG GlobalShortcuts portal"

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        connect: Callable[[], Connection] | None = None,
        app_id: str | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self._connect = connect or self._connect_session_bus
        self.app_id = app_id
        """Registered with the host portal registry first (a desktop file name), where the portal has one."""
        self._checked = False
        self._missing: str | None = None
        self._chosen: dict[Action, Hotkey] = {}
        self._ptt: Hotkey | None = None
        self._toggle: Hotkey | None = None
        self._connection: Connection | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._tracker: PressTracker | None = None
        self._on_problem: Callback | None = None
        self.session_handle: str | None = None
        self.bound: dict[str, str] = {}
        """Shortcut id → the trigger the desktop reports for it (its `trigger_description`)."""

    def _connect_session_bus(self) -> Connection:
        from app.hotkeys.dbus import session_bus_address

        return Connection(session_bus_address(self.environ))

    # Availability.

    def portal_missing(self) -> str | None:
        """Why the portal cannot be used (no session bus, no portal, no GlobalShortcuts); None when it can."""
        if not self._checked:
            self._missing, self._checked = self._check(), True
        return self._missing

    def _check(self) -> str | None:
        try:
            connection = self._connect()
        except (DBusError, OSError) as exc:
            return f"no D-Bus session bus to reach the shortcuts portal ({exc})"
        try:
            connection.call(
                PORTAL_NAME,
                PORTAL_PATH,
                PROPERTIES,
                "Get",
                signature="ss",
                body=(SHORTCUTS, "version"),
                timeout=CHECK_TIMEOUT_S,
            )
        except DBusError as exc:
            if exc.name.endswith(("ServiceUnknown", "NameHasNoOwner")):
                return "the desktop has no XDG portal (xdg-desktop-portal is not running)"
            return f"the desktop's XDG portal has no global shortcuts ({exc.name})"
        except OSError as exc:
            return f"the shortcuts portal did not answer ({exc})"
        finally:
            connection.close()
        return None

    def problem(self) -> str | None:
        """None where the portal offers global shortcuts; else why not and how to bind keys by hand."""
        missing = self.portal_missing()
        if missing is None:
            return None
        desktop = desktop_name(self.environ)
        return f"Global hotkeys need the desktop's help on Wayland: {missing}.\n" + binding_instructions(
            desktop, self._ptt, self._toggle
        )

    # Registering and running.

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Remember the hotkeys; the portal binds them when `start` opens the session (the desktop may ask)."""
        if self._thread is not None:
            raise RuntimeError("stop() the hotkeys before registering others")
        self._ptt, self._toggle = ptt, toggle
        self._chosen, problems = bindings(ptt, toggle)
        if self._chosen:
            problem = self.problem()
            if problem is not None:
                problems.append(problem)
        return problems

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Open a session and bind the shortcuts on a thread, which then reports Activated and Deactivated."""
        if self._thread is not None:
            raise RuntimeError("the hotkeys are already started")
        self._tracker = PressTracker(on_press, on_release)
        self._on_problem = on_problem
        if not self._chosen or self.portal_missing() is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="perch-hotkeys-portal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the session and the connection; the thread reports a press still held as released."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            if self.session_handle is not None:
                close = Message(METHOD_CALL, path=self.session_handle, interface=SESSION, member="Close")
                close.destination, close.flags = PORTAL_NAME, NO_REPLY_EXPECTED
                with contextlib.suppress(OSError):
                    connection.send(close)
            connection.shutdown()
        thread.join(timeout=5)
        if thread.is_alive():
            log.warning("the portal hotkey thread did not stop")
        if connection is not None:
            connection.close()
        self._connection = None
        self.session_handle = None

    def _problem(self, text: str) -> None:
        log.warning("portal hotkeys: %s", text)
        if self._on_problem is not None and not self._stopping.is_set():
            self._on_problem(text)

    def _run(self) -> None:
        tracker = self._tracker
        assert tracker is not None
        connection: Connection | None = None
        try:
            self._connection = connection = self._connect()
            if self._stopping.is_set():
                return
            if self.app_id:
                try:
                    connection.call(
                        PORTAL_NAME, PORTAL_PATH, REGISTRY, "Register", signature="sa{sv}", body=(self.app_id, {})
                    )
                except DBusError as exc:
                    log.debug("the portal has no host registry: %s", exc)
            connection.add_match(f"type='signal',sender='{PORTAL_NAME}',interface='{SHORTCUTS}'")
            self.session_handle = self._create_session(connection)
            self.bound = self._bind(connection, self.session_handle)
            missing = [action for action in self._chosen if action not in self.bound]
            if missing:
                names = ", ".join(f"{ACTION_LABELS[a]} ({self._chosen[a]})" for a in missing)
                self._problem(f"the desktop did not bind {names}; set it in the desktop's shortcut settings for Perch")
            while not self._stopping.is_set():
                message = connection.receive()
                if message is not None:
                    self.handle_message(message)
        except PortalRefusedError as exc:
            self._problem(f"binding the global hotkeys was {exc}; they do not work until Perch is restarted")
        except (DBusError, OSError) as exc:
            if not self._stopping.is_set():
                self._problem(f"the shortcuts portal stopped answering: {exc}")
        finally:
            tracker.release_all()
            if connection is not None and self._stopping.is_set():
                connection.close()

    def _request(self, connection: Connection, member: str, signature: str, body: tuple[Any, ...], token: str) -> Any:
        """Call a portal method that answers through a Request object; the results of its Response."""
        path = request_path(connection.unique_name, token)
        connection.add_match(f"type='signal',interface='{REQUEST}',member='Response',path='{path}'")
        handle = connection.call(PORTAL_NAME, PORTAL_PATH, SHORTCUTS, member, signature=signature, body=body).body[0]
        if handle != path:  # a portal older than handle tokens
            connection.add_match(f"type='signal',interface='{REQUEST}',member='Response',path='{handle}'")
        while True:
            message = connection.receive()
            if message is None:
                continue
            if message.type == SIGNAL and message.interface == REQUEST and message.path == handle:
                code, results = message.body
                if code != 0:
                    raise PortalRefusedError(code)
                return results
            self.handle_message(message)

    def _create_session(self, connection: Connection) -> str:
        options = {"handle_token": Variant("s", new_token()), "session_handle_token": Variant("s", new_token())}
        results = self._request(connection, "CreateSession", "a{sv}", (options,), options["handle_token"].value)
        return str(results["session_handle"])

    def _bind(self, connection: Connection, session: str) -> dict[str, str]:
        token = new_token()
        body = (session, shortcut_list(self._chosen), "", {"handle_token": Variant("s", token)})
        results = self._request(connection, "BindShortcuts", "oa(sa{sv})sa{sv}", body, token)
        bound = {str(sid): str(info.get("trigger_description", "")) for sid, info in results.get("shortcuts", [])}
        for sid, trigger in bound.items():
            log.info("portal hotkey %s bound to %s", sid, trigger or "(no trigger yet)")
        return bound

    def handle_message(self, message: Message) -> None:
        """A signal from the portal: Activated and Deactivated of our session become presses and releases."""
        tracker = self._tracker
        if tracker is None or message.type != SIGNAL or message.interface != SHORTCUTS:
            return
        if message.member in ("Activated", "Deactivated"):
            session, shortcut_id = message.body[0], message.body[1]
            if session != self.session_handle:
                return
            if message.member == "Activated":
                tracker.down(shortcut_id, shortcut_id if shortcut_id in self._chosen else None)
            else:
                tracker.up(shortcut_id)
        elif message.member == "ShortcutsChanged" and message.body and message.body[0] == self.session_handle:
            self.bound = {str(sid): str(info.get("trigger_description", "")) for sid, info in message.body[1]}
            log.info("portal hotkeys changed: %s", self.bound)
