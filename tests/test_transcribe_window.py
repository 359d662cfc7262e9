"""The Transcribe window on the real engine worker and the words model: rows, progress, cancel, text with
timestamps, copy, save as .txt/.srt/.vtt/.json, the history entry, and memory bounded on an hour-long file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.gui.file_jobs import FileJobs
from app.gui.transcribe_window import TranscribeWindow
from app.history import History
from stt.engine import Recognizer
from stt.filejob import FileProgress
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .longaudio import spaced_phrases, write_long_file

PHRASES = ["seven three five", "hello world", "left right up down", "yes no stop go"] * 4
EVERY_S = 6.0


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory, speak: Speak) -> Path:
    """About 100 s of talk: a phrase every 6 s."""
    path = tmp_path_factory.mktemp("talk") / "meeting.wav"
    return write_long_file(path, 100, spaced_phrases(speak, PHRASES, every_s=EVERY_S))


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory, speak: Speak) -> Path:
    """An hour of talk (115 MB of 16-bit PCM, 230 MB as float samples)."""
    path = tmp_path_factory.mktemp("hour") / "hour.wav"
    return write_long_file(path, 3600, spaced_phrases(speak, PHRASES * 38, every_s=EVERY_S, first_s=1.0))


class Rig:
    def __init__(self, recognizer: Recognizer, folder: Path) -> None:
        self.worker = EngineWorker(lambda: recognizer, lambda _e: None, WorkerOptions(partials="off"))
        self.worker.start()
        self.history = History(folder / "history.sqlite3")
        self.jobs = FileJobs(lambda: self.worker, lambda: self.history, lambda: "words-tdt (fp32)")
        self.window = TranscribeWindow(self.jobs, lambda: "fp32")

    def close(self) -> None:
        self.window.close()
        self.jobs.close()
        self.worker.close()
        self.history.close()


@pytest.fixture
def rig(recognizer: Recognizer, tmp_path: Path, qtbot: QtBot) -> Iterator[Rig]:
    made = Rig(recognizer, tmp_path)
    qtbot.addWidget(made.window)
    made.window.show()
    yield made
    made.close()


def test_a_file_comes_out_with_timestamps_copy_save_and_history(
    rig: Rig, talk: Path, qtbot: QtBot, tmp_path: Path
) -> None:
    seen: list[FileProgress] = []
    rig.jobs.progress.connect(seen.append)
    rig.window.transcribe([talk])
    (row,) = rig.window.rows.values()
    assert row.name.toolTip() == str(talk)
    qtbot.waitUntil(lambda: row.result is not None and row.history.isEnabled(), timeout=60000)
    assert row.result is not None and row.result.transcript is not None
    assert row.result.transcript.text == " ".join(PHRASES)
    assert len(seen) >= 4 and [p.position_s for p in seen] == sorted(p.position_s for p in seen)
    lines = row.text.toPlainText().splitlines()
    assert lines[0].startswith("[0:0") and "seven three five" in lines[0]
    assert row.state.text().startswith("Done")

    row.copy.click()
    assert QGuiApplication.clipboard().text() == " ".join(PHRASES)

    for fmt in ("txt", "srt", "vtt", "json"):
        row.save_as(tmp_path / f"out.{fmt}", fmt)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == " ".join(PHRASES) + "\n"
    subtitles = list(srt.parse((tmp_path / "out.srt").read_text(encoding="utf-8")))
    assert " ".join(s.content.replace("\n", " ") for s in subtitles) == " ".join(PHRASES)
    first = next(s for s in subtitles if "seven" in s.content)
    assert 1.7 <= first.start.total_seconds() <= 3.0
    captions = webvtt.read(str(tmp_path / "out.vtt")).captions
    assert " ".join(c.text.replace("\n", " ") for c in captions) == " ".join(PHRASES)
    assert all(c.start_in_seconds <= c.end_in_seconds <= 100 for c in captions) and len(captions) == len(subtitles)
    record = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert record["text"] == " ".join(PHRASES) and record["quantization"] == "fp32"

    entry_id = rig.jobs.entries[row.job_id]
    entry = rig.history.get(entry_id)
    assert entry is not None and entry.source_path == str(talk.resolve()) and entry.audio_path is None
    assert entry.text == " ".join(PHRASES) and entry.input_path == str(talk.resolve())
    wanted: list[int] = []
    rig.window.history_wanted.connect(wanted.append)
    row.history.click()
    assert wanted == [entry_id]


def test_an_hour_long_file_advances_cancels_within_a_segment_and_stays_small(
    rig: Rig, hour: Path, qtbot: QtBot
) -> None:
    samples: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            samples.append(resident_bytes())

    baseline = resident_bytes()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    seen: list[FileProgress] = []
    rig.jobs.progress.connect(seen.append)
    rig.window.transcribe([hour])
    (row,) = rig.window.rows.values()
    qtbot.waitUntil(lambda: len(seen) >= 6 and seen[-1].position_s >= 150, timeout=60000)
    assert seen[-1].duration_s == pytest.approx(3600)
    assert 0 < row.bar.value() < 1000 and "/ 1:00:00" in row.state.text() and "left" in row.state.text()
    at_click = seen[-1].position_s
    QTest.mouseClick(row.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.result is not None, timeout=10000)
    stop.set()
    watcher.join()
    assert row.result is not None and row.result.state == "cancelled" and row.state.text() == "Cancelled"
    assert seen[-1].position_s <= at_click + 30.0 + 1e-6  # at most the segment that was running
    growth = max(samples) - baseline
    assert growth < 100e6, f"resident memory grew by {growth / 1e6:.0f} MB"
    assert row.again.isVisible()


def test_unreadable_files_fail_in_their_row(rig: Rig, tmp_path: Path, qtbot: QtBot) -> None:
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio\n" * 10)
    rig.window.transcribe([notes, tmp_path / "gone.wav"])
    rows = list(rig.window.rows.values())
    qtbot.waitUntil(lambda: all(r.result is not None for r in rows), timeout=30000)
    for row in rows:
        assert row.state.text().startswith("Failed: ") and "\n" not in row.state.text()
    assert "notes.mp3" in rows[0].state.text() and "not found" in rows[1].state.text()


def test_dropping_files_on_the_window_adds_them(rig: Rig, talk: Path, tmp_path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(talk)), QUrl.fromLocalFile(str(tmp_path))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    rig.window.dropEvent(event)
    assert [r.path for r in rig.window.rows.values()] == [talk]  # the folder is left out
    for job_id in list(rig.jobs.jobs):
        rig.jobs.cancel(job_id)


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_the_add_files_dialog_queues_what_is_chosen(rig: Rig, talk: Path, qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QFileDialog

    rig.window.add.click()
    dialog = rig.window.findChild(QFileDialog)
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    assert dialog.fileMode() == QFileDialog.FileMode.ExistingFiles and "*.mp3" in dialog.nameFilters()[0]
    dialog.filesSelected.emit([str(talk)])
    assert [r.path for r in rig.window.rows.values()] == [talk]
    dialog.reject()
    for job_id in list(rig.jobs.jobs):
        rig.jobs.cancel(job_id)
