"""The live caption window: no focus, partial and final text, hiding when idle, meter, settings, geometry."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu
from pytestqt.qtbot import QtBot

from app.coordinator import Ending, Phase
from app.gui.caption import CaptionWindow
from app.gui.caption_parts import (
    BOTTOM_GAP,
    BUSY_LINES,
    DEFAULT_WIDTH,
    DIM_COLOR,
    ELLIPSIS,
    MARGINS,
    STATE_COLOR,
    VISIBLE_LINES,
    WARNING_COLOR,
    StateLine,
    caption_html,
    delivery_line,
    ending_line,
    latency_text,
    level_fraction,
    line_starts,
)
from app.injection import DeliveryResult
from app.settings import CaptionSettings
from tests.xserver import need_qt_xcb

ROOT = Path(__file__).resolve().parents[1]
SHORT = 0.2
"""final_seconds for the tests."""


@pytest.fixture
def caption(qtbot: QtBot) -> CaptionWindow:
    window = CaptionWindow(CaptionSettings(), final_seconds=SHORT)
    qtbot.addWidget(window)
    return window


def plain(rich: str) -> str:
    """What a person sees for a label's rich text."""
    document = QTextDocument()
    document.setHtml(rich)
    return document.toPlainText()


# Focus.


def test_flags_and_attributes_keep_the_focus_elsewhere(caption: CaptionWindow) -> None:
    flags = caption.windowFlags()
    for flag in (
        Qt.WindowType.Tool,
        Qt.WindowType.FramelessWindowHint,
        Qt.WindowType.WindowStaysOnTopHint,
        Qt.WindowType.WindowDoesNotAcceptFocus,
    ):
        assert flags & flag == flag, flag
    assert not flags & Qt.WindowType.X11BypassWindowManagerHint
    assert not flags & Qt.WindowType.WindowTransparentForInput
    assert caption.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    assert caption.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert caption.focusPolicy() == Qt.FocusPolicy.NoFocus
    for child in (caption.text_label, caption.state_label, caption.latency_label, caption.meter, caption.grip):
        assert child.focusPolicy() == Qt.FocusPolicy.NoFocus


def test_showing_never_asks_for_activation(
    caption: CaptionWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("the caption asked to be activated or raised")

    monkeypatch.setattr(CaptionWindow, "activateWindow", refuse)
    monkeypatch.setattr(CaptionWindow, "raise_", refuse)
    caption.show_state("Listening…")
    caption.show_partial("hello", 2)
    caption.apply_settings(CaptionSettings(click_through=True))  # new window flags: shown again
    assert caption.isVisible()
    caption.apply_settings(CaptionSettings())
    caption.show_final("hello")
    caption.idle()
    qtbot.waitUntil(lambda: not caption.isVisible(), timeout=3000)
    caption.show_partial("again", 0)
    assert caption.isVisible()


STATE_LINES = [
    ("Transcribing…", False),
    ("Typing…", False),
    ("Typed 180 ms after release", False),
    ("Left on the clipboard: the focus moved", False),
    ("Cancelled", False),
    ("No speech heard", False),
    ("the microphone was unplugged", True),
]
"""The state lines the probe goes through after "Listening…"."""

FOCUS_PROBE = """
import json
import sys
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget
app = QApplication([])
from app.gui.caption import CaptionWindow

def settle(check):
    for _ in range(100):
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()
        if check():
            return True
    return False

STATE_LINES = json.loads(sys.argv[1])
result = {}
control = QWidget()
control.show()
control.activateWindow()
result["control_activates"] = settle(lambda: QApplication.activeWindow() is control)
editor = QLineEdit()
editor.show()
editor.activateWindow()
editor.setFocus()
result["editor_active"] = settle(lambda: QApplication.activeWindow() is editor)
caption = CaptionWindow()
caption.show_state("Listening…")
caption.show_partial("hello <b>& world", 6)
result["caption_visible"] = settle(caption.isVisible)
caption.set_latency(180)
result["lines"] = []
for line, error in STATE_LINES:
    caption.show_state(line, error)
    settle(lambda: caption.state_label.text() == line)
    result["lines"].append([caption.state_label.text(), caption.latency_label.isVisible()])
settle(lambda: False if QApplication.activeWindow() is editor else True)
result["caption_active"] = QApplication.activeWindow() is caption or caption.isActiveWindow()
result["editor_still_active"] = QApplication.activeWindow() is editor
result["editor_has_focus"] = QApplication.focusWidget() is editor
print(json.dumps(result))
"""


@pytest.fixture
def x_display() -> Iterator[str]:
    """A private X server (Xvfb) with no window manager; skips when Qt windows cannot open on it."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        server.wait()
        pytest.skip("Xvfb did not start")
    try:
        need_qt_xcb(f":{number}")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_caption_is_never_the_active_window(x_display: str) -> None:
    """On a real X server (the offscreen platform focuses every window it shows), the focus stays put."""
    env = dict(os.environ, DISPLAY=x_display, QT_QPA_PLATFORM="xcb")
    probe = [sys.executable, "-c", FOCUS_PROBE, json.dumps(STATE_LINES)]
    done = subprocess.run(probe, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["control_activates"], "activation is not observable on this display"
    assert result["editor_active"]
    assert result["caption_visible"]
    assert not result["caption_active"]
    assert result["editor_still_active"]
    assert result["editor_has_focus"]
    typed = "Typed 180 ms after release"  # the latency beside it is not said twice
    assert result["lines"] == [[line, line != typed] for line, _ in STATE_LINES]


# Text.


def test_partial_shows_stable_text_plain_and_the_tail_dimmed(caption: CaptionWindow) -> None:
    caption.show_partial("say <b>& more", 4)
    rich = caption.text_label.text()
    assert caption.text_label.textFormat() == Qt.TextFormat.RichText
    assert rich == f'say <span style="color:{DIM_COLOR}">&lt;b&gt;&amp; more</span>'
    assert plain(rich) == "say <b>& more"
    assert caption.isVisible()


def test_caption_html() -> None:
    assert caption_html("a<b", 99) == "a&lt;b"
    assert caption_html("ab", -3) == f'<span style="color:{DIM_COLOR}">ab</span>'
    assert caption_html("a & b", 1, dimmed=True) == f'<span style="color:{DIM_COLOR}">a &amp; b</span>'
    assert plain(caption_html('"x" & y', 3, elided=True)) == f'{ELLIPSIS}"x" & y'
    assert caption_html("", 0) == ""


def test_final_text_is_all_plain(caption: CaptionWindow) -> None:
    caption.show_partial("hello wor", 6)
    caption.show_final("Hello world.")
    assert caption.text_label.text() == "Hello world."


def test_final_hides_after_final_seconds_when_hide_when_idle(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_final("Done.")
    caption.idle()
    idle_at = time.monotonic()
    assert caption.isVisible()
    qtbot.waitUntil(lambda: not caption.isVisible(), timeout=3000)
    assert time.monotonic() - idle_at >= SHORT * 0.9
    assert caption.windowOpacity() == pytest.approx(caption._settings.opacity, abs=0.01)


def test_final_stays_dimmed_when_not_hide_when_idle(qtbot: QtBot) -> None:
    window = CaptionWindow(CaptionSettings(hide_when_idle=False), final_seconds=SHORT)
    qtbot.addWidget(window)
    window.show_state("Typed")
    window.show_final("Done.")
    window.idle()
    dimmed = f'<span style="color:{DIM_COLOR}">Done.</span>'
    qtbot.waitUntil(lambda: window.text_label.text() == dimmed, timeout=3000)
    assert window.isVisible()
    assert DIM_COLOR in window.state_label.styleSheet()
    # Turning hide_when_idle on while idle hides it.
    window.apply_settings(CaptionSettings(hide_when_idle=True))
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=3000)


def test_a_new_utterance_cancels_the_hide_and_clears_the_old_text(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_final("Old text.")
    caption.show_state("Typed")
    caption.idle()
    caption.show_state("Listening…")
    assert caption.text_label.text() == ""
    assert caption.state_label.full_text() == "Listening…"
    qtbot.wait(round(SHORT * 1000) + 300)
    assert caption.isVisible()


def test_long_text_keeps_the_end_visible(caption: CaptionWindow) -> None:
    words = " ".join(f"word{i}" for i in range(300)) + " the very end"
    caption.show_partial(words, len(words) - 8)
    shown = plain(caption.text_label.text())
    assert shown.startswith(ELLIPSIS)
    assert shown.endswith("the very end")
    left, _, right, _ = MARGINS
    width = caption.width() - left - right
    assert len(line_starts(shown, caption.text_label.font(), width)) <= VISIBLE_LINES
    # The unstable tail is still the dimmed part.
    assert caption.text_label.text().endswith(f'<span style="color:{DIM_COLOR}">very end</span>')
    # Short text is shown whole.
    caption.show_partial("short", 5)
    assert caption.text_label.text() == "short"


def test_long_text_reflows_when_the_window_is_resized(caption: CaptionWindow) -> None:
    words = " ".join(f"word{i}" for i in range(60))
    caption.show_partial(words, len(words))
    narrow = plain(caption.text_label.text())
    caption.resize(caption.width() * 2, caption.height())
    wide = plain(caption.text_label.text())
    assert len(wide) > len(narrow)
    assert wide.endswith("word59")


# State, latency, meter.


def test_state_line_and_errors(caption: CaptionWindow) -> None:
    caption.show_state("Listening…")
    assert caption.state_label.full_text() == "Listening…"
    assert STATE_COLOR in caption.state_label.styleSheet()
    caption.show_state("The microphone is gone.", error=True)
    assert caption.state_label.full_text() == "The microphone is gone."
    assert WARNING_COLOR in caption.state_label.styleSheet()
    long_error = "The microphone stopped working. " * 20
    caption.show_state(long_error, error=True)
    assert caption.state_label.text().endswith("…")
    assert caption.state_label.toolTip() == long_error.strip()


def test_menu_offers_to_add_the_caption_text_to_the_vocabulary(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_final("Ask Ada Lovelace.")
    caption.idle()

    def choose() -> None:
        centre = caption.rect().center()
        event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre, caption.mapToGlobal(centre))
        QApplication.sendEvent(caption, event)
        menus = [m for m in caption.findChildren(QMenu) if m.isVisible()]
        assert len(menus) == 1 and [a.text() for a in menus[0].actions()] == ["Add to vocabulary…"]
        menus[0].actions()[0].trigger()
        menus[0].close()

    with qtbot.waitSignal(caption.add_to_vocabulary) as wanted:
        choose()
    assert wanted.args == ["Ask Ada Lovelace."]
    assert caption.text() == "Ask Ada Lovelace."  # still the last text after the utterance ended


def test_latency_label(caption: CaptionWindow) -> None:
    assert caption.latency_label.isHidden()
    caption.set_latency(180)
    assert caption.latency_label.text() == "typed 180 ms after release"
    assert not caption.latency_label.isHidden()
    caption.set_latency(1234.0)
    assert caption.latency_label.text() == "typed 1.2 s after release"
    caption.set_latency(None)
    assert caption.latency_label.text() == ""
    assert caption.latency_label.isHidden()


def test_state_line_wording() -> None:
    # While busy, the tray's phase in the caption's words; at rest the line says how the utterance ended.
    assert BUSY_LINES == {Phase.RECORDING: "Listening…", Phase.TRANSCRIBING: "Transcribing…", Phase.TYPING: "Typing…"}
    assert ending_line(Ending("typed")) == StateLine("Typed")
    assert ending_line(Ending("cancelled")) == StateLine("Cancelled")
    assert ending_line(Ending("no speech")) == StateLine("No speech heard")
    assert ending_line(Ending("stopped")) == StateLine("Stopped")
    assert ending_line(Ending("clipboard", "no typist")) == StateLine("Left on the clipboard: no typist", True)
    assert ending_line(Ending("failed", "the microphone is gone")) == StateLine("the microphone is gone", True)
    assert latency_text(73.4) == "73 ms" and latency_text(1234) == "1.2 s"
    assert latency_text(None) is latency_text(-1) is latency_text(math.nan) is None


def test_delivery_line_says_how_the_text_went_in() -> None:
    assert delivery_line(DeliveryResult("typed", 0.01, "hi"), 73.4) == "Typed 73 ms after release"
    assert delivery_line(DeliveryResult("pasted", 0.1, "hi"), 1234.0) == "Typed 1.2 s after release"
    assert delivery_line(DeliveryResult("typed", 0.01, "hi"), None) == "Typed"
    copied = DeliveryResult("copied", 0.01, "hi", reason="typing is set to clipboard only")
    assert delivery_line(copied, 50.0) == "Left on the clipboard: typing is set to clipboard only"
    refused = DeliveryResult("pasted", 1.0, "hi", reason="it did not fetch the clipboard within 1 s", confirmed=False)
    assert delivery_line(refused, 900.0) == "Paste not taken: it did not fetch the clipboard within 1 s"
    lost = DeliveryResult("nothing", 0.01, "hi", reason="no display; copying failed too: no clipboard")
    assert delivery_line(lost, 50.0) == "Not typed or copied: no display; copying failed too: no clipboard"


def test_latency_is_not_said_twice(caption: CaptionWindow) -> None:
    caption.show_state("Listening…")
    caption.set_latency(73.4)
    assert caption.latency_label.text() == "typed 73 ms after release" and not caption.latency_label.isHidden()
    caption.show_state("Transcribing…")
    assert not caption.latency_label.isHidden()
    caption.show_state(delivery_line(DeliveryResult("typed", 0.01, "hi"), 73.4))
    assert caption.state_label.full_text() == "Typed 73 ms after release"
    assert caption.latency_label.isHidden() and STATE_COLOR in caption.state_label.styleSheet()
    caption.idle()
    caption.show_state("Listening…")  # the next utterance: the last one's latency beside its state
    assert not caption.latency_label.isHidden()
    caption.show_state(*ending_line(Ending("failed", "the microphone is gone")))
    assert WARNING_COLOR in caption.state_label.styleSheet() and not caption.latency_label.isHidden()
    caption.show_state("Listening…")
    assert STATE_COLOR in caption.state_label.styleSheet()


def test_level_fraction_clamps() -> None:
    assert level_fraction(-120) == 0.0
    assert level_fraction(-60) == 0.0
    assert level_fraction(-30) == pytest.approx(0.5)
    assert level_fraction(0) == 1.0
    assert level_fraction(12) == 1.0
    assert level_fraction(math.nan) == 0.0
    assert level_fraction(-math.inf) == 0.0


def test_level_meter_smooths_and_clamps(caption: CaptionWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    meter = caption.meter
    caption.set_level(-120)
    assert meter.target == 0.0
    assert meter.value == 0.0
    redraws: list[None] = []
    monkeypatch.setattr(meter, "update", lambda: redraws.append(None))
    for _ in range(100):
        caption.set_level(0)
    assert meter.target == 1.0
    assert meter.value == 0.0  # moves on the meter's timer, not per level
    assert redraws == []
    qtbot.waitUntil(lambda: meter.value == 1.0, timeout=3000)
    assert 0 < len(redraws) < 30
    caption.set_level(20)
    assert meter.target == 1.0
    caption.set_level(-120)
    qtbot.waitUntil(lambda: 0 < meter.value < 1, timeout=3000)
    qtbot.waitUntil(lambda: meter.value == 0.0, timeout=3000)
    caption.set_level(-6)
    caption.idle()
    assert meter.value == 0.0
    assert meter.target == 0.0


# Settings and geometry.


def test_default_place_is_bottom_centre(caption: CaptionWindow) -> None:
    screen = QGuiApplication.primaryScreen()
    assert screen is not None
    area = screen.availableGeometry()
    geometry = caption.geometry()
    assert geometry.width() == min(DEFAULT_WIDTH, area.width() - 2 * BOTTOM_GAP)
    assert abs(geometry.center().x() - area.center().x()) <= 1
    assert geometry.y() + geometry.height() == area.y() + area.height() - BOTTOM_GAP


def test_apply_settings_changes_the_window_live(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_partial("hello", 5)
    height = caption.height()
    caption.apply_settings(CaptionSettings(font_size=32, opacity=0.5))
    assert caption.text_label.font().pointSize() == 32
    assert caption.windowOpacity() == pytest.approx(0.5, abs=0.01)
    assert caption.height() > height  # auto-placed: grows with the font
    assert caption.isVisible()

    caption.apply_settings(CaptionSettings(font_size=32, opacity=0.5, click_through=True))
    assert caption.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    assert caption.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert caption.windowFlags() & Qt.WindowType.WindowDoesNotAcceptFocus
    assert caption.isVisible()
    assert caption.grip.isHidden()

    caption.apply_settings(CaptionSettings())
    assert not caption.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    assert not caption.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert not caption.grip.isHidden()
    assert caption.text_label.font().pointSize() == CaptionSettings().font_size

    caption.apply_settings(CaptionSettings(show=False))
    assert not caption.isVisible()
    caption.show_partial("still hidden", 0)
    assert not caption.isVisible()
    caption.apply_settings(CaptionSettings(show=True))
    assert caption.isVisible()


def test_geometry_from_settings_and_when_its_screen_is_gone(caption: CaptionWindow, qtbot: QtBot) -> None:
    with qtbot.assertNotEmitted(caption.geometry_changed, wait=500):
        caption.apply_settings(CaptionSettings(geometry=(20, 30, 500, 140)))
        caption.show_partial("placed", 6)
    assert caption.geometry().getRect() == (20, 30, 500, 140)
    caption.apply_settings(CaptionSettings(geometry=(-9000, -9000, 500, 140)))
    assert caption.width() == min(DEFAULT_WIDTH, caption.screen().availableGeometry().width() - 2 * BOTTOM_GAP)
    assert caption.x() >= 0


def test_geometry_changed_is_debounced(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_partial("hello", 5)
    qtbot.wait(400)  # the first show's events are not a change
    seen: list[tuple[int, int, int, int]] = []
    caption.geometry_changed.connect(seen.append)
    with qtbot.waitSignal(caption.geometry_changed, timeout=3000) as blocker:
        caption.move(30, 40)
        caption.resize(500, 150)
    assert blocker.args == [(30, 40, 500, 150)]
    with qtbot.assertNotEmitted(caption.geometry_changed, wait=500):
        pass
    assert seen == [(30, 40, 500, 150)]
    # Settings that hold what was just reported do not move it back or report again.
    with qtbot.assertNotEmitted(caption.geometry_changed, wait=500):
        caption.apply_settings(replace(CaptionSettings(), geometry=seen[0], font_size=20))
    assert caption.geometry().getRect() == seen[0]


def test_dragging_moves_the_window(caption: CaptionWindow, qtbot: QtBot) -> None:
    caption.show_partial("drag me", 7)
    qtbot.wait(400)
    start = caption.pos()
    with qtbot.waitSignal(caption.geometry_changed, timeout=3000) as blocker:
        QTest.mousePress(caption, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 20))
        QTest.mouseMove(caption, QPoint(60, 35))
        QTest.mouseRelease(caption, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(60, 35))
    assert caption.pos() == start + QPoint(40, 15)
    assert blocker.args is not None
    assert blocker.args[0][:2] == (start.x() + 40, start.y() + 15)


# The README's picture.


def test_renders_text_level_and_latency(qtbot: QtBot, tmp_path: Path) -> None:
    """The caption renders its parts (the README's picture comes from a real run: tests/screenshots_app.py)."""
    window = CaptionWindow(CaptionSettings())
    qtbot.addWidget(window)
    window.show_state("Listening…")
    text = "Meet me at the station at half past nine, and bring the"
    window.show_partial(text, len("Meet me at the station at half past nine,"))
    window.set_latency(180)
    window.set_level(-12)
    qtbot.waitUntil(lambda: window.meter.value == window.meter.target, timeout=3000)
    image = window.grab()
    assert not image.isNull() and image.save(str(tmp_path / "caption.png"))
