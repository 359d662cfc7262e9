"""Global hotkeys: parsing, the press/release rule, real X11 grabs under Xvfb, the portal over D-Bus, and the
Windows and macOS decoders."""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.hotkeys import UnavailableBackend, choose_backend, format_hotkey, parse_hotkey
from app.hotkeys.base import PressTracker, bindings
from app.hotkeys.dbus import (
    BUS_NAME,
    BUS_PATH,
    METHOD_CALL,
    METHOD_RETURN,
    SIGNAL,
    Connection,
    DBusError,
    Message,
    Variant,
    decode_message,
    encode_message,
    marshal,
    unmarshal,
)
from app.hotkeys.keys import KEYSYM_NAMES, Hotkey
from app.hotkeys.macos import FLAG_MASKS, KEY_DOWN, KEY_UP, MAC_KEYCODES, TapDecoder, unusable_keys
from app.hotkeys.wayland import (
    PORTAL_NAME,
    REQUEST,
    SHORTCUTS,
    PortalBackend,
    binding_instructions,
    desktop_name,
    preferred_trigger,
    request_path,
    shortcut_list,
)
from app.hotkeys.windows import VK_CODES, WM_KEYDOWN, WM_KEYUP, WM_SYSKEYDOWN, HookDecoder
from app.hotkeys.x11 import X11Backend, lock_variants
from tests.dbus_session import session_bus_fixture  # noqa: F401  (the `session_bus` fixture)
from tests.xserver import need_tools

TIMEOUT = 5.0


def hotkey(text: str) -> Hotkey:
    """A hotkey that must parse."""
    parsed = parse_hotkey(text)
    assert parsed is not None
    return parsed


class Recorder:
    """Collects the backend's callbacks from its thread; `expect` waits for them in order."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.problems: queue.Queue[str] = queue.Queue()

    def press(self, action: str) -> None:
        self.events.put(("press", action))

    def release(self, action: str) -> None:
        self.events.put(("release", action))

    def problem(self, text: str) -> None:
        self.problems.put(text)

    def expect(self, *expected: tuple[str, str]) -> None:
        for event in expected:
            try:
                got = self.events.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no {event} within {TIMEOUT} s")
            assert got == event

    def quiet(self) -> None:
        assert self.events.empty(), f"unexpected events: {list(self.events.queue)}"


# Parsing.


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Ctrl+Alt+Space", "Ctrl+Alt+Space"),
        ("Super+F9", "Super+F9"),
        ("Pause", "Pause"),
        ("Ctrl+Shift+D", "Ctrl+Shift+D"),
        ("ctrl+alt+d", "Ctrl+Alt+D"),
        ("Alt + Control + space", "Ctrl+Alt+Space"),
        ("Meta+F9", "Super+F9"),
        ("Win+Shift+Escape", "Shift+Super+Esc"),
        ("Ctrl+PageUp", "Ctrl+PgUp"),
        ("Ctrl+,", "Ctrl+,"),
        ("Shift+/", "Shift+/"),
        ("F24", "F24"),
    ],
)
def test_parse_and_format_round_trip(text: str, canonical: str) -> None:
    parsed = hotkey(text)
    assert format_hotkey(parsed) == canonical == str(parsed)
    assert parse_hotkey(canonical) == parsed


def test_empty_means_no_hotkey() -> None:
    assert parse_hotkey("") is None
    assert parse_hotkey("   ") is None
    assert format_hotkey(None) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ctrl+Spcae", "unknown key 'Spcae'"),
        ("Hyper+A", "unknown key 'Hyper'"),
        ("Ctrl+Alt", "only modifiers"),
        ("Ctrl+A+B", "two keys, 'A' and 'B'"),
        ("Ctrl++Alt", "empty part"),
        ("Space+Ctrl", "modifier 'Ctrl' comes after the key"),
        ("Ctrl+Control+A", "names Ctrl twice"),
        ("Ctrl+K, Ctrl+C", "key sequence"),
        ("Ctrl++", "the + key"),
    ],
)
def test_parse_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_hotkey(text)


def test_every_key_has_a_code_on_every_platform_that_has_the_key() -> None:
    assert set(VK_CODES) == set(KEYSYM_NAMES)
    assert set(MAC_KEYCODES) <= set(KEYSYM_NAMES)
    no_mac_key = set(KEYSYM_NAMES) - set(MAC_KEYCODES)
    assert no_mac_key == {"Pause", "Print", "ScrollLock", "NumLock", "Menu", "F21", "F22", "F23", "F24"}
    assert (VK_CODES["A"], VK_CODES["0"], VK_CODES["F9"], VK_CODES["Space"], VK_CODES["Pause"]) == (
        0x41,
        0x30,
        0x78,
        0x20,
        0x13,
    )
    assert (MAC_KEYCODES["A"], MAC_KEYCODES["Space"], MAC_KEYCODES["F9"], MAC_KEYCODES["D"]) == (0, 0x31, 0x65, 2)


# The press/release rule.


def test_tracker_one_press_one_release_per_hold() -> None:
    recorder = Recorder()
    tracker = PressTracker(recorder.press, recorder.release)
    assert not tracker.down("space", None)  # not a hotkey with these modifiers
    assert not tracker.up("space")
    assert tracker.down("space", "ptt")
    assert tracker.down("space", None)  # auto-repeat, whatever the modifiers are now
    assert tracker.down("space", "ptt")
    assert tracker.repeats == 2
    assert not tracker.down("other", "ptt")  # the action is already held
    assert tracker.up("space")
    assert not tracker.up("space")
    recorder.expect(("press", "ptt"), ("release", "ptt"))
    recorder.quiet()


def test_tracker_release_all_ends_every_press() -> None:
    recorder = Recorder()
    tracker = PressTracker(recorder.press, recorder.release)
    tracker.down(1, "ptt")
    tracker.down(2, "toggle")
    tracker.release_all()
    tracker.release_all()
    recorder.expect(("press", "ptt"), ("press", "toggle"), ("release", "ptt"), ("release", "toggle"))
    recorder.quiet()


def test_same_hotkey_twice_keeps_push_to_talk() -> None:
    chosen, problems = bindings(hotkey("F9"), hotkey("F9"))
    assert list(chosen) == ["ptt"]
    assert problems == ["F9 is both the push-to-talk and the toggle hotkey; it is used for push to talk"]
    assert bindings(None, None) == ({}, [])


def test_lock_variants_cover_every_combination() -> None:
    assert sorted(lock_variants([2, 16, 128])) == [0, 2, 16, 18, 128, 130, 144, 146]
    assert lock_variants([]) == [0]


# X11, for real, under Xvfb.


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


def barrier(recorder: Recorder) -> None:
    """Tap the toggle hotkey (F9) and wait for it: every event sent before has been handled by then."""
    xdotool("key", "F9")
    recorder.expect(("press", "toggle"), ("release", "toggle"))
    recorder.quiet()


@pytest.fixture(params=[True, False], ids=["xkb-detectable-repeat", "repeat-pattern"])
def grabbed(request: pytest.FixtureRequest, xvfb_display: str) -> Iterator[tuple[X11Backend, Recorder]]:
    """Ctrl+Alt+Space (push to talk) and F9 (toggle) grabbed on the Xvfb display, with both ways of handling
    auto-repeat."""
    need_tools("xdotool")
    backend = X11Backend(detectable_repeat=request.param)
    assert backend.register(hotkey("Ctrl+Alt+Space"), hotkey("F9")) == []
    assert backend.detectable_repeat is request.param
    recorder = Recorder()
    backend.start(recorder.press, recorder.release, recorder.problem)
    try:
        yield backend, recorder
    finally:
        backend.stop()
        xdotool("keyup", "ctrl", "alt", "space")
    assert recorder.problems.empty()


def test_x11_press_and_release(grabbed: tuple[X11Backend, Recorder]) -> None:
    _backend, recorder = grabbed
    xdotool("keydown", "ctrl+alt+space")
    recorder.expect(("press", "ptt"))
    xdotool("keyup", "ctrl+alt+space")
    recorder.expect(("release", "ptt"))
    barrier(recorder)
    xdotool("key", "ctrl+alt+space")
    recorder.expect(("press", "ptt"), ("release", "ptt"))
    barrier(recorder)


def test_x11_held_key_with_auto_repeat_is_one_press(grabbed: tuple[X11Backend, Recorder]) -> None:
    if shutil.which("xset") is None:
        pytest.skip("xset is not installed (apt-get install x11-xserver-utils)")
    backend, recorder = grabbed
    subprocess.run(["xset", "r", "on"], check=True, timeout=10)
    subprocess.run(["xset", "r", "rate", "200", "30"], check=True, timeout=10)
    try:
        xdotool("keydown", "ctrl+alt+space")
        recorder.expect(("press", "ptt"))
        time.sleep(0.6)  # held: the server repeats Space from 200 ms on, 30 times a second
        xdotool("keyup", "ctrl+alt+space")
        recorder.expect(("release", "ptt"))
        barrier(recorder)
    finally:
        subprocess.run(["xset", "r", "rate"], check=True, timeout=10)  # back to the server's defaults
    assert backend.repeats >= 5, "the server did not auto-repeat the held key"


def test_x11_works_with_num_lock_on(grabbed: tuple[X11Backend, Recorder]) -> None:
    import Xlib.display

    _backend, recorder = grabbed
    probe = Xlib.display.Display()
    xdotool("key", "Num_Lock")
    try:
        assert probe.get_keyboard_control().led_mask & 2, "Num Lock did not come on"
        xdotool("keydown", "ctrl+alt+space")
        recorder.expect(("press", "ptt"))
        xdotool("keyup", "ctrl+alt+space")
        recorder.expect(("release", "ptt"))
        barrier(recorder)
    finally:
        xdotool("key", "Num_Lock")
        probe.close()


def test_x11_modifiers_let_go_first(grabbed: tuple[X11Backend, Recorder]) -> None:
    _backend, recorder = grabbed
    xdotool("keydown", "ctrl+alt+space")
    recorder.expect(("press", "ptt"))
    xdotool("keyup", "ctrl", "alt")
    barrier(recorder)  # Space is still down: still pressed
    xdotool("keyup", "space")
    recorder.expect(("release", "ptt"))
    barrier(recorder)


def test_x11_grabs_follow_a_keymap_change(grabbed: tuple[X11Backend, Recorder]) -> None:
    if shutil.which("xmodmap") is None:
        pytest.skip("xmodmap is not installed (apt-get install x11-xserver-utils)")
    backend, recorder = grabbed
    table = subprocess.run(["xmodmap", "-pke"], capture_output=True, text=True, check=True, timeout=10).stdout
    lines = {int(line.split()[1]): line for line in table.splitlines()}
    (old,) = backend.grabbed_keycodes()["toggle"]
    free = next(code for code, line in lines.items() if line.rstrip().endswith("="))
    subprocess.run(["xmodmap", "-e", f"keycode {old} = NoSymbol", "-e", f"keycode {free} = F9"], check=True, timeout=10)
    try:
        deadline = time.monotonic() + TIMEOUT
        while backend.grabbed_keycodes().get("toggle") != frozenset({free}) and time.monotonic() < deadline:
            time.sleep(0.01)  # the event thread re-grabs when the server tells it about the new keymap
        assert backend.grabbed_keycodes()["toggle"] == frozenset({free})
        barrier(recorder)  # xdotool now types F9 with the new keycode
    finally:
        subprocess.run(["xmodmap", "-e", lines[old], "-e", lines[free]], check=True, timeout=10)


def test_x11_stop_while_held_reports_the_release(grabbed: tuple[X11Backend, Recorder]) -> None:
    backend, recorder = grabbed
    xdotool("keydown", "ctrl+alt+space")
    recorder.expect(("press", "ptt"))
    backend.stop()
    recorder.expect(("release", "ptt"))
    recorder.quiet()


def _grab(display: Any, text: str) -> Any:
    """Grab a hotkey (without lock variants) from another client; the X error, if any."""
    import Xlib.error
    from Xlib import XK, X

    parsed = hotkey(text)
    masks = {"ctrl": X.ControlMask, "alt": X.Mod1Mask, "shift": X.ShiftMask, "super": X.Mod4Mask}
    mask = 0
    for modifier in parsed.modifiers:
        mask |= masks[modifier]
    code = display.keysym_to_keycode(XK.string_to_keysym(parsed.keysym_name))
    catcher = Xlib.error.CatchError()
    display.screen().root.grab_key(code, mask, False, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
    display.sync()
    return catcher.get_error()


def test_x11_hotkey_taken_by_another_program(xvfb_display: str) -> None:
    import Xlib.display

    need_tools("xdotool")
    other = Xlib.display.Display()
    backend = X11Backend()
    try:
        assert _grab(other, "Ctrl+Alt+Space") is None
        problems = backend.register(hotkey("Ctrl+Alt+Space"), hotkey("F9"))
        assert problems == ["Ctrl+Alt+Space is already taken by another program; choose another hotkey in the settings"]
        recorder = Recorder()
        backend.start(recorder.press, recorder.release)
        barrier(recorder)  # F9 was grabbed all the same
    finally:
        backend.stop()
        other.close()


def test_x11_stop_gives_the_keys_back(xvfb_display: str) -> None:
    import Xlib.display
    import Xlib.error

    backend = X11Backend()
    assert backend.register(hotkey("Ctrl+Alt+Space"), hotkey("F9")) == []
    backend.start(Recorder().press, Recorder().release)
    other = Xlib.display.Display()
    try:
        assert isinstance(_grab(other, "Ctrl+Alt+Space"), Xlib.error.BadAccess)
        backend.stop()
        assert _grab(other, "Ctrl+Alt+Space") is None
        assert _grab(other, "F9") is None
    finally:
        backend.stop()
        other.close()


def test_x11_missing_display_is_a_problem() -> None:
    backend = X11Backend(":987")
    assert "cannot open the X11 display :987" in (backend.problem() or "")
    assert backend.register(hotkey("F9"), None)[-1].startswith("cannot open the X11 display")


# Choosing the backend.


def test_choose_backend_by_platform_and_session(tmp_path: Path) -> None:
    nobus = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'nobus'}"}
    assert type(choose_backend({}, "win32")).__name__ == "WindowsBackend"
    assert type(choose_backend({}, "darwin")).__name__ == "MacBackend"
    x11 = choose_backend({"DISPLAY": ":5"}, "linux")
    assert isinstance(x11, X11Backend)
    assert x11.limitation is None
    xwayland = choose_backend({**nobus, "DISPLAY": ":5", "WAYLAND_DISPLAY": "wayland-0", "SWAYSOCK": "/s"}, "linux")
    assert isinstance(xwayland, X11Backend)
    assert xwayland.limitation is not None
    assert "X11 key grabs do not see keys typed into native Wayland windows" in xwayland.limitation
    assert "bindsym --release Ctrl+Mod1+space exec perch ptt release" in xwayland.limitation
    wayland = choose_backend({**nobus, "WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "Hyprland"}, "linux")
    assert isinstance(wayland, PortalBackend)
    problem = wayland.problem() or ""
    assert "no D-Bus session bus" in problem
    assert "bindr = CTRL ALT, space, exec, perch ptt release" in problem
    assert wayland.register(hotkey("F9"), None)[-1].startswith("Global hotkeys need the desktop's help on Wayland")
    nothing = choose_backend({}, "linux")
    assert isinstance(nothing, UnavailableBackend)
    assert nothing.register(hotkey("F9"), None) == [nothing.problem()]


@pytest.mark.parametrize(
    ("environ", "desktop"),
    [
        ({"XDG_CURRENT_DESKTOP": "sway"}, "sway"),
        ({"SWAYSOCK": "/run/user/1000/sway-ipc.sock"}, "sway"),
        ({"HYPRLAND_INSTANCE_SIGNATURE": "abc"}, "hyprland"),
        ({"XDG_CURRENT_DESKTOP": "ubuntu:GNOME"}, "gnome"),
        ({"XDG_CURRENT_DESKTOP": "KDE"}, "kde"),
        ({"XDG_CURRENT_DESKTOP": "niri"}, "other"),
    ],
)
def test_desktop_detection(environ: dict[str, str], desktop: str) -> None:
    assert desktop_name(environ) == desktop


def test_binding_instructions_use_each_desktops_syntax() -> None:
    ptt, toggle = hotkey("Super+F9"), hotkey("Ctrl+Shift+D")
    sway = binding_instructions("sway", ptt, toggle)
    assert "bindsym Mod4+F9 exec perch ptt press" in sway
    assert "bindsym --release Mod4+F9 exec perch ptt release" in sway
    assert "bindsym Ctrl+Shift+d exec perch toggle" in sway
    hyprland = binding_instructions("hyprland", ptt, toggle)
    assert "bind = SUPER, F9, exec, perch ptt press" in hyprland
    assert "bindr = SUPER, F9, exec, perch ptt release" in hyprland
    gnome = binding_instructions("gnome", ptt, toggle)
    assert "binding '<Control><Shift>d'" in gnome
    assert "command 'perch toggle'" in gnome
    assert "perch toggle" in binding_instructions("kde", ptt, toggle)
    assert "perch ptt release" in binding_instructions("other", None, None)


# The GlobalShortcuts portal.


def test_portal_request_building() -> None:
    assert preferred_trigger(hotkey("Ctrl+Alt+Space")) == "CTRL+ALT+space"
    assert preferred_trigger(hotkey("Super+Shift+F9")) == "SHIFT+LOGO+F9"
    assert preferred_trigger(hotkey("Pause")) == "Pause"
    assert shortcut_list({"ptt": hotkey("Ctrl+Alt+Space"), "toggle": hotkey("Ctrl+Alt+D")}) == [
        (
            "ptt",
            {"description": Variant("s", "Perch: push to talk"), "preferred_trigger": Variant("s", "CTRL+ALT+space")},
        ),
        (
            "toggle",
            {
                "description": Variant("s", "Perch: start/stop dictation"),
                "preferred_trigger": Variant("s", "CTRL+ALT+d"),
            },
        ),
    ]
    assert request_path(":1.42", "perch_1") == "/org/freedesktop/portal/desktop/request/1_42/perch_1"


def test_dbus_marshalling_round_trip() -> None:
    signature = "oa(sa{sv})sa{sv}yqxtdb"
    values = (
        "/org/freedesktop/portal/desktop/session/1_2/s",
        [("ptt", {"description": Variant("s", "Push"), "preferred_trigger": "CTRL+space"}), ("toggle", {})],
        "",
        {"handle_token": "t", "n": Variant("u", 7), "list": Variant("as", ["a", "b"])},
        255,
        65535,
        -(2**40),
        2**63,
        0.5,
        True,
    )
    decoded = unmarshal(signature, marshal(signature, values))
    assert decoded[0] == values[0]
    assert decoded[1] == [("ptt", {"description": "Push", "preferred_trigger": "CTRL+space"}), ("toggle", {})]
    assert decoded[3] == {"handle_token": "t", "n": 7, "list": ["a", "b"]}
    assert decoded[4:] == values[4:]
    message = Message(SIGNAL, path="/p", interface="a.b", member="C", signature="st", body=("x", 5), serial=9)
    assert decode_message(encode_message(message)) == message


class FakePortal:
    """The GlobalShortcuts portal on a private bus, answering on a thread; `emit` sends Activated and the like."""

    def __init__(self, address: str, response: int = 0) -> None:
        self.connection = Connection(address)
        reply = self.connection.call(BUS_NAME, BUS_PATH, BUS_NAME, "RequestName", signature="su", body=(PORTAL_NAME, 4))
        assert reply.body == (1,)
        self.response = response
        self.calls: list[Message] = []
        self.session = "/org/freedesktop/portal/desktop/session/1_0/perch"
        self.bound = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, call: Message, signature: str = "", body: tuple[Any, ...] = ()) -> None:
        self.connection.send(
            Message(METHOD_RETURN, reply_serial=call.serial, destination=call.sender, signature=signature, body=body)
        )

    def emit(
        self, member: str, signature: str, body: tuple[Any, ...], path: str = "/org/freedesktop/portal/desktop"
    ) -> None:
        self.connection.send(
            Message(SIGNAL, path=path, interface=SHORTCUTS, member=member, signature=signature, body=body)
        )

    def _serve(self) -> None:
        with contextlib.suppress(DBusError, OSError):
            while True:
                call = self.connection.receive()
                if call is None or call.type != METHOD_CALL:
                    continue
                self.calls.append(call)
                if call.member == "Get":
                    self._reply(call, "v", (Variant("u", 1),))
                elif call.member in ("CreateSession", "BindShortcuts"):
                    options = call.body[-1]
                    handle = request_path(call.sender or "", options["handle_token"])
                    self._reply(call, "o", (handle,))
                    if call.member == "CreateSession":
                        results: dict[str, Any] = {"session_handle": Variant("s", self.session)}
                    else:
                        shortcuts = [
                            (sid, {"trigger_description": Variant("s", "Ctrl+Alt+Space")}) for sid, _ in call.body[1]
                        ]
                        results = {"shortcuts": Variant("a(sa{sv})", shortcuts)}
                    self.connection.send(
                        Message(
                            SIGNAL,
                            path=handle,
                            interface=REQUEST,
                            member="Response",
                            signature="ua{sv}",
                            body=(self.response, results),
                        )
                    )
                    if call.member == "BindShortcuts":
                        self.bound.set()
                elif call.member == "Close":
                    self.closed.set()

    def close(self) -> None:
        self.connection.shutdown()
        self.thread.join(timeout=TIMEOUT)
        self.connection.close()


def test_portal_missing_on_the_bus(session_bus: str) -> None:
    backend = PortalBackend({"DBUS_SESSION_BUS_ADDRESS": session_bus, "XDG_CURRENT_DESKTOP": "sway"})
    problem = backend.problem() or ""
    assert "the desktop has no XDG portal" in problem
    assert "bindsym --release Ctrl+Mod1+space exec perch ptt release" in problem


def test_portal_session_binding_and_signals(session_bus: str) -> None:
    portal = FakePortal(session_bus)
    backend = PortalBackend({"DBUS_SESSION_BUS_ADDRESS": session_bus})
    recorder = Recorder()
    try:
        assert backend.problem() is None
        assert backend.register(hotkey("Ctrl+Alt+Space"), hotkey("Ctrl+Alt+D")) == []
        backend.start(recorder.press, recorder.release, recorder.problem)
        assert portal.bound.wait(TIMEOUT)
        bind = next(call for call in portal.calls if call.member == "BindShortcuts")
        assert bind.signature == "oa(sa{sv})sa{sv}"
        assert bind.body[0] == portal.session
        assert bind.body[1] == [
            ("ptt", {"description": "Perch: push to talk", "preferred_trigger": "CTRL+ALT+space"}),
            ("toggle", {"description": "Perch: start/stop dictation", "preferred_trigger": "CTRL+ALT+d"}),
        ]
        signature = "osta{sv}"
        portal.emit("Activated", signature, (portal.session, "ptt", 1, {}))
        portal.emit("Activated", signature, (portal.session, "ptt", 2, {}))  # a repeat
        portal.emit("Activated", signature, ("/other/session", "toggle", 3, {}))  # not ours
        portal.emit("Deactivated", signature, (portal.session, "ptt", 4, {}))
        portal.emit("Activated", signature, (portal.session, "toggle", 5, {}))
        portal.emit("Deactivated", signature, (portal.session, "toggle", 6, {}))
        portal.emit("Activated", signature, (portal.session, "ptt", 7, {}))
        recorder.expect(("press", "ptt"), ("release", "ptt"), ("press", "toggle"), ("release", "toggle"))
        recorder.expect(("press", "ptt"))
        assert backend.bound == {"ptt": "Ctrl+Alt+Space", "toggle": "Ctrl+Alt+Space"}
        backend.stop()
        recorder.expect(("release", "ptt"))  # still held when it stopped
        assert portal.closed.wait(TIMEOUT)
        recorder.quiet()
        assert recorder.problems.empty()
    finally:
        backend.stop()
        portal.close()


def test_portal_binding_cancelled(session_bus: str) -> None:
    portal = FakePortal(session_bus, response=1)
    backend = PortalBackend({"DBUS_SESSION_BUS_ADDRESS": session_bus})
    recorder = Recorder()
    try:
        assert backend.register(hotkey("F9"), None) == []
        backend.start(recorder.press, recorder.release, recorder.problem)
        problem = recorder.problems.get(timeout=TIMEOUT)
        assert "cancelled" in problem
    finally:
        backend.stop()
        portal.close()


# Windows and macOS decoding (no system calls).


def test_windows_hook_decoding() -> None:
    recorder = Recorder()
    decoder = HookDecoder(
        {"ptt": hotkey("Ctrl+Alt+Space"), "toggle": hotkey("F9")}, PressTracker(recorder.press, recorder.release)
    )
    vk_lctrl, vk_lmenu, vk_space, vk_f9 = 0xA2, 0xA4, 0x20, 0x78
    assert not decoder.feed(WM_KEYDOWN, vk_space)  # no modifiers: an ordinary space
    assert not decoder.feed(WM_KEYUP, vk_space)
    assert not decoder.feed(WM_KEYDOWN, vk_lctrl)
    assert not decoder.feed(WM_SYSKEYDOWN, vk_lmenu)
    assert decoder.modifiers == {"ctrl", "alt"}
    assert decoder.feed(WM_SYSKEYDOWN, vk_space)  # the press, hidden
    assert decoder.mask_needed
    assert decoder.feed(WM_SYSKEYDOWN, vk_space)  # auto-repeat, hidden
    assert not decoder.feed(WM_KEYUP, vk_lctrl)  # Ctrl up first: still pressed
    assert not decoder.feed(WM_KEYUP, vk_lmenu)
    recorder.expect(("press", "ptt"))
    recorder.quiet()
    assert decoder.feed(WM_KEYUP, vk_space)  # the release
    assert decoder.feed(WM_KEYDOWN, vk_f9)
    assert decoder.feed(WM_KEYUP, vk_f9)
    recorder.expect(("release", "ptt"), ("press", "toggle"), ("release", "toggle"))
    assert not decoder.feed(WM_KEYDOWN, 0xA0) and not decoder.feed(WM_KEYDOWN, vk_f9)  # Shift+F9 is not F9
    recorder.quiet()


def test_mac_tap_decoding() -> None:
    recorder = Recorder()
    decoder = TapDecoder(
        {"ptt": hotkey("Ctrl+Alt+Space"), "toggle": hotkey("Super+F9")}, PressTracker(recorder.press, recorder.release)
    )
    space, f9 = MAC_KEYCODES["Space"], MAC_KEYCODES["F9"]
    ctrl_alt = FLAG_MASKS["ctrl"] | FLAG_MASKS["alt"]
    caps_lock = 0x00010000
    assert not decoder.feed(KEY_DOWN, space, 0)
    assert not decoder.feed(KEY_UP, space, 0)
    assert decoder.feed(KEY_DOWN, space, ctrl_alt | caps_lock)
    assert decoder.feed(KEY_DOWN, space, ctrl_alt)  # auto-repeat
    assert decoder.feed(KEY_UP, space, 0)  # modifiers already up
    assert decoder.feed(KEY_DOWN, f9, FLAG_MASKS["super"])
    assert decoder.feed(KEY_UP, f9, FLAG_MASKS["super"])
    recorder.expect(("press", "ptt"), ("release", "ptt"), ("press", "toggle"), ("release", "toggle"))
    recorder.quiet()
    assert unusable_keys({"ptt": hotkey("Pause"), "toggle": hotkey("F9")}) == ["ptt"]
