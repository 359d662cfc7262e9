"""Typing into the focused window: XTEST on a private X server with US and German layouts, Unicode beyond the
layout, pasting long text in time with the clipboard restored byte for byte, terminals, the focus rule, smart
spacing, the typist choice and the Windows and macOS event builders."""

from __future__ import annotations

import ctypes
import hashlib
import json
import random
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import injection
from app.injection import (
    INPUT,
    KEYEVENTF_KEYUP,
    KEYEVENTF_UNICODE,
    MAC_CHUNK_UNITS,
    MAC_FLAG_COMMAND,
    MAC_KEY_RETURN,
    MAC_KEY_V,
    VK_CONTROL,
    VK_RETURN,
    VK_V,
    ClipboardOnlyTypist,
    ClipboardSnapshot,
    ClipData,
    InjectionError,
    MacTypist,
    Method,
    TypingMemory,
    WindowRef,
    WindowsTypist,
    WtypeTypist,
    X11Typist,
    YdotoolTypist,
    choose_typist,
    deliver,
    leading_space,
    mac_unicode_chunks,
    terminal_name,
    text_formats,
    time_budget,
    windows_inputs,
    windows_shortcut,
)
from app.settings import TypingStrategy
from tests.xserver import TargetWindows, need_tools

ASCII = "The quick brown fox, 0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ jumps."
GERMAN = "ä ö ü ß € @ { } y z Ä Ö Ü ẞ yz zy Yz"
BEYOND = "Grüße, 東京 — ok ∑√Ω 😀"


# The X server (per session), the target windows (per module) and a typist per test.


@pytest.fixture(scope="module")
def targets(xvfb_display: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetWindows]:
    need_tools("xdotool")
    windows = TargetWindows(xvfb_display, tmp_path_factory.mktemp("targets"))
    try:
        yield windows
    finally:
        windows.close()


@pytest.fixture
def typist(xvfb_display: str) -> Iterator[X11Typist]:
    """A typist per test: closing it clears its spare keycodes and gives up the clipboard."""
    x11 = X11Typist(xvfb_display)
    assert x11.problem() is None
    try:
        yield x11
    finally:
        x11.close()


@pytest.fixture
def target(targets: TargetWindows) -> TargetWindows:
    """Both editors empty, `main` a plain editor with the focus."""
    assert targets.command("normal") == "ok"
    assert targets.command("clear") == "ok"
    targets.focus("main")
    return targets


def set_layout(display: str, layout: str) -> None:
    subprocess.run(["setxkbmap", "-display", display, layout], check=True, timeout=10)


@pytest.fixture
def german(xvfb_display: str) -> Iterator[None]:
    """The German layout for one test, US again afterwards."""
    need_tools("setxkbmap")
    set_layout(xvfb_display, "de")
    try:
        yield
    finally:
        set_layout(xvfb_display, "us")


def keysyms_of(display: str, keycode: int) -> list[int]:
    import Xlib.display

    connection = Xlib.display.Display(display)
    try:
        return list(connection.get_keyboard_mapping(keycode, 1)[0])
    finally:
        connection.close()


def clipboard_owner(display: str) -> int:
    import Xlib.display

    connection = Xlib.display.Display(display)
    try:
        owner = connection.get_selection_owner(connection.intern_atom("CLIPBOARD"))
        return owner if isinstance(owner, int) else int(owner.id)
    finally:
        connection.close()


def typed(typist: X11Typist, target: TargetWindows, text: str, strategy: TypingStrategy = "type") -> str:
    """Deliver into `main` and return what it holds once the text arrived (or after 5 s)."""
    result = deliver(typist, text, typist.focused_window(), False, strategy=strategy)
    assert result.delivered, result
    return target.wait_text(text)


# Focus.


def test_focused_window_is_the_client_window(typist: X11Typist, target: TargetWindows) -> None:
    window = typist.focused_window()
    assert window == WindowRef(target.ids["main"])
    assert window is not None
    assert window.title == "perch-target-main"
    assert window.wm_class and not window.is_terminal
    target.focus("other")
    assert typist.focused_window() == WindowRef(target.ids["other"])


# Typing.


def test_types_ascii(typist: X11Typist, target: TargetWindows) -> None:
    assert typed(typist, target, ASCII) == ASCII


@pytest.mark.usefixtures("german")
@pytest.mark.parametrize("text", [GERMAN, BEYOND, ASCII])
def test_types_with_the_german_layout(typist: X11Typist, target: TargetWindows, xvfb_display: str, text: str) -> None:
    # The layout really is German: the key right of T (keycode 29) gives z, the one left of X (52) gives y.
    assert keysyms_of(xvfb_display, 29)[:2] == [ord("z"), ord("Z")]
    assert keysyms_of(xvfb_display, 52)[:2] == [ord("y"), ord("Y")]
    assert typed(typist, target, text) == text


@pytest.mark.parametrize("text", [BEYOND, "ÄÖÜ Éé Ññ Çç Ææ Øø"])
def test_types_unicode_beyond_the_layout(typist: X11Typist, target: TargetWindows, text: str) -> None:
    assert typed(typist, target, text) == text


def test_caps_lock_does_not_change_the_text(typist: X11Typist, target: TargetWindows) -> None:
    need_tools("xdotool")
    subprocess.run(["xdotool", "key", "Caps_Lock"], check=True, timeout=10)
    try:
        assert typed(typist, target, "Mixed Case ÄÖ äö") == "Mixed Case ÄÖ äö"
    finally:
        subprocess.run(["xdotool", "key", "Caps_Lock"], check=True, timeout=10)


def test_spare_keycodes_are_kept_and_cleared_by_close(xvfb_display: str, target: TargetWindows) -> None:
    own = X11Typist(xvfb_display)
    han = 0x01000000 | ord("鷗")
    assert typed(own, target, "鷗") == "鷗"
    spare = own._spare[han]
    assert keysyms_of(xvfb_display, spare)[0] == han
    target.command("clear")
    assert typed(own, target, "鷗鷗") == "鷗鷗"
    assert own._spare[han] == spare  # the same key again, no second remap
    own.close()
    assert not any(keysyms_of(xvfb_display, spare))


def test_typing_within_the_auto_limit_fits_the_budget(typist: X11Typist, target: TargetWindows) -> None:
    """The longest text `auto` still types arrives within 100 ms + 2 ms per character, measured in the window."""
    vocabulary = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again", "and", "Again"]
    words = random.Random(7).choices(vocabulary, k=200)
    text = ""
    for word in words:
        if typist.auto_method(f"{text} {word}".strip(), None) != "type":
            break
        text = f"{text} {word}".strip()
    assert len(text) > 60, "auto should type a sentence"
    assert typist.auto_method(text + " and more words to go over", None) == "paste"
    start = time.perf_counter()
    typist.type_text(text)
    assert target.wait_text(text) == text
    elapsed = time.perf_counter() - start
    assert elapsed <= time_budget(text), f"{len(text)} characters took {elapsed * 1000:.0f} ms"


# Pasting.


@pytest.mark.parametrize("sentences", [3, 40])
def test_auto_pastes_long_text_within_the_budget(typist: X11Typist, target: TargetWindows, sentences: int) -> None:
    text = " ".join(f"Sentence number {n} of a long dictation, with Umlaute äöü and 東京." for n in range(sentences))
    start = time.perf_counter()
    result = deliver(typist, text, typist.focused_window(), False)
    assert result.method == "pasted" and result.confirmed
    assert target.wait_text(text) == text
    elapsed = time.perf_counter() - start
    assert elapsed <= time_budget(text), f"{len(text)} characters took {elapsed * 1000:.0f} ms"
    assert target.settle() == text  # pasted exactly once


def test_auto_pastes_line_breaks(typist: X11Typist, target: TargetWindows) -> None:
    text = "first line\nsecond line\tend"
    assert typist.auto_method(text, None) == "paste"
    result = deliver(typist, text, typist.focused_window(), False)
    assert result.method == "pasted"
    assert target.wait_text(text) == text


@pytest.mark.parametrize("klass", [("gnome-terminal-server", "Gnome-terminal"), ("kitty", "kitty")])
def test_terminal_gets_ctrl_shift_v(typist: X11Typist, target: TargetWindows, klass: tuple[str, str]) -> None:
    assert target.command(f"terminal {klass[0]} {klass[1]}") == "ok"
    window = typist.focused_window()
    assert window is not None and window.wm_class == klass and window.is_terminal
    result = deliver(typist, "ls -la", window, False, strategy="paste")
    assert result.method == "pasted" and result.confirmed
    assert target.settle() == "ls -la"  # Ctrl+V would have typed ^V


def png_bytes(width: int, height: int, seed: int) -> bytes:
    """A PNG of random pixels (incompressible, so its size is about 3 bytes per pixel)."""
    rows = random.Random(seed)
    raw = b"".join(b"\0" + rows.randbytes(3 * width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_paste_restores_an_image_and_html_byte_for_byte(
    typist: X11Typist, target: TargetWindows, tmp_path: Path
) -> None:
    image = png_bytes(400, 300, seed=3)  # over 256 KiB: both directions use INCR transfers
    html = '<meta charset="utf-8"><p>Grüße aus <b>東京</b></p>'.encode()
    (tmp_path / "image.png").write_bytes(image)
    (tmp_path / "page.html").write_bytes(html)
    assert target.command(f"own-clipboard {tmp_path / 'image.png'} {tmp_path / 'page.html'}") == "ok"
    before = typist.clipboard.snapshot()
    assert before.complete
    assert before.formats["image/png"] == ClipData("image/png", 8, image)
    assert before.formats["text/html"] == ClipData("text/html", 8, html)

    result = deliver(typist, "pasted over a picture", typist.focused_window(), False, strategy="paste")
    assert result.method == "pasted" and result.confirmed
    assert target.settle() == "pasted over a picture"

    after = typist.clipboard.snapshot()
    assert after.formats == before.formats
    # Another program (Qt in the target process) reads back the same bytes.
    formats = json.loads(target.command("dump-clipboard"))
    assert formats["image/png"] == [len(image), hashlib.sha256(image).hexdigest()]
    assert formats["text/html"] == [len(html), hashlib.sha256(html).hexdigest()]
    assert "text/plain" not in formats
    assert target.settle(quiet=0.1) == "pasted over a picture"  # restoring did not paste again


def test_paste_leaves_an_empty_clipboard_empty(typist: X11Typist, target: TargetWindows, xvfb_display: str) -> None:
    generation = typist.clipboard.offer(text_formats("to be dropped"))
    typist.clipboard.restore(ClipboardSnapshot({}), generation)
    assert clipboard_owner(xvfb_display) == 0
    result = deliver(typist, "nothing before", typist.focused_window(), False, strategy="paste")
    assert result.method == "pasted" and result.confirmed
    assert target.wait_text("nothing before") == "nothing before"
    assert clipboard_owner(xvfb_display) == 0
    assert typist.clipboard.snapshot().formats == {}


def test_paste_that_nobody_fetches_is_reported(typist: X11Typist, xvfb_display: str, target: TargetWindows) -> None:
    """With the focus on nothing the paste shortcut reaches no window: the clipboard comes back after the timeout."""
    import Xlib.display
    from Xlib import X

    typist.clipboard.offer(text_formats("kept"))
    connection = Xlib.display.Display(xvfb_display)
    connection.set_input_focus(X.NONE, X.RevertToNone, X.CurrentTime)
    connection.sync()
    connection.close()
    assert typist.focused_window() is None
    original, typist.paste_timeout_s = typist.paste_timeout_s, 0.2
    try:
        assert typist.paste("lost") is False
    finally:
        typist.paste_timeout_s = original
    assert typist.clipboard.snapshot().text() == "kept"
    assert target.text() == ""


# The focus rule.


def test_focus_moved_so_the_text_goes_to_the_clipboard(typist: X11Typist, target: TargetWindows) -> None:
    started = typist.focused_window()
    target.focus("other")
    result = deliver(typist, "not for this window", started, False)
    assert result.method == "copied" and not result.delivered
    assert "focus moved" in result.reason and "perch-target-main" in result.reason
    notice = result.notice()
    assert notice is not None and "clipboard" in notice
    assert result.window == WindowRef(target.ids["other"])
    assert typist.clipboard.snapshot().text() == "not for this window"
    assert target.settle("other", quiet=0.1) == "" and target.text("main") == ""

    result = deliver(typist, "any focus", started, True)
    assert result.method == "typed"
    assert target.wait_text("any focus", "other") == "any focus"


# Smart spacing.


def test_smart_spacing_continues_a_sentence(typist: X11Typist, target: TargetWindows) -> None:
    memory = TypingMemory()
    window = typist.focused_window()
    for part in ("Hello", "world,", "again.", "東京", "大阪"):
        result = deliver(typist, part, window, False, memory=memory)
        assert result.delivered
    assert target.wait_text("Hello world, again. 東京大阪") == "Hello world, again. 東京大阪"
    target.focus("other")
    deliver(typist, "Fresh", None, False, memory=memory)
    assert target.wait_text("Fresh", "other") == "Fresh"


@pytest.mark.parametrize(
    ("previous", "text", "space"),
    [
        (None, "Hello", ""),
        ("", "Hello", ""),
        ("Hello", "world", " "),
        ("Hello.", "Next", " "),
        ("Hello", ", world", ""),
        ("Hello", ".", ""),
        ("line\n", "Next", ""),
        ("word ", "next", ""),
        ("word", " next", ""),
        ("(", "aside", ""),
        ("東京", "大阪", ""),
        ("東京", "ok", " "),
        ("Hello", "", ""),
    ],
)
def test_leading_space(previous: str | None, text: str, space: str) -> None:
    assert leading_space(previous, text) == space


def test_typing_memory_is_per_window_and_forgets() -> None:
    now = [0.0]
    memory = TypingMemory(max_age_s=60, clock=lambda: now[0])
    one, two = WindowRef(1, "one"), WindowRef(2, "two")
    memory.remember(one, "Hello")
    assert memory.previous(WindowRef(1, "renamed")) == "Hello"
    assert memory.previous(two) is None
    assert memory.previous(None) is None
    now[0] = 61
    assert memory.previous(one) is None
    memory.remember(two, "x")
    memory.forget()
    assert memory.previous(two) is None


# deliver's rules, with a scripted typist.


@dataclass
class FakeTypist:
    """Records what deliver asks of it."""

    name: str = "fake"
    window: WindowRef | None = field(default_factory=lambda: WindowRef(7, "editor"))
    trouble: str | None = None
    fail: bool = False
    crash: bool = False
    fetched: bool = True
    method: Method = "type"
    calls: list[tuple[str, str]] = field(default_factory=list)

    def problem(self) -> str | None:
        return self.trouble

    def focused_window(self) -> WindowRef | None:
        return self.window

    def type_text(self, text: str) -> None:
        if self.fail:
            raise InjectionError("typing broke")
        if self.crash:
            raise RuntimeError("a bug")
        self.calls.append(("type", text))

    def paste(self, text: str) -> bool:
        self.calls.append(("paste", text))
        return self.fetched

    def copy(self, text: str) -> None:
        self.calls.append(("copy", text))

    def auto_method(self, text: str, window: WindowRef | None) -> Method:
        return self.method

    def close(self) -> None:
        pass


def test_deliver_rules() -> None:
    editor = WindowRef(7)
    fake = FakeTypist()
    assert deliver(fake, "a", editor, False).method == "typed"
    assert deliver(fake, "", editor, False).method == "nothing"
    assert deliver(fake, "b", None, False).method == "typed"  # unknown start: type where the focus is
    assert deliver(fake, "c", editor, False, strategy="paste").method == "pasted"
    assert deliver(fake, "d", editor, False, strategy="clipboard").method == "copied"
    assert fake.calls == [("type", "a"), ("type", "b"), ("paste", "c"), ("copy", "d")]

    moved = deliver(fake, "e", WindowRef(8, "chat"), False)
    assert moved.method == "copied" and '"chat"' in moved.reason and '"editor"' in moved.reason
    assert deliver(fake, "f", WindowRef(8), True).method == "typed"

    assert deliver(FakeTypist(window=None), "g", editor, False).reason.endswith(
        "moved from window 0x7 away during dictation"
    )
    broken = FakeTypist(fail=True)
    assert deliver(broken, "h", editor, False).method == "pasted"  # typing failed, pasting worked
    assert broken.calls == [("paste", "h")]
    crashed = FakeTypist(crash=True)
    result = deliver(crashed, "k", editor, False)
    assert result.method == "copied" and result.reason == "typing failed: a bug" and crashed.calls == [("copy", "k")]
    missing = deliver(FakeTypist(trouble="no display"), "i", editor, False)
    assert missing.method == "copied" and missing.reason == "no display"
    unfetched = deliver(FakeTypist(method="paste", fetched=False), "j", editor, False)
    assert unfetched.method == "pasted" and not unfetched.confirmed and unfetched.notice() is not None


def test_deliver_with_memory_adds_the_space_only_in_the_same_window() -> None:
    fake = FakeTypist()
    memory = TypingMemory()
    deliver(fake, "Hello", None, False, memory=memory)
    result = deliver(fake, "world", None, False, memory=memory)
    assert result.text == " world"
    fake.window = WindowRef(9)
    assert deliver(fake, "New", None, False, memory=memory).text == "New"
    assert [text for _, text in fake.calls] == ["Hello", " world", "New"]


@pytest.mark.parametrize(
    ("wm_class", "name"),
    [
        (("xterm", "XTerm"), "xterm"),
        (("gnome-terminal-server", "Gnome-terminal"), "gnome-terminal"),
        (("org.wezfurlong.wezterm", "org.wezfurlong.wezterm"), "wezterm"),
        (("tilix", "com.gexperts.Tilix"), "tilix"),
        (("st-256color", "st-256color"), "st"),
        (("urxvt", "URxvt"), "urxvt"),
        (("xfce4-terminal", "Xfce4-terminal"), "xfce4-terminal"),
        (("firefox", "Firefox"), None),
        (("stellarium", "Stellarium"), None),
        ((), None),
    ],
)
def test_terminal_name(wm_class: tuple[str, ...], name: str | None) -> None:
    assert terminal_name(wm_class) == name


def test_xterm_and_urxvt_are_typed_into_even_when_long(typist: X11Typist) -> None:
    xterm = WindowRef(1, "xterm", ("xterm", "XTerm"))
    assert typist.auto_method("x" * 2000, xterm) == "type"
    assert typist.paste_keys(xterm) == (injection.KEYSYM_CONTROL_L, injection.KEYSYM_SHIFT_L, injection.KEYSYM_V)
    assert typist.paste_keys(WindowRef(2)) == (injection.KEYSYM_CONTROL_L, injection.KEYSYM_V)
    urxvt = WindowRef(3, "urxvt", ("urxvt", "URxvt"))
    assert typist.auto_method("x" * 2000, urxvt) == "type"
    assert typist.paste_keys(urxvt) == (injection.KEYSYM_CONTROL_L, injection.KEYSYM_ALT_L, injection.KEYSYM_V)


# Choosing a typist.


def test_choose_typist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tools: set[str] = set()
    monkeypatch.setattr("app.injection.shutil.which", lambda name: f"/usr/bin/{name}" if name in tools else None)
    x11 = {"DISPLAY": ":5"}
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_RUNTIME_DIR": str(tmp_path)}

    chosen = choose_typist("auto", environ=x11, platform="linux")
    assert isinstance(chosen, X11Typist) and chosen.display_name == ":5"
    assert isinstance(choose_typist("paste", environ=x11, platform="linux"), X11Typist)
    assert isinstance(choose_typist("clipboard", environ=x11, platform="linux"), ClipboardOnlyTypist)
    assert isinstance(choose_typist("auto", environ={}, platform="win32"), WindowsTypist)
    assert isinstance(choose_typist("auto", environ={}, platform="darwin"), MacTypist)
    nothing = choose_typist("auto", environ={}, platform="linux")
    assert isinstance(nothing, ClipboardOnlyTypist) and "no X11 or Wayland display" in (nothing.problem() or "")

    fallback = choose_typist("auto", environ=wayland, platform="linux")
    assert isinstance(fallback, ClipboardOnlyTypist)
    assert "wtype" in (fallback.problem() or "") and "ydotool" in (fallback.problem() or "")
    tools.add("ydotool")
    assert isinstance(choose_typist("auto", environ=wayland, platform="linux"), ClipboardOnlyTypist)  # no daemon
    (tmp_path / ".ydotool_socket").touch()
    assert isinstance(choose_typist("auto", environ=wayland, platform="linux"), YdotoolTypist)
    tools.add("wtype")
    assert isinstance(choose_typist("auto", environ=wayland, platform="linux"), WtypeTypist)


def stand_in_tools(folder: Path, log: Path) -> Path:
    """wtype, ydotool, wl-copy and wl-paste stand-ins that log their arguments (and wl-copy its input)."""
    folder.mkdir()
    scripts = {
        "wtype": f'echo "wtype $*" >> {log}',
        "ydotool": f'echo "ydotool $*" >> {log}',
        "wl-copy": f'echo "wl-copy $* :: $(cat)" >> {log}',
        "wl-paste": 'if [ "$1" = --list-types ]; then printf "text/plain;charset=utf-8\\nimage/png\\n"; '
        "else printf 'old text'; fi",
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def test_wayland_typists_with_stand_in_programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(injection, "PASTE_SETTLE_S", 0.0)
    log = tmp_path / "log"
    tools = stand_in_tools(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    wtype = WtypeTypist()
    assert wtype.problem() is None and wtype.focused_window() is None
    wtype.type_text("Grüße 😀")
    assert wtype.paste("new") is True
    assert log.read_text(encoding="utf-8").splitlines() == [
        "wtype -- Grüße 😀",
        "wl-copy  :: new",
        "wtype -M ctrl -k v -m ctrl",
        "wl-copy --type text/plain;charset=utf-8 :: old text",  # the old text back last
    ]

    log.unlink()
    monkeypatch.setenv("YDOTOOL_SOCKET", str(tmp_path / "missing"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    ydotool = YdotoolTypist()
    assert "ydotoold" in (ydotool.problem() or "")
    (tmp_path / ".ydotool_socket").touch()
    assert ydotool.problem() is None
    assert ydotool.auto_method("plain ascii", None) == "paste"
    assert ydotool.paste("x") is True
    assert "ydotool key 29:1 47:1 47:0 29:0" in log.read_text(encoding="utf-8").splitlines()


def test_x11_typist_without_a_display() -> None:
    assert "DISPLAY is empty" in (X11Typist("").problem() or "")
    assert "cannot open the X11 display :987" in (X11Typist(":987").problem() or "")


def test_clipboard_only_typist_copies_through_the_given_function() -> None:
    copied: list[str] = []
    only = ClipboardOnlyTypist("no way to type here", copied.append)
    result = deliver(only, "text", None, False)
    assert result.method == "copied" and result.reason == "no way to type here" and copied == ["text"]
    with pytest.raises(InjectionError):
        only.type_text("x")


# Windows.


def test_windows_input_structures() -> None:
    assert ctypes.sizeof(INPUT) == (40 if ctypes.sizeof(ctypes.c_void_p) == 8 else 28)
    inputs = windows_inputs("a€😀\n")
    keys = [(i.type, i.u.ki.wVk, i.u.ki.wScan, i.u.ki.dwFlags) for i in inputs]
    down, up = KEYEVENTF_UNICODE, KEYEVENTF_UNICODE | KEYEVENTF_KEYUP
    assert keys == [
        (1, 0, ord("a"), down),
        (1, 0, ord("a"), up),
        (1, 0, 0x20AC, down),
        (1, 0, 0x20AC, up),
        (1, 0, 0xD83D, down),  # U+1F600 as its surrogate pair, high unit first
        (1, 0, 0xD83D, up),
        (1, 0, 0xDE00, down),
        (1, 0, 0xDE00, up),
        (1, VK_RETURN, 0, 0),
        (1, VK_RETURN, 0, KEYEVENTF_KEYUP),
    ]
    shortcut = [(i.u.ki.wVk, i.u.ki.dwFlags) for i in windows_shortcut(VK_CONTROL, VK_V)]
    assert shortcut == [(VK_CONTROL, 0), (VK_V, 0), (VK_V, KEYEVENTF_KEYUP), (VK_CONTROL, KEYEVENTF_KEYUP)]


@dataclass
class FakeWindowsApi:
    clipboard: dict[int, bytes] = field(default_factory=lambda: {49161: b"<html>", 13: "old\0".encode("utf-16-le")})
    taken: int | None = None
    sent: list[list[tuple[int, int, int]]] = field(default_factory=list)
    pasted: list[dict[int, bytes]] = field(default_factory=list)

    def send_input(self, inputs: list[INPUT]) -> int:
        self.sent.append([(i.u.ki.wVk, i.u.ki.wScan, i.u.ki.dwFlags) for i in inputs])
        if any(i.u.ki.wVk == VK_V for i in inputs):
            self.pasted.append(dict(self.clipboard))
        return len(inputs) if self.taken is None else self.taken

    def foreground_window(self) -> tuple[int, str, str]:
        return 0x1234, "Notepad", "Notepad"

    def read_clipboard(self) -> dict[int, bytes]:
        return dict(self.clipboard)

    def write_clipboard(self, formats: dict[int, bytes]) -> None:
        self.clipboard = dict(formats)


def test_windows_typist_at_its_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(injection, "PASTE_SETTLE_S", 0.0)
    api = FakeWindowsApi()
    windows = WindowsTypist(api)
    assert windows.problem() is None
    assert windows.focused_window() == WindowRef(0x1234, "Notepad", ("Notepad",))
    windows.type_text("hi")
    assert len(api.sent[-1]) == 4
    original = dict(api.clipboard)
    assert windows.paste("one\ntwo") is True
    assert api.pasted == [{13: "one\r\ntwo\0".encode("utf-16-le")}]
    assert api.clipboard == original
    api.taken = 0
    with pytest.raises(InjectionError, match="administrator"):
        windows.type_text("blocked")


# macOS.


def test_mac_unicode_chunks() -> None:
    assert mac_unicode_chunks("a" * 45) == [[ord("a")] * 20, [ord("a")] * 20, [ord("a")] * 5]
    events = mac_unicode_chunks("b" * 19 + "😀" + "\nc")
    assert events == [[ord("b")] * 19, [0xD83D, 0xDE00], MAC_KEY_RETURN, [ord("c")]]
    assert all(isinstance(e, int) or len(e) <= MAC_CHUNK_UNITS for e in mac_unicode_chunks("😀" * 30))


@dataclass
class FakeMacApi:
    trusted_now: bool = True
    posts: list[tuple[list[int] | None, int, int]] = field(default_factory=list)

    def trusted(self) -> bool:
        return self.trusted_now

    def post(self, units: list[int] | None = None, keycode: int = 0, flags: int = 0) -> None:
        self.posts.append((units, keycode, flags))

    def focused_application(self) -> tuple[int, str]:
        return 501, "Untitled"


def test_mac_typist_at_its_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeMacApi()
    mac = MacTypist(api)
    assert mac.problem() is None
    assert mac.focused_window() == WindowRef(501, "Untitled")
    mac.type_text("ok\n")
    assert api.posts == [([ord("o"), ord("k")], 0, 0), (None, MAC_KEY_RETURN, 0)]
    copies: list[str] = []

    def run(command: list[str], stdin: str | None = None, timeout: float = 5.0) -> str:
        copies.append(stdin or "")
        return "old"

    monkeypatch.setattr(injection, "PASTE_SETTLE_S", 0.0)
    monkeypatch.setattr(injection, "_run", run)
    assert mac.paste("new") is True
    assert api.posts[-1] == (None, MAC_KEY_V, MAC_FLAG_COMMAND)
    assert copies == ["", "new", "old"]  # pbpaste, the text, the previous text back
    api.trusted_now = False
    assert "Accessibility" in (mac.problem() or "")
