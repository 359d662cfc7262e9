"""Try it: the last recordings transcribed without and with the vocabulary on the page, side by side.

The history is read on a thread of its own; each recording is one job on the engine worker, submitted only once
the one before it is done and while no dictation is under way, so dictation waits for one recording at most.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from app.gui import history_format as fmt
from app.gui.history_jobs import Jobs
from app.history import History
from app.vocabulary_settings import VocabularySettings
from app.vocabulary_trial import TRIAL_COUNT, Candidate, Comparison, Recording, marked_difference, recent_recordings
from stt.errors import ModelError
from stt.worker import EngineWorker

DICTATION_WAIT_MS = 300
"""While dictation is under way the next recording waits; it looks again this often."""


@dataclass(frozen=True)
class TrialSources:
    """Where a trial finds the engine, the history and whether dictation is under way (read on the GUI thread)."""

    worker: Callable[[], EngineWorker]
    history: Callable[[], History | None]
    dictating: Callable[[], bool] = lambda: False


@dataclass
class TrialRow:
    """One recording and what came of it: a comparison, a message, or None while it waits."""

    recording: Recording
    result: Comparison | str | None = None

    @property
    def changed(self) -> bool:
        return isinstance(self.result, Comparison) and self.result.changed


class TrialRunner(QObject):
    """Runs one trial at a time; a new `start` or `stop` drops what an earlier one still delivers."""

    listed = Signal(object)
    """The recordings to transcribe (list[Recording]), in order."""
    compared = Signal(int, object)
    """(position, Comparison or a message saying why that recording could not be transcribed)."""
    status = Signal(str)
    """What the trial is doing or waiting for."""
    ended = Signal(str)
    """The closing line: a summary, or why there was nothing to compare."""
    _arrived = Signal(int, int, object)

    def __init__(self, sources: TrialSources, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sources = sources
        self._run = 0
        self._candidate: Candidate | None = None
        self._recordings: list[Recording] = []
        self._results: list[Comparison | str | None] = []
        self._reader = Jobs("perch-vocabulary-trial", self)
        self._wait = QTimer(self, singleShot=True, interval=DICTATION_WAIT_MS)
        self._wait.timeout.connect(self._submit_next)
        self._arrived.connect(self._done)
        self.running = False

    def start(self, vocabulary: VocabularySettings) -> None:
        """Compare the last recordings without and with `vocabulary`."""
        self.stop()
        self.running = True
        worker = self._sources.worker()
        if worker.load_error is not None:
            self._end(f"The model is not loaded ({worker.load_error}), so nothing can be transcribed yet.")
            return
        history = self._sources.history()
        if history is None:
            self._end("History is turned off, so there are no recordings to try this on (Settings ▸ History).")
            return
        self._candidate = Candidate(vocabulary)
        run = self._run
        self.status.emit("Looking for recordings…")
        self._reader.submit(
            lambda: recent_recordings(history, TRIAL_COUNT),
            lambda found: self._listed(run, found),
            lambda exc: self._end(f"The history could not be read: {exc}") if run == self._run else None,
        )

    def stop(self) -> None:
        """Stop submitting; a recording being transcribed finishes, unseen."""
        self._run += 1
        self._wait.stop()
        self.running = False

    def _listed(self, run: int, found: list[Recording]) -> None:
        if run != self._run:
            return
        if not found:
            self._end(
                "No recordings yet: dictate a few sentences (with Settings ▸ History ▸ Recordings kept above none), "
                "then try again."
            )
            return
        self._recordings, self._results = found, []
        self.listed.emit(found)
        self._submit_next()

    def _submit_next(self) -> None:
        if not self.running or self._candidate is None:
            return
        if self._sources.dictating():
            self.status.emit("Waiting for the dictation to finish…")
            self._wait.start()
            return
        index, run, candidate = len(self._results), self._run, self._candidate
        path = self._recordings[index].path
        worker = self._sources.worker()
        waiting = "" if worker.ready.is_set() else " (once the model has loaded)"
        self.status.emit(f"Transcribing {index + 1} of {len(self._recordings)}{waiting}…")
        future = worker.submit(lambda recognizer: candidate.compare(recognizer, path))
        future.add_done_callback(lambda done: self._post(run, index, done))

    def _post(self, run: int, index: int, future: Future[Comparison]) -> None:
        """On the engine thread (or here, when the engine had stopped)."""
        with contextlib.suppress(RuntimeError):  # the runner is gone: nobody to tell
            self._arrived.emit(run, index, future)

    def _done(self, run: int, index: int, future: Future[Comparison]) -> None:
        if run != self._run:
            return
        problem = future.exception()
        if isinstance(problem, ModelError):
            self._end(f"The model is not loaded ({problem}), so nothing can be transcribed yet.")
            return
        result: Comparison | str = future.result() if problem is None else f"Could not transcribe it: {problem}"
        self._results.append(result)
        self.compared.emit(index, result)
        if len(self._results) < len(self._recordings):
            self._submit_next()
        else:
            self._end(self._summary())

    def _summary(self) -> str:
        total = len(self._recordings)
        changed = sum(isinstance(r, Comparison) and r.changed for r in self._results)
        if changed:
            line = f"{changed} of {fmt.plural(total, 'recording')} come out differently with this vocabulary."
        else:
            line = f"None of the {fmt.plural(total, 'recording')} come out differently with this vocabulary."
        candidate = self._candidate
        if candidate is not None and candidate.warnings:
            line += f" {fmt.plural(len(candidate.warnings), 'phrase')} left out: {candidate.warnings[0]}."
        if candidate is not None and candidate.vocabulary.strength == 0:
            line += " The strength is Off, so only the replacements apply."
        return line

    def _end(self, line: str) -> None:
        self.running = False
        self.ended.emit(line)


class TrialWindow(QDialog):
    """The comparison, one row per recording; rows that change are highlighted and their changed words marked."""

    def __init__(
        self, sources: TrialSources, vocabulary: Callable[[], VocabularySettings], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Try the vocabulary")
        self.resize(760, 480)
        self._vocabulary = vocabulary
        self.runner = TrialRunner(sources, self)
        self.rows: list[TrialRow] = []
        intro = QLabel(
            f"Your latest recordings (up to {TRIAL_COUNT}), transcribed without the vocabulary and with the list as it "
            "is on the page now. Rows that come out differently are highlighted: check that a new entry fixes what it "
            "should and breaks nothing else. Nothing is saved or typed."
        )
        intro.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.table = QTextBrowser()
        self.table.setOpenLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.again = buttons.addButton("Try again", QDialogButtonBox.ButtonRole.ActionRole)
        self.again.setToolTip("Run it again with the list as it is on the page now")
        self.again.clicked.connect(self.start)
        buttons.rejected.connect(self.reject)
        self.finished.connect(self._closed)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

        self.runner.listed.connect(self._listed)
        self.runner.compared.connect(self._compared)
        self.runner.status.connect(self.status.setText)
        self.runner.ended.connect(self._ended)

    @property
    def running(self) -> bool:
        return self.runner.running

    def start(self) -> None:
        """Run the comparison with the page's vocabulary as it is now."""
        self.rows = []
        self._render()
        self.again.setEnabled(False)
        self.runner.start(self._vocabulary())

    def changed_rows(self) -> list[TrialRow]:
        """The rows whose text changes with the vocabulary."""
        return [row for row in self.rows if row.changed]

    def _listed(self, recordings: list[Recording]) -> None:
        self.rows = [TrialRow(recording) for recording in recordings]
        self._render()

    def _compared(self, index: int, result: Comparison | str) -> None:
        self.rows[index].result = result
        self._render()

    def _ended(self, line: str) -> None:
        self.status.setText(line)
        self.again.setEnabled(True)

    def _render(self) -> None:
        shade = _blend(self.palette(), 0.3).name()
        lines = [
            "<table width='100%' cellspacing='0' cellpadding='6'>",
            "<tr><th align='left'>When</th><th align='left'>Without vocabulary</th>"
            "<th align='left'>With vocabulary</th></tr>",
        ]
        for row in self.rows:
            when = fmt.when(row.recording.created)
            if row.result is None:
                before, after = "<i>…</i>", "<i>…</i>"
            elif isinstance(row.result, str):
                before, after = f"<i>{html.escape(row.result)}</i>", ""
            else:
                before, after = marked_difference(row.result.before, row.result.after)
                before, after = before or "<i>(no text)</i>", after or "<i>(no text)</i>"
            colour = f" bgcolor='{shade}'" if row.changed else ""
            mark = "<br><b>changed</b>" if row.changed else ""
            lines.append(
                f"<tr{colour}><td valign='top'>{when}{mark}</td><td valign='top'>{before}</td>"
                f"<td valign='top'>{after}</td></tr>"
            )
        lines.append("</table>")
        scroll = self.table.verticalScrollBar().value()
        self.table.setHtml("".join(lines))
        self.table.verticalScrollBar().setValue(scroll)

    def _closed(self, _result: int) -> None:
        """The window was closed: the trial stops with it."""
        self.runner.stop()
        self.again.setEnabled(True)


def _blend(palette: QPalette, share: float) -> QColor:
    """The highlight colour laid over the base colour at `share` opacity (readable on light and dark themes)."""
    top, base = palette.color(QPalette.ColorRole.Highlight), palette.color(QPalette.ColorRole.Base)
    return QColor(
        round(base.red() + (top.red() - base.red()) * share),
        round(base.green() + (top.green() - base.green()) * share),
        round(base.blue() + (top.blue() - base.blue()) * share),
    )
