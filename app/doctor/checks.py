"""The result of one check, and the runner that runs checks side by side and hands out results as they come."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.doctor.context import DoctorContext

log = logging.getLogger("perch.doctor")

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")
MARKS: dict[Status, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "–"}
"""One character per status, for the terminal and the copied report."""


@dataclass(frozen=True)
class Check:
    """What one check found."""

    name: str
    """Short title: "Display", "Typing (keystrokes)", "Microphone"."""
    status: Status
    summary: str
    """One line: what was found."""
    details: tuple[str, ...] = ()
    """Supporting facts, one per line (paths, device names, timings)."""
    fix: str = ""
    """What to do about a warning or failure, concretely: the package, the setting, the command."""
    area: str = ""
    """The check it came from (`session`, `hotkeys`, `typing`, `microphone`, `model`, `vad`)."""
    seconds: float = 0.0
    """How long the check took."""

    @property
    def mark(self) -> str:
        """✓, !, ✗ or –."""
        return MARKS[self.status]

    def to_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "area": self.area,
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "details": list(self.details),
            "fix": self.fix,
            "seconds": round(self.seconds, 3),
        }


CheckResult = Check | Iterable[Check]
"""A check function returns one result, or yields several as it goes (one per typing strategy, say)."""


@dataclass(frozen=True)
class CheckSpec:
    """One area to check: its function and how long it may take."""

    area: str
    title: str
    """The name of the fail line when the function breaks or overruns."""
    run: Callable[[DoctorContext], CheckResult]
    timeout_s: float
    expected: tuple[str, ...] = field(default=())
    """Names of the results it usually gives, in order, so a window can reserve their places."""


def run_checks(context: DoctorContext, specs: Sequence[CheckSpec] | None = None) -> Iterator[Check]:
    """Run every check on a thread of its own and yield each result as soon as it is there.

    A check that raises gives a `fail` result with the message; one that overruns its timeout gives a `fail`
    result naming the timeout (its thread is left to finish in the background, its later results dropped).
    """
    for _, check in run_events(context, specs):
        if check is not None:
            yield check


def run_events(context: DoctorContext, specs: Sequence[CheckSpec] | None = None) -> Iterator[tuple[int, Check | None]]:
    """`run_checks` with the index of the spec each result belongs to, and `(index, None)` when a spec is done."""
    if specs is None:
        from app.doctor import default_checks

        specs = default_checks(context)
    inbox: queue.Queue[tuple[int, Check | None]] = queue.Queue()
    started = time.monotonic()
    deadlines = {index: started + spec.timeout_s for index, spec in enumerate(specs)}
    for index, spec in enumerate(specs):
        threading.Thread(
            target=_run_one, args=(index, spec, context, inbox), name=f"perch-doctor-{spec.area}", daemon=True
        ).start()
    pending = set(deadlines)
    while pending:
        wait = max(0.0, min(deadlines[index] for index in pending) - time.monotonic())
        try:
            index, check = inbox.get(timeout=wait)
        except queue.Empty:
            now = time.monotonic()
            for index in sorted(pending):
                if deadlines[index] <= now:
                    pending.discard(index)
                    yield index, _timed_out(specs[index], now - started)
                    yield index, None
            continue
        if index not in pending:
            continue
        if check is None:
            pending.discard(index)
        yield index, check


def _run_one(index: int, spec: CheckSpec, context: DoctorContext, inbox: queue.Queue[tuple[int, Check | None]]) -> None:
    """Run one check function, posting each result; never raises."""
    started = time.monotonic()
    try:
        result = spec.run(context)
        items = [result] if isinstance(result, Check) else result
        for check in items:
            inbox.put((index, _stamped(check, spec, time.monotonic() - started)))
            started = time.monotonic()
    except Exception as exc:
        log.exception("the %s check failed", spec.area)
        inbox.put((index, broken(spec, exc, time.monotonic() - started)))
    finally:
        inbox.put((index, None))


def _stamped(check: Check, spec: CheckSpec, seconds: float) -> Check:
    """The result with its area and duration filled in where the check left them out."""
    return replace(check, area=check.area or spec.area, seconds=check.seconds or seconds)


def broken(spec: CheckSpec, exc: BaseException, seconds: float = 0.0) -> Check:
    """The fail line for a check that raised."""
    message = str(exc).strip() or type(exc).__name__
    return Check(
        spec.title,
        "fail",
        f"the check itself failed: {message}",
        (f"{type(exc).__name__}: {message}",),
        "This is a fault in Perch's check rather than in your setup; run `perch doctor --json` and include "
        "its output when you report it.",
        spec.area,
        seconds,
    )


def _timed_out(spec: CheckSpec, seconds: float) -> Check:
    return Check(
        spec.title,
        "fail",
        f"the check did not finish within {spec.timeout_s:g} s",
        (),
        "Something it waits on is hanging (a sound server, the display, the desktop's portal); run "
        f"`perch doctor {spec.area}` again, and restart that service if it hangs again.",
        spec.area,
        seconds,
    )


def worst(checks: Iterable[Check]) -> Status:
    """`fail` if any failed, else `warn` if any warned, else `ok`."""
    statuses = {check.status for check in checks}
    if "fail" in statuses:
        return "fail"
    return "warn" if "warn" in statuses else "ok"
