"""A live input-level meter: `MicLevelProbe` listens to a microphone off the GUI thread, `MicLevelView` shows it."""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from app.gui.caption_parts import LevelMeter
from app.gui.form_row import row_with_message
from stt.errors import MicrophoneError
from stt.microphone import Microphone
from stt.sources import AudioBlock

log = logging.getLogger("perch.gui")

BLOCK_MS = 50
"""One level reading per block: 20 a second."""


class _Messenger(QObject):
    """Made on the probe's thread; carries one run's readings, tagged with the run, to the GUI thread."""

    level = Signal(int, float)
    failed = Signal(int, str)
    opened = Signal(int, str)


class MicLevelProbe(QObject):
    """Opens a microphone on a background thread and reports its level in dBFS until `stop`.

    Opening and closing the device happen off the GUI thread, so neither `start` nor `stop` ever waits for it.
    Readings from a run that was stopped are dropped.
    """

    level = Signal(float)
    """The level of the latest block in dBFS (-120 for digital silence)."""
    failed = Signal(str)
    """The microphone could not be opened, or stopped delivering; the text says what to do."""
    opened = Signal(str)
    """The name of the device that is being listened to."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Between `start` and `stop`."""
        return self._stop is not None

    def start(self, device: str | None) -> None:
        """Listen to `device` (a name or part of one, an index as text, None for the system default)."""
        self.stop()
        self._run += 1
        stop = threading.Event()
        self._stop = stop
        self.destroyed.connect(stop.set)  # a probe deleted while listening still closes its device
        self._thread = threading.Thread(
            target=self._listen, args=(self._run, device, stop), name="perch-level-probe", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; the device is closed in the background."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
            self._run += 1

    def wait(self, timeout: float) -> bool:
        """Wait until the last run's device is closed; False on timeout."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _listen(self, run: int, device: str | None, stop: threading.Event) -> None:
        messenger = _Messenger()
        try:
            messenger.level.connect(self._relay_level)
            messenger.failed.connect(self._relay_failed)
            messenger.opened.connect(self._relay_opened)
        except RuntimeError:  # the probe is already gone
            return

        def sink(block: AudioBlock) -> None:
            if not stop.is_set():
                messenger.level.emit(run, block.level_db)

        def lost(error: Exception) -> None:
            if not stop.is_set():
                messenger.failed.emit(run, str(error))

        spec: str | int | None = int(device) if device is not None and device.isdigit() else device
        microphone = Microphone(spec, block_ms=BLOCK_MS)
        try:
            microphone.start(sink, lost)
        except MicrophoneError as exc:
            messenger.failed.emit(run, str(exc))
            return
        except Exception as exc:
            log.exception("opening the microphone for the level meter failed")
            messenger.failed.emit(run, f"The microphone could not be opened ({exc}); check that it is connected.")
            return
        try:
            found = microphone.device
            messenger.opened.emit(run, found.name if found is not None else str(device or "default"))
            stop.wait()
        finally:
            microphone.stop()

    def _relay_level(self, run: int, db: float) -> None:
        if run == self._run and self.running:
            self.level.emit(db)

    def _relay_failed(self, run: int, message: str) -> None:
        if run == self._run and self.running:
            self.failed.emit(message)

    def _relay_opened(self, run: int, name: str) -> None:
        if run == self._run and self.running:
            self.opened.emit(name)


class MeterBar(LevelMeter):
    """The caption's level bar, drawn with a track that shows on light and dark window colours alike."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(8)

    def track_colour(self) -> QColor:
        """The palette's mid colour, which shows on light and dark window colours alike."""
        return self.palette().color(QPalette.ColorRole.Mid)


class MicLevelView(QWidget):
    """The bar, the level as a number, and a message in place of both when the microphone fails."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = MeterBar()
        self.reading = QLabel("– dBFS")
        self.reading.setMinimumWidth(self.reading.fontMetrics().horizontalAdvance("-120 dBFS") + 4)
        self.reading.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.message = row_with_message(self, self.bar, self.reading)

    @property
    def level_text(self) -> str:
        """The reading as shown."""
        return self.reading.text()

    def show_level(self, db: float) -> None:
        """A new level in dBFS; clears an earlier failure (a lost device that came back)."""
        if not self.message.isHidden():
            self.message.hide()
        self.bar.set_level(db)
        self.reading.setText("silent" if db <= -120 else f"{db:.0f} dBFS")

    def show_failure(self, text: str) -> None:
        """The microphone cannot be heard: say why."""
        self.bar.reset()
        self.reading.setText("– dBFS")
        self.message.setText(text)
        self.message.show()

    def clear(self) -> None:
        """Nothing is being measured."""
        self.bar.reset()
        self.reading.setText("– dBFS")
        self.message.hide()
