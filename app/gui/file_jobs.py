"""Files handed to the engine worker for transcription, with their progress and results brought to the GUI thread
and finished ones kept in the history."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.history import History
from stt.filejob import FileJob, FileProgress, FileResult
from stt.worker import EngineWorker

log = logging.getLogger("perch.files")


class FileJobs(QObject):
    """The app's file transcriptions: queued on the current engine worker, cancelled on request; each finished
    transcript is stored in the history with the file's path (`stored` gives the entry's id)."""

    added = Signal(int, object)
    """(job id, Path) — a file was queued."""
    progress = Signal(object)
    """FileProgress, on the GUI thread."""
    finished = Signal(object)
    """FileResult, on the GUI thread."""
    stored = Signal(int, int)
    """(job id, history entry id) — a finished transcript is in the history."""

    def __init__(
        self,
        worker: Callable[[], EngineWorker],
        history: Callable[[], History | None],
        model_label: Callable[[], str],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._worker = worker
        self._history = history
        self._model_label = model_label
        self.jobs: dict[int, FileJob] = {}
        self.results: dict[int, FileResult] = {}
        self.latest: dict[int, FileProgress] = {}
        self.entries: dict[int, int] = {}
        """Job id → history entry id, once stored."""
        self._history_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perch-file-history")
        self._progress_from_engine = _Relay(self)
        self._progress_from_engine.carried.connect(self._on_progress)
        self._done_from_engine = _Relay(self)
        self._done_from_engine.carried.connect(self._on_done)
        self._stored_from_history = _Relay(self)
        self._stored_from_history.carried.connect(lambda pair: self._on_stored(*pair))

    def transcribe(self, paths: list[Path]) -> list[int]:
        """Queue each file; returns the job ids. Files are transcribed in the order given."""
        ids = []
        for path in paths:
            job = FileJob(path, self._progress_from_engine.carried.emit, self._done_from_engine.carried.emit)
            self.jobs[job.id] = job
            ids.append(job.id)
            self.added.emit(job.id, path)
            self._worker().add_file(job)
        return ids

    def retry(self, job_id: int) -> int | None:
        """Transcribe a finished job's file again, as a new job."""
        job = self.jobs.get(job_id)
        return None if job is None else self.transcribe([job.path])[0]

    def cancel(self, job_id: int) -> None:
        """Stop a job: at once when it waits, within its current segment when it runs."""
        job = self.jobs.get(job_id)
        if job is not None and not job.finished:
            self._worker().cancel_file(job)

    def describe(self) -> str:
        """Every job as one JSON line: file, state, seconds done and in all, history entry."""
        rows = []
        for job_id, job in self.jobs.items():
            progress = self.latest.get(job_id)
            result = self.results.get(job_id)
            rows.append(
                {
                    "id": job_id,
                    "file": str(job.path),
                    "state": job.state,
                    "position_s": round(progress.position_s, 3) if progress else 0.0,
                    "duration_s": round(job.duration_s, 3),
                    "error": result.error if result else None,
                    "history_id": self.entries.get(job_id),
                }
            )
        return json.dumps(rows)

    @property
    def running(self) -> int:
        """Jobs not yet ended."""
        return sum(1 for job in self.jobs.values() if not job.finished)

    def close(self) -> None:
        """Cancel what is left and wait for history writes."""
        for job_id in list(self.jobs):
            self.cancel(job_id)
        self._history_thread.shutdown(wait=True)

    def _on_progress(self, progress: object) -> None:
        assert isinstance(progress, FileProgress)
        self.latest[progress.job_id] = progress
        self.progress.emit(progress)

    def _on_done(self, result: object) -> None:
        assert isinstance(result, FileResult)
        self.results[result.job_id] = result
        if result.state == "done":
            log.info("transcribed %s", result.path.name)
            history = self._history()
            if history is not None and result.transcript is not None:
                self._history_thread.submit(self._store, history, result, self._model_label())
        elif result.state == "failed":
            log.warning("transcribing %s failed: %s", result.path.name, result.error)
        self.finished.emit(result)

    def _store(self, history: History, result: FileResult, model: str) -> None:
        transcript = result.transcript
        assert transcript is not None
        try:
            entry = history.add(
                text=transcript.text,
                duration_s=transcript.duration,
                model=model,
                device=transcript.device,
                source_path=result.path.resolve(),
            )
        except Exception:
            log.exception("could not store the transcript of %s in the history", result.path)
            return
        self._stored_from_history.carried.emit((result.job_id, entry))

    def _on_stored(self, job_id: int, entry_id: int) -> None:
        self.entries[job_id] = entry_id
        self.stored.emit(job_id, entry_id)


class _Relay(QObject):
    """Carries one value from any thread to the GUI thread (a queued signal of the object that lives there)."""

    carried = Signal(object)
