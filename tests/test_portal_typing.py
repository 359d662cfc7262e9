"""Typing through the XDG RemoteDesktop portal: a fake portal on a private D-Bus bus takes the session handshake
and records every key event, as the desktop's portal would."""

from __future__ import annotations

import contextlib
import itertools
import select
import shutil
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import injection
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
    _Reader,
    decode_message,
    message_length,
    split_signature,
)
from app.hotkeys.wayland import PORTAL_NAME, PORTAL_PATH, PROPERTIES, REQUEST, SESSION, request_path
from app.injection import ClipboardOnlyTypist, InjectionError, PortalTypist, choose_typist, deliver
from app.injection import portal as portal_module
from app.injection.portal import PASTE_EVENTS, REMOTE_DESKTOP, key_events, layout_keysyms_known, text_keysyms
from tests.dbus_session import (
    private_session_bus,
    session_bus_fixture,  # noqa: F401  (the `session_bus` fixture)
)

TIMEOUT = 5.0
TEXT = "Grüße, Łódź — 10 €\n"
LAYOUT_KEYSYMS = [0x47, 0x72, 0xFC, 0xDF, 0x65, 0x2C, 0x20, 0x1A3, 0xF3, 0x64, 0x1BC, 0x20, 0xAA9, 0x20]
LAYOUT_KEYSYMS += [0x31, 0x30, 0x20, 0x20AC, 0xFF0D]
"""TEXT as the keysyms keyboard layouts are written with (Lstroke, zacute, emdash, EuroSign, Return)."""
UNICODE_KEYSYMS = [0x47, 0x72, 0xFC, 0xDF, 0x65, 0x2C, 0x20, 0x1000141, 0xF3, 0x64, 0x100017A, 0x20, 0x1002014]
UNICODE_KEYSYMS += [0x20, 0x31, 0x30, 0x20, 0x10020AC, 0xFF0D]
"""TEXT without libxkbcommon: Latin-1 as is, the rest as Unicode keysyms."""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {TIMEOUT} s")
        time.sleep(0.01)


# A fake portal.


class _TypedReader(_Reader):
    """Reads variants as Variant(signature, value), so a test can see the types a caller chose."""

    def read(self, type_: str) -> Any:
        if type_ == "v":
            signature = super().read("g")
            return Variant(signature, self.read(signature))
        return super().read(type_)


class TypedConnection(Connection):
    """A connection that also keeps the body of every method call it receives with its variants' signatures."""

    def __init__(self, address: str) -> None:
        self.typed: dict[tuple[str | None, int], tuple[Any, ...]] = {}
        super().__init__(address)

    def _read(self, deadline: float | None) -> Message | None:
        while True:
            if len(self._buffer) >= 16 and len(self._buffer) >= message_length(self._buffer[:16]):
                length = message_length(self._buffer[:16])
                data, self._buffer = self._buffer[:length], self._buffer[length:]
                message = decode_message(data)
                if message.type == METHOD_CALL and message.signature:
                    (fields_length,) = struct.unpack_from("<I", data, 12)
                    start = 16 + fields_length + (-(16 + fields_length) % 8)
                    reader = _TypedReader(data, "<", start)
                    body = tuple(reader.read(type_) for type_ in split_signature(message.signature))
                    self.typed[(message.sender, message.serial)] = body
                return message
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                if not select.select([self.sock], [], [], remaining)[0]:
                    return None
                chunk = self.sock.recv(65536)
            except (OSError, ValueError) as exc:
                raise DBusError("Disconnected", str(exc)) from exc
            if not chunk:
                raise DBusError("Disconnected", "closed")
            self._buffer += chunk


class FakeRemoteDesktop:
    """The RemoteDesktop portal on a private bus: answers each request, records calls and key events.

    `start_response` is what Start answers (None: never, like a dialog nobody answers); `device_types` is the
    AvailableDeviceTypes property; `tokens` whether Start hands out restore tokens.
    """

    def __init__(
        self, address: str, *, start_response: int | None = 0, device_types: int = 7, tokens: bool = True
    ) -> None:
        self.connection = TypedConnection(address)
        reply = self.connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "RequestName", signature="su", body=(PORTAL_NAME, 4))
        assert reply.body == (1,)
        self.start_response = start_response
        self.device_types = device_types
        self.tokens = tokens
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        """(member, signature, body with typed variants) of every call but the key events."""
        self.keys: list[tuple[str, int, int]] = []
        """(session, keysym, state) of every key event taken."""
        self.refused_keys = 0
        self.end_on_key: str | None = None
        """A session to end when its next key event comes."""
        self.open_sessions: set[str] = set()
        self.closed: list[tuple[str, str]] = []
        """(interface, path) of every Close call, for sessions and requests."""
        self._tokens = itertools.count(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def members(self) -> list[str]:
        return [member for member, _signature, _body in self.calls]

    def call(self, member: str, number: int = 0) -> tuple[Any, ...]:
        """The typed body of the `number`-th call of a method."""
        return [body for name, _signature, body in self.calls if name == member][number]

    def end_session(self, session: str, signal: bool = True) -> None:
        """The desktop closes a session: it takes no more keys, and the Closed signal says so (if `signal`)."""
        self.open_sessions.discard(session)
        if signal:
            closed = Message(SIGNAL, path=session, interface=SESSION, member="Closed", signature="a{sv}", body=({},))
            self.connection.send(closed)

    def _reply(self, call: Message, signature: str = "", body: tuple[Any, ...] = ()) -> None:
        self.connection.send(
            Message(METHOD_RETURN, reply_serial=call.serial, destination=call.sender, signature=signature, body=body)
        )

    def _error(self, call: Message, name: str, text: str) -> None:
        self.connection.send(
            Message(
                ERROR,
                error_name=name,
                reply_serial=call.serial,
                destination=call.sender,
                signature="s",
                body=(text,),
            )
        )

    def _respond(self, handle: str, code: int, results: dict[str, Variant]) -> None:
        response = Message(
            SIGNAL, path=handle, interface=REQUEST, member="Response", signature="ua{sv}", body=(code, results)
        )
        self.connection.send(response)

    def _serve(self) -> None:
        with contextlib.suppress(DBusError, OSError):
            while True:
                call = self.connection.receive()
                if call is not None and call.type == METHOD_CALL:
                    self._answer(call)

    def _answer(self, call: Message) -> None:
        body = self.connection.typed.pop((call.sender, call.serial), call.body)
        if call.member == "NotifyKeyboardKeysym":
            session, _options, keysym, state = body
            if session == self.end_on_key:  # closed just as the keys come, after the typist looked for signals
                self.end_on_key = None
                self.end_session(session)
            if session in self.open_sessions:
                self.keys.append((session, keysym, state))
                self._reply(call)
            else:
                self.refused_keys += 1
                self._error(call, "org.freedesktop.DBus.Error.AccessDenied", "Invalid session")
            return
        self.calls.append((call.member or "", call.signature, body))
        if call.member == "Close":
            self.closed.append((call.interface or "", call.path or ""))
            self.open_sessions.discard(call.path or "")
            if not call.flags & NO_REPLY_EXPECTED:
                self._reply(call)
        elif call.member == "Get" and call.interface == PROPERTIES:
            if body == (REMOTE_DESKTOP, "AvailableDeviceTypes"):
                self._reply(call, "v", (Variant("u", self.device_types),))
            else:
                self._error(call, "org.freedesktop.DBus.Error.InvalidArgs", "No such interface")
        elif call.interface == REMOTE_DESKTOP and call.member in ("CreateSession", "SelectDevices", "Start"):
            options = body[-1]
            handle = request_path(call.sender or "", options["handle_token"].value)
            self._reply(call, "o", (handle,))
            results: dict[str, Variant] = {}
            if call.member == "CreateSession":
                sender = (call.sender or "").lstrip(":").replace(".", "_")
                session = f"{PORTAL_PATH}/session/{sender}/{options['session_handle_token'].value}"
                self.open_sessions.add(session)
                results["session_handle"] = Variant("s", session)
            elif call.member == "Start":
                if self.start_response is None:
                    return  # the dialog stays open
                if self.start_response == 0:
                    results["devices"] = Variant("u", 1)
                    if self.tokens:
                        results["restore_token"] = Variant("s", f"restore-{next(self._tokens)}")
                self._respond(handle, self.start_response, results)
                return
            self._respond(handle, 0, results)
        else:
            self._error(call, "org.freedesktop.DBus.Error.UnknownMethod", f"no {call.member}")

    def close(self) -> None:
        self.connection.shutdown()
        self.thread.join(timeout=TIMEOUT)
        self.connection.close()


@pytest.fixture
def fake_portal(session_bus: str) -> Iterator[FakeRemoteDesktop]:
    portal = FakeRemoteDesktop(session_bus)
    yield portal
    portal.close()


def typist_for(address: str, folder: Path, **options: Any) -> PortalTypist:
    return PortalTypist({"DBUS_SESSION_BUS_ADDRESS": address}, token_file=folder / "token", **options)


def events(session: str, keysyms: list[int]) -> list[tuple[str, int, int]]:
    return [(session, keysym, state) for keysym in keysyms for state in (1, 0)]


# Characters.


def test_characters_become_the_keysyms_layouts_have(monkeypatch: pytest.MonkeyPatch) -> None:
    if layout_keysyms_known():
        assert text_keysyms(TEXT) == LAYOUT_KEYSYMS
    assert text_keysyms("a\r\nb\rc\td\x07😀") == [0x61, 0xFF0D, 0x62, 0xFF0D, 0x63, 0xFF09, 0x64, 0x101F600]
    assert key_events([0x61, 0xFF0D]) == [(0x61, 1), (0x61, 0), (0xFF0D, 1), (0xFF0D, 0)]
    monkeypatch.setattr(portal_module, "_xkb_from_utf32", lambda: None)  # no libxkbcommon
    assert text_keysyms(TEXT) == UNICODE_KEYSYMS


# The session.


def test_session_handshake_and_typing(fake_portal: FakeRemoteDesktop, session_bus: str, tmp_path: Path) -> None:
    typist = typist_for(session_bus, tmp_path)
    try:
        assert typist.problem() is None
        assert fake_portal.members() == ["Get"]  # asking does not open a session
        start = time.perf_counter()
        typist.type_text(TEXT)
        first = time.perf_counter() - start
        assert fake_portal.members() == ["Get", "CreateSession", "SelectDevices", "Start"]
        assert [signature for _member, signature, _body in fake_portal.calls[1:]] == ["a{sv}", "oa{sv}", "osa{sv}"]

        (create,) = fake_portal.call("CreateSession")
        assert set(create) == {"handle_token", "session_handle_token"}
        assert all(value.signature == "s" and value.value.isidentifier() for value in create.values())
        session = typist.session_handle
        assert session is not None and session.endswith(create["session_handle_token"].value)

        selected_in, select = fake_portal.call("SelectDevices")
        assert selected_in == session
        assert select["handle_token"].signature == "s"
        assert {key: value for key, value in select.items() if key != "handle_token"} == {
            "types": Variant("u", 1),
            "persist_mode": Variant("u", 2),
        }
        started_in, parent_window, start_options = fake_portal.call("Start")
        assert (started_in, parent_window, set(start_options)) == (session, "", {"handle_token"})
        assert start_options["handle_token"].signature == "s"

        expected = LAYOUT_KEYSYMS if layout_keysyms_known() else UNICODE_KEYSYMS
        assert fake_portal.keys == events(session, expected)
        assert (tmp_path / "token").read_text(encoding="utf-8") == "restore-1"
        assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600

        start = time.perf_counter()
        result = deliver(typist, "Hi there", None, True)
        assert (result.method, result.text) == ("typed", "Hi there")
        assert time.perf_counter() - start < first + 1.0
        assert fake_portal.keys[-16:] == events(session, [ord(c) for c in "Hi there"])
        assert typist.sessions_started == 1  # the session is kept
        assert fake_portal.members().count("CreateSession") == 1
    finally:
        typist.close()
    wait_for(lambda: (SESSION, session) in fake_portal.closed, "Session.Close")
    assert fake_portal.open_sessions == set()


def test_long_text_keeps_every_key_in_order(fake_portal: FakeRemoteDesktop, session_bus: str, tmp_path: Path) -> None:
    typist = typist_for(session_bus, tmp_path)
    text = "".join(chr(ord("a") + i % 26) for i in range(700))  # many windows of keys in flight
    try:
        typist.type_text(text)
        assert fake_portal.keys == events(str(typist.session_handle), [ord(c) for c in text])
    finally:
        typist.close()


def test_restore_token_is_kept_and_sent(fake_portal: FakeRemoteDesktop, session_bus: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    first = typist_for(session_bus, tmp_path)
    first.type_text("a")
    first.close()
    assert token.read_text(encoding="utf-8") == "restore-1"
    assert "restore_token" not in fake_portal.call("SelectDevices", 0)[1]

    second = typist_for(session_bus, tmp_path)
    second.type_text("b")
    second.close()
    assert fake_portal.call("SelectDevices", 1)[1]["restore_token"] == Variant("s", "restore-1")
    assert token.read_text(encoding="utf-8") == "restore-2"  # a token works once: the new one replaces it

    fake_portal.tokens = False  # the desktop does not let this session persist
    third = typist_for(session_bus, tmp_path)
    third.type_text("c")
    third.close()
    assert fake_portal.call("SelectDevices", 2)[1]["restore_token"] == Variant("s", "restore-2")
    assert not token.exists()


def test_declined_permission_copies_and_does_not_ask_again(session_bus: str, tmp_path: Path) -> None:
    portal = FakeRemoteDesktop(session_bus, start_response=1)
    copied: list[str] = []
    typist = typist_for(session_bus, tmp_path, copy=copied.append)
    try:
        result = deliver(typist, "hello", None, True)
        assert result.method == "copied" and copied == ["hello"]
        assert "typing was not allowed" in result.reason and "allow remote control" in result.reason
        assert "paste it where you want it" in (result.notice() or "")
        assert portal.members().count("Start") == 1  # the paste after the failed typing did not ask again
        session = portal.call("Start")[0]
        wait_for(lambda: (SESSION, session) in portal.closed, "Session.Close of the declined session")

        assert "typing was not allowed" in (typist.problem() or "")
        again = deliver(typist, "world", None, True, strategy="paste")
        assert again.method == "copied" and copied == ["hello", "world"]
        assert portal.members().count("CreateSession") == 1
        with pytest.raises(InjectionError, match="not allowed"):
            typist.type_text("x")
        assert portal.keys == [] and not (tmp_path / "token").exists()
    finally:
        typist.close()
        portal.close()


def test_unanswered_permission_dialog_gives_up_in_time(session_bus: str, tmp_path: Path) -> None:
    portal = FakeRemoteDesktop(session_bus, start_response=None)
    typist = typist_for(session_bus, tmp_path, start_timeout=0.3)
    try:
        start = time.perf_counter()
        with pytest.raises(InjectionError, match=r"not answered within 0\.3 s"):
            typist.type_text("hello")
        assert time.perf_counter() - start < 2.0
        session = portal.call("Start")[0]
        wait_for(lambda: (SESSION, session) in portal.closed, "Session.Close")
        assert any(interface == REQUEST for interface, _path in portal.closed)  # the dialog's request is withdrawn
        with pytest.raises(InjectionError, match="not answered"):
            typist.type_text("again")  # no second dialog right away
        assert portal.members().count("CreateSession") == 1
    finally:
        typist.close()
        portal.close()


def test_session_closed_by_the_desktop_is_opened_again(
    fake_portal: FakeRemoteDesktop, session_bus: str, tmp_path: Path
) -> None:
    typist = typist_for(session_bus, tmp_path)
    try:
        typist.type_text("a")
        first = str(typist.session_handle)
        fake_portal.end_session(first)
        wait_for(lambda: first not in fake_portal.open_sessions, "the end of the session")
        time.sleep(0.05)  # the Closed signal waits to be read
        typist.type_text("b")
        second = str(typist.session_handle)
        assert second != first and typist.sessions_started == 2 and fake_portal.refused_keys == 0
        assert fake_portal.keys == [*events(first, [0x61]), *events(second, [0x62])]
        assert fake_portal.call("SelectDevices", 1)[1]["restore_token"] == Variant("s", "restore-1")

        fake_portal.end_on_key = second  # Closed comes only with the refusal of the first key
        typist.type_text("cd")
        third = str(typist.session_handle)
        assert third not in (first, second) and fake_portal.refused_keys > 0
        assert fake_portal.keys[-4:] == events(third, [0x63, 0x64])  # nothing typed twice, nothing lost

        fake_portal.end_session(third, signal=False)  # a session that just stops taking keys
        with pytest.raises(InjectionError, match="did not take the keystrokes"):
            typist.type_text("e")
        wait_for(lambda: (SESSION, third) in fake_portal.closed, "Session.Close of the broken session")
        typist.type_text("f")
        assert typist.sessions_started == 4
        assert fake_portal.keys[-2:] == events(str(typist.session_handle), [0x66])
    finally:
        typist.close()


# Pasting and the auto strategy.


def stand_in_clipboard(folder: Path, log: Path) -> Path:
    """wl-copy and wl-paste stand-ins: wl-copy logs what it is given, wl-paste offers "old text"."""
    folder.mkdir()
    scripts = {
        "wl-copy": f'echo "wl-copy $* :: $(cat)" >> {log}',
        "wl-paste": 'if [ "$1" = --list-types ]; then echo "text/plain;charset=utf-8"; else printf "old text"; fi',
    }
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def test_paste_and_auto_strategy(
    fake_portal: FakeRemoteDesktop, session_bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(injection, "PASTE_SETTLE_S", 0.0)
    log = tmp_path / "log"
    tools = stand_in_clipboard(tmp_path / "bin", log)
    empty = tmp_path / "empty"
    empty.mkdir()
    typist = typist_for(session_bus, tmp_path)
    try:
        monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
        assert typist.auto_method("Hello, world.", None) == "type"
        assert typist.auto_method("Grüße", None) == "paste"  # the layout may lack ü and ß
        assert typist.auto_method("x" * 500, None) == "paste"  # longer than the time budget
        assert typist.paste("new") is True
        assert fake_portal.keys == [(str(typist.session_handle), keysym, state) for keysym, state in PASTE_EVENTS]
        assert fake_portal.keys[0][1:] == (0xFFE3, 1)  # Control_L, then v
        assert log.read_text(encoding="utf-8").splitlines() == [
            "wl-copy  :: new",
            "wl-copy --type text/plain;charset=utf-8 :: old text",
        ]
        typist.copy("kept")
        assert log.read_text(encoding="utf-8").splitlines()[-1] == "wl-copy  :: kept"

        monkeypatch.setenv("PATH", str(empty))  # no wl-clipboard: typing is all there is
        assert typist.auto_method("Grüße", None) == "type"
        with pytest.raises(InjectionError, match="install wl-clipboard"):
            typist.paste("new")
        with pytest.raises(InjectionError, match="install wl-clipboard"):
            typist.copy("new")
    finally:
        typist.close()


# Choosing the typist.


def wayland(address: str | None, folder: Path) -> dict[str, str]:
    env = {"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(folder)}
    return {**env, "DBUS_SESSION_BUS_ADDRESS": address} if address else env


def timed_choice(env: dict[str, str], copy: Callable[[str], None] | None = None) -> tuple[Any, float]:
    start = time.perf_counter()
    typist = choose_typist("auto", copy=copy, environ=env, platform="linux")
    return typist, time.perf_counter() - start


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither wtype nor ydotool is installed."""
    which = shutil.which
    hidden = ("wtype", "ydotool")
    monkeypatch.setattr("app.injection.shutil.which", lambda name: None if name in hidden else which(name))


@pytest.mark.usefixtures("no_tools")
def test_choose_typist_takes_the_portal_when_the_bus_has_one(session_bus: str, tmp_path: Path) -> None:
    without_bus, _seconds = timed_choice(wayland(None, tmp_path))
    assert isinstance(without_bus, ClipboardOnlyTypist)
    assert "no D-Bus session bus" in without_bus.reason and "wtype" in without_bus.reason

    without_portal, seconds = timed_choice(wayland(session_bus, tmp_path))
    assert isinstance(without_portal, ClipboardOnlyTypist) and seconds < 0.5
    assert "remote desktop portal of GNOME or KDE" in without_portal.reason
    assert "no XDG portal" in without_portal.reason

    portal = FakeRemoteDesktop(session_bus)
    try:
        chosen, seconds = timed_choice(wayland(session_bus, tmp_path))
        assert isinstance(chosen, PortalTypist) and seconds < 0.5
        assert chosen.problem() is None
        assert not [m for m in portal.members() if m != "Get"]  # choosing opens no session
        portal.device_types = 2  # a pointer only
        pointer_only, _seconds = timed_choice(wayland(session_bus, tmp_path))
        assert isinstance(pointer_only, ClipboardOnlyTypist) and "offers no keyboard" in pointer_only.reason
    finally:
        portal.close()


@pytest.mark.usefixtures("no_tools")
def test_choose_typist_does_not_wait_long_for_a_portal_that_hangs(session_bus: str, tmp_path: Path) -> None:
    hung = Connection(session_bus)  # owns the portal's name and never answers
    hung.call(BUS_NAME, BUS_PATH, BUS_NAME, "RequestName", signature="su", body=(PORTAL_NAME, 4))
    try:
        chosen, seconds = timed_choice(wayland(session_bus, tmp_path))
        assert isinstance(chosen, ClipboardOnlyTypist) and "did not answer" in chosen.reason
        assert seconds < 1.5
    finally:
        hung.close()


@pytest.mark.usefixtures("no_tools")
def test_a_portal_the_bus_would_start_is_checked_when_typing(tmp_path: Path) -> None:
    services = tmp_path / "services"
    services.mkdir()
    (services / "portal.service").write_text(f"[D-BUS Service]\nName={PORTAL_NAME}\nExec=/bin/false\n")
    with private_session_bus(tmp_path / "bus", services) as address:
        copied: list[str] = []
        chosen, seconds = timed_choice(wayland(address, tmp_path), copied.append)
        assert isinstance(chosen, PortalTypist) and seconds < 0.5  # starting it is left to the typing thread
        problem = chosen.problem() or ""
        assert "failed to start" in problem and "xdg-desktop-portal-gnome" in problem
        result = deliver(chosen, "hello", None, True)
        assert result.method == "copied" and copied == ["hello"]
        chosen.close()
