"""Qt bindings must not drop references: the app emits signals many times a second for hours.

Before Python 3.12, None, True and False are ordinary reference-counted objects; a binding that releases
them once too often per signal crashes the interpreter after a few thousand signals.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtGui import QAction
from pytestqt.qtbot import QtBot

CALLS = 3000


class _Emitter(QObject):
    value = Signal(object)
    flag = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def on_value(self, _value: object) -> None:
        self.seen += 1


def _references() -> tuple[int, int, int]:
    gc.collect()
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def _assert_kept(before: tuple[int, int, int]) -> None:
    after = _references()
    for name, old, new in zip(("None", "True", "False"), before, after, strict=True):
        assert new > old - CALLS // 2, f"{name} lost {old - new} references over {CALLS} signals"


def test_signals_and_slots_keep_their_references(qtbot: QtBot) -> None:
    emitter = _Emitter()
    emitter.value.connect(emitter.on_value)
    emitter.flag.connect(lambda _on: None)
    action = QAction("item")
    action.triggered.connect(lambda _checked=False: None)
    before = _references()
    for index in range(CALLS):
        emitter.value.emit(index)
        emitter.flag.emit(index % 2 == 0)
        action.trigger()
    assert emitter.seen == CALLS
    _assert_kept(before)


def test_timer_slots_keep_their_references(qtbot: QtBot) -> None:
    ticks = [0]
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    before = _references()
    timer.start()
    while ticks[0] < CALLS:
        QCoreApplication.processEvents()
    timer.stop()
    _assert_kept(before)
