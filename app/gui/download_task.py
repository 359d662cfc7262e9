"""Model downloads on a background thread, reported to the GUI thread as Qt signals."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from stt import hub
from stt.catalog import Quantization, get_spec
from stt.errors import ModelFileError, ModelNotFoundError, PerchError
from stt.modelstore import is_downloaded, model_dir, placed_problems, record, save_marker, sha256_of

log = logging.getLogger("perch.download")

PROGRESS_INTERVAL_S = 0.1
"""At most about ten progress signals a second."""
RATE_WINDOW_S = 5.0
"""The speed is averaged over about this many recent seconds."""
MIN_RATE_SPAN_S = 0.5
"""No speed is given until progress has been seen over at least this long."""

Clock = Callable[[], float]


class RateMeter:
    """Transfer speed averaged over the last few seconds of (time, bytes done) samples."""

    def __init__(self, window_s: float = RATE_WINDOW_S, min_span_s: float = MIN_RATE_SPAN_S) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> float:
        """Record a sample; return the speed in bytes per second, 0.0 while it is not known yet."""
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # the transfer started over
        self._samples.append((now, done))
        # Keep one sample at or before the window's start, so the average spans the whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        span = now - first_time
        return (done - first_done) / span if span >= self.min_span_s else 0.0


def seconds_left(done: int, total: int, bytes_per_s: float) -> float:
    """Estimated seconds until `total`, or -1 when the speed is not known."""
    return max(total - done, 0) / bytes_per_s if bytes_per_s > 0 else -1.0


class Throttle:
    """Lets through the first update, the last one (done == total), and others at most every `interval_s`."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def due(self, now: float, done: int, total: int) -> bool:
        """Whether an update at `now` should be passed on."""
        if self._last is not None and done < total and now - self._last < self.interval_s:
            return False
        self._last = now
        return True


def adopt_placed(name: str, quantization: Quantization) -> Path:
    """Accept a variant whose files were placed by hand in its model folder, recording it as complete.

    Blocking (it hashes the files whose hash the catalog knows): call it off the GUI thread.
    """
    spec = get_spec(name)
    directory = model_dir(name)
    if is_downloaded(name, quantization):
        return directory
    problems = placed_problems(spec, quantization, directory)
    if problems:
        raise ModelNotFoundError(f"{'; '.join(problems)} in {directory}")
    records = {}
    for file in spec.files[quantization]:
        path = directory / file.name
        if file.sha256 is not None and sha256_of(path) != file.sha256:
            raise ModelFileError(f"{path} is damaged (its sha256 hash does not match); copy it again")
        records[file.name] = record(path.stat().st_size, file.sha256)
    save_marker(spec, quantization, None, records)
    return directory


class _CancelledError(Exception):
    """Raised from the progress callback to stop a transfer; the hub keeps the partial file."""


@dataclass
class _Job:
    number: int
    name: str
    quantization: Quantization
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    last_sent: tuple[int, int] | None = None
    latest: tuple[int, int, float] | None = None


class ModelDownload(QObject):
    """Downloads one model variant at a time on a Python thread; every signal arrives on the GUI thread.

    `start` resumes whatever an earlier, stopped download left behind. `cancel` stops the transfer at the next
    piece the hub hands over (a few MB at most) and leaves the partial file for the next `start`.
    """

    # Byte counts travel as Python objects: a Qt int would overflow past 2 GB.
    progress = Signal(object, object, float, float)
    """(bytes done, bytes total, bytes per second, seconds left); the last two are 0 and -1 while unknown."""
    finished = Signal(str)
    """The folder that now holds the complete variant."""
    failed = Signal(str)
    """What went wrong and what to do next."""
    cancelled = Signal()
    """The transfer stopped after `cancel`; no completion record was written."""

    _progressed = Signal(int, object, object, float, float)
    _ended = Signal(int, str, str)

    def __init__(self, parent: QObject | None = None, *, clock: Clock = time.monotonic) -> None:
        super().__init__(parent)
        self._clock = clock
        self._numbers = itertools.count(1)
        self._job: _Job | None = None
        self._progressed.connect(self._on_progressed)
        self._ended.connect(self._on_ended)
        # Stop a running transfer when this object goes away with its window.
        stopper = _Stopper()
        self._stopper = stopper
        self.destroyed.connect(stopper.stop)

    @property
    def busy(self) -> bool:
        """Whether a download or check runs and has not yet reported its end."""
        return self._job is not None

    def start(self, name: str, quantization: Quantization) -> None:
        """Download (or resume) `name` in `quantization` in the background."""
        self._launch(name, quantization, self._download)

    def check(self, name: str, quantization: Quantization) -> None:
        """Look in the background for files placed by hand; `finished` when they are complete, else `failed`."""
        self._launch(name, quantization, self._adopt)

    def cancel(self) -> None:
        """Ask the running download to stop; `cancelled` follows once it has."""
        if self._job is not None:
            self._job.stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the background thread has ended (for shutdown and tests); True when it has."""
        job = self._job
        if job is None or job.thread is None:
            return True
        job.thread.join(timeout_s)
        return not job.thread.is_alive()

    def _launch(self, name: str, quantization: Quantization, work: Callable[[_Job], str]) -> None:
        if self._job is not None:
            raise RuntimeError("a model download is already running")
        job = _Job(next(self._numbers), name, quantization)
        job.thread = threading.Thread(target=self._run, args=(job, work), name="perch-model-download", daemon=True)
        self._job = job
        self._stopper.job = job
        job.thread.start()

    def _run(self, job: _Job, work: Callable[[_Job], str]) -> None:
        # On the background thread.
        try:
            outcome, detail = "finished", work(job)
        except _CancelledError:
            outcome, detail = "cancelled", ""
        except PerchError as error:
            outcome, detail = "failed", str(error)
        except Exception as error:
            log.exception("download of %s (%s) failed", job.name, job.quantization)
            outcome, detail = "failed", f"the download stopped unexpectedly ({error}); press Download to resume it"
        if job.latest is not None and job.latest[:2] != job.last_sent:
            self._send_progress(job, *job.latest)
        with suppress(RuntimeError):  # the window closed and took this object with it
            self._ended.emit(job.number, outcome, detail)

    def _download(self, job: _Job) -> str:
        meter = RateMeter()
        throttle = Throttle()

        def on_progress(done: int, total: int) -> None:
            if job.stop.is_set():
                raise _CancelledError
            now = self._clock()
            rate = meter.add(now, done)
            job.latest = (done, total, rate)
            if throttle.due(now, done, total):
                self._send_progress(job, done, total, rate)

        return str(hub.download(job.name, job.quantization, progress=on_progress))

    def _adopt(self, job: _Job) -> str:
        return str(adopt_placed(job.name, job.quantization))

    def _send_progress(self, job: _Job, done: int, total: int, rate: float) -> None:
        job.last_sent = (done, total)
        try:
            self._progressed.emit(job.number, done, total, rate, seconds_left(done, total, rate))
        except RuntimeError:
            job.stop.set()  # nobody is left to report to

    @Slot(int, object, object, float, float)
    def _on_progressed(self, number: int, done: int, total: int, rate: float, left: float) -> None:
        if self._job is not None and self._job.number == number:
            self.progress.emit(done, total, rate, left)

    @Slot(int, str, str)
    def _on_ended(self, number: int, outcome: str, detail: str) -> None:
        if self._job is None or self._job.number != number:
            return
        self._job = None
        self._stopper.job = None
        if outcome == "finished":
            self.finished.emit(detail)
        elif outcome == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(detail)


class _Stopper:
    """Holds the running job apart from the QObject, so it can still be stopped while that object is destroyed."""

    def __init__(self) -> None:
        self.job: _Job | None = None

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop.set()
