"""Wayland: typing through the XDG RemoteDesktop portal, for desktops where wtype and ydotool cannot (GNOME, KDE).

The portal (org.freedesktop.portal.RemoteDesktop) hands out a session that may send key events once the person
has allowed it: CreateSession, SelectDevices (the keyboard, with permission to persist), then Start, which shows
the desktop's permission dialog. Each request answers through a `Request::Response` signal, as in
`app.hotkeys.wayland`. The session is opened on first use, on the calling thread (the app's typing thread), and
kept; the restore token that Start returns is kept in a small file, so later sessions start without asking.

Characters are sent as keysyms with NotifyKeyboardKeysym. The desktop turns a keysym into a key of the active
layout (adding Shift or AltGr itself) and silently drops one that the layout does not have, so `auto` types only
ASCII text and pastes the rest through wl-clipboard and Ctrl+V. Keysyms are the ones layouts use: the legacy
keysym where X11 has one (Ł is `Lstroke`, not U+0141), from libxkbcommon, else the Unicode keysym.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from app.hotkeys.dbus import (
    BUS_NAME,
    BUS_PATH,
    ERROR,
    METHOD_CALL,
    METHOD_RETURN,
    NO_REPLY_EXPECTED,
    SIGNAL,
    Connection,
    DBusError,
    Message,
    Variant,
    session_bus_address,
)
from app.hotkeys.wayland import (
    PORTAL_NAME,
    PORTAL_PATH,
    PROPERTIES,
    REGISTRY,
    REQUEST,
    SESSION,
    PortalRefusedError,
    new_token,
    request_path,
)
from app.injection.timing import KEYSTROKE_S, TYPE_SETUP_S, time_budget
from app.injection.types import InjectionError, Method, WindowRef, normalize_newlines
from app.injection.wayland import _WaylandTypist, _wl_copy
from app.injection.x11_keymap import KEYSYM_CONTROL_L, KEYSYM_RETURN, KEYSYM_TAB, KEYSYM_V, char_keysym
from stt.paths import data_dir

log = logging.getLogger("perch.injection")

REMOTE_DESKTOP = "org.freedesktop.portal.RemoteDesktop"
KEYBOARD = 1
"""The KEYBOARD bit of the portal's device types."""
PERSIST_UNTIL_REVOKED = 2
"""SelectDevices `persist_mode`: the permission lasts until the person withdraws it."""
PRESSED, RELEASED = 1, 0

PROBE_TIMEOUT_S = 0.5
"""How long `choose_typist` waits for the running portal to answer (it runs on the GUI thread)."""
CALL_TIMEOUT_S = 5.0
"""Portal calls that need no answer from the person, including starting the portal on demand."""
START_TIMEOUT_S = 60.0
"""How long Start waits for the person to answer the desktop's permission dialog."""
RETRY_AFTER_S = 10.0
"""After a session failed to start (other than by refusal), how long typing gives up at once instead of retrying."""
CHECK_AGAIN_S = 60.0
"""How long the finding that the portal cannot type holds before the portal is asked again."""
KEYS_IN_FLIGHT = 64
"""Key events sent before waiting for the portal's replies: fast, without flooding the bus."""

NO_PORTAL = "the desktop has no XDG portal (xdg-desktop-portal is not running)"
REFUSED = (
    "typing was not allowed: the desktop's request to let Perch control the keyboard was declined; to allow it, "
    "restart Perch and allow remote control when the desktop asks"
)


def default_token_file() -> Path:
    """Where the portal's restore token is kept between runs."""
    return data_dir() / "remote-desktop-token"


# Characters as keysyms.


@functools.cache
def _xkb_from_utf32() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0"
    try:
        function = ctypes.CDLL(name).xkb_utf32_to_keysym
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_uint32]
    function.restype = ctypes.c_uint32
    return lambda code: int(function(code))


def layout_keysyms_known() -> bool:
    """Whether libxkbcommon is there to name characters with the legacy keysyms that layouts use."""
    return _xkb_from_utf32() is not None


def portal_keysym(char: str) -> int | None:
    """The keysym that types a character (Return for a newline, Tab for a tab); None for other control characters.

    The legacy keysym where one exists (through libxkbcommon), since keyboard layouts are written with those;
    without libxkbcommon, Latin-1 as is and everything else as a Unicode keysym.
    """
    if char == "\n":
        return KEYSYM_RETURN
    if char == "\t":
        return KEYSYM_TAB
    code = ord(char)
    if code < 0x20 or 0x7F <= code < 0xA0:
        return None
    from_utf32 = _xkb_from_utf32()
    keysym = from_utf32(code) if from_utf32 is not None else 0
    return keysym or char_keysym(char)


def text_keysyms(text: str) -> list[int]:
    """The keysyms that type a text, one per character (CR LF and CR become one Return)."""
    keysyms = (portal_keysym(char) for char in normalize_newlines(text))
    return [keysym for keysym in keysyms if keysym is not None]


def key_events(keysyms: Iterable[int]) -> list[tuple[int, int]]:
    """A press and a release for each keysym."""
    return [event for keysym in keysyms for event in ((keysym, PRESSED), (keysym, RELEASED))]


PASTE_EVENTS = [(KEYSYM_CONTROL_L, PRESSED), (KEYSYM_V, PRESSED), (KEYSYM_V, RELEASED), (KEYSYM_CONTROL_L, RELEASED)]


# Is the portal there?


def _keyboard_missing(connection: Connection, timeout: float) -> str | None:
    """Why the portal on this connection's bus cannot send keys; None when it can."""
    try:
        reply = connection.call(
            PORTAL_NAME,
            PORTAL_PATH,
            PROPERTIES,
            "Get",
            signature="ss",
            body=(REMOTE_DESKTOP, "AvailableDeviceTypes"),
            timeout=timeout,
        )
    except DBusError as exc:
        if exc.name.endswith(("ServiceUnknown", "NameHasNoOwner")):
            return NO_PORTAL
        if ".Spawn." in exc.name:
            return f"the desktop's XDG portal failed to start ({exc.message or exc.name})"
        if exc.name in ("NoReply", "Disconnected"):
            return f"the desktop's XDG portal did not answer ({exc})"
        return f"the desktop's XDG portal has no remote desktop support ({exc.name})"
    if not int(reply.body[0]) & KEYBOARD:
        return "the desktop's remote desktop portal offers no keyboard"
    return None


def remote_desktop_missing(
    environ: Mapping[str, str] | None = None, *, timeout: float = PROBE_TIMEOUT_S, start_portal: bool = False
) -> str | None:
    """Why the RemoteDesktop portal cannot type here; None where it can, or may (see below).

    A running portal is asked for its keyboard (AvailableDeviceTypes). One that is not running but that the bus
    can start counts as there unless `start_portal`: starting it takes longer than the GUI thread may wait, so
    `PortalTypist.problem` asks again from the typing thread.
    """
    address = session_bus_address(os.environ if environ is None else environ)
    if not address:
        return "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
    try:
        connection = Connection(address, timeout=timeout)
    except (DBusError, OSError) as exc:
        return f"the D-Bus session bus cannot be reached ({exc})"
    try:
        if not start_portal:
            owned = connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "NameHasOwner", signature="s", body=(PORTAL_NAME,))
            if not owned.body[0]:
                names = connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "ListActivatableNames").body[0]
                return None if PORTAL_NAME in names else NO_PORTAL
        return _keyboard_missing(connection, timeout)
    except (DBusError, OSError) as exc:
        return f"the D-Bus session bus did not answer ({exc})"
    finally:
        connection.close()


# The typist.


class _UnansweredError(Exception):
    """A portal request got no Response in time (for Start: nobody answered the permission dialog)."""

    def __init__(self, member: str, timeout: float) -> None:
        super().__init__(member)
        self.member = member
        self.timeout = timeout


class PortalTypist(_WaylandTypist):
    """Keystrokes through the RemoteDesktop portal's session; pastes with wl-clipboard and Ctrl+V sent the same way.

    Not for use by two threads at once (the app types from one); `close` may come from any thread.
    """

    name = "Wayland (RemoteDesktop portal)"

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        copy: Callable[[str], None] | None = None,
        token_file: Path | None = None,
        app_id: str | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self._copy = copy
        self.token_file = token_file or default_token_file()
        self.app_id = app_id
        """Registered with the host portal registry first (a desktop file name), where the portal has one."""
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._missing: str | None = None
        self._check_after: float | None = 0.0
        """When to ask the portal (again) whether it can type; None once it said it can."""
        self._refused: str | None = None
        self._failure: tuple[float, str] | None = None
        self.session_handle: str | None = None
        self.sessions_started = 0

    # What the app asks.

    def problem(self) -> str | None:
        """Why the portal cannot type, or that the person declined; None when it can be tried.

        The portal is asked on first use; a finding that it cannot type is asked again after CHECK_AGAIN_S.
        """
        if self._refused is not None:
            return self._refused
        if self._check_after is not None:
            with self._lock:
                if self._check_after is not None and time.monotonic() >= self._check_after:
                    self._missing = self._check()
                    self._check_after = None if self._missing is None else time.monotonic() + CHECK_AGAIN_S
        if self._missing is None:
            return None
        return (
            f"typing on this Wayland desktop needs its remote desktop portal, but {self._missing}; install "
            "xdg-desktop-portal with your desktop's backend (xdg-desktop-portal-gnome or xdg-desktop-portal-kde), "
            "or wtype or ydotool"
        )

    def _check(self) -> str | None:
        try:
            connection = self._connected()
        except (DBusError, OSError) as exc:
            return f"the D-Bus session bus cannot be reached ({exc})"
        missing = _keyboard_missing(connection, CALL_TIMEOUT_S)
        if missing is not None:
            self._disconnect()
        return missing

    def copy(self, text: str) -> None:
        """Through the given function (the app's clipboard), else wl-copy."""
        if self._copy is not None:
            self._copy(text)
        elif shutil.which("wl-copy"):
            _wl_copy(text.encode())
        else:
            raise InjectionError("copying on Wayland needs wl-copy: install wl-clipboard")

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        """Type ASCII text that fits the time budget; paste the rest where wl-clipboard is there to paste with.

        The desktop drops keysyms that the active layout lacks, and ASCII is what nearly every layout has.
        """
        fits = TYPE_SETUP_S + KEYSTROKE_S * len(text) <= time_budget(text)
        if fits and text.isascii():
            return "type"
        return "paste" if self._can_paste() else "type"

    def _can_paste(self) -> bool:
        return all(shutil.which(tool) for tool in self._tools())

    def type_text(self, text: str) -> None:
        """A key press and release per character through the portal session (opened first if need be)."""
        self._send(key_events(text_keysyms(text)))

    def paste(self, text: str) -> bool:
        """wl-copy, Ctrl+V through the session, and the old clipboard back after PASTE_SETTLE_S."""
        if self._refused is not None:
            raise InjectionError(self._refused)
        if not self._can_paste():
            raise InjectionError("pasting on Wayland needs wl-copy and wl-paste: install wl-clipboard")
        with self._lock:
            self._session()  # before the clipboard changes: the first session may ask the person
        return super().paste(text)

    def _press_paste(self) -> None:
        self._send(PASTE_EVENTS)

    def close(self) -> None:
        """Close the portal session and the connection; the next text opens a new session (restored silently)."""
        if not self._lock.acquire(blocking=False):
            connection = self._connection
            if connection is not None:
                connection.shutdown()  # ends a wait for the permission dialog on the typing thread
            self._lock.acquire()
        try:
            if self.session_handle is not None and self._connection is not None:
                self._close_session(self._connection, self.session_handle)
            self._disconnect()
        finally:
            self._lock.release()

    # The connection and the session.

    def _connected(self) -> Connection:
        if self._connection is None:
            address = session_bus_address(self.environ)
            if not address:
                raise DBusError("NoBus", "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
            connection = Connection(address, timeout=CALL_TIMEOUT_S)
            try:
                if self.app_id:
                    try:
                        connection.call(
                            PORTAL_NAME, PORTAL_PATH, REGISTRY, "Register", signature="sa{sv}", body=(self.app_id, {})
                        )
                    except DBusError as exc:
                        log.debug("the portal has no host registry: %s", exc)
                connection.add_match(f"type='signal',sender='{PORTAL_NAME}',interface='{SESSION}',member='Closed'")
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self.session_handle = None
        if connection is not None:
            connection.close()

    def _session(self) -> tuple[Connection, str]:
        """The connection and a started session: the one kept, or a new one (which may ask the person)."""
        if self._refused is not None:
            raise InjectionError(self._refused)
        if self._failure is not None:
            until, reason = self._failure
            if time.monotonic() < until:
                raise InjectionError(reason)
            self._failure = None
        try:
            connection = self._connected()
            self._drain(connection)
            if self.session_handle is None:
                self.session_handle = self._start_session(connection)
                self.sessions_started += 1
            return connection, self.session_handle
        except PortalRefusedError as exc:
            if exc.code == 1:
                self._refused = REFUSED
                raise InjectionError(REFUSED) from exc
            reason = f"the desktop could not start remote control for typing ({exc}); Perch tries again shortly"
        except _UnansweredError as exc:
            if exc.member == "Start":
                reason = (
                    "the desktop's question whether Perch may control the keyboard was not answered within "
                    f"{exc.timeout:g} s; Perch asks again with a later text"
                )
            else:
                reason = f"the remote desktop portal did not answer {exc.member} within {exc.timeout:g} s"
        except (DBusError, OSError) as exc:
            self._disconnect()
            reason = f"the remote desktop portal failed: {exc}"
        self._failure = (time.monotonic() + RETRY_AFTER_S, reason)
        raise InjectionError(reason)

    def _start_session(self, connection: Connection) -> str:
        token = new_token()
        options = {"handle_token": Variant("s", token), "session_handle_token": Variant("s", new_token())}
        results = self._request(connection, "CreateSession", "a{sv}", (options,), token, timeout=CALL_TIMEOUT_S)
        session = str(results["session_handle"])
        try:
            restore = self._load_token()
            token = new_token()
            select = {
                "handle_token": Variant("s", token),
                "types": Variant("u", KEYBOARD),
                "persist_mode": Variant("u", PERSIST_UNTIL_REVOKED),
            }
            if restore:
                select["restore_token"] = Variant("s", restore)
            self._request(connection, "SelectDevices", "oa{sv}", (session, select), token, timeout=CALL_TIMEOUT_S)
            token = new_token()
            body = (session, "", {"handle_token": Variant("s", token)})
            results = self._request(connection, "Start", "osa{sv}", body, token, timeout=self.start_timeout)
        except BaseException:
            with contextlib.suppress(DBusError, OSError):
                self._close_session(connection, session)
            raise
        if restore or results.get("restore_token"):
            self._save_token(str(results.get("restore_token") or ""))  # a restore token works once
        devices = results.get("devices")
        if devices is not None and not int(devices) & KEYBOARD:
            self._close_session(connection, session)
            raise PortalRefusedError(1)
        log.info("remote desktop session %s started for typing", session)
        return session

    def _request(
        self, connection: Connection, member: str, signature: str, body: tuple[Any, ...], token: str, *, timeout: float
    ) -> dict[str, Any]:
        """Call a method that answers through a Request object; the results of its Response."""
        path = request_path(connection.unique_name, token)
        rule = f"type='signal',interface='{REQUEST}',member='Response',path='{path}'"
        connection.add_match(rule)
        try:
            reply = connection.call(PORTAL_NAME, PORTAL_PATH, REMOTE_DESKTOP, member, signature=signature, body=body)
            handle = str(reply.body[0])
            if handle != path:  # a portal older than handle tokens
                connection.add_match(f"type='signal',interface='{REQUEST}',member='Response',path='{handle}'")
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                message = connection.receive(timeout=remaining) if remaining > 0 else None
                if message is None:
                    self._send_no_reply(connection, handle, REQUEST, "Close")
                    raise _UnansweredError(member, timeout)
                if message.type == SIGNAL and message.interface == REQUEST and message.path == handle:
                    code, results = message.body
                    if code != 0:
                        raise PortalRefusedError(code)
                    return dict(results)
                self._handle(message)
        finally:
            with contextlib.suppress(DBusError, OSError):
                connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "RemoveMatch", signature="s", body=(rule,))

    def _close_session(self, connection: Connection, session: str) -> None:
        self._send_no_reply(connection, session, SESSION, "Close")
        if session == self.session_handle:
            self.session_handle = None

    @staticmethod
    def _send_no_reply(connection: Connection, path: str, interface: str, member: str) -> None:
        message = Message(METHOD_CALL, path=path, interface=interface, member=member, destination=PORTAL_NAME)
        message.flags = NO_REPLY_EXPECTED
        with contextlib.suppress(OSError):
            connection.send(message)

    def _handle(self, message: Message) -> None:
        """A message between replies: the desktop closing our session is the one that matters."""
        if (
            message.type == SIGNAL
            and message.interface == SESSION
            and message.member == "Closed"
            and message.path == self.session_handle
        ):
            log.info("the desktop closed the remote desktop session %s; the next text opens another", message.path)
            self.session_handle = None

    def _drain(self, connection: Connection) -> None:
        """Handle what arrived since the last text (a Closed signal, say)."""
        while (message := connection.receive(timeout=0.001)) is not None:
            self._handle(message)

    # Key events.

    def _send(self, events: list[tuple[int, int]]) -> None:
        """Send key events, a window of them in flight at a time; a session the desktop closed is reopened once."""
        with self._lock:
            for attempt in range(2):
                connection, session = self._session()
                try:
                    taken = self._send_events(connection, session, events)
                    if taken is None:
                        return
                    self._drain(connection)
                except (DBusError, OSError) as exc:
                    self._disconnect()
                    raise InjectionError(f"the remote desktop portal stopped answering: {exc}") from exc
                ended = self.session_handle is None
                if not ended:
                    self._close_session(connection, session)  # it refuses keys: the next text gets a new one
                if taken or attempt or not ended:
                    raise InjectionError(
                        "the desktop did not take the keystrokes (its remote desktop session ended); Perch opens a "
                        "new session for the next text"
                    )

    def _send_events(self, connection: Connection, session: str, events: list[tuple[int, int]]) -> int | None:
        """None when every event was taken; else how many were taken before the first refused one."""
        pending: dict[int, int] = {}
        taken = 0
        refused: int | None = None

        def collect(keep: int) -> None:
            nonlocal taken, refused
            deadline = time.monotonic() + CALL_TIMEOUT_S
            while len(pending) > keep:
                message = connection.receive(timeout=max(deadline - time.monotonic(), 0.001))
                if message is None:
                    raise DBusError("NoReply", "no reply to NotifyKeyboardKeysym")
                if message.type in (METHOD_RETURN, ERROR) and message.reply_serial in pending:
                    index = pending.pop(message.reply_serial)
                    if message.type == ERROR:
                        log.warning("the portal refused a key event: %s %s", message.error_name, message.body)
                        refused = index if refused is None else min(refused, index)
                    elif refused is None:
                        taken += 1
                else:
                    self._handle(message)

        for index, (keysym, state) in enumerate(events):
            if refused is not None and state == PRESSED:
                break  # stop between characters once one was refused
            call = Message(
                METHOD_CALL,
                path=PORTAL_PATH,
                interface=REMOTE_DESKTOP,
                member="NotifyKeyboardKeysym",
                destination=PORTAL_NAME,
                signature="oa{sv}iu",
                body=(session, {}, keysym, state),
            )
            pending[connection.send(call)] = index
            if len(pending) >= KEYS_IN_FLIGHT:
                collect(KEYS_IN_FLIGHT // 2)
        collect(0)
        return None if refused is None else taken

    # The restore token.

    def _load_token(self) -> str:
        try:
            return self.token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _save_token(self, token: str) -> None:
        """Keep the new token, readable by the person only; an empty one removes the used-up old one."""
        try:
            if not token:
                self.token_file.unlink(missing_ok=True)
                return
            self.token_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.token_file.with_name(self.token_file.name + ".new")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(token)
            temporary.replace(self.token_file)
        except OSError as exc:
            log.warning("could not keep the remote desktop restore token in %s: %s", self.token_file, exc)
