"""The Transcribe window: one row per file with its progress, then its text with timestamps, ready to copy or save."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app import formats
from app.coordinator import Phase
from app.formats import clock
from app.gui.file_jobs import FileJobs
from app.gui.icons import state_icon
from stt.filejob import FileProgress, FileResult

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aiff *.aif *.aifc *.au *.caf *.w64);;All files (*)"
SAVE_FORMATS = {
    "Text (*.txt)": "txt",
    "SubRip subtitles (*.srt)": "srt",
    "WebVTT subtitles (*.vtt)": "vtt",
    "JSON (*.json)": "json",
}


def ask_for_audio_files(parent: QWidget | None, chosen: Callable[[list[Path]], None]) -> QFileDialog:
    """A file dialog for audio files, open without blocking anything; `chosen` gets the files picked."""
    dialog = QFileDialog(parent, "Transcribe audio files")
    dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
    dialog.setNameFilter(AUDIO_FILTER)
    dialog.filesSelected.connect(lambda files: chosen([Path(f) for f in files]))
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog


def dropped_files(mime: QMimeData) -> list[Path]:
    """The local files among dragged URLs (folders and remote URLs are left out)."""
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.is_file()]


def progress_text(progress: FileProgress) -> str:
    """'12:30 / 1:00:00 · 8.5× real time · 6:10 left'."""
    parts = [f"{clock(progress.position_s)} / {clock(progress.duration_s)}"]
    if progress.speed > 0:
        parts.append(f"{progress.speed:.1f}× real time")
    left = progress.seconds_left
    if left is not None and progress.fraction < 1:
        parts.append(f"{clock(left)} left")
    return " · ".join(parts)


def timestamped_text(result: FileResult) -> str:
    """The transcript as subtitle-sized lines, each with its start time."""
    transcript = result.transcript
    if transcript is None or not transcript.words:
        return ""
    return "\n".join(
        f"[{clock(group[0].start)}] {' '.join(w.text for w in group)}" for group in formats.cues(transcript.words)
    )


def render_transcript(result: FileResult, fmt: str, quantization: str = "") -> str:
    """The transcript in one of the CLI's output formats: txt, srt, vtt or json."""
    transcript = result.transcript
    assert transcript is not None
    if fmt == "srt":
        return formats.to_srt(transcript)
    if fmt == "vtt":
        return formats.to_vtt(transcript)
    if fmt == "json":
        return formats.to_json(result.path, transcript, quantization) + "\n"
    return transcript.text + "\n"


class FileRow(QFrame):
    """One file: name, state, progress and Cancel; when done, its text with Copy, Save as… and Open in History."""

    def __init__(self, job_id: int, path: Path, window: TranscribeWindow) -> None:
        super().__init__()
        self.job_id = job_id
        self.path = path
        self.result: FileResult | None = None
        self._window = window
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel(f"<b>{_escape(path.name)}</b>")
        self.name.setToolTip(str(path))
        self.state = QLabel("Waiting…")
        self.state.setTextFormat(Qt.TextFormat.PlainText)
        self.state.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: window.jobs.cancel(job_id))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setVisible(False)
        self.text.setMinimumHeight(120)
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(self.copy_text)
        self.save = QPushButton("Save as…")
        self.save.clicked.connect(self.ask_where_to_save)
        self.history = QPushButton("Open in History")
        self.history.setEnabled(False)
        self.history.clicked.connect(lambda: window.open_in_history(job_id))
        self.again = QPushButton("Transcribe again")
        self.again.clicked.connect(lambda: window.transcribe([path]))
        for button in (self.copy, self.save, self.history, self.again):
            button.setVisible(False)

        top = QHBoxLayout()
        top.addWidget(self.name, 1)
        top.addWidget(self.cancel)
        actions = QHBoxLayout()
        actions.addStretch(1)
        for button in (self.copy, self.save, self.history, self.again):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.state)
        layout.addWidget(self.text)
        layout.addLayout(actions)

    def show_progress(self, progress: FileProgress) -> None:
        self.bar.setValue(round(progress.fraction * 1000))
        self.state.setText(progress_text(progress))

    def show_result(self, result: FileResult) -> None:
        self.result = result
        self.cancel.setVisible(False)
        if result.state == "done":
            transcript = result.transcript
            assert transcript is not None
            self.bar.setValue(1000)
            seconds = transcript.timings.total / 1000
            speed = f", {transcript.duration / seconds:.0f}× real time" if seconds > 0 else ""
            self.state.setText(f"Done: {clock(transcript.duration)} of audio{speed}")
            self.text.setPlainText(timestamped_text(result) or "(no speech was recognised)")
            self.text.setVisible(True)
            for button in (self.copy, self.save, self.history):
                button.setVisible(True)
            self.copy.setEnabled(bool(transcript.text))
        elif result.state == "cancelled":
            self.bar.setVisible(False)
            self.state.setText("Cancelled")
            self.again.setVisible(True)
        else:
            self.bar.setVisible(False)
            self.state.setText(f"Failed: {result.error}")
            self.state.setStyleSheet("color: #b3261e")
            self.again.setVisible(True)

    def copy_text(self) -> None:
        """The plain transcript to the clipboard."""
        if self.result is not None and self.result.transcript is not None:
            QGuiApplication.clipboard().setText(self.result.transcript.text)

    def ask_where_to_save(self) -> None:
        dialog = QFileDialog(self, "Save transcript", str(self.path.with_suffix(".txt")))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(list(SAVE_FORMATS))
        dialog.filterSelected.connect(
            lambda name: dialog.selectFile(str(self.path.with_suffix("." + SAVE_FORMATS[name])))
        )
        dialog.fileSelected.connect(lambda file: self.save_as(Path(file), SAVE_FORMATS[dialog.selectedNameFilter()]))
        dialog.open()

    def save_as(self, target: Path, fmt: str) -> None:
        """Write the transcript to `target` in `fmt` (txt, srt, vtt, json); a failure is shown in the row."""
        if self.result is None or self.result.transcript is None:
            return
        if target.suffix == "":
            target = target.with_suffix("." + fmt)
        try:
            target.write_text(render_transcript(self.result, fmt, self._window.quantization()), encoding="utf-8")
        except OSError as exc:
            self.state.setText(f"Could not save {target}: {exc.strerror or exc}. Choose another folder.")
            return
        self.state.setText(f"Saved {target.name}")


class TranscribeWindow(QWidget):
    """Audio files transcribed by the loaded model, one row each; files dropped here are added."""

    history_wanted = Signal(int)
    """A history entry id to show."""

    def __init__(self, jobs: FileJobs, quantization: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Perch — transcribe files")
        self.setWindowIcon(state_icon(Phase.IDLE))
        self.resize(720, 560)
        self.setAcceptDrops(True)
        self.jobs = jobs
        self.quantization = quantization
        self.rows: dict[int, FileRow] = {}
        self.add = QPushButton("Add files…")
        self.add.clicked.connect(self.ask_for_files)
        hint = QLabel("Drop audio files here, or add them. Dictation always goes first; files continue after it.")
        hint.setWordWrap(True)
        self._list = QVBoxLayout()
        self._list.addStretch(1)
        inner = QWidget()
        inner.setLayout(self._list)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        top = QHBoxLayout()
        top.addWidget(hint, 1)
        top.addWidget(self.add)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        jobs.added.connect(self._added)
        jobs.progress.connect(self._progress)
        jobs.finished.connect(self._finished)
        jobs.stored.connect(self._stored)
        for job_id, job in jobs.jobs.items():
            self._added(job_id, job.path)
            if job_id in jobs.results:
                self._finished(jobs.results[job_id])

    def transcribe(self, paths: list[Path]) -> None:
        """Queue files; their rows appear at once."""
        self.jobs.transcribe(paths)

    def ask_for_files(self) -> None:
        ask_for_audio_files(self, self.transcribe)

    def open_in_history(self, job_id: int) -> None:
        entry = self.jobs.entries.get(job_id)
        if entry is not None:
            self.history_wanted.emit(entry)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        files = dropped_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.transcribe(files)

    def _added(self, job_id: int, path: object) -> None:
        assert isinstance(path, Path)
        row = FileRow(job_id, path, self)
        self.rows[job_id] = row
        self._list.insertWidget(self._list.count() - 1, row)

    def _progress(self, progress: object) -> None:
        assert isinstance(progress, FileProgress)
        row = self.rows.get(progress.job_id)
        if row is not None:
            row.show_progress(progress)

    def _finished(self, result: object) -> None:
        assert isinstance(result, FileResult)
        row = self.rows.get(result.job_id)
        if row is not None:
            row.show_result(result)
            if result.job_id in self.jobs.entries:
                row.history.setEnabled(True)

    def _stored(self, job_id: int, _entry_id: int) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            row.history.setEnabled(True)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
