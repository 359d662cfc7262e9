"""`perch doctor` and the Check setup window: is everything Perch needs here, and what to do where it is not.

Each area has a check function that takes a `DoctorContext` (the settings the app would use, with the command
line's overrides) and returns one `Check` or yields several; none raises. `run_checks` runs them side by side
and yields each result as it arrives; `format_report` and `to_json` render them.
"""

from __future__ import annotations

from app.doctor.checks import MARKS, STATUSES, Check, CheckSpec, Status, run_checks, run_events, worst
from app.doctor.context import DoctorContext, load_context, perch_is_running
from app.doctor.report import format_report, to_json

__all__ = [
    "AREAS",
    "MARKS",
    "STATUSES",
    "Check",
    "CheckSpec",
    "DoctorContext",
    "Status",
    "default_checks",
    "format_report",
    "load_context",
    "perch_is_running",
    "run_checks",
    "run_events",
    "to_json",
    "worst",
]

AREAS = ("session", "hotkeys", "typing", "microphone", "model", "vad")
"""Every area, in report order."""


def default_checks(context: DoctorContext) -> list[CheckSpec]:
    """The checks for this context, in report order (only the areas it asks for)."""
    from app.doctor.hotkeys import check_hotkeys
    from app.doctor.microphone import check_microphone
    from app.doctor.model import check_model
    from app.doctor.session import check_session
    from app.doctor.typing_check import check_typing
    from app.doctor.vad import check_vad

    model_timeout = 30.0 + (900.0 if context.full_verify else 0.0) + (300.0 if context.load_model else 0.0)
    model_names = ("Device", "Model", "Model load") if context.load_model else ("Device", "Model")
    specs = [
        CheckSpec("session", "Display", check_session, 10.0, ("Display", "System tray", "Settings")),
        CheckSpec("hotkeys", "Hotkeys", check_hotkeys, 10.0, ("Hotkeys",)),
        CheckSpec("typing", "Typing", check_typing, 40.0, ("Typing (keystrokes)", "Typing (paste)", "Clipboard")),
        CheckSpec("microphone", "Microphone", check_microphone, 15.0, ("Microphone",)),
        CheckSpec("model", "Model", check_model, model_timeout, model_names),
        CheckSpec("vad", "Voice detection", check_vad, 15.0, ("Voice detection",)),
    ]
    return [spec for spec in specs if context.wants(spec.area)]
